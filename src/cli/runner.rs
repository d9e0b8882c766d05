//! `seq-runner`: take the run lease, then run due steps in a loop until nothing more is due.
//!
//! Each turn of the loop is one locked read-modify-write: record the try that just ended,
//! settle the plan (advance, block, finish), and if a step is due mark it started; then the
//! lock is dropped and the agent runs with only the lease held. The state is read afresh every
//! turn, so a person's change (skip, pause, a hand edit) made while an agent ran is honoured.
//! Every try's start and finish, and every change, goes to the event log.
//! Delays are slept through here, so a plan completes without waiting for heartbeats.

use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::config::Config;
use super::exit::Exit;
use super::live::liveness;
use super::reads::Reads;
use super::trial::{self, shown, try_once, Crew, Tried};
use super::watch::Watch;
use crate::core::{
    apply, prompt, settle, Context, Event, Input, Launch, Next, Plan, StepId, TryState,
};
use crate::exec::command::AgentCommand;
use crate::exec::{process, signals};
use crate::format::timefmt;
use crate::store::events::{self, By};
use crate::store::lease::{Lease, LeaseState, Lost};
use crate::store::{layout, prune, Snapshot, Store};

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
    watch: &Watch,
    say: &mut dyn FnMut(String),
) -> Result<RunSummary> {
    let summary = RunSummary {
        end: Next::Busy,
        last_try_failed: false,
        tries_run: 0,
        signal: None,
    };
    let Some(lease) = Lease::acquire(store, LEASE_PATIENCE)? else {
        say("another runner holds the lease; leaving the plan to it".into());
        return Ok(summary);
    };
    process::adopt_orphans();
    signals::install();
    let mut runner = Runner {
        store,
        config,
        agent,
        watch,
        lease,
        me: process::me(),
        ended: None,
        known: None,
        announced_wait: None,
        summary,
        logs_total: None,
    };
    loop {
        // The try whose result this turn records, if its write fails.
        let pending = match &runner.ended {
            Some(Input::Finished { step, attempt, .. } | Input::Stopped { step, attempt, .. }) => {
                Some((step.to_string(), *attempt))
            }
            _ => None,
        };
        match runner.turn(say) {
            Ok(Some(summary)) => return Ok(summary),
            Ok(None) => {}
            Err(error) => {
                if let Some((step, attempt)) = pending {
                    // The last word: the next heartbeat takes this try back rather than
                    // counting it as one a crash interrupted.
                    let lost = Lost {
                        step,
                        attempt,
                        error: format!("{error:#}"),
                    };
                    drop(runner.lease.note_lost(lost));
                }
                return Err(error);
            }
        }
    }
}

/// A runner's state between turns.
struct Runner<'a> {
    store: &'a Store,
    config: &'a Config,
    agent: &'a AgentCommand,
    watch: &'a Watch,
    lease: Lease,
    /// This process, as a try it starts records it.
    me: Option<process::ProcessId>,
    /// The try that just ended, to record in the next turn.
    ended: Option<Input>,
    /// The file as this runner last wrote it: unchanged, it needs no parsing (see `Snapshot`).
    known: Option<Snapshot>,
    announced_wait: Option<(StepId, DateTime<Utc>)>,
    summary: RunSummary,
    /// What the plan's logs take on disk, as far as this runner knows (None: not measured).
    logs_total: Option<u64>,
}

impl Runner<'_> {
    /// One locked read-modify-write, then a try or a sleep; `Some` when the runner is done.
    fn turn(&mut self, say: &mut dyn FnMut(String)) -> Result<Option<RunSummary>> {
        let store = self.store;
        let locked = store.lock()?;
        if !self.lease.keep_named(store)? {
            // Someone deleted the lease under this runner, and another runner took the new
            // one: the plan is that runner's now.
            say("another runner holds the lease now; leaving the plan to it".into());
            return Ok(Some(self.summary.clone()));
        }
        let (mut state, read) = locked.reload(self.known.take())?.into_parts();
        let mut plan = Plan::take(&mut state);
        let lost = self.lease.lost().cloned();
        let live = liveness(&plan, &LeaseState::Free, self.me, lost.as_ref());
        let ctx = Context {
            now: Utc::now(),
            live: &live,
            limits: self.config.limits,
            io: &Reads { store },
        };
        let mut news = Vec::new();
        if let Some(ended) = self.ended.take() {
            news.extend(apply(&mut plan, ended, &ctx)?);
        }
        let next = if let Some(signal) = signals::received() {
            // Told to stop: the try it was running (if any) is recorded, nothing new starts.
            say(format!("stopped by {}", signals::name(signal)));
            self.summary.signal = Some(signal);
            Next::Busy
        } else {
            let (changes, next) = settle(&mut plan, &ctx);
            news.extend(changes);
            next
        };
        // A noted lost result is done with once the plan no longer shows that try in flight
        // (this turn took it back, or a heartbeat did before this runner started).
        let took_back = lost.as_ref().is_some_and(|l| {
            !plan.step(&l.step).is_some_and(|s| {
                matches!(s.run.state(), TryState::Running { attempt, .. } if attempt == l.attempt)
            })
        });
        match next {
            Next::Run(mut launch) => {
                // Earlier results go into the prompt now, read under the lock (a person's
                // reset of a step cannot slip between the look at its status and the read),
                // and before the try is marked started (a retry's prompt counts the tries
                // before it); summaries, which take an agent, after the lock.
                let compress = with_results(store, &plan, &mut launch);
                news.extend(mark_started(store, &mut plan, &launch, self.me, &ctx)?);
                plan.put_back(&mut state);
                self.known = Some(locked.save_snapshot(state)?);
                self.saved(took_back);
                tell(store, &news, say);
                drop(locked);
                self.run_try(launch, compress, say);
            }
            Next::Wait { step, until, .. } => {
                plan.put_back(&mut state);
                self.known = Some(locked.save_if_changed(state, read)?);
                self.saved(took_back);
                tell(store, &news, say);
                drop(locked);
                if self.announced_wait.as_ref() != Some(&(step.clone(), until)) {
                    say(format!(
                        "step {step}: waiting until {}",
                        timefmt::format(until)
                    ));
                    self.announced_wait = Some((step, until));
                }
                let left = (until - Utc::now()).to_std().unwrap_or_default();
                signals::sleep(left.min(SLEEP_SLICE) + Duration::from_millis(5));
            }
            end @ (Next::Blocked { .. } | Next::Finished | Next::Paused | Next::Busy) => {
                plan.put_back(&mut state);
                locked.save_if_changed(state, read)?;
                self.saved(took_back);
                tell(store, &news, say);
                return Ok(Some(RunSummary {
                    end,
                    ..self.summary.clone()
                }));
            }
        }
        Ok(None)
    }

    /// Runs a started try (its earlier results summarised first, if they must be), and
    /// keeps its ending for the next turn to record.
    fn run_try(
        &mut self,
        mut launch: Launch,
        compress: Option<(Plan, Vec<StepId>)>,
        say: &mut dyn FnMut(String),
    ) {
        let store = self.store;
        let crew = Crew {
            config: self.config,
            default: self.agent,
            workspace: store.workspace(),
            watch: self.watch,
        };
        self.keep_logs_bounded(&launch, say);
        if let Some((plan, wanted)) = compress {
            trial::compress(store, &crew, &plan, &mut launch, &wanted, &self.lease, say);
        }
        let Tried {
            outcome,
            signalled,
            logged,
        } = try_once(store, &crew, &launch, &mut self.lease, say);
        self.logs_total = self.logs_total.map(|t| t + logged);
        self.summary.last_try_failed = outcome.verdict.is_err() && !signalled;
        self.summary.tries_run += 1;
        let (step, attempt) = (launch.step, launch.attempt);
        self.ended = Some(if signalled {
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

    /// Keeps the plan's logs within `STEP_LOGS_MAX_MB` (see `store::prune`): measured by the
    /// first try of this runner, then added up, and swept only once past the limit.
    fn keep_logs_bounded(&mut self, launch: &Launch, say: &mut dyn FnMut(String)) {
        let limit = self.config.logs_limit;
        if self.logs_total.is_some_and(|total| total <= limit) {
            return;
        }
        let stem = format!("{}.", layout::file_stem(launch.step.as_str()));
        let pruned = prune::prune(&self.store.layout().logs(), limit, &[&stem]);
        if pruned.removed > 0 {
            say(format!(
                "removed the {} oldest log files: the plan's logs were over {} MiB (STEP_LOGS_MAX_MB)",
                pruned.removed,
                limit >> 20
            ));
        }
        self.logs_total = Some(pruned.total);
    }

    /// After a save: a lost result the plan has taken back is no longer news.
    fn saved(&mut self, took_back: bool) {
        if took_back {
            drop(self.lease.clear_lost());
        }
    }
}

/// Puts the earlier results the step asks for into its prompt. Returns the plan and the
/// results a compress agent should summarise first, if the plan has one and some do not fit.
fn with_results(store: &Store, plan: &Plan, launch: &mut Launch) -> Option<(Plan, Vec<StepId>)> {
    let step = plan.step(launch.step.as_str())?;
    if prompt::needs(plan, step).is_empty() {
        return None;
    }
    let mut load = trial::loader(store, plan);
    let built = prompt::with_results(plan, step, &mut load);
    launch.prompt = built.prompt;
    launch.task = built.task;
    plan.result_settings().compress_agent.as_ref()?;
    let wanted = prompt::to_summarise(plan, step, &mut load);
    (!wanted.is_empty()).then(|| (plan.clone(), wanted))
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

/// Appends the turn's events once its state is saved (and while the lock still orders them
/// after every earlier writer's), and says each.
fn tell(store: &Store, news: &[Event], say: &mut dyn FnMut(String)) {
    for event in news {
        say(event.to_string());
    }
    events::emit(store, By::Runner, news);
}
