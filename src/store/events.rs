//! The event log: an append-only story of a plan, one JSON object per line. The events are the
//! core's ([`Event`]); this module only stores and reads them.
//!
//! `<state>.seq/events.jsonl` gets one line per transition, written by whoever made it (the
//! check, the runner or seqctl): `{"ts": ISO, "by": "runner", "pid": 123, "event": "...", ...}`.
//! The state file says where a plan stands; this file says how it got there, which a state that
//! is overwritten on every write cannot.
//!
//! The events: `plan_created` (seqctl init), `heartbeat` (only a heartbeat that started a
//! runner: an idle one is news to nobody), `heartbeat_gap` (the previous heartbeat was over an
//! hour before: two missed beats at OpenClaw's default 30 minutes), `step_started`,
//! `step_finished`, `interrupted`, `blocked`, `plan_done` (check and runner), and `retried`,
//! `skipped`, `paused`, `resumed`, `cancelled` (seqctl).
//!
//! Writers never coordinate: each line is ONE `write(2)` on a descriptor opened with
//! `O_APPEND`, and Linux applies such a write to a regular file in one piece at the end of the
//! file, so concurrent writers never interleave within a line. The hot path is one open, one
//! write and one fstat, no reads. Past [`ROTATE_BYTES`] the file becomes `events.jsonl.1` (one
//! older generation is kept). Appending is a side channel: [`emit`] reports a failure on stderr
//! and carries on, so the log can never fail a heartbeat or a step.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::layout::{self, Layout};
use super::safe::{Access, Dir};
use super::Store;
use crate::core::Event;
use crate::format::timefmt;

/// Past this size the log is rotated to `events.jsonl.1`.
pub const ROTATE_BYTES: u64 = 4 << 20;

/// Who wrote an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Check,
    Runner,
    Seqctl,
}

/// One line of the log: when, by whom, and what (see [`Event`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub ts: String,
    pub by: By,
    pub pid: u32,
    #[serde(flatten)]
    pub event: Event,
}

impl Record {
    /// An event happening now, in this process.
    #[must_use]
    pub fn now(by: By, event: Event) -> Self {
        Self {
            ts: timefmt::format(Utc::now()),
            by,
            pid: std::process::id(),
            event: event.bounded(),
        }
    }
}

/// The log file of a plan.
#[must_use]
pub fn path(store: &Store) -> PathBuf {
    store.layout().file(layout::EVENTS)
}

/// Appends one event as one line in one `write`, rotating the file once it is past the cap.
pub fn append(store: &Store, record: &Record) -> Result<()> {
    let mut line = serde_json::to_vec(record).context("cannot serialise an event")?;
    line.push(b'\n');
    let path = path(store);
    let mut file = store.open_kept(layout::EVENTS, Access::Append)?;
    // One write: a retry loop (write_all) could split the line around another writer's.
    let written = file
        .write(&line)
        .with_context(|| format!("{}: cannot append", path.display()))?;
    if written != line.len() {
        bail!(
            "{}: short append ({written} of {} bytes; disk full?)",
            path.display(),
            line.len()
        );
    }
    if file.metadata().is_ok_and(|m| m.len() > ROTATE_BYTES) {
        rotate(&file, &path).with_context(|| format!("{}: cannot rotate", path.display()))?;
    }
    Ok(())
}

/// Renames the full log to `.1`. Two writers may both see it full: the flock on the file
/// serialises them, and only the one that still finds this very inode at the path renames it,
/// so a fresh log is never rotated over the older generation.
fn rotate(file: &File, path: &std::path::Path) -> io::Result<()> {
    file.lock()?;
    let same = fs::metadata(path).is_ok_and(|m| m.ino() == file.metadata().map_or(0, |f| f.ino()));
    if same {
        fs::rename(path, Layout::rotated(path))?;
    }
    file.unlock()
}

/// Appends events now (those the log keeps), reporting a failure on stderr instead of
/// returning it: the log must never stop the work it describes.
pub fn emit<'a>(store: &Store, by: By, events: impl IntoIterator<Item = &'a Event>) {
    for event in events.into_iter().filter(|e| e.logged()) {
        if let Err(error) = append(store, &Record::now(by, event.clone())) {
            eprintln!("warning: event log: {error:#}");
        }
    }
}

/// Every line of the log, the rotated generation first, each parsed as a JSON value (so lines
/// from newer versions, with events this one does not know, still show). A line that does not
/// parse is returned as a string value.
pub fn read(store: &Store) -> Result<Vec<serde_json::Value>> {
    Ok(lines(store)?.iter().map(|l| parse_line(l)).collect())
}

/// Every non-blank line of the log, the rotated generation first, as text: for a reader that
/// parses only the lines it shows (a parsed line takes several times its text's memory).
pub fn lines(store: &Store) -> Result<Vec<String>> {
    let path = path(store);
    let mut lines = Vec::new();
    let dir = store.sidecar_dir()?;
    for file in [Layout::rotated(&path), path] {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = match read_file(&dir, &name) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", file.display())),
        };
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    Ok(lines)
}

/// A log of at most two rotations' size, read as a person would see it (never through a link).
pub fn read_file(dir: &Dir, name: &str) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    dir.read_own(name)?
        .take(2 * ROTATE_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// One line as JSON, or as a string if it is not JSON.
#[must_use]
pub fn parse_line(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|_| serde_json::Value::String(line.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialise_flat_with_camel_case_fields() {
        let record = Record {
            ts: "2026-03-01T10:00:00.000Z".into(),
            by: By::Runner,
            pid: 7,
            event: Event::Interrupted {
                step: "a".into(),
                attempt: 2,
            },
        };
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(
            text,
            r#"{"ts":"2026-03-01T10:00:00.000Z","by":"runner","pid":7,"event":"interrupted","step":"a","attempt":2}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), record);
    }

    #[test]
    fn appends_rotate_past_the_cap_and_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        fs::write(&state, "{}").unwrap();
        let store = Store::locate(&state).unwrap().unwrap();
        let big = "y".repeat(900);
        let mut n = 0;
        while !Layout::rotated(&path(&store)).exists() {
            let event = Event::Retried {
                step: format!("s{n}").into(),
                previous_tries: 0,
                note: Some(big.clone()),
            };
            append(&store, &Record::now(By::Seqctl, event)).unwrap();
            n += 1;
        }
        emit(
            &store,
            By::Seqctl,
            &[Event::Advanced { step: "x".into() }, Event::Paused],
        );
        let lines = read(&store).unwrap();
        assert_eq!(lines.len(), n + 1, "the advance is not logged");
        assert_eq!(lines[0]["step"], "s0");
        assert_eq!(lines[n]["event"], "paused");
        assert!(fs::metadata(path(&store)).unwrap().len() < 2000);
    }
}
