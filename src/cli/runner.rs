//! `seq-runner`: take the run lease, then run due tries until nothing more is due.
//!
//! Each turn of the loop is one locked read-modify-write: record the tries that ended,
//! settle the plan (advance, block, finish, skip, expand), and mark started every try that is
//! due while fewer than `plan.maxParallel` run; then the lock is dropped and each new try runs
//! on a thread of its own, holding its own try lease (inherited by its agent). The runner then
//! waits for a try to end, or for the next one to be due. The state is read afresh every
//! turn, so a person's change (skip, pause, a hand edit) made while agents ran is honoured.
//! Every try's start and finish, and every change, goes to the event log. Delays are slept
//! through here, so a plan completes without waiting for heartbeats.
//!
//! A plain list has `maxParallel` 1 and runs exactly as before: one try, then the next.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, Scope};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::config::Config;
use super::exit::Exit;
use super::live::liveness;
use super::reads::Reads;
use super::trial::{self, shown, try_once, Crew, Tried};
use super::watch::Watch;
use crate::core::model::Derived;
use crate::core::{
    apply, prompt, settle, Context, Event, Input, Launch, Next, Plan, StepId, TryState,
};
use crate::exec::command::AgentCommand;
use crate::exec::{process, signals};
use crate::format::timefmt;
use crate::store::events::{self, By};
use crate::store::lease::{Lease, LeaseState, Lost, TryLease};
use crate::store::{layout, prune, Snapshot, Store};

/// How long a runner waits for a lease that a check is only probing.
const LEASE_PATIENCE: Duration = Duration::from_secs(2);
/// Sleeps through a delay in slices, re-reading the plan in between (it may be paused or edited).
const SLEEP_SLICE: Duration = Duration::from_secs(30);
/// How often a runner waiting on its tries looks whether it was told to stop.
const SIGNAL_CHECK: Duration = Duration::from_millis(250);

/// How long the tries in flight run before the runner brings state.json up to date with its
/// journal (see `store::journal`): an agent that takes longer than this (a real one takes
/// seconds) finds a whole state.json; only runs of steps faster than this leave it a second
/// behind.
const CATCH_UP: Duration = Duration::from_millis(20);

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

/// What a try's thread tells the runner.
enum Msg {
    /// A line for the runner's output.
    Say(String),
    /// The try's agent runs, in this process group.
    Spawned {
        step: StepId,
        attempt: u32,
        pgid: u32,
    },
    /// The try ended.
    Ended { launch: Box<Launch>, tried: Tried },
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
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        let mut runner = Runner {
            store,
            config,
            agent,
            watch,
            lease,
            me: process::me(),
            ended: Vec::new(),
            in_flight: HashMap::new(),
            known: None,
            derived: None,
            plan_hash: None,
            announced_wait: None,
            summary,
            logs_total: None,
            upcoming: Vec::new(),
            leases_ready: HashSet::new(),
            tx,
            rx,
        };
        loop {
            // The tries whose results this turn records, if its write fails.
            let pending: Vec<(String, u32)> = runner
                .ended
                .iter()
                .filter_map(|input| match input {
                    Input::Finished { step, attempt, .. }
                    | Input::Stopped { step, attempt, .. } => Some((step.to_string(), *attempt)),
                    _ => None,
                })
                .collect();
            match runner.turn(scope, say) {
                Ok(Some(summary)) => return Ok(summary),
                Ok(None) => {}
                Err(error) => {
                    if let Some((step, attempt)) = pending.into_iter().next() {
                        // The last word: the next heartbeat takes this try back rather than
                        // counting it as one a crash interrupted.
                        let lost = Lost {
                            step,
                            attempt,
                            error: format!("{error:#}"),
                        };
                        drop(runner.lease.note_lost(lost));
                    }
                    // Its tries stop as on a signal, so the scope's threads end soon.
                    signals::stop_all();
                    return Err(error);
                }
            }
        }
    })
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
    /// The tries that ended, to record in the next turn.
    ended: Vec<Input>,
    /// The tries running now, on their threads: step and attempt.
    in_flight: HashMap<StepId, u32>,
    /// The file as this runner last wrote it: unchanged, it needs no parsing (see `Snapshot`).
    known: Option<Snapshot>,
    /// What the plan worked out from that save (its specs, its fingerprint), kept with it.
    derived: Option<Derived>,
    /// The `planHash` of this runner's last save: see [`Runner::turn`].
    plan_hash: Option<String>,
    announced_wait: Option<(StepId, DateTime<Utc>)>,
    summary: RunSummary,
    /// What the plan's logs take on disk, as far as this runner knows (None: not measured).
    logs_total: Option<u64>,
    /// The units likely to start next, whose try lease files are made while agents run.
    upcoming: Vec<StepId>,
    /// The units whose try lease files this runner made ahead, or found.
    leases_ready: HashSet<StepId>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
}

/// How many units' try lease files a runner makes ahead.
const LEASES_AHEAD: usize = 2;

/// The first units of `plan` that have not started yet and whose try lease files are not
/// known to exist: likely the next to start. Their lease files are made while agents run,
/// not between one try and the next: on a file system that skips recently freed inodes one
/// by one when making a file (ext4 without a journal), a burst of fast steps otherwise
/// spends most of its time there.
fn upcoming(plan: &Plan, ready: &HashSet<StepId>) -> Vec<StepId> {
    plan.units()
        .filter(|unit| matches!(unit.run.state(), TryState::Pending { tries: 0 }))
        .filter(|unit| !ready.contains(&unit.id))
        .take(LEASES_AHEAD)
        .map(|unit| unit.id.clone())
        .collect()
}

impl<'a> Runner<'a> {
    /// One locked read-modify-write, then new tries on their threads, then a wait for one to
    /// end (or the next to be due); `Some` when the runner is done.
    fn turn<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        say: &mut dyn FnMut(String),
    ) -> Result<Option<RunSummary>>
    where
        'a: 'scope,
    {
        let store = self.store;
        let locked = store.lock()?;
        if !self.lease.keep_named(store)? {
            // Someone deleted the lease under this runner, and another runner took the new
            // one: the plan is that runner's now (once the tries in flight here are over).
            if self.in_flight.is_empty() {
                say("another runner holds the lease now; leaving the plan to it".into());
                return Ok(Some(self.summary.clone()));
            }
        }
        let snapshot = locked.reload(self.known.take())?;
        // The file is still this runner's last save: what it worked out from it still holds.
        let derived = std::mem::take(&mut self.derived).filter(|_| snapshot.reused());
        let (mut state, read) = snapshot.into_parts();
        // A file rewritten under this runner without `planHash` (by a tool that keeps only
        // the fields it knows, or a hand edit) is still checked against the hash the runner
        // saw last: dropping the field must not let an edit of the steps through.
        if state.plan_hash.is_none() {
            state.plan_hash.clone_from(&self.plan_hash);
        }
        let mut plan = Plan::take_reusing(&mut state, derived.unwrap_or_default());
        let lost = self.lease.lost().cloned();
        let mine: Vec<StepId> = self.in_flight.keys().cloned().collect();
        let mut live = liveness(
            store,
            &plan,
            &LeaseState::Free,
            self.me,
            &mine,
            lost.as_ref(),
        );
        let reads = Reads { store };
        let now = Utc::now();
        let mut news = Vec::new();
        for ended in std::mem::take(&mut self.ended) {
            let ctx = Context {
                now,
                live: &live,
                limits: self.config.limits,
                io: &reads,
            };
            news.extend(apply(&mut plan, ended, &ctx)?);
        }
        let mut launches = Vec::new();
        let next = if let Some(signal) = signals::received() {
            // Told to stop: the tries that ended are recorded, nothing new starts.
            if self.summary.signal.is_none() {
                say(format!("stopped by {}", signals::name(signal)));
            }
            self.summary.signal = Some(signal);
            Next::Busy
        } else {
            loop {
                let ctx = Context {
                    now,
                    live: &live,
                    limits: self.config.limits,
                    io: &reads,
                };
                let (changes, next) = settle(&mut plan, &ctx);
                news.extend(changes);
                let Next::Run(mut launch) = next else {
                    break next;
                };
                // Earlier results go into the prompt now, read under the lock (a person's
                // reset of a step cannot slip between the look at its status and the read),
                // and before the try is marked started (a retry's prompt counts the tries
                // before it); summaries, which take an agent, after the lock.
                let compress = with_results(store, &plan, &mut launch);
                news.extend(mark_started(store, &mut plan, &launch, self.me, &ctx)?);
                live.alive.push(launch.step.clone());
                launches.push((launch, compress));
            }
        };
        // A noted lost result is done with once the plan no longer shows that try in flight
        // (this turn took it back, or a heartbeat did before this runner started).
        let took_back = lost.as_ref().is_some_and(|l| {
            !plan.step(&l.step).is_some_and(|s| {
                matches!(s.run.state(), TryState::Running { attempt, .. } if attempt == l.attempt)
            })
        });
        let changed = plan.changed_runs();
        self.upcoming = upcoming(&plan, &self.leases_ready);
        self.derived = Some(plan.put_back_keeping(&mut state));
        self.plan_hash.clone_from(&state.plan_hash);
        self.known = Some(if launches.is_empty() {
            locked.save_if_changed(state, read)?
        } else {
            locked.save_snapshot(state, read, changed.as_deref())?
        });
        if took_back {
            drop(self.lease.clear_lost());
        }
        tell(store, &news, say);
        drop(locked);
        for (launch, compress) in launches {
            self.start(scope, launch, compress, say);
        }
        Ok(self.then(next, say))
    }

    /// After a turn: waits for a try to end while any runs, or sleeps until the next is due,
    /// or says the runner is done.
    fn then(&mut self, next: Next, say: &mut dyn FnMut(String)) -> Option<RunSummary> {
        if !self.in_flight.is_empty() {
            // While agents run: the next save's temp file and the next tries' lease files,
            // off the path between tries (making a file can take a while: see `upcoming`).
            self.store.prepare_save();
            for unit in std::mem::take(&mut self.upcoming) {
                if TryLease::prepare(self.store, unit.as_str()) {
                    self.leases_ready.insert(unit);
                }
            }
            let until = match &next {
                Next::Wait { until, .. } => Some(*until),
                _ => None,
            };
            self.wait(until, say);
            return None;
        }
        match next {
            Next::Wait { step, until, .. } => {
                if self.announced_wait.as_ref() != Some(&(step.clone(), until)) {
                    say(format!(
                        "step {step}: waiting until {}",
                        timefmt::format(until)
                    ));
                    self.announced_wait = Some((step, until));
                }
                let left = (until - Utc::now()).to_std().unwrap_or_default();
                signals::sleep(left.min(SLEEP_SLICE) + Duration::from_millis(5));
                None
            }
            end => Some(RunSummary {
                end,
                ..self.summary.clone()
            }),
        }
    }

    /// Starts a marked try on a thread of its own.
    fn start<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        launch: Launch,
        compress: Option<(Plan, Vec<StepId>)>,
        say: &mut dyn FnMut(String),
    ) where
        'a: 'scope,
    {
        self.keep_logs_bounded(&launch, say);
        self.in_flight.insert(launch.step.clone(), launch.attempt);
        let (store, config, default) = (self.store.clone(), self.config, self.agent);
        let (tx, watch) = (self.tx.clone(), self.watch);
        scope.spawn(move || {
            // A try's thread that panicked must still report its end: the runner waits for
            // it, and would wait for ever (holding the plan) on a message never sent.
            let tried = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_one(&store, config, default, watch, &launch, compress, &tx)
            }))
            .unwrap_or_else(|_| {
                trial::not_started("the runner failed while running this try (a bug)", false)
            });
            let _ = tx.send(Msg::Ended {
                launch: Box::new(launch),
                tried,
            });
        });
    }

    /// Waits for a message from the tries (a try that ends wakes the runner at once), or
    /// until `until` (the next try due), or a slice of the delay.
    fn wait(&mut self, until: Option<DateTime<Utc>>, say: &mut dyn FnMut(String)) {
        let limit = until.map_or(SLEEP_SLICE, |u| {
            (u - Utc::now())
                .to_std()
                .unwrap_or_default()
                .min(SLEEP_SLICE)
                + Duration::from_millis(5)
        });
        // In short slices: a signal may reach another thread, and only the flag tells. Lines
        // and spawns are taken as they come; a try that ends ends the wait (a turn records it).
        let deadline = std::time::Instant::now() + limit;
        let mut catch_up_at = self
            .store
            .journal_pending()
            .then(|| std::time::Instant::now() + CATCH_UP);
        loop {
            let now = std::time::Instant::now();
            let left = deadline.saturating_duration_since(now);
            let slice = catch_up_at.map_or(left, |at| at.saturating_duration_since(now).min(left));
            match self.rx.recv_timeout(slice.min(SIGNAL_CHECK)) {
                Ok(msg) => {
                    self.receive(msg, say);
                    if !self.ended.is_empty() {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout)
                    if catch_up_at.is_some_and(|at| std::time::Instant::now() >= at) =>
                {
                    catch_up_at = None;
                    self.catch_up();
                }
                Err(RecvTimeoutError::Timeout)
                    if left > SIGNAL_CHECK && signals::received().is_none() => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
            }
        }
        // Whatever else has come meanwhile is taken too: one turn records them all.
        for msg in self.rx.try_iter().collect::<Vec<_>>() {
            self.receive(msg, say);
        }
    }

    /// Rewrites state.json with what the journal holds, while the tries run (see
    /// [`CATCH_UP`]). Only over this runner's own last save: a file someone else changed
    /// is left to the next turn, which reads it. Best effort: that turn's save will meet any
    /// failure again, and say so.
    fn catch_up(&mut self) {
        let Ok(locked) = self.store.lock() else {
            return;
        };
        let Ok(snapshot) = locked.reload(self.known.take()) else {
            return;
        };
        if !snapshot.reused() {
            return; // the next turn reads it afresh, and works out what it needs anew
        }
        let (state, read) = snapshot.into_parts();
        self.known = locked.save_if_changed(state, read).ok();
    }

    fn receive(&mut self, msg: Msg, say: &mut dyn FnMut(String)) {
        match msg {
            Msg::Say(line) => say(line),
            Msg::Spawned {
                step,
                attempt,
                pgid,
            } => {
                // The lease note is for people and `seqctl cancel`: failing to write it must
                // neither cost a try that never ran nor lose the result of one that did.
                drop(
                    self.lease
                        .set_step(Some((step.as_str(), attempt)), Some(pgid)),
                );
            }
            Msg::Ended { launch, tried } => {
                let Tried {
                    outcome,
                    signalled,
                    logged,
                } = tried;
                self.in_flight.remove(&launch.step);
                if self.in_flight.is_empty() {
                    drop(self.lease.set_step(None, None));
                }
                self.logs_total = self.logs_total.map(|t| t + logged);
                self.summary.last_try_failed = outcome.verdict.is_err() && !signalled;
                self.summary.tries_run += 1;
                let Launch { step, attempt, .. } = *launch;
                self.ended.push(if signalled {
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
        }
    }

    /// Keeps the plan's logs within `STEP_LOGS_MAX_MB` (see `store::prune`): measured by the
    /// first try of this runner, then added up, and swept only once past the limit.
    fn keep_logs_bounded(&mut self, launch: &Launch, say: &mut dyn FnMut(String)) {
        let limit = self.config.logs_limit;
        if self.logs_total.is_some_and(|total| total <= limit) {
            return;
        }
        let keep: Vec<String> = self
            .in_flight
            .keys()
            .chain(std::iter::once(&launch.step))
            .map(|step| format!("{}.", layout::file_stem(step.as_str())))
            .collect();
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        let pruned = prune::prune(&self.store.layout().logs(), limit, &keep);
        if pruned.removed > 0 {
            say(format!(
                "removed the {} oldest log files: the plan's logs were over {} MiB (STEP_LOGS_MAX_MB)",
                pruned.removed,
                limit >> 20
            ));
        }
        self.logs_total = Some(pruned.total);
    }
}

/// One try, on its own thread: its try lease, the summaries its prompt needs, the try.
fn run_one(
    store: &Store,
    config: &Config,
    default: &AgentCommand,
    watch: &Watch,
    launch: &Launch,
    compress: Option<(Plan, Vec<StepId>)>,
    tx: &Sender<Msg>,
) -> Tried {
    let mut say = |line: String| drop(tx.send(Msg::Say(line)));
    let crew = Crew {
        config,
        default,
        workspace: store.workspace(),
        watch,
    };
    let lease = match TryLease::acquire(store, launch.step.as_str()) {
        Ok(Some(lease)) => lease,
        // A process of an earlier try of this step still runs: this try must not start beside
        // it, and is taken back (it never ran).
        Ok(None) => {
            return trial::not_started(
                "an earlier try's agent still holds the step's try lease",
                true,
            )
        }
        Err(e) => return trial::not_started(&format!("{e:#}"), false),
    };
    let mut launch = launch.clone();
    if let Some((plan, wanted)) = compress {
        trial::compress(store, &crew, &plan, &mut launch, &wanted, &lease, &mut say);
    }
    let (step, attempt) = (launch.step.clone(), launch.attempt);
    try_once(
        store,
        &crew,
        &launch,
        &lease,
        &mut |pgid| {
            drop(tx.send(Msg::Spawned {
                step: step.clone(),
                attempt,
                pgid,
            }));
        },
        &mut say,
    )
}

/// Puts the earlier results the step asks for into its prompt. Returns the plan and the
/// results a compress agent should summarise first, if the plan has one and some do not fit.
fn with_results(store: &Store, plan: &Plan, launch: &mut Launch) -> Option<(Plan, Vec<StepId>)> {
    let step = plan.step(launch.step.as_str())?;
    if prompt::needs(plan, step).is_empty() && step.run.round() == 1 {
        return None;
    }
    let mut load = trial::loader(store, plan, &launch.step);
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
