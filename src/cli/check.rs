//! `seq-check`: one heartbeat. Decide, record, start the runner if work is due, and return.
//!
//! The check never runs a step itself. Under the state lock it records the heartbeat, probes
//! the run lease and settles the plan (the core's work); if a step is due now or later and no
//! runner is alive, it checks the agent command first (so a misconfiguration shows in the
//! heartbeat's output, and the file is left as it was) and then starts `seq-runner` detached:
//! own session, no stdin, output to the sidecar's `runner.log`. It returns in milliseconds.
//! With `--wait` it stays in the foreground instead, running the steps itself, until the plan
//! is finished, blocked or paused.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use chrono::Utc;

use super::config::Config;
use super::live::seen_from_outside;
use super::reads::Reads;
use super::runner;
use super::watch::Watch;
use crate::core::decide::CHANGED;
use crate::core::event::Launched;
use crate::core::{apply, settle, upcoming, Context, Event, Input, Next, Plan, TryState};
use crate::exec::command::AgentCommand;
use crate::exec::{fds, process, signals};
use crate::format::schema::State;
use crate::format::typos::typos;
use crate::report::heartbeat::{BeatResult, Heartbeat, Holding};
use crate::store::events::{self, By};
use crate::store::layout::{self, Layout};
use crate::store::lease::{Lease, LeaseState};
use crate::store::safe::Access;
use crate::store::Store;

/// `runner.log` is started afresh past this size (the previous one kept as `runner.log.1`).
const RUNNER_LOG_CAP: u64 = 1 << 20;
/// How long a check waits, lock held, for the runner it started to take the run lease.
const RUNNER_START_PATIENCE: Duration = Duration::from_secs(2);

/// What a check ended with: the last heartbeat's report, and the signal that stopped a
/// `--wait` (the try it was running stopped and recorded as not counting).
#[derive(Debug)]
pub struct Checked {
    pub heartbeat: Heartbeat,
    pub signal: Option<i32>,
}

/// How a heartbeat is run.
#[derive(Clone, Copy, Default)]
pub struct Mode<'a> {
    /// Stay until the plan rests (`--wait`), running its steps in this process.
    pub wait: bool,
    /// Who watches the steps `--wait` runs.
    pub watch: Option<&'a Watch>,
    /// The report goes to a person as it is (`--no-reply`): a standing blocker is told of
    /// once, then at most daily, and the plan records when (`blockerReportedIso`).
    pub tells_person: bool,
    /// The process ends with this heartbeat (`seq-check` without `--wait`): what it read is
    /// not freed record by record (a plan of ten thousand items is as many), the exit frees
    /// it. A process that goes on (seq-mcp) frees it.
    pub then_exit: bool,
}

/// Runs one heartbeat for the state file at `path`; with `mode.wait`, stays until the plan
/// rests. `say` gets progress lines while waiting.
pub fn run(
    path: &Path,
    config: &Config,
    mode: Mode<'_>,
    say: &mut dyn FnMut(String),
) -> Result<Checked> {
    let unwatched = Watch::default();
    let watch = mode.watch.unwrap_or(&unwatched);
    let done = |heartbeat, signal| Ok(Checked { heartbeat, signal });
    let Some(store) = Store::locate(path)? else {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        return done(Heartbeat::no_plan(absolute.display().to_string()), None);
    };
    if !mode.wait {
        // Found before the state lock is taken: a stat of the runner is no work to do under it.
        let runner = runner_path(config);
        let beat = beat(&store, config, mode, Some(&runner))?.0;
        if mode.then_exit {
            std::mem::forget(store); // see `Mode::then_exit`
        }
        return done(beat, None);
    }
    signals::install();
    let mut last_busy = None;
    // The first runner start's typos, for the report --wait ends with.
    let mut typos: Option<Vec<String>> = None;
    let done = |mut heartbeat: Heartbeat, signal, typos: &mut Option<Vec<String>>| {
        heartbeat.typos = typos.take().unwrap_or_default();
        Ok(Checked { heartbeat, signal })
    };
    loop {
        let (beat, agent) = beat(&store, config, mode, None)?;
        if typos.is_none() && agent.is_some() {
            typos = Some(beat.typos.clone());
        }
        if let Some(agent) = agent {
            for change in &beat.changes {
                say(change.to_string());
            }
            let summary = runner::run(&store, config, &agent, watch, say)?;
            if summary.signal.is_some() {
                return done(beat, summary.signal, &mut typos);
            }
            if summary.end == Next::Busy {
                signals::sleep(Duration::from_millis(500));
            }
            continue;
        }
        // Another runner has the plan (running a try, or asleep until the next is due).
        if beat.result != BeatResult::InFlight && !beat.held {
            return done(beat, None, &mut typos);
        }
        if last_busy.as_ref() != Some(&beat) {
            say(beat.line());
            last_busy = Some(beat.clone());
        }
        if !signals::sleep(Duration::from_secs(1)) {
            // Another runner owns the plan: nothing of ours to stop or record.
            return done(beat, signals::received(), &mut typos);
        }
    }
}

/// One locked read-modify-write. Returns what it found and, if a runner is needed, the checked
/// agent command. Given a `runner` to start (not with `--wait`, which runs the steps itself),
/// starts it before letting go of the lock (see [`spawn_detached`]).
fn beat(
    store: &Store,
    config: &Config,
    mode: Mode<'_>,
    runner: Option<&Result<PathBuf>>,
) -> Result<(Heartbeat, Option<AgentCommand>)> {
    let locked = store.lock()?;
    let (mut state, read, was_done, lease) = load(&locked)?;
    let mut plan = Plan::take(&mut state);
    let seen = seen_from_outside(store, &plan, &lease);
    let live = seen.live.clone();
    let ctx = Context {
        now: Utc::now(),
        live: &live,
        limits: config.limits,
        io: &Reads { store },
    };
    let (changes, next) = settle(&mut plan, &ctx);
    // The first heartbeat since the finish tells of it (this one, if it finished the plan),
    // and the beat records that it did.
    let newly_done = plan.is_done() && plan.finish_unreported(ctx.now);
    let mut news = apply(&mut plan, Input::Beat, &ctx)?;
    let launch = matches!(next, Next::Run(_) | Next::Wait { .. });
    // Checked before the save: bad configuration changes nothing.
    let agent = if launch {
        Some(config.agent(store.workspace())?)
    } else {
        None
    };
    let runner = match runner {
        Some(path) if launch => Some(path.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?),
        _ => None,
    };
    let holding = seen
        .python
        .map_or_else(|| holding(&lease, &plan), Holding::python);
    let mut heartbeat = report(&next, &plan, &ctx, changes.clone(), holding, newly_done);
    let blocked = match &next {
        Next::Blocked { step, .. } => Some(step.as_str()),
        // The plan stopped because its steps were changed outside seqctl.
        Next::Paused if heartbeat.result == BeatResult::Blocked => Some(CHANGED),
        _ => None,
    };
    if let Some(step) = blocked {
        heartbeat.blocker_news = plan.blocker_news(step, ctx.now);
        if heartbeat.blocker_news && mode.tells_person {
            news.extend(apply(&mut plan, Input::BlockerReported, &ctx)?);
        }
    }
    if agent.is_none() && !matches!(next, Next::Busy) {
        // Nothing is due, but the next step of this plan (or the next plan) will need the
        // agent: a command that will be refused is worth a line now, not at 3 a.m.
        heartbeat.config_problem = config.agent(store.workspace()).err().map(|e| {
            format!("{e:#} (nothing is due now; the next step will not start until it is fixed)")
        });
    }
    put_back_and_save(
        &locked,
        plan,
        &mut state,
        &read,
        lease.is_held(),
        was_done && !newly_done,
        !mode.then_exit || mode.wait,
    )?;
    // Told when a runner is started (this heartbeat's, or --wait's own): right after the plan
    // was written, where whoever wrote it is looking, and not again on every idle heartbeat
    // (which does not pay for looking, either).
    let typos: Vec<String> = if agent.is_some() {
        typos(&state).iter().map(ToString::to_string).collect()
    } else {
        Vec::new()
    };
    // See `Mode::then_exit` (`--wait` comes here again and again, so it frees them).
    if mode.then_exit && !mode.wait {
        std::mem::forget(state);
    }
    news.extend(changes);
    events::emit(store, By::Check, &news);
    // Started while the lock is held (see `spawn_detached`); the heartbeat event is written
    // before the lock goes, so the runner's events always follow it in the log.
    let mut warnings = Vec::new();
    let pid = match runner {
        Some(runner) => {
            let (pid, took_lease) = spawn_detached(runner, store)?;
            if !took_lease {
                warnings.push(format!(
                    "the runner started ({}, pid {pid}) did not take the run lease: it is not \
                     seq-runner (STEP_RUNNER still names the Python runner?) or it failed at once \
                     (see {}); nothing may run",
                    runner.display(),
                    store.layout().file(layout::RUNNER_LOG).display()
                ));
            }
            let result = if matches!(next, Next::Run(_)) {
                Launched::Started
            } else {
                Launched::Waiting
            };
            let event = Event::Heartbeat {
                result,
                step: next.step().cloned(),
                runner_pid: Some(pid),
            };
            events::emit(store, By::Check, [&event]);
            Some(pid)
        }
        None => None,
    };
    drop(locked);
    let heartbeat = Heartbeat {
        pid: pid.or(heartbeat.pid),
        warnings,
        typos,
        ..heartbeat
    };
    Ok((heartbeat, agent))
}

/// The heartbeat's report of `next`. A plan a live runner holds between tries (asleep through a
/// delay) is reported as waiting for the step it waits for, with its due time, not as a try
/// in flight.
fn report(
    next: &Next,
    plan: &Plan,
    ctx: &Context,
    changes: Vec<Event>,
    holding: Holding,
    newly_done: bool,
) -> Heartbeat {
    let between_tries =
        *next == Next::Busy && holding.alive && !holding.python && plan.running().next().is_none();
    if between_tries {
        let upcoming = upcoming(plan, ctx);
        if matches!(upcoming, Next::Wait { .. }) {
            let mut beat = Heartbeat::of(&upcoming, plan, changes, holding, newly_done);
            beat.pid = holding.pid;
            beat.held = true;
            return beat;
        }
    }
    Heartbeat::of(next, plan, changes, holding, newly_done)
}

/// Puts the plan back into `state`, read as `read`, and saves it. A finished plan is written
/// only by the first heartbeat after it finished (`settled`: not this one); later ones, and
/// plans the Python version finished, are left byte for byte. While a runner holds the plan
/// (`held`), this look is one line in the journal beside state.json (on a big plan), folded
/// in by the runner's next save.
fn put_back_and_save(
    locked: &crate::store::lock::Locked<'_>,
    plan: Plan,
    state: &mut State,
    read: &[u8],
    held: bool,
    settled: bool,
    frees: bool,
) -> Result<()> {
    let changed_runs = plan.changed_runs();
    let derived = plan.put_back_keeping(state);
    if frees {
        drop(derived);
    } else {
        std::mem::forget(derived); // see `Mode::then_exit`
    }
    if settled {
        Ok(())
    } else if held {
        locked.save_beside_runner(state, read, changed_runs.as_deref())
    } else {
        locked.save(state)
    }
}

/// The state, the bytes of state.json it was read from, whether it was DONE, and the lease as
/// probed. A finished plan has nobody to ask
/// about. The items' records of a forEach step are read only when this heartbeat may act on
/// them: while a runner holds the plan it only records that it looked.
fn load(locked: &crate::store::lock::Locked<'_>) -> Result<(State, Vec<u8>, bool, LeaseState)> {
    let store = locked.store();
    let (mut state, read) = locked.load_light()?;
    let was_done = state.status == crate::format::schema::PlanStatus::Done;
    let lease = if was_done {
        LeaseState::Free
    } else {
        Lease::probe(store)?
    };
    // The items' records: for the rules, unless a runner holds the plan; for the report of a
    // finish not told yet, which names the items that failed.
    if (!was_done && !lease.is_held()) || (was_done && !state.finish_reported) {
        store.load_items(&mut state)?;
    }
    Ok((state, read, was_done, lease))
}

/// Who holds the lease, from its note, and whether that runner lives.
fn holding(lease: &LeaseState, plan: &Plan) -> Holding {
    match lease {
        LeaseState::Held(holder) => {
            let pid = holder.as_ref().map(|h| h.pid);
            Holding {
                pid,
                alive: pid.is_some_and(process::pid_alive),
                python: false,
            }
        }
        // Nobody holds the plan, yet a try shows in flight and is alive (a process of its
        // agent holds its try lease): its runner, as the record names it, is gone.
        LeaseState::Free => {
            let runner = plan.running().find_map(|s| match s.run.state() {
                TryState::Running { runner, .. } => runner,
                _ => None,
            });
            Holding {
                pid: runner.map(|r| r.pid),
                alive: runner.is_some_and(|r| process::is_alive(&r)),
                python: false,
            }
        }
    }
}

/// The runner to start: `STEP_RUNNER`, else the `seq-runner` beside this executable (seq-check,
/// or seq-mcp, which checks it before it writes a new plan).
pub fn runner_path(config: &Config) -> Result<PathBuf> {
    let (path, origin) = if let Some(path) = &config.runner {
        (path.clone(), "STEP_RUNNER".to_owned())
    } else {
        let me = std::env::current_exe().context("cannot find this executable's path")?;
        let name = me.file_name().unwrap_or_default().to_string_lossy();
        let origin = format!("the runner beside {name}");
        (me.with_file_name("seq-runner"), origin)
    };
    let executable = fs::metadata(&path).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    });
    if !executable {
        bail!(
            "{origin} ({}) is not an executable file; install both binaries \
             (cargo install --locked --path .) or set STEP_RUNNER",
            path.display()
        );
    }
    Ok(path)
}

/// Starts the runner in its own session, stdin closed, output appended to `runner.log`, and
/// returns its pid without waiting for it to finish, and whether it took the run lease.
///
/// The caller holds the state lock, and keeps it until the runner holds the run lease (or has
/// exited, or [`RUNNER_START_PATIENCE`] passed): otherwise a heartbeat right behind this one
/// finds the lease still free and starts a second runner, and for a moment two runners are
/// alive for one plan (the second gives up after its lease patience, but it should not exist).
fn spawn_detached(runner: &Path, store: &Store) -> Result<(u32, bool)> {
    store.ensure_sidecar()?;
    let log_path = store.layout().file(layout::RUNNER_LOG);
    if fs::metadata(&log_path).is_ok_and(|m| m.len() > RUNNER_LOG_CAP) {
        let _ = fs::rename(&log_path, Layout::rotated(&log_path));
    }
    let log = store.open_kept(layout::RUNNER_LOG, Access::Append)?;
    let mut command = Command::new(runner);
    command
        .arg(store.path())
        .current_dir(store.workspace())
        // A check run by a step's agent must not pass its try's variables on: by them a
        // process counts as that try's (see `process::try_process_alive`).
        .env_remove("STEP_ID")
        .env_remove("STEP_ATTEMPT")
        .env_remove("STEP_STATE_FILE")
        .env_remove("STEP_WORKSPACE")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let limit = fds::limit();
    // SAFETY: setsid, close_range and fcntl are async-signal-safe and act on the child only.
    unsafe {
        command.pre_exec(move || {
            // A session of its own: the heartbeat's process group and terminal can go away.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            // Descriptors the caller leaked to us (an exec tool's pipes) must not reach the
            // runner, or the caller would wait for it.
            fds::cloexec_from(3, limit);
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
        if Lease::probe(store)?.is_held() {
            return Ok((child.id(), true));
        }
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            break;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
    // One more look: it may have taken the lease and finished quickly.
    Ok((child.id(), Lease::probe(store)?.is_held()))
}
