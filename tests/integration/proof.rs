//! Shared tools of the proof suites (stress, crash, faults, corpus): a seeded PRNG, the soak
//! switch, an agent that detects overlap with an flock, its log, a reader that re-parses the
//! state file in a tight loop, and process helpers (SIGKILL, resource limits, peak RSS).

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
/// every read that does not parse.
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

impl Watcher {
    pub fn start(path: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut report = WatchReport::default();
            while !flag.load(Ordering::Relaxed) {
                report.reads += 1;
                let problem = match fs::read(&path) {
                    Ok(bytes) => validate::parse(&bytes).err().map(|e| {
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
            "{context}: {} of {} reads of the state did not parse; first: {}",
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
