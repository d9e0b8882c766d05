//! `seq-runner`: take the run lease, then run due steps in a loop until nothing more is due.
//!
//! Each turn of the loop is one locked read-modify-write: record the try that just ended,
//! settle the plan (advance, block, finish), and if a step is due mark it started; then the
//! lock is dropped and the agent runs with only the lease held. The state is read afresh every
//! turn, so a person's change (skip, pause, a hand edit) made while an agent ran is honoured.
//! Every try's start and finish, and every change, goes to the event log.
//! Delays are slept through here, so a plan completes without waiting for heartbeats.

use std::cell::Cell;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::Utc;

use super::config::Config;
use super::exit::Exit;
use super::live::liveness;
use crate::core::verdict::{Ending, StopWhy};
use crate::core::TryState;
use crate::core::{apply, settle, verdict, Context, Event, Input, Launch, Next, Plan, TryOutcome};
use crate::exec::attempt::{self, Attempt};
use crate::exec::command::AgentCommand;
use crate::exec::{capture, outputs, process, signals};
use crate::format::timefmt;
use crate::store::events::{self, By};
use crate::store::lease::{Lease, LeaseState};
use crate::store::Layout;
use crate::store::Store;

/// How long a runner waits for a lease that a check is only probing.
const LEASE_PATIENCE: Duration = Duration::from_secs(2);
/// Sleeps through a delay in slices, re-reading the plan in between (it may be paused or edited).
const SLEEP_SLICE: Duration = Duration::from_secs(30);

/// The runner's result: where the plan rested (`Busy`: another runner holds it, and this one
/// did nothing), whether the last try it ran failed, and the signal that stopped it, if one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub end: Next,
    pub last_try_failed: bool,
    pub tries_run: u32,
    pub signal: Option<i32>,
}

impl RunSummary {
    /// 0 when the last step ended DONE or there was nothing to do; 1 when a step FAILED;
    /// 128 + the signal when one stopped the runner.
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self.signal {
            Some(signal) => Exit::Signal(signal),
            None => {
                Exit::attention_if(self.last_try_failed || matches!(self.end, Next::Blocked { .. }))
            }
        }
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
    let mut summary = RunSummary {
        end: Next::Busy,
        last_try_failed: false,
        tries_run: 0,
        signal: None,
    };
    let Some(mut lease) = Lease::acquire(store, LEASE_PATIENCE)? else {
        say("another runner holds the lease; leaving the plan to it".into());
        return Ok(summary);
    };
    process::adopt_orphans();
    signals::install();
    let me = process::me();
    let mut ended: Option<Input> = None;
    let mut announced_wait = None;
    // The file as this runner last wrote it: unchanged, it needs no parsing (see `Snapshot`).
    let mut known = None;
    loop {
        let locked = store.lock()?;
        if !lease.keep_named(store)? {
            // Someone deleted the lease under this runner, and another runner took the new
            // one: the plan is that runner's now.
            say("another runner holds the lease now; leaving the plan to it".into());
            return Ok(summary);
        }
        let (mut state, read) = locked.reload(known.take())?.into_parts();
        let mut plan = Plan::take(&mut state);
        let live = liveness(&plan, &LeaseState::Free, me);
        let ctx = Context {
            now: Utc::now(),
            live: &live,
            limits: config.limits,
        };
        let mut news = Vec::new();
        if let Some(finished) = ended.take() {
            news.extend(apply(&mut plan, finished, &ctx)?);
        }
        let next = if let Some(signal) = signals::received() {
            // Told to stop: the try it was running (if any) is recorded, nothing new starts.
            say(format!("stopped by {}", signals::name(signal)));
            summary.signal = Some(signal);
            Next::Busy
        } else {
            let (changes, next) = settle(&mut plan, &ctx);
            news.extend(changes);
            next
        };
        match next {
            Next::Run(launch) => {
                news.extend(mark_started(store, &mut plan, &launch, me, &ctx)?);
                plan.put_back(&mut state);
                known = Some(locked.save_snapshot(state)?);
                tell(store, &news, say);
                drop(locked);
                let (outcome, signalled) = try_once(store, agent, &launch, &mut lease, say);
                summary.last_try_failed = outcome.verdict.is_err() && !signalled;
                summary.tries_run += 1;
                let (step, attempt) = (launch.step, launch.attempt);
                ended = Some(if signalled {
                    Input::Stopped {
                        step,
                        attempt,
                        outcome,
                    }
                } else {
                    Input::Finished {
                        step,
                        attempt,
                        outcome,
                    }
                });
            }
            Next::Wait { step, until, .. } => {
                plan.put_back(&mut state);
                known = Some(locked.save_if_changed(state, read)?);
                tell(store, &news, say);
                drop(locked);
                if announced_wait.as_ref() != Some(&(step.clone(), until)) {
                    say(format!(
                        "step {step}: waiting until {}",
                        timefmt::format(until)
                    ));
                    announced_wait = Some((step, until));
                }
                let left = (until - Utc::now()).to_std().unwrap_or_default();
                signals::sleep(left.min(SLEEP_SLICE) + Duration::from_millis(5));
            }
            end @ (Next::Blocked { .. } | Next::Finished | Next::Paused | Next::Busy) => {
                plan.put_back(&mut state);
                locked.save_if_changed(state, read)?;
                tell(store, &news, say);
                return Ok(RunSummary { end, ..summary });
            }
        }
    }
}

/// Marks the launch's try started by this runner, its log folder made first: a folder that
/// cannot be made costs no try.
fn mark_started(
    store: &Store,
    plan: &mut Plan,
    launch: &Launch,
    me: Option<process::ProcessId>,
    ctx: &Context,
) -> Result<Vec<Event>> {
    store.logs_dir()?;
    let log_path = store
        .layout()
        .attempt_log(launch.step.as_str(), launch.attempt);
    let started = Input::Started {
        step: launch.step.clone(),
        attempt: launch.attempt,
        agent: launch.agent.clone(),
        runner: me,
        log_file: Some(shown(store, &log_path)),
    };
    Ok(apply(plan, started, ctx)?)
}

/// A path inside the workspace as the state file shows it: relative to the workspace.
fn shown(store: &Store, path: &Path) -> String {
    path.strip_prefix(store.workspace())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Runs one try with only the lease held, and judges it; says whether a signal to this
/// runner stopped it.
fn try_once(
    store: &Store,
    agent: &AgentCommand,
    launch: &Launch,
    lease: &mut Lease,
    say: &mut dyn FnMut(String),
) -> (TryOutcome, bool) {
    let (step, attempt) = (launch.step.as_str(), launch.attempt);
    let logs = match store.logs_dir() {
        Ok(logs) => logs,
        Err(e) => return (unrecorded(&format!("{e:#}")), false),
    };
    let log_name = Layout::attempt_log_name(step, attempt);
    let prompt_name = Layout::prompt_name(step, attempt);
    let lease_fd = lease.fd();
    let prompt_file = store.layout().prompt_file(step, attempt);
    let superseded = Superseded::new(store, step, attempt);
    let report = attempt::run(
        &Attempt {
            agent,
            prompt: &launch.prompt,
            step,
            attempt,
            workspace: store.workspace(),
            state_file: store.path(),
            timeout: launch.timeout,
            logs: &logs,
            log_name: &log_name,
            prompt_name: &prompt_name,
            prompt_path: &prompt_file,
            lease_fd: Some(lease_fd),
            log_cap: (capture::HEAD_BYTES, capture::TAIL_BYTES),
        },
        |pgid| {
            // The lease note is for people and `seqctl cancel`: failing to write it must
            // neither cost a try that never ran nor lose the result of one that did.
            drop(lease.set_step(Some((step, attempt)), Some(pgid)));
            let spawned = Event::StepStarted {
                step: launch.step.clone(),
                attempt,
                agent_pid: pgid,
            };
            say(spawned.to_string());
            events::emit(store, By::Runner, [&spawned]);
            // While the agent runs: the next save's temp file, off the path between tries.
            store.prepare_save();
        },
        &|| {
            signals::received()
                .map(StopWhy::Signal)
                .or_else(|| superseded.check().then_some(StopWhy::Superseded))
        },
    );
    drop(lease.set_step(None, None));
    let facts = outputs::facts(
        &launch.required_outputs,
        store.workspace(),
        &[store.path(), store.sidecar()],
    );
    let verdict = verdict::verdict(&report.ending, &report.stdout, &report.stderr, &facts);
    let (exit_code, signal, stopped) = match report.ending {
        Ending::Exited(code) => (Some(code), None, None),
        Ending::Signaled(signal) => (None, Some(signal), None),
        Ending::Stopped { how, .. } => (None, None, Some(how)),
        Ending::TimedOut(_) | Ending::NotStarted(_) => (None, None, None),
    };
    let signalled = matches!(
        report.ending,
        Ending::Stopped {
            why: StopWhy::Signal(_),
            ..
        }
    );
    let outcome = TryOutcome {
        verdict,
        stdout_tail: report.stdout,
        exit_code,
        signal,
        duration_ms: report.duration.as_millis() as u64,
        stopped,
    };
    (outcome, signalled)
}

/// Whether a person changed the plan under a running try (cancelled or skipped it), so its
/// runner must stop the agent: the runner stops only what it started itself, never a process
/// named in a file the agent can write. Looked at once per [`attempt::STOP_CHECK`], and the
/// state parsed only when the file changed since the runner's own save.
struct Superseded<'a> {
    store: &'a Store,
    step: &'a str,
    attempt: u32,
    seen: Cell<Option<FileId>>,
    next: Cell<Instant>,
}

/// What tells one version of a file from the next without reading it.
type FileId = (u64, u64, u64, i64, i64);

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

impl<'a> Superseded<'a> {
    fn new(store: &'a Store, step: &'a str, attempt: u32) -> Self {
        Self {
            store,
            step,
            attempt,
            seen: Cell::new(file_id(store.path())),
            next: Cell::new(Instant::now() + attempt::STOP_CHECK),
        }
    }

    fn check(&self) -> bool {
        let now = Instant::now();
        if now < self.next.get() {
            return false;
        }
        self.next.set(now + attempt::STOP_CHECK);
        let id = file_id(self.store.path());
        if id == self.seen.get() {
            return false;
        }
        self.seen.set(id);
        // A broken file (a hand edit in progress) is no reason to stop an agent.
        self.store.read().is_ok_and(|state| {
            !Plan::of(&state).step(self.step).is_some_and(|s| {
                matches!(s.run.state(), TryState::Running { attempt, .. } if attempt == self.attempt)
            })
        })
    }
}

/// The outcome of a try whose agent could not be started.
fn unrecorded(why: &str) -> TryOutcome {
    let ending = Ending::NotStarted(why.to_owned());
    TryOutcome {
        verdict: verdict::verdict(&ending, "", "", &[]),
        stdout_tail: String::new(),
        exit_code: None,
        signal: None,
        duration_ms: 0,
        stopped: None,
    }
}

/// Appends the turn's events once its state is saved (and while the lock still orders them
/// after every earlier writer's), and says each.
fn tell(store: &Store, news: &[Event], say: &mut dyn FnMut(String)) {
    for event in news {
        say(event.to_string());
    }
    events::emit(store, By::Runner, news);
}
