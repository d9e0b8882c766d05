//! `seqctl skip STEP`: pass a step over. It is marked SKIPPED (which the schedule treats as
//! finished) and its blocker goes; a later step can be skipped ahead of time. A step whose try
//! is in flight must be cancelled first: skipping it would leave its agent running unobserved.

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::json;

use super::{change, position, Output};
use crate::core::schedule;
use crate::format::schema::{PlanStatus, StepStatus};
use crate::store::events::Kind;

pub fn run(path: &Path, step: &str) -> Result<Output> {
    let store = super::existing(path)?;
    let changed = change(&store, |state, lease| {
        position(state, step)?;
        if state.status == PlanStatus::Done {
            bail!("the plan is DONE; there is nothing left to skip");
        }
        let run = state.run_of(step);
        match run.status {
            StepStatus::Done => bail!("step {step} is already DONE"),
            StepStatus::Skipped => return Ok((false, Vec::new())),
            StepStatus::InProgress if lease.is_held() => bail!(
                "step {step} try {} is in flight; stop it with `seqctl cancel` first",
                run.tries
            ),
            _ => {}
        }
        state.run_mut(step).status = StepStatus::Skipped;
        if let Some(blockers) = state.blockers.as_mut() {
            blockers.retain(|line| !schedule::is_blocker_for(line, step));
        }
        let event = Kind::Skipped {
            step: step.to_owned(),
        };
        Ok((true, vec![event]))
    })?;
    let text = if changed {
        format!("step {step}: skipped; the plan moves past it at the next heartbeat")
    } else {
        format!("step {step}: already skipped")
    };
    Ok(Output::ok(
        text,
        json!({ "step": step, "changed": changed }),
    ))
}
