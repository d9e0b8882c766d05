//! `seqctl validate`: every check the engine applies to a state (or plan) file, plus warnings
//! about plans that are valid but will not do what their author meant.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::Output;
use crate::cli::config::Config;
use crate::cli::exit::Exit;
use crate::core::model::DEFAULT_AGENT;
use crate::exec::agents::Agents;
use crate::format::schema::State;
use crate::format::text::counted;
use crate::format::typos::typos;
use crate::format::validate::{self, Invalid};
use crate::store::read::read_bounded;
use crate::store::MAX_STATE_BYTES;

pub fn run(path: &Path) -> Result<Output> {
    let bytes = read_bounded(path, MAX_STATE_BYTES)?;
    Ok(match validate::parse(&bytes) {
        Ok(state) => {
            let warnings = all_warnings(&state, path);
            let mut text = format!("valid: {}", counted(state.step_queue.len(), "step"));
            for w in &warnings {
                text.push_str("\nwarning: ");
                text.push_str(w);
            }
            let json =
                json!({ "valid": true, "steps": state.step_queue.len(), "warnings": warnings });
            Output::ok(text, json)
        }
        Err(invalid) => {
            let problems: Vec<_> = invalid
                .all()
                .map(|p| json!({ "field": p.field, "error": p.problem }))
                .collect();
            let text = if invalid.others.is_empty() {
                format!("{}: invalid: {invalid}", path.display())
            } else {
                let lines: Vec<String> = invalid
                    .all()
                    .map(|p| {
                        let one = Invalid {
                            others: Vec::new(),
                            ..p.clone()
                        };
                        format!("- {one}")
                    })
                    .collect();
                format!(
                    "{}: invalid: {}\n{}",
                    path.display(),
                    counted(problems.len(), "problem"),
                    lines.join("\n")
                )
            };
            Output {
                text,
                json: json!({
                    "valid": false,
                    "field": invalid.field,
                    "error": invalid.problem,
                    "problems": problems,
                }),
                code: Exit::Invalid,
            }
        }
    })
}

/// Every warning about a plan in the state file at `path`: misspelt fields and instructions
/// an agent would misread ([`warnings`]), and agents the operator never defined, looked up as
/// the runner will (beside the state file).
#[must_use]
pub fn all_warnings(state: &State, path: &Path) -> Vec<String> {
    let mut warnings = warnings(state);
    let workspace = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let known = Config::or_default()
        .agents(workspace)
        .map_err(|e| format!("{e:#}"));
    warnings.extend(unknown_agents(state, &known));
    warnings
}

/// Warnings for agents the plan names that the operator has not defined: validation cannot
/// know the agents file (it may change before the step runs), but a planner that invented a
/// name should be seen before the plan runs, not when its step fails.
#[must_use]
pub fn unknown_agents(state: &State, known: &Result<Agents, String>) -> Vec<String> {
    let mut named: Vec<(String, &str)> = Vec::new();
    if let Some(name) = &state.plan.compress_agent {
        named.push(("plan.compressAgent".to_owned(), name));
    }
    for id in &state.step_queue {
        let Some(step) = state.plan.steps.get(id) else {
            continue;
        };
        let base = format!("plan.steps.{id}");
        if let Some(name) = &step.agent {
            named.push((format!("{base}.agent"), name));
        }
        for (n, name) in step.fallback_agents.iter().flatten().enumerate() {
            named.push((format!("{base}.fallbackAgents[{n}]"), name));
        }
        if let Some(name) = step.verify.as_ref().and_then(|v| v.agent.as_ref()) {
            named.push((format!("{base}.verify.agent"), name));
        }
    }
    named
        .into_iter()
        .filter(|(_, name)| *name != DEFAULT_AGENT)
        .filter_map(|(field, name)| match known {
            Ok(agents) => agents.command(name).err().map(|e| format!("{field}: {e}")),
            Err(e) => Some(format!("{field}: agent `{name}` cannot be checked: {e}")),
        })
        .collect()
}

/// Valid, but probably not what was meant.
#[must_use]
pub fn warnings(state: &State) -> Vec<String> {
    // A misspelt field is kept as the writer's own and ignored: say which one it looks like.
    let mut out: Vec<String> = typos(state).iter().map(ToString::to_string).collect();
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
    // An instruction is handed to the agent as one argument. Known agents get it after `--`
    // or as `--option=…`; a command that passes it bare would have the agent read one that
    // starts with `-` as an option (`--help` exits 0 having done nothing), so the runner
    // refuses that try. Some agents run `/…` and `!…` as their own commands.
    for id in &state.step_queue {
        let instruction = state.plan.steps[id].instruction();
        if instruction.starts_with('-') {
            out.push(format!(
                "plan.steps.{id}.instruction starts with `-`: an agent command that passes the \
                 prompt as a bare argument would read it as an option, so the runner refuses \
                 such a try unless STEP_AGENT_CMD puts the prompt after `--` or in \
                 `--option={{prompt}}` (known agents do); reword it so it starts with a word"
            ));
        } else if instruction.trim_start().starts_with(['/', '!']) {
            out.push(format!(
                "plan.steps.{id}.instruction starts with `{}`: some agents (aider) run such a \
                 message as their own command, a shell command for `!`; reword it so it starts \
                 with a word",
                &instruction.trim_start()[..1]
            ));
        }
    }
    for id in state.step_runs.keys() {
        // The records of a forEach step's items are the plan's own.
        let item_of_step = crate::core::model::parse_item_id(id).is_some_and(|(parent, _)| {
            state
                .plan
                .steps
                .get(parent)
                .is_some_and(|s| s.for_each.is_some())
        });
        if !state.plan.steps.contains_key(id) && !item_of_step {
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

    #[test]
    fn warns_about_instructions_an_agent_would_read_as_an_option_or_a_command() {
        let state = validate::parse(
            br#"{"plan":{"steps":{"a":{"instruction":"--help"},"b":{"instruction":" !id"},
                "c":{"instruction":"/run id"},"d":{"instruction":"do - this"}}},
              "stepQueue":["a","b","c","d"]}"#,
        )
        .unwrap();
        let w = warnings(&state);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(
            w[0].starts_with("plan.steps.a.instruction starts with `-`"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("STEP_AGENT_CMD"), "{}", w[0]);
        assert!(
            w[1].starts_with("plan.steps.b.instruction starts with `!`"),
            "{}",
            w[1]
        );
        assert!(
            w[2].starts_with("plan.steps.c.instruction starts with `/`"),
            "{}",
            w[2]
        );
    }
}
