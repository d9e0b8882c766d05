//! Crash: the runner, and separately the check, killed with SIGKILL at random moments across
//! many trials, then heartbeats resume the plan. The file always parses, no two agents ever
//! overlap, every step ends DONE, and each kill costs at most one repeated attempt of the
//! step it interrupted.
//!
//! Trials are seeded (the seed is in every failure message; `SEQ_SEED` changes the base);
//! 20 trials by default, `SEQ_SOAK=1` for 200 or `SEQ_SOAK=N` for N.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use agent_step_sequencer::format::validate;

use crate::common::{plan, Workspace, CHECK};
use crate::proof::{
    detector_agent, kill9, seed, temp_files, trials, wait_no_processes, AgentLog, Rng, Watcher,
};

const STEPS: usize = 5;

/// The try left IN_PROGRESS in the state file, if any (read once everything has stopped).
fn in_progress(ws: &Workspace) -> Option<(String, u32)> {
    let bytes = ws.bytes();
    let state = validate::parse(&bytes).expect("state parses after a kill");
    state
        .step_runs
        .iter()
        .find(|(_, run)| run.status == agent_step_sequencer::format::schema::StepStatus::InProgress)
        .map(|(id, run)| (id.clone(), run.tries))
}

/// A save killed mid-write leaves its temp file; the next save (under the lock) removes it, so
/// kills do not pile files up in the sidecar.
#[track_caller]
fn assert_no_stale_temps(ws: &Workspace, ctx: &str) {
    let temps = temp_files(&ws.sidecar());
    assert!(temps.is_empty(), "{ctx}: stale temp files left: {temps:?}");
}

/// Lets an unkilled heartbeat finish the plan, then checks that every read of the file parsed,
/// no two agents overlapped, and the plan is DONE; returns the agents' log and the state.
fn finish(ws: &Workspace, watcher: Watcher, ctx: &str) -> (AgentLog, serde_json::Value) {
    ws.check(&["--wait"]).expect(0);
    wait_no_processes(ws.path(), Duration::from_secs(10));
    watcher.finish(ctx);
    let log = AgentLog::read(ws.path());
    log.assert_no_overlap(ctx);
    let state = ws.state();
    assert_eq!(state["status"], "DONE", "{ctx}: {state:#}");
    (log, state)
}

fn runner_kill_trial(trial: u64) {
    let seed = seed(1, trial);
    let ctx = format!("runner-kill trial {trial} (seed {seed:#x})");
    let mut rng = Rng::new(seed);
    let mut ws = Workspace::with_state(&plan(STEPS, ""));
    ws.agent(&detector_agent("0.03"));
    // Kills must not exhaust the tries: this trial is about repeats, not blockers.
    ws.set("STEP_MAX_RETRIES", "1000");
    let watcher = Watcher::start(ws.state_path());
    let kills = 1 + rng.below(5);
    // Per step, the tries a kill cut short (a kill that lands before the process changed
    // anything finds the same try again, so tries are counted, not kills).
    let mut interrupted: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let mut done_kills = 0;
    for _ in 0..kills {
        // Half the time the detached runner a heartbeat starts, half the time a foreground
        // `seq-check --wait` (the runner loop in the check's own process).
        let foreground = rng.below(2) == 0;
        let mut child = None;
        let pid = if foreground {
            let spawned = ws
                .command(CHECK)
                .args(["--wait", "--quiet"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let pid = spawned.id();
            child = Some(spawned);
            pid
        } else {
            let run = ws.check(&["--json"]);
            let beat = run.expect(0).json();
            match beat["result"].as_str() {
                Some("started") => u32::try_from(beat["pid"].as_u64().unwrap()).unwrap(),
                Some("done") => break,
                other => panic!("{ctx}: unexpected heartbeat {other:?}: {beat}"),
            }
        };
        thread::sleep(Duration::from_micros(rng.below(150_000)));
        kill9(pid);
        if let Some(mut child) = child {
            child.wait().unwrap();
        }
        // Let the killed runner's agent (the `sleep` it left) end, then see what was cut short.
        wait_no_processes(ws.path(), Duration::from_secs(10));
        done_kills += 1;
        if let Some((step, attempt)) = in_progress(&ws) {
            interrupted.entry(step).or_default().insert(attempt);
        }
        if ws.state()["status"] == "DONE" {
            break;
        }
    }
    // Heartbeats resume the plan.
    let (log, state) = finish(&ws, watcher, &ctx);
    let mut repeats = 0;
    for i in 1..=STEPS {
        let id = format!("s{i}");
        let cut = interrupted.get(&id).map_or(0, |tries| tries.len() as u32);
        let starts = log.starts_of(&id);
        assert_eq!(state["stepRuns"][&id]["status"], "DONE", "{ctx}: {id}");
        assert!(
            (1..=1 + cut as usize).contains(&starts),
            "{ctx}: step {id} started {starts} times with {cut} of its tries cut short\n\
             cut short: {interrupted:?}\nagent.log:\n{}",
            log.text
        );
        assert_eq!(
            state["stepRuns"][&id]["tries"],
            u64::from(1 + cut),
            "{ctx}: step {id}: every interrupted try counts once, plus the one that finished\n\
             cut short: {interrupted:?}\nstate: {state:#}"
        );
        repeats += starts - 1;
    }
    assert!(
        repeats <= done_kills,
        "{ctx}: {repeats} repeats for {done_kills} kills"
    );
    assert_no_stale_temps(&ws, &ctx);
}

#[test]
fn a_killed_runner_costs_at_most_one_repeat_per_kill() {
    let n = trials(20, 200);
    (0..n).for_each(runner_kill_trial);
}

fn check_kill_trial(trial: u64) {
    let seed = seed(2, trial);
    let ctx = format!("check-kill trial {trial} (seed {seed:#x})");
    let mut rng = Rng::new(seed);
    let mut ws = Workspace::with_state(&plan(STEPS, ""));
    ws.agent(&detector_agent(""));
    let watcher = Watcher::start(ws.state_path());
    let mut kills = 0;
    for _ in 0..60 {
        let mut child = ws
            .command(CHECK)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_micros(rng.below(4_000)));
        kill9(child.id());
        child.wait().unwrap();
        kills += 1;
        validate::parse(&fs::read(ws.state_path()).unwrap())
            .unwrap_or_else(|e| panic!("{ctx}: the state does not parse after a kill: {e}"));
        if ws.state()["status"] == "DONE" {
            break;
        }
    }
    // Unkilled heartbeats finish what the killed ones left.
    let (log, state) = finish(&ws, watcher, &ctx);
    for i in 1..=STEPS {
        let id = format!("s{i}");
        // Killing a check never interrupts a step: the runner is in a session of its own.
        assert_eq!(
            log.starts_of(&id),
            1,
            "{ctx} ({kills} kills): step {id} must run exactly once\n{}",
            log.text
        );
        assert_eq!(state["stepRuns"][&id]["tries"], 1, "{ctx}: {id}");
    }
    assert_no_stale_temps(&ws, &ctx);
}

#[test]
fn a_killed_check_never_corrupts_or_repeats() {
    let n = trials(10, 100);
    (0..n).for_each(check_kill_trial);
}
