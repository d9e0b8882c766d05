//! The event log: an append-only story of a plan, one JSON object per line.
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

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::format::timefmt;
use crate::store::Store;

/// The log file's name in the sidecar folder.
pub const FILE: &str = "events.jsonl";
/// Past this size the log is rotated to `events.jsonl.1`.
pub const ROTATE_BYTES: u64 = 4 << 20;
/// Free text (errors, notes) is cut to this many characters, so a line stays a few KiB.
const MAX_TEXT_CHARS: usize = 1000;

/// Who wrote an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Check,
    Runner,
    Seqctl,
}

/// What happened. Serialised as `"event": "step_started"` with the fields beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Kind {
    PlanCreated {
        steps: usize,
        replaced: bool,
    },
    /// A heartbeat that did something: started a runner.
    Heartbeat {
        result: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        runner_pid: Option<u32>,
    },
    /// The previous heartbeat is older than expected: the schedule stopped firing for a while.
    HeartbeatGap {
        previous: String,
        gap_seconds: i64,
    },
    StepStarted {
        step: String,
        attempt: u32,
        agent_pid: u32,
    },
    StepFinished {
        step: String,
        attempt: u32,
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// False when a person changed the step while it ran (cancel, skip): their word won.
        recorded: bool,
    },
    Interrupted {
        step: String,
        attempt: u32,
    },
    Retried {
        step: String,
        previous_tries: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Blocked {
        step: String,
        tries: u32,
    },
    Skipped {
        step: String,
    },
    Paused,
    Resumed,
    Cancelled {
        step: String,
        attempt: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_pgid: Option<u32>,
    },
    PlanDone,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub ts: String,
    pub by: By,
    pub pid: u32,
    #[serde(flatten)]
    pub kind: Kind,
}

impl Event {
    /// An event happening now, in this process.
    #[must_use]
    pub fn now(by: By, kind: Kind) -> Self {
        Self {
            ts: timefmt::format(Utc::now()),
            by,
            pid: std::process::id(),
            kind: kind.bounded(),
        }
    }
}

impl Kind {
    /// The event for a change `schedule::settle` made, if it is worth one.
    #[must_use]
    pub fn of_transition(change: &crate::core::schedule::Transition) -> Option<Self> {
        use crate::core::schedule::Transition;
        match change {
            Transition::Interrupted { step, attempt } => Some(Self::Interrupted {
                step: step.clone(),
                attempt: *attempt,
            }),
            Transition::Blocked { step, tries } => Some(Self::Blocked {
                step: step.clone(),
                tries: *tries,
            }),
            Transition::PlanDone => Some(Self::PlanDone),
            // Moving past a finished step is bookkeeping; its finish was the event.
            Transition::Advanced { .. } => None,
        }
    }

    /// Cuts free text, so one event is one modest line whatever an agent printed.
    fn bounded(mut self) -> Self {
        let cut = |text: &mut Option<String>| {
            if let Some(t) = text {
                if t.chars().count() > MAX_TEXT_CHARS {
                    *t = t.chars().take(MAX_TEXT_CHARS).collect::<String>() + "…";
                }
            }
        };
        match &mut self {
            Self::StepFinished { error, .. } => cut(error),
            Self::Retried { note, .. } => cut(note),
            _ => {}
        }
        self
    }
}

/// The log file of a plan.
#[must_use]
pub fn path(store: &Store) -> PathBuf {
    store.sidecar().join(FILE)
}

/// Appends one event as one line in one `write`, rotating the file once it is past the cap.
pub fn append(store: &Store, event: &Event) -> Result<()> {
    let mut line = serde_json::to_vec(event).context("cannot serialise an event")?;
    line.push(b'\n');
    let path = store.ensure_sidecar()?.join(FILE);
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
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
        fs::rename(path, rotated(path))?;
    }
    file.unlock()
}

fn rotated(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    name.into()
}

/// Appends an event now, reporting a failure on stderr instead of returning it: the log must
/// never stop the work it describes.
pub fn emit(store: &Store, by: By, kind: Kind) {
    if let Err(error) = append(store, &Event::now(by, kind)) {
        eprintln!("warning: event log: {error:#}");
    }
}

/// Every line of the log, the rotated generation first, each parsed as a JSON value (so lines
/// from newer versions, with events this one does not know, still show). A line that does not
/// parse is returned as a string value.
pub fn read(store: &Store) -> Result<Vec<serde_json::Value>> {
    let path = path(store);
    let mut lines = Vec::new();
    for file in [rotated(&path), path] {
        let text = match fs::read(&file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", file.display())),
        };
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(parse_line),
        );
    }
    Ok(lines)
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
    fn events_serialise_flat_with_camel_case_fields() {
        let event = Event {
            ts: "2026-03-01T10:00:00.000Z".into(),
            by: By::Runner,
            pid: 7,
            kind: Kind::StepFinished {
                step: "a".into(),
                attempt: 2,
                status: "FAILED".into(),
                exit_code: Some(3),
                signal: None,
                duration_ms: 1500,
                error: Some("exit code 3".into()),
                recorded: true,
            },
        };
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(
            text,
            r#"{"ts":"2026-03-01T10:00:00.000Z","by":"runner","pid":7,"event":"step_finished","step":"a","attempt":2,"status":"FAILED","exitCode":3,"durationMs":1500,"error":"exit code 3","recorded":true}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), event);
        let paused = serde_json::to_string(&Event {
            kind: Kind::Paused,
            ..event
        })
        .unwrap();
        assert!(paused.ends_with(r#""event":"paused"}"#), "{paused}");
    }

    #[test]
    fn long_text_is_cut() {
        let kind = Kind::Retried {
            step: "a".into(),
            previous_tries: 3,
            note: Some("x".repeat(5000)),
        }
        .bounded();
        let Kind::Retried {
            note: Some(note), ..
        } = kind
        else {
            panic!()
        };
        assert_eq!(note.chars().count(), MAX_TEXT_CHARS + 1);
    }

    #[test]
    fn appends_rotate_past_the_cap_and_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        fs::write(&state, "{}").unwrap();
        let store = Store::locate(&state).unwrap().unwrap();
        let big = "y".repeat(900);
        let mut n = 0;
        while !rotated(&path(&store)).exists() {
            let kind = Kind::Retried {
                step: format!("s{n}"),
                previous_tries: 0,
                note: Some(big.clone()),
            };
            append(&store, &Event::now(By::Seqctl, kind)).unwrap();
            n += 1;
        }
        append(&store, &Event::now(By::Seqctl, Kind::Paused)).unwrap();
        let lines = read(&store).unwrap();
        assert_eq!(lines.len(), n + 1);
        assert_eq!(lines[0]["step"], "s0");
        assert_eq!(lines[n]["event"], "paused");
        assert!(fs::metadata(path(&store)).unwrap().len() < 2000);
    }
}
