//! `seqctl init`: create a state file from a plan file or from `--step "title: instruction"`
//! flags, so that nobody (agent or person) has to write the JSON by hand.
//!
//! The new state is built, then checked by the same `validate` the engine uses, and only then
//! written: under the state lock, atomically, and without replacing a plan that is still
//! running unless told to (`--force`). A plan a runner is working on is never replaced.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Number, Value};

use super::Output;
use crate::core::Event;
use crate::format::schema::{PlanStatus, State};
use crate::format::text::counted;
use crate::format::validate;
use crate::store::events::{self, By};
use crate::store::lease::{Lease, LeaseState};
use crate::store::read::read_stream;
use crate::store::{read::read_bounded, Store, MAX_STATE_BYTES};

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct Init {
    /// A JSON file (or `-` for stdin) with `plan` and `stepQueue`; other fields are kept.
    pub plan: Option<PathBuf>,
    /// `"title: instruction"` each; ids are `step-1`..`step-n` in order.
    pub steps: Vec<String>,
    /// Required outputs, comma-separated, of the step at each index (`--outputs` after it).
    pub outputs: Vec<(usize, String)>,
    pub delay_minutes: Option<f64>,
    pub force: bool,
}

pub fn run(path: &Path, init: &Init) -> Result<Output> {
    write(path, &build(init)?, init.force)
}

/// Writes a new state made by [`build`] or [`fresh`]: under the lock, never over a plan a
/// runner is working on, and over one that is not DONE only with `force`.
pub fn write(path: &Path, state: &State, force: bool) -> Result<Output> {
    let store = Store::at(path)?;
    let locked = store.lock()?;
    let replaced = locked.exists();
    if replaced {
        // Read under the lock, but not with `locked.load()`: that takes back a sidecar made
        // for a file that is no state, and `--force` goes on to write with the lock held.
        refuse_to_replace(&store, store.read(), force)?;
        locked.save(state)?;
    } else {
        locked.create(state)?;
    }
    let created = Event::PlanCreated {
        steps: state.step_queue.len(),
        replaced,
    };
    events::emit(&store, By::Seqctl, [&created]);
    drop(locked);
    let first = state.step_queue.first().map_or("-", String::as_str);
    let mut text = format!(
        "{} {}: {} ({}), delay {} min; the next heartbeat (seq-check) starts {first}",
        if replaced { "replaced" } else { "created" },
        path.display(),
        counted(state.step_queue.len(), "step"),
        state.step_queue.join(", "),
        state.delay_minutes(),
    );
    // What `seqctl validate` would warn about, said where the plan was written: a misspelt
    // `requiredOutput` silently drops the only check that the work was done.
    let warnings = super::validate::all_warnings(state, store.path());
    for warning in &warnings {
        text.push_str("\nwarning: ");
        text.push_str(warning);
    }
    let json = json!({
        "stateFile": store.path().display().to_string(),
        "replaced": replaced,
        "steps": state.step_queue,
        "warnings": warnings,
    });
    Ok(Output::ok(text, json))
}

/// The new state, checked, from the plan file or the `--step` flags.
pub fn build(init: &Init) -> Result<State> {
    let state = match (&init.plan, init.steps.is_empty()) {
        (Some(_), false) => bail!("give a plan file or --step flags, not both"),
        (None, true) => bail!("nothing to plan: give a plan file (--plan FILE) or --step \"title: instruction\" flags"),
        (Some(file), true) => from_file(file)?,
        (None, false) => from_steps(&init.steps, &init.outputs)?,
    };
    fresh(state, init.delay_minutes)
}

/// A plan given as JSON (the object a plan file holds), parsed as a plan file is.
pub fn from_json(plan: &Value) -> Result<State> {
    validate::parse(plan.to_string().as_bytes()).context("invalid plan")
}

/// The state a plan starts as: its progress cleared, the delay set, then checked.
pub fn fresh(mut state: State, delay_minutes: Option<f64>) -> Result<State> {
    // A new plan starts from the beginning, whatever progress the file carried.
    state.current_step = 0;
    state.step_runs.clear();
    state.status = PlanStatus::InProgress;
    state.paused = false;
    state.blockers = Some(Vec::new());
    state.artifacts = Some(Vec::new());
    state.last_heartbeat_iso = None;
    if let Some(minutes) = delay_minutes {
        state.step_delay_minutes = Some(number(minutes)?);
    }
    if state.step_delay_minutes.is_none() {
        state.step_delay_minutes = Some(0.into());
    }
    if state.step_queue.is_empty() {
        bail!("the plan has no steps in stepQueue");
    }
    validate::check(&state).context("the new plan is invalid; nothing was written")?;
    // The steps as validated: an edit by other means under the run is seen (see `planHash`).
    state.plan_hash = Some(crate::core::Plan::of(&state).hash_now().to_owned());
    state.items = crate::format::schema::ItemRuns {
        loaded: true,
        ..Default::default()
    };
    Ok(state)
}

fn from_file(file: &Path) -> Result<State> {
    let bytes = if file == Path::new("-") {
        let mut bytes = Vec::new();
        read_stream(std::io::stdin(), MAX_STATE_BYTES, &mut bytes)
            .context("stdin: cannot read the plan")?;
        bytes
    } else {
        read_bounded(file, MAX_STATE_BYTES)
            .with_context(|| format!("{}: cannot read the plan", file.display()))?
    };
    validate::parse(&bytes).with_context(|| format!("{}: invalid plan", file.display()))
}

fn from_steps(specs: &[String], outputs: &[(usize, String)]) -> Result<State> {
    let mut steps = Map::new();
    let mut queue = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let Some((title, instruction)) = spec.split_once(": ") else {
            bail!("--step {spec:?}: write it as \"title: instruction\" (a colon and a space after the title)");
        };
        let (title, instruction) = (title.trim(), instruction.trim());
        if title.is_empty() || instruction.is_empty() {
            bail!("--step {spec:?}: both the title and the instruction must be given");
        }
        let id = format!("step-{}", index + 1);
        let mut step = json!({ "title": title, "instruction": instruction });
        let mut given = outputs.iter().filter(|(i, _)| *i == index);
        if let Some((_, paths)) = given.next() {
            if given.next().is_some() {
                bail!(
                    "--step {spec:?} has --outputs twice: list every path in one, comma-separated"
                );
            }
            let paths: Vec<&str> = paths
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            if paths.is_empty() {
                bail!("--outputs after --step {spec:?} names no path");
            }
            step["requiredOutputs"] = json!(paths);
        }
        steps.insert(id.clone(), step);
        queue.push(Value::String(id));
    }
    let value = json!({ "plan": { "steps": steps }, "stepQueue": queue });
    validate::parse(value.to_string().as_bytes()).context("the new plan is invalid")
}

/// `2` stays `2` in the file; `0.5` is kept as written.
fn number(minutes: f64) -> Result<Number> {
    if minutes.fract() == 0.0 && (0.0..=validate::MAX_DELAY_MINUTES).contains(&minutes) {
        return Ok((minutes as u64).into());
    }
    Number::from_f64(minutes).with_context(|| format!("--delay-minutes {minutes} is not a number"))
}

/// Refuses to replace a plan that is being run, or one not DONE without `--force`.
pub fn refuse_to_replace(store: &Store, existing: Result<State>, force: bool) -> Result<()> {
    let path = store.path().display();
    if let LeaseState::Held(holder) = Lease::probe(store)? {
        let pid = holder.map_or(String::new(), |h| format!(" (pid {})", h.pid));
        bail!("{path}: a runner{pid} is working on this plan; stop it with `seqctl cancel` (or wait) before replacing it");
    }
    match existing {
        Ok(old) if old.status == PlanStatus::Done => Ok(()),
        _ if force => Ok(()),
        Ok(old) => bail!(
            "{path}: holds a plan that is not DONE (at step {} of {}); nothing was written. \
             Use --force to replace it",
            old.current_step.saturating_add(1).min(old.step_queue.len() as u64),
            old.step_queue.len()
        ),
        Err(e) => bail!(
            "{path}: exists but is not a valid plan ({e:#}); nothing was written. Use --force to replace it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_become_numbered_ids_with_titles() {
        let state = build(&Init {
            steps: vec![
                "Research: find X, Y: and Z".into(),
                "Write: the paper".into(),
            ],
            delay_minutes: Some(2.0),
            ..Init::default()
        })
        .unwrap();
        assert_eq!(state.step_queue, ["step-1", "step-2"]);
        assert_eq!(
            state.plan.steps["step-1"].title.as_deref(),
            Some("Research")
        );
        assert_eq!(state.plan.steps["step-1"].instruction(), "find X, Y: and Z");
        assert_eq!(
            serde_json::to_value(&state).unwrap()["stepDelayMinutes"],
            json!(2)
        );
    }

    #[test]
    fn outputs_belong_to_the_step_given_before_them() {
        let state = build(&Init {
            steps: vec!["A: write a.md".into(), "B: write b.md and c.md".into()],
            outputs: vec![(1, "b.md, c.md".into())],
            ..Init::default()
        })
        .unwrap();
        assert_eq!(
            state.plan.steps["step-1"].required_outputs(),
            [] as [String; 0]
        );
        assert_eq!(
            state.plan.steps["step-2"].required_outputs(),
            ["b.md", "c.md"]
        );
        for outputs in [
            vec![(0, " , ".into())],
            vec![(0, "a".into()), (0, "b".into())],
        ] {
            assert!(build(&Init {
                steps: vec!["A: a".into()],
                outputs,
                ..Init::default()
            })
            .is_err());
        }
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_written() {
        for (steps, delay, want) in [
            (vec!["no colon here"], None, "title: instruction"),
            (vec!["T: "], None, "must be given"),
            (vec!["T: x"], Some(-1.0), "stepDelayMinutes"),
            (vec![], None, "nothing to plan"),
        ] {
            let e = build(&Init {
                steps: steps.into_iter().map(String::from).collect(),
                delay_minutes: delay,
                ..Init::default()
            })
            .unwrap_err();
            assert!(format!("{e:#}").contains(want), "{e:#}");
        }
    }
}
