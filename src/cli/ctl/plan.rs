//! `seqctl plan`: asks an agent to turn a task into a plan, checks its reply exactly as
//! `seqctl init --plan` checks a plan file, asks again with every problem named while it is not
//! valid (a bounded number of tries), and shows the plan for a person to confirm; with
//! `--write` it writes it as `init` does (never over a plan a runner is working on, over an
//! unfinished one only with `--force`).
//!
//! The agent is one the operator configured (`STEP_AGENT_CMD`, or a named agent from the
//! agents file), checked by the same policy as a step's, and run as a step's try is: in the
//! plan's workspace (so it can look at the files the steps will use), in its own process group,
//! within a time limit, and stopped with its group on Ctrl-C. Its prompt, log and reply go to a
//! private temp folder that is removed at the end: without `--write` (the state file) or
//! `--out` (a plan file to confirm, then give to `seqctl init --plan`) nothing else is written.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

use super::{init, validate as checks, Output};
use crate::cli::config::Config;
use crate::cli::exit::Exit;
use crate::core::planner::{self, Feedback};
use crate::core::verdict::{self, Ending, StopWhy};
use crate::core::AgentRef;
use crate::exec::agents::Agents;
use crate::exec::attempt::{self, Attempt};
use crate::exec::command::AgentCommand;
use crate::exec::signals;
use crate::format::schema::State;
use crate::format::validate::{self, Invalid};
use crate::store::results::{self, RESULT_MAX_BYTES};
use crate::store::safe::Dir;
use crate::store::Store;

/// Tries when `--tries` is not given: one, and two chances to fix what was wrong.
pub const DEFAULT_TRIES: u32 = 3;

/// Bytes of each try's log kept from its start and from its end: the log only serves the
/// failure message (its tail), and goes with the temp folder.
const LOG_BYTES: u64 = 64 << 10;

/// What to plan, and how.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// What the plan is for, in a person's words.
    pub task: &'a str,
    /// A named agent of the operator's agents file; `None`: `STEP_AGENT_CMD`.
    pub agent: Option<&'a str>,
    /// How many times the agent is asked, at most.
    pub tries: u32,
    /// The time limit of one try; `None`: `STEP_TIMEOUT_SECONDS`, as for a step.
    pub timeout: Option<Duration>,
    /// Write the plan to the state file once it is valid.
    pub write: bool,
    /// Save the plan as a plan file here (a new file), for `seqctl init --plan` once a person
    /// has confirmed it.
    pub out: Option<&'a Path>,
    /// Replace a plan that is not DONE (as `init --force`).
    pub force: bool,
}

/// Asks for a plan and shows it (writing it to `path` with `request.write`). Exits 2 when no
/// try gave a valid plan, and 128 + the signal when stopped by one.
pub fn run(path: &Path, request: &Request) -> Result<Output> {
    if request.task.trim().is_empty() {
        bail!("--task is empty: say what the plan is for");
    }
    let config = Config::from_env()?;
    let store = Store::at(path)?;
    let workspace = store.workspace();
    if let Some(out) = request.out {
        refuse_existing(out)?;
    }
    if request.write {
        if let Some(existing) = Store::locate(path)? {
            // Refused now, before the agent's minutes are spent; the write checks again under
            // the lock.
            init::refuse_to_replace(&existing, existing.read(), request.force)?;
        }
    }
    let (agent, label) = match request.agent {
        Some(name) => (
            config.agent_for(&AgentRef::named(name), workspace)?,
            format!("agent `{name}`"),
        ),
        None => (
            config.agent(workspace)?,
            "the agent (STEP_AGENT_CMD)".to_owned(),
        ),
    };
    // The names a plan may use; an agents file that cannot be read offers none (and says why
    // in the warnings, if the plan names agents anyway).
    let known = config.agents(workspace).map_err(|e| format!("{e:#}"));
    let names: Vec<&str> = known
        .as_ref()
        .map(|agents| agents.iter().map(|(name, _)| name).collect())
        .unwrap_or_default();
    let scratch = tempfile::Builder::new()
        .prefix("seqctl-plan-")
        .tempdir()
        .context("cannot make a temp folder for the planner's files")?;
    let dir = Dir::open(scratch.path()).context("cannot open the planner's temp folder")?;
    let asker = Asker {
        agent: &agent,
        label: &label,
        workspace,
        state_file: store.path(),
        timeout: request.timeout.unwrap_or(config.limits.timeout),
        dir: &dir,
        dir_path: scratch.path(),
    };
    signals::install();
    let tries = request.tries.max(1);
    let shown_workspace = workspace.display().to_string();
    // The last reply that was judged, and its problems: what the next prompt sends back.
    let mut rejected: Option<(Vec<String>, String)> = None;
    let mut last_problems = Vec::new();
    for n in 1..=tries {
        if let Some(signal) = signals::received() {
            return Ok(stopped(signal, n - 1));
        }
        eprintln!("seqctl plan: asking {label} for a plan (try {n} of {tries})");
        let feedback = rejected
            .as_ref()
            .map(|(problems, reply)| Feedback { problems, reply });
        let prompt = planner::request(request.task, &shown_workspace, &names, feedback.as_ref());
        let reply = match asker.ask(&prompt, n)? {
            Asked::Stopped(signal) => return Ok(stopped(signal, n)),
            // The agent's failure says nothing about a plan: the next try is asked the same.
            Asked::Failed(why) => {
                eprintln!("seqctl plan: try {n}: {why}");
                last_problems = vec![why];
                continue;
            }
            Asked::Reply(reply) => reply,
        };
        match judge(&reply) {
            Ok(state) => return Ok(planned(path, &state, n, request, &known)),
            Err(problems) => {
                eprintln!(
                    "seqctl plan: try {n}: the reply is not a valid plan ({} problem{})",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                );
                last_problems.clone_from(&problems);
                rejected = Some((problems, reply));
            }
        }
    }
    Ok(no_plan(
        tries,
        &last_problems,
        rejected.as_ref().map(|(_, r)| r.as_str()),
    ))
}

/// Reads a reply as `seqctl init --plan` reads a plan file: the same parse and checks, and
/// every problem found; the JSON may sit in a Markdown fence or among prose.
fn judge(reply: &str) -> Result<State, Vec<String>> {
    if reply.trim().is_empty() {
        return Err(vec!["the reply was empty".to_owned()]);
    }
    let Some(text) = planner::extract(reply) else {
        return Err(vec!["the reply holds no JSON object".to_owned()]);
    };
    // Parsed from the text, not from a serde_json::Value: a key written twice is refused, as
    // in a file, rather than silently losing its first value.
    let state = validate::parse(text.as_bytes()).map_err(|e| problems(&e))?;
    init::fresh(state, None).map_err(|e| match e.downcast_ref::<Invalid>() {
        Some(invalid) => problems(invalid),
        None => vec![format!("{e:#}")],
    })
}

/// Each problem as `field: problem`, the validator's words.
fn problems(invalid: &Invalid) -> Vec<String> {
    invalid
        .all()
        .map(|p| {
            if p.field.is_empty() {
                p.problem.clone()
            } else {
                format!("{}: {}", p.field, p.problem)
            }
        })
        .collect()
}

/// The plan as a plan file holds it (what `seqctl init --plan` takes): the state without the
/// progress fields a new plan starts with.
fn plan_file(state: &State) -> Value {
    let mut value = serde_json::to_value(state).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for progress in [
            "currentStep",
            "stepRuns",
            "blockers",
            "artifacts",
            "status",
            "planHash",
        ] {
            map.remove(progress);
        }
    }
    value
}

/// What a valid plan prints: the plan, a summary to confirm, warnings, and what was written.
fn planned(
    path: &Path,
    state: &State,
    tries: u32,
    request: &Request,
    known: &Result<Agents, String>,
) -> Output {
    let plan = plan_file(state);
    let mut warnings = checks::warnings(state);
    warnings.extend(checks::unknown_agents(state, known));
    let pretty = serde_json::to_string_pretty(&plan).unwrap_or_default();
    let mut text = format!(
        "{pretty}\n\nThe plan (valid on try {tries}): {}",
        planner::summary(state)
    );
    for warning in &warnings {
        text.push_str("\nwarning: ");
        text.push_str(warning);
    }
    let mut json = json!({
        "plan": plan,
        "written": false,
        "tries": tries,
        "warnings": warnings,
    });
    if let Some(out) = request.out {
        return match save(out, &pretty) {
            Ok(()) => {
                let _ = write!(
                    text,
                    "\n\nsaved to {0}; once it is confirmed, run it with `seqctl init --state {1} \
                     --plan {0}`",
                    out.display(),
                    path.display()
                );
                json["savedTo"] = out.display().to_string().into();
                Output::ok(text, json)
            }
            Err(e) => failed_to_keep(text, json, &e),
        };
    }
    if !request.write {
        text.push_str(
            "\n\nNothing was written. To run this plan, save the JSON above as plan.json and \
             run `seqctl init --plan plan.json` (--out FILE saves it for you; --write writes \
             the state file at once).",
        );
        return Output::ok(text, json);
    }
    match init::write(path, state, request.force) {
        Ok(written) => {
            text.push_str("\n\n");
            text.push_str(&written.text);
            json["written"] = true.into();
            json["stateFile"] = written.json["stateFile"].clone();
            Output::ok(text, json)
        }
        Err(e) => failed_to_keep(text, json, &e),
    }
}

/// A valid plan that could not be written or saved: shown all the same, so the agent's work
/// is not lost, and exit 2.
fn failed_to_keep(mut text: String, mut json: Value, error: &anyhow::Error) -> Output {
    let error = format!("{error:#}");
    text.push_str("\n\nnot written: ");
    text.push_str(&error);
    json["error"] = error.into();
    Output {
        text,
        json,
        code: Exit::Invalid,
    }
}

/// Refuses a plan file that exists: `--out` makes a new file, never replaces one (it might be
/// a state file a runner is working on).
fn refuse_existing(out: &Path) -> Result<()> {
    if out.symlink_metadata().is_ok() {
        bail!(
            "{}: exists; --out saves the plan as a new file (choose another name, or remove it)",
            out.display()
        );
    }
    Ok(())
}

/// Saves the plan file whole or not at all (a temp file beside it, renamed into place), and
/// never over a file that appeared meanwhile.
fn save(out: &Path, pretty: &str) -> Result<()> {
    refuse_existing(out)?;
    let folder = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(folder)
        .with_context(|| format!("{}: cannot write in this folder", folder.display()))?;
    file.write_all(pretty.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("{}: cannot write", out.display()))?;
    file.persist_noclobber(out)
        .map_err(|e| e.error)
        .with_context(|| format!("{}: cannot save the plan", out.display()))?;
    Ok(())
}

/// What no valid plan prints: the last try's problems (exit 2).
fn no_plan(tries: u32, problems: &[String], reply: Option<&str>) -> Output {
    let mut text = format!(
        "no valid plan after {tries} tr{}; nothing was written. The last try's problems:",
        if tries == 1 { "y" } else { "ies" }
    );
    for problem in problems {
        text.push_str("\n- ");
        text.push_str(problem);
    }
    Output {
        text,
        json: json!({
            "plan": Value::Null,
            "written": false,
            "tries": tries,
            "problems": problems,
            "lastReply": reply,
        }),
        code: Exit::Invalid,
    }
}

/// What a signal that stopped the planner prints.
fn stopped(signal: i32, tries: u32) -> Output {
    let name = signals::name(signal);
    Output {
        text: format!("stopped by {name}: the agent was stopped; nothing was written"),
        json: json!({
            "plan": Value::Null,
            "written": false,
            "tries": tries,
            "stopped": name,
        }),
        code: Exit::Signal(signal),
    }
}

/// How one question to the agent ended.
enum Asked {
    /// It exited 0: its whole stdout.
    Reply(String),
    /// It failed (an exit code, a signal, the time limit), and why.
    Failed(String),
    /// A signal to seqctl stopped it.
    Stopped(i32),
}

/// Runs the planner agent, one try at a time, in the temp folder's company.
struct Asker<'a> {
    agent: &'a AgentCommand,
    label: &'a str,
    workspace: &'a Path,
    state_file: &'a Path,
    timeout: Duration,
    dir: &'a Dir,
    dir_path: &'a Path,
}

impl Asker<'_> {
    /// Asks once; an agent that cannot be started at all is an error (asking again would not
    /// help), one that failed is a try used.
    fn ask(&self, prompt: &str, n: u32) -> Result<Asked> {
        let log_name = format!("plan.{n}.log");
        let prompt_name = format!("plan.{n}.prompt");
        let reply_name = format!("plan.{n}.reply");
        let stop = || signals::received().map(StopWhy::Signal);
        let report = attempt::run(
            &Attempt {
                agent: self.agent,
                prompt,
                step: "plan",
                attempt: n,
                workspace: self.workspace,
                state_file: self.state_file,
                timeout: self.timeout,
                logs: self.dir,
                log_name: &log_name,
                prompt_name: &prompt_name,
                prompt_path: &self.dir_path.join(&prompt_name),
                lease_fd: None,
                log_cap: (LOG_BYTES, LOG_BYTES),
                spool: Some((self.dir, &reply_name, RESULT_MAX_BYTES)),
                echo: None,
            },
            |_| {},
            &stop,
        );
        match &report.ending {
            Ending::Stopped {
                why: StopWhy::Signal(signal),
                ..
            } => return Ok(Asked::Stopped(*signal)),
            Ending::NotStarted(why) => bail!("{} did not start: {why}", self.label),
            _ => {}
        }
        if let Err(why) = verdict::verdict(&report.ending, &report.stdout, &report.stderr, &[]) {
            return Ok(Asked::Failed(format!("{} failed: {why}", self.label)));
        }
        match report.spooled {
            Some((total, _)) if total > RESULT_MAX_BYTES => {
                return Ok(Asked::Failed(format!(
                    "the reply is over {} MiB, far more than a plan",
                    RESULT_MAX_BYTES >> 20
                )))
            }
            Some((_, Some(error))) => bail!("cannot keep the agent's reply: {error}"),
            _ => {}
        }
        let reply = results::read(self.dir, &reply_name)
            .context("cannot read the agent's reply back")?
            .unwrap_or_default();
        Ok(Asked::Reply(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str =
        r#"{"plan":{"steps":{"a":{"title":"A","instruction":"do a"}}},"stepQueue":["a"]}"#;

    #[test]
    fn a_reply_is_judged_as_init_judges_a_plan_file_with_every_problem() {
        let state = judge(&format!("Here:\n```json\n{VALID}\n```\n")).unwrap();
        assert_eq!(state.step_queue, ["a"]);
        let problems = judge(
            r#"{"plan":{"steps":{"a":{"instruction":"use {{steps.b.result}}"},"b":{"title":"B"}}},
                "stepQueue":["a","b"]}"#,
        )
        .unwrap_err();
        assert_eq!(
            problems,
            [
                "plan.steps.a.instruction: refers to the result of step `b`, which does not run \
                 before this one",
                "plan.steps.b.instruction: missing or empty: every queued step needs an \
                 instruction"
            ],
            "{problems:?}"
        );
        for (reply, want) in [
            ("", "the reply was empty"),
            ("no plan, sorry", "the reply holds no JSON object"),
            (r#"{"plan":{"steps":{}},"stepQueue":[]}"#, "no steps"),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x","mine":1,"mine":2}}},"stepQueue":["a"]}"#,
                "written twice",
            ),
            ("{\"plan\": ", "EOF"),
        ] {
            let problems = judge(reply).unwrap_err();
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{reply:?}: {problems:?}"
            );
        }
    }

    #[test]
    fn the_plan_file_leaves_out_progress_and_keeps_the_authors_fields() {
        let state = judge(
            r#"{"plan":{"steps":{"a":{"instruction":"x"}},"mine":1},"stepQueue":["a"],"note":"n"}"#,
        )
        .unwrap();
        let plan = plan_file(&state);
        assert_eq!(
            plan,
            json!({
                "plan": {"steps": {"a": {"instruction": "x"}}, "mine": 1},
                "stepQueue": ["a"],
                "stepDelayMinutes": 0,
                "note": "n",
            })
        );
        // It is itself a plan init takes.
        assert!(init::fresh(validate::parse(plan.to_string().as_bytes()).unwrap(), None).is_ok());
    }

    #[test]
    fn agents_the_operator_never_defined_are_warned_about() {
        let state = judge(
            r#"{"plan":{"steps":{"a":{"instruction":"x","agent":"writer","fallbackAgents":["default","ghost"],
                "verify":{"agent":"reviewer"}}},"compressAgent":"ghost"},"stepQueue":["a"]}"#,
        )
        .unwrap();
        let agents = Agents::parse(
            "[agents.writer]\ncommand = 'w'\n[agents.reviewer]\ncommand = 'r'\n",
            Path::new("/etc/agents.toml"),
        )
        .unwrap();
        let warnings = checks::unknown_agents(&state, &Ok(agents));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0]
            .starts_with("plan.compressAgent: no agent named `ghost` in /etc/agents.toml"));
        assert!(warnings[1].starts_with("plan.steps.a.fallbackAgents[1]: no agent named `ghost`"));
        let unreadable = checks::unknown_agents(&state, &Err("bad toml".to_owned()));
        assert_eq!(unreadable.len(), 4, "{unreadable:?}");
        assert!(unreadable[1].ends_with("agent `writer` cannot be checked: bad toml"));
    }
}
