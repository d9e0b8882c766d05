//! Stress: 16 `seq-check` processes started at once, round after round, against one 50-step
//! plan. Every step's agent runs exactly once, no two agents overlap, the state parses after
//! every write (a reader re-parses it in a tight loop), and no field is lost at any level.
//! The same on a parallel plan (`needs`, `forEach`, `maxParallel` 3): exactly once, never two
//! tries of one step at once, never more than three at once, and steps do run side by side.
//!
//! Bounded to a few seconds; `SEQ_SOAK=1` (or a count of plans) soaks longer.

use std::process::Output;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{Workspace, CHECK};
use crate::proof::{
    assert_parallel_done, at_most_in_progress, detector_agent, parallel_agent, parallel_plan,
    parallel_units, temp_files, trials, wait_no_processes, with_item_runs, AgentLog, Watcher,
    MAX_PARALLEL,
};

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

/// Bursts of heartbeats until the plan is DONE, then two more on the finished plan; waits for
/// every check and for the processes of the plan to end. In burst `wait_round`, four of the
/// sixteen run the steps in the foreground (--wait), racing the detached runner for the lease;
/// they return when the plan is done. Returns the bursts it took.
fn hammer(ws: &Arc<Workspace>, wait_round: usize, ctx: &str) -> usize {
    let started = Instant::now();
    let mut waiters = Vec::new();
    let mut rounds = 0;
    loop {
        rounds += 1;
        let wait = if rounds == wait_round { 4 } else { 0 };
        let mut handles = burst(ws, wait);
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
        for handle in burst(ws, 0) {
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
    rounds
}

fn stress_one_plan(plan: u64) {
    let ctx = format!("stress plan {plan}");
    let original = plan_with_extras();
    let mut ws = Workspace::with_state(&serde_json::to_string_pretty(&original).unwrap());
    ws.agent(&detector_agent(""));
    let ws = Arc::new(ws);
    let watcher = Watcher::start(ws.state_path());
    let started = Instant::now();
    let rounds = hammer(&ws, 5, &ctx);
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

/// The same burst on [`parallel_plan`]: every step and item runs exactly once, never two tries
/// of one step at once, never more than `maxParallel` at once (in the state, on every read,
/// and by the agents' own times), each after everything it needs, and steps DO run side by
/// side (a scheduler that ran one at a time would fail here).
fn stress_parallel_plan(plan: u64) {
    let ctx = format!("parallel stress plan {plan}");
    let original = parallel_plan();
    let mut ws = Workspace::with_state(&serde_json::to_string_pretty(&original).unwrap());
    ws.agent(&parallel_agent("0.15"));
    let ws = Arc::new(ws);
    let watcher = Watcher::start_with(ws.state_path(), at_most_in_progress(MAX_PARALLEL));
    let started = Instant::now();
    // The plan takes a few bursts: the foreground checks race in the first or the second.
    let rounds = hammer(&ws, 1 + (plan % 2) as usize, &ctx);
    let report = watcher.finish(&ctx);

    let log = AgentLog::read(ws.path());
    log.assert_no_overlap_per_step(&ctx);
    let peak = log.assert_at_most_at_once(MAX_PARALLEL, &ctx);
    assert!(
        peak >= 2,
        "{ctx}: no two steps ever ran at once (maxParallel {MAX_PARALLEL})\nagent.log:\n{}",
        log.text
    );
    let units = parallel_units();
    log.assert_needs_kept(&units, &ctx);
    let state = with_item_runs(ws.path(), ws.state());
    assert_parallel_done(&state, &ctx);
    for (unit, _) in &units {
        assert_eq!(
            log.starts.get(unit).map(Vec::as_slice),
            Some(&[1][..]),
            "{ctx}: {unit} must have run exactly once\nagent.log:\n{}",
            log.text
        );
        assert_eq!(state["stepRuns"][unit]["tries"], 1, "{ctx}: {unit}");
    }
    assert_eq!(
        log.starts.len(),
        units.len(),
        "{ctx}: agents ran for units the plan does not have\n{}",
        log.text
    );
    assert_kept(&original, &state, "", &ctx);
    let temps = temp_files(&ws.sidecar());
    assert!(temps.is_empty(), "{ctx}: stale temp files left: {temps:?}");
    eprintln!(
        "{ctx}: {rounds} bursts of {CHECKS} checks, {} state reads all parsed, peak {peak} \
         agents at once, {:.1} s",
        report.reads,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn sixteen_checks_at_once_run_every_step_and_item_of_a_parallel_plan_exactly_once() {
    for plan in 0..trials(2, 10) {
        stress_parallel_plan(plan);
    }
}
