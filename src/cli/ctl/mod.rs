//! `seqctl`: the operator's commands, one file per command (or pair of opposites).
//!
//! Each command is a function from its arguments to an [`Output`]: the lines a person reads,
//! the JSON object a program reads, and the exit code. The binary only parses arguments and
//! prints. Commands that change the plan go through [`change`]: the state lock, a fresh load,
//! the change, one atomic save, then the events, exactly as the check and the runner do.

pub mod cancel;
pub mod doctor;
pub mod events;
pub mod explain;
pub mod init;
pub mod install_skill;
pub mod logs;
pub mod pause;
pub mod picture;
pub mod retry;
pub mod skip;
pub mod status;
pub mod text;
pub mod validate;

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::cli::config::Config;
use crate::core::schedule::Limits;
use crate::format::schema::State;
use crate::store::events::{By, Kind};
use crate::store::lease::{Lease, LeaseState};
use crate::store::Store;

/// What a command has to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// For people: printed as is (with a final newline).
    pub text: String,
    /// For programs: printed with `--json`.
    pub json: Value,
    pub code: u8,
}

impl Output {
    #[must_use]
    pub fn ok(text: String, json: Value) -> Self {
        Self {
            text,
            json,
            code: crate::cli::exit::OK,
        }
    }
}

/// The store of a state file that must exist.
pub fn existing(path: &Path) -> Result<Store> {
    Store::locate(path)?.with_context(|| {
        format!(
            "{}: no such state file (create one with `seqctl init`)",
            path.display()
        )
    })
}

/// The attempt limits as the check and the runner see them; a bad `STEP_MAX_RETRIES` is their
/// error to report, so a read-only view falls back to the default.
#[must_use]
pub fn limits() -> Limits {
    Config::from_env().map(|c| c.limits).unwrap_or_default()
}

/// One locked read-modify-write by a person: `apply` gets the fresh state and the run lease as
/// it is now, changes the state (or refuses, changing nothing) and names the events. The state
/// is saved only if it changed; the events are appended after the save, under the lock, so the
/// log orders them after every earlier writer's.
pub fn change<T>(
    store: &Store,
    apply: impl FnOnce(&mut State, &LeaseState) -> Result<(T, Vec<Kind>)>,
) -> Result<T> {
    let locked = store.lock()?;
    let mut state = locked.load()?;
    let before = state.clone();
    let lease = Lease::probe(store)?;
    let (result, news) = apply(&mut state, &lease)?;
    if state != before {
        locked.save(&state)?;
    }
    for kind in news {
        crate::store::events::emit(store, By::Seqctl, kind);
    }
    Ok(result)
}

/// The queue position of a step, or an error listing the steps there are.
pub fn position(state: &State, step: &str) -> Result<usize> {
    state
        .step_queue
        .iter()
        .position(|id| id == step)
        .with_context(|| {
            format!(
                "no step `{step}` in stepQueue (steps: {})",
                state.step_queue.join(", ")
            )
        })
}
