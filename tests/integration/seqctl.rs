//! `seqctl` end to end: every subcommand against real state files (the legacy fixtures too),
//! and the event log that the check, the runner and seqctl write together.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{fixture, pid_alive, plan, Workspace, CHECK, RUNNER, SEQCTL};

/// The event log as parsed lines (the rotated generation first).
fn events(ws: &Workspace) -> Vec<Value> {
    let mut text = ws.read("state.json.seq/events.jsonl.1");
    text.push_str(&ws.read("state.json.seq/events.jsonl"));
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                let start: String = l.chars().take(200).collect();
                panic!("a line of the event log does not parse ({e}): {start}...")
            })
        })
        .collect()
}

/// `event` or `event:step` for each line, to compare whole stories at once.
fn story(ws: &Workspace) -> Vec<String> {
    events(ws)
        .iter()
        .map(|e| match e["step"].as_str() {
            Some(step) => format!("{}:{step}", e["event"].as_str().unwrap()),
            None => e["event"].as_str().unwrap().to_owned(),
        })
        .collect()
}

const LEGACY: &[(&str, &str)] = &[
    ("agent-extras.json", "waiting"),
    ("blocked.json", "blocked"),
    ("done.json", "success"),
    ("failed-retry.json", "waiting"),
    ("fresh-plan.json", "waiting"),
    ("mid-run.json", "waiting"),
];

#[test]
fn every_subcommand_has_help_with_an_example() {
    let ws = Workspace::new();
    for sub in [
        "init",
        "validate",
        "status",
        "explain",
        "retry",
        "skip",
        "pause",
        "resume",
        "cancel",
        "logs",
        "events",
        "install-skill",
    ] {
        ws.seqctl(&[sub, "--help"]).expect(0).stdout_has("Example");
    }
    ws.seqctl(&["--help"]).expect(0).stdout_has("--state FILE");
}

#[test]
fn init_writes_a_valid_plan_and_refuses_to_overwrite_one_in_progress() {
    let ws = Workspace::new();
    ws.seqctl(&["init", "--step", "no colon"])
        .expect(2)
        .stderr_has("title: instruction");
    assert!(!ws.state_path().exists(), "a refused init writes nothing");
    ws.seqctl(&[
        "init",
        "-s",
        "state.json",
        "--delay-minutes",
        "2",
        "--step",
        "Research: write notes.md",
        "--step",
        "Write: turn notes.md into paper.md",
    ])
    .expect(0)
    .stdout_has("created state.json: 2 steps (step-1, step-2)");
    let state = ws.state();
    assert_eq!(state["stepQueue"], serde_json::json!(["step-1", "step-2"]));
    assert_eq!(state["plan"]["steps"]["step-2"]["title"], "Write");
    assert_eq!(state["stepDelayMinutes"], 2);
    assert_eq!(state["status"], "IN_PROGRESS");
    let before = ws.bytes();
    ws.seqctl(&["init", "--step", "Other: plan"])
        .expect(2)
        .stderr_has("not DONE");
    assert_eq!(
        ws.bytes(),
        before,
        "a refused init leaves the file as it was"
    );
    ws.seqctl(&["init", "--force", "--json", "--step", "Other: plan"])
        .expect(0);
    assert_eq!(ws.state()["stepQueue"], serde_json::json!(["step-1"]));
    // From a plan file: progress in it is reset, the agent's own fields kept.
    let extras = fixture("agent-extras.json");
    let run = ws.seqctl(&[
        "init",
        "--force",
        "--json",
        "--plan",
        extras.to_str().unwrap(),
    ]);
    assert_eq!(run.expect(0).json()["replaced"], true);
    let state = ws.state();
    assert_eq!(state["taskId"], "req-2026-0412");
    assert_eq!(state["stepRuns"], serde_json::json!({}));
    assert_eq!(state["stepDelayMinutes"], 0.5);
    // A finished plan may be replaced without --force.
    let ws = Workspace::with_fixture("done.json");
    ws.seqctl(&["init", "--step", "Next: job"]).expect(0);
    let names = story(&ws);
    assert_eq!(names, ["plan_created"]);
}

#[test]
fn validate_checks_like_the_engine_and_warns() {
    for (name, _) in LEGACY {
        let path = fixture(name);
        Workspace::new()
            .seqctl(&["validate", path.to_str().unwrap()])
            .expect(0)
            .stdout_has("valid:");
    }
    let ws = Workspace::with_state(
        r#"{"plan":{"steps":{
            "a":{"instruction":"gather data","requiredOutputs":["data.csv"]},
            "b":{"instruction":"unused"}}},"stepQueue":["a"]}"#,
    );
    ws.seqctl(&["validate"])
        .expect(0)
        .stdout_has("warning: plan.steps.b: not in stepQueue")
        .stdout_has("warning: plan.steps.a.requiredOutputs: `data.csv` is not mentioned");
    let json = ws.seqctl(&["validate", "--json"]).expect(0).json();
    assert_eq!(json["warnings"].as_array().unwrap().len(), 2);
    ws.write("bad.json", r#"{"plan":{"steps":{}},"stepQueue":["x"]}"#);
    ws.seqctl(&["validate", "bad.json"])
        .expect(2)
        .stdout_has("bad.json: invalid: stepQueue[0]: step `x` is not defined in plan.steps");
    let json = ws
        .seqctl(&["validate", "--json", "bad.json"])
        .expect(2)
        .json();
    assert_eq!(json["field"], "stepQueue[0]");
}

#[test]
fn status_and_explain_read_every_legacy_file_without_changing_it() {
    for (name, status) in LEGACY {
        let ws = Workspace::with_fixture(name);
        let before = ws.bytes();
        let json = ws.seqctl(&["status", "--json"]).expect(0).json();
        assert_eq!(json["status"], *status, "{name}: {json:#}");
        ws.seqctl(&["status"]).expect(0).stdout_has("done");
        let explain = ws.seqctl(&["explain"]).expect(0).stdout();
        assert!(explain.trim_end().ends_with('.'), "{name}: {explain}");
        assert_eq!(
            ws.bytes(),
            before,
            "{name}: read-only commands changed the file"
        );
    }
    let done = Workspace::with_fixture("done.json");
    let json = done.seqctl(&["status", "--json"]).json();
    assert_eq!(
        json["completedResults"],
        serde_json::json!([{"step": "only", "title": "Only step", "result": "hello\n"}])
    );
    let mid = Workspace::with_fixture("mid-run.json");
    mid.seqctl(&["explain"])
        .stdout_has("Step pull-b try 1 was interrupted (no runner holds the lease)");
}

#[test]
fn status_of_a_blocked_plan_is_something_to_paste_into_a_chat() {
    let ws = Workspace::with_fixture("blocked.json");
    let run = ws.seqctl(&["status"]);
    assert_eq!(
        run.expect(0).stdout(),
        "\
plan blocked: 0/2 done
   STEP    TITLE             STATUS   TRIES  WHEN                  TOOK
>  step-1  Research Meteora  FAILED   3      2026-03-01 09:00:00Z  -
   step-2  Summarise         PENDING  0      -                     -
blocked: step-1: max retries (3) exceeded; last error: CoinMarketCap fetch empty, CoinGecko fetch empty
"
    );
    let json = ws.seqctl(&["status", "--json"]).json();
    assert_eq!(json["failedStep"]["step"], "step-1");
    assert_eq!(
        json["blockers"].as_array().unwrap().len(),
        1,
        "duplicates shown once"
    );
    ws.seqctl(&["explain"]).stdout_has(
        "Step step-1 is blocked after 3 failed tries; last error: CoinMarketCap fetch empty",
    );
}

/// An agent that fails step-2 until the file `fixed` exists, and keeps every prompt it got.
const FLAKY: &str = r#"printf '%s' "$1" > "prompt-$STEP_ID-$STEP_ATTEMPT.txt"
echo "output of $STEP_ID try $STEP_ATTEMPT"
if [ "$STEP_ID" = step-2 ] && [ ! -f fixed ]; then echo "mirror unreachable" >&2; exit 3; fi"#;

#[test]
fn a_failure_and_a_retry_read_as_a_true_story() {
    let mut ws = Workspace::new();
    ws.agent(FLAKY).set("STEP_MAX_RETRIES", "2");
    ws.seqctl(&[
        "init",
        "--step",
        "Fetch: fetch it",
        "--step",
        "Build: build it",
    ])
    .expect(0);
    ws.check(&["--wait"])
        .expect(1)
        .stdout_has("blocked: step step-2");
    let json = ws.seqctl(&["status", "--json"]).json();
    assert_eq!(json["status"], "blocked");
    assert_eq!(json["failedStep"]["tries"], 2);
    ws.seqctl(&["retry", "step-3"])
        .expect(2)
        .stderr_has("no step `step-3`");
    ws.seqctl(&["retry", "step-2", "--note", "use the mirror"])
        .expect(0)
        .stdout_has("tries reset (it had 2)");
    let state = ws.state();
    assert_eq!(state["blockers"], serde_json::json!([]));
    assert_eq!(state["stepRuns"]["step-2"]["tries"], 0);
    // The failed tries' logs are kept out of the way of the new tries'.
    let kept: Vec<String> = fs::read_dir(ws.sidecar().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".before-retry-"))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    ws.write("fixed", "");
    // This time through the detached runner, as a real heartbeat does.
    ws.check(&[])
        .expect(0)
        .stdout_has("started: step step-2 try 1");
    ws.wait_done(Duration::from_secs(10));
    ws.wait_idle(Duration::from_secs(10));
    assert!(ws
        .read("prompt-step-2-1.txt")
        .ends_with("Note from the person supervising this plan: use the mirror"));
    assert_eq!(
        story(&ws),
        [
            "plan_created",
            "step_started:step-1",
            "step_finished:step-1",
            "step_started:step-2",
            "step_finished:step-2",
            "step_started:step-2",
            "step_finished:step-2",
            "blocked:step-2",
            "retried:step-2",
            "heartbeat:step-2",
            "step_started:step-2",
            "step_finished:step-2",
            "plan_done",
        ]
    );
    let events = events(&ws);
    let by: Vec<&str> = events.iter().map(|e| e["by"].as_str().unwrap()).collect();
    assert_eq!(by[0], "seqctl");
    assert_eq!(by[8], "seqctl");
    assert_eq!(by[9], "check");
    assert_eq!(events[4]["status"], "FAILED");
    assert_eq!(events[4]["exitCode"], 3);
    assert_eq!(events[4]["attempt"], 1);
    assert!(events[4]["error"]
        .as_str()
        .unwrap()
        .contains("mirror unreachable"));
    assert_eq!(events[8]["note"], "use the mirror");
    assert_eq!(events[11]["status"], "DONE");
    assert!(events[10]["agentPid"].as_u64().unwrap() > 1);
    // The readable form and the raw lines.
    ws.seqctl(&["events"])
        .expect(0)
        .stdout_has("seqctl[")
        .stdout_has("step_finished step=step-2 attempt=1 status=FAILED exitCode=3");
    let raw = ws.seqctl(&["events", "--json"]).expect(0).stdout();
    assert_eq!(raw.lines().count(), 13);
    // Logs come from the derived path, whatever the state's logFile says.
    ws.seqctl(&["logs", "step-2", "--attempt", "1"])
        .expect(0)
        .stdout_has("output of step-2 try 1");
    let mut state = ws.state();
    state["stepRuns"]["step-1"]["logFile"] = "/etc/passwd".into();
    ws.write("state.json", &state.to_string());
    let run = ws.seqctl(&["logs", "step-1"]);
    assert_eq!(run.expect(0).stdout(), "output of step-1 try 1\n");
    ws.seqctl(&["logs", "step-1", "--attempt", "2"])
        .expect(2)
        .stderr_has("there is no try 2");
}

#[test]
fn pause_resume_and_skip() {
    let mut ws = Workspace::with_fixture("fresh-plan.json");
    ws.agent("echo ran $STEP_ID >> ran.txt");
    ws.seqctl(&["pause"])
        .expect(0)
        .stdout_has("paused: nothing new starts");
    ws.seqctl(&["pause"]).expect(0).stdout_has("already paused");
    assert_eq!(ws.state()["paused"], true);
    ws.check(&[]).expect(0).stdout_has("paused:");
    assert_eq!(ws.seqctl(&["status", "--json"]).json()["status"], "paused");
    ws.seqctl(&["resume"]).expect(0).stdout_has("resumed");
    assert!(
        ws.state().get("paused").is_none(),
        "paused: false is not written"
    );
    ws.seqctl(&["skip", "step-1"])
        .expect(0)
        .stdout_has("skipped");
    ws.check(&["--wait"]).expect(0);
    assert_eq!(ws.read("ran.txt"), "ran step-2\n");
    ws.seqctl(&["status"])
        .stdout_has("plan success: 1/2 done, 1 skipped");
    ws.seqctl(&["skip", "step-2"]).expect(2).stderr_has("DONE");
    ws.seqctl(&["pause"]).expect(2).stderr_has("DONE");
    let names = story(&ws);
    assert_eq!(
        names[..3],
        ["paused", "resumed", "skipped:step-1"],
        "{names:?}"
    );
    assert_eq!(names.last().map(String::as_str), Some("plan_done"));
}

#[test]
fn retry_and_skip_clear_a_legacy_blocker() {
    let ws = Workspace::with_fixture("blocked.json");
    ws.seqctl(&["retry", "step-2"])
        .expect(2)
        .stderr_has("not reached yet");
    ws.seqctl(&["retry", "step-1", "--json"]).expect(0);
    let state = ws.state();
    assert_eq!(state["blockers"], serde_json::json!([]));
    assert_eq!(state["stepRuns"]["step-1"]["status"], "PENDING");
    let ws = Workspace::with_fixture("blocked.json");
    ws.seqctl(&["skip", "step-1"]).expect(0);
    let state = ws.state();
    assert_eq!(state["blockers"], serde_json::json!([]));
    assert_eq!(state["stepRuns"]["step-1"]["status"], "SKIPPED");
    assert_eq!(ws.seqctl(&["status", "--json"]).json()["status"], "waiting");
}

#[test]
fn cancel_kills_the_agents_process_group_and_records_the_try() {
    let mut ws = Workspace::with_state(&plan(2, ""));
    // The agent leaves a child in its group, as real agents do (a browser, a build).
    ws.agent("sleep 60 &\necho $! > child.pid\necho started\nsleep 60");
    ws.seqctl(&["cancel"])
        .expect(2)
        .stderr_has("nothing is in flight");
    ws.check(&[]).expect(0).stdout_has("started: step s1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ws.read("child.pid").trim().is_empty() {
        assert!(Instant::now() < deadline, "the agent never started");
        thread::sleep(Duration::from_millis(20));
    }
    let child: u64 = ws.read("child.pid").trim().parse().unwrap();
    assert_eq!(ws.seqctl(&["status", "--json"]).json()["status"], "running");
    ws.seqctl(&["retry", "s1"])
        .expect(2)
        .stderr_has("in flight");
    ws.seqctl(&["skip", "s1"]).expect(2).stderr_has("in flight");
    ws.seqctl(&["cancel"])
        .expect(0)
        .stdout_has("cancelled step s1 try 1: its agent (process group");
    ws.wait_pid(child, Duration::from_secs(5));
    ws.wait_idle(Duration::from_secs(10));
    let state = ws.state();
    let run = &state["stepRuns"]["s1"];
    assert_eq!(run["status"], "FAILED");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .starts_with("cancelled by seqctl"),
        "the runner must not overwrite the cancel: {run}"
    );
    assert_eq!(state["paused"], true);
    let json = ws.seqctl(&["status", "--json"]).json();
    assert_eq!(
        json["status"], "paused",
        "paused after the cancel, not a failed plan"
    );
    assert_eq!(json["failedStep"]["step"], "s1");
    ws.seqctl(&["status"]).stdout_has("plan paused: 0/2 done");
    let names = story(&ws);
    assert_eq!(
        names,
        [
            "heartbeat:s1",
            "step_started:s1",
            "cancelled:s1",
            "step_finished:s1"
        ]
    );
    assert_eq!(events(&ws)[3]["recorded"], false);
    assert!(!pid_alive(child));
}

#[test]
fn logs_and_events_follow_as_they_grow() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    ws.agent("for i in 1 2 3; do echo line $i; sleep 0.2; done");
    let mut events = ws
        .command(SEQCTL)
        .args(["events", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = events.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    ws.check(&[]).expect(0);
    // Follows the try until it ends, then exits by itself.
    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let run = ws.seqctl(&["logs", "s1", "--follow"]);
        if run.code() == 0 {
            break run.stdout();
        }
        // Not started yet: there is no try to follow.
        assert!(Instant::now() < deadline, "{}", run.stderr());
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(log, "line 1\nline 2\nline 3\n");
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("plan_done")) {
        let line = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("events --follow printed only {seen:#?}"));
        seen.push(line);
    }
    events.kill().unwrap();
    events.wait().unwrap();
    assert!(seen[0].contains("heartbeat"), "{seen:#?}");
    assert!(seen
        .iter()
        .any(|l| l.contains("step_finished step=s1 attempt=1 status=DONE")));
}

#[test]
fn concurrent_appends_never_interleave() {
    use agent_step_sequencer::core::Event;
    use agent_step_sequencer::store::events::{append, By, Record};
    use agent_step_sequencer::store::Store;
    let ws = Workspace::with_state(&plan(1, ""));
    let store = Store::locate(&ws.state_path()).unwrap().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                for i in 0..200 {
                    let step = format!(
                        "{t}-{i}-{}",
                        char::from(b'a' + t as u8).to_string().repeat(3000)
                    );
                    let event = Event::Skipped {
                        step: step.into(),
                        reason: None,
                    };
                    append(&store, &Record::now(By::Seqctl, event)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let lines = events(&ws);
    assert_eq!(lines.len(), 1600);
    assert!(
        fs::metadata(ws.sidecar().join("events.jsonl.1")).is_ok(),
        "4.8 MB of events rotate past the 4 MiB cap"
    );
    for line in &lines {
        let step = line["step"].as_str().unwrap();
        let (prefix, body) = step.split_at(step.rfind('-').unwrap() + 1);
        let t: u8 = prefix.split('-').next().unwrap().parse().unwrap();
        assert_eq!(body, char::from(b'a' + t).to_string().repeat(3000));
    }
}

#[test]
fn install_skill_writes_this_versions_skill() {
    let ws = Workspace::new();
    let dir = ws.path().join("skills/agent-step-sequencer");
    ws.seqctl(&["install-skill", dir.to_str().unwrap()])
        .expect(0)
        .stdout_has("installed");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["SKILL.md", "references/state-schema.md"] {
        assert_eq!(
            fs::read(dir.join(name)).unwrap(),
            fs::read(root.join("skill").join(name)).unwrap(),
            "{name}"
        );
    }
    let mut ws = Workspace::new();
    let home = ws.path().to_str().unwrap().to_owned();
    ws.set("HOME", &home);
    let json = ws.seqctl(&["install-skill", "--json"]).expect(0).json();
    assert!(json["dir"]
        .as_str()
        .unwrap()
        .ends_with(".openclaw/skills/agent-step-sequencer"));
    assert!(ws
        .path()
        .join(".openclaw/skills/agent-step-sequencer/SKILL.md")
        .exists());
}

#[test]
fn commands_on_a_missing_or_broken_state_file_fail_cleanly() {
    let ws = Workspace::new();
    ws.seqctl(&["status"])
        .expect(2)
        .stderr_has("no such state file");
    ws.write("state.json", "{ broken");
    let before = ws.bytes();
    for args in [
        &["status"][..],
        &["pause"],
        &["retry", "x"],
        &["skip", "x"],
        &["cancel"],
    ] {
        ws.seqctl(args).expect(2).stderr_has("invalid state");
    }
    assert_eq!(ws.bytes(), before);
    let json = ws.seqctl(&["status", "--json"]).expect(2).json();
    assert!(json["error"].as_str().unwrap().contains("invalid state"));
}

/// A workspace whose PATH holds the three binaries under test (and nothing of the host's but
/// /usr/bin and /bin), with HOME inside it.
fn doctor_workspace() -> Workspace {
    let mut ws = Workspace::with_state(&plan(2, ""));
    let bin = ws.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    for program in [CHECK, RUNNER, SEQCTL] {
        let name = std::path::Path::new(program).file_name().unwrap();
        std::os::unix::fs::symlink(program, bin.join(name)).unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let home = ws.path().display().to_string();
    ws.set("PATH", &path).set("HOME", &home);
    ws
}

#[test]
fn doctor_names_each_problem_with_its_fix_and_exits_1_until_all_is_well() {
    let mut ws = doctor_workspace();
    // Nothing set up: no agent command, no skill.
    let run = ws.seqctl(&["doctor", "state.json"]);
    run.expect(1)
        .stdout_has("problem  agent: STEP_AGENT_CMD is not set")
        .stdout_has(
            "fix: STEP_AGENT_CMD='openclaw agent exec --timeout 0 --message-file {prompt_file}'",
        )
        .stdout_has("ok       binaries: seq-check, seq-runner and seqctl")
        .stdout_has("is a valid plan of 2 steps")
        .stdout_has("warning  skill: the skill is not installed where OpenClaw looks")
        .stdout_has("fix: seqctl install-skill")
        // No openclaw on this PATH: said, not silently left out.
        .stdout_has("warning  openclaw: `openclaw` is not on PATH");
    // A shell is refused as the runner would refuse it.
    ws.set("STEP_AGENT_CMD", "bash -c");
    ws.seqctl(&["doctor"])
        .expect(1)
        .stdout_has("problem  agent: STEP_AGENT_CMD is refused");
    // All in place: exit 0, and the argv shows where the prompt goes.
    ws.agent("exit 0");
    ws.seqctl(&["install-skill"]).expect(0);
    let run = ws.seqctl(&["doctor", "--json"]);
    let json = run.expect(0).json();
    assert_eq!(json["ok"], true, "{json:#}");
    let text = ws.seqctl(&["doctor"]).expect(0).stdout();
    assert!(text.contains("agent.sh ⟨prompt⟩"), "{text}");
    assert!(text.contains("holds this version's skill"), "{text}");
    // A broken state file is a problem, named with its field.
    ws.write("state.json", r#"{"plan":{"steps":{}},"stepQueue":["x"]}"#);
    ws.seqctl(&["doctor"])
        .expect(1)
        .stdout_has("problem  state:")
        .stdout_has("stepQueue[0]: step `x` is not defined");
}

#[test]
fn doctor_reports_a_skill_openclaw_disabled_and_how_to_enable_it() {
    let mut ws = doctor_workspace();
    ws.agent("exit 0");
    ws.seqctl(&["install-skill"]).expect(0);
    // A stand-in for `openclaw skills info agent-step-sequencer --json` after `doctor --fix`.
    ws.script(
        "bin/openclaw",
        r#"[ "$*" = "skills info agent-step-sequencer --json" ] || exit 9
echo '{"name":"agent-step-sequencer","eligible":false,"disabled":true,"missing":{"bins":[],"env":[]}}'"#,
    );
    ws.seqctl(&["doctor"])
        .expect(1)
        .stdout_has("problem  openclaw: the skill is disabled in OpenClaw's config")
        .stdout_has("fix: openclaw config set skills.entries.agent-step-sequencer.enabled true");
}
