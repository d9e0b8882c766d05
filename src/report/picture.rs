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
    /// The first try in flight (see `running` for all of them).
    pub in_flight: Option<InFlight>,
    /// Every try in flight (several with `maxParallel`).
    pub running: Vec<InFlight>,
    /// `plan.maxParallel`.
    pub max_parallel: usize,
    /// Whether the plan is more than a list (some step has `needs`, or tries run side by
    /// side): the views then show what waits for what.
    pub graph: bool,
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
    /// The steps it waits for that are not finished yet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waits_for: Vec<String>,
    /// Why the plan skipped it, or why an optional step ended for good.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A `forEach` step's items, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<ItemCount>,
}

/// How a `forEach` step's items stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ItemCount {
    pub total: usize,
    pub done: usize,
    pub running: usize,
    pub failed: usize,
    pub skipped: usize,
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
    let (running, notes) = in_flight(plan, now, holder.as_ref(), live);
    let in_flight = running.first().cloned();
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
        running,
        max_parallel: plan.max_parallel(),
        graph: !plan.graph().is_chain() || plan.max_parallel() > 1,
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

/// Every try in flight with someone alive for it, and a note for each that nothing runs.
fn in_flight(
    plan: &Plan,
    now: DateTime<Utc>,
    holder: Option<&Holder>,
    live: &Liveness,
) -> (Vec<InFlight>, Vec<String>) {
    let mut running = Vec::new();
    let mut notes = Vec::new();
    for step in plan.running() {
        let TryState::Running {
            attempt,
            since,
            runner,
        } = step.run.state()
        else {
            continue;
        };
        if !live.alive(&step.id) {
            notes.push(format!(
                "step {} try {attempt} shows IN_PROGRESS but nothing of it runs: it was \
                 interrupted, and the next heartbeat records it as a failed try",
                step.id
            ));
            continue;
        }
        let leased = holder.filter(|h| h.step.as_deref() == Some(step.id.as_str()));
        running.push(InFlight {
            step: step.id.to_string(),
            attempt,
            since: step.run.started_text().map(str::to_owned),
            elapsed_ms: since.map(|t| text::between(t, now)),
            runner_pid: runner.map(|r| r.pid).or(holder.map(|h| h.pid)),
            agent_pgid: leased.and_then(|h| h.agent_pgid),
            agent: step.run.agent().map(str::to_owned),
        });
    }
    (running, notes)
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
        .enumerate()
        .map(|(position, step)| {
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
                waits_for: waits_for(plan, position, now),
                reason: run.reason().map(str::to_owned),
                items: run.items().map(|_| count_items(plan, step.id.as_str())),
            }
        })
        .collect()
}

/// The steps the queued step at `position` waits for that are not over yet (none once it has
/// started).
fn waits_for(plan: &Plan, position: usize, _now: DateTime<Utc>) -> Vec<String> {
    let Some(step) = plan.steps().get(position) else {
        return Vec::new();
    };
    if plan.passed(position) || !matches!(step.run.state(), TryState::Pending { tries: 0 }) {
        return Vec::new();
    }
    plan.deps(position)
        .iter()
        .filter(|d| !plan.passed(**d))
        .filter_map(|d| plan.steps().get(*d))
        .map(|s| s.id.to_string())
        .collect()
}

fn count_items(plan: &Plan, id: &str) -> ItemCount {
    let mut count = ItemCount::default();
    for item in plan.items_of(id) {
        count.total += 1;
        match item.run.status() {
            StepStatus::Done => count.done += 1,
            StepStatus::Skipped => count.skipped += 1,
            StepStatus::InProgress => count.running += 1,
            StepStatus::Failed if item.run.finished() => count.failed += 1,
            StepStatus::Failed | StepStatus::Pending => {}
        }
    }
    count
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
