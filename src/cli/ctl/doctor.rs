//! `seqctl doctor [STATE]`: is everything in place for the heartbeat to carry a plan? Checks
//! the agent command as the runner would (and as it would run under OpenClaw's exec tool), the
//! settings, the binaries on PATH, the state file, the installed skill, and, when `openclaw`
//! is on PATH, whether OpenClaw sees the skill as ready. Each finding says what to do.
//!
//! Facts are gathered first (environment, files, OpenClaw's answer) and judged by plain
//! functions, so every verdict is unit-tested without a machine to break.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use serde_json::{json, Value};

use super::install_skill;
use super::Output;
use crate::cli::config::Config;
use crate::cli::exit::Exit;
use crate::exec::command::{self, AgentCommand};
use crate::exec::openclaw::{self, AgentRoute};
use crate::exec::policy::{Kind, Trust};
use crate::format::text::counted;
use crate::store::Store;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    /// Something that stops plans from running; doctor exits 1.
    Problem,
}

/// One thing doctor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// What was checked: `agent`, `settings`, `binaries`, `state`, `skill`, `openclaw`.
    pub topic: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn finding(level: Level, topic: &'static str, text: impl Into<String>) -> Finding {
    Finding {
        level,
        topic,
        text: text.into(),
        fix: None,
    }
}

impl Finding {
    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// The skill's name, as OpenClaw keys it.
const SKILL: &str = "agent-step-sequencer";
/// How long `openclaw skills info` may take (a Node start and a config read: 2 to 4 s).
const OPENCLAW_PATIENCE: Duration = Duration::from_secs(30);

pub fn run(path: &Path) -> Result<Output> {
    let config = Config::or_default();
    let mut state = Vec::new();
    let workspace = state_findings(path, &mut state);
    // Judged where the runner will run it: in the state file's folder (a `./agent.sh` is
    // found there, not in the folder doctor happens to be run from).
    let mut findings = agent_findings(
        config.agent_text(),
        config.path_var(),
        &workspace
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/")),
        config.exec_marker(),
        config.trust(),
    );
    findings.extend(named_agent_findings(&config, workspace.as_deref()));
    findings.extend(settings_findings(Config::from_env().err()));
    let path_var = config.path_var().map(ToOwned::to_owned);
    findings.extend(binary_findings(
        path_var.as_deref(),
        config.runner.as_deref(),
    ));
    findings.extend(state);
    let installed = installed_skills(workspace.as_deref());
    findings.extend(skill_findings(&installed));
    let leftovers: Vec<(PathBuf, Vec<String>)> = installed
        .iter()
        .map(|(dir, _)| (dir.clone(), python_scripts(&dir.join("scripts"))))
        .collect();
    findings.extend(leftover_findings(&leftovers));
    if let Some(openclaw) = command::find_program("openclaw", path_var.as_deref(), Path::new("/")) {
        let answer = ask_openclaw(&openclaw);
        if config.agent_text().is_none() && openclaw_provides_agent(&answer) {
            // Set in OpenClaw's config for the skill (`skills.entries.<skill>.env`), so every
            // heartbeat and agent turn has it; only this shell lacks it.
            for f in findings.iter_mut().filter(|f| f.topic == "agent") {
                *f = finding(
                    Level::Warning,
                    "agent",
                    "STEP_AGENT_CMD is not set in this shell, but OpenClaw gives it to the \
                     skill (its runs have it); set it here too to run seq-check by hand",
                );
            }
        }
        findings.push(openclaw_view(&answer));
    } else {
        // Said, not left out: a user who expects OpenClaw's view must see it was not asked.
        findings.push(finding(
            Level::Warning,
            "openclaw",
            "`openclaw` is not on PATH, so OpenClaw's view of the skill was not checked (on the \
             machine the gateway runs on, run seqctl doctor where `openclaw` is found)",
        ));
    }
    let problems = findings
        .iter()
        .filter(|f| f.level == Level::Problem)
        .count();
    let json = json!({ "ok": problems == 0, "findings": findings });
    Ok(Output {
        text: render(&findings),
        json,
        code: Exit::attention_if(problems > 0),
    })
}

/// The findings as lines: `ok`, `warning` or `problem`, the text, then the fix indented.
#[must_use]
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let level = match f.level {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Problem => "problem",
        };
        let _ = writeln!(out, "{level:<8} {}: {}", f.topic, f.text);
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "         fix: {fix}");
        }
    }
    let problems = findings
        .iter()
        .filter(|f| f.level == Level::Problem)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count();
    let _ = match (problems, warnings) {
        (0, 0) => writeln!(out, "all good: the heartbeat can carry a plan"),
        (0, w) => writeln!(out, "no problems; {} worth a look", counted(w, "warning")),
        (p, _) => writeln!(out, "{} to fix before plans can run", counted(p, "problem")),
    };
    out
}

/// `STEP_AGENT_CMD`, judged as the runner judges it, and as it would fare under OpenClaw's
/// exec tool, which is where the skill's main flow (the agent running seq-check) starts it:
/// the argv with the prompt marked, what reads the prompt and why it is trusted, and where
/// the prompt goes.
#[must_use]
pub fn agent_findings(
    raw: Option<&str>,
    path: Option<&std::ffi::OsStr>,
    workspace: &Path,
    under_exec_marker: bool,
    trust: &Trust,
) -> Vec<Finding> {
    let recommended = format!("STEP_AGENT_CMD='{}'", openclaw::RECOMMENDED_AGENT);
    let command = match AgentCommand::parse(raw, path, workspace, under_exec_marker, trust) {
        Ok(command) => command,
        Err(e) => {
            return vec![finding(Level::Problem, "agent", format!("{e:#}")).fix(recommended)];
        }
    };
    let raw = raw.unwrap_or_default();
    let passed = command
        .args(
            "\u{27e8}prompt\u{27e9}",
            Some(Path::new("\u{27e8}prompt file\u{27e9}")),
        )
        .map_or_else(|why| why, shell_words::join);
    let mut out = vec![finding(
        Level::Ok,
        "agent",
        format!(
            "STEP_AGENT_CMD runs {} as: {} {passed}",
            command.program().display(),
            command.program_word()
        ),
    )];
    out.extend(reader_findings(&command, trust));
    let words = shell_words::split(raw).unwrap_or_default();
    match openclaw::agent_route(&words) {
        Some(AgentRoute::Gateway) => out.push(
            finding(
                Level::Warning,
                "agent",
                "`openclaw agent` without `exec` works from a shell and from a command \
                 automation, but the agent's own exec tool (which runs seq-check right after \
                 writing a plan, and in heartbeat turns) marks what it starts with \
                 OPENCLAW_SHELL=exec, where the gateway refuses it; and steps sent to one \
                 session share its history instead of arriving as fresh messages",
            )
            .fix(recommended),
        ),
        Some(AgentRoute::Local) => out.push(
            finding(
                Level::Warning,
                "agent",
                "`openclaw agent --local` refuses to run while the gateway runs for the same \
                 state, which is always the case in a heartbeat",
            )
            .fix(recommended),
        ),
        Some(AgentRoute::Exec) if !words.iter().any(|w| w.starts_with("--timeout")) => out.push(
            finding(
                Level::Warning,
                "agent",
                "`openclaw agent exec` stops a turn after 600 s unless given --timeout; \
                 with --timeout 0 the step's own limit (STEP_TIMEOUT_SECONDS, timeoutSeconds) \
                 governs",
            )
            .fix(recommended),
        ),
        _ => {}
    }
    out
}

/// What reads the prompt, why it is let, and what becomes of an instruction that starts
/// with `-`; and a `STEP_AGENT_TRUST` that this command does not use.
fn reader_findings(command: &AgentCommand, trust: &Trust) -> Vec<Finding> {
    let reader = command.reader();
    let dash = if command.exposes_dash() {
        "an instruction that starts with `-` is refused for its try (the program would read \
         it as an option); put `--` before {prompt} or use --option={prompt} to pass it"
    } else {
        "an instruction that starts with `-` stays data"
    };
    let text = match command.kind() {
        Kind::Agent(agent, place) => {
            let place = if command.wants_prompt_file() {
                "in a file named by its prompt-file option".to_owned()
            } else {
                place.to_string()
            };
            let mut text = format!(
                "`{reader}` is a known agent ({}): trusted with any of its own flags; the \
                 prompt goes {place}, so {dash}",
                agent.name
            );
            for prefix in agent.command_prefixes {
                let _ = write!(
                    text,
                    "; an instruction that starts with `{prefix}` is refused ({} runs it as its \
                     own command)",
                    agent.name
                );
            }
            text
        }
        Kind::Trusted => format!(
            "`{reader}` is trusted by STEP_AGENT_TRUST: you vouch that it never runs its \
             arguments as code, so they are not searched; {dash}"
        ),
        Kind::Program => format!(
            "`{reader}` is judged as your own program (not a known agent): none of its \
             arguments runs code; {dash}"
        ),
    };
    let mut out = vec![finding(Level::Ok, "agent", text)];
    if !trust.entries().is_empty() && command.kind() != Kind::Trusted {
        out.push(
            finding(
                Level::Warning,
                "agent",
                format!(
                    "STEP_AGENT_TRUST names {}, but this command's prompt is read by `{reader}`, \
                     which it does not name (or which the policy judges by what it is)",
                    trust.entries().join(", ")
                ),
            )
            .fix("unset STEP_AGENT_TRUST, or name exactly the program STEP_AGENT_CMD runs"),
        );
    }
    out
}

fn settings_findings(error: Option<anyhow::Error>) -> Vec<Finding> {
    match error {
        None => vec![finding(
            Level::Ok,
            "settings",
            "STEP_MAX_RETRIES and STEP_TIMEOUT_SECONDS are valid (or unset)",
        )],
        Some(e) => vec![finding(Level::Problem, "settings", format!("{e:#}"))
            .fix("unset it, or give a whole number from 1 up")],
    }
}

/// The three binaries, where OpenClaw looks for them (`requires.bins`: on PATH), and the runner
/// the check would start.
fn binary_findings(path: Option<&std::ffi::OsStr>, runner: Option<&Path>) -> Vec<Finding> {
    let mine = env!("CARGO_PKG_VERSION");
    let mut out = Vec::new();
    for bin in ["seq-check", "seq-runner", "seqctl"] {
        let Some(found) = command::find_program(bin, path, Path::new("/")) else {
            out.push(
                finding(Level::Problem, "binaries", format!("{bin} is not on PATH"))
                    .fix("cargo install --locked --path <a clone of this repository>"),
            );
            continue;
        };
        match version_of(&found) {
            Some(version) if version == mine => {}
            other => out.push(
                finding(
                    // seq-check and seq-runner of two versions may disagree about the file.
                    Level::Problem,
                    "binaries",
                    format!(
                        "{} is version {}, this seqctl is {mine}",
                        found.display(),
                        other.as_deref().unwrap_or("unknown")
                    ),
                )
                .fix("install all three binaries from one version"),
            ),
        }
    }
    if let Some(runner) = runner {
        out.push(
            finding(
                Level::Warning,
                "binaries",
                format!(
                    "STEP_RUNNER={} replaces the seq-runner beside seq-check; a runner that \
                     takes no run lease (the Python one) would run beside the next",
                    runner.display()
                ),
            )
            .fix("unset STEP_RUNNER"),
        );
    }
    if out.is_empty() {
        out.push(finding(
            Level::Ok,
            "binaries",
            format!("seq-check, seq-runner and seqctl {mine} are on PATH"),
        ));
    }
    out
}

/// `seq-check 2.0.0` → `2.0.0`.
fn version_of(program: &Path) -> Option<String> {
    let output = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace().nth(1).map(str::to_owned)
}

/// The state file, if there is one; returns its workspace.
fn state_findings(path: &Path, out: &mut Vec<Finding>) -> Option<PathBuf> {
    match Store::locate(path) {
        Ok(None) => {
            out.push(finding(
                Level::Ok,
                "state",
                format!("no plan at {} (nothing to check)", absolute(path).display()),
            ));
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(absolute)
                .or_else(|| std::env::current_dir().ok())
        }
        Err(e) => {
            out.push(finding(Level::Problem, "state", format!("{e:#}")));
            None
        }
        Ok(Some(store)) => {
            match store.read() {
                Ok(state) => {
                    out.push(finding(
                        Level::Ok,
                        "state",
                        format!(
                            "{} is a valid plan of {}",
                            store.path().display(),
                            counted(state.step_queue.len(), "step")
                        ),
                    ));
                    for warning in super::validate::warnings(&state) {
                        out.push(finding(Level::Warning, "state", warning));
                    }
                    // Agents the plan names that the operator never defined fail every try.
                    let workspace = path.parent().unwrap_or(Path::new("/"));
                    let known = Config::or_default()
                        .agents(workspace)
                        .map_err(|e| format!("{e:#}"));
                    for problem in super::validate::unknown_agents(&state, &known) {
                        out.push(finding(Level::Problem, "state", problem));
                    }
                }
                Err(e) => out.push(finding(Level::Problem, "state", format!("{e:#}")).fix(
                    "seqctl validate shows the field; fix it or write the plan with seqctl init",
                )),
            }
            Some(store.workspace().to_path_buf())
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The skill folders OpenClaw would read this skill from, with their SKILL.md if present:
/// the workspace's `skills/` (where `clawhub install` writes) and `~/.openclaw/skills`.
fn installed_skills(workspace: Option<&Path>) -> Vec<(PathBuf, Option<String>)> {
    let mut dirs = Vec::new();
    if let Some(ws) = workspace {
        dirs.push(ws.join("skills").join(SKILL));
    }
    if let Ok(dir) = install_skill::default_dir() {
        dirs.push(dir);
    }
    dirs.into_iter()
        .map(|dir| {
            let text = fs::read_to_string(dir.join("SKILL.md")).ok();
            (dir, text)
        })
        .collect()
}

/// The Python version's scripts (`step-sequencer-*.py`) in a folder, by name.
fn python_scripts(folder: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("step-sequencer")
                && Path::new(n)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("py"))
        })
        .collect();
    names.sort();
    names
}

/// The Python version's scripts left in a skill folder: a heartbeat line or an old automation
/// that still names them would run a second, lock-less runner beside seq-runner.
#[must_use]
pub fn leftover_findings(found: &[(PathBuf, Vec<String>)]) -> Vec<Finding> {
    found
        .iter()
        .filter(|(_, scripts)| !scripts.is_empty())
        .map(|(dir, scripts)| {
            let folder = dir.join("scripts");
            finding(
                Level::Warning,
                "skill",
                format!(
                    "{} still holds the Python version's {}: stop its heartbeat and runner, \
                     and remove them so nothing runs them beside seq-runner",
                    folder.display(),
                    scripts.join(", ")
                ),
            )
            .fix(format!("rm -r {}", folder.display()))
        })
        .collect()
}

/// Whether an installed SKILL.md is this version's.
#[must_use]
pub fn skill_findings(installed: &[(PathBuf, Option<String>)]) -> Vec<Finding> {
    let ours = install_skill::FILES[0].1;
    let mut out = Vec::new();
    for (dir, text) in installed {
        let Some(text) = text else { continue };
        let mine = env!("CARGO_PKG_VERSION");
        let version = skill_version(text);
        if text == ours {
            out.push(finding(
                Level::Ok,
                "skill",
                format!("{} holds this version's skill ({mine})", dir.display()),
            ));
        } else if version.as_deref() == Some(mine) {
            out.push(
                finding(
                    Level::Warning,
                    "skill",
                    format!(
                        "{} holds this version's skill ({mine}), edited: it differs from the \
                         SKILL.md these binaries carry",
                        dir.display()
                    ),
                )
                .fix(format!("seqctl install-skill {}", dir.display())),
            );
        } else {
            out.push(
                finding(
                    Level::Problem,
                    "skill",
                    format!(
                        "{} holds another version's skill ({}; the binaries are {mine}): the agent \
                         reads instructions that do not match them",
                        dir.display(),
                        version.unwrap_or_else(|| "version unknown".into())
                    ),
                )
                .fix(format!("seqctl install-skill {}", dir.display())),
            );
        }
    }
    if out.is_empty() {
        out.push(
            finding(
                Level::Warning,
                "skill",
                "the skill is not installed where OpenClaw looks",
            )
            .fix("seqctl install-skill"),
        );
    }
    out
}

/// The version a SKILL.md names in its metadata (`"version":"2.1.0"`), or its old `version:` line.
fn skill_version(text: &str) -> Option<String> {
    let front = text.strip_prefix("---\n")?.split("\n---").next()?;
    front.lines().find_map(|line| {
        if let Some(v) = line.strip_prefix("version: ") {
            return Some(v.trim().to_owned());
        }
        let metadata: Value = serde_json::from_str(line.strip_prefix("metadata: ")?).ok()?;
        metadata["version"].as_str().map(str::to_owned)
    })
}

/// What `openclaw skills info agent-step-sequencer --json` said, or why it said nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenclawAnswer {
    Info(Value),
    Failed(String),
}

fn ask_openclaw(program: &Path) -> OpenclawAnswer {
    let child = Command::new(program)
        .args(["skills", "info", SKILL, "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return OpenclawAnswer::Failed(format!("cannot run {}: {e}", program.display())),
    };
    let deadline = Instant::now() + OPENCLAW_PATIENCE;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return OpenclawAnswer::Failed(format!(
                    "`openclaw skills info` gave no answer within {} s",
                    OPENCLAW_PATIENCE.as_secs()
                ));
            }
        }
    }
    let mut text = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = std::io::Read::read_to_end(&mut stdout, &mut text);
    }
    match serde_json::from_slice(&text) {
        Ok(value) => OpenclawAnswer::Info(value),
        Err(_) => OpenclawAnswer::Failed(format!(
            "`openclaw skills info {SKILL} --json` printed no JSON: {}",
            String::from_utf8_lossy(&text)
                .chars()
                .take(200)
                .collect::<String>()
        )),
    }
}

/// The operator's named agents (`STEP_AGENTS_FILE`): each judged as the runner will judge it.
fn named_agent_findings(config: &Config, workspace: Option<&Path>) -> Vec<Finding> {
    let workspace = workspace.map_or_else(
        || std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        Path::to_path_buf,
    );
    let agents = match config.agents(&workspace) {
        Ok(agents) => agents,
        Err(e) => return vec![finding(Level::Problem, "agents", format!("{e:#}"))],
    };
    let mut out: Vec<Finding> = agents
        .iter()
        .map(
            |(name, _)| match config.agent_for(&crate::core::AgentRef::named(name), &workspace) {
                Ok(command) => finding(
                    Level::Ok,
                    "agents",
                    format!("agent `{name}` runs {}", command.program().display()),
                ),
                Err(e) => finding(Level::Problem, "agents", format!("{e:#}")),
            },
        )
        .collect();
    if out.is_empty() {
        let place = agents.path().map_or("no agents file".to_owned(), |p| {
            format!("none in {}", p.display())
        });
        out.push(finding(
            Level::Ok,
            "agents",
            format!("named agents: {place} (plans use STEP_AGENT_CMD only)"),
        ));
    }
    out
}

/// Whether OpenClaw reports the skill's required STEP_AGENT_CMD as present (set in its config
/// for the skill, or in the gateway's environment).
#[must_use]
pub fn openclaw_provides_agent(answer: &OpenclawAnswer) -> bool {
    let OpenclawAnswer::Info(info) = answer else {
        return false;
    };
    let missing = info["missing"]["env"]
        .as_array()
        .is_some_and(|env| env.iter().any(|v| v == "STEP_AGENT_CMD"));
    info["name"].is_string() && info["disabled"] != json!(true) && !missing
}

/// OpenClaw's own view of the skill: ready, disabled, or missing something.
#[must_use]
pub fn openclaw_view(answer: &OpenclawAnswer) -> Finding {
    let info = match answer {
        OpenclawAnswer::Failed(why) => return finding(Level::Warning, "openclaw", why.clone()),
        OpenclawAnswer::Info(info) => info,
    };
    if info["ok"] == json!(false) || info["name"].is_null() {
        return finding(
            Level::Problem,
            "openclaw",
            "OpenClaw does not find the skill",
        )
        .fix("seqctl install-skill");
    }
    if info["disabled"] == json!(true) {
        return finding(
            Level::Problem,
            "openclaw",
            "the skill is disabled in OpenClaw's config (`openclaw doctor --fix` does this \
             when run from a shell that lacks the binaries or STEP_AGENT_CMD)",
        )
        .fix(format!(
            "openclaw config set skills.entries.{SKILL}.enabled true"
        ));
    }
    if info["eligible"] == json!(true) {
        return finding(Level::Ok, "openclaw", "OpenClaw sees the skill as ready");
    }
    let missing = |kind: &str| -> Vec<String> {
        info["missing"][kind]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let (bins, env) = (missing("bins"), missing("env"));
    let mut what = Vec::new();
    if !bins.is_empty() {
        what.push(format!("binaries not on its PATH: {}", bins.join(", ")));
    }
    if !env.is_empty() {
        what.push(format!("variables not set: {}", env.join(", ")));
    }
    let fix = if env.iter().any(|v| v == "STEP_AGENT_CMD") {
        format!(
            "openclaw config set skills.entries.{SKILL}.env.STEP_AGENT_CMD '{}'",
            openclaw::RECOMMENDED_AGENT
        )
    } else {
        "put the binaries on the PATH the gateway runs with".to_owned()
    };
    finding(
        Level::Problem,
        "openclaw",
        format!(
            "OpenClaw sees the skill as not ready ({})",
            if what.is_empty() {
                "no reason given".into()
            } else {
                what.join("; ")
            }
        ),
    )
    .fix(fix)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_command_openclaw_gives_the_skill_is_not_a_problem_of_this_shell() {
        let ready = OpenclawAnswer::Info(json!({
            "name": "agent-step-sequencer", "eligible": true, "disabled": false,
            "missing": {"bins": [], "env": []}
        }));
        assert!(openclaw_provides_agent(&ready));
        let lacking = OpenclawAnswer::Info(json!({
            "name": "agent-step-sequencer", "eligible": false,
            "missing": {"bins": [], "env": ["STEP_AGENT_CMD"]}
        }));
        assert!(!openclaw_provides_agent(&lacking));
        assert!(!openclaw_provides_agent(&OpenclawAnswer::Failed(
            "no".into()
        )));
    }

    use super::*;
    use std::ffi::{OsStr, OsString};
    use std::os::unix::fs::PermissionsExt;

    fn agent(raw: &str, marker: bool) -> Vec<Finding> {
        agent_findings(
            Some(raw),
            Some(OsStr::new("/usr/bin:/bin")),
            Path::new("/"),
            marker,
            &Trust::default(),
        )
    }

    #[test]
    fn the_agent_command_is_judged_as_the_runner_would_and_the_prompt_shown() {
        let f = agent("echo --message", false);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].level, Level::Ok);
        assert!(
            f[0].text.ends_with("as: echo --message ⟨prompt⟩"),
            "{}",
            f[0].text
        );
        assert!(
            f[1].text.contains("your own program") && f[1].text.contains("refused for its try"),
            "{}",
            f[1].text
        );
        let f = agent("echo -- {prompt}", false);
        assert!(f[1].text.ends_with("stays data"), "{}", f[1].text);
        let f = agent("bash -c", false);
        assert_eq!(f[0].level, Level::Problem);
        assert!(f[0]
            .fix
            .as_deref()
            .unwrap()
            .contains(openclaw::RECOMMENDED_AGENT));
    }

    /// A directory on PATH holding stand-ins named `names`.
    fn fake_bins(names: &[&str]) -> (tempfile::TempDir, OsString) {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            let bin = dir.path().join(name);
            fs::write(&bin, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = OsString::from(dir.path());
        (dir, path)
    }

    #[test]
    fn known_agents_and_trusted_programs_are_named_with_where_the_prompt_goes() {
        let (_dir, path) = fake_bins(&["claude", "aider", "mytool"]);
        let judge = |raw: &str, trust: &Trust| {
            agent_findings(Some(raw), Some(&path), Path::new("/"), false, trust)
        };
        let f = judge("claude -c -p", &Trust::default());
        assert!(
            f[0].text.ends_with("as: claude -c -p -- ⟨prompt⟩"),
            "{}",
            f[0].text
        );
        assert!(
            f[1].text.contains("known agent (claude)") && f[1].text.contains("after `--`"),
            "{}",
            f[1].text
        );
        let f = judge("aider --yes", &Trust::default());
        assert!(
            f[0].text.ends_with("as: aider --yes '--message=⟨prompt⟩'"),
            "{}",
            f[0].text
        );
        assert!(
            f[1].text.contains("starts with `!` is refused"),
            "{}",
            f[1].text
        );
        let f = judge("mytool --shell bash", &Trust::default());
        assert_eq!(f[0].level, Level::Problem);
        assert!(f[0].text.contains("STEP_AGENT_TRUST"), "{}", f[0].text);
        let f = judge("mytool --shell bash", &Trust::parse("mytool"));
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(
            f[1].text.contains("trusted by STEP_AGENT_TRUST"),
            "{}",
            f[1].text
        );
        let f = judge("claude -p", &Trust::parse("mytool"));
        assert_eq!(f[2].level, Level::Warning);
        assert!(
            f[2].text.contains("STEP_AGENT_TRUST names mytool"),
            "{}",
            f[2].text
        );
    }

    #[test]
    fn openclaw_routes_get_the_advice_that_fits_them() {
        let (_dir, path) = fake_bins(&["openclaw"]);
        let judge = |raw: &str, marker: bool| {
            agent_findings(
                Some(raw),
                Some(&path),
                Path::new("/"),
                marker,
                &Trust::default(),
            )
        };
        let gateway = "openclaw agent --session-key s --message";
        let f = judge(gateway, false);
        assert_eq!(
            f.iter().map(|f| f.level).collect::<Vec<_>>(),
            [Level::Ok, Level::Ok, Level::Warning]
        );
        assert!(f[0].text.ends_with("'--message=⟨prompt⟩'"), "{}", f[0].text);
        assert!(f[2].text.contains("OPENCLAW_SHELL=exec"), "{}", f[2].text);
        let f = judge(gateway, true);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, Level::Problem);
        let f = judge("openclaw agent exec --message-file {prompt_file}", false);
        assert_eq!(f[2].level, Level::Warning);
        assert!(f[2].text.contains("600 s"), "{}", f[2].text);
        let f = judge(openclaw::RECOMMENDED_AGENT, true);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(
            f[0].text
                .ends_with("agent exec --timeout 0 --message-file '⟨prompt file⟩'"),
            "{}",
            f[0].text
        );
        assert!(
            f[1].text.contains("known agent (openclaw)") && f[1].text.contains("in a file"),
            "{}",
            f[1].text
        );
    }

    #[test]
    fn an_installed_skill_is_compared_with_this_version() {
        let ours = install_skill::FILES[0].1.to_owned();
        let f = skill_findings(&[(PathBuf::from("/a"), Some(ours))]);
        assert_eq!(f[0].level, Level::Ok);
        let old = "---\nname: agent-step-sequencer\nversion: 1.0.3\n---\nold".to_owned();
        let f = skill_findings(&[
            (PathBuf::from("/a"), None),
            (PathBuf::from("/b"), Some(old)),
        ]);
        assert_eq!(f.len(), 1);
        // Another version's instructions are a problem (doctor exits 1), not a remark.
        assert_eq!(f[0].level, Level::Problem);
        assert!(
            f[0].text.contains("(1.0.3; the binaries are"),
            "{}",
            f[0].text
        );
        assert_eq!(f[0].fix.as_deref(), Some("seqctl install-skill /b"));
        let edited = install_skill::FILES[0]
            .1
            .replace("# Step sequencer", "# Mine");
        let f = skill_findings(&[(PathBuf::from("/c"), Some(edited))]);
        assert_eq!(f[0].level, Level::Warning);
        assert!(f[0].text.contains("edited"), "{}", f[0].text);
        let f = skill_findings(&[(PathBuf::from("/a"), None)]);
        assert_eq!(f[0].fix.as_deref(), Some("seqctl install-skill"));
    }

    #[test]
    fn the_python_versions_scripts_left_in_a_skill_folder_are_named() {
        let f = leftover_findings(&[
            (PathBuf::from("/a"), Vec::new()),
            (
                PathBuf::from("/b"),
                vec![
                    "step-sequencer-check.py".into(),
                    "step-sequencer-runner.py".into(),
                ],
            ),
        ]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, Level::Warning);
        assert!(
            f[0].text
                .starts_with("/b/scripts still holds the Python version's step-sequencer-check.py"),
            "{}",
            f[0].text
        );
        assert_eq!(f[0].fix.as_deref(), Some("rm -r /b/scripts"));
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("step-sequencer-check.py"), "").unwrap();
        fs::write(dir.path().join("notes.txt"), "").unwrap();
        assert_eq!(python_scripts(dir.path()), ["step-sequencer-check.py"]);
    }

    #[test]
    fn openclaws_answer_names_the_fix() {
        let info = |v: Value| openclaw_view(&OpenclawAnswer::Info(v));
        assert_eq!(
            info(json!({"name": SKILL, "eligible": true, "disabled": false})).level,
            Level::Ok
        );
        let f = info(json!({"name": SKILL, "eligible": false, "disabled": true}));
        assert_eq!(
            f.fix.as_deref(),
            Some("openclaw config set skills.entries.agent-step-sequencer.enabled true")
        );
        let f = info(json!({"name": SKILL, "eligible": false, "disabled": false,
                            "missing": {"bins": [], "env": ["STEP_AGENT_CMD"]}}));
        assert_eq!(f.level, Level::Problem);
        assert!(
            f.text.contains("variables not set: STEP_AGENT_CMD"),
            "{}",
            f.text
        );
        assert!(f
            .fix
            .unwrap()
            .contains(".env.STEP_AGENT_CMD 'openclaw agent exec"));
        let f = info(json!({"ok": false, "error": {"message": "Skill not found."}}));
        assert_eq!(f.fix.as_deref(), Some("seqctl install-skill"));
        assert_eq!(
            openclaw_view(&OpenclawAnswer::Failed("x".into())).level,
            Level::Warning
        );
    }

    #[test]
    fn skill_versions_are_read_from_metadata_or_the_old_key() {
        assert_eq!(
            skill_version("---\nname: x\nmetadata: {\"version\":\"2.1.0\",\"openclaw\":{}}\n---\n"),
            Some("2.1.0".into())
        );
        assert_eq!(
            skill_version("---\nversion: 1.0.3\n---\n"),
            Some("1.0.3".into())
        );
        assert_eq!(skill_version("no front matter"), None);
    }
}
