//! Every change a plan can undergo, as an input applied to it: what the runner reports (a try
//! started, an agent spawned, a try finished), what a heartbeat records, and what a person
//! asks (retry, skip, cancel, pause, resume). Each returns the events it caused, or a
//! [`Refusal`] that says why it cannot be done and changes nothing.
//!
//! The automatic changes [`decide`](super::decide::decide) asks for ([`Auto`]) live here too,
//! so that there is one place where a plan changes.

use std::fmt;

use chrono::TimeDelta;

use super::decide::Context;
use super::decide::CHANGED;
use super::event::{Ended, Event};
use super::model::{
    blocker_text, is_blocker_for, item_steps, AgentRef, Plan, Run, Step, StepId, StepSpec,
    TryOutcome, TryState,
};
use crate::format::schema::{RunnerId, StepStatus};
use crate::format::timefmt;

/// A heartbeat later than this after the previous one is a `heartbeat_gap` event: OpenClaw
/// beats every 30 minutes by default, so this is two missed beats.
pub const HEARTBEAT_GAP: TimeDelta = TimeDelta::hours(1);

/// A change `decide` found the plan needs before anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auto {
    /// Past the end of the queue: the plan is DONE.
    Finish,
    /// The step in hand is finished: move the cursor on.
    Advance,
    /// The step's try is IN_PROGRESS but nobody is alive for it.
    Interrupt(StepId),
    /// The step's try ended, but its runner could not record the result (why): it is taken
    /// back, as if it had not started; no failure of the step's.
    TakeBack(StepId, String),
    /// The step used all its tries: record its blocker.
    Block(StepId),
    /// A blocker line names a step that is not blocked (reset by hand, or finished): it goes,
    /// so that the blockers and the steps never disagree.
    Unblock(StepId),
    /// The steps as they are become the validated ones (`planHash`): no hash was recorded,
    /// or the plan has not started.
    Rehash,
    /// The steps were changed outside `seqctl` under a live run: the plan stops for a person.
    Changed,
    /// An optional step used all its tries: it ends FAILED for good, and the plan goes on.
    GiveUp(StepId),
    /// The step's `when` is false (why): it is SKIPPED.
    SkipIf(StepId, String),
    /// A `forEach` step's items, or why they could not be made (a failed try of the step).
    Expand(StepId, Result<Vec<String>, String>),
    /// A `forEach` step whose items are all over: it is DONE.
    Complete(StepId),
}

/// A change from outside the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A heartbeat looked at the plan.
    Beat,
    /// A heartbeat told a person of the standing blocker (`seq-check --no-reply`), so the
    /// next ones stay quiet about it for a day.
    BlockerReported,
    /// The runner marks a try started (before its agent runs).
    Started {
        step: StepId,
        attempt: u32,
        agent: AgentRef,
        /// The runner itself, so that the try's liveness can be told without the sidecar.
        runner: Option<RunnerId>,
        log_file: Option<String>,
    },
    /// The try's agent is running, in this process group.
    Spawned {
        step: StepId,
        attempt: u32,
        agent_pid: u32,
    },
    /// The try ended, judged.
    Finished {
        step: StepId,
        attempt: u32,
        outcome: TryOutcome,
    },
    /// The runner stopped the try because it was told to stop (a signal): the try is taken
    /// back, not counted against the retry limit (a kill or crash, which it cannot see,
    /// still counts).
    Stopped {
        step: StepId,
        attempt: u32,
        outcome: TryOutcome,
    },
    /// A person gives a step a fresh set of tries, with an optional note for the next prompt.
    Retry {
        step: StepId,
        note: Option<String>,
    },
    /// A person passes a step over.
    Skip {
        step: StepId,
    },
    /// A person stops the tries in flight (or only `step`'s); `by` says who, `agent_pgid`
    /// what will be signalled.
    Cancel {
        by: String,
        agent_pgid: Option<u32>,
        step: Option<StepId>,
    },
    Pause,
    Resume,
    /// A person (or an agent, through `seqctl`) adds a step, after `after` (at the end if
    /// none).
    AddStep {
        id: StepId,
        spec: StepSpec,
        after: Option<StepId>,
    },
    /// A step's spec changes; fields left `None` stay as they are.
    EditStep {
        id: StepId,
        edit: StepEdit,
    },
    /// A step goes from the plan, its record with it.
    RemoveStep {
        id: StepId,
    },
}

/// What `Input::EditStep` changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepEdit {
    pub title: Option<String>,
    pub instruction: Option<String>,
    pub required_outputs: Option<Vec<String>>,
    pub max_tries: Option<u32>,
    pub timeout: Option<std::time::Duration>,
    /// The steps it waits for (empty: none).
    pub needs: Option<Vec<StepId>>,
}

/// Why an input cannot be applied. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoSuchStep {
        step: StepId,
        steps: Vec<StepId>,
    },
    NotReached {
        step: StepId,
        at: Option<StepId>,
    },
    InFlight {
        step: StepId,
        attempt: u32,
    },
    PlanDone {
        nothing_to: &'static str,
    },
    AlreadyDone {
        step: StepId,
    },
    NothingInFlight,
    AlreadyStopped {
        step: StepId,
    },
    NotDue {
        step: StepId,
        attempt: u32,
    },
    StepExists {
        step: StepId,
    },
    /// Inserting it there would put it behind the step in hand, where it never runs.
    BehindCursor {
        step: StepId,
        at: StepId,
    },
    /// Retrying it would move the plan back under the try in flight.
    BehindInFlight {
        step: StepId,
        running: StepId,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NoSuchStep { step, steps } => {
                let steps: Vec<&str> = steps.iter().map(StepId::as_str).collect();
                // `each[3]` of a queued step: an item not made (yet), not a misspelt step.
                let parent = step
                    .as_str()
                    .strip_suffix(']')
                    .and_then(|s| s.rsplit_once('['))
                    .filter(|(_, n)| n.parse::<usize>().is_ok())
                    .map(|(parent, _)| parent)
                    .filter(|parent| steps.contains(parent));
                match parent {
                    Some(parent) => write!(
                        f,
                        "no item `{step}`: step {parent} has not made its items yet, or has \
                         fewer (they are made when it starts; `seqctl status` counts them)"
                    ),
                    None => write!(
                        f,
                        "no step `{step}` in stepQueue (steps: {})",
                        steps.join(", ")
                    ),
                }
            }
            Self::NotReached { step, at } => write!(
                f,
                "step {step} is not reached yet (the plan is at {}); it runs in its turn",
                at.as_ref().map_or("the end", StepId::as_str)
            ),
            Self::InFlight { step, attempt } => write!(
                f,
                "step {step} try {attempt} is in flight; stop it with `seqctl cancel` first"
            ),
            Self::PlanDone { nothing_to } => {
                write!(f, "the plan is DONE; there is nothing {nothing_to}")
            }
            Self::AlreadyDone { step } => write!(f, "step {step} is already DONE"),
            Self::NothingInFlight => {
                f.write_str("nothing is in flight; `seqctl pause` stops new tries from starting")
            }
            Self::AlreadyStopped { step } => write!(
                f,
                "step {step} shows IN_PROGRESS but no runner holds the lease: it already \
                 stopped, and the next heartbeat records it as interrupted"
            ),
            Self::NotDue { step, attempt } => {
                write!(f, "step {step} try {attempt} is not the try that is due")
            }
            Self::StepExists { step } => write!(f, "the plan has a step `{step}` already"),
            Self::BehindCursor { step, at } => write!(
                f,
                "step {step} would come before {at}, the step in hand, and so never run; add it \
                 after {at} or later"
            ),
            Self::BehindInFlight { step, running } => write!(
                f,
                "step {step} comes before {running}, whose try is in flight: retrying it now would \
                 move the plan back under a running agent; wait for it, or `seqctl cancel` it first"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Applies an input; the events it caused, or why it cannot be applied (changing nothing).
pub fn apply(plan: &mut Plan, input: Input, ctx: &Context) -> Result<Vec<Event>, Refusal> {
    let now = ctx.now;
    match input {
        Input::Beat => Ok(beat(plan, ctx)),
        Input::BlockerReported => {
            plan.blocker_reported_iso = Some(timefmt::format(now));
            Ok(Vec::new())
        }
        Input::Started {
            step,
            attempt,
            agent,
            runner,
            log_file,
        } => {
            let run = &mut found(plan, &step)?.run;
            let due = matches!(
                run.state(),
                TryState::Pending { .. } | TryState::Failed { .. }
            ) && run.tries().saturating_add(1) == attempt;
            if !due {
                return Err(Refusal::NotDue { step, attempt });
            }
            run.start(now, runner, &agent, log_file);
            Ok(Vec::new())
        }
        Input::Spawned {
            step,
            attempt,
            agent_pid,
        } => {
            let agent = plan
                .step(step.as_str())
                .and_then(|s| s.run.agent().map(str::to_owned));
            Ok(vec![Event::StepStarted {
                step,
                attempt,
                agent_pid,
                agent,
            }])
        }
        Input::Finished {
            step,
            attempt,
            outcome,
        } => Ok(finished(plan, step, attempt, &outcome, ctx)),
        Input::Stopped {
            step,
            attempt,
            outcome,
        } => Ok(vec![stopped(plan, step, attempt, &outcome, ctx)]),
        Input::Retry { step, note } => retry(plan, step, note, ctx),
        Input::Skip { step } => skip(plan, step, ctx),
        Input::Cancel {
            by,
            agent_pgid,
            step,
        } => cancel(plan, &by, agent_pgid, step.as_ref(), ctx),
        Input::AddStep { id, spec, after } => add_step(plan, id, spec, after.as_ref()),
        Input::EditStep { id, edit } => edit_step(plan, &id, edit, ctx),
        Input::RemoveStep { id } => remove_step(plan, &id, ctx),
        Input::Pause if plan.done => Err(Refusal::PlanDone {
            nothing_to: "to pause",
        }),
        Input::Pause | Input::Resume => {
            let pause = input == Input::Pause;
            let mut events = Vec::new();
            if !pause && plan.changed() == Some(true) {
                // A person resumes a plan whose steps were changed by other means: the steps
                // as they are now are the ones to run.
                plan.hash_recorded = Some(plan.hash_now().to_owned());
                if let Some(blockers) = plan.blockers.as_mut() {
                    blockers.retain(|line| !is_blocker_for(line, CHANGED));
                }
                events.push(Event::PlanAccepted);
            }
            if plan.paused != pause {
                plan.paused = pause;
                events.push(if pause { Event::Paused } else { Event::Resumed });
            }
            Ok(events)
        }
    }
}

/// Applies a change `decide` asked for. Always possible: `decide` asks only for what the plan
/// as it is allows.
pub fn automatic(plan: &mut Plan, auto: &Auto, ctx: &Context) -> Vec<Event> {
    match auto {
        Auto::Finish => {
            plan.done = true;
            plan.finish_reported = false;
            plan.finished_iso = Some(timefmt::format(ctx.now));
            vec![Event::PlanDone]
        }
        Auto::Advance => {
            let step = plan.current().map(|s| s.id.clone());
            plan.cursor += 1;
            step.map(|step| Event::Advanced { step })
                .into_iter()
                .collect()
        }
        Auto::Interrupt(id) => {
            let Some(step) = plan.step_mut(id.as_str()) else {
                return Vec::new();
            };
            let attempt = step.run.tries();
            step.run.fail(
                ctx.now,
                format!(
                    "interrupted: try {attempt} was still running when its runner stopped \
                     (killed, crashed or the machine restarted)"
                ),
                false,
            );
            vec![Event::Interrupted {
                step: id.clone(),
                attempt,
            }]
        }
        Auto::TakeBack(id, why) => {
            let Some(step) = plan.step_mut(id.as_str()) else {
                return Vec::new();
            };
            let attempt = step.run.tries();
            step.run.uncount(ctx.now);
            vec![Event::ResultLost {
                step: id.clone(),
                attempt,
                error: why.clone(),
            }]
        }
        Auto::Block(id) => {
            let Some(step) = plan.step(id.as_str()) else {
                return Vec::new();
            };
            let (tries, line) = (
                step.run.tries(),
                blocker_text(id, step.max_tries(ctx.limits.max_tries)),
            );
            let blockers = plan.blockers.get_or_insert_with(Vec::new);
            if blockers.iter().any(|l| is_blocker_for(l, id.as_str())) {
                return Vec::new();
            }
            blockers.push(line);
            vec![Event::Blocked {
                step: id.clone(),
                tries,
            }]
        }
        Auto::Unblock(id) => {
            if let Some(blockers) = plan.blockers.as_mut() {
                blockers.retain(|line| !is_blocker_for(line, id.as_str()));
            }
            Vec::new()
        }
        Auto::Rehash => {
            plan.hash_recorded = Some(plan.hash_now().to_owned());
            Vec::new()
        }
        Auto::Changed => {
            let line = format!(
                "{CHANGED}: the steps were changed outside seqctl while the plan ran; check them \
                 (seqctl validate), then `seqctl resume` runs the plan as it is now"
            );
            plan.blockers.get_or_insert_with(Vec::new).push(line);
            plan.paused = true;
            vec![Event::PlanChanged]
        }
        Auto::GiveUp(_) | Auto::SkipIf(..) | Auto::Expand(..) | Auto::Complete(_) => {
            flow(plan, auto, ctx)
        }
    }
}

/// The automatic changes of the workflow constructs: `optional`, `when`, `forEach`.
fn flow(plan: &mut Plan, auto: &Auto, ctx: &Context) -> Vec<Event> {
    match auto {
        Auto::GiveUp(id) => {
            let Some(step) = plan.step_mut(id.as_str()) else {
                return Vec::new();
            };
            let tries = step.run.tries();
            step.run.give_up(format!(
                "optional: gave up after {tries} {}; the plan goes on without it",
                if tries == 1 { "try" } else { "tries" }
            ));
            vec![Event::GaveUp {
                step: id.clone(),
                tries,
            }]
        }
        Auto::SkipIf(id, why) => {
            let Some(step) = plan.step_mut(id.as_str()) else {
                return Vec::new();
            };
            step.run.skip_because(ctx.now, why.clone());
            vec![Event::Skipped {
                step: id.clone(),
                reason: Some(why.clone()),
            }]
        }
        Auto::Expand(id, Ok(items)) => {
            let count = items.len();
            let Some(step) = plan.step_mut(id.as_str()) else {
                return Vec::new();
            };
            step.run.expand(ctx.now, items.clone());
            let list = item_steps(id, &step.run, &step.spec, |_| Run::default());
            plan.items.insert(id.clone(), list);
            vec![Event::Expanded {
                step: id.clone(),
                items: count,
            }]
        }
        Auto::Expand(id, Err(why)) => {
            let Some(step) = plan.step_mut(id.as_str()) else {
                return Vec::new();
            };
            // A try of the step's own, so the retry limit and the delay apply to it.
            step.run.start(ctx.now, None, &AgentRef::Default, None);
            step.run.fail(ctx.now, why.clone(), false);
            vec![Event::StepFinished {
                step: id.clone(),
                attempt: step.run.tries(),
                status: Ended::Failed,
                exit_code: None,
                signal: None,
                duration_ms: 0,
                error: Some(why.clone()),
                recorded: true,
                stopped: None,
            }]
        }
        Auto::Complete(id) => {
            let (mut done, mut failed, mut skipped) = (0, 0, 0);
            for item in plan.items_of(id.as_str()) {
                match item.run.status() {
                    StepStatus::Done => done += 1,
                    StepStatus::Skipped => skipped += 1,
                    _ => failed += 1,
                }
            }
            if let Some(step) = plan.step_mut(id.as_str()) {
                step.run.complete(ctx.now);
            }
            vec![Event::ItemsDone {
                step: id.clone(),
                done,
                failed,
                skipped,
            }]
        }
        _ => Vec::new(),
    }
}

/// The queued step named `id`, or a refusal listing the steps there are.
pub fn find<'p>(plan: &'p Plan, id: &str) -> Result<&'p Step, Refusal> {
    plan.step(id).ok_or_else(|| Refusal::NoSuchStep {
        step: id.into(),
        steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
    })
}

/// [`find`], for a step of the queue (not an item of a `forEach` step, which is edited and
/// removed with its step).
fn find_queued<'p>(plan: &'p Plan, id: &str) -> Result<&'p Step, Refusal> {
    match find(plan, id)? {
        step if step.item.is_none() => Ok(step),
        _ => Err(Refusal::NoSuchStep {
            step: id.into(),
            steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
        }),
    }
}

/// [`find`], for a change.
fn found<'p>(plan: &'p mut Plan, step: &StepId) -> Result<&'p mut Step, Refusal> {
    find(plan, step.as_str())?;
    Ok(plan.step_mut(step.as_str()).expect("just found"))
}

/// Records the heartbeat. A finished plan is only stamped by the first heartbeat after it
/// finished (so that one reports it, and later ones stay quiet and write nothing).
fn beat(plan: &mut Plan, ctx: &Context) -> Vec<Event> {
    let stamp = Some(timefmt::format(ctx.now));
    if plan.done {
        if plan.finish_unreported(ctx.now) {
            plan.last_heartbeat_iso = stamp;
            plan.finish_reported = true;
        }
        return Vec::new();
    }
    let gap = plan
        .last_heartbeat_iso
        .as_deref()
        .and_then(|text| Some((text, ctx.now - timefmt::parse(text)?)))
        .filter(|(_, gap)| *gap > HEARTBEAT_GAP)
        .map(|(text, gap)| Event::HeartbeatGap {
            previous: text.to_owned(),
            gap_seconds: gap.num_seconds(),
        });
    plan.last_heartbeat_iso = stamp;
    gap.into_iter().collect()
}

/// Records a finished try, if the plan still shows it in flight; a person who skipped or
/// cancelled it meanwhile has the last word, and the result is then not recorded.
fn finished(
    plan: &mut Plan,
    step: StepId,
    attempt: u32,
    outcome: &TryOutcome,
    ctx: &Context,
) -> Vec<Event> {
    let in_flight = plan.step(step.as_str()).is_some_and(
        |s| matches!(s.run.state(), TryState::Running { attempt: a, .. } if a == attempt),
    );
    let mut more = None;
    if in_flight {
        if let Some(s) = plan.step_mut(step.as_str()) {
            s.run.finish(ctx.now, outcome);
            // A `repeat` step whose result did not pass `until`: again, if it has runs left.
            if let (Ok(_), Some(why), Some(repeat)) =
                (&outcome.verdict, &outcome.again, &s.spec.repeat)
            {
                let round = s.run.round();
                more = Some(if round < repeat.max {
                    s.run.next_round(why.clone());
                    Event::Repeated {
                        step: step.clone(),
                        round: round + 1,
                        reason: why.clone(),
                    }
                } else {
                    Event::RepeatsUsed {
                        step: step.clone(),
                        rounds: round,
                        reason: why.clone(),
                    }
                });
            }
        }
        if let Ok(produced) = &outcome.verdict {
            let artifacts = plan.artifacts.get_or_insert_with(Vec::new);
            for path in produced {
                if !artifacts.contains(path) {
                    artifacts.push(path.clone());
                }
            }
        }
    }
    let ended = Event::StepFinished {
        step,
        attempt,
        status: if outcome.verdict.is_ok() {
            Ended::Done
        } else {
            Ended::Failed
        },
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        duration_ms: outcome.duration_ms,
        error: outcome.verdict.as_ref().err().cloned(),
        recorded: in_flight,
        stopped: outcome.stopped,
    };
    std::iter::once(ended).chain(more).collect()
}

/// Takes back a try its runner stopped on a signal, if the plan still shows it in flight.
fn stopped(
    plan: &mut Plan,
    step: StepId,
    attempt: u32,
    outcome: &TryOutcome,
    ctx: &Context,
) -> Event {
    let in_flight = plan.step(step.as_str()).is_some_and(
        |s| matches!(s.run.state(), TryState::Running { attempt: a, .. } if a == attempt),
    );
    if in_flight {
        if let Some(s) = plan.step_mut(step.as_str()) {
            s.run.uncount(ctx.now);
        }
    }
    Event::StepFinished {
        step,
        attempt,
        status: Ended::Stopped,
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        duration_ms: outcome.duration_ms,
        error: outcome.verdict.as_ref().err().cloned(),
        recorded: in_flight,
        stopped: outcome.stopped,
    }
}

/// Whether the step's try is in flight with someone alive for it.
fn in_flight(plan: &Plan, step: &StepId, ctx: &Context) -> Option<Refusal> {
    // A `forEach` step is in flight while any of its items is.
    let own = plan.step(step.as_str()).into_iter();
    own.chain(plan.items_of(step.as_str()))
        .find_map(|s| match s.run.state() {
            TryState::Running { attempt, .. } if ctx.live.alive(&s.id) => Some(Refusal::InFlight {
                step: s.id.clone(),
                attempt,
            }),
            _ => None,
        })
}

/// A fresh set of tries: the blocker goes, the tries and error are reset, the note is kept
/// for the next prompt, and the cursor moves back to the step if it was an earlier one (the
/// DONE steps after it are then passed over again, not re-run). A step that never ran is not
/// reached yet; one that a running try waits for cannot be reset under it. A `forEach` step
/// gets its items made afresh; an item of one is retried alone.
fn retry(
    plan: &mut Plan,
    step: StepId,
    note: Option<String>,
    ctx: &Context,
) -> Result<Vec<Event>, Refusal> {
    let target = found(plan, &step)?;
    let never_ran = target.run.tries() == 0
        && target.run.status() == StepStatus::Pending
        && target.run.items().is_none();
    let parent = target.item.as_ref().map(|i| i.parent().clone());
    let index = plan.position(step.as_str()).expect("found");
    if never_ran && !plan.done && (index > plan.cursor || parent.is_some()) {
        return Err(Refusal::NotReached {
            step,
            at: plan.current().map(|s| s.id.clone()),
        });
    }
    if let Some(refusal) = in_flight(plan, &step, ctx) {
        return Err(refusal);
    }
    // A running try of a step that waits for this one (in a plain list, any later step).
    let graph = plan.graph();
    if let Some(running) = plan.units().find(|s| {
        let at = plan.position(s.id.as_str()).unwrap_or(0);
        matches!(s.run.state(), TryState::Running { .. })
            && ctx.live.alive(&s.id)
            && graph.runs_before(index, at)
    }) {
        return Err(Refusal::BehindInFlight {
            step,
            running: running.id.clone(),
        });
    }
    let run = &mut plan.step_mut(step.as_str()).expect("found").run;
    let previous_tries = run.tries();
    run.reset(note.clone());
    if parent.is_none() {
        // Its items (if it had) are made afresh; their records go.
        if let Some(items) = plan.items.remove(&step) {
            plan.reshaped
                .removed
                .extend(items.into_iter().map(|i| i.id));
        }
    }
    if let Some(parent) = &parent {
        // The item's step is not done while the item runs again.
        if let Some(p) = plan.step_mut(parent.as_str()) {
            p.run.reopen();
        }
    }
    if let Some(blockers) = plan.blockers.as_mut() {
        blockers.retain(|line| !is_blocker_for(line, step.as_str()));
    }
    plan.cursor = plan.cursor.min(index);
    plan.done = false;
    plan.finish_reported = false;
    Ok(vec![Event::Retried {
        step,
        previous_tries,
        note,
    }])
}

/// Passes a step over: SKIPPED counts as finished, and its blocker goes. A later step can be
/// skipped ahead of time; one in flight must be cancelled first.
fn skip(plan: &mut Plan, step: StepId, ctx: &Context) -> Result<Vec<Event>, Refusal> {
    found(plan, &step)?;
    if plan.done {
        return Err(Refusal::PlanDone {
            nothing_to: "left to skip",
        });
    }
    match plan.step(step.as_str()).map(|s| s.run.state()) {
        Some(TryState::Done { .. }) => return Err(Refusal::AlreadyDone { step }),
        Some(TryState::Skipped { .. }) => return Ok(Vec::new()),
        _ => {}
    }
    if let Some(refusal) = in_flight(plan, &step, ctx) {
        return Err(refusal);
    }
    found(plan, &step)?.run.skip();
    if let Some(blockers) = plan.blockers.as_mut() {
        blockers.retain(|line| !is_blocker_for(line, step.as_str()));
    }
    Ok(vec![Event::Skipped { step, reason: None }])
}

/// Adds a step after `after` (at the end if none). A finished plan opens again at it; one still
/// running takes it only at or after the step in hand (before it, it would never run).
fn add_step(
    plan: &mut Plan,
    id: StepId,
    spec: StepSpec,
    after: Option<&StepId>,
) -> Result<Vec<Event>, Refusal> {
    if plan.step(id.as_str()).is_some() {
        return Err(Refusal::StepExists { step: id });
    }
    let at = match after {
        Some(after) => {
            find(plan, after.as_str()).map(|_| plan.position(after.as_str()).expect("found") + 1)?
        }
        None => plan.steps.len(),
    };
    if plan.done {
        plan.done = false;
        plan.finish_reported = false;
        plan.cursor = at;
    } else if at <= plan.cursor && at < plan.steps.len() {
        return Err(Refusal::BehindCursor {
            step: id,
            at: plan.steps[plan.cursor.min(plan.steps.len() - 1)].id.clone(),
        });
    } else if at <= plan.cursor {
        plan.cursor = at; // past the end, and appended: the new step is the one in hand
    }
    plan.steps.insert(
        at,
        Step {
            id: id.clone(),
            spec: spec.into(),
            run: Run::default(),
            item: None,
        },
    );
    plan.reindex();
    plan.reshaped.changed = true;
    Ok(vec![Event::StepAdded { step: id }])
}

/// Changes a step's spec, unless its try is in flight (the agent runs with the old one).
fn edit_step(
    plan: &mut Plan,
    id: &StepId,
    edit: StepEdit,
    ctx: &Context,
) -> Result<Vec<Event>, Refusal> {
    find_queued(plan, id.as_str())?;
    if let Some(refusal) = in_flight(plan, id, ctx) {
        return Err(refusal);
    }
    let spec = std::sync::Arc::make_mut(&mut plan.step_mut(id.as_str()).expect("found").spec);
    if let Some(title) = edit.title {
        spec.title = Some(title);
    }
    if let Some(instruction) = edit.instruction {
        spec.instruction = instruction;
    }
    if let Some(outputs) = edit.required_outputs {
        spec.required_outputs = outputs;
    }
    if let Some(max) = edit.max_tries {
        spec.max_tries = Some(max);
    }
    if let Some(timeout) = edit.timeout {
        spec.timeout = Some(timeout);
    }
    if let Some(needs) = edit.needs {
        spec.needs = Some(needs);
        plan.reindex();
    }
    plan.reshaped.changed = true;
    Ok(vec![Event::StepEdited { step: id.clone() }])
}

/// Removes a step, its record and its blocker, unless its try is in flight; the cursor keeps
/// pointing at the same step in hand.
fn remove_step(plan: &mut Plan, id: &StepId, ctx: &Context) -> Result<Vec<Event>, Refusal> {
    find_queued(plan, id.as_str())?;
    if let Some(refusal) = in_flight(plan, id, ctx) {
        return Err(refusal);
    }
    let index = plan.position(id.as_str()).expect("found");
    plan.steps.remove(index);
    if let Some(items) = plan.items.remove(id) {
        plan.reshaped
            .removed
            .extend(items.into_iter().map(|i| i.id));
    }
    plan.reindex();
    if index < plan.cursor {
        plan.cursor -= 1;
    }
    if let Some(blockers) = plan.blockers.as_mut() {
        blockers.retain(|line| !is_blocker_for(line, id.as_str()));
    }
    plan.reshaped.removed.push(id.clone());
    plan.reshaped.changed = true;
    Ok(vec![Event::StepRemoved { step: id.clone() }])
}

/// Stops the try in flight: recorded FAILED with who cancelled it, and the plan paused so
/// nothing starts again behind the person's back.
fn cancel(
    plan: &mut Plan,
    by: &str,
    agent_pgid: Option<u32>,
    only: Option<&StepId>,
    ctx: &Context,
) -> Result<Vec<Event>, Refusal> {
    if let Some(id) = only {
        find(plan, id.as_str())?;
    }
    let running: Vec<StepId> = plan
        .running()
        .filter(|s| only.is_none_or(|id| s.id == *id))
        .map(|s| s.id.clone())
        .collect();
    let Some(first) = running.first().cloned() else {
        return Err(Refusal::NothingInFlight);
    };
    let alive: Vec<StepId> = running
        .into_iter()
        .filter(|id| ctx.live.alive(id))
        .collect();
    if alive.is_empty() {
        return Err(Refusal::AlreadyStopped { step: first });
    }
    let stamp = timefmt::format(ctx.now);
    let mut events = Vec::with_capacity(alive.len());
    // Every try in flight (with `maxParallel`, there may be several), each recorded FAILED.
    for (n, id) in alive.into_iter().enumerate() {
        let Some(step) = plan.step_mut(id.as_str()) else {
            continue;
        };
        let attempt = step.run.tries();
        step.run
            .fail(ctx.now, format!("cancelled by {by} at {stamp}"), true);
        if only.is_some() {
            // One step of a plan that goes on: it waits for a person (`seqctl retry` or
            // `skip`) as a blocker, and the other steps run meanwhile.
            let line = format!("{id}: try {attempt} cancelled by {by}; it waits for a person");
            plan.blockers.get_or_insert_with(Vec::new).push(line);
        }
        events.push(Event::Cancelled {
            step: id,
            attempt,
            agent_pgid: agent_pgid.filter(|_| n == 0),
        });
    }
    if only.is_none() {
        plan.paused = true;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::decide::Liveness;
    use crate::core::testing::{at, ctx, plan, state, t, NOW};

    fn outcome(verdict: Result<Vec<String>, String>) -> TryOutcome {
        TryOutcome {
            verdict,
            stdout_tail: "ok".into(),
            exit_code: Some(0),
            signal: None,
            duration_ms: 5,
            stopped: None,
            again: None,
        }
    }

    fn started(p: &mut Plan, step: &str, attempt: u32) -> Result<Vec<Event>, Refusal> {
        let input = Input::Started {
            step: step.into(),
            attempt,
            agent: AgentRef::Default,
            runner: None,
            log_file: Some(format!("logs/{step}.{attempt}.log")),
        };
        apply(p, input, &ctx(&Liveness::free()))
    }

    #[test]
    fn a_try_starts_only_when_due_and_its_result_lands_only_on_the_try_in_flight() {
        let free = Liveness::free();
        let mut p = plan("0", "");
        assert_eq!(
            started(&mut p, "a", 2),
            Err(Refusal::NotDue {
                step: "a".into(),
                attempt: 2
            })
        );
        assert_eq!(started(&mut p, "a", 1), Ok(vec![]));
        assert_eq!(
            started(&mut p, "a", 2),
            Err(Refusal::NotDue {
                step: "a".into(),
                attempt: 2
            }),
            "in flight"
        );
        assert!(
            matches!(p.step("a").unwrap().run.state(), TryState::Running { attempt: 1, since: Some(s), .. } if s == t(NOW))
        );
        let spawned = Input::Spawned {
            step: "a".into(),
            attempt: 1,
            agent_pid: 42,
        };
        assert_eq!(
            apply(&mut p, spawned, &ctx(&free)),
            Ok(vec![Event::StepStarted {
                step: "a".into(),
                attempt: 1,
                agent_pid: 42,
                agent: None,
            }])
        );
        let done = |attempt| Input::Finished {
            step: "a".into(),
            attempt,
            outcome: outcome(Ok(vec!["out.md".into()])),
        };
        let events = apply(&mut p, done(2), &ctx(&free)).unwrap();
        assert!(
            matches!(
                events[..],
                [Event::StepFinished {
                    recorded: false,
                    ..
                }]
            ),
            "wrong attempt"
        );
        let events = apply(&mut p, done(1), &at("2026-03-01T10:00:05Z", &free)).unwrap();
        assert!(matches!(
            events[..],
            [Event::StepFinished {
                status: Ended::Done,
                recorded: true,
                duration_ms: 5,
                ..
            }]
        ));
        assert!(
            matches!(
                p.step("a").unwrap().run.state(),
                TryState::Done { attempt: 1 }
            ) && p.step("a").unwrap().run.ended_at() == Some(t("2026-03-01T10:00:05Z"))
        );
        assert_eq!(p.artifacts(), ["out.md"]);
        let events = apply(&mut p, done(1), &ctx(&free)).unwrap();
        assert!(
            matches!(
                events[..],
                [Event::StepFinished {
                    recorded: false,
                    ..
                }]
            ),
            "already recorded"
        );
        assert_eq!(p.artifacts(), ["out.md"], "artifacts once each");
        // A failure keeps its error for the troubleshoot prompt.
        started(&mut p, "b", 1).unwrap();
        let failed = Input::Finished {
            step: "b".into(),
            attempt: 1,
            outcome: outcome(Err("exit code 3: no".into())),
        };
        let events = apply(&mut p, failed, &ctx(&free)).unwrap();
        assert!(
            matches!(&events[..], [Event::StepFinished { status: Ended::Failed, error: Some(e), .. }] if e == "exit code 3: no")
        );
        assert!(matches!(
            p.step("b").unwrap().run.state(),
            TryState::Failed {
                error: "exit code 3: no",
                ..
            }
        ));
    }

    #[test]
    fn a_heartbeat_is_stamped_and_a_long_silence_noted() {
        let free = Liveness::free();
        let mut p = Plan::of(&state(
            "0",
            "",
            r#","lastHeartbeatIso":"2026-03-01T08:00:00Z""#,
        ));
        let events = apply(&mut p, Input::Beat, &ctx(&free)).unwrap();
        assert_eq!(
            events,
            [Event::HeartbeatGap {
                previous: "2026-03-01T08:00:00Z".into(),
                gap_seconds: 7200
            }]
        );
        assert_eq!(p.last_heartbeat(), Some("2026-03-01T10:00:00.000Z"));
        assert_eq!(
            apply(&mut p, Input::Beat, &at("2026-03-01T10:30:00Z", &free)),
            Ok(vec![])
        );
        // A finished plan is stamped once, by the first heartbeat after its finish.
        let mut p = Plan::of(&state(
            "0",
            "",
            r#","status":"DONE","finishedIso":"2026-03-01T09:00:00Z","lastHeartbeatIso":"2026-03-01T08:00:00Z""#,
        ));
        apply(&mut p, Input::Beat, &ctx(&free)).unwrap();
        assert!(!p.finish_unreported(t(NOW)));
        let stamped = p.clone();
        apply(&mut p, Input::Beat, &at("2026-03-01T11:00:00Z", &free)).unwrap();
        assert_eq!(p, stamped, "later heartbeats write nothing");
    }

    #[test]
    fn retry_resets_a_step_moves_back_to_it_and_clears_its_blocker() {
        let free = Liveness::free();
        let runs =
            r#""a":{"status":"DONE","tries":1},"b":{"status":"FAILED","tries":2,"error":"boom"}"#;
        let mut p = Plan::of(&state(
            "0",
            runs,
            r#","currentStep":1,"blockers":["b: max retries (2) exceeded","x: other"]"#,
        ));
        let retry = |step: &str, note: Option<&str>| Input::Retry {
            step: step.into(),
            note: note.map(String::from),
        };
        let events = apply(&mut p, retry("b", Some("use the mirror")), &ctx(&free)).unwrap();
        assert_eq!(
            events,
            [Event::Retried {
                step: "b".into(),
                previous_tries: 2,
                note: Some("use the mirror".into())
            }]
        );
        assert_eq!(p.blockers(), ["x: other"]);
        let b = &p.step("b").unwrap().run;
        assert_eq!(
            (b.state(), b.error(), b.note()),
            (TryState::Pending { tries: 0 }, None, Some("use the mirror"))
        );
        // An earlier step moves the cursor back; a finished plan opens again.
        apply(&mut p, retry("a", None), &ctx(&free)).unwrap();
        assert_eq!(p.cursor(), 0);
        let mut done = Plan::of(&state(
            "0",
            r#""a":{"status":"DONE","tries":1},"b":{"status":"DONE","tries":1}"#,
            r#","currentStep":2,"status":"DONE""#,
        ));
        apply(&mut done, retry("b", None), &ctx(&free)).unwrap();
        assert!(!done.is_done());
        assert_eq!(done.cursor(), 1);
        // Refusals change nothing.
        let mut p = plan("0", r#""a":{"status":"IN_PROGRESS","tries":1}"#);
        let before = p.clone();
        assert_eq!(
            apply(&mut p, retry("b", None), &ctx(&free)),
            Err(Refusal::NotReached {
                step: "b".into(),
                at: Some("a".into())
            })
        );
        assert_eq!(
            apply(&mut p, retry("a", None), &ctx(&Liveness::held())),
            Err(Refusal::InFlight {
                step: "a".into(),
                attempt: 1
            })
        );
        let refusal = apply(&mut p, retry("zz", None), &ctx(&free)).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "no step `zz` in stepQueue (steps: a, b)"
        );
        // An item of a queued step that has none (yet) is told as such.
        let refusal = apply(&mut p, retry("a[3]", None), &ctx(&free)).unwrap_err();
        assert!(
            refusal
                .to_string()
                .starts_with("no item `a[3]`: step a has not made its items yet"),
            "{refusal}"
        );
        assert_eq!(p, before);
        // An interrupted try nobody is alive for can be retried.
        assert!(apply(&mut p, retry("a", None), &ctx(&free)).is_ok());
    }

    #[test]
    fn skip_passes_a_step_over_unless_it_is_done_or_in_flight() {
        let free = Liveness::free();
        let mut p = Plan::of(&state(
            "0",
            r#""a":{"status":"FAILED","tries":3}"#,
            r#","blockers":["a: max retries (3) exceeded"]"#,
        ));
        let skip = |step: &str| Input::Skip { step: step.into() };
        assert_eq!(
            apply(&mut p, skip("a"), &ctx(&free)),
            Ok(vec![Event::Skipped {
                step: "a".into(),
                reason: None
            }])
        );
        assert!(p.blockers().is_empty());
        assert_eq!(
            apply(&mut p, skip("a"), &ctx(&free)),
            Ok(vec![]),
            "already skipped"
        );
        assert_eq!(
            apply(&mut p, skip("b"), &ctx(&free)),
            Ok(vec![Event::Skipped {
                step: "b".into(),
                reason: None
            }]),
            "ahead of time"
        );
        let mut p = plan(
            "0",
            r#""a":{"status":"DONE","tries":1},"b":{"status":"IN_PROGRESS","tries":1}"#,
        );
        assert_eq!(
            apply(&mut p, skip("a"), &ctx(&free)),
            Err(Refusal::AlreadyDone { step: "a".into() })
        );
        assert_eq!(
            apply(&mut p, skip("b"), &ctx(&Liveness::held())),
            Err(Refusal::InFlight {
                step: "b".into(),
                attempt: 1
            })
        );
        let mut done = Plan::of(&state("0", "", r#","status":"DONE""#));
        assert_eq!(
            apply(&mut done, skip("a"), &ctx(&free))
                .unwrap_err()
                .to_string(),
            "the plan is DONE; there is nothing left to skip"
        );
    }

    #[test]
    fn cancel_fails_the_live_try_and_pauses_the_plan() {
        let held = Liveness::held();
        let cancel = || Input::Cancel {
            step: None,
            by: "seqctl (pid 7)".into(),
            agent_pgid: Some(99),
        };
        let runs = r#""a":{"status":"IN_PROGRESS","tries":2,"startedIso":"2026-03-01T09:59:00Z"}"#;
        let mut p = plan("0", runs);
        let events = apply(&mut p, cancel(), &ctx(&held)).unwrap();
        assert_eq!(
            events,
            [Event::Cancelled {
                step: "a".into(),
                attempt: 2,
                agent_pgid: Some(99)
            }]
        );
        assert!(p.is_paused());
        let a = &p.step("a").unwrap().run;
        assert!(
            matches!(a.state(), TryState::Failed { attempt: 2, error, .. } if error == "cancelled by seqctl (pid 7) at 2026-03-01T10:00:00.000Z")
        );
        assert_eq!(a.duration_ms(), Some(60_000));
        assert_eq!(
            apply(&mut p, cancel(), &ctx(&held)),
            Err(Refusal::NothingInFlight)
        );
        let mut p = plan("0", runs);
        assert_eq!(
            apply(&mut p, cancel(), &ctx(&Liveness::free())),
            Err(Refusal::AlreadyStopped { step: "a".into() })
        );
    }

    #[test]
    fn pause_and_resume_flip_the_flag_once() {
        let free = Liveness::free();
        let mut p = plan("0", "");
        assert_eq!(
            apply(&mut p, Input::Pause, &ctx(&free)),
            Ok(vec![Event::Paused])
        );
        assert_eq!(apply(&mut p, Input::Pause, &ctx(&free)), Ok(vec![]));
        assert_eq!(
            apply(&mut p, Input::Resume, &ctx(&free)),
            Ok(vec![Event::Resumed])
        );
        assert_eq!(apply(&mut p, Input::Resume, &ctx(&free)), Ok(vec![]));
        let mut done = Plan::of(&state("0", "", r#","status":"DONE""#));
        assert_eq!(
            apply(&mut done, Input::Pause, &ctx(&free)),
            Err(Refusal::PlanDone {
                nothing_to: "to pause"
            })
        );
    }

    #[test]
    fn steps_are_added_edited_and_removed_but_never_under_a_running_try() {
        let held = Liveness::held();
        let free = Liveness::free();
        let add = |id: &str, after: Option<&str>| Input::AddStep {
            id: id.into(),
            spec: StepSpec::new(Some("T".into()), format!("do {id}")),
            after: after.map(Into::into),
        };
        let runs = r#""a":{"status":"DONE","tries":1},"b":{"status":"IN_PROGRESS","tries":1}"#;
        let mut p = Plan::of(&state("0", runs, r#","currentStep":1"#));
        // At the end, or after the step in hand: fine. Before it: it would never run.
        assert_eq!(
            apply(&mut p, add("c", None), &ctx(&held)),
            Ok(vec![Event::StepAdded { step: "c".into() }])
        );
        assert_eq!(
            apply(&mut p, add("x", Some("b")), &ctx(&held)),
            Ok(vec![Event::StepAdded { step: "x".into() }])
        );
        assert_eq!(
            apply(&mut p, add("y", Some("a")), &ctx(&held)),
            Err(Refusal::BehindCursor {
                step: "y".into(),
                at: "b".into()
            })
        );
        assert_eq!(
            apply(&mut p, add("c", None), &ctx(&held)),
            Err(Refusal::StepExists { step: "c".into() })
        );
        assert_eq!(
            p.steps().iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "x", "c"]
        );
        // The running step can be neither edited nor removed; the others can.
        let edit = |id: &str| Input::EditStep {
            id: id.into(),
            edit: StepEdit {
                instruction: Some("do it better".into()),
                required_outputs: Some(vec!["out.md".into()]),
                ..StepEdit::default()
            },
        };
        assert_eq!(
            apply(&mut p, edit("b"), &ctx(&held)),
            Err(Refusal::InFlight {
                step: "b".into(),
                attempt: 1
            })
        );
        assert_eq!(
            apply(&mut p, Input::RemoveStep { id: "b".into() }, &ctx(&held)),
            Err(Refusal::InFlight {
                step: "b".into(),
                attempt: 1
            })
        );
        apply(&mut p, edit("c"), &ctx(&held)).unwrap();
        assert_eq!(p.step("c").unwrap().spec.instruction, "do it better");
        apply(&mut p, Input::RemoveStep { id: "a".into() }, &ctx(&held)).unwrap();
        assert_eq!(
            p.current().unwrap().id.as_str(),
            "b",
            "the cursor keeps to the step in hand"
        );
        // Written back: the queue, the new steps, the removed one gone with its record.
        let mut file = state("0", runs, r#","currentStep":1"#);
        p.put_back(&mut file);
        assert_eq!(file.step_queue, ["b", "x", "c"]);
        assert!(!file.plan.steps.contains_key("a") && !file.step_runs.contains_key("a"));
        assert_eq!(file.plan.steps["c"].required_outputs(), ["out.md"]);
        assert_eq!(file.current_step, 0);
        crate::format::validate::check(&file).unwrap();
        // A finished plan opens again at a step added to it.
        let mut done = Plan::of(&state(
            "0",
            r#""a":{"status":"DONE","tries":1},"b":{"status":"DONE","tries":1}"#,
            r#","currentStep":2,"status":"DONE""#,
        ));
        apply(&mut done, add("z", None), &ctx(&free)).unwrap();
        assert!(!done.is_done());
        assert_eq!(done.current().unwrap().id.as_str(), "z");
    }

    #[test]
    fn retry_of_a_step_behind_the_one_in_flight_is_refused() {
        let runs = r#""a":{"status":"DONE","tries":1},"b":{"status":"IN_PROGRESS","tries":1}"#;
        let mut p = Plan::of(&state("0", runs, r#","currentStep":1"#));
        let retry = Input::Retry {
            step: "a".into(),
            note: None,
        };
        assert_eq!(
            apply(&mut p, retry.clone(), &ctx(&Liveness::held())),
            Err(Refusal::BehindInFlight {
                step: "a".into(),
                running: "b".into()
            })
        );
        // Once nobody runs it, the retry moves the plan back as before.
        assert!(apply(&mut p, retry, &ctx(&Liveness::free())).is_ok());
        assert_eq!(p.cursor(), 0);
    }
}
