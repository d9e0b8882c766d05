//! The plan tools that do more than call one `seqctl` command: `plan_validate` (every problem,
//! not only the first), `plan_start` (init, then one heartbeat) and `plan_result`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, Context as _, Result};
use serde_json::{json, Value};

use super::beat;
use crate::cli::check;
use crate::cli::config::Config;
use crate::cli::ctl::{self, init, validate::warnings, Output};
use crate::format::schema::State;
use crate::format::validate;
use crate::store::Store;

/// Checks a plan as `plan_start` (and `seqctl init --plan`) would, listing every problem, and
/// says whether the state file would take it. Writes nothing.
pub fn validate(path: &Path, plan: &Value) -> Result<Output> {
    let plan = as_object(plan)?;
    let (state, problems) = match validate::parse(plan.to_string().as_bytes()) {
        // Every problem of the plan, the first with the others behind it.
        Err(invalid) => (
            None,
            invalid
                .all()
                .map(|p| (p.field.clone(), p.problem.clone()))
                .collect(),
        ),
        // What init adds to the engine's checks (a plan with no steps, say).
        Ok(raw) => match init::fresh(raw, None) {
            Ok(state) => (Some(state), Vec::new()),
            Err(e) => (None, vec![(String::new(), format!("{e:#}"))]),
        },
    };
    let refusal = refusal(path)?;
    let mut text = String::new();
    let json = if let Some(state) = &state {
        let warnings = warnings(state);
        let _ = write!(text, "valid: {} steps", state.step_queue.len());
        for w in &warnings {
            let _ = write!(text, "\nwarning: {w}");
        }
        json!({ "valid": true, "steps": state.step_queue, "problems": [], "warnings": warnings })
    } else {
        let _ = write!(text, "invalid: {} problem(s)", problems.len());
        for (field, problem) in &problems {
            let at = if field.is_empty() {
                String::new()
            } else {
                format!("{field}: ")
            };
            let _ = write!(text, "\nproblem: {at}{problem}");
        }
        let list: Vec<Value> = problems
            .iter()
            .map(|(field, problem)| json!({ "field": field, "problem": problem }))
            .collect();
        json!({ "valid": false, "problems": list, "warnings": [] })
    };
    if let Some(why) = &refusal {
        let _ = write!(text, "\nplan_start would refuse: {why}");
    }
    let mut json = json;
    json["startable"] = (state.is_some() && refusal.is_none()).into();
    json["refusal"] = refusal.into();
    Ok(Output::ok(text, json))
}

/// Writes a new plan (as `seqctl init --plan` would, never over a live one) and runs one
/// heartbeat, which starts the first step in a detached `seq-runner`. Everything that can be
/// checked is checked before the write, so a refused request leaves every file as it was.
pub fn start(path: &Path, plan: &Value, config: &Result<Config, String>) -> Result<Output> {
    let state = init::fresh(init::from_json(as_object(plan)?)?, None)?;
    let config = config.as_ref().map_err(|e| anyhow!("{e}"))?;
    let store = Store::at(path)?;
    config.agent(store.workspace())?;
    check::runner_path(config)?;
    let created = init::write(path, &state, false)?;
    let (beat_text, beat_json) = beat::once(path, config)
        .context("the plan was written, but its first heartbeat failed (run `heartbeat` again)")?;
    let mut json = created.json;
    json["heartbeat"] = beat_json;
    Ok(Output::ok(format!("{}\n{beat_text}", created.text), json))
}

/// What the plan produced so far: `seqctl result`.
pub fn result(path: &Path) -> Result<Output> {
    ctl::result::run(path)
}

/// The plan, which must be a JSON object (a string holding one is a mistake worth naming).
fn as_object(plan: &Value) -> Result<&Value> {
    match plan {
        Value::Object(_) => Ok(plan),
        other => Err(anyhow!(
            "invalid plan: expected a JSON object with plan and stepQueue, got {}",
            kind(other)
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Why `plan_start` would refuse to write at `path` (a live plan there, or a runner on it).
fn refusal(path: &Path) -> Result<Option<String>> {
    let Some(store) = Store::locate(path)? else {
        return Ok(None);
    };
    let existing: Result<State> = store.read();
    Ok(init::refuse_to_replace(&store, existing, false)
        .err()
        .map(|e| format!("{e:#}")))
}
