//! `seq-runner`: take the run lease, then run due steps in a loop until nothing more is due.
//!
//! Each turn of the loop is one locked read-modify-write: record the try that just ended,
//! settle the plan (advance, block, finish), and if a step is due mark it IN_PROGRESS; then the
//! lock is dropped and the agent runs with only the lease held. The state is read afresh every
//! turn, so a person's change (skip, pause, a hand edit) made while an agent ran is honoured.
//! Every try's start and finish, and every transition, goes to the event log (see `events`).
//! Delays are slept through here, so a plan completes without waiting for heartbeats.

use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::cli::config::Config;
use crate::core::schedule::{self, Next, Outcome};
use crate::exec::attempt::{self, Attempt, Ending};
use crate::exec::capture;
use crate::exec::command::AgentCommand;
use crate::exec::judge;
use crate::format::schema::State;
use crate::format::timefmt;
use crate::store::events::{self, By, Kind};
use crate::store::layout;
use crate::store::lease::Lease;
use crate::store::Store;

/// How long a runner waits for a lease that a check is only probing.
const LEASE_PATIENCE: Duration = Duration::from_secs(2);
/// Sleeps through a delay in slices, re-reading the plan in between (it may be paused or edited).
const SLEEP_SLICE: Duration = Duration::from_secs(30);

/// How a runner's work ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The plan is finished (or was already).
    Finished,
    /// A step used all its tries.
    Blocked {
        step: String,
    },
    Paused,
    /// Another runner holds the lease; this one did nothing.
    OtherRunner,
}

/// The runner's result: how it ended and whether the last try it ran failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub end: RunEnd,
    pub last_try_failed: bool,
    pub tries_run: u32,
}

impl RunSummary {
    /// 0 when the last step ended DONE or there was nothing to do; 1 when a step FAILED.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        u8::from(self.last_try_failed || matches!(self.end, RunEnd::Blocked { .. }))
    }
}

/// Runs the plan's due steps until nothing more is due. `say` gets one line per thing that
/// happened.
pub fn run(
    store: &Store,
    config: &Config,
    agent: &AgentCommand,
    say: &mut dyn FnMut(String),
) -> Result<RunSummary> {
    let Some(mut lease) = Lease::acquire(store, LEASE_PATIENCE)? else {
        say("another runner holds the lease; leaving the plan to it".into());
        return Ok(RunSummary {
            end: RunEnd::OtherRunner,
            last_try_failed: false,
            tries_run: 0,
        });
    };
    attempt::adopt_orphans();
    let mut ended: Option<(String, u32, Outcome)> = None;
    let mut last_try_failed = false;
    let mut tries_run = 0;
    let mut announced_wait = None;
    // The file as this runner last wrote it: unchanged, it needs no parsing (see `Snapshot`).
    let mut known = None;
    loop {
        let locked = store.lock()?;
        let (mut state, read) = locked.reload(known.take())?.into_parts();
        let now = Utc::now();
        let mut news = Vec::new();
        if let Some((step, attempt, outcome)) = ended.take() {
            let mut finished = finished_event(&step, attempt, &outcome);
            if !schedule::record(&mut state, &step, attempt, outcome, now) {
                say(format!("step {step} try {attempt}: the plan changed while it ran; its result is not recorded"));
                if let Kind::StepFinished { recorded, .. } = &mut finished {
                    *recorded = false;
                }
            }
            news.push(finished);
        }
        let (next, changes) = schedule::settle(&mut state, now, config.limits, false);
        for change in &changes {
            say(change.to_string());
        }
        news.extend(changes.iter().filter_map(Kind::of_transition));
        let end = match next {
            Next::Run { step, attempt } => {
                let job = Job::start(store, config, &mut state, &step, attempt, now)?;
                known = Some(locked.save_snapshot(state)?);
                tell(store, news);
                drop(locked);
                let outcome = job.run(store, agent, &mut lease, say);
                last_try_failed = outcome.verdict.is_err();
                ended = Some((step, attempt, outcome));
                tries_run += 1;
                continue;
            }
            Next::Wait { step, until } => {
                known = Some(locked.save_if_changed(state, read)?);
                tell(store, news);
                drop(locked);
                if announced_wait.as_ref() != Some(&(step.clone(), until)) {
                    say(format!(
                        "step {step}: waiting until {}",
                        timefmt::format(until)
                    ));
                    announced_wait = Some((step, until));
                }
                let left = (until - Utc::now()).to_std().unwrap_or_default();
                thread::sleep(left.min(SLEEP_SLICE) + Duration::from_millis(5));
                continue;
            }
            Next::Blocked { step, .. } => RunEnd::Blocked { step },
            Next::Finished => RunEnd::Finished,
            Next::Paused => RunEnd::Paused,
            // Unreachable while we hold the lease; if it happens, leave the plan alone.
            Next::Busy => RunEnd::OtherRunner,
        };
        locked.save_if_changed(state, read)?;
        tell(store, news);
        return Ok(RunSummary {
            end,
            last_try_failed,
            tries_run,
        });
    }
}

/// One try about to run: everything read from the state under the lock.
struct Job {
    step: String,
    attempt: u32,
    prompt: String,
    log_path: PathBuf,
    required: Vec<String>,
    timeout: Duration,
}

impl Job {
    /// Reads what the try needs and marks it started in `state` (the caller saves).
    fn start(
        store: &Store,
        config: &Config,
        state: &mut State,
        step: &str,
        attempt: u32,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let log_path = layout::attempt_log(store, step, attempt);
        if let Some(dir) = log_path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        }
        let definition = &state.plan.steps[step];
        let job = Self {
            step: step.to_owned(),
            attempt,
            prompt: schedule::prompt(state, step),
            required: definition.required_outputs().to_vec(),
            timeout: definition
                .timeout_seconds
                .map_or(config.timeout, Duration::from_secs),
            log_path,
        };
        let shown_log = job
            .log_path
            .strip_prefix(store.workspace())
            .unwrap_or(&job.log_path);
        schedule::mark_started(state, step, now, Some(shown_log.display().to_string()));
        Ok(job)
    }

    /// Runs the agent with only the lease held, and judges the result.
    fn run(
        self,
        store: &Store,
        agent: &AgentCommand,
        lease: &mut Lease,
        say: &mut dyn FnMut(String),
    ) -> Outcome {
        let (step, attempt) = (self.step.as_str(), self.attempt);
        // The lease note is for people and `seqctl cancel`: failing to write it must neither
        // cost a try that never ran nor lose the result of one that did.
        drop(lease.set_step(Some((step, attempt)), None));
        say(format!("step {step}: try {attempt} started"));
        let lease_fd = lease.fd();
        let report = attempt::run(
            &Attempt {
                agent,
                prompt: &self.prompt,
                step,
                attempt,
                workspace: store.workspace(),
                state_file: store.path(),
                timeout: self.timeout,
                log_path: &self.log_path,
                lease_fd: Some(lease_fd),
                log_cap: (capture::HEAD_BYTES, capture::TAIL_BYTES),
            },
            |pgid| {
                // The note is for people and `seqctl cancel`; failing to write it is no reason
                // to stop.
                drop(lease.set_step(Some((step, attempt)), Some(pgid)));
                events::emit(
                    store,
                    By::Runner,
                    Kind::StepStarted {
                        step: step.to_owned(),
                        attempt,
                        agent_pid: pgid,
                    },
                );
            },
        );
        drop(lease.set_step(None, None));
        let verdict = judge::verdict(
            &report,
            &self.required,
            store.workspace(),
            &[store.path(), store.sidecar()],
        );
        match &verdict {
            Ok(_) => say(format!(
                "step {step}: try {attempt} DONE in {}",
                human_duration(report.duration)
            )),
            Err(error) => say(format!("step {step}: try {attempt} FAILED: {error}")),
        }
        let (exit_code, signal) = match report.ending {
            Ending::Exited(code) => (Some(code), None),
            Ending::Signaled(signal) => (None, Some(signal)),
            Ending::TimedOut(_) | Ending::NotStarted(_) => (None, None),
        };
        Outcome {
            verdict,
            stdout_tail: report.stdout,
            exit_code,
            signal,
            duration_ms: report.duration.as_millis() as u64,
        }
    }
}

/// The `step_finished` event for a try, before `record` consumes its outcome.
fn finished_event(step: &str, attempt: u32, outcome: &Outcome) -> Kind {
    Kind::StepFinished {
        step: step.to_owned(),
        attempt,
        status: if outcome.verdict.is_ok() {
            "DONE"
        } else {
            "FAILED"
        }
        .to_owned(),
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        duration_ms: outcome.duration_ms,
        error: outcome.verdict.as_ref().err().cloned(),
        recorded: true,
    }
}

/// Appends the turn's events once its state is saved (and while the lock still orders them
/// after every earlier writer's).
fn tell(store: &Store, news: Vec<Kind>) {
    for kind in news {
        events::emit(store, By::Runner, kind);
    }
}

/// `840 ms`, `12.3 s`, `4 min 5 s`: short enough for a log line.
fn human_duration(d: Duration) -> String {
    match d.as_millis() {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", d.as_secs_f64()),
        _ => format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60),
    }
}
