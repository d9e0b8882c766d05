//! The bounded readers: `step_logs` (the tail of a try's log) and `plan_events` (a page of the
//! event log from a position). A tool result goes into a model's context, so neither returns
//! more than a caller asked for, and never more than a hard cap.

use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};

use anyhow::{Context as _, Result};
use serde_json::json;

use super::args::{EventsArgs, LogsArgs};
use crate::cli::ctl::{self, events::readable, logs, Output};
use crate::store::events;

/// The log bytes returned when the caller does not say.
pub const LOG_BYTES: u64 = 16 << 10;
/// The most log bytes one call returns.
pub const LOG_BYTES_MAX: u64 = 1 << 20;
/// The events returned when the caller does not say.
pub const EVENTS: usize = 100;
/// The most events one call returns.
pub const EVENTS_MAX: usize = 1000;

/// The end of a try's log, at most `max_bytes` of it.
pub fn step_logs(args: &LogsArgs) -> Result<Output> {
    let store = ctl::existing(&args.state)?;
    let found = logs::open(&store, &args.step, args.attempt)?;
    let max = args.max_bytes.unwrap_or(LOG_BYTES).min(LOG_BYTES_MAX);
    let mut bytes = Vec::new();
    let mut size = 0;
    if let Some(mut file) = found.file {
        let cannot = || format!("{}: cannot read", found.log.display());
        size = file.metadata().with_context(cannot)?.len();
        file.seek(SeekFrom::Start(size.saturating_sub(max)))
            .with_context(cannot)?;
        file.take(max)
            .read_to_end(&mut bytes)
            .with_context(cannot)?;
    }
    let truncated = (bytes.len() as u64) < size;
    if truncated {
        // Cut where a character starts, not inside one.
        let partial = bytes
            .iter()
            .take(3)
            .take_while(|b| *b & 0xC0 == 0x80)
            .count();
        bytes.drain(..partial);
    }
    let log = String::from_utf8_lossy(&bytes);
    let mut text = String::new();
    if truncated {
        let _ = writeln!(
            text,
            "(the last {} of {size} bytes; ask for more with max_bytes)",
            bytes.len()
        );
    } else if bytes.is_empty() {
        let _ = writeln!(
            text,
            "(step {} try {} printed nothing)",
            args.step, found.attempt
        );
    }
    text.push_str(&log);
    let json = json!({
        "step": args.step,
        "attempt": found.attempt,
        "logFile": found.log.display().to_string(),
        "size": size,
        "truncated": truncated,
        "text": log,
    });
    Ok(Output::ok(text, json))
}

/// The events from line `since` of the event log on (the rotated generation first), at most
/// `limit` of them, and the position to ask from next time.
pub fn plan_events(args: &EventsArgs) -> Result<Output> {
    let store = ctl::existing(&args.state)?;
    let since = args.since;
    let all = events::lines(&store)?;
    // A position past the end means the log was rotated (at 4 MiB) since it was handed out:
    // the lines were renumbered, so start again rather than miss what is there.
    let restarted = since > all.len();
    let from = if restarted { 0 } else { since };
    let limit = args.limit.unwrap_or(EVENTS).clamp(1, EVENTS_MAX);
    let page: Vec<_> = all[from..all.len().min(from + limit)]
        .iter()
        .map(|l| events::parse_line(l))
        .collect();
    let next = from + page.len();
    let mut text = if page.is_empty() {
        format!("no events since position {from} (next: {next})")
    } else {
        format!(
            "events {from}..{next} of {}{}",
            all.len(),
            if restarted {
                " (the log was rotated: from its start)"
            } else {
                ""
            }
        )
    };
    for event in &page {
        text.push('\n');
        text.push_str(&readable(event));
    }
    let json = json!({
        "events": page,
        "since": from,
        "next": next,
        "total": all.len(),
        "more": next < all.len(),
        "restarted": restarted,
    });
    Ok(Output::ok(text, json))
}
