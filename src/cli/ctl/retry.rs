//! `seqctl retry STEP [--note TEXT]`: give a failed or blocked step a fresh set of tries.
//!
//! The step's blocker lines go, its tries go back to 0 and its status to PENDING, and the note
//! (a person's answer to "what should I try instead?") is kept in `stepRuns.<id>.note`, where
//! the prompt picks it up and the next start clears it. Only the current step or an earlier
//! one can be retried: a later step runs in its turn anyway. Retrying an earlier step moves
//! `currentStep` back to it; the steps after it that are DONE are then passed over again, not
//! re-run (retry them one by one if they must be).
//!
//! Tries are numbered afresh from 1, and a try's log is named by its number, so the logs of the
//! tries before the retry are first renamed to `<step>.<n>.before-retry-<time>.log`: the output
//! of the failures is what a person retrying most wants to keep.

use std::fs;
use std::path::Path;

use anyhow::{bail, Result};
use serde_json::json;

use super::{change, position, Output};
use crate::core::schedule;
use crate::format::schema::{PlanStatus, StepStatus};
use crate::store::events::Kind;
use crate::store::layout;
use crate::store::Store;

pub fn run(path: &Path, step: &str, note: Option<&str>) -> Result<Output> {
    let store = super::existing(path)?;
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    let (previous, paused) = change(&store, |state, lease| {
        let index = position(state, step)?;
        let current = usize::try_from(state.current_step).unwrap_or(usize::MAX);
        if index > current && state.status != PlanStatus::Done {
            bail!(
                "step {step} is not reached yet (the plan is at {}); it runs in its turn",
                state.current_id().unwrap_or("the end")
            );
        }
        let run = state.run_of(step);
        if run.status == StepStatus::InProgress && lease.is_held() {
            bail!(
                "step {step} try {} is in flight; stop it with `seqctl cancel` first",
                run.tries
            );
        }
        // Under the lock, so no new try 1 can have started writing its log yet.
        keep_old_logs(&store, step, run.tries);
        if let Some(blockers) = state.blockers.as_mut() {
            blockers.retain(|line| !schedule::is_blocker_for(line, step));
        }
        let fresh = state.run_mut(step);
        fresh.status = StepStatus::Pending;
        fresh.tries = 0;
        fresh.error = None;
        fresh.note = note.map(str::to_owned);
        state.current_step = index as u64;
        state.status = PlanStatus::InProgress;
        let event = Kind::Retried {
            step: step.to_owned(),
            previous_tries: run.tries,
            note: note.map(str::to_owned),
        };
        Ok(((run.tries, state.paused), vec![event]))
    })?;
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
        let log = layout::attempt_log(store, step, attempt);
        let kept = log.with_extension(format!("before-retry-{stamp}.log"));
        if log.exists() {
            if let Err(e) = fs::rename(&log, &kept) {
                eprintln!("warning: cannot keep {}: {e}", log.display());
            }
        }
    }
}
