//! The main path against a real OpenClaw gateway, wired the way README.md says: the skill
//! installed with `seqctl install-skill`, `STEP_AGENT_CMD` given through OpenClaw's config, the
//! heartbeat's scratch holding the documented line. A real heartbeat turn makes the agent run
//! `seq-check` with its own exec tool; the runner hands each step to `openclaw agent exec`; the
//! plan ends DONE. Then the command automation: the documented `cron add`, run for a plan to
//! its end, and a plan whose agent always fails, which the job reports without ever failing.
//!
//! One gateway serves every step (it takes 10-20 s to start), so this is one test with labelled
//! steps; on failure it prints the step, the model's requests, the gateway's output and the
//! plans' files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::docs::DocCommands;
use crate::fake_model::{FakeModel, Reply, Turn};
use crate::gateway::Gateway;
use crate::home::{free_port, Home};
use crate::http::{Response, Server};
use crate::process::{self, tail};
use crate::tools::Tools;

/// The agent command the docs recommend.
const AGENT_EXEC: &str = "openclaw agent exec --timeout 0 --message-file {prompt_file}";
/// What OpenClaw puts before the heartbeat's scratch in a heartbeat turn's prompt.
const SCRATCH: &str = "Heartbeat monitor scratch:";
/// The heartbeat's first move: show what the exec tool's environment holds.
const ENV_PROBE: &str = "env | grep -E '^(OPENCLAW_SHELL|STEP_AGENT_CMD)=' | sort";
/// One job run; a heartbeat turn (two exec calls and three model answers) takes 3-10 s.
const TURN_LIMIT: Duration = Duration::from_secs(180);
/// Three steps of about 10 s each (one `openclaw agent exec` turn), with room for a slow machine.
const PLAN_LIMIT: Duration = Duration::from_secs(300);

/// The fake model's part: what an agent following the skill does, reduced to the moves the test
/// needs. In a heartbeat turn: look at the exec tool's environment, run the command the scratch
/// names, then answer NO_REPLY. In a step's turn ("Write the word W to F"): write the file with
/// the exec tool, then say so.
fn agent(turn: &Turn) -> Reply {
    if let Some(at) = turn.last_user_message_with(SCRATCH) {
        return match turn.tool_results_after(at).len() {
            0 => Reply::Exec(ENV_PROBE.into()),
            1 => scratch_command(&Turn::text(&turn.messages()[at])).map_or_else(
                || Reply::Text("the fake agent cannot read the heartbeat scratch".into()),
                Reply::Exec,
            ),
            _ => Reply::Text("NO_REPLY".into()),
        };
    }
    if let Some((word, file)) = write_instruction(&turn.user_text()) {
        return if turn.tool_results_after(0).is_empty() {
            Reply::Exec(format!("printf '%s\\n' {word} > {file}"))
        } else {
            Reply::Text(format!("Wrote {file}."))
        };
    }
    Reply::Text("NO_REPLY".into())
}

/// "Run <command> and act on its output ..." in the scratch: the command.
fn scratch_command(prompt: &str) -> Option<String> {
    let scratch = prompt.split_once(SCRATCH)?.1;
    let line = scratch
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Run "))?;
    let (command, _) = line["Run ".len()..].split_once(" and act on its output")?;
    Some(command.to_owned())
}

/// "Write the word <word> to <file>" in a step's prompt.
fn write_instruction(text: &str) -> Option<(String, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words.windows(6).find_map(|w| match w {
        ["Write", "the", "word", word, "to", file] => {
            Some(((*word).to_owned(), file.trim_end_matches('.').to_owned()))
        }
        _ => None,
    })
}

/// Everything the test started, and what to print when it fails. Fields drop in order: the
/// gateway first, then the HOME (which stops what the gateway left running), then the servers.
struct Scene {
    gateway: Option<Gateway>,
    home: Home,
    model: FakeModel,
    hooks: Server,
    step: String,
    step_started: Instant,
    timings: Vec<(String, Duration)>,
}

impl Scene {
    fn step(&mut self, label: &str) {
        self.lap();
        eprintln!("openclaw e2e: {label}");
        label.clone_into(&mut self.step);
        self.step_started = Instant::now();
    }

    fn lap(&mut self) {
        if !self.step.is_empty() {
            let step = std::mem::take(&mut self.step);
            self.timings.push((step, self.step_started.elapsed()));
        }
    }

    fn workspace_state(&self) -> PathBuf {
        self.home.workspace().join("state.json")
    }

    fn blocked_state(&self) -> PathBuf {
        self.home.path().join("blocked/state.json")
    }

    /// `openclaw cron run <job> --wait`: one run, to its end; the run's record. A run the
    /// scheduler skipped because OpenClaw was busy with other work ("requests-in-flight") is
    /// asked for again, up to 10 times.
    fn run_job(&self, job: &str) -> Value {
        for _ in 0..10 {
            let out = process::run(
                self.home
                    .command("openclaw")
                    .args(["cron", "run", job, "--wait", "--poll-interval", "500ms"])
                    .args(["--wait-timeout", &format!("{}s", TURN_LIMIT.as_secs())]),
                TURN_LIMIT + Duration::from_secs(30),
            );
            let result = out.json();
            assert_eq!(
                result["completed"],
                true,
                "the run did not complete:\n{}",
                out.describe()
            );
            let busy = result["status"] == "skipped"
                && result["run"]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("requests-in-flight"));
            if !busy {
                return result;
            }
            thread::sleep(Duration::from_secs(1));
        }
        panic!("OpenClaw stayed busy: job {job} was skipped 10 times");
    }

    /// Waits until the webhook receiver got a POST to `path` whose body contains `text`.
    fn wait_for_webhook(&self, path: &str, text: &str) {
        wait_until(
            &format!("{text:?} at the webhook {path}"),
            Duration::from_secs(30),
            || {
                self.hooks
                    .requests()
                    .iter()
                    .any(|r| r.path == path && r.body.contains(text))
                    .then_some(())
            },
        );
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if !thread::panicking() {
            return;
        }
        eprintln!("\n==== the OpenClaw e2e test failed during: {}", self.step);
        eprintln!(
            "==== the fake model's requests (system prompts left out)\n{}",
            self.model.log()
        );
        eprintln!("==== webhook requests\n{:#?}", self.hooks.requests());
        let refused = fs::read_to_string(self.home.network_log()).unwrap_or_default();
        eprintln!("==== names OpenClaw tried to resolve (refused)\n{refused}");
        if let Some(gateway) = &self.gateway {
            eprintln!("==== gateway output (tail)\n{}", gateway.log_tail());
        }
        for state in [self.workspace_state(), self.blocked_state()] {
            let sidecar = state.with_file_name("state.json.seq");
            for file in [
                state,
                sidecar.join("runner.log"),
                sidecar.join("events.jsonl"),
            ] {
                if let Ok(text) = fs::read_to_string(&file) {
                    eprintln!("==== {}\n{}", file.display(), tail(&text, 6000));
                }
            }
        }
    }
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Polls `probe` every 250 ms until it gives a value; panics after `limit`.
fn wait_until<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "waited {} s for {what}",
            limit.as_secs()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// The plan in `state` once its status is `status`.
fn wait_for_status(state: &Path, status: &str, limit: Duration) -> Value {
    wait_until(
        &format!("{} to be {status}", state.display()),
        limit,
        || {
            let plan: Value = serde_json::from_str(&fs::read_to_string(state).ok()?).ok()?;
            (plan["status"] == status).then_some(plan)
        },
    )
}

/// What a command job's run printed (OpenClaw keeps it as the run's diagnostic summary).
fn output(run: &Value) -> &str {
    run["run"]["diagnostics"]["summary"]
        .as_str()
        .unwrap_or_default()
}

/// The job whose `name` is `name` in `openclaw cron list --all --json`.
fn listed_job(home: &Home, name: &str) -> Value {
    let list = home.openclaw_json(&["cron", "list", "--all", "--json"]);
    list["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no job named {name} in {list:#}"))
}

/// The commands of the docs' OpenClaw sections.
struct Docs {
    readme: DocCommands,
    skill_md: DocCommands,
}

impl Docs {
    fn read() -> Self {
        Self {
            readme: DocCommands::read("README.md", "Install and wire into OpenClaw"),
            skill_md: DocCommands::read("skill/SKILL.md", "Wire the heartbeat"),
        }
    }

    /// README's command starting with `prefix`, which SKILL.md must give word for word too.
    fn shared(&self, prefix: &str) -> String {
        let line = self.readme.find(prefix);
        assert_eq!(
            self.skill_md.find(prefix),
            line,
            "README and SKILL.md differ"
        );
        line
    }
}

#[test]
fn the_readme_wiring_carries_plans_through_a_real_gateway() {
    let Some(tools) = Tools::find("the OpenClaw gateway test") else {
        return;
    };
    let docs = Docs::read();
    let home = Home::new(&tools);
    let model = FakeModel::start(agent);
    home.write_config(free_port(), &model);
    let mut s = Scene {
        gateway: None,
        home,
        model,
        hooks: Server::start(|_| Response::text(200, "ok")),
        step: String::new(),
        step_started: Instant::now(),
        timings: Vec::new(),
    };
    let started = Instant::now();
    install_and_configure(&mut s, &docs);
    s.step("start openclaw gateway run");
    s.gateway = Some(Gateway::start(&s.home));
    let heartbeat = check_the_setup(&mut s, &docs);
    a_heartbeat_carries_a_plan_to_done(&mut s, &docs, &heartbeat);
    the_documented_automation_carries_a_plan(&mut s, &docs);
    an_automation_reports_a_blocker_and_stays_healthy(&mut s);
    s.lap();
    eprintln!("openclaw e2e timings:");
    if let Some(gateway) = &s.gateway {
        eprintln!(
            "  gateway ready after {:.1} s",
            gateway.started_in.as_secs_f64()
        );
    }
    for (step, took) in &s.timings {
        eprintln!("  {:6.1} s  {step}", took.as_secs_f64());
    }
    eprintln!("  {:6.1} s  in all", started.elapsed().as_secs_f64());
    let refused = fs::read_to_string(s.home.network_log()).unwrap_or_default();
    eprintln!("names OpenClaw tried to resolve (refused: loopback only):\n{refused}");
}

/// README steps 2 and 3: the skill, and its agent command through the config.
fn install_and_configure(s: &mut Scene, docs: &Docs) {
    s.step("README: install the skill with seqctl install-skill");
    s.home.sh(&docs.readme.find("seqctl install-skill")).ok();
    let installed = s.home.path().join(".openclaw/skills/agent-step-sequencer");
    let repo_skill = Path::new(env!("CARGO_MANIFEST_DIR")).join("skill");
    for file in ["SKILL.md", "references/state-schema.md"] {
        assert_eq!(
            fs::read_to_string(installed.join(file)).ok(),
            fs::read_to_string(repo_skill.join(file)).ok(),
            "seqctl install-skill should write this version's {file}"
        );
    }

    s.step("README: give the skill STEP_AGENT_CMD through the config");
    let prefix = "openclaw config set skills.entries.agent-step-sequencer.env";
    let config_set = docs.readme.find(prefix);
    assert_eq!(
        DocCommands::read("skill/SKILL.md", "Install").find(prefix),
        config_set,
        "README and SKILL.md give different config commands"
    );
    s.home.sh(&config_set).ok();
    let config = read_json(&s.home.path().join(".openclaw/openclaw.json"));
    assert_eq!(
        config["skills"]["entries"]["agent-step-sequencer"]["env"]["STEP_AGENT_CMD"], AGENT_EXEC,
        "the config should hold the recommended agent command"
    );
}

/// README step 4 and the heartbeat's job id, with the gateway running; the id.
fn check_the_setup(s: &mut Scene, docs: &Docs) -> String {
    s.step("(a) README: openclaw skills info says Ready");
    let info = s
        .home
        .sh(&docs
            .readme
            .find("openclaw skills info agent-step-sequencer"))
        .ok();
    assert!(
        info.stdout.contains("✓ Ready"),
        "not Ready:\n{}",
        info.describe()
    );
    let info = s
        .home
        .openclaw_json(&["skills", "info", "agent-step-sequencer", "--json"]);
    assert_eq!(info["eligible"], true, "not eligible: {info:#}");
    assert_eq!(info["disabled"], false, "disabled: {info:#}");
    assert_eq!(info["source"], "openclaw-managed", "{info:#}");

    s.step("README: seqctl doctor");
    let doctor = s.home.sh(&docs.readme.find("seqctl doctor"));
    for verdict in [
        "binaries:",
        "skill:",
        "openclaw: OpenClaw sees the skill as ready",
    ] {
        assert!(
            doctor
                .stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(verdict)),
            "seqctl doctor should find `{verdict}` ok after the README's steps:\n{}",
            doctor.describe()
        );
    }

    s.step("README: the heartbeat's job id from openclaw cron list --all");
    let list = s
        .home
        .sh(&docs.readme.find("openclaw cron list --all"))
        .ok();
    let heartbeat = list
        .stdout
        .lines()
        .find(|l| l.contains("Heartbeat (main)"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no Heartbeat (main) row:\n{}", list.describe()))
        .to_owned();
    let job = listed_job(&s.home, "heartbeat-main");
    assert_eq!(job["id"], heartbeat.as_str(), "{job:#}");
    heartbeat
}

/// The main path: the documented scratch line, a real heartbeat turn, the agent's exec tool
/// running seq-check, the runner giving each step to `openclaw agent exec`, DONE.
fn a_heartbeat_carries_a_plan_to_done(s: &mut Scene, docs: &Docs, heartbeat: &str) {
    s.step("(b) write a three-step plan as SKILL.md shows");
    // The agent writes its plan from a turn, when OpenClaw has made the workspace; a fresh
    // gateway has not made it yet.
    fs::create_dir_all(s.home.workspace()).expect("the workspace");
    s.home
        .sh(
            "seqctl init --state ~/.openclaw/workspace/state.json --delay-minutes 0 \
             --step 'Alpha: Write the word alpha to alpha.txt' \
             --step 'Beta: Write the word beta to beta.txt' \
             --step 'Gamma: Write the word gamma to gamma.txt'",
        )
        .ok();

    s.step("README: put the heartbeat line in the heartbeat's scratch");
    let scratch_set = docs.shared("openclaw cron scratch <jobId> --set");
    s.home.sh(&scratch_set.replace("<jobId>", heartbeat)).ok();
    let line = scratch_set
        .split_once("--set \"")
        .and_then(|(_, rest)| rest.strip_suffix('"'))
        .expect("the scratch line in double quotes");
    let scratch = s.home.openclaw(&["cron", "scratch", heartbeat]).ok();
    assert_eq!(
        scratch.stdout.trim(),
        line,
        "the scratch should hold the line"
    );

    s.step("(b) a heartbeat turn: the agent's exec tool runs seq-check");
    let run = s.run_job(heartbeat);
    assert_eq!(run["status"], "ok", "{run:#}");
    let turns = s.model.turns();
    let (beat, results) = turns
        .iter()
        .filter_map(|t| Some((t, t.tool_results_after(t.last_user_message_with(SCRATCH)?))))
        .max_by_key(|(_, results)| results.len())
        .expect("no heartbeat turn reached the model");
    let at = beat
        .last_user_message_with(SCRATCH)
        .expect("the heartbeat prompt");
    let prompt = Turn::text(&beat.messages()[at]);
    assert!(
        prompt.contains(&format!("{SCRATCH}\n{line}")),
        "the scratch is not in: {prompt}"
    );
    assert!(
        results.len() >= 2,
        "the heartbeat turn did not run both commands: {results:#?}"
    );
    assert!(
        results[0].contains("OPENCLAW_SHELL=exec"),
        "the exec tool should mark what it starts: {results:#?}"
    );
    assert!(
        results[0].contains(&format!("STEP_AGENT_CMD={AGENT_EXEC}")),
        "the exec tool should get STEP_AGENT_CMD from skills.entries...env: {results:#?}"
    );
    assert!(
        results[1].starts_with("started: step step-1 try 1"),
        "seq-check should start the first step: {results:#?}"
    );

    s.step("(b) the runner carries the plan to DONE through openclaw agent exec");
    let plan = wait_for_status(&s.workspace_state(), "DONE", PLAN_LIMIT);
    let mut sessions = vec![beat.runtime("sessionId")];
    for (id, word) in [("step-1", "alpha"), ("step-2", "beta"), ("step-3", "gamma")] {
        let run = &plan["stepRuns"][id];
        assert_eq!(run["status"], "DONE", "{id}: {plan:#}");
        assert_eq!(run["tries"], 1, "{id} should be done in one try: {plan:#}");
        let instruction = format!("Write the word {word} to {word}.txt");
        let turns = s.model.turns();
        let step_turn = turns
            .iter()
            .find(|t| t.user_text().contains(&instruction))
            .unwrap_or_else(|| panic!("{id}'s instruction never reached the model"));
        assert_eq!(
            step_turn.runtime("shell").as_deref(),
            Some("exec"),
            "{id}'s agent should run under the exec marker it inherited from seq-check"
        );
        let session = step_turn.runtime("sessionId");
        assert!(
            session.is_some() && !sessions.contains(&session),
            "{id} should be a fresh isolated turn, not {session:?} (heartbeat, then steps: \
             {sessions:?})"
        );
        sessions.push(session);
        let written = fs::read_to_string(s.home.workspace().join(format!("{word}.txt")));
        assert_eq!(
            written.ok().as_deref(),
            Some(&*format!("{word}\n")),
            "{id}'s file"
        );
    }

    s.step("(b) the next heartbeat tells the agent the plan is done");
    s.run_job(heartbeat);
    let done = s.model.turns().iter().rev().find_map(|t| {
        let at = t.last_user_message_with(SCRATCH)?;
        t.tool_results_after(at)
            .into_iter()
            .find(|r| r.starts_with("done:"))
    });
    assert!(
        done.is_some_and(|d| d.starts_with("done: all 3 steps finished")),
        "the heartbeat after the last step should report the plan done"
    );
}

/// The documented `cron add`, word for word, run for a one-step plan with the real agent.
fn the_documented_automation_carries_a_plan(s: &mut Scene, docs: &Docs) {
    s.step("(g) README: the command automation, as documented");
    let state = s.workspace_state();
    let cron_add = docs.shared("openclaw cron add");
    let job = s
        .home
        .sh(&cron_add
            .replace("/home/you", &s.home.path().to_string_lossy())
            .replace("<channel id>", "telegram")
            .replace("<destination>", "123456789"))
        .ok()
        .json();
    let id = job["id"].as_str().expect("the job's id").to_owned();
    assert_eq!(job["enabled"], true, "{job:#}");
    assert_eq!(
        job["payload"]["argv"],
        serde_json::json!(["seq-check", "--no-reply", state]),
        "{job:#}"
    );
    assert_eq!(job["delivery"]["mode"], "announce", "{job:#}");

    s.step("(g) the documented job runs a plan to its end (delivery swapped for a webhook)");
    // No chat channel exists here; only the delivery route changes, the documented command and
    // its environment stay as they are.
    let hook = format!("{}/done", s.hooks.url());
    s.home
        .openclaw(&["cron", "edit", &id, "--webhook", &hook])
        .ok();
    s.home
        .sh("seqctl init --state ~/.openclaw/workspace/state.json \
             --step 'Delta: Write the word delta to delta.txt'")
        .ok();
    let first = s.run_job(&id);
    assert!(
        first["status"] == "ok" && output(&first) == "NO_REPLY",
        "the documented job should start the plan quietly: {first:#}"
    );
    let plan = wait_for_status(&state, "DONE", PLAN_LIMIT);
    assert_eq!(plan["stepRuns"]["step-1"]["tries"], 1, "{plan:#}");
    let second = s.run_job(&id);
    assert!(
        output(&second).starts_with("done: its one step finished"),
        "{second:#}"
    );
    s.wait_for_webhook("/done", "done: its one step finished");
    s.home.openclaw(&["cron", "rm", &id]).ok();
}

/// A plan whose agent always fails, checked by a command automation: the blocker is the run's
/// output, delivered, and the run is no error (so no back-off, no disabling).
fn an_automation_reports_a_blocker_and_stays_healthy(s: &mut Scene) {
    s.step("(d) cron add without --name fails, as the README warns");
    let blocked = s.blocked_state();
    fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    let agent = s.home.path().join("failing-agent");
    fs::write(
        &agent,
        "#!/bin/sh\necho 'the agent failed on purpose' >&2\nexit 3\n",
    )
    .unwrap();
    fs::set_permissions(&agent, fs::Permissions::from_mode(0o755)).unwrap();
    process::run(
        s.home
            .command("seqctl")
            .args(["init", "--state"])
            .arg(&blocked)
            .args(["--step", "Doomed: Write the word never to never.txt"]),
        Duration::from_secs(30),
    )
    .ok();
    let argv = serde_json::json!(["seq-check", "--no-reply", blocked]).to_string();
    let agent_env = format!("STEP_AGENT_CMD={}", agent.display());
    let hook = format!("{}/blocked", s.hooks.url());
    let job_args = [
        "--command-argv",
        &argv,
        "--command-env",
        &agent_env,
        "--command-env",
        "STEP_MAX_RETRIES=2",
        "--webhook",
        &hook,
    ];
    let nameless = s
        .home
        .openclaw(&[&["cron", "add", "*/5 * * * *"][..], &job_args].concat());
    assert!(
        !nameless.status.success() && nameless.stdout.contains("name is required"),
        "cron add without a name should fail:\n{}",
        nameless.describe()
    );

    s.step("(d) a blocked plan: the job reports it and stays healthy");
    let named = [
        &["cron", "add", "*/5 * * * *", "--name", "step-sequencer"][..],
        &job_args,
    ];
    let job = s.home.openclaw_json(&named.concat());
    let id = job["id"].as_str().expect("the job's id").to_owned();
    let first = s.run_job(&id);
    assert_eq!(first["status"], "ok", "{first:#}");
    wait_until("the plan to be blocked", Duration::from_secs(60), || {
        let plan = read_json(&blocked);
        plan["blockers"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
            .then_some(())
    });
    let second = s.run_job(&id);
    assert_eq!(
        second["status"], "ok",
        "a blocked plan must not be an error run: {second:#}"
    );
    assert!(
        output(&second).starts_with("blocked: step step-1 failed 2 tries"),
        "the run's output should be the blocker: {second:#}"
    );
    s.wait_for_webhook("/blocked", "blocked: step step-1 failed 2 tries");
    let job = listed_job(&s.home, "step-sequencer");
    assert_eq!(job["enabled"], true, "{job:#}");
    assert_eq!(job["status"], "ok", "{job:#}");
    assert_eq!(job["state"]["lastRunStatus"], "ok", "{job:#}");
    assert!(
        job["state"]["consecutiveErrors"].as_u64().unwrap_or(0) == 0,
        "no errors, so no back-off and no disabling: {job:#}"
    );
}
