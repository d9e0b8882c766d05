//! `seqctl logs STEP [--attempt N] [--follow]`: the captured output of one try; `seqctl logs`
//! alone lists every try's log the plan keeps (also those from before a `seqctl retry` reset
//! the step's tries, until a new try of that number replaces them).
//!
//! The log's path is derived from the step id and attempt (`layout::attempt_log`), never read
//! from the state's `logFile` field: the state is untrusted, and a hand-edited `logFile` must
//! not turn this command into a way to print any file on the machine.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::core::apply::find;
use crate::core::{AgentRef, Plan, TryState};
use crate::exec::capture;
use crate::format::text::count;
use crate::format::timefmt;
use crate::report::text;
use crate::store::follow;
use crate::store::layout::file_stem;
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

/// The attempt meant and its log file. A try past the step's count is one from before its
/// tries were reset (`seqctl retry`): shown if its log is still there.
fn locate(store: &Store, step: &str, attempt: Option<u32>) -> Result<(u32, PathBuf)> {
    let plan = Plan::of(&store.read()?);
    let tries = find(&plan, step)?.run.tries();
    let attempt = attempt.unwrap_or(tries);
    let log = store.layout().attempt_log(step, attempt);
    if attempt == 0 {
        bail!(
            "step {step} has not run yet (since its tries were last reset); `seqctl logs` lists \
             the logs kept"
        );
    }
    if attempt > tries && !log.is_file() {
        bail!(
            "step {step} has had {} since its tries were last reset; there is no try {attempt} \
             (no log of one is kept: `seqctl logs` lists the logs there are)",
            count(tries, "try", "tries")
        );
    }
    Ok((attempt, log))
}

/// One log the plan keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kept {
    /// The step's id, or the file's stem for a step no longer in the plan.
    pub step: String,
    pub attempt: u32,
    /// `agent` (the try's own output) or the helper's word (`verify`).
    pub kind: String,
    pub bytes: u64,
    pub modified: Option<String>,
    /// Its name in the log folder (`seqctl logs --file NAME` shows it).
    pub file: String,
    pub log_file: String,
    /// `running`, `before the retry of <time>` (kept by `seqctl retry`), `before a reset`
    /// (tries reset by hand), `step removed`.
    pub note: Option<String>,
}

/// Every try's log in the plan's log folder, in queue order, then by try.
pub fn kept(store: &Store) -> Result<Vec<Kept>> {
    let plan = Plan::of(&store.read()?);
    let folder = store.layout().logs();
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot list", folder.display())),
    };
    let stems: Vec<String> = plan
        .steps()
        .iter()
        .map(|s| file_stem(s.id.as_str()))
        .collect();
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only plain files: a link the agent planted is not a log of ours.
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let Some((stem, attempt, kind, kept_at)) = parse_log_name(&name).filter(|_| meta.is_file())
        else {
            continue;
        };
        let position = stems.iter().position(|s| *s == stem);
        let owner = position.map(|i| &plan.steps()[i]);
        let note = match (owner, kept_at) {
            (_, Some(at)) => Some(format!("before the retry of {at}")),
            (None, None) => Some("step removed".to_owned()),
            (Some(s), None) if attempt > s.run.tries() => Some("before a reset".to_owned()),
            (Some(s), None) if matches!(s.run.state(), TryState::Running { attempt: a, .. } if a == attempt) => {
                Some("running".to_owned())
            }
            (Some(_), None) => None,
        };
        let kept = Kept {
            step: owner.map_or_else(|| stem.clone(), |s| s.id.to_string()),
            attempt,
            kind,
            bytes: meta.len(),
            modified: meta
                .modified()
                .ok()
                .map(|t| timefmt::format(DateTime::<Utc>::from(t))),
            log_file: entry.path().display().to_string(),
            file: name,
            note,
        };
        out.push((position.unwrap_or(usize::MAX), kept));
    }
    out.sort_by(|(a, x), (b, y)| {
        (a, &x.step, x.attempt, &x.kind, &x.modified).cmp(&(
            b,
            &y.step,
            y.attempt,
            &y.kind,
            &y.modified,
        ))
    });
    Ok(out.into_iter().map(|(_, k)| k).collect())
}

/// `<stem>.<try>.log` (the try's own), `<stem>.<try>.<helper>.log`, or a log `seqctl retry`
/// kept, `<stem>.<try>.before-retry-<time>.log`: the stem, the try, the kind, and when kept.
fn parse_log_name(name: &str) -> Option<(String, u32, String, Option<String>)> {
    if name.contains('/') {
        return None;
    }
    let base = name.strip_suffix(".log")?;
    if let Some((before, at)) = base.split_once(".before-retry-") {
        let (stem, attempt) = before.rsplit_once('.')?;
        let at = at.to_owned();
        return Some((
            stem.to_owned(),
            attempt.parse().ok()?,
            "agent".to_owned(),
            Some(at),
        ));
    }
    let (rest, last) = base.rsplit_once('.')?;
    if let Ok(attempt) = last.parse() {
        return Some((rest.to_owned(), attempt, "agent".to_owned(), None));
    }
    let (stem, attempt) = rest.rsplit_once('.')?;
    Some((
        stem.to_owned(),
        attempt.parse().ok()?,
        last.to_owned(),
        None,
    ))
}

/// `seqctl logs --file NAME`: a log the listing names, by its name in the log folder (one
/// that the listing would show: no other file of the folder, never through a link).
pub fn show_file(path: &Path, name: &str, out: &mut dyn Write) -> Result<()> {
    let store = super::existing(path)?;
    if parse_log_name(name).is_none() {
        bail!("{name:?} is not the name of a log; `seqctl logs` lists them");
    }
    let file = store
        .logs_dir()?
        .read_own(name)
        .with_context(|| format!("no log named {name:?}; `seqctl logs` lists them"))?;
    let mut bytes = Vec::new();
    file.take(MAX_LOG_BYTES).read_to_end(&mut bytes)?;
    out.write_all(&bytes)?;
    Ok(())
}

/// `seqctl logs` without a step: the logs kept, as a table or a JSON array.
pub fn list(path: &Path, json: bool, out: &mut dyn Write) -> Result<()> {
    let store = super::existing(path)?;
    let kept = kept(&store)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&kept)?)?;
        return Ok(());
    }
    if kept.is_empty() {
        writeln!(out, "no logs kept for this plan yet")?;
        return Ok(());
    }
    let mut rows = vec![["STEP", "TRY", "KIND", "SIZE", "WHEN", "FILE", "NOTE"]
        .map(String::from)
        .to_vec()];
    for k in &kept {
        rows.push(vec![
            text::clip(&k.step, 24),
            k.attempt.to_string(),
            k.kind.clone(),
            size(k.bytes),
            k.modified
                .as_deref()
                .and_then(timefmt::parse)
                .map_or_else(|| "-".into(), text::short_time),
            text::clip(&k.file, 60),
            k.note.clone().unwrap_or_default(),
        ]);
    }
    write!(out, "{}", text::table(&rows))?;
    writeln!(
        out,
        "show one with `seqctl logs STEP --attempt N`, or any with `seqctl logs --file FILE`"
    )?;
    Ok(())
}

/// `812 B`, `14.2 KiB`, `3.1 MiB`.
fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
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
