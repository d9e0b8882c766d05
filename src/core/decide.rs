//! What should happen now: [`decide`] looks at a plan, the time and who is alive, and either
//! names one automatic change the plan needs first, or says what comes next. [`settle`] makes
//! the automatic changes one by one until the plan rests, and returns them as events.
//!
//! The rules follow the Python skill's check script, with its defects fixed:
//!
//! - a DONE (or SKIPPED) step in hand moves the cursor on; past the end the plan is DONE;
//! - an IN_PROGRESS try nobody is alive for was interrupted: it becomes a failed try;
//! - a FAILED step with attempts left is retried, one with none left is a blocker, recorded once;
//! - nothing starts before it is due: `stepDelayMinutes` after the previous step (or the failed
//!   try) finished; retries are immediate when the delay is 0;
//! - while another runner holds the plan, nothing changes: that runner owns it.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::apply::{self, Auto};
use super::event::Event;
use super::model::{is_blocker_for, AgentRef, Plan, Step, StepId, TryState};
use super::prompt;
use crate::format::schema::Verify;

/// Settings that come from the operator's environment, not from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Attempts a step gets before it becomes a blocker (`STEP_MAX_RETRIES`, default 3).
    pub max_tries: u32,
    /// The time limit of one attempt (`STEP_TIMEOUT_SECONDS`, default an hour).
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tries: 3,
            timeout: Duration::from_secs(3600),
        }
    }
}

/// Who is alive to run the plan's tries, as the caller found the run lease and the runners
/// the tries name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Liveness {
    /// Another runner (or a process it started) holds the plan's lease: it owns every try,
    /// and this caller changes nothing.
    pub held_elsewhere: bool,
    /// Tries in flight with someone alive to finish them: the caller's own, or another
    /// runner's that is still running (even if the sidecar's lease file was deleted).
    pub alive: Vec<StepId>,
    /// A try whose runner ended it but could not record its result (a failed state write),
    /// with the runner's words: it is taken back, not counted as interrupted.
    pub lost: Option<(StepId, u32, String)>,
}

impl Liveness {
    /// Nobody else holds the plan, and this caller runs nothing.
    #[must_use]
    pub fn free() -> Self {
        Self::default()
    }

    /// Another runner holds the plan.
    #[must_use]
    pub fn held() -> Self {
        Self {
            held_elsewhere: true,
            ..Self::default()
        }
    }

    /// Whether someone is alive to finish a try of this step.
    #[must_use]
    pub fn alive(&self, step: &StepId) -> bool {
        self.held_elsewhere || self.alive.contains(step)
    }
}

/// The facts a decision is made from besides the plan.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub live: &'a Liveness,
    pub limits: Limits,
}

/// One try to start: which step, which attempt, which agent, what to tell it (without the
/// earlier results it asks for: the runner loads them and calls `prompt::with_results`), and
/// how its end is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub step: StepId,
    pub attempt: u32,
    pub agent: AgentRef,
    pub prompt: String,
    /// The task the prompt carries, for a verify agent (see `prompt::Built`).
    pub task: String,
    pub timeout: Duration,
    pub required_outputs: Vec<String>,
    /// Where its result comes from: this file, else its stdout.
    pub result_file: Option<String>,
    pub verify: Option<Box<Verify>>,
}

/// What comes next for a plan that needs no automatic change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The plan is DONE: nothing more will ever run.
    Finished,
    /// Another runner holds the plan (or this caller's own try is in flight).
    Busy,
    /// `seqctl pause`: nothing new starts.
    Paused,
    /// The step used all its attempts; a person must reset it.
    Blocked { step: StepId, tries: u32 },
    /// The step's next try is due at `until`, not before.
    Wait {
        step: StepId,
        attempt: u32,
        until: DateTime<Utc>,
    },
    /// This try is due now.
    Run(Launch),
}

impl Next {
    /// The step the decision is about, if one.
    #[must_use]
    pub fn step(&self) -> Option<&StepId> {
        match self {
            Self::Blocked { step, .. } | Self::Wait { step, .. } => Some(step),
            Self::Run(launch) => Some(&launch.step),
            Self::Finished | Self::Busy | Self::Paused => None,
        }
    }
}

/// Either a change the plan needs before anything else, or what comes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Apply(Auto),
    Next(Next),
}

/// Looks at the plan and says what it needs now. Pure: the same plan, time and liveness always
/// give the same answer.
#[must_use]
pub fn decide(plan: &Plan, ctx: &Context) -> Decision {
    use Decision::{Apply, Next as Then};
    if plan.is_done() {
        return Then(Next::Finished);
    }
    if ctx.live.held_elsewhere {
        return Then(Next::Busy);
    }
    if let Some(stale) = stale_blocker(plan) {
        return Apply(Auto::Unblock(stale));
    }
    let Some(step) = plan.current() else {
        return Apply(Auto::Finish);
    };
    let state = step.run.state();
    match state {
        TryState::Done { .. } | TryState::Skipped { .. } => return Apply(Auto::Advance),
        TryState::Running { .. } if ctx.live.alive(&step.id) => return Then(Next::Busy),
        TryState::Running { attempt, .. } => {
            return Apply(match &ctx.live.lost {
                Some((lost, at, why)) if *lost == step.id && *at == attempt => {
                    Auto::TakeBack(step.id.clone(), why.clone())
                }
                _ => Auto::Interrupt(step.id.clone()),
            })
        }
        // A recorded blocker holds until a person clears it (retry, skip), whatever limit
        // the caller's environment sets: a plan blocked under STEP_MAX_RETRIES=1 stays blocked
        // for a check run without it.
        TryState::Failed { attempt, .. } if has_blocker(plan, &step.id) => {
            return Then(Next::Blocked {
                step: step.id.clone(),
                tries: attempt,
            });
        }
        TryState::Failed { attempt, .. } if attempt >= step.max_tries(ctx.limits.max_tries) => {
            return Apply(Auto::Block(step.id.clone()));
        }
        TryState::Failed { .. } | TryState::Pending { .. } => {}
    }
    if plan.is_paused() {
        return Then(Next::Paused);
    }
    let after = match state {
        TryState::Failed { at, .. } => at,
        _ => plan.previous().and_then(|prev| prev.run.ended_at()),
    };
    let until = due_time(after, plan.delay(), ctx.now);
    let attempt = step.run.tries().saturating_add(1);
    Then(if until > ctx.now {
        Next::Wait {
            step: step.id.clone(),
            attempt,
            until,
        }
    } else {
        Next::Run(launch(step, attempt, ctx.limits))
    })
}

/// Whether a blocker line names this step.
fn has_blocker(plan: &Plan, id: &StepId) -> bool {
    plan.blockers()
        .iter()
        .any(|l| is_blocker_for(l, id.as_str()))
}

/// A step a blocker line names that is not FAILED (reset by hand, skipped, done): its line is
/// stale. Lines naming no queued step are an agent's own, and left alone.
fn stale_blocker(plan: &Plan) -> Option<StepId> {
    plan.blockers().iter().find_map(|line| {
        plan.steps()
            .iter()
            .filter(|s| is_blocker_for(line, s.id.as_str()))
            .find(|s| !matches!(s.run.state(), TryState::Failed { .. }))
            .map(|s| s.id.clone())
    })
}

/// Makes every automatic change the plan needs (interrupted tries, the cursor, blockers, the
/// finish) and says what comes next, with the events of the changes made.
pub fn settle(plan: &mut Plan, ctx: &Context) -> (Vec<Event>, Next) {
    let mut events = Vec::new();
    // Each automatic change makes progress (the cursor moves, or a step changes state for
    // good), so this ends; the bound only guards against a rule that would not.
    for _ in 0..=plan.steps().len() * 3 + 3 {
        match decide(plan, ctx) {
            Decision::Next(next) => return (events, next),
            Decision::Apply(auto) => events.extend(apply::automatic(plan, &auto, ctx)),
        }
    }
    (events, Next::Busy)
}

/// What comes next once nobody holds the plan: for a report about a plan whose runner holds
/// it between tries (asleep through a delay), which `decide` calls [`Next::Busy`]. Worked out
/// on a copy, by the same rules, so the report cannot disagree with what will happen.
#[must_use]
pub fn upcoming(plan: &Plan, ctx: &Context) -> Next {
    let free = Liveness::free();
    settle(
        &mut plan.clone(),
        &Context {
            live: &free,
            ..*ctx
        },
    )
    .1
}

/// When a step is due: `delay` after `after`. A time in the future (a clock that went back, or
/// a hand-edited file) counts as now, so a bad timestamp can delay a step by one delay at most.
#[must_use]
pub fn due_time(
    after: Option<DateTime<Utc>>,
    delay: TimeDelta,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match after {
        Some(after) if delay > TimeDelta::zero() => after.min(now) + delay,
        _ => now,
    }
}

fn launch(step: &Step, attempt: u32, limits: Limits) -> Launch {
    Launch {
        step: step.id.clone(),
        attempt,
        agent: step.spec.agent_for(attempt),
        prompt: prompt::prompt(step),
        task: step.spec.instruction.clone(),
        timeout: step.spec.timeout.unwrap_or(limits.timeout),
        required_outputs: step.spec.required_outputs.clone(),
        result_file: step.spec.result_file.clone(),
        verify: step.spec.verify.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::apply::Auto;
    use crate::core::testing::{at, ctx, plan, t, NOW};
    use crate::core::Event;

    fn run(step: &str, attempt: u32) -> Next {
        let p = plan("0", "");
        let step = p.step(step).unwrap();
        let mut launch = launch(step, attempt, crate::core::testing::L);
        launch.attempt = attempt;
        Next::Run(launch)
    }

    fn next_of(p: &mut Plan, now: &str, live: &Liveness) -> (Vec<Event>, Next) {
        settle(p, &at(now, live))
    }

    #[test]
    fn a_fresh_plan_runs_its_first_step_at_once_even_with_a_delay() {
        let mut p = plan("2", "");
        let (events, next) = next_of(&mut p, NOW, &Liveness::free());
        assert!(events.is_empty());
        let Next::Run(launch) = next else {
            panic!("{next:?}")
        };
        assert_eq!((launch.step.as_str(), launch.attempt), ("a", 1));
        assert_eq!(launch.prompt, "do a");
        assert_eq!(launch.agent, AgentRef::Default);
        assert_eq!(launch.timeout, Duration::from_secs(3600));
    }

    #[test]
    fn a_plan_another_runner_holds_is_left_alone() {
        let mut p = plan("0", r#""a":{"status":"IN_PROGRESS","tries":1}"#);
        let before = p.clone();
        assert_eq!(
            next_of(&mut p, NOW, &Liveness::held()),
            (vec![], Next::Busy)
        );
        assert_eq!(p, before);
    }

    #[test]
    fn done_steps_advance_and_the_plan_finishes_once() {
        let runs = r#""a":{"status":"DONE","tries":1},"b":{"status":"SKIPPED"}"#;
        let mut p = plan("0", runs);
        assert_eq!(
            decide(&p, &ctx(&Liveness::free())),
            Decision::Apply(Auto::Advance)
        );
        let (events, next) = next_of(&mut p, NOW, &Liveness::free());
        assert_eq!(next, Next::Finished);
        assert_eq!(
            events,
            [
                Event::Advanced { step: "a".into() },
                Event::Advanced { step: "b".into() },
                Event::PlanDone
            ]
        );
        assert!(p.is_done());
        assert_eq!(p.cursor(), 2);
        assert!(p.finish_unreported(t(NOW)));
        let after = p.clone();
        assert_eq!(
            next_of(&mut p, NOW, &Liveness::free()),
            (vec![], Next::Finished)
        );
        assert_eq!(p, after);
    }

    #[test]
    fn the_delay_runs_from_the_previous_steps_finish() {
        let mut p = plan(
            "2",
            r#""a":{"status":"DONE","tries":1,"finishedIso":"2026-03-01T09:59:00Z"}"#,
        );
        let (_, next) = next_of(&mut p, NOW, &Liveness::free());
        assert_eq!(
            next,
            Next::Wait {
                step: "b".into(),
                attempt: 1,
                until: t("2026-03-01T10:01:00Z")
            }
        );
        let (_, next) = next_of(&mut p, "2026-03-01T10:01:00Z", &Liveness::free());
        assert_eq!(next.step().map(StepId::as_str), Some("b"));
        assert!(matches!(next, Next::Run(_)));
    }

    #[test]
    fn fractional_delays_are_honoured_and_the_python_last_run_counts_as_the_finish() {
        let mut p = plan(
            "0.5",
            r#""a":{"status":"DONE","tries":1,"lastRunIso":"2026-03-01T10:00:00"}"#,
        );
        let (_, next) = next_of(&mut p, NOW, &Liveness::free());
        assert_eq!(
            next,
            Next::Wait {
                step: "b".into(),
                attempt: 1,
                until: t("2026-03-01T10:00:30Z")
            }
        );
    }

    #[test]
    fn a_future_timestamp_delays_by_one_delay_at_most() {
        let mut p = plan(
            "2",
            r#""a":{"status":"DONE","tries":1,"finishedIso":"2999-01-01T00:00:00Z"}"#,
        );
        let (_, next) = next_of(&mut p, NOW, &Liveness::free());
        assert!(matches!(next, Next::Wait { until, .. } if until == t("2026-03-01T10:02:00Z")));
    }

    #[test]
    fn retries_are_immediate_without_a_delay_and_wait_with_one() {
        let failed = r#""a":{"status":"FAILED","tries":1,"error":"boom","finishedIso":"2026-03-01T10:00:00Z"}"#;
        let mut p = plan("0", failed);
        let (_, next) = next_of(&mut p, NOW, &Liveness::free());
        let Next::Run(launch) = next else { panic!() };
        assert_eq!(launch.attempt, 2);
        assert_eq!(
            launch.prompt,
            "Step a failed (tries: 1). Previous run ended with: boom. Please troubleshoot and retry: do a"
        );
        let mut p = plan("2", failed);
        let (_, next) = next_of(&mut p, NOW, &Liveness::free());
        assert_eq!(
            next,
            Next::Wait {
                step: "a".into(),
                attempt: 2,
                until: t("2026-03-01T10:02:00Z")
            }
        );
        assert_eq!(run("a", 2).step().unwrap().as_str(), "a");
    }

    #[test]
    fn exhausted_steps_block_once_and_a_steps_own_max_retries_wins() {
        let mut p = plan("0", r#""a":{"status":"FAILED","tries":3}"#);
        let (events, next) = next_of(&mut p, NOW, &Liveness::free());
        assert_eq!(
            next,
            Next::Blocked {
                step: "a".into(),
                tries: 3
            }
        );
        assert_eq!(
            events,
            [Event::Blocked {
                step: "a".into(),
                tries: 3
            }]
        );
        assert_eq!(p.blockers(), ["a: max retries (3) exceeded"]);
        let (events, _) = next_of(&mut p, NOW, &Liveness::free());
        assert!(events.is_empty());
        assert_eq!(p.blockers().len(), 1);
        let mut p = plan(
            "0",
            r#""a":{"status":"DONE","tries":1},"b":{"status":"FAILED","tries":2}"#,
        );
        let (_, next) = next_of(&mut p, NOW, &Liveness::free());
        assert_eq!(
            next,
            Next::Blocked {
                step: "b".into(),
                tries: 2
            }
        );
        assert_eq!(p.blockers(), ["b: max retries (2) exceeded"]);
        let mut p = plan("0", r#""a":{"status":"FAILED","tries":1}"#);
        let free = Liveness::free();
        let one = Context {
            limits: Limits {
                max_tries: 1,
                ..crate::core::testing::L
            },
            ..ctx(&free)
        };
        assert!(matches!(
            settle(&mut p, &one).1,
            Next::Blocked { tries: 1, .. }
        ));
    }

    #[test]
    fn an_in_progress_try_nobody_is_alive_for_is_interrupted_and_retried() {
        let mut p = plan("0", r#""a":{"status":"IN_PROGRESS","tries":1}"#);
        let (events, next) = next_of(&mut p, NOW, &Liveness::free());
        assert_eq!(
            events,
            [Event::Interrupted {
                step: "a".into(),
                attempt: 1
            }]
        );
        assert!(matches!(next, Next::Run(Launch { attempt: 2, .. })));
        let a = &p.step("a").unwrap().run;
        assert!(
            matches!(a.state(), TryState::Failed { error, .. } if error.starts_with("interrupted: try 1"))
        );
        assert_eq!(
            a.duration_ms(),
            None,
            "an interrupted try's length is unknown"
        );
        // Its last attempt interrupted, the step blocks like any other failure.
        let mut p = plan("0", r#""a":{"status":"IN_PROGRESS","tries":3}"#);
        assert!(matches!(
            next_of(&mut p, NOW, &Liveness::free()).1,
            Next::Blocked { tries: 3, .. }
        ));
        // A try someone is alive for is not interrupted: a runner's own, or another runner's
        // whose lease file was deleted under it.
        let mut p = plan("0", r#""a":{"status":"IN_PROGRESS","tries":1}"#);
        let alive = Liveness {
            alive: vec!["a".into()],
            ..Liveness::default()
        };
        assert_eq!(next_of(&mut p, NOW, &alive), (vec![], Next::Busy));
    }

    #[test]
    fn a_recorded_blocker_holds_whatever_the_limit_and_a_stale_one_goes() {
        let blocked = crate::core::testing::state(
            "0",
            r#""a":{"status":"FAILED","tries":1}"#,
            r#","blockers":["a: max retries (1) exceeded"]"#,
        );
        // Recorded under a limit of 1; a caller with the default 3 still sees it blocked.
        let mut p = Plan::of(&blocked);
        assert_eq!(
            next_of(&mut p, NOW, &Liveness::free()),
            (
                vec![],
                Next::Blocked {
                    step: "a".into(),
                    tries: 1
                }
            )
        );
        // Reset by hand (PENDING, tries 0) without clearing the line: the line goes, and the
        // step runs.
        let reset = crate::core::testing::state(
            "0",
            r#""a":{"status":"PENDING","tries":0}"#,
            r#","blockers":["a: max retries (1) exceeded","note: an agent's own line"]"#,
        );
        let mut p = Plan::of(&reset);
        let (_, next) = next_of(&mut p, NOW, &Liveness::free());
        assert!(matches!(next, Next::Run(_)), "{next:?}");
        assert_eq!(p.blockers(), ["note: an agent's own line"]);
        // A finished plan keeps no blocker of a step that succeeded.
        let done = crate::core::testing::state(
            "0",
            r#""a":{"status":"DONE","tries":2},"b":{"status":"DONE","tries":1}"#,
            r#","blockers":["a: max retries (1) exceeded"]"#,
        );
        let mut p = Plan::of(&done);
        assert_eq!(next_of(&mut p, NOW, &Liveness::free()).1, Next::Finished);
        assert!(p.blockers().is_empty());
    }

    #[test]
    fn a_try_whose_result_was_lost_is_taken_back_not_counted() {
        let mut p = plan("0", r#""a":{"status":"IN_PROGRESS","tries":1}"#);
        let lost = Liveness {
            lost: Some(("a".into(), 1, "disk full".into())),
            ..Liveness::default()
        };
        let (events, next) = next_of(&mut p, NOW, &lost);
        assert_eq!(
            events,
            [Event::ResultLost {
                step: "a".into(),
                attempt: 1,
                error: "disk full".into()
            }]
        );
        assert!(
            matches!(next, Next::Run(Launch { attempt: 1, .. })),
            "{next:?}"
        );
        // A note about another try does not excuse this one.
        let mut p = plan("0", r#""a":{"status":"IN_PROGRESS","tries":2}"#);
        let (events, _) = next_of(&mut p, NOW, &lost);
        assert!(matches!(events[..], [Event::Interrupted { .. }]));
    }

    #[test]
    fn a_paused_plan_starts_nothing_but_still_reports_blockers() {
        let mut p = Plan::of(&crate::core::testing::state("0", "", r#","paused":true"#));
        assert_eq!(next_of(&mut p, NOW, &Liveness::free()).1, Next::Paused);
        let mut p = Plan::of(&crate::core::testing::state(
            "0",
            r#""a":{"status":"FAILED","tries":3}"#,
            r#","paused":true"#,
        ));
        assert!(matches!(
            next_of(&mut p, NOW, &Liveness::free()).1,
            Next::Blocked { .. }
        ));
    }

    #[test]
    fn a_note_follows_the_prompt() {
        let p = plan(
            "0",
            r#""a":{"status":"PENDING","tries":0,"note":"use the mirror"}"#,
        );
        let Decision::Next(Next::Run(launch)) = decide(&p, &ctx(&Liveness::free())) else {
            panic!()
        };
        assert_eq!(
            launch.prompt,
            "do a\n\nNote from the person supervising this plan: use the mirror"
        );
    }
}
