//! Crash: the runner, and separately the check, killed with SIGKILL at random moments across
//! many trials, then heartbeats resume the plan. The file always parses, no two agents ever
//! overlap, every step ends DONE, and each kill costs at most one repeated attempt of the
//! step it interrupted.
//!
//! The same on a parallel plan (`proof::parallel_plan`: `needs`, a `forEach`, `maxParallel`
//! 3): never two tries of one step at once (different steps do overlap), never more than three
//! agents alive at once, stragglers of a killed runner included, and each kill costs at most
//! one repeated attempt per try it cut short, of which there are at most three.
//!
//! Trials are seeded (the seed is in every failure message; `SEQ_SEED` changes the base);
//! 20 trials by default (a few for the slower parallel ones), `SEQ_SOAK=1` for 200 or
//! `SEQ_SOAK=N` for N.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::thread;
use std::time::Duration;

use agent_step_sequencer::format::validate;

use crate::common::{pid_alive, plan, Workspace, CHECK};
use crate::proof::{
    assert_parallel_done, at_most_in_progress, detector_agent, kill9, parallel_agent,
    parallel_plan, parallel_units, processes_in, seed, temp_files, trials, wait_no_processes,
    with_item_runs, AgentLog, Rng, Watcher, MAX_PARALLEL,
};

const STEPS: usize = 5;

/// The try left IN_PROGRESS in the state (the file and its journal), if any (read once
/// everything has stopped).
fn in_progress(ws: &Workspace) -> Option<(String, u32)> {
    let state = read_state(ws);
    state
        .step_runs
        .iter()
        .find(|(_, run)| run.status == agent_step_sequencer::format::schema::StepStatus::InProgress)
        .map(|(id, run)| (id.clone(), run.tries))
}

/// The state as the tools read it: the file, and the journal of a runner's fast saves.
fn read_state(ws: &Workspace) -> agent_step_sequencer::format::schema::State {
    agent_step_sequencer::store::Store::locate(&ws.state_path())
        .expect("state.json")
        .expect("state.json")
        .read_light()
        .expect("state parses after a kill")
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

/// Every try the state file (with its items' journals) shows IN_PROGRESS, as (unit, attempt).
fn all_in_progress(ws: &Workspace) -> Vec<(String, u32)> {
    validate::parse(&ws.bytes()).expect("state parses after a kill");
    let state = with_item_runs(ws.path(), ws.state());
    state["stepRuns"]
        .as_object()
        .expect("stepRuns")
        .iter()
        .filter(|(_, run)| run["status"] == "IN_PROGRESS")
        .map(|(id, run)| {
            let tries = run["tries"].as_u64().expect("tries");
            (id.clone(), u32::try_from(tries).expect("tries fit"))
        })
        .collect()
}

/// Waits (up to 10 s) until the process `pid` is gone (or a zombie).
fn wait_dead(pid: u32, ctx: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pid_alive(pid.into()) {
        assert!(
            std::time::Instant::now() < deadline,
            "{ctx}: process {pid} outlived SIGKILL"
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// The tries kills cut short on a parallel plan, as the state shows them.
///
/// What a kill costs, precisely: once the killed runner is gone (and before the next heartbeat,
/// so nothing else writes the file), every try the state shows IN_PROGRESS is one that a kill
/// cut short: its result can never be recorded, so it will count as an interrupted try. This
/// kill's new ones (a try already seen after an earlier kill that landed before the runner
/// changed anything is not new) are the tries that were in flight at the kill: at most
/// `maxParallel`, as the state never shows more.
#[derive(Debug, Default)]
struct Cuts {
    /// Per unit: the attempts cut short.
    by_unit: BTreeMap<String, BTreeSet<u32>>,
    /// Per kill: how many tries it cut short.
    per_kill: Vec<usize>,
}

impl Cuts {
    /// Records what the kill that just happened cut short.
    fn record(&mut self, ws: &Workspace, ctx: &str) {
        let mut new = 0;
        for (unit, attempt) in all_in_progress(ws) {
            new += usize::from(self.by_unit.entry(unit).or_default().insert(attempt));
        }
        assert!(
            new <= MAX_PARALLEL,
            "{ctx}: one kill cut {new} tries short, more than maxParallel\n{self:?}"
        );
        self.per_kill.push(new);
    }

    /// Asserts what the kills cost once the plan is DONE; returns the repeated agent runs.
    /// Per unit: `tries` is 1 + the tries cut short; its agent ran for the last attempt (the
    /// one that finished) and otherwise only for attempts cut short, once each. So the
    /// repeated runs are at most the tries cut short, at most `maxParallel` per kill.
    fn assert_cost(&self, log: &AgentLog, state: &serde_json::Value, ctx: &str) -> usize {
        let detail = || format!("{self:?}\nagent.log:\n{}", log.text);
        let mut repeats = 0;
        for (unit, _) in parallel_units() {
            let cut = self.by_unit.get(&unit).cloned().unwrap_or_default();
            let tries = state["stepRuns"][&unit]["tries"].as_u64().unwrap();
            assert_eq!(
                tries,
                1 + cut.len() as u64,
                "{ctx}: {unit}: every try cut short counts once, plus the one that finished\n{}",
                detail()
            );
            let started = log.starts.get(&unit).cloned().unwrap_or_default();
            assert_eq!(
                started.last().map(|a| u64::from(*a)),
                Some(tries),
                "{ctx}: {unit}: the last try's agent must have run\n{}",
                detail()
            );
            let mut once = BTreeSet::new();
            for attempt in &started[..started.len() - 1] {
                assert!(
                    cut.contains(attempt) && once.insert(*attempt),
                    "{ctx}: {unit}: its agent ran for try {attempt}, which no kill cut short \
                     (or twice)\n{}",
                    detail()
                );
            }
            repeats += started.len() - 1;
        }
        let cut: usize = self.per_kill.iter().sum();
        assert!(
            repeats <= cut && cut <= self.per_kill.len() * MAX_PARALLEL,
            "{ctx}: {repeats} repeated runs for {cut} tries cut short by {} kills",
            self.per_kill.len()
        );
        repeats
    }
}

/// A runner for the parallel plan: a foreground `seq-check --wait` (the runner loop in the
/// check's own process) or the detached runner a heartbeat starts. `None` when the heartbeat
/// started none (the plan is done, or only stragglers run: they are let end).
fn start_runner(ws: &Workspace, foreground: bool, ctx: &str) -> Option<(u32, Option<Child>)> {
    if foreground {
        let child = ws
            .command(CHECK)
            .args(["--wait", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        return Some((child.id(), Some(child)));
    }
    let beat = ws.check(&["--json"]).expect(0).json();
    match beat["result"].as_str() {
        Some("started") => Some((u32::try_from(beat["pid"].as_u64().unwrap()).unwrap(), None)),
        Some("done") => None,
        // Only stragglers of a killed runner run, and nothing else can start: they end, and
        // a later heartbeat takes their tries back.
        Some("in_flight") => {
            wait_no_processes(ws.path(), Duration::from_secs(10));
            None
        }
        other => panic!("{ctx}: unexpected heartbeat {other:?}: {beat}"),
    }
}

/// A parallel plan whose runner is SIGKILLed at random moments, up to three tries in flight;
/// heartbeats then finish it. What each kill costs is checked by [`Cuts`]. The agents'
/// stragglers (see `parallel_agent`) outlive a kill; half the time the next heartbeat comes
/// while they still run, and must neither start a second try of their step nor go past three
/// agents alive. Returns how many heartbeats came amid stragglers.
fn parallel_runner_kill_trial(trial: u64) -> usize {
    let seed = seed(3, trial);
    let ctx = format!("parallel runner-kill trial {trial} (seed {seed:#x})");
    let mut rng = Rng::new(seed);
    let mut ws = Workspace::with_state(&parallel_plan().to_string());
    ws.agent(&parallel_agent("0.1"));
    ws.set("STEP_MAX_RETRIES", "1000");
    let watcher = Watcher::start_with(ws.state_path(), at_most_in_progress(MAX_PARALLEL));
    let kills = 1 + rng.below(6) as usize;
    let mut cuts = Cuts::default();
    let mut amid_stragglers = 0;
    for _ in 0..40 {
        if cuts.per_kill.len() == kills || ws.state()["status"] == "DONE" {
            break;
        }
        amid_stragglers += usize::from(!processes_in(ws.path()).is_empty());
        let foreground = rng.below(2) == 0;
        let Some((pid, child)) = start_runner(&ws, foreground, &ctx) else {
            continue;
        };
        thread::sleep(Duration::from_micros(rng.below(400_000)));
        kill9(pid);
        match child {
            Some(mut child) => drop(child.wait().unwrap()),
            None => wait_dead(pid, &ctx),
        }
        cuts.record(&ws, &ctx);
        if rng.below(2) == 0 {
            wait_no_processes(ws.path(), Duration::from_secs(10));
        }
    }
    // Heartbeats resume the plan.
    ws.check(&["--wait"]).expect(0);
    wait_no_processes(ws.path(), Duration::from_secs(10));
    watcher.finish(&ctx);
    let log = AgentLog::read(ws.path());
    log.assert_no_overlap_per_step(&ctx);
    let peak = log.assert_at_most_at_once(MAX_PARALLEL, &ctx);
    log.assert_needs_kept(&parallel_units(), &ctx);
    let state = with_item_runs(ws.path(), ws.state());
    assert_parallel_done(&state, &ctx);
    let repeats = cuts.assert_cost(&log, &state, &ctx);
    assert_no_stale_temps(&ws, &ctx);
    eprintln!(
        "{ctx}: {} kills cut {:?} tries short, {repeats} agent runs repeated, \
         {amid_stragglers} heartbeats amid stragglers, peak {peak} agents at once",
        cuts.per_kill.len(),
        cuts.per_kill,
    );
    amid_stragglers
}

#[test]
fn a_killed_runner_of_a_parallel_plan_costs_at_most_one_repeat_per_try_in_flight() {
    let n = trials(4, 50);
    let amid: usize = (0..n).map(parallel_runner_kill_trial).sum();
    eprintln!("{amid} heartbeats came while a killed runner's stragglers still ran");
}

/// A parallel plan whose checks are SIGKILLed at random moments: killing a check never
/// interrupts a try (the runner is in a session of its own), so every unit runs exactly
/// once; and steps do run side by side. Returns the peak of agents at once.
fn parallel_check_kill_trial(trial: u64) -> usize {
    let seed = seed(4, trial);
    let ctx = format!("parallel check-kill trial {trial} (seed {seed:#x})");
    let mut rng = Rng::new(seed);
    let mut ws = Workspace::with_state(&parallel_plan().to_string());
    ws.agent(&parallel_agent("0.05"));
    let watcher = Watcher::start_with(ws.state_path(), at_most_in_progress(MAX_PARALLEL));
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
    ws.check(&["--wait"]).expect(0);
    wait_no_processes(ws.path(), Duration::from_secs(10));
    watcher.finish(&ctx);
    let log = AgentLog::read(ws.path());
    log.assert_no_overlap_per_step(&ctx);
    let peak = log.assert_at_most_at_once(MAX_PARALLEL, &ctx);
    let units = parallel_units();
    log.assert_needs_kept(&units, &ctx);
    let state = with_item_runs(ws.path(), ws.state());
    assert_parallel_done(&state, &ctx);
    for (unit, _) in &units {
        assert_eq!(
            log.starts.get(unit).map(Vec::as_slice),
            Some(&[1][..]),
            "{ctx} ({kills} kills): {unit} must run exactly once\n{}",
            log.text
        );
        assert_eq!(state["stepRuns"][unit]["tries"], 1, "{ctx}: {unit}");
    }
    assert_no_stale_temps(&ws, &ctx);
    peak
}

#[test]
fn a_killed_check_never_corrupts_or_repeats_a_parallel_plan() {
    let n = trials(3, 30);
    let peaks: Vec<usize> = (0..n).map(parallel_check_kill_trial).collect();
    // Nothing here kills a runner: its steps must have run side by side.
    assert!(
        peaks.iter().any(|p| *p >= 2),
        "no two steps ever ran at once in {n} trials (peaks {peaks:?})"
    );
}

/// The moments the random trials only sometimes hit, made certain: a runner SIGKILLed with
/// three tries in flight (`list`, `a`, `b`), and a heartbeat at once, while their three
/// stragglers still run: nothing starts. `list`'s and `a`'s stragglers end first, and their
/// tries run again beside `b`'s, which still holds its step (no second try of `b` starts until
/// it has ended) and its place (two more at most beside it).
#[test]
fn stragglers_of_a_killed_parallel_runner_keep_their_steps_and_places() {
    let ctx = "stragglers";
    let mut ws = Workspace::with_state(&parallel_plan().to_string());
    // b's first try outlives the others by far.
    ws.agent(&parallel_agent(
        r#"$([ "$STEP_ID $STEP_ATTEMPT" = "b 1" ] && echo 2 || echo 0.3)"#,
    ));
    let watcher = Watcher::start_with(ws.state_path(), at_most_in_progress(MAX_PARALLEL));
    let mut runner = ws
        .command(CHECK)
        .args(["--wait", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while AgentLog::read(ws.path()).starts.len() < MAX_PARALLEL {
        assert!(
            std::time::Instant::now() < deadline,
            "three agents never started"
        );
        thread::sleep(Duration::from_millis(5));
    }
    kill9(runner.id());
    runner.wait().unwrap();
    let cut = all_in_progress(&ws);
    let first: BTreeSet<String> = ["list", "a", "b"].map(str::to_owned).into();
    assert_eq!(
        cut.iter().map(|(s, _)| s.clone()).collect::<BTreeSet<_>>(),
        first,
        "{ctx}: {cut:?}"
    );
    // Three stragglers hold the three places: the heartbeat starts nothing.
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "in_flight", "{ctx}: {beat}");
    assert_eq!(
        AgentLog::read(ws.path()).ends.len(),
        0,
        "{ctx}: a straggler ended before the heartbeat: the test proves nothing"
    );
    ws.check(&["--wait"]).expect(0);
    wait_no_processes(ws.path(), Duration::from_secs(10));
    watcher.finish(ctx);
    let log = AgentLog::read(ws.path());
    log.assert_no_overlap_per_step(ctx);
    log.assert_at_most_at_once(MAX_PARALLEL, ctx);
    log.assert_needs_kept(&parallel_units(), ctx);
    let state = with_item_runs(ws.path(), ws.state());
    assert_parallel_done(&state, ctx);
    for (unit, _) in parallel_units() {
        let again = first.contains(&unit);
        assert_eq!(
            log.starts.get(&unit).map(Vec::as_slice),
            Some(if again { &[1, 2][..] } else { &[1][..] }),
            "{ctx}: {unit}\nagent.log:\n{}",
            log.text
        );
        assert_eq!(state["stepRuns"][&unit]["tries"], if again { 2 } else { 1 });
    }
    // b's straggler held its step: its second try began only once the first had ended...
    let b = log.spans_of("b");
    assert!(b[0].1 <= b[1].0, "{ctx}: b: {b:?}\n{}", log.text);
    // ...but not the plan: list and a ran again beside it.
    for step in ["list", "a"] {
        let again = log.spans_of(step)[1];
        assert!(
            again.0 < b[0].1,
            "{ctx}: {step} {again:?} waited for b's straggler {:?}\n{}",
            b[0],
            log.text
        );
    }
}

/// An agent that logs each try it runs, and kills its runner (its parent) on the first try
/// of `kill_at`.
fn burst_agent(kill_at: &str) -> String {
    format!(
        r#"echo "$STEP_ID $STEP_ATTEMPT" >> ran.log
if [ "$STEP_ID" = "{kill_at}" ] && [ "$STEP_ATTEMPT" = 1 ]; then kill -9 $PPID; fi"#
    )
}

/// Asserts that `run` (a runner) was SIGKILLed, as `burst_agent` does to it.
#[track_caller]
fn assert_killed(run: &crate::common::Run) {
    assert_eq!(
        run.output.status.signal(),
        Some(libc::SIGKILL),
        "{}",
        run.stderr()
    );
}

/// How many times each try ran, from `ran.log`, as "step attempt" lines counted.
fn runs(ws: &Workspace) -> BTreeMap<String, usize> {
    let mut runs = BTreeMap::new();
    for line in ws.read("ran.log").lines() {
        *runs.entry(line.to_owned()).or_default() += 1;
    }
    runs
}

/// Every one of `steps` tries ran once (`ran.log`), none again.
#[track_caller]
fn assert_each_ran_once(ws: &Workspace, steps: usize, ctx: &str) {
    let runs = runs(ws);
    assert!(
        runs.values().all(|n| *n == 1) && runs.len() == steps,
        "{ctx}: a step ran again, or never: {runs:?}"
    );
}

/// Steps that end within a second of the last rewrite of state.json are saved to a journal
/// beside it (see `store::journal`). A runner SIGKILLed in such a burst leaves state.json
/// behind the state, and loses nothing: every reader applies the journal, the next heartbeat
/// folds it into state.json, and no try runs again but the one the kill cut short.
#[test]
fn a_runner_killed_in_a_burst_of_fast_steps_loses_nothing_its_journal_held() {
    let mut ws = Workspace::with_state(&plan(12, ""));
    ws.agent(&burst_agent("s8"));
    assert_killed(&ws.runner(&[]));
    let journal = ws.sidecar().join("journal.jsonl");
    let journaled = journal.exists();
    let state = ws.state(); // the file and the journal, as the tools read them
    for i in 1..=7 {
        assert_eq!(
            state["stepRuns"][format!("s{i}")]["status"],
            "DONE",
            "{state:#}"
        );
    }
    assert_eq!(
        state["stepRuns"]["s8"]["status"], "IN_PROGRESS",
        "{state:#}"
    );
    let status = ws.seqctl(&["status", "--json"]).expect(0).json();
    assert!(status.to_string().contains("s8"), "{status}");
    if journaled {
        // The file alone is behind: what it lacks, only the journal held.
        let file: serde_json::Value = serde_json::from_slice(&ws.bytes()).unwrap();
        let done_in_file = (1..=7)
            .filter(|i| file["stepRuns"][format!("s{i}")]["status"] == "DONE")
            .count();
        assert!(
            done_in_file < 7,
            "the burst was journaled, yet the file has it all"
        );
    }

    ws.check(&["--wait"]).expect(0);
    wait_no_processes(ws.path(), Duration::from_secs(10));
    let state: serde_json::Value = serde_json::from_slice(&ws.bytes()).unwrap();
    assert_eq!(state["status"], "DONE", "{state:#}");
    assert!(
        !journal.exists(),
        "the journal outlived the save that folded it in"
    );
    let runs = runs(&ws);
    for i in 1..=12 {
        let id = format!("s{i}");
        let expected = if id == "s8" { 2 } else { 1 };
        assert_eq!(state["stepRuns"][&id]["tries"], expected, "{id}: {state:#}");
        assert_eq!(runs.get(&format!("{id} 1")), Some(&1), "{id}: {runs:?}");
    }
    assert_eq!(runs.get("s8 2"), Some(&1), "{runs:?}");
}

/// A journal left by a killed runner belongs to the state.json it extends: a new plan
/// written over it by hand (with the same step ids) starts from nothing.
#[test]
fn a_journal_left_behind_never_applies_to_a_new_plan_written_over_its_file() {
    let mut ws = Workspace::with_state(&plan(12, ""));
    ws.agent(&burst_agent("s8"));
    ws.runner(&[]);
    fs::write(ws.state_path(), plan(3, "")).unwrap();
    fs::remove_file(ws.path().join("ran.log")).unwrap();
    let state = ws.state();
    assert_eq!(state["stepRuns"], serde_json::json!({}), "{state:#}");
    ws.check(&["--wait"]).expect(0);
    let runs = runs(&ws);
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
    assert!(!ws.sidecar().join("journal.jsonl").exists());
}

/// An agent that logs each try, and at s3's first try edits state.json by hand (a field of
/// its own, nothing that runs) and then `then`s: a pause past the runner's catch-up, or a
/// person's `seqctl pause` and `resume`, each a save by someone other than the runner.
fn editing_agent(then: &str) -> String {
    format!(
        r#"echo "$STEP_ID $STEP_ATTEMPT" >> ran.log
if [ "$STEP_ID" = s3 ] && [ ! -e edited ]; then
  : > edited
  sed -i 's/"stepQueue"/"myNote": "hello", "stepQueue"/' "$STEP_STATE_FILE"
  {then}
fi"#
    )
}

/// A hand edit of state.json in a burst of fast steps is made on a file that lacks the
/// burst's records (they are in the journal): they stand over it, whoever reads it next, and
/// no step runs again.
#[test]
fn a_hand_edit_in_a_burst_of_fast_steps_keeps_every_run_it_did_not_touch() {
    let seqctl = crate::common::SEQCTL;
    for then in [
        "sleep 0.1".to_owned(),
        format!("{seqctl} pause \"$STEP_STATE_FILE\" >/dev/null; {seqctl} resume \"$STEP_STATE_FILE\" >/dev/null"),
    ] {
        let mut ws = Workspace::with_state(&plan(6, ""));
        ws.agent(&editing_agent(&then));
        ws.check(&["--wait"]).expect(0);
        let state = ws.state();
        assert_eq!(state["status"], "DONE", "{then}: {state:#}");
        assert_eq!(state["myNote"], "hello", "{then}: the edit was lost");
        assert_each_ran_once(&ws, 6, &then);
    }
}

/// Something that cannot be removed where the journal goes (a folder) costs the speed-up,
/// not the plan: state.json is rewritten as before.
#[test]
fn a_folder_planted_as_the_journal_leaves_state_json_rewritten_as_before() {
    let mut ws = Workspace::with_state(&plan(8, ""));
    ws.agent(r#"echo "$STEP_ID $STEP_ATTEMPT" >> ran.log"#);
    fs::create_dir_all(ws.sidecar().join("journal.jsonl")).unwrap();
    ws.check(&["--wait"]).expect(0);
    let state: serde_json::Value = serde_json::from_slice(&ws.bytes()).unwrap();
    assert_eq!(state["status"], "DONE", "{state:#}");
    assert_each_ran_once(&ws, 8, "a folder as the journal");
}

/// A journal left behind by a crash between the rewrite that folded it in and its removal (or
/// brought back by a power cut) is older than state.json: read with it, it takes back no
/// record state.json has since, and the next save removes it.
#[test]
fn a_journal_left_behind_after_its_fold_takes_nothing_back() {
    let mut ws = Workspace::with_state(&plan(12, ""));
    ws.agent(&burst_agent("s8"));
    ws.runner(&[]);
    let journal = ws.sidecar().join("journal.jsonl");
    if !journal.exists() {
        eprintln!("the burst was folded before the kill (a slow machine): nothing to check");
        return;
    }
    let left = fs::read(&journal).unwrap();
    ws.check(&["--wait"]).expect(0);
    // The crash window: the journal is back beside the state.json it was folded into.
    fs::write(&journal, &left).unwrap();
    let state = ws.state();
    for i in 1..=12 {
        assert_eq!(
            state["stepRuns"][format!("s{i}")]["status"],
            "DONE",
            "s{i}: {state:#}"
        );
    }
    assert_eq!(state["stepRuns"]["s8"]["tries"], 2, "{state:#}");
    ws.seqctl(&["retry", "s12"]).expect(0);
    assert!(!journal.exists(), "the next save left it behind");
    let file: serde_json::Value = serde_json::from_slice(&ws.bytes()).unwrap();
    assert_eq!(file["stepRuns"]["s8"]["status"], "DONE", "{file:#}");
}

/// A journal of many items is written whole (compacted, with an index) again and again as a
/// runner goes (see `store::items`). A runner SIGKILLed among them loses no item's record,
/// whether it was in the compacted part or appended after it: the resumed run tries again
/// only the item the kill cut short, and every reader (the heartbeat, `seqctl status`, the
/// suites' own line-by-line reading) sees every item DONE.
#[test]
fn a_runner_killed_among_many_items_of_a_compacted_journal_repeats_only_the_try_it_cut_short() {
    const ITEMS: usize = 300;
    let mut ws = Workspace::with_state(
        &serde_json::json!({
            "plan": {"steps": {"each": {"instruction": "item {{item}}",
                "forEach": {"from": "file:list.txt"}}}},
            "stepQueue": ["each"],
        })
        .to_string(),
    );
    let list = (1..=ITEMS)
        .map(|n| format!("f{n}"))
        .collect::<Vec<_>>()
        .join("\n");
    ws.write("list.txt", &list);
    ws.agent(&burst_agent("each[250]"));
    assert_killed(&ws.runner(&[]));
    let journal = ws.read("state.json.seq/items/each.jsonl");
    assert!(
        journal
            .lines()
            .next()
            .unwrap_or_default()
            .contains(r#""compacted""#),
        "written whole since the start: {}",
        &journal[..journal.len().min(300)]
    );
    let state = with_item_runs(ws.path(), ws.state());
    for n in 1..250 {
        assert_eq!(
            state["stepRuns"][format!("each[{n}]")]["status"],
            "DONE",
            "each[{n}]"
        );
    }
    // A heartbeat reads it by its index (no runner holds the plan) and starts the runner.
    ws.check(&[]).expect(0);
    ws.wait_done(Duration::from_secs(60));
    let state = with_item_runs(ws.path(), ws.state());
    let status = ws.seqctl(&["status"]).expect(0).stdout();
    assert!(
        status.contains(&format!("DONE {ITEMS}/{ITEMS}")),
        "{status}"
    );
    let runs = runs(&ws);
    assert_eq!(runs.get("each[250] 1"), Some(&1), "{runs:?}");
    assert_eq!(runs.get("each[250] 2"), Some(&1), "{runs:?}");
    assert!(
        runs.values().all(|n| *n == 1) && runs.len() == ITEMS + 1,
        "an item ran again, or never: {runs:?}"
    );
    for n in 1..=ITEMS {
        assert_eq!(
            state["stepRuns"][format!("each[{n}]")]["status"],
            "DONE",
            "each[{n}]"
        );
    }
}
