//! Stress: 16 `seq-check` processes started at once, round after round, against one 50-step
//! plan. Every step's agent runs exactly once, no two agents overlap, the state parses after
//! every write (a reader re-parses it in a tight loop), and no field is lost at any level.
//!
//! Bounded to a few seconds; `SEQ_SOAK=1` (or a count of plans) soaks longer.

use std::process::Output;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{Workspace, CHECK};
use crate::proof::{detector_agent, trials, wait_no_processes, AgentLog, Watcher};

const STEPS: usize = 50;
const CHECKS: usize = 16;

/// A 50-step plan with unknown fields at every level: top, plan, each step, each stepRun.
fn plan_with_extras() -> Value {
    let mut steps = serde_json::Map::new();
    let mut runs = serde_json::Map::new();
    let mut queue = Vec::new();
    for i in 1..=STEPS {
        let id = format!("s{i}");
        steps.insert(
            id.clone(),
            json!({
                "title": format!("Step {i}"),
                "instruction": format!("do {id}"),
                "x_step": {"n": i, "tags": ["a", i]},
            }),
        );
        runs.insert(
            id.clone(),
            json!({"status": "PENDING", "tries": 0, "x_run": format!("r{i}")}),
        );
        queue.push(id);
    }
    json!({
        "x_top": {"nested": [1, {"a": null}], "f": 1.5},
        "plan": {"x_plan": "kept", "steps": steps},
        "stepQueue": queue,
        "currentStep": 0,
        "stepRuns": runs,
        "status": "IN_PROGRESS",
        "x_tail": [true, false],
    })
}

/// Runs `CHECKS` heartbeats released together by a barrier; `wait` of them with `--wait`.
fn burst(ws: &Arc<Workspace>, wait: usize) -> Vec<thread::JoinHandle<Output>> {
    let barrier = Arc::new(Barrier::new(CHECKS));
    (0..CHECKS)
        .map(|i| {
            let ws = Arc::clone(ws);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut command = ws.command(CHECK);
                command.arg("state.json");
                if i < wait {
                    command.arg("--wait").arg("--quiet");
                }
                barrier.wait();
                command.output().expect("spawn seq-check")
            })
        })
        .collect()
}

fn stress_one_plan(plan: u64) {
    let ctx = format!("stress plan {plan}");
    let original = plan_with_extras();
    let mut ws = Workspace::with_state(&serde_json::to_string_pretty(&original).unwrap());
    ws.agent(&detector_agent(""));
    let ws = Arc::new(ws);
    let watcher = Watcher::start(ws.state_path());
    let started = Instant::now();
    let mut waiters = Vec::new();
    let mut rounds = 0;
    loop {
        rounds += 1;
        // In round 5, four of the sixteen run the steps in the foreground (--wait), racing
        // the detached runner for the lease; they return when the plan is done.
        let wait = if rounds == 5 { 4 } else { 0 };
        let mut handles = burst(&ws, wait);
        waiters.extend(handles.drain(..wait));
        for handle in handles {
            let out = handle.join().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{ctx} round {rounds}: seq-check failed\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if ws.state()["status"] == "DONE" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{ctx}: the plan did not finish\n{:#}",
            ws.state()
        );
        thread::sleep(Duration::from_millis(15));
    }
    // Two more bursts on the finished plan: nothing may run again.
    for _ in 0..2 {
        for handle in burst(&ws, 0) {
            assert_eq!(handle.join().unwrap().status.code(), Some(0));
        }
    }
    for waiter in waiters {
        let out = waiter.join().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{ctx}: seq-check --wait failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait_no_processes(ws.path(), Duration::from_secs(10));
    let report = watcher.finish(&ctx);

    let log = AgentLog::read(ws.path());
    log.assert_no_overlap(&ctx);
    let state = ws.state();
    for i in 1..=STEPS {
        let id = format!("s{i}");
        assert_eq!(
            log.starts.get(&id).map(Vec::as_slice),
            Some(&[1][..]),
            "{ctx}: step {id} must have run exactly once\nagent.log:\n{}",
            log.text
        );
        assert_eq!(log.ends.get(&id).map(Vec::as_slice), Some(&[1][..]));
        assert_eq!(state["stepRuns"][&id]["status"], "DONE", "{ctx}: {id}");
        assert_eq!(state["stepRuns"][&id]["tries"], 1, "{ctx}: {id}");
    }
    // The agents ran in queue order.
    let order: Vec<&str> = log.spans.iter().map(|s| s.2.as_str()).collect();
    let expected: Vec<String> = (1..=STEPS).map(|i| format!("s{i}")).collect();
    assert_eq!(order, expected, "{ctx}: steps ran out of order");
    assert_kept(&original, &state, "", &ctx);
    eprintln!(
        "{ctx}: {rounds} bursts of {CHECKS} checks, {} state reads all parsed, {:.1} s",
        report.reads,
        started.elapsed().as_secs_f64()
    );
}

/// Every unknown (`x_`) field of `before` is in `after`, equal, at every level.
fn assert_kept(before: &Value, after: &Value, path: &str, ctx: &str) {
    if let (Value::Object(b), Value::Object(a)) = (before, after) {
        for (key, value) in b {
            let inner = format!("{path}.{key}");
            let kept = a
                .get(key)
                .unwrap_or_else(|| panic!("{ctx}: field {inner} was lost"));
            if key.starts_with("x_") {
                assert_eq!(kept, value, "{ctx}: field {inner} changed");
            } else {
                assert_kept(value, kept, &inner, ctx);
            }
        }
    }
}

#[test]
fn sixteen_checks_at_once_run_every_step_exactly_once() {
    for plan in 0..trials(1, 10) {
        stress_one_plan(plan);
    }
}
