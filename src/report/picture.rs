//! Where a plan stands, derived purely from the state, the time and the run lease: the model
//! that `status` prints and `explain` puts into words.
//!
//! Nothing here reads a file or a clock. What is due is asked of the core's `settle` itself, on
//! a copy, so the picture can never disagree with what the next heartbeat will do.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::decide::NoIo;
use crate::core::model::is_blocker_for;
use crate::core::{settle, Context, Limits, Liveness, Next, Plan, TryState};
use crate::format::schema::StepStatus;
use crate::format::timefmt;
use crate::store::lease::{Holder, LeaseState};

use super::text;

/// The whole picture; also the `status --json` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Picture {
    /// `running`, `waiting`, `blocked`, `paused` (with `failed_step` when paused on a failed
    /// try, e.g. after `seqctl cancel`) or `success`.
    pub status: Status,
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
    /// The named agent running it (absent: `STEP_AGENT_CMD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
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
    pub status: StepStatus,
    pub tries: u32,
    /// When it started (in flight) or last finished.
    pub when: Option<String>,
    /// How long its last try took, or has taken so far.
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    /// The named agent of its last try (absent: `STEP_AGENT_CMD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
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

/// Builds the picture of `plan` at `now` with the lease as probed and who is alive for it.
#[must_use]
pub fn picture(
    plan: &Plan,
    now: DateTime<Utc>,
    limits: Limits,
    lease: &LeaseState,
    live: &Liveness,
) -> Picture {
    let holder = match lease {
        LeaseState::Held(h) => h.clone(),
        LeaseState::Free => None,
    };
    let current = plan.current();
    let running = current.and_then(|s| match s.run.state() {
        TryState::Running { attempt, since, .. } => Some((s, attempt, since)),
        _ => None,
    });
    let mut notes = Vec::new();
    let in_flight = match running {
        Some((step, attempt, since)) if live.alive(&step.id) => Some(InFlight {
            step: step.id.to_string(),
            attempt,
            since: step.run.started_text().map(str::to_owned),
            elapsed_ms: since.map(|t| text::between(t, now)),
            runner_pid: holder.as_ref().map(|h| h.pid),
            agent_pgid: holder.as_ref().and_then(|h| h.agent_pgid),
            agent: step.run.agent().map(str::to_owned),
        }),
        Some((step, attempt, _)) => {
            notes.push(format!(
                "step {} try {attempt} shows IN_PROGRESS but no runner holds the lease: it was \
                 interrupted, and the next heartbeat records it as a failed try",
                step.id
            ));
            None
        }
        None => None,
    };
    // What happens next, by the core's own rules (never while a try is in flight: it would
    // call that try interrupted), on a copy, so the picture cannot disagree with the heartbeat.
    let next = if in_flight.is_some() {
        None
    } else {
        let live = Liveness::free();
        let ctx = Context {
            now,
            live: &live,
            limits,
            io: &NoIo,
        };
        Some(settle(&mut plan.clone(), &ctx).1)
    };
    let current_failed = current.is_some_and(|s| matches!(s.run.state(), TryState::Failed { .. }));
    let status = Status::of(plan, next.as_ref());
    let next = match next {
        Some(Next::Run(launch)) => Some(NextRun {
            step: launch.step.to_string(),
            attempt: launch.attempt,
            due: timefmt::format(now),
            due_at: now,
        }),
        Some(Next::Wait {
            step,
            attempt,
            until,
        }) => Some(NextRun {
            step: step.to_string(),
            attempt,
            due: timefmt::format(until),
            due_at: until,
        }),
        _ => None,
    };
    // The step in the way: blocked, or failed before the plan was paused (a cancel).
    let in_the_way = status == Status::Blocked || (status == Status::Paused && current_failed);
    let failed_step = current.filter(|_| in_the_way).map(|step| Failed {
        step: step.id.to_string(),
        title: step.spec.title.clone(),
        tries: step.run.tries(),
        error: step.run.error().map(str::to_owned),
    });
    Picture {
        status,
        done: plan.count(StepStatus::Done),
        skipped: plan.count(StepStatus::Skipped),
        total: plan.steps().len(),
        paused: plan.is_paused(),
        runner: if in_flight.is_none() { holder } else { None },
        in_flight,
        next,
        blockers: blockers(plan),
        steps: rows(plan, now),
        completed_results: completed(plan),
        failed_step,
        artifacts: plan.artifacts().to_vec(),
        last_heartbeat: plan.last_heartbeat().map(str::to_owned),
        current_step: current.map(|s| s.id.to_string()),
        notes,
    }
}

/// Where the plan stands in one word, the words sequential-workflow libraries use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Waiting,
    Blocked,
    /// `seqctl pause`, or `seqctl cancel` (which pauses after the cancelled try).
    Paused,
    Success,
}

impl Status {
    /// The one place a decision becomes this word (`None`: a try is in flight).
    #[must_use]
    pub fn of(plan: &Plan, next: Option<&Next>) -> Self {
        match next {
            _ if plan.is_done() => Self::Success,
            None => Self::Running,
            Some(Next::Finished) => Self::Success,
            Some(Next::Blocked { .. }) => Self::Blocked,
            Some(Next::Paused) => Self::Paused,
            Some(Next::Wait { .. } | Next::Run(_) | Next::Busy) => Self::Waiting,
        }
    }
}

fn rows(plan: &Plan, now: DateTime<Utc>) -> Vec<Row> {
    plan.steps()
        .iter()
        .map(|step| {
            let run = &step.run;
            let running = matches!(run.state(), TryState::Running { .. });
            // A PENDING step has no try to show: its record may keep the times of tries a
            // person reset (`seqctl retry`), which are not this step's story any more.
            let pending = run.status() == StepStatus::Pending;
            let when = if running {
                run.started_text()
            } else if pending {
                None
            } else {
                run.ended_text()
            }
            .map(str::to_owned);
            let duration_ms = if pending {
                None
            } else if running {
                when.as_deref()
                    .and_then(timefmt::parse)
                    .map(|t| text::between(t, now))
            } else {
                run.duration_ms()
            };
            Row {
                step: step.id.to_string(),
                title: step.spec.title.clone(),
                status: run.status(),
                tries: run.tries(),
                when,
                duration_ms,
                error: matches!(run.state(), TryState::Failed { .. })
                    .then(|| run.error().map(str::to_owned))
                    .flatten(),
                agent: run.agent().map(str::to_owned),
            }
        })
        .collect()
}

/// Blocker lines, each once (the Python version appended one per heartbeat), with the error of
/// the step it names.
fn blockers(plan: &Plan) -> Vec<Blocker> {
    let mut out: Vec<Blocker> = Vec::new();
    for line in plan.blockers() {
        if out.iter().any(|b| &b.text == line) {
            continue;
        }
        let step = plan
            .steps()
            .iter()
            .find(|s| is_blocker_for(line, s.id.as_str()));
        out.push(Blocker {
            error: step.and_then(|s| s.run.error()).map(str::to_owned),
            step: step.map(|s| s.id.to_string()),
            text: line.clone(),
        });
    }
    out
}

fn completed(plan: &Plan) -> Vec<Completed> {
    plan.steps()
        .iter()
        .filter(|s| matches!(s.run.state(), TryState::Done { .. }))
        .map(|s| Completed {
            step: s.id.to_string(),
            title: s.spec.title.clone(),
            result: s.run.stdout().unwrap_or_default().to_owned(),
        })
        .collect()
}
