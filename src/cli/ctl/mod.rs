//! `seqctl`: the operator's commands, one file per command (or pair of opposites).
//!
//! Each command is a function from its arguments to an [`Output`]: the lines a person reads,
//! the JSON object a program reads, and the exit code. The binary only parses arguments and
//! prints. Commands that change the plan go through [`change`]: the state lock, a fresh load,
//! the core's `apply`, one atomic save, then the events, exactly as the check and the runner do.

pub mod cancel;
pub mod doctor;
pub mod edit;
pub mod events;
pub mod explain;
pub mod init;
pub mod install_skill;
pub mod logs;
pub mod pause;
pub mod plan;
pub mod prune;
pub mod result;
pub mod retry;
pub mod skip;
pub mod status;
pub mod validate;

use std::path::Path;

use anyhow::{Context as _, Result};
use chrono::Utc;
use serde_json::Value;

use super::config::Config;
use super::exit::Exit;
use super::live::seen_from_outside;
use super::reads::Reads;
use crate::core::{apply, Context, Event, Input, Plan};
use crate::format::validate as file_check;
use crate::report::picture::{picture, Picture};
use crate::store::events::{self as log, By};
use crate::store::lease::{Lease, LeaseState};
use crate::store::Store;

/// What a command has to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// For people: printed as is (with a final newline).
    pub text: String,
    /// For programs: printed with `--json`.
    pub json: Value,
    pub code: Exit,
}

impl Output {
    #[must_use]
    pub fn ok(text: String, json: Value) -> Self {
        Self {
            text,
            json,
            code: Exit::Ok,
        }
    }
}

/// The store of a state file that must exist.
pub fn existing(path: &Path) -> Result<Store> {
    Store::locate(path)?.with_context(|| {
        format!(
            "no plan at {}: no such state file (create one with `seqctl init`)",
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
        )
    })
}

/// What a change did: its events, the plan as saved, and who was alive for it.
pub struct Changed {
    pub events: Vec<Event>,
    pub plan: Plan,
    pub live: crate::core::Liveness,
}

/// One locked read-modify-write by a person: `input` is made from the fresh plan and the run
/// lease as it is now, and applied by the core (a refusal changes nothing). `applied` runs
/// under the lock after a successful apply, before the save. The state is saved only if
/// something happened; the events are appended after the save, under the lock, so the log
/// orders them after every earlier writer's.
pub fn change(
    store: &Store,
    input: impl FnOnce(&Plan, &LeaseState) -> Input,
    applied: impl FnOnce(&Plan, &[Event]),
) -> Result<Changed> {
    let locked = store.lock()?;
    let mut state = locked.load()?;
    let mut plan = Plan::take(&mut state);
    let lease = Lease::probe(store)?;
    let live = seen_from_outside(store, &plan, &lease).live;
    let ctx = Context {
        now: Utc::now(),
        live: &live,
        limits: Config::or_default().limits,
        io: &Reads { store },
    };
    let input = input(&plan, &lease);
    let events = apply(&mut plan, input, &ctx)?;
    applied(&plan, &events);
    let result = plan.clone();
    plan.put_back(&mut state);
    // Checked as a whole file is: a change that would make the plan invalid writes nothing.
    file_check::check(&state)
        .context("the plan would be invalid after this change; nothing was written")?;
    if !events.is_empty() {
        locked.save(&state)?;
    }
    log::emit(store, By::Seqctl, &events);
    Ok(Changed {
        events,
        plan: result,
        live,
    })
}

/// Reads a plan and draws its picture now, for the read-only commands (`status`, `explain`).
pub fn look(path: &Path) -> Result<(Store, Plan, Picture, chrono::DateTime<Utc>)> {
    let store = existing(path)?;
    let plan = Plan::of(&store.read()?);
    let lease = Lease::probe(&store)?;
    let live = seen_from_outside(&store, &plan, &lease).live;
    let now = Utc::now();
    let picture = picture(&plan, now, Config::or_default().limits, &lease, &live);
    Ok((store, plan, picture, now))
}
