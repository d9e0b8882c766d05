//! `seqctl pause` / `seqctl resume`: stop starting new tries, and start again.
//!
//! Pausing is the top-level `paused` flag, which the schedule honours: a paused plan starts
//! nothing new and the check reports "paused". A try already in flight runs to its end (use
//! `seqctl cancel` to stop it).

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::{change, Output};
use crate::core::{Input, TryState};

/// Sets the plan's `paused` flag to `paused`.
pub fn run(path: &Path, paused: bool) -> Result<Output> {
    let store = super::existing(path)?;
    let input = if paused { Input::Pause } else { Input::Resume };
    let done = change(&store, |_, _| input, |_, _| {})?;
    let changed = !done.events.is_empty();
    let live = &done.live;
    let running = done
        .plan
        .current()
        .filter(|s| matches!(s.run.state(), TryState::Running { .. }) && live.alive(&s.id))
        .map(|s| s.id.to_string());
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
