//! `seqctl add-step` / `edit-step` / `remove-step`: change a plan under the state lock, the
//! way the engine does, instead of editing state.json by hand while heartbeats write it (such
//! unlocked edits were lost: 54 of 200 in a trial). The change is checked as a whole file is,
//! and a step whose try is in flight is left alone (its agent runs with the old text).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::json;

use super::{change, Output};
use crate::core::{Input, StepEdit, StepId, StepSpec};

/// A step's fields as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub title: Option<String>,
    pub instruction: Option<String>,
    /// Comma-separated paths.
    pub outputs: Option<String>,
    pub max_retries: Option<u32>,
    pub timeout_seconds: Option<u64>,
    /// Comma-separated step ids; empty: none.
    pub needs: Option<String>,
}

fn needs(list: Option<&str>) -> Option<Vec<StepId>> {
    outputs(list).map(|ids| ids.into_iter().map(StepId::from).collect())
}

fn outputs(list: Option<&str>) -> Option<Vec<String>> {
    list.map(|l| {
        l.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// Adds a step (`id`, or the next free `step-N`), after `after` or at the end.
pub fn add(path: &Path, id: Option<&str>, after: Option<&str>, fields: &Fields) -> Result<Output> {
    let store = super::existing(path)?;
    let Some(instruction) = fields.instruction.clone() else {
        bail!("a new step needs --instruction");
    };
    let mut spec = StepSpec::new(fields.title.clone(), instruction);
    spec.required_outputs = outputs(fields.outputs.as_deref()).unwrap_or_default();
    spec.max_tries = fields.max_retries;
    spec.timeout = fields.timeout_seconds.map(Duration::from_secs);
    spec.needs = needs(fields.needs.as_deref());
    let done = change(
        &store,
        |plan, _| {
            let id: StepId = id.map_or_else(
                || {
                    // One of len + 1 numbers is free, whatever ids the plan has.
                    (1..=plan.steps().len() + 1)
                        .map(|n| format!("step-{n}"))
                        .find(|id| plan.step(id).is_none())
                        .unwrap_or_default()
                        .into()
                },
                Into::into,
            );
            Input::AddStep {
                id,
                spec,
                after: after.map(Into::into),
            }
        },
        |_, _| {},
    )?;
    let added = done
        .events
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    let step = match done.events.first() {
        Some(crate::core::Event::StepAdded { step }) => step.to_string(),
        _ => String::new(),
    };
    let position = done.plan.position(&step).map_or(0, |p| p + 1);
    let text = format!("{added}, as step {position} of {}", done.plan.steps().len());
    Ok(Output::ok(
        text,
        json!({ "step": step, "position": position }),
    ))
}

/// Changes the fields given of a step.
pub fn edit(path: &Path, step: &str, fields: &Fields) -> Result<Output> {
    let store = super::existing(path)?;
    let edit = StepEdit {
        title: fields.title.clone(),
        instruction: fields.instruction.clone(),
        required_outputs: outputs(fields.outputs.as_deref()),
        max_tries: fields.max_retries,
        timeout: fields.timeout_seconds.map(Duration::from_secs),
        needs: needs(fields.needs.as_deref()),
    };
    if edit == StepEdit::default() {
        bail!("nothing to change: give --title, --instruction, --outputs, --max-retries, --timeout-seconds or --needs");
    }
    let input = Input::EditStep {
        id: step.into(),
        edit,
    };
    change(&store, |_, _| input, |_, _| {})?;
    Ok(Output::ok(
        format!("step {step}: changed; its next try uses the new text"),
        json!({ "step": step }),
    ))
}

/// Removes a step.
pub fn remove(path: &Path, step: &str) -> Result<Output> {
    let store = super::existing(path)?;
    let input = Input::RemoveStep { id: step.into() };
    let done = change(&store, |_, _| input, |_, _| {})?;
    Ok(Output::ok(
        format!(
            "step {step}: removed; {} steps left",
            done.plan.steps().len()
        ),
        json!({ "step": step, "steps": done.plan.steps().len() }),
    ))
}
