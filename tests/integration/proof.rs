//! Shared tools of the proof suites (stress, crash, faults, corpus): a seeded PRNG, the soak
//! switch, an agent that detects overlap with an flock, its log, a reader that re-parses the
//! state file in a tight loop, and process helpers (SIGKILL, resource limits, peak RSS).
//!
//! For the workflow graph (issue 15) the same suites also run on [`parallel_plan`]: branches
//! with `needs`, a `forEach`, `maxParallel` 3, and [`parallel_agent`], whose overlap detector is
//! per step (different steps may, and should, run at once) and whose log gives the timestamps
//! from which the parallel limit and the order of `needs` are checked.

#![allow(dead_code)] // each suite uses a different part

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use agent_step_sequencer::format::schema::{State, StepStatus};
use agent_step_sequencer::format::validate;

/// How many trials to run: `default` normally; with `SEQ_SOAK=N` (N >= 2) N; with `SEQ_SOAK=1`
/// (or any other non-empty value) `soak`.
pub fn trials(default: u64, soak: u64) -> u64 {
    match std::env::var("SEQ_SOAK") {
        Ok(v) if v.trim().is_empty() || v.trim() == "0" => default,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n >= 2 => n,
            _ => soak,
        },
        Err(_) => default,
    }
}

/// A small deterministic PRNG (SplitMix64): one seed per trial, printed on failure.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The seed of trial `n` of a suite: fixed, so a failure is replayed by its seed; `SEQ_SEED`
/// overrides the base to explore other interleavings.
pub fn seed(suite: u64, trial: u64) -> u64 {
    let base = std::env::var("SEQ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0000_0000_0000);
    base ^ (suite << 32) ^ trial
}

/// The body of a fake agent that logs `start`/`end` lines to `agent.log` (with nanosecond
/// times) and holds an flock on `detector` while it runs; if the lock is already taken,
/// another agent of the plan is running: it logs `OVERLAP`. `pause` is a `sleep` argument.
pub fn detector_agent(pause: &str) -> String {
    let sleep = if pause.is_empty() {
        String::new()
    } else {
        format!("sleep {pause}\n")
    };
    format!(
        r#"exec 9>>detector
if ! flock -n 9; then echo "OVERLAP $STEP_ID $STEP_ATTEMPT" >> agent.log; fi
echo "start $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> agent.log
{sleep}echo "end $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> agent.log"#
    )
}

/// The `maxParallel` of [`parallel_plan`].
pub const MAX_PARALLEL: usize = 3;

/// The items `list` prints for the `forEach` of [`parallel_plan`].
pub const ITEMS: [&str; 4] = ["x1", "x2", "x3", "x4"];

/// A workflow with every guarantee of a list to keep, and parallel tries to keep it under:
/// `maxParallel` 3; `list`, `a` and `b` need nothing; `each` is a `forEach` over the four lines
/// `list` prints (items `each[1]`..`each[4]`, run side by side); `c` needs `a`; `final` joins
/// `each`, `b` and `c`. Unknown (`x_`) fields at every level must survive every write.
pub fn parallel_plan() -> serde_json::Value {
    serde_json::json!({
        "x_top": {"nested": [1, {"a": null}], "f": 1.5},
        "plan": {
            "maxParallel": MAX_PARALLEL,
            "x_plan": "kept",
            "steps": {
                "list": {"instruction": "list the items", "needs": [], "x_step": 1},
                "a": {"instruction": "do a", "needs": []},
                "b": {"instruction": "do b", "needs": []},
                "each": {"instruction": "do {{item}}", "needs": ["list"],
                         "forEach": {"from": "steps.list.result"}, "x_step": [2]},
                "c": {"instruction": "do c", "needs": ["a"]},
                "final": {"instruction": "join", "needs": ["each", "b", "c"]},
            },
        },
        "stepQueue": ["list", "a", "b", "each", "c", "final"],
        "currentStep": 0,
        "stepRuns": {},
        "status": "IN_PROGRESS",
        "x_tail": [true, false],
    })
}

/// Every unit of [`parallel_plan`] that runs an agent (its steps and `each`'s items), with the
/// units it must wait for.
pub fn parallel_units() -> Vec<(String, Vec<String>)> {
    let items: Vec<String> = (1..=ITEMS.len()).map(|n| format!("each[{n}]")).collect();
    let mut units = vec![
        ("list".to_owned(), vec![]),
        ("a".to_owned(), vec![]),
        ("b".to_owned(), vec![]),
        ("c".to_owned(), vec!["a".to_owned()]),
    ];
    units.extend(
        items
            .iter()
            .map(|item| (item.clone(), vec!["list".to_owned()])),
    );
    let mut last = items;
    last.extend(["b".to_owned(), "c".to_owned()]);
    units.push(("final".to_owned(), last));
    units
}

/// The body of a fake agent for [`parallel_plan`]. Like [`detector_agent`], but its flock is
/// per step (`detector.<step>`: another try of the SAME step alive logs `OVERLAP`; other steps
/// may run beside it), and what it logs runs in a subshell, which outlives the agent's shell
/// when a killed runner takes that shell along (`PR_SET_PDEATHSIG` reaches only the runner's
/// own child): a straggler that keeps the step's try lease and its flock until it has logged
/// its `end`. So every `start` gets its `end`, and each span lies within the time the try was
/// alive. `list` prints the four items as its result. Its detector is on descriptor 9, as in
/// flock(1)'s own example: that must not close the try lease the agent inherited.
pub fn parallel_agent(pause: &str) -> String {
    format!(
        r#"exec 9>>"detector.$STEP_ID"
if ! flock -n 9; then echo "OVERLAP $STEP_ID $STEP_ATTEMPT" >> agent.log; fi
(
echo "start $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> agent.log
sleep {pause}
echo "end $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> agent.log
)
case "$STEP_ID" in
  list) printf '{}\n';;
  *) echo "did $STEP_ID";;
esac"#,
        ITEMS.join(r"\n")
    )
}

/// Asserts that every unit of [`parallel_plan`] is DONE in `state`, and `each` with the four
/// items' texts.
#[track_caller]
/// The state as the store reads both files: `stepRuns` with the run record of every `forEach`
/// item overlaid from its journal (`items/<step>.jsonl` beside state.json), so the suites can
/// ask `stepRuns["each[2]"]` as of a step. As the store does, a journal counts only if its
/// header names the expansion state.json records (a kill between the journal's write and
/// state.json's leaves one that does not), the last line of an item wins, and a line a kill
/// cut short is no record.
pub fn with_item_runs(dir: &Path, mut state: serde_json::Value) -> serde_json::Value {
    let journals = dir.join("state.json.seq").join("items");
    let expanded: Vec<(String, String, usize)> = state["stepRuns"]
        .as_object()
        .map(|runs| {
            runs.iter()
                .filter_map(|(id, run)| {
                    let count = run["items"].as_array()?.len();
                    let stamp = run["startedIso"].as_str().unwrap_or_default().to_owned();
                    Some((id.clone(), stamp, count))
                })
                .collect()
        })
        .unwrap_or_default();
    for (step, stamp, count) in expanded {
        let Ok(text) = fs::read_to_string(journals.join(format!("{step}.jsonl"))) else {
            continue;
        };
        let mut lines = text.lines();
        let header: serde_json::Value = lines
            .next()
            .and_then(|line| serde_json::from_str(line).ok())
            .unwrap_or_default();
        if header["expanded"] != stamp.as_str() || header["items"] != count {
            continue;
        }
        for line in lines {
            let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            match record["n"].as_u64() {
                Some(n) if (1..=count as u64).contains(&n) => {
                    state["stepRuns"][format!("{step}[{n}]")] = record["run"].clone();
                }
                _ => {}
            }
        }
    }
    state
}

pub fn assert_parallel_done(state: &serde_json::Value, context: &str) {
    assert_eq!(state["status"], "DONE", "{context}: {state:#}");
    for (unit, _) in parallel_units() {
        assert_eq!(
            state["stepRuns"][&unit]["status"], "DONE",
            "{context}: {unit}\n{state:#}"
        );
    }
    assert_eq!(state["stepRuns"]["each"]["status"], "DONE", "{context}");
    assert_eq!(
        state["stepRuns"]["each"]["items"],
        serde_json::json!(ITEMS),
        "{context}"
    );
}

/// What the detector agents logged.
#[derive(Debug, Default)]
pub struct AgentLog {
    pub text: String,
    pub overlaps: Vec<String>,
    /// Per step: the attempts started, in order.
    pub starts: BTreeMap<String, Vec<u32>>,
    pub ends: BTreeMap<String, Vec<u32>>,
    /// Completed runs as (start ns, end ns, step).
    pub spans: Vec<(u128, u128, String)>,
}

impl AgentLog {
    pub fn read(dir: &Path) -> Self {
        let text = fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
        let mut log = Self {
            text: text.clone(),
            ..Self::default()
        };
        let mut open: BTreeMap<(String, u32), u128> = BTreeMap::new();
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["OVERLAP", ..] => log.overlaps.push(line.to_owned()),
                ["start", step, attempt, ns] => {
                    let attempt = attempt.parse().unwrap();
                    log.starts
                        .entry((*step).to_owned())
                        .or_default()
                        .push(attempt);
                    open.insert(((*step).to_owned(), attempt), ns.parse().unwrap());
                }
                ["end", step, attempt, ns] => {
                    let attempt: u32 = attempt.parse().unwrap();
                    log.ends
                        .entry((*step).to_owned())
                        .or_default()
                        .push(attempt);
                    if let Some(start) = open.remove(&((*step).to_owned(), attempt)) {
                        log.spans
                            .push((start, ns.parse().unwrap(), (*step).to_owned()));
                    }
                }
                _ => panic!("unexpected agent.log line {line:?}\n{text}"),
            }
        }
        log.spans.sort();
        log
    }

    pub fn starts_of(&self, step: &str) -> usize {
        self.starts.get(step).map_or(0, Vec::len)
    }

    /// The completed runs of `step`, as (start ns, end ns), in order.
    pub fn spans_of(&self, step: &str) -> Vec<(u128, u128)> {
        self.spans
            .iter()
            .filter(|s| s.2 == step)
            .map(|s| (s.0, s.1))
            .collect()
    }

    /// Runs that logged their `start` but not their `end`, as `step attempt`.
    pub fn unfinished(&self) -> Vec<String> {
        let mut open: BTreeMap<(&str, u32), usize> = BTreeMap::new();
        for (step, attempts) in &self.starts {
            for a in attempts {
                *open.entry((step.as_str(), *a)).or_default() += 1;
            }
        }
        for (step, attempts) in &self.ends {
            for a in attempts {
                if let Some(n) = open.get_mut(&(step.as_str(), *a)) {
                    *n = n.saturating_sub(1);
                }
            }
        }
        open.into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|((step, a), _)| format!("{step} {a}"))
            .collect()
    }

    /// The most runs alive at one moment, by their logged times, and the runs alive then
    /// (`step@start`). A run that ends at the very nanosecond another starts does not overlap
    /// it. Each span lies within the time its try was alive, so this is a lower bound of the
    /// real peak: more than the limit here is more than the limit for real.
    pub fn peak(&self) -> (usize, Vec<String>) {
        // (time, 0 = end / 1 = start, index): at one time, ends come first.
        let mut edges: Vec<(u128, u8, usize)> = Vec::new();
        for (i, (start, end, _)) in self.spans.iter().enumerate() {
            edges.push((*start, 1, i));
            edges.push((*end, 0, i));
        }
        edges.sort_unstable();
        let mut alive: Vec<usize> = Vec::new();
        let mut peak: (usize, Vec<usize>) = (0, Vec::new());
        for (_, kind, i) in edges {
            if kind == 1 {
                alive.push(i);
                if alive.len() > peak.0 {
                    peak = (alive.len(), alive.clone());
                }
            } else {
                alive.retain(|a| *a != i);
            }
        }
        let names = peak
            .1
            .iter()
            .map(|i| format!("{}@{}", self.spans[*i].2, self.spans[*i].0))
            .collect();
        (peak.0, names)
    }

    /// Asserts that no more than `limit` runs were ever alive at once (see [`AgentLog::peak`]);
    /// returns the peak.
    #[track_caller]
    pub fn assert_at_most_at_once(&self, limit: usize, context: &str) -> usize {
        let (peak, runs) = self.peak();
        assert!(
            peak <= limit,
            "{context}: {peak} agents ran at once, more than maxParallel {limit}: {runs:?}\n\
             agent.log:\n{}",
            self.text
        );
        peak
    }

    /// Asserts that no agent saw another try of ITS step alive (the per-step detector of
    /// [`parallel_agent`]), that no two runs of one step overlap in time, and that every run
    /// logged its end (so the spans are complete). Runs of different steps may overlap.
    #[track_caller]
    pub fn assert_no_overlap_per_step(&self, context: &str) {
        assert!(
            self.overlaps.is_empty(),
            "{context}: two tries of one step ran at once: {:?}\nagent.log:\n{}",
            self.overlaps,
            self.text
        );
        let unfinished = self.unfinished();
        assert!(
            unfinished.is_empty(),
            "{context}: runs that never logged their end: {unfinished:?}\nagent.log:\n{}",
            self.text
        );
        for step in self.starts.keys() {
            for pair in self.spans_of(step).windows(2) {
                assert!(
                    pair[0].1 <= pair[1].0,
                    "{context}: two runs of {step}, {:?} and {:?}, overlap in time\n\
                     agent.log:\n{}",
                    pair[0],
                    pair[1],
                    self.text
                );
            }
        }
    }

    /// Asserts that every run of a unit started after every run of each unit it needs had
    /// ended (`units`: each unit with the units it waits for).
    #[track_caller]
    pub fn assert_needs_kept(&self, units: &[(String, Vec<String>)], context: &str) {
        for (unit, needs) in units {
            for (start, _) in self.spans_of(unit) {
                for need in needs {
                    for (_, end) in self.spans_of(need) {
                        assert!(
                            end <= start,
                            "{context}: {unit} started at {start}, before {need} ended at \
                             {end}\nagent.log:\n{}",
                            self.text
                        );
                    }
                }
            }
        }
    }

    /// Asserts no agent saw another's lock and no two completed runs overlap in time.
    #[track_caller]
    pub fn assert_no_overlap(&self, context: &str) {
        assert!(
            self.overlaps.is_empty(),
            "{context}: two agents ran at once: {:?}\nagent.log:\n{}",
            self.overlaps,
            self.text
        );
        for pair in self.spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{context}: runs {:?} and {:?} overlap in time\nagent.log:\n{}",
                pair[0],
                pair[1],
                self.text
            );
        }
    }
}

/// Re-reads and fully validates the state file in a tight loop on its own thread, counting
/// every read that does not parse (or breaks the watcher's [`Rule`]).
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<WatchReport>>,
}

#[derive(Debug, Default, Clone)]
pub struct WatchReport {
    pub reads: u64,
    pub failures: u64,
    pub first_failure: Option<String>,
}

/// A rule every read of the state must keep, besides parsing: `Err` says how it was broken.
pub type Rule = Box<dyn Fn(&State) -> Result<(), String> + Send>;

/// The rule of a plan with `maxParallel` `limit`: never more tries IN_PROGRESS at once. It sees
/// the steps in state.json; items keep their records in journals appended apart from the
/// state's replacement, so for them the agents' own times ([`AgentLog::assert_at_most_at_once`])
/// are the proof.
pub fn at_most_in_progress(limit: usize) -> Rule {
    Box::new(move |state: &State| {
        let running: Vec<&String> = state
            .step_runs
            .iter()
            .filter(|(_, run)| run.status == StepStatus::InProgress)
            .map(|(id, _)| id)
            .collect();
        if running.len() <= limit {
            Ok(())
        } else {
            Err(format!(
                "{} tries IN_PROGRESS, more than maxParallel {limit}: {running:?}",
                running.len()
            ))
        }
    })
}

impl Watcher {
    pub fn start(path: PathBuf) -> Self {
        Self::start_with(path, Box::new(|_: &State| Ok(())))
    }

    /// A watcher that also asserts `rule` on every read that parses.
    pub fn start_with(path: PathBuf, rule: Rule) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut report = WatchReport::default();
            while !flag.load(Ordering::Relaxed) {
                report.reads += 1;
                let problem = match fs::read(&path) {
                    Ok(bytes) => match validate::parse(&bytes) {
                        Ok(state) => rule(&state).err(),
                        Err(e) => Some(e.to_string()),
                    }
                    .map(|e| {
                        format!(
                            "{e}\n{}",
                            String::from_utf8_lossy(&bytes[..bytes.len().min(2000)])
                        )
                    }),
                    Err(e) => Some(format!("cannot read: {e}")),
                };
                if let Some(problem) = problem {
                    report.failures += 1;
                    report.first_failure.get_or_insert(problem);
                }
            }
            report
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the reader and asserts that every read parsed.
    #[track_caller]
    pub fn finish(mut self, context: &str) -> WatchReport {
        self.stop.store(true, Ordering::Relaxed);
        let report = self.thread.take().unwrap().join().unwrap();
        assert!(report.reads > 0, "{context}: the reader never ran");
        assert_eq!(
            report.failures,
            0,
            "{context}: {} of {} reads of the state did not parse or broke a rule; first: {}",
            report.failures,
            report.reads,
            report.first_failure.as_deref().unwrap_or("")
        );
        report
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// SIGKILLs a process (ignoring one that is already gone).
pub fn kill9(pid: u32) {
    // SAFETY: kill sends a signal to a pid we started; no memory is involved.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Pids of live processes whose working directory is `dir` (runners and agents of a workspace).
pub fn processes_in(dir: &Path) -> Vec<u32> {
    let Ok(real) = fs::canonicalize(dir) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == real)
            && crate::common::pid_alive(pid.into())
        {
            pids.push(pid);
        }
    }
    pids
}

/// Waits until no process works in `dir` any more, and the plan's run lease there is free, so a
/// test ends with nothing left running. (A dying process leaves /proc's view, no cwd, a moment
/// before the kernel releases its flocks: the lease is the last thing to go.)
pub fn wait_no_processes(dir: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let pids = processes_in(dir);
        let lease_held = crate::common::lease_held(dir);
        if pids.is_empty() && !lease_held {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes {pids:?} still run in {} (lease held: {lease_held})",
            dir.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Makes `command` run with files limited to `bytes` (RLIMIT_FSIZE), SIGXFSZ ignored so an
/// oversized write fails with EFBIG instead of killing the process.
pub fn limit_file_size(command: &mut Command, bytes: u64) {
    // SAFETY: signal and setrlimit are async-signal-safe and act on the child only.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &raw const limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A finished child with its wall time and peak resident memory.
#[derive(Debug)]
pub struct Measured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub max_rss_kib: u64,
    /// CPU time, user and system: what the work cost, whatever else the machine was doing.
    pub cpu: Duration,
}

/// Set in a re-executed copy of this test binary that runs one command for [`run_measured`].
const PROBE_DIR: &str = "SEQ_RSS_PROBE_DIR";
const PROBE_ARGV: &str = "SEQ_RSS_PROBE_ARGV";

/// Runs `command` to completion and measures its wall time and its own peak RSS.
///
/// A child's ru_maxrss starts from the high-water mark of the memory it was forked (or
/// vforked) from, so a command spawned straight from this big, many-threaded test process
/// would be charged with the test's own peak. It is started instead from a fresh copy of this
/// test binary (the `rss_probe` test below, a few MiB), which waits for it with wait4.
pub fn run_measured(command: &mut Command, scratch: &Path) -> Measured {
    use std::os::unix::process::ExitStatusExt;
    let mut argv = vec![command.get_program().to_string_lossy().into_owned()];
    argv.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    let mut probe = Command::new(std::env::current_exe().unwrap());
    probe
        .args([
            "proof::rss_probe",
            "--exact",
            "--quiet",
            "--test-threads",
            "1",
        ])
        .env(PROBE_DIR, scratch)
        .env(PROBE_ARGV, serde_json::to_string(&argv).unwrap())
        .stdout(std::process::Stdio::null());
    if let Some(dir) = command.get_current_dir() {
        probe.current_dir(dir);
    }
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => probe.env(name, value),
            None => probe.env_remove(name),
        };
    }
    let status = probe.status().expect("spawn the RSS probe");
    let result = fs::read_to_string(scratch.join("result")).unwrap_or_default();
    let numbers: Vec<u64> = result
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        status.success() && numbers.len() == 4,
        "the RSS probe failed ({status}): {result:?}"
    );
    Measured {
        status: ExitStatus::from_raw(i32::try_from(numbers[0]).unwrap()),
        stdout: fs::read_to_string(scratch.join("stdout")).unwrap_or_default(),
        stderr: fs::read_to_string(scratch.join("stderr")).unwrap_or_default(),
        elapsed: Duration::from_micros(numbers[1]),
        max_rss_kib: numbers[2],
        cpu: Duration::from_micros(numbers[3]),
    }
}

/// Not a test of its own: the helper [`run_measured`] re-executes. Without its variables set
/// it does nothing.
#[test]
fn rss_probe() {
    let (Some(dir), Some(argv)) = (std::env::var_os(PROBE_DIR), std::env::var_os(PROBE_ARGV))
    else {
        return;
    };
    let dir = PathBuf::from(dir);
    let argv: Vec<String> = serde_json::from_str(&argv.to_string_lossy()).unwrap();
    let started = Instant::now();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .env_remove(PROBE_DIR)
        .env_remove(PROBE_ARGV)
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(dir.join("stdout")).unwrap())
        .stderr(fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers; std's Child is never waited after.
    let reaped = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", io::Error::last_os_error());
    let elapsed = started.elapsed();
    drop(child);
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    let cpu = micros(usage.ru_utime) + micros(usage.ru_stime);
    fs::write(
        dir.join("result"),
        format!("{status} {} {} {cpu}", elapsed.as_micros(), usage.ru_maxrss),
    )
    .unwrap();
}

/// Every file name in the sidecar folder matching the store's temp-file pattern.
pub fn temp_files(sidecar: &Path) -> Vec<String> {
    fs::read_dir(sidecar)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("state.") && n.rsplit('.').next() == Some("tmp"))
        .collect()
}

/// A mutex-guarded list for collecting results from threads.
pub type Shared<T> = Arc<Mutex<Vec<T>>>;
