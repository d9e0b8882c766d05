//! `seqctl retry STEP [--note TEXT]`: give a failed or blocked step a fresh set of tries.
//!
//! The step's blocker lines go, its tries go back to 0 and its status to PENDING, and the note
//! (a person's answer to "what should I try instead?") is kept in `stepRuns.<id>.note`, where
//! the prompt picks it up and the next start clears it. Only the current step or an earlier
//! one can be retried: a later step runs in its turn anyway. Retrying an earlier step moves
//! `currentStep` back to it; the steps after it that are DONE are then passed over again, not
//! re-run (retry them one by one if they must be). The rules are the core's (`core::apply`).
//!
//! Tries are numbered afresh from 1, and a try's log is named by its number, so the logs of the
//! tries before the retry are first renamed to `<step>.<n>.before-retry-<time>.log`: the output
//! of the failures is what a person retrying most wants to keep.

use std::fs;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::{change, Output};
use crate::core::{Event, Input};
use crate::store::Store;

pub fn run(path: &Path, step: &str, note: Option<&str>) -> Result<Output> {
    let store = super::existing(path)?;
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    let input = Input::Retry {
        step: step.into(),
        note: note.map(str::to_owned),
    };
    let changed = change(
        &store,
        |_, _| input,
        |_, events| {
            // Under the lock, so no new try 1 can have started writing its log yet.
            if let Some(Event::Retried { previous_tries, .. }) = events.first() {
                keep_old_logs(&store, step, *previous_tries);
            }
        },
    )?;
    let previous = match changed.events.first() {
        Some(Event::Retried { previous_tries, .. }) => *previous_tries,
        _ => 0,
    };
    let paused = changed.plan.is_paused();
    let mut text = format!(
        "step {step}: tries reset (it had {previous}); it runs again at the next heartbeat{}",
        if note.is_some() {
            ", with your note in its prompt"
        } else {
            ""
        }
    );
    if paused {
        text.push_str("\nthe plan is paused: `seqctl resume` lets it run");
    }
    let json = json!({ "step": step, "previousTries": previous, "note": note, "paused": paused });
    Ok(Output::ok(text, json))
}

/// Renames the logs of tries 1..=tries out of the way of the new tries' logs. Best effort: a
/// log that is missing (a try of the Python version) or cannot be moved is left as it is.
fn keep_old_logs(store: &Store, step: &str, tries: u32) {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    for attempt in 1..=tries {
        let log = store.layout().attempt_log(step, attempt);
        let kept = log.with_extension(format!("before-retry-{stamp}.log"));
        if log.exists() {
            if let Err(e) = fs::rename(&log, &kept) {
                eprintln!("warning: cannot keep {}: {e}", log.display());
            }
        }
    }
}
