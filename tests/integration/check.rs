//! seq-check and the state engine (issue 2): validation, heartbeats, the detached runner, the
//! lease (in flight, concurrent heartbeats, a killed runner), retries, blockers and delays.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use agent_step_sequencer::format::timefmt;
use serde_json::{json, Value};

use crate::common::{
    assert_interrupted, pid_alive, plan, plan_of, session_of, stamp, Workspace, CHECK,
};

const LONG: Duration = Duration::from_secs(20);

/// An agent that logs `start`/`end` lines with its step, try and a clock, then sleeps `pause`.
fn logging_agent(pause: &str) -> String {
    format!(
        r#"echo "start $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log
sleep {pause}
echo "end $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log"#
    )
}

fn starts(ws: &Workspace) -> Vec<String> {
    ws.lines("events.log")
        .into_iter()
        .filter(|l| l.starts_with("start "))
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn a_missing_state_file_is_no_plan_and_nothing_is_created() {
    let mut ws = Workspace::new();
    ws.agent("exit 0");
    fs::remove_file(ws.path().join("agent.sh")).unwrap();
    for args in [
        &[][..],
        &["--json"],
        &["--quiet"],
        &["--wait"],
        &["other.json"],
    ] {
        let run = ws.check(args);
        run.expect(0);
        // The path looked at is named, so a typo in it shows (issue 13).
        let name = if args == ["other.json"] {
            "other.json"
        } else {
            "state.json"
        };
        let path = format!("{}/{name}", fs::canonicalize(ws.path()).unwrap().display());
        if args == ["--json"] {
            assert_eq!(run.json(), json!({"result": "no_plan", "stateFile": path}));
        } else if args == ["--quiet"] {
            assert_eq!(run.stdout(), "", "{args:?}");
        } else {
            assert_eq!(run.stdout(), format!("no plan at {path}\n"), "{args:?}");
        }
        assert_eq!(run.stderr(), "", "{args:?}");
        assert_eq!(ws.listing(), "", "{args:?} created files");
    }
    ws.runner(&[]).expect(0);
    assert_eq!(ws.listing(), "", "seq-runner created files");
}

#[test]
fn a_done_plan_is_not_touched_and_its_summary_lists_the_artifacts() {
    let mut ws = Workspace::with_state(
        &plan_of(
            &[
                ("a", json!({"instruction": "x"})),
                ("b", json!({"instruction": "y"})),
            ],
            &json!({"currentStep": 2, "status": "DONE", "artifacts": ["a.md", "b.md"]}),
        )
        .to_string(),
    );
    ws.agent("exit 0").set("STEP_RUNNER", "/bin/false");
    let before = ws.bytes();
    ws.check(&[])
        .expect(0)
        .stdout_has("nothing to do: the plan is done");
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "done");
    assert_eq!(beat["artifacts"], json!(["a.md", "b.md"]));
    assert_eq!(ws.bytes(), before, "a DONE plan was rewritten");
    assert!(ws.check(&["--quiet"]).expect(0).stdout().is_empty());
    ws.runner(&[]).expect(0);
    assert_eq!(ws.bytes(), before, "seq-runner rewrote a DONE plan");
}

#[test]
fn a_plan_finished_since_the_last_heartbeat_is_reported_once_with_its_artifacts() {
    let mut ws = Workspace::with_state(
        &plan_of(
            &[("a", json!({"instruction": "x"}))],
            &json!({"currentStep": 1, "status": "DONE", "artifacts": ["a.md", "b.md"],
                    "lastHeartbeatIso": "2026-01-01T00:00:00Z", "finishedIso": "2026-01-01T00:01:00Z"}),
        )
        .to_string(),
    );
    ws.agent("exit 0").set("STEP_RUNNER", "/bin/false");
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "done");
    assert_eq!(beat["newlyDone"], true);
    assert_eq!(beat["artifacts"], json!(["a.md", "b.md"]));
    let settled = ws.bytes();
    ws.check(&[])
        .expect(0)
        .stdout_has("nothing to do: the plan is done");
    assert_eq!(ws.bytes(), settled, "a reported plan was rewritten");

    // Exactly once: the report is recorded (`finishReported`), so setting the heartbeat
    // back (a clock stepped back, a hand edit) does not tell the user again.
    assert_eq!(ws.state()["finishReported"], true);
    let mut ws = Workspace::with_state(&String::from_utf8(settled).unwrap().replace(
        &ws.state()["lastHeartbeatIso"].as_str().unwrap().to_string(),
        "2026-01-01T00:00:00Z",
    ));
    ws.agent("exit 0");
    ws.check(&[])
        .expect(0)
        .stdout_has("nothing to do: the plan is done");
}

#[test]
fn current_step_past_the_end_finishes_the_plan_with_a_summary() {
    let mut ws = Workspace::with_state(
        &plan_of(
            &[("a", json!({"instruction": "x"}))],
            &json!({"currentStep": 1, "artifacts": ["out.md"]}),
        )
        .to_string(),
    );
    ws.agent("exit 0").set("STEP_RUNNER", "/bin/false");
    ws.check(&[])
        .expect(0)
        .stdout_has("done: its one step finished; artifacts: out.md");
    let state = ws.state();
    assert_eq!(state["status"], "DONE");
    assert!(state["lastHeartbeatIso"].is_string(), "{state}");
}

/// Invalid state files: (what, bytes, words the message must hold).
fn invalid_states() -> Vec<(&'static str, Vec<u8>, Vec<&'static str>)> {
    vec![
        ("empty", Vec::new(), vec!["empty"]),
        ("blank", b" \n\t\n".to_vec(), vec!["empty"]),
        (
            "non-UTF-8",
            b"{\"plan\": {\"steps\": {}}, \"x\": \"\xff\xfe\"}".to_vec(),
            vec!["UTF-8"],
        ),
        (
            "bad JSON",
            b"{\n  \"plan\": {,\n}".to_vec(),
            vec!["line 2 column"],
        ),
        (
            "unknown queue id",
            br#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a","zz"]}"#.to_vec(),
            vec!["stepQueue[1]", "zz"],
        ),
        (
            "queued twice",
            br#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a","a"]}"#.to_vec(),
            vec!["stepQueue[1]", "twice"],
        ),
        (
            "duplicate step id",
            br#"{"plan":{"steps":{"a":{"instruction":"x"},"a":{"instruction":"y"}}},"stepQueue":["a"]}"#
                .to_vec(),
            vec!["plan.steps", "`a`", "twice"],
        ),
        (
            "currentStep out of range",
            br#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"currentStep":2}"#
                .to_vec(),
            vec!["currentStep"],
        ),
        (
            "negative currentStep",
            br#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"currentStep":-1}"#
                .to_vec(),
            vec!["currentStep"],
        ),
        (
            "wrong type",
            br#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"stepRuns":{"a":{"tries":"3"}}}"#
                .to_vec(),
            vec!["stepRuns.a.tries"],
        ),
        (
            "empty instruction",
            br#"{"plan":{"steps":{"a":{"instruction":""}}},"stepQueue":["a"]}"#.to_vec(),
            vec!["plan.steps.a", "instruction"],
        ),
        (
            "negative delay",
            br#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"stepDelayMinutes":-1}"#
                .to_vec(),
            vec!["stepDelayMinutes"],
        ),
    ]
}

#[test]
fn an_invalid_state_file_exits_2_naming_file_and_field_and_is_left_byte_for_byte() {
    for (what, bytes, words) in invalid_states() {
        let mut ws = Workspace::new();
        fs::write(ws.state_path(), &bytes).unwrap();
        ws.agent("echo ran >> ran.log");
        for (binary, args) in [
            ("seq-check", &[][..]),
            ("seq-check", &["--wait"][..]),
            ("seq-runner", &[][..]),
        ] {
            let run = if binary == "seq-check" {
                ws.check(args)
            } else {
                ws.runner(args)
            };
            run.expect(2).stderr_has("state.json");
            for word in &words {
                run.stderr_has(word);
            }
            assert!(run.stdout().is_empty(), "{what}: {}", run.stdout());
            ws.assert_untouched(&bytes, &format!("{what} ({binary} {args:?})"));
        }
        let beat = ws.check(&["--json"]).expect(2).json();
        assert_eq!(beat["result"], "error", "{what}");
        assert!(beat["error"].as_str().unwrap().contains(words[0]), "{what}");
        ws.assert_untouched(&bytes, what);
        assert!(!ws.path().join("ran.log").exists(), "{what}: an agent ran");
    }
}

#[test]
fn a_directory_or_a_device_as_state_file_exits_2_and_creates_nothing() {
    let mut ws = Workspace::new();
    ws.agent("exit 0");
    fs::create_dir(ws.state_path()).unwrap();
    ws.check(&[])
        .expect(2)
        .stderr_has("state.json: is a directory");
    ws.runner(&[]).expect(2).stderr_has("is a directory");
    assert!(!ws.sidecar().exists());
    ws.check(&["/dev/null"])
        .expect(2)
        .stderr_has("/dev/null: is not a regular file");
}

#[test]
fn bad_usage_exits_2() {
    let ws = Workspace::new();
    ws.check(&["--bogus"]).expect(2);
    ws.check(&["--json", "--quiet"]).expect(2);
    ws.runner(&["a.json", "b.json"]).expect(2);
    let help = ws.check(&["--help"]);
    help.expect(0)
        .stdout_has("Exit codes:")
        .stdout_has("1  the plan is blocked");
    ws.runner(&["--help"]).expect(0).stdout_has("Exit codes:");
}

#[test]
fn the_heartbeat_is_recorded_each_time() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("exit 0").set("STEP_RUNNER", "/bin/true");
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    ws.check(&[]).expect(0);
    let first = ws.state()["lastHeartbeatIso"]
        .as_str()
        .expect("lastHeartbeatIso")
        .to_owned();
    let first_time = timefmt::parse(&first).expect("an ISO time");
    assert!(
        first_time >= before && first_time <= chrono::Utc::now(),
        "{first}"
    );
    std::thread::sleep(Duration::from_millis(20));
    ws.check(&["--quiet"]).expect(0);
    let second = ws.state()["lastHeartbeatIso"].as_str().unwrap().to_owned();
    assert!(
        timefmt::parse(&second).unwrap() > first_time,
        "{first} then {second}"
    );
}

#[test]
fn json_and_quiet_report_every_outcome_with_the_right_exit_code() {
    // started (the runner is a stand-in that does nothing)
    let mut ws = Workspace::with_state(&plan(2, ""));
    ws.agent("exit 0").set("STEP_RUNNER", "/bin/true");
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "started", "{beat}");
    assert_eq!(beat["step"], "s1");
    assert_eq!(beat["attempt"], 1);
    assert!(beat["pid"].as_u64().unwrap() > 0, "{beat}");
    let run = ws.check(&[]);
    run.expect(0)
        .stdout_has("started: step s1 try 1 (seq-runner pid ");
    assert!(ws.check(&["--quiet"]).expect(0).stdout().is_empty());

    // waiting: s1 just finished and the delay is a minute
    let now = timefmt::format(chrono::Utc::now());
    let mut state: Value = serde_json::from_str(&plan(2, r#""stepDelayMinutes": 1,"#)).unwrap();
    state["stepRuns"]["s1"] = json!({"status": "DONE", "tries": 1, "lastRunIso": now});
    ws.set_state(&state);
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "waiting", "{beat}");
    assert_eq!(beat["step"], "s2");
    let until = timefmt::parse(beat["until"].as_str().unwrap()).unwrap();
    let expected = timefmt::parse(&now).unwrap() + chrono::Duration::minutes(1);
    assert_eq!(until, expected);
    ws.check(&[]).expect(0).stdout_has(&format!(
        "waiting: step s2 is due at {}",
        beat["until"].as_str().unwrap()
    ));
    assert_eq!(ws.state()["currentStep"], 1);

    // blocked
    let mut state: Value = serde_json::from_str(&plan(1, "")).unwrap();
    state["stepRuns"]["s1"] = json!({"status": "FAILED", "tries": 3, "error": "boom"});
    ws.set_state(&state);
    let beat = ws.check(&["--json"]).expect(1).json();
    assert_eq!(beat["result"], "blocked", "{beat}");
    assert_eq!(beat["step"], "s1");
    assert_eq!(beat["attempt"], 3);
    assert_eq!(beat["error"], "boom");
    ws.check(&[])
        .expect(1)
        .stdout_has("blocked: step s1 failed 3 tries; last error: boom");
    assert!(ws.check(&["--quiet"]).expect(1).stdout().is_empty());
    // For a command automation a blocker is news, delivered with exit 0: a non-zero exit
    // would make OpenClaw's scheduler back the job off and, after 10, disable it.
    let run = ws.check(&["--no-reply"]);
    run.expect(0)
        .stdout_has("blocked: step s1 failed 3 tries; last error: boom");
    assert!(!run.stdout().contains("NO_REPLY"), "{}", run.stdout());

    // paused
    let mut state: Value = serde_json::from_str(&plan(1, r#""paused": true,"#)).unwrap();
    state["stepRuns"] = json!({});
    ws.set_state(&state);
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "paused", "{beat}");
    ws.check(&[]).expect(0).stdout_has("paused:");

    // an interrupted try shows among the changes
    let mut state: Value = serde_json::from_str(&plan(1, "")).unwrap();
    state["stepRuns"]["s1"] = json!({"status": "IN_PROGRESS", "tries": 1});
    ws.set_state(&state);
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "started", "{beat}");
    assert_eq!(beat["attempt"], 2);
    assert!(
        beat["changes"][0]
            .as_str()
            .unwrap()
            .starts_with("interrupted: step s1 try 1"),
        "{beat}"
    );

    // errors: exit 2, and --quiet still prints the error
    ws.write("state.json", "{");
    let run = ws.check(&["--quiet"]);
    run.expect(2).stderr_has("seq-check: ");
    assert!(run.stdout().is_empty());
}

#[test]
fn the_check_returns_at_once_and_the_runner_runs_detached_in_its_own_session() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("echo $$ > agent.pid; sleep 1.5; echo finished > finished.txt");
    let started = Instant::now();
    let beat = ws.check(&["--json"]).expect(0).json();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "seq-check took {took:?}");
    assert_eq!(beat["result"], "started", "{beat}");
    let runner = beat["pid"].as_u64().unwrap();
    let agent: u64 = ws.wait_file("agent.pid", LONG).trim().parse().unwrap();
    // The check has exited; the runner and the agent go on.
    assert!(pid_alive(runner), "the runner died with its check");
    assert!(pid_alive(agent));
    assert!(!ws.path().join("finished.txt").exists());
    assert_eq!(ws.state()["stepRuns"]["s1"]["status"], "IN_PROGRESS");
    // Its own session (setsid: it leads it), not ours; stdin closed.
    let ours = session_of(u64::from(std::process::id()));
    let theirs = session_of(runner);
    assert_ne!(theirs, ours, "the runner shares the test's session");
    assert_eq!(
        theirs, runner as i64,
        "the runner does not lead its own session"
    );
    assert_eq!(
        fs::read_link(format!("/proc/{runner}/fd/0")).unwrap(),
        Path::new("/dev/null")
    );
    ws.wait_done(LONG);
    ws.wait_pid(runner, LONG);
    assert_eq!(ws.read("finished.txt"), "finished\n");
    assert!(
        ws.read("state.json.seq/runner.log")
            .contains("step s1: try 1 DONE"),
        "runner.log: {}",
        ws.read("state.json.seq/runner.log")
    );
}

#[test]
fn step_runner_is_honoured_and_a_missing_runner_changes_nothing() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    let fake = ws.script(
        "fake-runner",
        r#"echo "$@" > "$(dirname "$1")/runner-args""#,
    );
    ws.agent("exit 0")
        .set("STEP_RUNNER", &fake.display().to_string());
    ws.check(&[]).expect(0).stdout_has("started: step s1 try 1");
    let args = ws.wait_file("runner-args", LONG);
    assert_eq!(
        Path::new(args.trim()),
        fs::canonicalize(ws.state_path()).unwrap()
    );

    // STEP_RUNNER pointing nowhere: exit 2 and the file as it was, even with an interrupted
    // try the check would otherwise record.
    let mut ws = Workspace::new();
    ws.agent("exit 0");
    let mut state: Value = serde_json::from_str(&plan(1, "")).unwrap();
    state["stepRuns"]["s1"] = json!({"status": "IN_PROGRESS", "tries": 1});
    ws.set_state(&state);
    let before = ws.bytes();
    ws.set("STEP_RUNNER", &ws.path().join("nope").display().to_string());
    ws.check(&[]).expect(2).stderr_has("STEP_RUNNER");
    ws.assert_untouched(&before, "STEP_RUNNER missing");
    ws.write("not-executable", "#!/bin/sh\n");
    ws.set(
        "STEP_RUNNER",
        &ws.path().join("not-executable").display().to_string(),
    );
    ws.check(&[]).expect(2).stderr_has("not an executable file");
    ws.assert_untouched(&before, "STEP_RUNNER not executable");

    // No STEP_RUNNER: the seq-runner beside seq-check; a lone seq-check says so.
    let lone = tempfile::tempdir().unwrap();
    let check = lone.path().join("seq-check");
    fs::copy(CHECK, &check).unwrap();
    ws.env.retain(|(name, _)| name != "STEP_RUNNER");
    let run = ws.run(check.to_str().unwrap(), &[]);
    run.expect(2).stderr_has("the runner beside seq-check");
    ws.assert_untouched(&before, "no seq-runner beside seq-check");
    // `--wait` runs the steps itself and never starts a runner: a missing one is no matter.
    ws.run(check.to_str().unwrap(), &["--wait"]).expect(0);
    assert_eq!(ws.state()["status"], "DONE");
    ws.set_state(&state);
    ws.set("STEP_RUNNER", "/no/such/runner");
    ws.check(&["--wait"]).expect(0);
    assert_eq!(ws.state()["status"], "DONE");
}

#[test]
fn while_a_step_is_in_flight_a_check_changes_nothing_but_the_heartbeat() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent(&logging_agent("1.2"));
    let beat = ws.check(&["--json"]).expect(0).json();
    let runner = beat["pid"].as_u64().unwrap();
    ws.wait_file("events.log", LONG);
    let before = ws.state();
    let since = before["stepRuns"]["s1"]["startedIso"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_millis(5));

    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(
        beat,
        json!({"result": "in_flight", "step": "s1", "attempt": 1, "since": since, "pid": runner})
    );
    let run = ws.check(&[]);
    run.expect(0).stdout_has(&format!(
        "in flight: step s1 try 1 since {since} (runner pid {runner})"
    ));
    let mut after = ws.state();
    assert_ne!(after["lastHeartbeatIso"], before["lastHeartbeatIso"]);
    after["lastHeartbeatIso"] = before["lastHeartbeatIso"].clone();
    assert_eq!(
        after, before,
        "an in-flight check changed more than the heartbeat"
    );

    ws.wait_done(LONG);
    ws.wait_idle(LONG);
    assert_eq!(starts(&ws), ["start s1 1"], "a second agent ran");
}

#[test]
fn sixteen_concurrent_heartbeats_run_each_step_exactly_once_never_overlapping() {
    let mut ws = Workspace::with_state(&plan(5, ""));
    ws.agent(
        r#"exec 9>>overlap.lock
if ! flock -n 9; then echo "OVERLAP $STEP_ID" >> events.log; exit 1; fi
echo "start $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log
sleep 0.15
echo "end $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log"#,
    );
    let mut started = 0;
    for wave in 0..2 {
        if wave == 1 {
            // The second wave lands while the runner is mid-plan.
            ws.wait_for(LONG, "s3 to start", |s| {
                s["currentStep"].as_u64() >= Some(2)
            });
        }
        let checks: Vec<_> = (0..16).map(|_| ws.spawn(CHECK, &["--json"])).collect();
        for check in checks {
            let run = check.finish(&ws);
            let beat = run.expect(0).json();
            let result = beat["result"].as_str().unwrap();
            assert!(
                ["started", "in_flight", "waiting", "done"].contains(&result),
                "{beat}"
            );
            started += usize::from(result == "started");
        }
    }
    ws.wait_done(LONG);
    ws.wait_idle(LONG);
    let events = ws.lines("events.log");
    assert!(
        !events.iter().any(|l| l.starts_with("OVERLAP")),
        "agents overlapped: {events:#?}"
    );
    assert_eq!(
        starts(&ws),
        [
            "start s1 1",
            "start s2 1",
            "start s3 1",
            "start s4 1",
            "start s5 1"
        ],
        "{events:#?}"
    );
    // Strictly alternating start/end: no agent began before the previous one ended.
    for (i, line) in events.iter().enumerate() {
        let kind = if i % 2 == 0 { "start " } else { "end " };
        assert!(line.starts_with(kind), "{events:#?}");
        if i > 0 {
            assert!(stamp(line) >= stamp(&events[i - 1]), "{events:#?}");
        }
    }
    let state = ws.state();
    for i in 1..=5 {
        assert_eq!(state["stepRuns"][format!("s{i}")]["tries"], 1, "{state}");
    }
    // One runner for the whole plan: at most the check, one runner and the agent are alive.
    assert_eq!(started, 1, "{started} of 32 checks started a runner");
}

#[test]
fn a_sigkilled_runner_takes_its_agent_along_and_the_try_is_retried_as_interrupted() {
    let mut ws = Workspace::with_state(&plan(3, ""));
    ws.agent(
        r#"echo "start $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log
if [ "$STEP_ID" = s2 ] && [ "$STEP_ATTEMPT" = 1 ]; then echo $$ > agent.pid; exec sleep 30; fi"#,
    );
    let beat = ws.check(&["--json"]).expect(0).json();
    let runner = beat["pid"].as_u64().unwrap();
    let agent: u64 = ws.wait_file("agent.pid", LONG).trim().parse().unwrap();
    // The note names the step once the runner has heard from the try's thread that its agent
    // runs: a moment after the agent has started, not before.
    let deadline = Instant::now() + LONG;
    let note = loop {
        let note: Value = serde_json::from_slice(&fs::read(ws.sidecar().join("lease")).unwrap())
            .unwrap_or_default();
        if note["step"] == "s2" || Instant::now() > deadline {
            break note;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(note["pid"], runner, "the lease names another runner");
    assert_eq!(note["step"], "s2", "{note}");
    assert!(pid_alive(agent));

    // SAFETY: a plain kill(2) of the runner this test started.
    assert_eq!(unsafe { libc::kill(runner as i32, libc::SIGKILL) }, 0);
    ws.wait_pid(runner, LONG);
    ws.wait_pid(agent, Duration::from_secs(5)); // PR_SET_PDEATHSIG
    ws.wait_idle(Duration::from_secs(5));
    assert_eq!(ws.state()["stepRuns"]["s2"]["status"], "IN_PROGRESS");

    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "started", "{beat}");
    assert_eq!(beat["step"], "s2");
    assert_eq!(beat["attempt"], 2);
    let state = ws.wait_done(LONG);
    let run = &state["stepRuns"]["s2"];
    assert_eq!(run["tries"], 2, "{run}");
    assert!(
        beat["changes"][0]
            .as_str()
            .is_some_and(|c| c.starts_with("interrupted: step s2 try 1")),
        "{beat}"
    );
    assert_eq!(run["status"], "DONE");
    // The error of the interrupted try stays on record, as the Python version kept errors.
    assert!(
        run["error"].as_str().unwrap().starts_with("interrupted"),
        "{run}"
    );
    assert_eq!(
        starts(&ws),
        ["start s1 1", "start s2 1", "start s2 2", "start s3 1"],
        "the killed step ran more than once more"
    );
}

/// An agent that opens files of its own on the descriptors shell scripts use (`exec 9>lock`
/// is flock(1)'s own idiom) must not close the try lease it inherited: it would then look dead
/// to a heartbeat the moment its runner died, and a second try would start beside it. Here
/// the runner is SIGKILLed while a straggler of the agent (a subshell it left) still runs.
#[test]
fn an_agent_using_descriptors_3_to_9_keeps_its_try_lease_after_its_runner_dies() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent(
        r#"exec 3>>own 4>>own 5>>own 6>>own 7>>own 8>>own 9>>own
(
echo "start $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log
sleep 1
echo "end $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log
)"#,
    );
    let beat = ws.check(&["--json"]).expect(0).json();
    let runner = beat["pid"].as_u64().unwrap();
    ws.wait_file_has("events.log", "start s1 1", LONG);
    // SAFETY: a plain kill(2) of the runner this test started.
    assert_eq!(unsafe { libc::kill(runner as i32, libc::SIGKILL) }, 0);
    ws.wait_pid(runner, LONG);
    // The straggler still runs: the try is alive, and nothing starts beside it.
    let beat = ws.check(&["--json"]).expect(0).json();
    assert!(
        !ws.read("events.log").contains("end s1 1"),
        "the straggler ended before the heartbeat: the test proves nothing"
    );
    assert_eq!(beat["result"], "in_flight", "{beat}");
    ws.wait_idle(LONG);
    // Once it has ended, the try counts as interrupted and runs again.
    ws.check(&["--wait"]).expect(0);
    let events = ws.lines("events.log");
    assert_eq!(starts(&ws), ["start s1 1", "start s1 2"], "{events:#?}");
    assert!(
        stamp(&events[1]) <= stamp(&events[2]),
        "try 2 started before try 1 ended: {events:#?}"
    );
    let run = &ws.state()["stepRuns"]["s1"];
    assert_eq!(run["status"], "DONE", "{run}");
    assert_eq!(run["tries"], 2, "{run}");
}

#[test]
fn the_interrupted_try_is_recorded_as_a_failure_saying_so() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("exit 0").set("STEP_RUNNER", "/bin/true");
    let mut state: Value = serde_json::from_str(&plan(1, "")).unwrap();
    state["stepRuns"]["s1"] =
        json!({"status": "IN_PROGRESS", "tries": 1, "lastRunIso": "2020-01-01T00:00:00"});
    ws.set_state(&state);
    ws.check(&[])
        .expect(0)
        .stdout_has("interrupted: step s1 try 1");
    assert_interrupted(&ws.state()["stepRuns"]["s1"], 1);
}

#[test]
fn a_failing_step_is_retried_with_the_troubleshoot_prompt_and_blocked_once() {
    let mut ws = Workspace::with_state(&plan(2, ""));
    ws.agent(
        r#"printf '%s' "$1" > "prompt.$STEP_ATTEMPT"
echo "oops $STEP_ATTEMPT" >&2
exit 3"#,
    );
    let run = ws.check(&["--wait"]);
    run.expect(1)
        .stdout_has("blocked: step s1 failed 3 tries; last error: exit code 3: oops 3");
    assert_eq!(ws.read("prompt.1"), "do s1");
    for tries in [1, 2] {
        assert_eq!(
            ws.read(&format!("prompt.{}", tries + 1)),
            format!(
                "Step s1 failed (tries: {tries}). Previous run ended with: exit code 3: oops {tries}. \
                 Please troubleshoot and retry: do s1"
            )
        );
    }
    assert!(!ws.path().join("prompt.4").exists(), "a fourth try ran");
    let state = ws.state();
    assert_eq!(state["blockers"], json!(["s1: max retries (3) exceeded"]));
    assert_eq!(state["stepRuns"]["s1"]["status"], "FAILED");
    // Further heartbeats: still blocked, the blocker not repeated, nothing run.
    let before = ws.state();
    for _ in 0..2 {
        ws.check(&[])
            .expect(1)
            .stdout_has("blocked: step s1 failed 3 tries");
    }
    ws.runner(&[]).expect(1);
    let mut after = ws.state();
    after["lastHeartbeatIso"] = before["lastHeartbeatIso"].clone();
    assert_eq!(after, before);
    assert!(!ws.path().join("prompt.4").exists());

    // A person resets the step by hand: it runs again, from its plain instruction.
    let mut state = ws.state();
    state["stepRuns"]["s1"]["status"] = json!("PENDING");
    state["stepRuns"]["s1"]["tries"] = json!(0);
    ws.set_state(&state);
    ws.agent(r#"printf '%s' "$1" > "ok.$STEP_ID""#);
    ws.check(&["--wait"])
        .expect(0)
        .stdout_has("done: all 2 steps finished");
    assert_eq!(ws.read("ok.s1"), "do s1");
    assert_eq!(ws.state()["stepRuns"]["s1"]["tries"], 1);
}

#[test]
fn step_max_retries_and_a_steps_max_retries_bound_the_tries() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent(r#"echo "try $STEP_ATTEMPT" >> tries.log; exit 1"#)
        .set("STEP_MAX_RETRIES", "2");
    ws.runner(&[]).expect(1);
    assert_eq!(ws.lines("tries.log"), ["try 1", "try 2"]);
    assert_eq!(
        ws.state()["blockers"],
        json!(["s1: max retries (2) exceeded"])
    );

    let mut ws = Workspace::with_state(
        &plan_of(
            &[("a", json!({"instruction": "x", "maxRetries": 1}))],
            &json!({}),
        )
        .to_string(),
    );
    ws.agent(r#"echo "try $STEP_ATTEMPT" >> tries.log; exit 1"#)
        .set("STEP_MAX_RETRIES", "5");
    ws.check(&["--wait"])
        .expect(1)
        .stdout_has("blocked: step a failed 1 try");
    assert_eq!(ws.lines("tries.log"), ["try 1"]);
    assert_eq!(
        ws.state()["blockers"],
        json!(["a: max retries (1) exceeded"])
    );

    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("exit 0").set("STEP_MAX_RETRIES", "zero");
    let before = ws.bytes();
    ws.check(&[]).expect(2).stderr_has("STEP_MAX_RETRIES");
    ws.assert_untouched(&before, "bad STEP_MAX_RETRIES");
}

#[test]
fn step_delay_minutes_is_honoured_between_steps_and_before_retries() {
    // 0.02 minutes = 1.2 s. s1 fails once, then succeeds; s2 succeeds.
    let mut ws = Workspace::with_state(&plan(2, r#""stepDelayMinutes": 0.02,"#));
    ws.agent(
        r#"echo "start $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log
if [ "$STEP_ID" = s1 ] && [ "$STEP_ATTEMPT" = 1 ]; then echo "end $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log; exit 1; fi
echo "end $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log"#,
    );
    let started = Instant::now();
    ws.check(&["--wait"])
        .expect(0)
        .stdout_has("done: all 2 steps finished");
    assert!(started.elapsed() >= Duration::from_millis(2400));
    let events = ws.lines("events.log");
    assert_eq!(events.len(), 6, "{events:#?}");
    for pair in [(1, 2), (3, 4)] {
        let gap = stamp(&events[pair.1]) - stamp(&events[pair.0]);
        assert!(
            gap >= 1_200_000_000,
            "only {} ms between `{}` and `{}`",
            gap / 1_000_000,
            events[pair.0],
            events[pair.1]
        );
    }
}

#[test]
fn retries_are_immediate_when_the_delay_is_zero() {
    let mut ws = Workspace::with_state(&plan(1, r#""stepDelayMinutes": 0,"#));
    ws.agent(
        r#"echo "start $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log
[ "$STEP_ATTEMPT" = 3 ]"#,
    );
    let started = Instant::now();
    ws.runner(&[]).expect(0);
    assert!(started.elapsed() < Duration::from_secs(3));
    let events = ws.lines("events.log");
    assert_eq!(events.len(), 3, "{events:#?}");
    for pair in events.windows(2) {
        let gap = stamp(&pair[1]) - stamp(&pair[0]);
        assert!(gap < 800_000_000, "{} ms between retries", gap / 1_000_000);
    }
}

#[test]
fn the_detached_runner_sleeps_through_the_delay_itself() {
    // No further heartbeat needed: the runner started by one check finishes the plan.
    let mut ws = Workspace::with_state(&plan(2, r#""stepDelayMinutes": 0.01,"#));
    ws.agent(&logging_agent("0"));
    ws.check(&[]).expect(0).stdout_has("started: step s1 try 1");
    let state = ws.wait_done(LONG);
    assert_eq!(state["currentStep"], 2);
    assert_eq!(starts(&ws), ["start s1 1", "start s2 1"]);
}

#[test]
fn wait_ends_blocked_with_exit_1() {
    let mut ws = Workspace::with_state(&plan(2, r#""stepDelayMinutes": 0.005,"#));
    ws.agent("echo nope >&2; exit 4")
        .set("STEP_MAX_RETRIES", "2");
    let started = Instant::now();
    ws.check(&["--wait"])
        .expect(1)
        .stdout_has("blocked: step s1 failed 2 tries; last error: exit code 4: nope");
    // One delay (0.3 s) before the retry.
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn a_process_that_outlives_a_killed_runner_is_reported_and_its_try_retried_after_it() {
    // The runner is SIGKILLed; its agent dies with it, but a `sleep` the agent started keeps the
    // inherited lease. The heartbeat must say so (not name the dead runner), start nothing, and
    // once the straggler ends record the try as interrupted and go on.
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent(
        r#"if [ "$STEP_ATTEMPT" = 1 ]; then sleep 5 & touch started; wait; fi
exit 0"#,
    );
    let beat = ws.check(&["--json"]).expect(0).json();
    let runner = beat["pid"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ws.path().join("started").exists() {
        assert!(
            Instant::now() < deadline,
            "the agent never started\n{}",
            ws.listing()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill of the runner this test started.
    assert_eq!(unsafe { libc::kill(runner as i32, libc::SIGKILL) }, 0);
    ws.wait_pid(runner, Duration::from_secs(10));
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "in_flight", "{beat}");
    assert_eq!(beat["runnerGone"], true, "{beat}");
    assert!(beat.get("pid").is_none(), "a dead runner was named: {beat}");
    ws.check(&[])
        .expect(0)
        .stdout_has("its runner has exited, and a process it started still holds the plan");
    ws.wait_idle(Duration::from_secs(10));
    ws.check(&["--wait"])
        .expect(0)
        .stdout_has("done: its one step finished");
    let run = &ws.state()["stepRuns"]["s1"];
    assert_eq!(run["tries"], 2, "{run}");
}

#[test]
fn no_reply_stays_silent_without_news_and_puts_errors_where_the_automation_delivers_them() {
    let mut ws = Workspace::with_state(&plan(1, r#""paused": true,"#));
    ws.agent("exit 0");
    let run = ws.check(&["--no-reply"]);
    assert_eq!(run.expect(0).stdout().trim(), "NO_REPLY");
    // A broken file: exit 2 (the job's error is a real one), and the message on stdout too.
    ws.write("state.json", "{ not json");
    let before = ws.bytes();
    ws.check(&["--no-reply"])
        .expect(2)
        .stdout_has("seq-check: ")
        .stdout_has("invalid state")
        .stderr_has("invalid state");
    ws.assert_untouched(&before, "seq-check --no-reply on a broken file");
}

/// On a big plan a runner holds, a heartbeat's look is one line in the journal beside
/// state.json, not a rewrite of the whole file: the tools see it at once, and the runner's
/// next save folds it into state.json.
#[test]
fn a_heartbeat_beside_a_runner_on_a_big_plan_notes_its_look_and_the_runner_keeps_it() {
    let steps: Vec<(String, Value)> = (1..=300)
        .map(|i| {
            (
                format!("s{i}"),
                json!({"instruction": format!("do step {i}: {}", "x".repeat(200))}),
            )
        })
        .collect();
    let steps: Vec<(&str, Value)> = steps
        .iter()
        .map(|(id, v)| (id.as_str(), v.clone()))
        .collect();
    let mut ws = Workspace::with_state(&crate::common::plan_of(&steps, &json!({})).to_string());
    ws.agent(r#"if [ "$STEP_ID" = s1 ]; then while [ ! -f go ]; do sleep 0.02; done; fi"#);
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "started", "{beat}");
    ws.wait_for(LONG, "s1 in flight", |s| {
        s["stepRuns"]["s1"]["status"] == "IN_PROGRESS"
    });
    std::thread::sleep(Duration::from_millis(100)); // the runner's catch-up save is done
    let file = ws.bytes();
    assert!(
        file.len() > 64 << 10,
        "the plan must be big: {} bytes",
        file.len()
    );
    let before = ws.state()["lastHeartbeatIso"].clone();
    std::thread::sleep(Duration::from_millis(5));

    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "in_flight", "{beat}");
    assert_eq!(ws.bytes(), file, "the heartbeat rewrote state.json");
    assert!(ws.sidecar().join("journal.jsonl").exists());
    let looked = ws.state()["lastHeartbeatIso"].clone();
    assert_ne!(looked, before, "the look is not in the state");

    ws.write("go", "");
    let state = ws.wait_for(LONG, "the plan done", |s| s["status"] == "DONE");
    assert!(!ws.sidecar().join("journal.jsonl").exists());
    let file: Value = serde_json::from_slice(&ws.bytes()).unwrap();
    assert_eq!(
        file["lastHeartbeatIso"], looked,
        "the runner dropped the heartbeat's look"
    );
    assert_eq!(state["stepRuns"]["s300"]["status"], "DONE");
}
