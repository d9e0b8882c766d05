//! `seqctl logs STEP [--attempt N] [--follow]`: the captured output of one try.
//!
//! The log's path is derived from the step id and attempt (`layout::attempt_log`), never read
//! from the state's `logFile` field: the state is untrusted, and a hand-edited `logFile` must
//! not turn this command into a way to print any file on the machine.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::core::apply::find;
use crate::core::{AgentRef, Plan, TryState};
use crate::exec::capture;
use crate::store::follow;
use crate::store::lease::Lease;
use crate::store::Layout;
use crate::store::Store;

/// A log is at most 8 MiB and a line (see `exec::capture`); more is not one we wrote.
const MAX_LOG_BYTES: u64 = (capture::HEAD_BYTES + capture::TAIL_BYTES) + (1 << 20);

/// Which log, and how to show it.
#[derive(Debug, Clone)]
pub struct Logs<'a> {
    pub step: &'a str,
    /// The try; the latest when not given.
    pub attempt: Option<u32>,
    pub follow: bool,
    pub json: bool,
}

pub fn run(path: &Path, args: &Logs, out: &mut dyn Write) -> Result<()> {
    let store = super::existing(path)?;
    if args.follow {
        let (attempt, log) = locate(&store, args.step, args.attempt)?;
        let dir = store.logs_dir()?;
        let name = Layout::attempt_log_name(args.step, attempt);
        // Never through a link the agent may have put there (see `store::safe`).
        let open = || dir.read_own(&name);
        let step = args.step;
        return follow::follow(
            &log,
            &open,
            &mut |bytes| out.write_all(bytes).and_then(|()| out.flush()),
            &mut || in_flight(&store, step, attempt),
        );
    }
    let found = open(&store, args.step, args.attempt)?;
    let mut bytes = Vec::new();
    if let Some(file) = found.file {
        file.take(MAX_LOG_BYTES)
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: cannot read", found.log.display()))?;
    }
    let agent = agent_of(&store, args.step, found.attempt);
    let verify = verify_answer(&store, args.step, found.attempt);
    if args.json {
        let value = json!({
            "step": args.step,
            "attempt": found.attempt,
            "agent": agent,
            "logFile": found.log.display().to_string(),
            "text": String::from_utf8_lossy(&bytes),
            "verifyText": verify.as_ref().map(|(_, text)| text),
        });
        writeln!(out, "{value}")?;
    } else {
        // Only plans that name agents get a header: a plain log stays the agent's bytes.
        if let Some(agent) = &agent {
            writeln!(
                out,
                "[seqctl: step {} try {} ran agent {agent}]",
                args.step, found.attempt
            )?;
        }
        out.write_all(&bytes)?;
        if let Some((path, text)) = verify {
            write!(
                out,
                "\n[seqctl: the verify agent's answer ({})]\n{text}",
                path.display()
            )?;
        }
    }
    Ok(())
}

/// The named agent that ran a try: the state records the last try's; an earlier try's is the
/// one the plan assigns to that try.
fn agent_of(store: &Store, step: &str, attempt: u32) -> Option<String> {
    let plan = Plan::of(&store.read().ok()?);
    let step = plan.step(step)?;
    if attempt == step.run.tries() {
        return step.run.agent().map(str::to_owned);
    }
    match step.spec.agent_for(attempt) {
        AgentRef::Named(name) => Some(name),
        AgentRef::Default => None,
    }
}

/// What a try's verify agent answered, if one was asked (its own log, beside the try's).
fn verify_answer(store: &Store, step: &str, attempt: u32) -> Option<(PathBuf, String)> {
    let (name, _) = Layout::helper_names(step, Some(attempt), "verify");
    let file = store.logs_dir().ok()?.read_own(&name).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_LOG_BYTES).read_to_end(&mut bytes).ok()?;
    Some((
        store.layout().logs().join(name),
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

/// A try's log, found and opened.
#[derive(Debug)]
pub struct Found {
    pub attempt: u32,
    pub log: PathBuf,
    /// `None`: the try printed nothing, so it left no file (see `exec::capture`).
    pub file: Option<File>,
}

/// Opens the log of a step's try (the latest when `attempt` is not given), never through a
/// link the agent may have put there (see `store::safe`), for a reader that decides how much
/// of it to read.
pub fn open(store: &Store, step: &str, attempt: Option<u32>) -> Result<Found> {
    let (attempt, log) = locate(store, step, attempt)?;
    let dir = store.logs_dir()?;
    let file = match dir.read_own(&Layout::attempt_log_name(step, attempt)) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && ran_here(store, step, attempt) => {
            None
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "no log for step {step} try {attempt} at {} (tries run by the Python version, \
                     or before this version, have none)",
                    log.display()
                )
            })
        }
    };
    Ok(Found { attempt, log, file })
}

/// The attempt meant and its log file.
fn locate(store: &Store, step: &str, attempt: Option<u32>) -> Result<(u32, PathBuf)> {
    let plan = Plan::of(&store.read()?);
    let tries = find(&plan, step)?.run.tries();
    let attempt = attempt.unwrap_or(tries);
    if attempt == 0 {
        bail!("step {step} has not run yet");
    }
    if attempt > tries {
        bail!("step {step} has had {tries} tries; there is no try {attempt}");
    }
    Ok((attempt, store.layout().attempt_log(step, attempt)))
}

/// Whether the try was run by this version (its record names its log), so a missing log means
/// it printed nothing.
fn ran_here(store: &Store, step: &str, attempt: u32) -> bool {
    store.read().is_ok_and(|state| {
        state
            .step_runs
            .get(step)
            .is_some_and(|run| run.tries == attempt && run.log_file.is_some())
    })
}

/// Whether this try is still running: the state says so and someone holds the lease.
fn in_flight(store: &Store, step: &str, attempt: u32) -> bool {
    let Ok(state) = store.read() else {
        return true; // a passing read error: look again next time
    };
    Plan::of(&state).step(step).is_some_and(
        |s| matches!(s.run.state(), TryState::Running { attempt: a, .. } if a == attempt),
    ) && Lease::probe(store).is_ok_and(|l| l.is_held())
}
