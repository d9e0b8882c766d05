//! The promises kept when the workspace, the clock or the processes around us misbehave
//! (issue "Keep every promise"): each test reproduces an attack or a fault first.

use std::fs;
use std::time::Duration;

use crate::common::{plan, Workspace};
use crate::proof::{detector_agent, AgentLog};

const LONG: Duration = Duration::from_secs(30);

/// Waits until the agent of `step` has started (the detector agent logs it).
fn wait_started(ws: &Workspace, step: &str) {
    ws.wait_file_has("agent.log", &format!("start {step} 1"), LONG);
}

/// Every step ran exactly once, never two agents at once.
fn assert_once_each(ws: &Workspace, steps: &[&str]) {
    let log = AgentLog::read(ws.path());
    assert!(log.overlaps.is_empty(), "agents overlapped:\n{}", log.text);
    for step in steps {
        assert_eq!(
            log.starts.get(*step).map(Vec::as_slice),
            Some(&[1][..]),
            "step {step} must run exactly once:\n{}",
            log.text
        );
        assert_eq!(ws.state()["stepRuns"][step]["tries"], 1, "{step}");
    }
}

#[test]
fn deleting_the_sidecar_under_a_running_step_never_starts_a_second_agent() {
    for victim in ["state.json.seq", "state.json.seq/lease"] {
        let mut ws = Workspace::with_state(&plan(2, ""));
        ws.agent(&detector_agent("2"));
        ws.check(&[]).expect(0).stdout_has("started: step s1 try 1");
        wait_started(&ws, "s1");
        // A person "clearing the logs", or an agent tidying its workspace.
        let path = ws.path().join(victim);
        if path.is_dir() {
            fs::remove_dir_all(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
        for _ in 0..3 {
            ws.check(&[])
                .expect(0)
                .stdout_has("in flight: step s1 try 1");
        }
        ws.wait_done(LONG);
        ws.wait_idle(LONG);
        assert_once_each(&ws, &["s1", "s2"]);
    }
}

#[test]
fn a_runner_whose_lease_was_deleted_while_it_slept_leaves_the_plan_to_the_new_one() {
    // One second between steps: the runner sleeps through it holding the lease.
    let mut ws = Workspace::with_state(&plan(3, r#""stepDelayMinutes": 0.02,"#));
    ws.agent(&detector_agent(""));
    ws.check(&[]).expect(0);
    wait_started(&ws, "s1");
    ws.wait_for(LONG, "s1 done", |s| s["stepRuns"]["s1"]["status"] == "DONE");
    fs::remove_file(ws.path().join("state.json.seq/lease")).unwrap();
    // The lease file is new and free: this heartbeat starts a second runner for the wait.
    ws.check(&[]).expect(0);
    ws.wait_done(LONG);
    ws.wait_idle(LONG);
    assert_once_each(&ws, &["s1", "s2", "s3"]);
}

#[test]
fn links_planted_in_the_sidecar_are_never_written_through_or_printed() {
    let outside = tempfile::tempdir().unwrap();
    let secret = |n: u32| outside.path().join(format!("secret{n}"));
    for n in 1..=6 {
        fs::write(secret(n), format!("secret {n}\n")).unwrap();
    }
    let mut ws = Workspace::with_state(&plan(2, ""));
    let side = ws.sidecar();
    // Step s1's agent plants links where the runner writes next; s2's prints 9 MB, so its log
    // is cut through the `.tail` ring.
    let plant = format!(
        r#"if [ "$STEP_ID" = s1 ]; then
  ln -sf {s1} {side}/logs/s2.1.log
  ln -f {s2} {side}/logs/s2.1.prompt
  ln -sf {s3} {side}/events.jsonl
  ln -f {s4} {side}/runner.log 2>/dev/null || true
  ln -sf {s5} {side}/lease
  ln -sf {s6} {side}/logs/s2.1.log.tail
  echo planted
else
  head -c 9000000 /dev/zero | tr '\0' x
fi"#,
        s1 = secret(1).display(),
        s2 = secret(2).display(),
        s3 = secret(3).display(),
        s4 = secret(4).display(),
        s5 = secret(5).display(),
        s6 = secret(6).display(),
        side = side.display()
    );
    ws.script("agent.sh", &plant);
    let agent = format!("{} {{prompt_file}}", ws.path().join("agent.sh").display());
    ws.set("STEP_AGENT_CMD", &agent);
    ws.check(&["--wait"]).expect(0);
    assert_eq!(ws.state()["status"], "DONE");
    // A heartbeat on the finished plan, and one more run through runner.log and events.
    ws.check(&[]).expect(0);
    for n in 1..=6 {
        assert_eq!(
            fs::read_to_string(secret(n)).unwrap(),
            format!("secret {n}\n"),
            "secret{n} was written through a planted link"
        );
    }
    // The runner made its own files in their place.
    let log = fs::symlink_metadata(side.join("logs/s2.1.log")).unwrap();
    assert!(log.file_type().is_file() && log.len() > 8 << 20, "{log:?}");
    assert!(!fs::symlink_metadata(side.join("events.jsonl"))
        .unwrap()
        .file_type()
        .is_symlink());
    // A log replaced by a link after the fact is not printed.
    fs::remove_file(side.join("logs/s1.1.log")).unwrap();
    std::os::unix::fs::symlink(secret(1), side.join("logs/s1.1.log")).unwrap();
    let run = ws.seqctl(&["logs", "s1"]);
    run.expect(2)
        .stderr_has("is a link or not a file seq-runner wrote");
    assert!(!run.stdout().contains("secret 1"));
    fs::remove_file(side.join("logs/s1.1.log")).unwrap();
    fs::hard_link(secret(1), side.join("logs/s1.1.log")).unwrap();
    assert!(!ws.seqctl(&["logs", "s1"]).stdout().contains("secret 1"));
    fs::remove_file(side.join("events.jsonl")).unwrap();
    std::os::unix::fs::symlink(secret(3), side.join("events.jsonl")).unwrap();
    assert!(!ws.seqctl(&["events"]).stdout().contains("secret 3"));
}

/// Sends `signal` to `pid`.
fn send(pid: u32, signal: libc::c_int) {
    // SAFETY: a plain signal to a process the test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

#[test]
fn cancel_never_signals_a_process_group_named_by_the_agent() {
    // A stranger: a process group of its own that the agent knows the number of.
    let mut stranger = std::process::Command::new("setsid")
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let stranger_pid = stranger.id();
    let mut ws = Workspace::with_state(&plan(1, ""));
    let forge = format!(
        r#"sleep 60 &
echo $! > child.pid
sleep 0.3
printf '{{"pid":%d,"since":"x","step":"s1","attempt":1,"agentPgid":{stranger_pid}}}' $$ > state.json.seq/lease
echo forged > forged
sleep 60"#
    );
    ws.agent(&forge);
    ws.check(&[]).expect(0).stdout_has("started: step s1");
    ws.wait_file("forged", LONG);
    let child: u32 = ws.read("child.pid").trim().parse().unwrap();
    ws.seqctl(&["cancel"])
        .expect(0)
        .stdout_has("cancelled step s1 try 1: its agent");
    // The real agent and its child are stopped; the stranger lives on.
    ws.wait_pid(u64::from(child), Duration::from_secs(5));
    ws.wait_idle(LONG);
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "cancel signalled a process group the agent named"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
    let run = &ws.state()["stepRuns"]["s1"];
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .starts_with("cancelled by seqctl"),
        "{run}"
    );
}

#[test]
fn a_signalled_runner_stops_its_agent_and_the_try_does_not_count() {
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let mut ws = Workspace::with_state(&plan(1, ""));
        // Behind a wrapper, as `timeout 600 agent` is: the wrapper must not outlive the runner.
        ws.script(
            "slow.sh",
            "echo $$ > agent.pid\nsleep 60 &\necho $! > child.pid\nwait",
        );
        let agent = format!("timeout 600 {}", ws.path().join("slow.sh").display());
        ws.set("STEP_AGENT_CMD", &agent)
            .set("STEP_MAX_RETRIES", "1");
        let runner = ws.spawn(crate::common::RUNNER, &[]);
        ws.wait_file("child.pid", LONG);
        let agent_pid: u64 = ws.read("agent.pid").trim().parse().unwrap();
        let child: u64 = ws.read("child.pid").trim().parse().unwrap();
        send(runner.pid(), signal);
        let run = runner.finish(&ws);
        run.expect(code);
        ws.wait_pid(agent_pid, Duration::from_secs(5));
        ws.wait_pid(child, Duration::from_secs(5));
        ws.wait_idle(LONG);
        let state = ws.state();
        let record = &state["stepRuns"]["s1"];
        assert_eq!(record["status"], "PENDING", "{record}");
        assert_eq!(
            record["tries"], 0,
            "the stopped try does not count: {record}"
        );
        // With one try allowed, the next heartbeat still runs the step, to the end.
        ws.agent("exit 0").set("STEP_MAX_RETRIES", "1");
        ws.check(&["--wait"]).expect(0);
        assert_eq!(ws.state()["status"], "DONE");
    }
}

#[test]
fn ctrl_c_on_wait_twice_is_no_blocker() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.script("slow.sh", "echo $$ >> agent.pids\nsleep 60");
    let agent = ws.path().join("slow.sh").display().to_string();
    ws.set("STEP_AGENT_CMD", &agent)
        .set("STEP_MAX_RETRIES", "2");
    for round in 1..=2 {
        let check = ws.spawn(crate::common::CHECK, &["--wait"]);
        ws.wait_for(LONG, "the try started", |s| {
            s["stepRuns"]["s1"]["status"] == "IN_PROGRESS"
        });
        ws.wait_file_has("agent.pids", "\n", LONG);
        send(check.pid(), libc::SIGINT);
        check
            .finish(&ws)
            .expect(130)
            .stderr_has("stopped by signal 2");
        ws.wait_idle(LONG);
        assert_eq!(ws.state()["stepRuns"]["s1"]["tries"], 0, "round {round}");
        fs::remove_file(ws.path().join("agent.pids")).unwrap();
    }
    assert!(ws.state()["blockers"].as_array().is_none_or(Vec::is_empty));
    ws.agent("exit 0");
    ws.check(&["--wait"]).expect(0);
    assert_eq!(ws.state()["stepRuns"]["s1"]["tries"], 1);
}

#[test]
fn a_blocker_holds_whatever_the_environment_and_never_outlives_its_step() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("echo no >&2; exit 3").set("STEP_MAX_RETRIES", "1");
    ws.check(&["--wait"])
        .expect(1)
        .stdout_has("blocked: step s1 failed 1 try");
    // A heartbeat from a shell without the gateway's STEP_MAX_RETRIES=1.
    ws.env.retain(|(name, _)| name != "STEP_MAX_RETRIES");
    let before = ws.state()["stepRuns"].clone();
    ws.check(&[]).expect(1).stdout_has("blocked: step s1");
    assert_eq!(ws.state()["stepRuns"], before, "nothing started");
    let status = ws.seqctl(&["status", "--json"]).expect(0).json();
    assert_eq!(status["status"], "blocked");
    assert!(
        status["next"].is_null(),
        "blocked and due at once: {status:#}"
    );
    // A person resets the step by hand and leaves the blocker line: once the plan succeeds,
    // the line is gone, and the status says success without a blocker.
    let mut state = ws.state();
    state["stepRuns"]["s1"] = serde_json::json!({"status": "PENDING", "tries": 0});
    ws.set_state(&state);
    ws.agent("exit 0");
    ws.check(&["--wait"]).expect(0);
    let status = ws.seqctl(&["status", "--json"]).expect(0).json();
    assert_eq!(status["status"], "success");
    assert_eq!(status["blockers"], serde_json::json!([]), "{status:#}");
    assert_eq!(ws.state()["blockers"], serde_json::json!([]));
}

#[test]
fn timestamps_from_the_future_neither_delay_a_step_nor_repeat_or_hide_the_news() {
    use serde_json::json;
    let mut ws = Workspace::with_state(&plan(2, r#""stepDelayMinutes": 1,"#));
    ws.agent("exit 0").set("STEP_RUNNER", "/bin/true");
    // The previous step "finished" in the year 9999: the next is due one delay from now.
    let mut state = ws.state();
    state["currentStep"] = json!(1);
    state["stepRuns"]["s1"] =
        json!({"status": "DONE", "tries": 1, "finishedIso": "9999-12-31T23:59:59Z"});
    ws.set_state(&state);
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "waiting", "{beat}");
    let until =
        agent_step_sequencer::format::timefmt::parse(beat["until"].as_str().unwrap()).unwrap();
    assert!(
        until <= chrono::Utc::now() + chrono::Duration::seconds(61),
        "{until}"
    );
    // A plan finished "in the future" is reported once, not at every heartbeat.
    state["stepRuns"]["s2"] = json!({"status": "DONE", "tries": 1});
    state["currentStep"] = json!(2);
    state["status"] = json!("DONE");
    state["finishedIso"] = json!("2999-01-01T00:00:00Z");
    state["lastHeartbeatIso"] = json!("2026-01-01T00:00:00Z");
    ws.set_state(&state);
    ws.check(&[])
        .expect(0)
        .stdout_has("done: all 2 steps finished");
    for _ in 0..2 {
        ws.check(&[])
            .expect(0)
            .stdout_has("nothing to do: the plan is done");
    }
    // A heartbeat stamped in the future does not hide a finish from the user.
    state["finishedIso"] = json!("2026-11-01T00:00:00Z");
    state["lastHeartbeatIso"] = json!("2999-01-01T00:00:00Z");
    ws.set_state(&state);
    ws.check(&[])
        .expect(0)
        .stdout_has("done: all 2 steps finished");
    ws.check(&[]).expect(0).stdout_has("nothing to do");
}

#[test]
fn a_result_that_cannot_be_recorded_costs_no_try() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("echo working").set("STEP_MAX_RETRIES", "1");
    // The second save of the runner (recording the try's end) fails; the first (marking it
    // started) works, so the agent runs.
    ws.set("SEQ_TEST_FAULTS", "save:2");
    ws.runner(&[])
        .expect(2)
        .stderr_has("cannot write the new state: injected fault");
    assert_eq!(ws.state()["stepRuns"]["s1"]["status"], "IN_PROGRESS");
    assert_eq!(ws.lease_note()["lost"]["step"], "s1");
    // Without the fault, the next heartbeat takes the try back (no 'interrupted' failure
    // that a one-try limit would turn into a blocker) and runs it again.
    ws.env.retain(|(name, _)| name != "SEQ_TEST_FAULTS");
    ws.check(&["--wait"])
        .expect(0)
        .stdout_has("could not record the result");
    let state = ws.state();
    assert_eq!(state["status"], "DONE", "{state:#}");
    assert_eq!(state["stepRuns"]["s1"]["tries"], 1);
    assert!(
        ws.lease_note()["lost"].is_null(),
        "the note is cleared once taken back"
    );
}

#[test]
fn a_folder_fsync_failing_after_the_rename_is_a_warning_not_a_lie() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("exit 0").set("STEP_RUNNER", "/bin/true");
    ws.set("SEQ_TEST_FAULTS", "dir-fsync");
    let before = ws.bytes();
    ws.check(&[])
        .expect(0)
        .stdout_has("started: step s1")
        .stderr_has("could not be fsynced");
    assert_ne!(
        ws.bytes(),
        before,
        "the state did change, and the exit says so"
    );
}

#[test]
fn a_log_that_cannot_be_written_says_so_and_logs_stay_within_their_limit() {
    // A log write fails: the log says where it stops being whole, and the runner says why.
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("echo one; sleep 0.2; echo two")
        .set("SEQ_TEST_FAULTS", "log-write");
    ws.runner(&[])
        .expect(0)
        .stdout_has("its log could not be written in full: injected fault");
    let log = ws.read("state.json.seq/logs/s1.1.log");
    assert!(
        log.contains("[seq-runner: the log could not be written in full"),
        "{log:?}"
    );
    // Logs past STEP_LOGS_MAX_MB (1 MiB here): the oldest go, the newest stay whole.
    let mut ws = Workspace::with_state(&plan(4, ""));
    ws.agent("head -c 600000 /dev/zero | tr '\\0' x")
        .set("STEP_LOGS_MAX_MB", "1");
    let run = ws.runner(&[]);
    run.expect(0).stdout_has("removed the 1 oldest log files");
    let logs = ws.sidecar().join("logs");
    let total: u64 = fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total <= 2 * 600_000, "{total} bytes of logs");
    assert_eq!(fs::metadata(logs.join("s4.1.log")).unwrap().len(), 600_000);
    assert!(!logs.join("s1.1.log").exists());
}

#[test]
fn bytes_from_the_agent_are_made_safe_where_they_go() {
    // A NUL and terminal controls on stderr: the next try still starts, the terminal shows
    // them escaped, JSON carries them as they are.
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent(r"printf 'real error\0\r\033[Kall is well' >&2; exit 1")
        .set("STEP_MAX_RETRIES", "2");
    let run = ws.check(&["--wait"]);
    run.expect(1);
    let out = run.stdout();
    assert!(
        !out.contains('\u{1b}') && !out.contains('\r'),
        "raw controls printed: {out:?}"
    );
    assert!(out.contains(r"\r\u{1b}[Kall is well"), "{out}");
    let record = &ws.state()["stepRuns"]["s1"];
    assert_eq!(
        record["tries"], 2,
        "the second try started despite the NUL: {record}"
    );
    assert!(!record["error"].as_str().unwrap().contains('\0'));
    let beat = ws.check(&["--json"]).expect(1).json();
    assert!(
        beat["error"].as_str().unwrap().contains("\r\u{1b}[K"),
        "{beat}"
    );
    // A step id with a right-to-left override is refused before anything runs.
    let ws = Workspace::with_state(
        r#"{"plan":{"steps":{"a\u202Eb":{"instruction":"x"}}},"stepQueue":["a\u202Eb"]}"#,
    );
    ws.check(&[])
        .expect(2)
        .stderr_has("contains a bidirectional control character");
}

#[test]
fn edits_through_seqctl_are_never_lost_under_running_heartbeats() {
    let mut ws = Workspace::with_state(&plan(2, ""));
    ws.agent("sleep 0.05");
    // Heartbeats keep writing the file while 100 steps are added.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let beats = {
        let (stop, env, dir) = (stop.clone(), ws.env.clone(), ws.path().to_path_buf());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = std::process::Command::new(crate::common::CHECK)
                    .current_dir(&dir)
                    .envs(env.iter().map(|(n, v)| (n, v)))
                    .output();
            }
        })
    };
    for i in 0..100 {
        ws.seqctl(&[
            "add-step",
            &format!("extra-{i}"),
            "--instruction",
            &format!("do extra {i}"),
        ])
        .expect(0);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    beats.join().unwrap();
    let state = ws.state();
    let queue = state["stepQueue"].as_array().unwrap();
    assert_eq!(queue.len(), 102, "edits were lost: {queue:?}");
    for i in 0..100 {
        assert_eq!(
            state["plan"]["steps"][format!("extra-{i}")]["instruction"],
            format!("do extra {i}")
        );
    }
    agent_step_sequencer::format::validate::parse(&ws.bytes()).expect("a valid plan");
}

#[test]
fn step_edits_refuse_what_would_break_a_try_in_flight() {
    let mut ws = Workspace::with_state(&plan(3, ""));
    ws.agent("if [ \"$STEP_ID\" = s2 ]; then sleep 30; fi");
    ws.check(&[]).expect(0);
    ws.wait_for(LONG, "s2 running", |s| {
        s["stepRuns"]["s2"]["status"] == "IN_PROGRESS"
    });
    let before = ws.bytes();
    ws.seqctl(&["edit-step", "s2", "--instruction", "other"])
        .expect(2)
        .stderr_has("in flight");
    ws.seqctl(&["remove-step", "s2"])
        .expect(2)
        .stderr_has("in flight");
    ws.seqctl(&["add-step", "x", "--after", "s1", "--instruction", "y"])
        .expect(2)
        .stderr_has("never run");
    ws.seqctl(&["retry", "s1"])
        .expect(2)
        .stderr_has("in flight");
    ws.seqctl(&["add-step", "--instruction", ""])
        .expect(2)
        .stderr_has("instruction");
    assert!(ws.bytes() == before, "a refused edit changed the file");
    // What does not touch the running try is fine.
    ws.seqctl(&[
        "edit-step",
        "s3",
        "--instruction",
        "do s3 well",
        "--outputs",
        "a.md,b.md",
    ])
    .expect(0);
    ws.seqctl(&["add-step", "--title", "Last", "--instruction", "do last"])
        .expect(0)
        .stdout_has("step step-1: added, as step 4 of 4");
    let state = ws.state();
    assert_eq!(
        state["plan"]["steps"]["s3"]["requiredOutputs"],
        serde_json::json!(["a.md", "b.md"])
    );
    ws.seqctl(&["cancel"]).expect(0);
}

#[test]
fn the_python_runner_still_at_work_is_left_to_finish_and_a_foreign_runner_is_named() {
    use serde_json::json;
    // A plan the Python version is executing: its runner is mid-step (no runner recorded).
    let mut ws = Workspace::with_state(&plan(1, ""));
    let mut state = ws.state();
    state["stepRuns"]["s1"] =
        json!({"status": "IN_PROGRESS", "tries": 1, "lastRunIso": "2026-11-01T00:00:00"});
    ws.set_state(&state);
    fs::create_dir_all(ws.path().join("scripts")).unwrap();
    ws.write(
        "scripts/step-sequencer-runner.py",
        "import time\ntime.sleep(60)\n",
    );
    let mut python = std::process::Command::new("python3")
        .arg("scripts/step-sequencer-runner.py")
        .arg("state.json")
        .current_dir(ws.path())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ws.agent(&detector_agent(""));
    for _ in 0..2 {
        ws.check(&[])
            .expect(0)
            .stdout_has("the Python agent-step-sequencer runner")
            .stdout_has("it is left to finish");
    }
    assert_eq!(
        ws.state()["stepRuns"]["s1"]["tries"],
        1,
        "no second try started"
    );
    assert!(
        !ws.path().join("agent.log").exists(),
        "an agent ran beside the Python one"
    );
    python.kill().unwrap();
    python.wait().unwrap();
    // Once it is gone, its try counts as interrupted and the plan goes on.
    ws.check(&["--wait"]).expect(0);
    assert_eq!(ws.state()["status"], "DONE");

    // STEP_RUNNER still naming something that is not seq-runner: the heartbeat says so.
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("exit 0").set("STEP_RUNNER", "/bin/true");
    let beat = ws.check(&["--json"]).expect(0).json();
    assert!(
        beat["warnings"][0]
            .as_str()
            .unwrap()
            .contains("did not take the run lease"),
        "{beat}"
    );
    ws.check(&["--no-reply"])
        .expect(0)
        .stdout_has("warning: the runner started (/bin/true");
}

/// Makes a fifo at `path` (in place of whatever was there).
fn mkfifo(path: &std::path::Path) {
    let _ = fs::remove_file(path);
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Runs `seq-check --wait` and fails the test if it has not returned in 20 s (a blocked open
/// of a fifo, or a plan that never ends, waits for ever).
fn check_wait_returns(ws: &Workspace) -> i32 {
    let mut child = ws
        .command(crate::common::CHECK)
        .arg("--wait")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("seq-check --wait did not return in 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_fifo_planted_where_a_file_is_read_or_written_never_hangs_the_plan() {
    // A forEach source: read under the state lock.
    let mut ws = Workspace::with_state(
        r#"{"plan":{"steps":{"each":{"instruction":"do {{item}}","maxRetries":1,
            "forEach":{"from":"file:src.txt"}}}},"stepQueue":["each"]}"#,
    );
    ws.agent("echo ok");
    mkfifo(&ws.path().join("src.txt"));
    assert_eq!(check_wait_returns(&ws), 1, "blocked on the source");
    let error = ws.state()["stepRuns"]["each"]["error"].to_string();
    assert!(error.contains("not a regular file"), "{error}");

    // The event log and the runner's log, replaced by the agent: kept files, made anew.
    let mut ws = Workspace::with_state(&plan(2, ""));
    ws.agent(
        "rm -f state.json.seq/events.jsonl state.json.seq/runner.log\n\
         mkfifo state.json.seq/events.jsonl state.json.seq/runner.log\necho ok",
    );
    assert_eq!(check_wait_returns(&ws), 0);
    assert_eq!(ws.state()["status"], "DONE");
    assert!(fs::metadata(ws.sidecar().join("events.jsonl"))
        .unwrap()
        .is_file());

    // A resultFile: read after the agent exits.
    let mut ws = Workspace::with_state(
        r#"{"plan":{"steps":{"a":{"instruction":"write out.txt","maxRetries":1,
            "resultFile":"out.txt"}}},"stepQueue":["a"]}"#,
    );
    ws.agent("rm -f out.txt; mkfifo out.txt; echo ok");
    assert_eq!(check_wait_returns(&ws), 1, "blocked on the result file");
    let error = ws.state()["stepRuns"]["a"]["error"].to_string();
    assert!(error.contains("not a regular file"), "{error}");
}

#[test]
fn an_item_that_deletes_or_replaces_its_journal_runs_once_and_the_plan_goes_on() {
    for tidy in [
        "rm -rf state.json.seq/items",
        "rm -rf state.json.seq",
        ": > state.json.seq/items/each.jsonl",
        "rm -f state.json.seq/items/each.jsonl; ln -s ../../list.txt state.json.seq/items/each.jsonl",
        "rm -f state.json.seq/items/each.jsonl; mkfifo state.json.seq/items/each.jsonl",
    ] {
        let mut ws = Workspace::with_state(
            r#"{"plan":{"steps":{"each":{"instruction":"do {{item}}","maxRetries":2,
                "forEach":{"from":"file:list.txt"}}}},"stepQueue":["each"]}"#,
        );
        ws.write("list.txt", "a\nb\nc\n");
        // An agent tidying its workspace, as `rm -rf` or `git clean -fdx` would.
        ws.agent(&format!(
            "echo \"$STEP_ID $STEP_ATTEMPT\" >> trace.log\n{tidy}\necho done"
        ));
        assert_eq!(check_wait_returns(&ws), 0, "{tidy}");
        let trace = ws.read("trace.log");
        assert_eq!(
            trace,
            "each[1] 1\neach[2] 1\neach[3] 1\n",
            "{tidy}: each item exactly once"
        );
        assert_eq!(ws.state()["status"], "DONE", "{tidy}");
        let status = ws.seqctl(&["status"]).expect(0).stdout();
        assert!(status.contains("DONE 3/3"), "{tidy}: {status}");
    }
}

#[test]
#[cfg(target_os = "linux")] // the last word on such a try reads /proc
fn a_straggler_of_a_killed_runner_holds_its_step_even_with_its_lease_file_deleted() {
    for victim in ["state.json.seq/leases", "state.json.seq"] {
        let mut ws = Workspace::with_state(&plan(1, ""));
        // Try 1 leaves a process behind, deletes its lease file, and its runner is killed.
        ws.agent(&format!(
            r#"echo "start $STEP_ATTEMPT $(date +%s%N)" >> trace.log
if [ "$STEP_ATTEMPT" = 1 ]; then
  ( sleep 3; echo "straggler-end 1 $(date +%s%N)" >> trace.log ) &
  rm -rf {victim}
  echo x > started
  wait
fi
exit 0"#
        ));
        let beat = ws.check(&["--json"]).expect(0).json();
        let runner = beat["pid"].as_u64().unwrap();
        ws.wait_file("started", LONG);
        // SAFETY: kill of the runner this test started.
        assert_eq!(unsafe { libc::kill(runner as i32, libc::SIGKILL) }, 0);
        ws.wait_pid(runner, LONG);
        // The straggler lives: no second try, however many heartbeats come.
        for _ in 0..3 {
            let beat = ws.check(&["--json"]).expect(0).json();
            assert_eq!(beat["result"], "in_flight", "{victim}: {beat}");
        }
        assert_eq!(ws.state()["stepRuns"]["s1"]["tries"], 1, "{victim}");
        ws.wait_file_has("trace.log", "straggler-end", LONG);
        ws.check(&["--wait"]).expect(0);
        let trace = ws.read("trace.log");
        let stamp = |what: &str| -> u128 {
            trace
                .lines()
                .find(|l| l.starts_with(what))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{victim}: no {what} in\n{trace}"))
        };
        assert!(
            stamp("straggler-end 1") <= stamp("start 2"),
            "{victim}: try 2 began while try 1's process lived:\n{trace}"
        );
        assert_eq!(ws.state()["stepRuns"]["s1"]["tries"], 2, "{victim}");
    }
}

#[test]
fn a_plan_that_would_outgrow_the_size_bound_when_written_out_is_refused_unchanged() {
    // 8 MB as written (compact), over 32 MiB pretty-printed: one line per array element.
    let notes = format!("{}0", "0,".repeat(3_999_999));
    let text = format!(
        r#"{{"plan":{{"steps":{{"a":{{"instruction":"x"}}}},"notes":[{notes}]}},"stepQueue":["a"]}}"#
    );
    let mut ws = Workspace::with_state(&text);
    ws.agent("exit 0");
    let before = ws.bytes();
    ws.check(&[])
        .expect(2)
        .stderr_has("over the 32 MiB a state file may have; nothing was written");
    ws.assert_untouched(&before, "a plan too large written out");
    ws.seqctl(&["status"]).expect(0);
}

#[test]
fn a_time_limit_past_what_the_clock_can_count_is_no_limit_and_no_hang() {
    let mut ws = Workspace::with_state(
        r#"{"plan":{"steps":{"a":{"instruction":"hi","timeoutSeconds":18446744073709551615}}},
            "stepQueue":["a"]}"#,
    );
    ws.agent("echo ok");
    assert_eq!(check_wait_returns(&ws), 0);
    assert_eq!(ws.state()["stepRuns"]["a"]["status"], "DONE");
    // The variable is bounded where it is read.
    ws.set("STEP_TIMEOUT_SECONDS", "18446744073709551615");
    ws.check(&[])
        .expect(2)
        .stderr_has("STEP_TIMEOUT_SECONDS=\"18446744073709551615\" is not a whole number");
}

#[test]
fn a_file_that_is_no_state_file_gets_no_sidecar_beside_it() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("exit 0");
    ws.write("passwd", "root:x:0:0:root:/root:/bin/sh\n");
    let before = fs::read(ws.path().join("passwd")).unwrap();
    ws.check(&["passwd"]).expect(2).stderr_has("invalid state");
    for command in ["pause", "cancel", "skip"] {
        let mut args = vec![command];
        if command == "skip" {
            args.push("s1");
        }
        args.push("passwd");
        ws.seqctl(&args).expect(2).stderr_has("invalid state");
    }
    assert!(
        !ws.path().join("passwd.seq").exists(),
        "a bad request left a sidecar:\n{}",
        ws.listing()
    );
    assert_eq!(fs::read(ws.path().join("passwd")).unwrap(), before);
    // `init --force` over a broken file seen for the first time writes under the lock it took.
    let mut fresh = Workspace::with_state("{ not json");
    fresh.agent("exit 0");
    fresh
        .seqctl(&["init", "--step", "a: do it", "--force"])
        .expect(0);
    assert_eq!(fresh.state()["stepQueue"][0], "step-1");
    assert!(fresh.sidecar().join("lock").exists(), "{}", fresh.listing());
    // A state file's own sidecar stays, whatever its content later.
    ws.check(&["--wait"]).expect(0);
    ws.write("state.json", "{ not json");
    ws.check(&[]).expect(2);
    assert!(ws.sidecar().join("lock").exists());
}
