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
use crate::format::schema::{StepStatus, When};

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
    /// What the rules may need to read: results for `when`, sources for `forEach`.
    pub io: &'a dyn Io,
}

/// What the core asks of the world when a rule needs more than the plan: an earlier step's
/// result (a `when` on it), and the text of a `forEach` source. The shells read the sidecar
/// and the workspace; a view that only predicts (and the tests) may know nothing, and then a
/// step that needs to know waits.
pub trait Io: std::fmt::Debug {
    /// The result of a DONE step, if it can be read.
    fn result(&self, step: &StepId) -> Option<String>;
    /// The text of a file the plan names (`file:<path>`), relative to the workspace.
    fn file(&self, path: &str) -> Result<String, String>;
    /// Whether this reads at all: a view that only predicts does not, and a `forEach` source
    /// it cannot read is then no failure, only not known here.
    fn reads(&self) -> bool {
        true
    }
}

/// Knows nothing: for views that only predict.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIo;

impl Io for NoIo {
    fn result(&self, _: &StepId) -> Option<String> {
        None
    }

    fn file(&self, _: &str) -> Result<String, String> {
        Err("not read here".into())
    }

    fn reads(&self) -> bool {
        false
    }
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
    /// A `repeat` step's check: a result that fails it makes the step run again.
    pub until: Option<Box<Verify>>,
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

/// Looks at the plan and says what it needs now. Pure: the same plan, time, liveness and
/// reads always give the same answer.
///
/// In order: repairs (a dead try, a stale blocker, a changed plan), then each step's own
/// automatic change (out of tries: a blocker, or for an optional step the end; a `forEach`
/// whose items are over: done; a false `when`: skipped; a `forEach` whose source is ready:
/// its items), then the cursor and the finish, and last what may start: the first unit (a
/// step, or an item) in queue order whose steps it waits for are over and which is due,
/// while fewer than `maxParallel` tries run. A plain list (no `needs`) is a chain, so this is
/// the Python version's one-step-at-a-time order.
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
    if let Some(auto) = repair(plan, ctx) {
        return Apply(auto);
    }
    // A plan changed under a live run stops for a person (`settle` records the hash of a
    // plan that has none, or has not started).
    if plan.changed() == Some(true) && plan.started() {
        if !has_blocker(plan, &StepId::from(CHANGED)) {
            return Apply(Auto::Changed);
        }
        return Then(Next::Paused);
    }
    for (position, step) in plan.steps().iter().enumerate() {
        if let Some(auto) = own_change(plan, position, step, ctx) {
            return Apply(auto);
        }
    }
    if plan.current().is_some_and(|s| s.run.finished()) {
        return Apply(Auto::Advance);
    }
    if plan.current().is_none() {
        return Apply(Auto::Finish);
    }
    if plan.is_paused() {
        // A paused plan still reports its blockers.
        return Then(match plan.units().find(|s| has_blocker(plan, &s.id)) {
            Some(step) => Next::Blocked {
                step: step.id.clone(),
                tries: step.run.tries(),
            },
            None => Next::Paused,
        });
    }
    schedule(plan, ctx)
}

/// The name of the blocker line a plan changed under a live run gets.
pub const CHANGED: &str = "plan changed";

/// A try nobody is alive for, or a step out of tries.
fn repair(plan: &Plan, ctx: &Context) -> Option<Auto> {
    for step in plan.units() {
        match step.run.state() {
            TryState::Running { attempt, .. } if !ctx.live.alive(&step.id) => {
                return Some(match &ctx.live.lost {
                    Some((lost, at, why)) if *lost == step.id && *at == attempt => {
                        Auto::TakeBack(step.id.clone(), why.clone())
                    }
                    _ => Auto::Interrupt(step.id.clone()),
                });
            }
            // A recorded blocker holds until a person clears it (retry, skip), whatever limit
            // the caller's environment sets.
            TryState::Failed { .. }
                if !step.run.finished()
                    && !has_blocker(plan, &step.id)
                    && step.run.tries_this_run() >= step.max_tries(ctx.limits.max_tries) =>
            {
                return Some(if step.spec.optional {
                    Auto::GiveUp(step.id.clone())
                } else {
                    Auto::Block(step.id.clone())
                });
            }
            _ => {}
        }
    }
    None
}

/// The automatic change a queued step needs on its own: its items are over, its condition is
/// false, or its items can be made.
fn own_change(plan: &Plan, position: usize, step: &Step, ctx: &Context) -> Option<Auto> {
    if step.run.finished() || plan.passed(position) {
        return None;
    }
    if step.is_expanded() {
        let items = plan.items_of(step.id.as_str());
        return items
            .iter()
            .all(|i| i.run.finished())
            .then(|| Auto::Complete(step.id.clone()));
    }
    let waiting = !plan.deps(position).iter().all(|d| plan.passed(*d));
    let fresh = matches!(step.run.state(), TryState::Pending { tries: 0 });
    if waiting || !fresh {
        // Only a step about to start for the first time is judged or expanded; a failed
        // forEach expansion is retried below like a try.
        return match (&step.spec.for_each, step.run.state()) {
            (Some(_), TryState::Failed { at, .. })
                if !waiting && !has_blocker(plan, &step.id) && ctx.io.reads() =>
            {
                (due_time(at, plan.delay(), ctx.now) <= ctx.now)
                    .then(|| Auto::Expand(step.id.clone(), expand(plan, step, ctx)))
            }
            _ => None,
        };
    }
    if let Some(when) = &step.spec.when {
        match condition(plan, when, ctx) {
            Some(Ok(())) => {}
            Some(Err(why)) => return Some(Auto::SkipIf(step.id.clone(), why)),
            // Not known here: the step waits for a caller that can read.
            None => return None,
        }
    }
    // A view that only predicts cannot read the source: the step is due, as a `when` it
    // cannot judge is.
    step.spec
        .for_each
        .as_ref()
        .filter(|_| ctx.io.reads())
        .map(|_| Auto::Expand(step.id.clone(), expand(plan, step, ctx)))
}

/// Whether a step's `when` holds: `Ok` it does, `Err(why not)`, `None` when the result it
/// looks at cannot be read here.
#[must_use]
pub fn condition(plan: &Plan, when: &When, ctx: &Context) -> Option<Result<(), String>> {
    let id = StepId::from(when.step.as_str());
    let status = plan.step(id.as_str()).map(|s| s.run.status());
    if let Some(wanted) = when.status {
        if status != Some(wanted) {
            return Some(Err(format!(
                "when: step {id} is {}, not {}",
                status.map_or("unknown", StepStatus::as_str),
                wanted.as_str()
            )));
        }
    }
    if when.result_contains.is_none() && when.result_matches.is_none() {
        return Some(Ok(()));
    }
    let result = if status == Some(StepStatus::Done) {
        result_text(plan, &id, ctx.io)?
    } else {
        String::new()
    };
    if let Some(text) = &when.result_contains {
        if !result.contains(text.as_str()) {
            return Some(Err(format!(
                "when: the result of step {id} does not contain {text:?}"
            )));
        }
    }
    if let Some(pattern) = &when.result_matches {
        let matched = regex::RegexBuilder::new(pattern)
            .size_limit(crate::format::validate::REGEX_SIZE_LIMIT)
            .build()
            .is_ok_and(|re| re.is_match(&result));
        if !matched {
            return Some(Err(format!(
                "when: the result of step {id} does not match /{pattern}/"
            )));
        }
    }
    Some(Ok(()))
}

/// A `forEach` step's items, from its source, or why they cannot be made.
fn expand(plan: &Plan, step: &Step, ctx: &Context) -> Result<Vec<String>, String> {
    let each = step.spec.for_each.as_deref().ok_or("not a forEach step")?;
    let text = if let Some(path) = each.from.strip_prefix("file:") {
        ctx.io
            .file(path)
            .map_err(|e| format!("forEach: {path}: {e}"))?
    } else {
        let id = each
            .from
            .strip_prefix("steps.")
            .and_then(|r| r.strip_suffix(".result"))
            .unwrap_or_default();
        if plan.step(id).map(|s| s.run.status()) != Some(StepStatus::Done) {
            return Err(format!("forEach: step {id} left no result"));
        }
        result_text(plan, &StepId::from(id), ctx.io)
            .ok_or_else(|| format!("forEach: the result of step {id} cannot be read"))?
    };
    let max = each
        .max_items
        .unwrap_or(crate::format::validate::DEFAULT_MAX_ITEMS);
    super::items::split(&text, each.split, max)
}

/// A DONE step's result as later steps see it (a `forEach` step's: its items' results).
#[must_use]
pub fn result_text(plan: &Plan, id: &StepId, io: &dyn Io) -> Option<String> {
    match plan.step(id.as_str()) {
        Some(step) if step.is_expanded() => Some(super::items::joined(
            plan.items_of(id.as_str()),
            &mut |item| io.result(item),
        )),
        _ => io.result(id),
    }
}

/// What may start, given that nothing needs an automatic change.
fn schedule(plan: &Plan, ctx: &Context) -> Decision {
    use Decision::Next as Then;
    let running = plan
        .units()
        .filter(|s| matches!(s.run.state(), TryState::Running { .. }))
        .count();
    let mut wait: Option<(StepId, u32, DateTime<Utc>)> = None;
    let mut blocked: Option<(StepId, u32)> = None;
    let mut full = false;
    for (position, step) in plan.steps().iter().enumerate() {
        if plan.passed(position) || !plan.deps(position).iter().all(|d| plan.passed(*d)) {
            continue;
        }
        let fresh = matches!(step.run.state(), TryState::Pending { tries: 0 });
        let units: Vec<&Step> = if step.is_expanded() {
            plan.items_of(step.id.as_str()).iter().collect()
        } else if step.spec.for_each.is_some() {
            // Its items are not made yet: after a failed try to make them, it waits like a
            // retry (or is blocked); otherwise `own_change` makes them first.
            match step.run.state() {
                TryState::Failed { attempt, .. } if has_blocker(plan, &step.id) => {
                    blocked.get_or_insert((step.id.clone(), attempt));
                }
                TryState::Failed { at, attempt, .. } if !step.run.finished() => {
                    let until = due_time(at, plan.delay(), ctx.now);
                    if wait.as_ref().is_none_or(|(_, _, w)| until < *w) {
                        wait = Some((step.id.clone(), attempt + 1, until));
                    }
                }
                _ => {}
            }
            continue;
        } else if fresh
            && step
                .spec
                .when
                .as_ref()
                .is_some_and(|w| condition(plan, w, ctx) != Some(Ok(())))
        {
            // A condition not known here: it waits for a caller that can read.
            continue;
        } else {
            vec![step]
        };
        // Looked at once per step, not per item (and not at all without a delay).
        let paced = plan.delay() > chrono::TimeDelta::zero();
        let since = paced.then(|| {
            let items = step
                .is_expanded()
                .then(|| items_ended(plan.items_of(step.id.as_str())));
            deps_ended(plan, position).max(items.flatten())
        });
        for unit in units {
            let after = match unit.run.state() {
                TryState::Running { .. } | TryState::Done { .. } | TryState::Skipped { .. } => {
                    continue
                }
                TryState::Failed { attempt, .. } if has_blocker(plan, &unit.id) => {
                    blocked.get_or_insert((unit.id.clone(), attempt));
                    continue;
                }
                TryState::Failed { .. } if unit.run.finished() => continue,
                TryState::Failed { at, .. } => at,
                TryState::Pending { .. } => since.flatten(),
            };
            let until = due_time(after, plan.delay(), ctx.now);
            let attempt = unit.run.tries().saturating_add(1);
            if until > ctx.now {
                if wait.as_ref().is_none_or(|(_, _, w)| until < *w) {
                    wait = Some((unit.id.clone(), attempt, until));
                }
                continue;
            }
            if running >= plan.max_parallel() {
                full = true;
                continue;
            }
            return Then(Next::Run(launch(plan, unit, attempt, ctx.limits)));
        }
    }
    if full || running > 0 && wait.is_none() {
        return Then(Next::Busy);
    }
    if let Some((step, attempt, until)) = wait {
        return Then(Next::Wait {
            step,
            attempt,
            until,
        });
    }
    match blocked {
        Some((step, tries)) => Then(Next::Blocked { step, tries }),
        None => Then(Next::Busy),
    }
}

/// When a unit became ready: the latest end among the steps it waits for (for an item, its
/// step's, and the items of that step that have ended, so a delay paces the items too).
#[must_use]
pub fn ready_since(plan: &Plan, position: usize, unit: &Step) -> Option<DateTime<Utc>> {
    let siblings = unit
        .item
        .as_ref()
        .and_then(|i| items_ended(plan.items_of(i.parent().as_str())));
    deps_ended(plan, position).max(siblings)
}

/// The latest end among the steps the queued step at `position` waits for.
fn deps_ended(plan: &Plan, position: usize) -> Option<DateTime<Utc>> {
    plan.deps(position)
        .iter()
        .filter_map(|d| plan.steps().get(*d))
        .filter_map(|s| s.run.ended_at())
        .max()
}

/// The latest end among the items that have ended.
fn items_ended(items: &[Step]) -> Option<DateTime<Utc>> {
    items
        .iter()
        .filter(|s| s.run.finished() || s.run.status() == StepStatus::Failed)
        .filter_map(|s| s.run.ended_at())
        .max()
}

/// Whether a blocker line names this step.
#[must_use]
pub fn has_blocker(plan: &Plan, id: &StepId) -> bool {
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
    // The steps as they are become the validated ones when no hash was recorded (a new plan,
    // or one the Python version wrote) or nothing has run yet: no live run to protect.
    if !plan.is_done()
        && !ctx.live.held_elsewhere
        && (plan.changed().is_none() || plan.changed() == Some(true) && !plan.started())
    {
        events.extend(apply::automatic(plan, &Auto::Rehash, ctx));
    }
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

fn launch(plan: &Plan, step: &Step, attempt: u32, limits: Limits) -> Launch {
    let _ = plan;
    Launch {
        step: step.id.clone(),
        attempt,
        agent: step.spec.agent_for(attempt),
        prompt: prompt::prompt(step),
        task: prompt::task(step),
        timeout: step.spec.timeout.unwrap_or(limits.timeout),
        required_outputs: step.spec.required_outputs.clone(),
        result_file: step.spec.result_file.clone(),
        verify: step.spec.verify.clone(),
        until: step.spec.repeat.as_ref().map(|r| Box::new(r.until.clone())),
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
        let mut launch = launch(&p, step, attempt, crate::core::testing::L);
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
