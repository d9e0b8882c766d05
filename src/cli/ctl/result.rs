//! `seqctl result`: what the plan produced, in the plan/execute/monitor seed's shape:
//! `{"status", "completed_results": [{"step", "title", "result"}], "failed_step"}`.
//!
//! Each finished step's result is read whole from the sidecar (see `store::results`); a step
//! finished before results were kept (a Python-era plan) shows the tail of its stdout that the
//! state file holds.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use super::{look, Output};
use crate::format::text::{count, counted};
use crate::report::picture::{Picture, Status};
use crate::report::text;
use crate::store::results;

/// The status word of the result: the seed's five (a plan waiting for its next step or
/// heartbeat is still `running`; one paused on a failed try, after `seqctl cancel`, `failed`).
#[must_use]
pub fn status_word(picture: &Picture) -> &'static str {
    match picture.status {
        Status::Running | Status::Waiting => "running",
        Status::Blocked => "blocked",
        Status::Paused if picture.failed_step.is_some() => "failed",
        Status::Paused => "paused",
        Status::Success => "success",
    }
}

pub fn run(path: &Path) -> Result<Output> {
    let (store, plan, picture, _) = look(path)?;
    let dir = store.results_if_any();
    let read = |id: &str| match &dir {
        Some(dir) => results::result(dir, id).ok().flatten(),
        None => None,
    };
    let mut completed = Vec::with_capacity(picture.completed_results.len());
    for c in &picture.completed_results {
        let kept = match plan.step(&c.step) {
            // A forEach step's result is its items' results, as later steps get it.
            Some(step) if step.is_expanded() => Some(crate::core::items::joined(
                plan.items_of(&c.step),
                &mut |item| read(item.as_str()),
            )),
            _ => read(&c.step),
        };
        completed.push((c, kept.unwrap_or_else(|| c.result.clone())));
    }
    let word = status_word(&picture);
    let mut text = format!(
        "plan {word}: {} of {} done",
        completed.len(),
        counted(picture.total, "step")
    );
    for (c, result) in &completed {
        let title = c
            .title
            .as_deref()
            .map_or(String::new(), |t| format!(" ({t})"));
        let _ = write!(text, "\n\n== {}{title} ==\n{}", c.step, result.trim_end());
    }
    if let Some(f) = &picture.failed_step {
        let _ = write!(
            text,
            "\n\n{word}: {} after {}: {}",
            f.step,
            count(f.tries, "try", "tries"),
            text::clip(f.error.as_deref().unwrap_or("(no error recorded)"), 500)
        );
    }
    let json = json!({
        "status": word,
        "completed_results": completed
            .iter()
            .map(|(c, result)| json!({ "step": c.step, "title": c.title, "result": result }))
            .collect::<Vec<Value>>(),
        "failed_step": picture
            .failed_step
            .as_ref()
            .map(|f| json!({ "step": f.step, "title": f.title, "error": f.error })),
    });
    Ok(Output::ok(text, json))
}
