//! seq-runner (issue 3): the prompt as one argument, the agent's environment, bounds in time,
//! output and memory, the judged result, and the runner's exit codes.

use std::fs;
use std::os::unix::fs::symlink;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{pid_alive, plan, plan_of, Workspace, RUNNER};

const LONG: Duration = Duration::from_secs(20);

/// An agent that stores its argument count in `argc` and each argument in `arg.N`.
const ARGS_AGENT: &str = r#"echo $# > argc
i=0
for a in "$@"; do printf '%s' "$a" > "arg.$i"; i=$((i+1)); done"#;

fn args_of(ws: &Workspace) -> Vec<String> {
    let argc: usize = ws.read("argc").trim().parse().expect("argc");
    (0..argc).map(|i| ws.read(&format!("arg.{i}"))).collect()
}

/// Runs a one-step plan whose agent is `body` with one try allowed; returns its step run.
fn one_failed_try(body: &str) -> Value {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent(body).set("STEP_MAX_RETRIES", "1");
    ws.runner(&[]).expect(1);
    let state = ws.state();
    assert_eq!(state["stepRuns"]["s1"]["status"], "FAILED", "{state}");
    state["stepRuns"]["s1"].clone()
}

#[test]
fn the_prompt_is_one_argument_with_everything_in_it_intact() {
    let instruction = "Summarise 'a b'  \"c\" $(touch pwned) `touch pwned2` ; rm -rf / * \\n {prompt}\nline two\n\ttabbed ";
    for (template, expected) in [
        ("", vec![instruction.to_owned()]),
        (
            " --message={prompt} --json",
            vec![format!("--message={instruction}"), "--json".to_owned()],
        ),
        (
            " -- {prompt}",
            vec!["--".to_owned(), instruction.to_owned()],
        ),
        (
            " --flag 'two words'",
            vec![
                "--flag".to_owned(),
                "two words".to_owned(),
                instruction.to_owned(),
            ],
        ),
    ] {
        let mut ws = Workspace::with_state(
            &plan_of(&[("s1", json!({"instruction": instruction}))], &json!({})).to_string(),
        );
        let agent = ws.script("agent.sh", ARGS_AGENT);
        ws.set("STEP_AGENT_CMD", &format!("{}{template}", agent.display()));
        ws.runner(&[]).expect(0);
        assert_eq!(args_of(&ws), expected, "template {template:?}");
        assert!(!ws.path().join("pwned").exists() && !ws.path().join("pwned2").exists());
    }
}

#[test]
fn a_prompt_over_128_kib_needs_prompt_file_and_fails_clearly_without_it() {
    let instruction = format!("{}é end", "x".repeat(200 * 1024));
    let state = plan_of(&[("s1", json!({"instruction": instruction}))], &json!({})).to_string();

    let mut ws = Workspace::with_state(&state);
    let agent = ws.script("agent.sh", r#"cp "$2" got.txt"#);
    ws.set(
        "STEP_AGENT_CMD",
        &format!("{} --message-file {{prompt_file}}", agent.display()),
    );
    ws.runner(&[]).expect(0);
    assert_eq!(ws.read("got.txt"), instruction);

    let mut ws = Workspace::with_state(&state);
    ws.agent("touch ran").set("STEP_MAX_RETRIES", "1");
    let run = ws.runner(&[]);
    run.expect(1);
    let error = ws.state()["stepRuns"]["s1"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("{prompt_file}") && error.contains("128 KiB"),
        "{error}"
    );
    assert!(!error.contains("Argument list too long"), "{error}");
    assert!(!ws.path().join("ran").exists());
}

#[test]
fn the_agent_gets_its_env_dev_null_stdin_and_the_workspace_as_cwd() {
    let mut ws = Workspace::new();
    ws.write("plans/p.json", &plan(1, ""));
    ws.agent(
        r#"{ echo "id=$STEP_ID"; echo "attempt=$STEP_ATTEMPT"; echo "state=$STEP_STATE_FILE"
echo "ws=$STEP_WORKSPACE"; echo "pwd=$(pwd -P)"; echo "foo=$FOO"
echo "stdin=$(readlink /proc/$$/fd/0)"; } > env.txt
cat > stdin.txt
echo done"#,
    )
    .set("FOO", "bar baz")
    .set("STEP_TIMEOUT_SECONDS", "10");
    // The runner's own stdin stays open: an agent that inherited it would block in `cat`.
    let mut child = ws
        .command(RUNNER)
        .arg("plans/p.json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let took = started.elapsed();
    drop(stdin);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(took < Duration::from_secs(5), "the agent waited on stdin");
    let workspace = fs::canonicalize(ws.path().join("plans")).unwrap();
    assert_eq!(
        ws.read("plans/env.txt"),
        format!(
            "id=s1\nattempt=1\nstate={ws}/p.json\nws={ws}\npwd={ws}\nfoo=bar baz\nstdin=/dev/null\n",
            ws = workspace.display()
        )
    );
    assert_eq!(ws.read("plans/stdin.txt"), "");
    // The log sits in the plan's own sidecar (made once the agent prints).
    assert_eq!(ws.read("plans/p.json.seq/logs/s1.1.log"), "done\n");
    assert!(!ws.path().join("env.txt").exists());
}

#[test]
fn stdout_keeps_500_characters_cut_on_a_character_boundary_with_invalid_utf8_replaced() {
    let mut ws = Workspace::with_state(&plan(2, ""));
    let euros = format!("a{}", "€".repeat(1000));
    ws.write("payload.s1", &euros);
    fs::write(ws.path().join("payload.s2"), b"ok \xff\xfe end").unwrap();
    ws.agent(r#"cat "payload.$STEP_ID""#);
    ws.runner(&[]).expect(0);
    let state = ws.state();
    assert_eq!(state["stepRuns"]["s1"]["stdout"], "€".repeat(500));
    assert_eq!(state["stepRuns"]["s2"]["stdout"], "ok \u{fffd}\u{fffd} end");
    assert_eq!(ws.read("state.json.seq/logs/s1.1.log"), euros);
    assert_eq!(
        fs::read(ws.path().join("state.json.seq/logs/s2.1.log")).unwrap(),
        b"ok \xff\xfe end"
    );
}

#[test]
fn a_failure_records_the_reason_and_the_most_useful_tail() {
    let run = one_failed_try("echo out; echo err >&2; exit 3");
    assert_eq!(run["error"], "exit code 3: err");
    assert_eq!(run["exitCode"], 3);
    assert_eq!(run["stdout"], "out\n");

    let run = one_failed_try("echo only-out; exit 3");
    assert_eq!(run["error"], "exit code 3: only-out");

    let run = one_failed_try("kill -9 $$");
    assert_eq!(run["error"], "killed by signal 9");
    assert_eq!(run["signal"], 9);
    assert!(run.get("exitCode").is_none_or(Value::is_null), "{run}");

    let run = one_failed_try(
        r"i=0; while [ $i -lt 100 ]; do printf 'line %03d of noise\n' $i >&2; i=$((i+1)); done; exit 2",
    );
    let error = run["error"].as_str().unwrap();
    assert!(
        error.chars().count() <= 500,
        "{} chars",
        error.chars().count()
    );
    assert!(error.starts_with("exit code 2: "), "{error}");
    assert!(error.ends_with("line 099 of noise"), "{error}");
}

#[test]
fn a_run_records_its_times_exit_code_and_a_log_per_attempt() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent(
        r#"echo "output of try $STEP_ATTEMPT"; echo "errors of try $STEP_ATTEMPT" >&2
sleep 0.2; [ "$STEP_ATTEMPT" = 2 ]"#,
    );
    ws.runner(&[]).expect(0);
    let run = ws.state()["stepRuns"]["s1"].clone();
    assert_eq!(run["status"], "DONE");
    assert_eq!(run["tries"], 2);
    assert_eq!(run["exitCode"], 0);
    assert!(run["durationMs"].as_u64().unwrap() >= 200, "{run}");
    let started =
        agent_step_sequencer::format::timefmt::parse(run["startedIso"].as_str().unwrap()).unwrap();
    let finished =
        agent_step_sequencer::format::timefmt::parse(run["finishedIso"].as_str().unwrap()).unwrap();
    assert!(
        finished - started >= chrono::Duration::milliseconds(200),
        "{run}"
    );
    assert_eq!(run["logFile"], "state.json.seq/logs/s1.2.log");
    let log = ws.read(run["logFile"].as_str().unwrap());
    assert!(
        log.contains("output of try 2\n") && log.contains("errors of try 2\n"),
        "{log}"
    );
    let first = ws.read("state.json.seq/logs/s1.1.log");
    assert!(
        first.contains("output of try 1\n") && first.contains("errors of try 1\n"),
        "{first}"
    );
}

#[test]
fn required_outputs_missing_or_outside_the_workspace_fail_the_step_saying_why() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.md"), "x").unwrap();
    let mut ws = Workspace::with_state(
        &plan_of(
            &[(
                "s1",
                json!({"instruction": "x", "requiredOutputs": ["a.md", "b.md", "../x", "/etc/passwd", "link.md"]}),
            )],
            &json!({}),
        )
        .to_string(),
    );
    symlink(outside.path().join("secret.md"), ws.path().join("link.md")).unwrap();
    ws.agent("touch a.md").set("STEP_MAX_RETRIES", "1");
    ws.runner(&[]).expect(1);
    let state = ws.state();
    assert_eq!(state["stepRuns"]["s1"]["status"], "FAILED");
    assert_eq!(
        state["stepRuns"]["s1"]["error"],
        "Missing required outputs: b.md, ../x (outside the workspace), /etc/passwd (absolute: \
         must be relative to the workspace), link.md (outside the workspace)"
    );
    assert!(
        state.get("artifacts").is_none_or(|a| a == &json!([])),
        "{state}"
    );

    // The Python alias.
    let mut ws = Workspace::with_state(
        &plan_of(
            &[(
                "s1",
                json!({"instruction": "x", "required_outputs": ["c.md"]}),
            )],
            &json!({}),
        )
        .to_string(),
    );
    ws.agent("exit 0").set("STEP_MAX_RETRIES", "1");
    ws.runner(&[]).expect(1);
    assert_eq!(
        ws.state()["stepRuns"]["s1"]["error"],
        "Missing required outputs: c.md"
    );
}

#[test]
fn required_outputs_that_exist_become_artifacts_once_each() {
    let mut ws = Workspace::with_state(
        &plan_of(
            &[
                (
                    "s1",
                    json!({"instruction": "x", "requiredOutputs": ["a.md", "sub/b.md"]}),
                ),
                (
                    "s2",
                    json!({"instruction": "y", "required_outputs": ["a.md"]}),
                ),
            ],
            &json!({"artifacts": ["old.md"]}),
        )
        .to_string(),
    );
    ws.agent("mkdir -p sub && touch a.md sub/b.md");
    ws.check(&["--wait"])
        .expect(0)
        .stdout_has("done: all 2 steps finished; artifacts: old.md, a.md, sub/b.md");
    assert_eq!(
        ws.state()["artifacts"],
        json!(["old.md", "a.md", "sub/b.md"])
    );
}

#[test]
fn the_timeout_kills_the_agent_and_its_grandchildren() {
    // The step's timeoutSeconds wins over STEP_TIMEOUT_SECONDS.
    let mut ws = Workspace::with_state(
        &plan_of(
            &[("s1", json!({"instruction": "x", "timeoutSeconds": 1}))],
            &json!({}),
        )
        .to_string(),
    );
    ws.agent(
        r"sleep 1000 & echo $! > grandchild1.pid
sleep 1000 & echo $! > grandchild2.pid
echo $$ > agent.pid
wait",
    )
    .set("STEP_TIMEOUT_SECONDS", "100")
    .set("STEP_MAX_RETRIES", "1");
    let started = Instant::now();
    ws.runner(&[]).expect(1);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(ws.state()["stepRuns"]["s1"]["error"], "timed out after 1 s");
    for name in ["agent.pid", "grandchild1.pid", "grandchild2.pid"] {
        let pid: u64 = ws.read(name).trim().parse().unwrap();
        assert!(!pid_alive(pid), "{name} ({pid}) outlived the timeout");
    }

    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("exec sleep 1000")
        .set("STEP_TIMEOUT_SECONDS", "1")
        .set("STEP_MAX_RETRIES", "1");
    ws.runner(&[]).expect(1);
    assert_eq!(ws.state()["stepRuns"]["s1"]["error"], "timed out after 1 s");
}

#[test]
fn a_grandchild_left_behind_is_stopped_when_the_agent_exits() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("sleep 1000 & echo $! > grandchild.pid; echo bye");
    ws.runner(&[]).expect(0);
    let pid: u64 = ws.read("grandchild.pid").trim().parse().unwrap();
    assert!(!pid_alive(pid), "the grandchild {pid} outlived its step");
    assert_eq!(ws.state()["stepRuns"]["s1"]["status"], "DONE");
}

/// A process's peak resident set so far (VmHWM, KiB), while it lives.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn an_agent_printing_1_gib_is_logged_capped_in_flat_memory() {
    // Step s2 keeps the runner alive after s1's flood, so its peak RSS (VmHWM, which only
    // grows) can be read from /proc. (wait4's ru_maxrss would count the test process too: a
    // spawned child inherits its parent's high-water mark through vfork and exec.)
    let mut ws = Workspace::with_state(&plan(2, ""));
    ws.agent(
        r#"if [ "$STEP_ID" = s2 ]; then touch s2.started; exec sleep 0.5; fi
head -c 1073741824 /dev/zero | tr '\0' x; echo; echo END-MARKER"#,
    );
    let mut child = ws
        .command(RUNNER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + LONG;
    let peak_kib = loop {
        if ws.path().join("s2.started").exists() {
            break peak_rss_kib(child.id()).expect("the runner's VmHWM");
        }
        assert!(
            Instant::now() < deadline,
            "s2 never started\n{}",
            ws.listing()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(child.wait().unwrap().code(), Some(0), "{}", ws.listing());
    eprintln!("seq-runner peak RSS with a 1 GiB agent: {peak_kib} KiB");
    assert!(peak_kib < 16 * 1024, "seq-runner peaked at {peak_kib} KiB");
    let log = fs::read(ws.path().join("state.json.seq/logs/s1.1.log")).unwrap();
    let cap = 8 << 20;
    assert!(
        log.len() > cap && log.len() < cap + 1024,
        "log of {} bytes",
        log.len()
    );
    let note = String::from_utf8_lossy(&log[4 << 20..(4 << 20) + 200]).into_owned();
    assert!(note.contains("bytes cut here"), "{note}");
    assert!(log.ends_with(b"x\nEND-MARKER\n"));
    assert!(log.starts_with(b"xxxxxxxx"));
    let stdout = ws.state()["stepRuns"]["s1"]["stdout"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stdout.chars().count(), 500);
    assert!(stdout.ends_with("xxx\nEND-MARKER\n"), "{stdout}");
    assert!(!ws.path().join("state.json.seq/logs/s1.1.log.tail").exists());
}

#[test]
fn a_second_runner_leaves_the_plan_to_the_first_and_exits_0() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    // Longer than the 2 s a runner waits for the lease, so the second one gives up.
    ws.agent(r#"echo "start $STEP_ID" >> events.log; sleep 3"#);
    let first = ws.spawn(RUNNER, &[]);
    ws.wait_file("events.log", LONG);
    let started = Instant::now();
    let second = ws.runner(&[]);
    second
        .expect(0)
        .stdout_has("another runner holds the lease");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    first.finish(&ws).expect(0);
    assert_eq!(ws.lines("events.log"), ["start s1"]);
    assert_eq!(ws.state()["status"], "DONE");
}

#[test]
fn runner_exit_codes() {
    // 0: the last step ended DONE.
    let mut ws = Workspace::with_state(&plan(2, ""));
    ws.agent("exit 0");
    ws.runner(&[]).expect(0);
    assert_eq!(ws.state()["status"], "DONE");
    // 0: nothing to do.
    ws.runner(&[]).expect(0);
    let mut paused: Value = serde_json::from_str(&plan(1, r#""paused": true,"#)).unwrap();
    paused["stepRuns"] = json!({});
    ws.set_state(&paused);
    ws.runner(&[]).expect(0);
    assert_eq!(ws.state()["stepRuns"], json!({}));
    // 1: a step failed (and is blocked).
    let mut ws = Workspace::with_state(&plan(2, ""));
    ws.agent("exit 5").set("STEP_MAX_RETRIES", "1");
    ws.runner(&[]).expect(1).stdout_has("FAILED: exit code 5");
    // 2: configuration (state errors are covered with the check's).
    ws.set("STEP_TIMEOUT_SECONDS", "-3");
    let before = ws.bytes();
    ws.runner(&[]).expect(2).stderr_has("STEP_TIMEOUT_SECONDS");
    assert_eq!(ws.bytes(), before);
}

#[test]
fn a_change_made_to_the_file_while_an_agent_runs_is_read_back_not_overwritten() {
    // The runner skips re-parsing a file that still holds exactly the bytes it wrote. An edit
    // made while its agent runs (by hand, by an agent, by seqctl) changes those bytes, so the
    // runner must read the file afresh and keep the edit through its later writes.
    let mut ws = Workspace::with_state(&plan(3, ""));
    ws.agent(
        r#"if [ "$STEP_ID" = s1 ]; then
  sed 's/"currentStep"/"editedWhileRunning": true, "currentStep"/' state.json > edit.tmp && mv edit.tmp state.json
fi"#,
    );
    ws.runner(&[]).expect(0);
    let state = ws.state();
    assert_eq!(state["status"], "DONE", "{state:#}");
    assert_eq!(
        state["editedWhileRunning"], true,
        "the edit was lost: {state:#}"
    );
}

#[test]
fn a_helper_that_left_the_agents_process_group_is_stopped_and_releases_the_lease() {
    // `setsid` takes the helper out of the agent's process group; it still inherited the run
    // lease. The runner (a subreaper, so the helper becomes its child) stops it when the step
    // ends; otherwise the plan would show "in flight" for as long as the helper lived.
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("setsid sleep 300 >/dev/null 2>&1 </dev/null &\necho $! > helper.pid");
    let started = Instant::now();
    ws.check(&["--wait"])
        .expect(0)
        .stdout_has("done: its one step finished");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the runner waited on the helper"
    );
    let helper: u64 = ws.read("helper.pid").trim().parse().unwrap();
    ws.wait_pid(helper, Duration::from_secs(10));
    ws.wait_idle(Duration::from_secs(10));
    ws.check(&[]).expect(0).stdout_has("nothing to do");
}

#[test]
fn the_plans_own_files_never_count_as_required_outputs() {
    let mut ws = Workspace::with_state(
        &plan_of(
            &[(
                "a",
                json!({"instruction": "x", "requiredOutputs": ["state.json", "state.json.seq/lock"], "maxRetries": 1}),
            )],
            &json!({}),
        )
        .to_string(),
    );
    ws.agent("exit 0");
    ws.check(&["--wait"]).expect(1);
    let error = ws.state()["stepRuns"]["a"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        error,
        "Missing required outputs: state.json (the plan's own file, not an output), \
         state.json.seq/lock (the plan's own file, not an output)"
    );
}
