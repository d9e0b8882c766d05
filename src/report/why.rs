//! Why one step (or one item of a `forEach` step) is or is not running right now, in a
//! sentence: for `seqctl explain <step>`. Pure, from the plan, the time and who is alive, by
//! the core's own rules (`core::decide`), so it cannot disagree with what the runner does.

use chrono::{DateTime, Utc};

use crate::core::decide::{condition, due_time, has_blocker, ready_since, CHANGED};
use crate::core::{Context, Plan, Step, StepId, TryState};
use crate::format::schema::StepStatus;

use super::text;

/// The sentence for step `id` (which must be one of the plan's steps or items).
#[must_use]
pub fn why(plan: &Plan, step: &Step, ctx: &Context) -> String {
    let id = &step.id;
    let now = ctx.now;
    if let Some(said) = settled(plan, step, now, ctx) {
        return said;
    }
    if plan.is_paused() {
        if has_blocker(plan, &StepId::from(CHANGED)) {
            return format!(
                "Step {id} waits: the plan's steps were changed outside seqctl while it ran, \
                 and it stopped for a person (`seqctl validate`, then `seqctl resume`)."
            );
        }
        return format!("Step {id} waits: the plan is paused (`seqctl resume`).");
    }
    let position = plan.position(id.as_str()).unwrap_or(0);
    let waiting: Vec<String> = plan
        .deps(position)
        .iter()
        .filter(|d| !plan.passed(**d))
        .filter_map(|d| plan.steps().get(*d))
        .map(|s| format!("{} ({})", s.id, s.run.status().as_str()))
        .collect();
    if !waiting.is_empty() && step.item.is_none() {
        return format!(
            "Step {id} waits for {}: it starts once {} over.",
            waiting.join(", "),
            if waiting.len() == 1 {
                "that is"
            } else {
                "they are"
            }
        );
    }
    let fresh = matches!(step.run.state(), TryState::Pending { tries: 0 });
    if let (true, Some(when)) = (fresh && step.item.is_none(), &step.spec.when) {
        match condition(plan, when, ctx) {
            Some(Err(why)) => return format!("Step {id} will be skipped: {why}."),
            None => {
                return format!(
                    "Step {id} runs only if its condition holds; it looks at the result of \
                     step {}, which is judged when the step is due.",
                    when.step
                )
            }
            Some(Ok(())) => {}
        }
    }
    if let (Some(each), false) = (&step.spec.for_each, step.is_expanded()) {
        return format!(
            "Step {id} runs once per item of {}: its items are made when it is due.",
            each.from
        );
    }
    let after = match step.run.state() {
        TryState::Failed { at, .. } => at,
        _ => ready_since(plan, position, step),
    };
    let until = due_time(after, plan.delay(), now);
    let attempt = step.run.tries() + 1;
    if until > now {
        return format!(
            "Step {id} try {attempt} is due at {} ({}), after the {}-minute delay.",
            crate::format::timefmt::format(until),
            text::relative(until, now),
            plan.delay().num_milliseconds() as f64 / 60_000.0
        );
    }
    let running: Vec<String> = plan
        .running()
        .filter(|s| ctx.live.alive(&s.id))
        .map(|s| s.id.to_string())
        .collect();
    if running.len() >= plan.max_parallel() {
        return format!(
            "Step {id} try {attempt} is ready, but maxParallel ({}) tries already run: {}. It \
             starts when one of them ends.",
            plan.max_parallel(),
            running.join(", ")
        );
    }
    format!("Step {id} try {attempt} is due now: the runner (or the next heartbeat) starts it.")
}

/// The sentence for a step whose state says it all: running, over, blocked, or an expanded
/// `forEach` step.
fn settled(plan: &Plan, step: &Step, now: DateTime<Utc>, ctx: &Context) -> Option<String> {
    let id = &step.id;
    let run = &step.run;
    Some(match run.state() {
        TryState::Running { attempt, since, .. } if ctx.live.alive(id) => format!(
            "Step {id} is running: try {attempt}{}.",
            since.map_or(String::new(), |t| format!(
                " started {} ago",
                text::duration_ms(text::between(t, now))
            ))
        ),
        TryState::Running { attempt, .. } => format!(
            "Step {id} try {attempt} shows IN_PROGRESS but nothing of it runs: it was \
             interrupted, and is retried."
        ),
        TryState::Done { .. } if step.is_expanded() => {
            format!("Step {id} is done: all its items are over.")
        }
        TryState::Done { attempt, .. } => format!("Step {id} is done (try {attempt})."),
        TryState::Skipped { .. } => match run.reason() {
            Some(why) => format!("Step {id} was skipped: {why}."),
            None => format!("Step {id} was skipped by a person."),
        },
        TryState::Failed { .. } if run.finished() => format!(
            "Step {id} (optional) ended FAILED for good: {}; the plan went on without it.",
            run.error().unwrap_or("(no error recorded)")
        ),
        TryState::Failed { attempt, .. } if has_blocker(plan, id) => format!(
            "Step {id} is blocked after {attempt} failed tries; last error: {}. `seqctl retry \
             {id}` gives it new tries, `seqctl skip {id}` passes it over.",
            text::clip(run.error().unwrap_or("(none recorded)"), 300)
        ),
        TryState::Pending { .. } if step.is_expanded() => {
            let items = plan.items_of(id.as_str());
            let over = items.iter().filter(|i| i.run.finished()).count();
            let running = items
                .iter()
                .filter(|i| i.run.status() == StepStatus::InProgress)
                .count();
            format!(
                "Step {id} runs its items: {over} of {} over, {running} running (at most {} at \
                 once); `seqctl explain '{id}[N]'` tells of one.",
                items.len(),
                plan.max_parallel()
            )
        }
        _ => return None,
    })
}
