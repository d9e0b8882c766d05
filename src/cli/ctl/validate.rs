//! `seqctl validate`: every check the engine applies to a state (or plan) file, plus warnings
//! about plans that are valid but will not do what their author meant.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::Output;
use crate::cli::exit::Exit;
use crate::format::schema::State;
use crate::format::validate;
use crate::store::read::read_bounded;
use crate::store::MAX_STATE_BYTES;

pub fn run(path: &Path) -> Result<Output> {
    let bytes = read_bounded(path, MAX_STATE_BYTES)?;
    Ok(match validate::parse(&bytes) {
        Ok(state) => {
            let warnings = warnings(&state);
            let mut text = format!("valid: {} steps", state.step_queue.len());
            for w in &warnings {
                text.push_str("\nwarning: ");
                text.push_str(w);
            }
            let json =
                json!({ "valid": true, "steps": state.step_queue.len(), "warnings": warnings });
            Output::ok(text, json)
        }
        Err(invalid) => Output {
            text: format!("invalid: {invalid}"),
            json: json!({ "valid": false, "field": invalid.field, "error": invalid.problem }),
            code: Exit::Invalid,
        },
    })
}

/// Valid, but probably not what was meant.
#[must_use]
pub fn warnings(state: &State) -> Vec<String> {
    let mut out = Vec::new();
    for id in state.plan.steps.keys() {
        if !state.step_queue.contains(id) {
            out.push(format!(
                "plan.steps.{id}: not in stepQueue, so it will never run"
            ));
        }
    }
    // A required output must be written by this step or an earlier one; if no instruction up
    // to here names it, the agent has no way to know it must write it.
    let mut said = String::new();
    for id in &state.step_queue {
        let step = &state.plan.steps[id];
        said.push_str(step.instruction());
        said.push('\n');
        for output in step.required_outputs() {
            let name = Path::new(output)
                .file_name()
                .map_or(output.clone(), |n| n.to_string_lossy().into_owned());
            if !said.contains(output.as_str()) && !said.contains(&name) {
                out.push(format!(
                    "plan.steps.{id}.requiredOutputs: `{output}` is not mentioned in this step's \
                     instruction or any earlier one; the agent may not know to write it"
                ));
            }
        }
    }
    for id in state.step_runs.keys() {
        if !state.plan.steps.contains_key(id) {
            out.push(format!("stepRuns.{id}: no such step in plan.steps"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_about_unqueued_steps_and_unmentioned_outputs() {
        let state = validate::parse(
            br#"{"plan":{"steps":{
                "a":{"instruction":"write notes/summary.md","requiredOutputs":["notes/summary.md"]},
                "b":{"instruction":"polish it","requiredOutputs":["summary.md","paper.pdf"]},
                "c":{"instruction":"never queued"}}},
              "stepQueue":["a","b"],"stepRuns":{"zz":{"status":"DONE"}}}"#,
        )
        .unwrap();
        assert_eq!(
            warnings(&state),
            [
                "plan.steps.c: not in stepQueue, so it will never run",
                "plan.steps.b.requiredOutputs: `paper.pdf` is not mentioned in this step's \
                 instruction or any earlier one; the agent may not know to write it",
                "stepRuns.zz: no such step in plan.steps",
            ]
        );
    }
}
