//! A plan from start to done over MCP alone, through a blocker, a retry with a note and a
//! cancel, with every result's structure checked on the way.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::Client;
use crate::common::Workspace;

/// The fake agent: `flaky` fails until a note names the mirror, `slow` waits to be cancelled
/// until the test drops a `release` file, `write` writes the required `paper.md`.
const AGENT: &str = r##"
case "$STEP_ID" in
  fetch) echo "fetched 3 rows" ;;
  flaky)
    case "$*" in
      *"use the mirror"*) echo "fetched from the mirror" ;;
      *) echo "no network" >&2; exit 3 ;;
    esac ;;
  slow)
    if [ -e release ]; then echo "slow done"; else echo "$$" > slow.started; sleep 60; fi ;;
  write) echo "# paper" > paper.md; echo "wrote paper.md" ;;
  *) echo "unexpected step $STEP_ID" >&2; exit 9 ;;
esac"##;

pub fn plan() -> Value {
    json!({
        "plan": { "steps": {
            "fetch": { "title": "Fetch", "instruction": "Fetch the data" },
            "flaky": { "title": "Flaky", "instruction": "Fetch the other data", "maxRetries": 2 },
            "slow": { "title": "Slow", "instruction": "Take your time" },
            "write": { "title": "Write", "instruction": "Write paper.md", "requiredOutputs": ["paper.md"] },
            "extra": { "title": "Extra", "instruction": "Never needed" },
        }},
        "stepQueue": ["fetch", "flaky", "slow", "write", "extra"],
        "stepDelayMinutes": 0,
    })
}

/// Polls `plan_status` until the plan's status is `want`; returns the status object.
pub fn wait_status(client: &mut Client, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.ok("plan_status", &json!({}));
        if status["status"] == want {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the plan never became {want}: {status:#}"
        );
        thread::sleep(Duration::from_millis(30));
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[test]
fn a_plan_runs_to_done_through_a_blocker_a_retry_with_a_note_and_a_cancel() {
    let mut ws = Workspace::new();
    ws.agent(AGENT);
    let mut mcp = Client::start(&ws);
    refuses_an_invalid_plan(&mut mcp, &ws);
    starts(&mut mcp, &ws);
    blocks(&mut mcp, &ws);
    steers(&mut mcp);
    let runner = cancels_and_resumes(&mut mcp, &ws);
    tells_the_story(&mut mcp, runner);
    // A finished plan can be replaced.
    let checked = mcp.ok("plan_validate", &json!({ "plan": plan() }));
    assert_eq!(checked["startable"], true, "{checked:#}");
    assert_eq!(mcp.close(), 0);
}

/// An invalid plan: every problem at once, and nothing written.
fn refuses_an_invalid_plan(mcp: &mut Client, ws: &Workspace) {
    let bad = json!({
        "plan": { "steps": { "a": { "instruction": " " }, "b": { "instruction": "x", "maxRetries": 0 } } },
        "stepQueue": ["a", "b", "c"],
    });
    let checked = mcp.ok("plan_validate", &json!({ "plan": bad }));
    assert_eq!(checked["valid"], false, "{checked:#}");
    let fields: Vec<&str> = checked["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(p["problem"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
            p["field"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        fields,
        [
            "plan.steps.a.instruction",
            "plan.steps.b.maxRetries",
            "stepQueue[2]"
        ]
    );
    assert_eq!(checked["startable"], false);
    let refused = mcp.err("plan_start", &json!({ "plan": bad }));
    assert!(
        refused.starts_with("invalid plan: plan.steps.a.instruction: missing or empty"),
        "{refused}"
    );
    assert!(!ws.state_path().exists(), "a refused plan wrote a file");
}

/// A valid plan, checked, then started: its first step is on its way at once.
fn starts(mcp: &mut Client, ws: &Workspace) {
    let checked = mcp.ok("plan_validate", &json!({ "plan": plan() }));
    assert_eq!(
        checked,
        json!({
            "valid": true, "steps": ["fetch", "flaky", "slow", "write", "extra"],
            "problems": [], "warnings": [], "startable": true, "refusal": null,
        })
    );
    let started = mcp.ok(
        "plan_start",
        &json!({ "plan": plan(), "state": "state.json" }),
    );
    let real = ws.state_path().canonicalize().unwrap();
    assert_eq!(started["stateFile"], real.display().to_string());
    assert_eq!(started["replaced"], false);
    assert_eq!(started["steps"], checked["steps"]);
    let beat = &started["heartbeat"];
    assert_eq!(beat["result"], "started", "{started:#}");
    assert_eq!(
        (&beat["step"], &beat["attempt"]),
        (&json!("fetch"), &json!(1))
    );
    let pid = beat["pid"].as_u64().expect("the runner's pid");
    assert_eq!(
        beat["lines"],
        json!([format!("started: step fetch try 1 (seq-runner pid {pid})")])
    );

    // A live plan is never replaced.
    let refused = mcp.err("plan_start", &json!({ "plan": plan() }));
    assert!(
        refused.contains("nothing was written") || refused.contains("is working on this plan"),
        "{refused}"
    );
    let checked = mcp.ok("plan_validate", &json!({ "plan": plan() }));
    assert_eq!(checked["startable"], false, "{checked:#}");
    assert!(checked["refusal"].is_string(), "{checked:#}");
}

/// flaky fails both its tries: a blocker, seen by every tool that looks.
fn blocks(mcp: &mut Client, ws: &Workspace) {
    let status = wait_status(mcp, "blocked");
    // Its runner lets go before the next heartbeat, which would otherwise find the plan held.
    ws.wait_idle(Duration::from_secs(30));
    let real = ws.state_path().canonicalize().unwrap();
    assert_eq!(status["stateFile"], real.display().to_string());
    assert_eq!((&status["done"], &status["total"]), (&json!(1), &json!(5)));
    assert_eq!(status["currentStep"], "flaky");
    assert_eq!(status["blockers"][0]["step"], "flaky", "{status:#}");
    assert_eq!(status["steps"][1]["status"], "FAILED");
    assert_eq!(status["steps"][1]["tries"], 2);
    assert_eq!(status["failedStep"]["step"], "flaky");
    let beat = mcp.ok("heartbeat", &json!({}));
    assert_eq!(beat["result"], "blocked", "{beat:#}");
    assert_eq!(
        (&beat["step"], &beat["attempt"]),
        (&json!("flaky"), &json!(2))
    );
    assert!(
        beat["error"].as_str().unwrap().contains("no network"),
        "{beat:#}"
    );
    let line = beat["lines"][0].as_str().unwrap();
    assert!(
        line.starts_with("blocked: step flaky failed 2 tries; last error: exit code 3"),
        "{beat:#}"
    );
    let why = mcp.ok("plan_explain", &json!({}));
    assert_eq!(
        (&why["status"], &why["step"]),
        (&json!("blocked"), &json!("flaky"))
    );
    assert!(
        why["explanation"]
            .as_str()
            .unwrap()
            .starts_with("Step flaky is blocked after 2 failed tries"),
        "{why:#}"
    );
    // One step, by name: the one before the blocker is done.
    let fetch = mcp.ok("plan_explain", &json!({ "step": "fetch" }));
    assert!(
        fetch["explanation"]
            .as_str()
            .unwrap()
            .starts_with("Step fetch is done"),
        "{fetch:#}"
    );
    let result = mcp.ok("plan_result", &json!({}));
    assert_eq!(result["status"], "blocked");
    assert_eq!(
        result["completed_results"],
        json!([{ "step": "fetch", "title": "Fetch", "result": "fetched 3 rows\n" }])
    );
    assert_eq!(result["failed_step"]["step"], "flaky");
    assert_eq!(result["failed_step"]["title"], "Flaky");
    assert!(result["failed_step"]["error"]
        .as_str()
        .unwrap()
        .contains("no network"));

    // Its log, whole and bounded.
    let log = mcp.ok("step_logs", &json!({ "step": "flaky" }));
    assert_eq!(
        (&log["step"], &log["attempt"]),
        (&json!("flaky"), &json!(2))
    );
    assert_eq!(log["truncated"], false);
    let text = log["text"].as_str().unwrap();
    assert!(text.contains("no network"), "{log:#}");
    assert_eq!(log["size"], text.len());
    assert!(Path::new(log["logFile"].as_str().unwrap()).is_file());
    let tail = mcp.ok(
        "step_logs",
        &json!({ "step": "flaky", "attempt": 1, "max_bytes": 4 }),
    );
    assert_eq!(
        (&tail["attempt"], &tail["truncated"]),
        (&json!(1), &json!(true))
    );
    assert!(tail["text"].as_str().unwrap().len() <= 4, "{tail:#}");
    assert!(tail["size"].as_u64().unwrap() > 4, "{tail:#}");
}

/// Pause and resume (each idempotent), a later step skipped ahead of time, and a retry with a
/// note that reaches the prompt.
fn steers(mcp: &mut Client) {
    assert_eq!(
        mcp.ok("plan_pause", &json!({})),
        json!({ "paused": true, "changed": true })
    );
    assert_eq!(
        mcp.ok("plan_pause", &json!({})),
        json!({ "paused": true, "changed": false })
    );
    assert_eq!(
        mcp.ok("plan_resume", &json!({})),
        json!({ "paused": false, "changed": true })
    );
    assert_eq!(
        mcp.ok("step_skip", &json!({ "step": "extra" })),
        json!({ "step": "extra", "changed": true })
    );

    // A retry with a note: the note reaches the prompt, and flaky passes.
    let retried = mcp.ok(
        "step_retry",
        &json!({ "step": "flaky", "note": "use the mirror" }),
    );
    assert_eq!(
        retried,
        json!({ "step": "flaky", "previousTries": 2, "note": "use the mirror", "paused": false })
    );
    let beat = mcp.ok("heartbeat", &json!({}));
    assert_eq!(beat["result"], "started", "{beat:#}");
    assert_eq!(
        (&beat["step"], &beat["attempt"]),
        (&json!("flaky"), &json!(1))
    );
}

/// A cancel of the hanging step, then a resume to the finish; returns the last runner's pid.
fn cancels_and_resumes(mcp: &mut Client, ws: &Workspace) -> u64 {
    // slow hangs: cancel it, which pauses the plan on a failed try.
    ws.wait_file("slow.started", Duration::from_secs(30));
    let status = mcp.ok("plan_status", &json!({}));
    assert_eq!(status["status"], "running", "{status:#}");
    assert_eq!(status["inFlight"]["step"], "slow");
    assert_eq!(status["inFlight"]["attempt"], 1);
    let cancelled = mcp.ok("plan_cancel", &json!({}));
    assert_eq!(
        (&cancelled["step"], &cancelled["attempt"]),
        (&json!("slow"), &json!(1))
    );
    assert!(cancelled["agentPgid"].is_u64(), "{cancelled:#}");
    assert_eq!(cancelled["stopped"], "terminated", "{cancelled:#}");
    ws.wait_idle(Duration::from_secs(30));
    let status = mcp.ok("plan_status", &json!({}));
    assert_eq!(
        (&status["status"], &status["paused"]),
        (&json!("paused"), &json!(true)),
        "paused after the cancel, not a failed plan (issue 13)"
    );
    assert_eq!(status["failedStep"]["step"], "slow", "{status:#}");
    let why = mcp.ok("plan_explain", &json!({}));
    assert!(
        why["explanation"]
            .as_str()
            .unwrap()
            .starts_with("The plan is paused after step slow try 1 failed"),
        "{why:#}"
    );

    // Resumed, slow runs again (released this time) and the plan finishes.
    ws.write("release", "");
    assert_eq!(
        mcp.ok("plan_resume", &json!({})),
        json!({ "paused": false, "changed": true })
    );
    let beat = mcp.ok("heartbeat", &json!({}));
    assert_eq!(
        (&beat["result"], &beat["step"]),
        (&json!("started"), &json!("slow"))
    );
    assert_eq!(beat["attempt"], 2);
    let runner = beat["pid"].as_u64().unwrap();
    wait_status(mcp, "success");
    let result = mcp.ok("plan_result", &json!({}));
    assert_eq!(
        result,
        json!({
            "status": "success",
            "completed_results": [
                { "step": "fetch", "title": "Fetch", "result": "fetched 3 rows\n" },
                { "step": "flaky", "title": "Flaky", "result": "fetched from the mirror\n" },
                { "step": "slow", "title": "Slow", "result": "slow done\n" },
                { "step": "write", "title": "Write", "result": "wrote paper.md\n" },
            ],
            "failed_step": null,
        })
    );
    let beat = mcp.ok("heartbeat", &json!({}));
    assert_eq!(
        beat["lines"],
        json!(["done: 4 of 5 steps finished, 1 skipped; artifacts: paper.md"]),
        "{beat:#}"
    );
    assert_eq!(beat["newlyDone"], true);
    let beat = mcp.ok("heartbeat", &json!({}));
    assert_eq!(beat["lines"], json!(["nothing to do: the plan is done"]));

    runner
}

/// The runner was reaped, and the event log tells the story, page by page.
fn tells_the_story(mcp: &mut Client, runner: u64) {
    // The server waited for the runner it started: no zombie stays behind.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{runner}")).exists() {
        assert!(Instant::now() < deadline, "runner {runner} was not reaped");
        thread::sleep(Duration::from_millis(20));
    }

    // The story, in the event log, page by page.
    let events = mcp.ok("plan_events", &json!({ "since": 0 }));
    let story = names(&events["events"]);
    for want in [
        "plan_created",
        "step_started",
        "step_finished",
        "blocked",
        "paused",
        "resumed",
        "skipped",
        "retried",
        "cancelled",
        "plan_done",
    ] {
        assert!(story.iter().any(|e| e == want), "no {want} in {story:?}");
    }
    assert_eq!(story[0], "plan_created");
    let total = events["total"].as_u64().unwrap();
    assert_eq!(
        (&events["since"], &events["next"]),
        (&json!(0), &json!(total))
    );
    assert_eq!(events["more"], false);
    let retried = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "retried")
        .unwrap();
    assert_eq!(retried["note"], "use the mirror", "{retried}");
    let newer = mcp.ok("plan_events", &json!({ "since": total }));
    assert_eq!(newer["events"], json!([]));
    assert_eq!(newer["next"], total);
    let page = mcp.ok("plan_events", &json!({ "since": 1, "limit": 2 }));
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!((&page["next"], &page["more"]), (&json!(3), &json!(true)));
}
