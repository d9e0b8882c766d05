//! `seqctl pause` / `seqctl resume`: stop starting new tries, and start again.
//!
//! Pausing is the top-level `paused` flag, which the schedule honours: a paused plan starts
//! nothing new and the check reports "paused". A try already in flight runs to its end (use
//! `seqctl cancel` to stop it).

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::json;

use super::{change, Output};
use crate::format::schema::{PlanStatus, StepStatus};
use crate::store::events::Kind;

/// Sets the plan's `paused` flag to `paused`.
pub fn run(path: &Path, paused: bool) -> Result<Output> {
    let store = super::existing(path)?;
    let (changed, running) = change(&store, |state, lease| {
        if state.status == PlanStatus::Done && paused {
            bail!("the plan is DONE; there is nothing to pause");
        }
        let running = state
            .current_id()
            .filter(|id| state.run_of(id).status == StepStatus::InProgress && lease.is_held())
            .map(str::to_owned);
        if state.paused == paused {
            return Ok(((false, running), Vec::new()));
        }
        state.paused = paused;
        let event = if paused { Kind::Paused } else { Kind::Resumed };
        Ok(((true, running), vec![event]))
    })?;
    let text = match (paused, changed) {
        (true, false) => "already paused".to_owned(),
        (false, false) => "not paused; nothing to resume".to_owned(),
        (true, true) => match &running {
            Some(step) => format!(
                "paused: nothing new starts; step {step} is still running (`seqctl cancel` stops it)"
            ),
            None => "paused: nothing new starts until `seqctl resume`".to_owned(),
        },
        (false, true) => "resumed: the next heartbeat starts what is due".to_owned(),
    };
    Ok(Output::ok(
        text,
        json!({ "paused": paused, "changed": changed }),
    ))
}
