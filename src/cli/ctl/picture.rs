//! Where a plan stands, derived purely from the state, the time and the run lease: the model
//! that `status` prints and `explain` puts into words.
//!
//! Nothing here reads a file or a clock. What is due is asked of `schedule::settle` itself, on
//! a copy, so the picture can never disagree with what the next heartbeat will do.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::schedule::{self, Limits, Next};
use crate::format::schema::{PlanStatus, State, StepStatus};
use crate::format::timefmt;
use crate::store::lease::{Holder, LeaseState};

use super::text;

/// The whole picture; also the `status --json` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Picture {
    /// `running`, `waiting`, `blocked`, `failed` (paused on a failed try, e.g. after
    /// `seqctl cancel`), `paused` or `success`.
    pub status: &'static str,
    pub done: usize,
    pub skipped: usize,
    pub total: usize,
    pub paused: bool,
    pub current_step: Option<String>,
    pub in_flight: Option<InFlight>,
    pub next: Option<NextRun>,
    /// The lease holder when it is not running a step (a runner sleeping through a delay).
    pub runner: Option<Holder>,
    pub blockers: Vec<Blocker>,
    pub steps: Vec<Row>,
    pub completed_results: Vec<Completed>,
    pub failed_step: Option<Failed>,
    pub artifacts: Vec<String>,
    pub last_heartbeat: Option<String>,
    /// Things a person should know that fit nowhere else.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    pub step: String,
    pub attempt: u32,
    pub since: Option<String>,
    pub elapsed_ms: Option<u64>,
    pub runner_pid: Option<u32>,
    pub agent_pgid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextRun {
    pub step: String,
    pub attempt: u32,
    pub due: String,
    #[serde(skip)]
    pub due_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    pub step: Option<String>,
    pub text: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub step: String,
    pub title: Option<String>,
    pub status: &'static str,
    pub tries: u32,
    /// When it started (in flight) or last finished.
    pub when: Option<String>,
    /// How long its last try took, or has taken so far.
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Completed {
    pub step: String,
    pub title: Option<String>,
    /// The tail of the step's stdout.
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub step: String,
    pub title: Option<String>,
    pub tries: u32,
    pub error: Option<String>,
}

/// Reads a plan and draws its picture now, for the read-only commands (`status`, `explain`).
pub fn look(
    path: &std::path::Path,
) -> anyhow::Result<(crate::store::Store, State, Picture, DateTime<Utc>)> {
    let store = super::existing(path)?;
    let state = store.read()?;
    let lease = crate::store::lease::Lease::probe(&store)?;
    let now = Utc::now();
    let picture = picture(&state, now, super::limits(), &lease);
    Ok((store, state, picture, now))
}

/// Builds the picture of `state` at `now` with the lease as probed.
#[must_use]
pub fn picture(state: &State, now: DateTime<Utc>, limits: Limits, lease: &LeaseState) -> Picture {
    let holder = match lease {
        LeaseState::Held(h) => h.clone(),
        LeaseState::Free => None,
    };
    let current = state.current_id().map(str::to_owned);
    let current_run = current.as_deref().map(|id| state.run_of(id));
    let in_progress = current_run
        .as_ref()
        .is_some_and(|r| r.status == StepStatus::InProgress);
    let mut notes = Vec::new();
    let in_flight = match (&current, &current_run) {
        (Some(step), Some(run)) if in_progress && lease.is_held() => {
            let since = run.started_iso.clone().or(run.last_run_iso.clone());
            Some(InFlight {
                step: step.clone(),
                attempt: run.tries,
                elapsed_ms: since
                    .as_deref()
                    .and_then(timefmt::parse)
                    .map(|t| text::between(t, now)),
                since,
                runner_pid: holder.as_ref().map(|h| h.pid),
                agent_pgid: holder.as_ref().and_then(|h| h.agent_pgid),
            })
        }
        (Some(step), Some(run)) if in_progress => {
            notes.push(format!(
                "step {step} try {} shows IN_PROGRESS but no runner holds the lease: it was \
                 interrupted, and the next heartbeat records it as a failed try",
                run.tries
            ));
            None
        }
        _ => None,
    };
    // What happens next, by the schedule's own rules (never while a try is in flight: it
    // would call that try interrupted).
    let next = if in_flight.is_some() {
        None
    } else {
        let mut copy = state.clone();
        Some(schedule::settle(&mut copy, now, limits, false).0)
    };
    let current_failed = current_run
        .as_ref()
        .is_some_and(|r| r.status == StepStatus::Failed);
    let status = status_word(state, next.as_ref(), current_failed);
    let next = match next {
        Some(Next::Run { step, attempt }) => Some(NextRun {
            step,
            attempt,
            due: timefmt::format(now),
            due_at: now,
        }),
        Some(Next::Wait { step, until }) => Some(NextRun {
            attempt: state.run_of(&step).tries.saturating_add(1),
            step,
            due: timefmt::format(until),
            due_at: until,
        }),
        _ => None,
    };
    let failed_step = match (status, &current, current_run) {
        ("blocked" | "failed", Some(step), Some(run)) => Some(Failed {
            step: step.clone(),
            title: title(state, step),
            tries: run.tries,
            error: run.error,
        }),
        _ => None,
    };
    let count = |s: StepStatus| {
        state
            .step_queue
            .iter()
            .filter(|id| state.run_of(id).status == s)
            .count()
    };
    Picture {
        status,
        done: count(StepStatus::Done),
        skipped: count(StepStatus::Skipped),
        total: state.step_queue.len(),
        paused: state.paused,
        runner: if in_flight.is_none() { holder } else { None },
        in_flight,
        next,
        blockers: blockers(state),
        steps: rows(state, now),
        completed_results: completed(state),
        failed_step,
        artifacts: state.artifacts().to_vec(),
        last_heartbeat: state.last_heartbeat_iso.clone(),
        current_step: current,
        notes,
    }
}

/// The one-word status, in the words sequential-workflow libraries use.
fn status_word(state: &State, next: Option<&Next>, current_failed: bool) -> &'static str {
    match next {
        _ if state.status == PlanStatus::Done => "success",
        None => "running",
        Some(Next::Finished) => "success",
        Some(Next::Blocked { .. }) => "blocked",
        Some(Next::Paused) if current_failed => "failed",
        Some(Next::Paused) => "paused",
        Some(Next::Wait { .. } | Next::Run { .. } | Next::Busy) => "waiting",
    }
}

fn title(state: &State, id: &str) -> Option<String> {
    state.plan.steps.get(id).and_then(|s| s.title.clone())
}

fn rows(state: &State, now: DateTime<Utc>) -> Vec<Row> {
    state
        .step_queue
        .iter()
        .map(|id| {
            let run = state.run_of(id);
            let running = run.status == StepStatus::InProgress;
            let when = if running {
                run.started_iso.clone().or(run.last_run_iso.clone())
            } else {
                run.finished_iso.clone().or(run.last_run_iso.clone())
            };
            let duration_ms = if running {
                when.as_deref()
                    .and_then(timefmt::parse)
                    .map(|t| text::between(t, now))
            } else {
                run.duration_ms
            };
            Row {
                step: id.clone(),
                title: title(state, id),
                status: run.status.as_str(),
                tries: run.tries,
                when,
                duration_ms,
                error: (run.status == StepStatus::Failed)
                    .then_some(run.error)
                    .flatten(),
            }
        })
        .collect()
}

/// Blocker lines, each once (the Python version appended one per heartbeat), with the error of
/// the step it names.
fn blockers(state: &State) -> Vec<Blocker> {
    let mut out: Vec<Blocker> = Vec::new();
    for line in state.blockers() {
        if out.iter().any(|b| &b.text == line) {
            continue;
        }
        let step = state
            .step_queue
            .iter()
            .find(|id| schedule::is_blocker_for(line, id))
            .cloned();
        out.push(Blocker {
            error: step.as_deref().and_then(|id| state.run_of(id).error),
            step,
            text: line.clone(),
        });
    }
    out
}

fn completed(state: &State) -> Vec<Completed> {
    state
        .step_queue
        .iter()
        .filter_map(|id| {
            let run = state.run_of(id);
            (run.status == StepStatus::Done).then(|| Completed {
                step: id.clone(),
                title: title(state, id),
                result: run.stdout.unwrap_or_default(),
            })
        })
        .collect()
}
