//! `seqctl retry STEP [--note TEXT]`: give a failed or blocked step a fresh set of tries.
//!
//! The step's blocker lines go, its tries go back to 0 and its status to PENDING, and the note
//! (a person's answer to "what should I try instead?") is kept in `stepRuns.<id>.note`, where
//! the prompt picks it up and the next start clears it. Only the current step or an earlier
//! one can be retried: a later step runs in its turn anyway. Retrying an earlier step moves
//! `currentStep` back to it; the steps after it that are DONE are then passed over again, not
//! re-run (retry them one by one if they must be).

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::json;

use super::{change, position, Output};
use crate::events::Kind;
use crate::schedule;
use crate::state::{PlanStatus, StepStatus};

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
