//! `seq-check`: one heartbeat. Decide, record, start the runner if work is due, and return.
//!
//! The check never runs a step itself. Under the state lock it records `lastHeartbeatIso`,
//! probes the run lease and settles the plan; if a step is due now or later and no runner is
//! alive, it validates the agent command first (so a misconfiguration shows in the heartbeat's
//! output, and the file is left as it was) and then starts `seq-runner` detached: own session,
//! no stdin, output to the sidecar's `runner.log`. It returns in milliseconds.
//! Each heartbeat that changes something appends it to the event log (see `events`).
//! With `--wait` it stays in the foreground instead, running the steps itself, until the plan
//! is finished, blocked or paused.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use serde::Serialize;

use crate::cli::config::Config;
use crate::cli::runner::{self, RunEnd};
use crate::core::schedule::{self, Next};
use crate::exec::command::AgentCommand;
use crate::format::schema::{State, StepStatus};
use crate::format::timefmt;
use crate::store::events::{self, By, Kind};
use crate::store::lease::{self, Holder, Lease, LeaseState};
use crate::store::Store;

/// A heartbeat later than this after the previous one is logged as a `heartbeat_gap`: OpenClaw
/// beats every 30 minutes by default, so this is two missed beats.
const HEARTBEAT_GAP: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// `runner.log` is started afresh past this size (the previous one kept as `runner.log.1`).
const RUNNER_LOG_CAP: u64 = 1 << 20;
/// How long a check waits, lock held, for the runner it started to take the run lease.
const RUNNER_START_PATIENCE: Duration = Duration::from_secs(2);

/// What one heartbeat found and did: printed as lines, or as one JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// `no_plan`, `started`, `in_flight`, `waiting`, `blocked`, `paused` or `done`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// In flight since, or waiting until.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The runner (or, with `--wait`, this process) doing the work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// Changes made on the way (interrupted tries, blockers, the plan finishing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// With `in_flight`: the lease is held, but not by a live runner: a process the runner
    /// started outlived it (the runner was killed). The try is retried once that process ends.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub runner_gone: bool,
    /// With `done`: this heartbeat is the first since the plan finished (tell the user now).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub newly_done: bool,
    #[serde(skip)]
    pub steps: usize,
}

impl Heartbeat {
    /// 0 fine, 1 blocked: a person is needed.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        u8::from(self.result == "blocked")
    }

    /// Whether a person should hear about this heartbeat: a blocker, or a plan just finished.
    /// (`--no-reply` prints OpenClaw's `NO_REPLY` for everything else.)
    #[must_use]
    pub fn worth_telling(&self) -> bool {
        self.result == "blocked" || (self.result == "done" && self.newly_done)
    }

    /// The one-line summary a person or an agent reads.
    #[must_use]
    pub fn line(&self) -> Option<String> {
        let step = self.step.as_deref().unwrap_or("?");
        let attempt = self.attempt.unwrap_or(0);
        Some(match self.result {
            "no_plan" => return None,
            "started" => format!(
                "started: step {step} try {attempt} (seq-runner pid {})",
                self.pid.unwrap_or(0)
            ),
            "in_flight" => {
                let pid = if self.runner_gone {
                    "; its runner has exited, and a process it started still holds the plan \
                     (the try is retried once that process ends)"
                        .to_owned()
                } else {
                    self.pid
                        .map(|p| format!(" (runner pid {p})"))
                        .unwrap_or_default()
                };
                match (self.attempt, &self.since) {
                    (Some(attempt), Some(since)) => {
                        format!("in flight: step {step} try {attempt} since {since}{pid}")
                    }
                    (Some(attempt), None) => format!("in flight: step {step} try {attempt}{pid}"),
                    // The lease is held between tries (a runner sleeping through a delay).
                    (None, _) => {
                        format!("in flight: a runner holds the plan{pid}; step {step} is next")
                    }
                }
            }
            "waiting" => format!(
                "waiting: step {step} is due at {}",
                self.until.as_deref().unwrap_or("?")
            ),
            "blocked" => format!(
                "blocked: step {step} failed {attempt} tries; last error: {}",
                self.error.as_deref().unwrap_or("(none recorded)")
            ),
            "paused" => "paused: nothing new starts until the plan is resumed".to_owned(),
            "done" if !self.newly_done => "nothing to do: the plan is done".to_owned(),
            "done" if self.artifacts.is_empty() => {
                format!("done: all {} steps finished", self.steps)
            }
            "done" => format!(
                "done: all {} steps finished; artifacts: {}",
                self.steps,
                self.artifacts.join(", ")
            ),
            other => other.to_owned(),
        })
    }
}

/// Runs one heartbeat for the state file at `path`; with `wait`, stays until the plan rests.
/// `say` gets progress lines while waiting.
pub fn run(
    path: &Path,
    config: &Config,
    wait: bool,
    say: &mut dyn FnMut(String),
) -> Result<Heartbeat> {
    let Some(store) = Store::locate(path)? else {
        return Ok(Heartbeat {
            result: "no_plan",
            ..Heartbeat::default()
        });
    };
    if !wait {
        return Ok(beat(&store, config, true)?.0);
    }
    let mut last_busy = None;
    loop {
        let (beat, launch) = beat(&store, config, false)?;
        if let Some((agent, _)) = launch {
            for change in &beat.changes {
                say(change.clone());
            }
            let summary = runner::run(&store, config, &agent, say)?;
            if summary.end == RunEnd::OtherRunner {
                thread::sleep(Duration::from_millis(500));
            }
            continue;
        }
        if beat.result != "in_flight" {
            return Ok(beat);
        }
        if last_busy.as_ref() != Some(&beat) {
            say(beat.line().unwrap_or_default());
            last_busy = Some(beat);
        }
        thread::sleep(Duration::from_secs(1));
    }
}

/// One locked read-modify-write. Returns what it found and, if a runner is needed, the checked
/// agent command and the runner to start. With `detach`, starts that runner itself before
/// letting go of the lock (see [`spawn_detached`]).
fn beat(
    store: &Store,
    config: &Config,
    detach: bool,
) -> Result<(Heartbeat, Option<(AgentCommand, PathBuf)>)> {
    let locked = store.lock()?;
    let mut state = locked.load()?;
    let steps = state.step_queue.len();
    let now = Utc::now();
    if state.status == crate::format::schema::PlanStatus::Done {
        // A finished plan is reported once, by the first heartbeat after it finished; after
        // that (and for plans finished by the Python version) it is not touched at all.
        let newly_done = schedule::finish_unreported(&state);
        if newly_done {
            state.last_heartbeat_iso = Some(timefmt::format(now));
            locked.save(&state)?;
        }
        return Ok((done(&state, Vec::new(), newly_done), None));
    }
    let lease = Lease::probe(store)?;
    let gap = heartbeat_gap(state.last_heartbeat_iso.as_deref(), now);
    state.last_heartbeat_iso = Some(timefmt::format(now));
    let (next, transitions) = schedule::settle(&mut state, now, config.limits, lease.is_held());
    let changes: Vec<String> = transitions.iter().map(ToString::to_string).collect();
    let launch = if matches!(next, Next::Run { .. } | Next::Wait { .. }) {
        // Checked before the save: bad configuration changes nothing.
        Some((
            AgentCommand::from_env(store.workspace())?,
            runner_path(config)?,
        ))
    } else {
        None
    };
    locked.save(&state)?;
    for kind in gap
        .into_iter()
        .chain(transitions.iter().filter_map(Kind::of_transition))
    {
        events::emit(store, By::Check, kind);
    }
    // Started while the lock is held (see `spawn_detached`); the heartbeat event is written
    // before the lock goes, so the runner's events always follow it in the log.
    let runner_pid = match &launch {
        Some((_, runner)) if detach => {
            let pid = spawn_detached(runner, store)?;
            events::emit(
                store,
                By::Check,
                Kind::Heartbeat {
                    result: if matches!(next, Next::Run { .. }) {
                        "started"
                    } else {
                        "waiting"
                    }
                    .to_owned(),
                    step: match &next {
                        Next::Run { step, .. } | Next::Wait { step, .. } => Some(step.clone()),
                        _ => None,
                    },
                    runner_pid: Some(pid),
                },
            );
            Some(pid)
        }
        _ => None,
    };
    drop(locked);
    let mut beat = match next {
        Next::Finished => done(&state, changes, true),
        Next::Busy => in_flight(&state, lease, changes),
        Next::Paused => Heartbeat {
            result: "paused",
            changes,
            ..Heartbeat::default()
        },
        Next::Blocked { step, tries } => Heartbeat {
            result: "blocked",
            error: state.run_of(&step).error,
            step: Some(step),
            attempt: Some(tries),
            changes,
            ..Heartbeat::default()
        },
        Next::Wait { step, until } => Heartbeat {
            result: "waiting",
            step: Some(step),
            until: Some(timefmt::format(until)),
            changes,
            ..Heartbeat::default()
        },
        Next::Run { step, attempt } => Heartbeat {
            result: "started",
            step: Some(step),
            attempt: Some(attempt),
            changes,
            ..Heartbeat::default()
        },
    };
    beat.steps = steps;
    beat.pid = runner_pid.or(beat.pid);
    Ok((beat, launch))
}

/// A `heartbeat_gap` event when the previous heartbeat is more than [`HEARTBEAT_GAP`] old.
///
/// A fixed threshold rather than "twice the usual gap": the usual gap would have to be read
/// from the event log on every heartbeat, and the state keeps only the last stamp.
fn heartbeat_gap(previous: Option<&str>, now: chrono::DateTime<Utc>) -> Option<Kind> {
    let text = previous?;
    let gap = now - timefmt::parse(text)?;
    (gap > HEARTBEAT_GAP).then(|| Kind::HeartbeatGap {
        previous: text.to_owned(),
        gap_seconds: gap.num_seconds(),
    })
}

fn done(state: &State, changes: Vec<String>, newly_done: bool) -> Heartbeat {
    Heartbeat {
        result: "done",
        newly_done,
        artifacts: state.artifacts().to_vec(),
        changes,
        steps: state.step_queue.len(),
        ..Heartbeat::default()
    }
}

/// The report for a plan whose lease is held: the current step's try, from the state, and the
/// holder's pid, from the lease note.
fn in_flight(state: &State, lease: LeaseState, changes: Vec<String>) -> Heartbeat {
    let holder = match lease {
        LeaseState::Held(holder) => holder,
        LeaseState::Free => None,
    };
    let step = state.current_id().map(str::to_owned);
    let run = step
        .as_deref()
        .map(|id| state.run_of(id))
        .unwrap_or_default();
    let running = run.status == StepStatus::InProgress;
    let holder_pid = holder.as_ref().map(|h: &Holder| h.pid);
    let runner_alive = holder_pid.is_some_and(lease::pid_alive);
    Heartbeat {
        result: "in_flight",
        attempt: running.then_some(run.tries),
        since: running
            .then(|| run.started_iso.or(run.last_run_iso))
            .flatten(),
        pid: holder_pid.filter(|_| runner_alive),
        runner_gone: holder_pid.is_some() && !runner_alive,
        step,
        changes,
        ..Heartbeat::default()
    }
}

/// The runner to start: `STEP_RUNNER`, else the `seq-runner` beside this executable.
fn runner_path(config: &Config) -> Result<PathBuf> {
    let (path, origin) = if let Some(path) = &config.runner {
        (path.clone(), "STEP_RUNNER")
    } else {
        let me = std::env::current_exe().context("cannot find this executable's path")?;
        (
            me.with_file_name("seq-runner"),
            "the runner beside seq-check",
        )
    };
    let executable = fs::metadata(&path).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    });
    if !executable {
        bail!(
            "{origin} ({}) is not an executable file; install both binaries (cargo install \
             agent-step-sequencer) or set STEP_RUNNER",
            path.display()
        );
    }
    Ok(path)
}

/// Starts the runner in its own session, stdin closed, output appended to `runner.log`, and
/// returns its pid without waiting for it to finish.
///
/// The caller holds the state lock, and keeps it until the runner holds the run lease (or has
/// exited, or [`RUNNER_START_PATIENCE`] passed): otherwise a heartbeat right behind this one
/// finds the lease still free and starts a second runner, and for a moment two runners are
/// alive for one plan (the second gives up after its lease patience, but it should not exist).
fn spawn_detached(runner: &Path, store: &Store) -> Result<u32> {
    let log_path = store.ensure_sidecar()?.join("runner.log");
    if fs::metadata(&log_path).is_ok_and(|m| m.len() > RUNNER_LOG_CAP) {
        let _ = fs::rename(&log_path, log_path.with_extension("log.1"));
    }
    let log = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("{}: cannot open", log_path.display()))?;
    let mut command = Command::new(runner);
    command
        .arg(store.path())
        .current_dir(store.workspace())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid and close_range are async-signal-safe and act on the child only.
    unsafe {
        command.pre_exec(|| {
            // A session of its own: the heartbeat's process group and terminal can go away.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            // Descriptors the caller leaked to us (an exec tool's pipes) must not reach the
            // runner, or the caller would wait for it. Marked close-on-exec rather than closed,
            // so std can still report an exec failure through its own pipe.
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", runner.display()))?;
    let deadline = Instant::now() + RUNNER_START_PATIENCE;
    // A runner takes the lease within a millisecond or so: poll tightly at first, then back off,
    // so the heartbeat returns as soon as it can without spinning when the machine is busy.
    let mut pause = Duration::from_micros(100);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) || Lease::probe(store)?.is_held() {
            break;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
    Ok(child.id())
}
