//! `seqctl skip STEP`: pass a step over. It is marked SKIPPED (which the schedule treats as
//! finished) and its blocker goes; a later step can be skipped ahead of time. A step whose try
//! is in flight must be cancelled first: skipping it would leave its agent running unobserved.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::{change, Output};
use crate::core::Input;

pub fn run(path: &Path, step: &str) -> Result<Output> {
    let store = super::existing(path)?;
    let input = Input::Skip { step: step.into() };
    let changed = !change(&store, |_, _| input, |_, _| {})?.events.is_empty();
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
