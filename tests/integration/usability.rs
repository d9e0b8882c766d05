//! What a new user meets first (issue 13): a wrong path, a fresh home, honest summaries,
//! typos, the configuration, the help and the small words. Each test fails on the code before
//! its fix.

use std::fs;
use std::time::{Duration, Instant};

use crate::common::{plan, Workspace, CHECK, RUNNER, SEQCTL};

#[test]
fn each_binary_names_itself_in_its_version_line() {
    let ws = Workspace::new();
    let version = env!("CARGO_PKG_VERSION");
    for (program, name) in [
        (CHECK, "seq-check"),
        (RUNNER, "seq-runner"),
        (SEQCTL, "seqctl"),
    ] {
        let run = ws.run(program, &["--version"]);
        assert_eq!(run.expect(0).stdout(), format!("{name} {version}\n"));
    }
}

#[test]
fn help_takes_help_like_every_command() {
    let ws = Workspace::new();
    ws.seqctl(&["help", "--help"])
        .expect(0)
        .stdout_has("Print this help, or the help of the given command");
    ws.seqctl(&["help", "retry"])
        .expect(0)
        .stdout_has("Clear a step's blocker");
    ws.seqctl(&["help"]).expect(0).stdout_has("Commands:");
    ws.seqctl(&["help", "nosuch"])
        .expect(2)
        .stderr_has("no command `nosuch`");
}

#[test]
fn counts_read_in_the_right_number() {
    let mut ws = Workspace::new();
    ws.agent("echo no >&2; exit 3").set("STEP_MAX_RETRIES", "1");
    ws.seqctl(&["init", "--step", "Only: do the one thing"])
        .expect(0)
        .stdout_has(": 1 step (step-1)");
    ws.seqctl(&["validate", "state.json"])
        .expect(0)
        .stdout_has("valid: 1 step\n");
    ws.check(&["--wait"])
        .expect(1)
        .stdout_has("blocked: step step-1 failed 1 try; last error");
}

#[test]
fn a_step_reset_by_retry_shows_no_old_times() {
    let mut ws = Workspace::new();
    ws.agent("echo no >&2; exit 3").set("STEP_MAX_RETRIES", "1");
    ws.seqctl(&["init", "--step", "Only: do the one thing"])
        .expect(0);
    ws.check(&["--wait"]).expect(1);
    ws.seqctl(&["retry", "step-1"]).expect(0);
    let status = ws.seqctl(&["status"]).expect(0).stdout();
    let row = status
        .lines()
        .find(|l| l.contains("step-1"))
        .unwrap_or_default()
        .to_owned();
    assert!(row.ends_with("PENDING  0      -     -"), "{status}");
}

#[test]
fn a_syntax_error_names_the_object_never_a_question_mark() {
    let ws = Workspace::with_state(
        r#"{"plan":{"steps":{"a":{"instruction":"x"}, }},"stepQueue":["a"]}"#,
    );
    let json = ws
        .seqctl(&["validate", "state.json", "--json"])
        .expect(2)
        .json();
    assert_eq!(json["field"], "plan.steps");
    let run = ws.check(&["--json"]);
    assert!(!run.expect(2).stdout().contains(".?"), "{}", run.stdout());
}

#[test]
fn a_license_file_backs_the_manifests_license() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("license = \"MIT\""));
    let license = fs::read_to_string(root.join("LICENSE")).expect("a LICENSE file");
    assert!(license.starts_with("MIT License"), "{license}");
}

#[test]
fn a_state_path_that_cannot_be_right_is_an_error_and_a_missing_file_is_named() {
    let mut ws = Workspace::new();
    let here = fs::canonicalize(ws.path()).unwrap();
    ws.check(&["nosuch.json"])
        .expect(0)
        .stdout_has(&format!("no plan at {}/nosuch.json\n", here.display()));
    let json = ws.check(&["--json", "nosuch.json"]).expect(0).json();
    assert_eq!(json["result"], "no_plan");
    assert_eq!(json["stateFile"], format!("{}/nosuch.json", here.display()));
    ws.check(&["--no-reply", "nosuch.json"])
        .expect(0)
        .stdout_has("NO_REPLY");
    for program in [CHECK, RUNNER] {
        ws.run(program, &["/no/such/dir/state.json"])
            .expect(2)
            .stderr_has("/no/such/dir/state.json: no such folder /no/such/dir");
    }
    ws.runner(&["nosuch.json"])
        .expect(0)
        .stdout_has("no plan at");
    ws.check(&["--no-reply", "/no/such/dir/state.json"])
        .expect(2)
        .stdout_has("no such folder");
    // What an automation's --command-argv passes: no shell expanded anything.
    ws.set("HOME", &here.display().to_string()).agent("exit 0");
    ws.seqctl(&["init", "--step", "A: do a"]).expect(0);
    ws.check(&["--json", "~/state.json"])
        .expect(0)
        .stdout_has("\"result\":\"started\"");
    ws.check(&["$HOME/state.json"])
        .expect(2)
        .stderr_has("no shell expanded");
}

#[test]
fn init_makes_the_workspace_folder_on_a_fresh_home() {
    let mut ws = Workspace::new();
    let home = ws.path().join("home");
    ws.set("HOME", &home.display().to_string());
    // SKILL.md's own line, as an OpenClaw exec tool (or a shell) runs it on a new machine.
    ws.seqctl(&[
        "init",
        "--state",
        "~/.openclaw/workspace/state.json",
        "--step",
        "Research: write notes.md",
    ])
    .expect(0)
    .stdout_has("created ");
    assert!(home.join(".openclaw/workspace/state.json").is_file());
    ws.seqctl(&["init", "--state", "$HOME/x/state.json", "--step", "A: a"])
        .expect(2)
        .stderr_has("no shell expanded");
}

#[test]
fn every_command_takes_the_state_file_as_an_argument_or_from_step_state() {
    let mut ws = Workspace::new();
    ws.agent("echo done");
    fs::create_dir(ws.path().join("w")).unwrap();
    ws.seqctl(&["init", "w/plan.json", "--step", "A: do a"])
        .expect(0);
    for args in [
        &["status", "w/plan.json"][..],
        &["explain", "w/plan.json"],
        &["validate", "w/plan.json"],
        &["pause", "w/plan.json"],
        &["resume", "w/plan.json"],
        &["edit-step", "step-1", "w/plan.json", "--title", "B"],
        &["add-step", "step-2", "w/plan.json", "--instruction", "do b"],
        &["skip", "step-2", "w/plan.json"],
        &["remove-step", "step-2", "w/plan.json"],
        &["status", "--state", "w/plan.json"],
    ] {
        ws.seqctl(args).expect(0);
    }
    ws.check(&["--wait", "w/plan.json"]).expect(0);
    ws.seqctl(&["events", "w/plan.json"]).expect(0);
    ws.seqctl(&["logs", "step-1", "w/plan.json"])
        .expect(0)
        .stdout_has("done");
    ws.seqctl(&["add-step", "w/plan.json", "--instruction", "x"])
        .expect(2)
        .stderr_has("is a file: add-step takes the new step's id first");
    ws.seqctl(&["status", "w/plan.json", "--state", "w/plan.json"])
        .expect(2);
    // STEP_STATE is the default for all three binaries.
    ws.set("STEP_STATE", "w/plan.json");
    ws.seqctl(&["status"]).expect(0).stdout_has("plan success");
    ws.check(&[])
        .expect(0)
        .stdout_has("nothing to do: the plan is done");
    ws.runner(&[]).expect(0);
    assert!(!ws.path().join("state.json").exists());
}

#[test]
fn skipped_steps_are_never_reported_as_finished() {
    let mut ws = Workspace::with_state(&crate::common::plan(3, ""));
    ws.agent("exit 0");
    ws.seqctl(&["skip", "s2"]).expect(0);
    ws.seqctl(&["skip", "s3"]).expect(0);
    ws.check(&["--wait"])
        .expect(0)
        .stdout_has("done: 1 of 3 steps finished, 2 skipped\n");
    ws.seqctl(&["status"])
        .expect(0)
        .stdout_has("plan success: 1/3 done, 2 skipped");
    ws.seqctl(&["explain"])
        .expect(0)
        .stdout_has("1 of 3 steps finished, 2 skipped");
}

#[test]
fn a_runner_asleep_through_a_delay_is_reported_as_waiting_with_the_due_time() {
    let mut ws = Workspace::with_state(&crate::common::plan(2, r#""stepDelayMinutes": 10,"#));
    ws.agent("exit 0");
    ws.check(&[]).expect(0).stdout_has("started: step s1");
    ws.wait_for(Duration::from_secs(10), "s1 DONE", |s| {
        s["stepRuns"]["s1"]["status"] == "DONE"
    });
    // The runner now sleeps through the delay, holding the plan.
    let deadline = Instant::now() + Duration::from_secs(10);
    let json = loop {
        let json = ws.check(&["--json"]).expect(0).json();
        if json["result"] == "waiting" || Instant::now() > deadline {
            break json;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(json["result"], "waiting", "{json}");
    assert_eq!(json["step"], "s2");
    let until = json["until"].as_str().expect("the due time in --json");
    let pid = ws.lease_note()["pid"].as_u64().unwrap();
    assert_eq!(json["pid"], pid);
    ws.check(&[]).expect(0).stdout_has(&format!(
        "waiting: step s2 is due at {until} (runner pid {pid} waits for it)"
    ));
    // SAFETY: a plain kill of the runner this test started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    ws.wait_pid(pid, Duration::from_secs(10));
}

#[test]
fn no_reply_tells_a_standing_blocker_once_then_daily() {
    let mut ws = Workspace::with_state(&crate::common::plan(1, ""));
    ws.agent("echo boom >&2; exit 3")
        .set("STEP_MAX_RETRIES", "1");
    ws.check(&["--wait"])
        .expect(1)
        .stdout_has("blocked: step s1");
    let first = ws.check(&["--no-reply"]);
    first.expect(0).stdout_has("blocked: step s1 failed 1 try");
    assert!(ws.state()["blockerReportedIso"].is_string());
    for _ in 0..3 {
        assert_eq!(ws.check(&["--no-reply"]).expect(0).stdout(), "NO_REPLY\n");
    }
    // A model-turn heartbeat still sees the blocker every time (exit 1).
    ws.check(&[]).expect(1).stdout_has("blocked: step s1");
    // A day later it is told again.
    let mut state = ws.state();
    state["blockerReportedIso"] = "2020-01-01T00:00:00.000Z".into();
    ws.set_state(&state);
    ws.check(&["--no-reply"])
        .expect(0)
        .stdout_has("blocked: step s1");
    assert_eq!(ws.check(&["--no-reply"]).expect(0).stdout(), "NO_REPLY\n");
    // Retried and blocked again: new news, told at once.
    ws.seqctl(&["retry", "s1"]).expect(0);
    ws.check(&["--wait"]).expect(1);
    ws.check(&["--no-reply"])
        .expect(0)
        .stdout_has("blocked: step s1");
    ws.seqctl(&["validate"]).expect(0);
}

#[test]
fn a_bad_agent_command_is_named_even_when_nothing_is_due() {
    let mut ws = Workspace::with_state(&crate::common::plan(1, ""));
    ws.agent("exit 0");
    ws.check(&["--wait"]).expect(0);
    ws.set("STEP_AGENT_CMD", "bash -c");
    let run = ws.check(&[]);
    run.expect(0)
        .stdout_has("nothing to do: the plan is done")
        .stdout_has("warning: STEP_AGENT_CMD is refused");
    let json = ws.check(&["--json"]).expect(0).json();
    assert!(
        json["configProblem"]
            .as_str()
            .unwrap()
            .contains("STEP_AGENT_CMD"),
        "{json}"
    );
    // Not news for an automation: the heartbeat that would start a step fails loudly.
    assert_eq!(ws.check(&["--no-reply"]).expect(0).stdout(), "NO_REPLY\n");
    // explain no longer promises a start the heartbeat would refuse.
    ws.seqctl(&["add-step", "--instruction", "more"]).expect(0);
    ws.seqctl(&["explain"])
        .expect(0)
        .stdout_has("But it will not start: STEP_AGENT_CMD is refused");
}

#[test]
fn a_misspelt_field_is_named_with_the_one_it_looks_like() {
    let mut ws = Workspace::with_state(
        r#"{"plan":{"steps":{"a":{"instruction":"write a.md","requiredOutput":["a.md"],
            "maxRetry":2,"timeoutSecond":60}}},"stepQueue":["a"],"stepDelayMinute":2}"#,
    );
    ws.agent("exit 0");
    let run = ws.seqctl(&["validate"]);
    for (typo, known) in [
        ("plan.steps.a.requiredOutput", "requiredOutputs"),
        ("plan.steps.a.maxRetry", "maxRetries"),
        ("plan.steps.a.timeoutSecond", "timeoutSeconds"),
        ("stepDelayMinute", "stepDelayMinutes"),
    ] {
        run.expect(0)
            .stdout_has(&format!("warning: {typo}: not a field this version knows"))
            .stdout_has(&format!("did you mean `{known}`?"));
    }
    ws.seqctl(&["doctor"])
        .stdout_has("warning  state: plan.steps.a.requiredOutput: not a field");
    // init, which SKILL.md has agents prefer, says it where the plan is written.
    ws.write("plan.json", &ws.read("state.json"));
    let init = ws.seqctl(&["init", "--plan", "plan.json", "--state", "other.json"]);
    init.expect(0)
        .stdout_has("warning: plan.steps.a.requiredOutput: not a field this version knows")
        .stdout_has("did you mean `requiredOutputs`?");
    let json = ws
        .seqctl(&[
            "init",
            "--plan",
            "plan.json",
            "--state",
            "third.json",
            "--json",
        ])
        .expect(0)
        .json();
    assert_eq!(json["warnings"].as_array().unwrap().len(), 4, "{json}");
    // The heartbeat that starts the plan says so on stderr; later ones stay quiet about it.
    ws.check(&["--wait"])
        .expect(0)
        .stderr_has("seq-check: warning: plan.steps.a.requiredOutput: not a field");
    let later = ws.check(&[]);
    assert!(
        !later.expect(0).stderr().contains("did you mean"),
        "{}",
        later.stderr()
    );
}

#[test]
fn init_steps_take_their_required_outputs() {
    let mut ws = Workspace::new();
    // The agent "succeeds" without writing b.md: the output check must catch it.
    ws.agent("touch a.md").set("STEP_MAX_RETRIES", "1");
    ws.seqctl(&[
        "init",
        "--step",
        "A: write a.md",
        "--outputs",
        "a.md",
        "--step",
        "B: write b.md",
        "--outputs",
        "b.md",
    ])
    .expect(0);
    let state = ws.state();
    assert_eq!(
        state["plan"]["steps"]["step-2"]["requiredOutputs"],
        serde_json::json!(["b.md"])
    );
    ws.check(&["--wait"]).expect(1).stdout_has(
        "blocked: step step-2 failed 1 try; last error: Missing required outputs: b.md",
    );
    ws.seqctl(&["init", "x.json", "--outputs", "a.md", "--step", "A: a"])
        .expect(2)
        .stderr_has("comes before any --step");
}

#[test]
fn doctor_judges_the_agent_where_the_runner_runs_it_and_an_old_skill_is_a_problem() {
    let mut ws = Workspace::with_state(&crate::common::plan(1, ""));
    let home = ws.path().join("home");
    ws.set("HOME", &home.display().to_string());
    ws.script("myagent.sh", "exit 0");
    ws.set("STEP_AGENT_CMD", "./myagent.sh");
    fs::create_dir(ws.path().join("elsewhere")).unwrap();
    // Run from another folder, as an exec tool may: ./myagent.sh is the workspace's.
    let out = std::process::Command::new(SEQCTL)
        .args(["doctor", "../state.json"])
        .current_dir(ws.path().join("elsewhere"))
        .envs(ws.env.iter().map(|(n, v)| (n, v)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok       agent: STEP_AGENT_CMD runs"),
        "{text}"
    );
    // An installed skill of another version: exit 1, with the fix.
    let skill = home.join(".openclaw/skills/agent-step-sequencer");
    fs::create_dir_all(&skill).unwrap();
    fs::write(
        skill.join("SKILL.md"),
        "---\nname: agent-step-sequencer\nversion: 1.0.3\n---\n",
    )
    .unwrap();
    ws.seqctl(&["doctor"])
        .expect(1)
        .stdout_has("problem  skill:")
        .stdout_has("(1.0.3; the binaries are");
}

#[test]
fn completions_and_manual_pages_cover_all_three_programs() {
    let ws = Workspace::new();
    ws.seqctl(&["completions", "bash"])
        .expect(0)
        .stdout_has("_seqctl()")
        .stdout_has("install-skill");
    ws.seqctl(&["completions", "zsh", "seq-check"])
        .expect(0)
        .stdout_has("#compdef seq-check")
        .stdout_has("--no-reply");
    ws.seqctl(&["completions", "fish", "seq-runner"])
        .expect(0)
        .stdout_has("complete -c seq-runner");
    ws.seqctl(&["man"])
        .expect(0)
        .stdout_has(".TH seqctl 1")
        .stdout_has("doctor");
    ws.seqctl(&["man", "seq-check"])
        .expect(0)
        .stdout_has(".TH seq-check 1");
    ws.seqctl(&["completions", "tcsh"]).expect(2);
}

#[test]
fn colour_follows_the_terminal_and_no_color() {
    let mut ws = Workspace::with_state(&crate::common::plan(1, ""));
    // Not a terminal (the tests' pipes): plain text.
    assert!(!ws.seqctl(&["status"]).expect(0).stdout().contains('\u{1b}'));
    assert!(!ws.check(&[]).stdout().contains('\u{1b}'));
    // Forced, as for a pager that shows colour: the status words are coloured.
    ws.set("CLICOLOR_FORCE", "1");
    let status = ws.seqctl(&["status"]).expect(0).stdout();
    assert!(status.contains("\u{1b}["), "{status:?}");
    // JSON never is; NO_COLOR wins over everything.
    assert!(!ws.seqctl(&["status", "--json"]).stdout().contains('\u{1b}'));
    ws.set("NO_COLOR", "1");
    assert!(!ws.seqctl(&["status"]).stdout().contains('\u{1b}'));
}

#[test]
fn wait_streams_the_agents_output_with_v_made_printable() {
    let mut ws = Workspace::with_state(&crate::common::plan(1, ""));
    ws.agent(r"printf 'working on it \033[2J\n'; echo 'a warning' >&2; printf 'no newline'");
    let run = ws.check(&["--wait", "-v"]);
    run.expect(0)
        .stdout_has("[s1] working on it \\u{1b}[2J\n")
        .stdout_has("[s1] a warning\n")
        .stdout_has("[s1] no newline\n")
        .stdout_has("done: its one step finished");
    assert!(!run.stdout().contains('\u{1b}'), "{:?}", run.stdout());
    ws.check(&["-v"]).expect(2).stderr_has("--wait");
}

#[test]
fn wait_on_a_terminal_shows_which_step_runs_and_for_how_long() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` to give seq-check a terminal");
        return;
    }
    let mut ws = Workspace::with_state(&crate::common::plan(1, ""));
    ws.agent("sleep 2").set("NO_COLOR", "1");
    // `script` runs it on a pseudo-terminal and copies what the terminal shows.
    let line = format!("{CHECK} --wait");
    let run = ws.run("script", &["-qec", &line, "/dev/null"]);
    run.expect(0)
        .stdout_has("step s1 try 1: running for 1.0s")
        .stdout_has("done: its one step finished");
}

#[test]
fn logs_from_before_a_retry_are_listed_and_shown() {
    let mut ws = Workspace::with_state(&crate::common::plan(1, ""));
    ws.agent(r#"echo "try $STEP_ATTEMPT of an earlier round"; exit 3"#)
        .set("STEP_MAX_RETRIES", "2");
    ws.check(&["--wait"]).expect(1);
    ws.seqctl(&["retry", "s1"]).expect(0);
    ws.agent(r#"echo "try $STEP_ATTEMPT after the retry""#);
    ws.check(&["--wait"]).expect(0);
    let list = ws.seqctl(&["logs"]).expect(0).stdout();
    let rows: Vec<&str> = list.lines().filter(|l| l.starts_with("s1")).collect();
    assert_eq!(rows.len(), 3, "{list}");
    assert!(
        rows.iter()
            .filter(|r| r.contains("before the retry of"))
            .count()
            == 2,
        "{list}"
    );
    let json = ws
        .seqctl(&["logs", "state.json", "--json"])
        .expect(0)
        .json();
    let kept = json
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["attempt"] == 2)
        .expect("try 2 of the first round is listed");
    ws.seqctl(&["logs", "--file", kept["file"].as_str().unwrap()])
        .expect(0)
        .stdout_has("try 2 of an earlier round");
    ws.seqctl(&["logs", "s1"])
        .expect(0)
        .stdout_has("try 1 after the retry");
    ws.seqctl(&["logs", "--file", "../../state.json"])
        .expect(2)
        .stderr_has("is not the name of a log");
    ws.seqctl(&["logs", "s1", "--attempt", "3"])
        .expect(2)
        .stderr_has("there is no try 3 (no log of one is kept");
}

/// Makes a file look untouched for `days` days.
fn age(path: &std::path::Path, days: u64) {
    let when = std::time::SystemTime::now() - Duration::from_secs(days * 86_400);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn prune_removes_old_logs_and_events_and_never_a_try_in_flight() {
    let mut ws = Workspace::with_state(&crate::common::plan(2, ""));
    ws.agent(r#"echo "output of $STEP_ID""#);
    ws.check(&["--wait"]).expect(0);
    let logs = ws.sidecar().join("logs");
    age(&logs.join("s1.1.log"), 40);
    age(&ws.sidecar().join("events.jsonl"), 40);
    // A try shown in flight keeps its log, however old.
    let mut state = ws.state();
    state["stepRuns"]["s2"]["status"] = "IN_PROGRESS".into();
    state["currentStep"] = 1.into();
    state["status"] = "IN_PROGRESS".into();
    ws.set_state(&state);
    age(&logs.join("s2.1.log"), 40);
    let before = ws.bytes();
    let dry = ws.seqctl(&["prune", "--dry-run"]);
    dry.expect(0).stdout_has("would remove 2 files");
    assert!(logs.join("s1.1.log").exists());
    let json = ws.seqctl(&["prune", "--json"]).expect(0).json();
    let removed: Vec<&str> = json["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 2, "{json}");
    assert!(
        removed.iter().any(|f| f.ends_with("logs/s1.1.log")),
        "{json}"
    );
    assert!(
        removed.iter().any(|f| f.ends_with("events.jsonl")),
        "{json}"
    );
    assert!(!logs.join("s1.1.log").exists());
    assert!(
        logs.join("s2.1.log").exists(),
        "the in-flight try's log stays"
    );
    assert_eq!(ws.bytes(), before, "the state file is not touched");
    ws.seqctl(&["prune", "--older-than", "0"]).expect(2);
}

#[test]
fn a_lone_argument_that_looks_like_a_path_is_the_state_file_not_a_step() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("exit 0");
    for command in ["explain", "logs"] {
        ws.seqctl(&[command, "other/state.json"])
            .expect(2)
            .stderr_has("other/state.json");
        ws.seqctl(&[command, "missing.json"])
            .expect(2)
            .stderr_has("missing.json");
    }
    // A step id is still a step id.
    ws.seqctl(&["explain", "s1"])
        .expect(0)
        .stdout_has("Step s1");
}
