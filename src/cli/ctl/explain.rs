//! `seqctl explain`: why the current step is or is not running right now, in a sentence or two.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::{look, Output};
use crate::cli::config::Config;
use crate::cli::live::seen_from_outside;
use crate::cli::reads::Reads;
use crate::core::apply::find;
use crate::core::{Context, Plan, TryState};
use crate::format::text::{count, counted};
use crate::report::picture::{Picture, Status};
use crate::report::text;
use crate::report::why::why;
use crate::store::lease::Lease;

pub fn run(path: &Path, step: Option<&str>) -> Result<Output> {
    let (store, plan, picture, now) = look(path)?;
    if let Some(id) = step {
        let found = find(&plan, id)?;
        let lease = Lease::probe(&store)?;
        let live = seen_from_outside(&store, &plan, &lease).live;
        let ctx = Context {
            now,
            live: &live,
            limits: Config::or_default().limits,
            io: &Reads { store: &store },
        };
        let sentence = why(&plan, found, &ctx);
        let json = serde_json::json!({
            "status": found.run.status().as_str(),
            "step": id,
            "explanation": sentence,
        });
        return Ok(Output::ok(sentence, json));
    }
    let mut sentence = explain(&plan, &picture, now);
    // A step the heartbeat would start, with a command it would refuse: say so, rather than
    // promise a start that will not happen.
    if matches!(picture.status, Status::Waiting) {
        if let Err(e) = Config::or_default().agent(store.workspace()) {
            let _ = write!(
                sentence,
                " But it will not start: {e:#}. Until that is fixed every heartbeat exits 2 \
                 and changes nothing."
            );
        }
    }
    let json = serde_json::json!({
        "status": picture.status,
        "step": picture.current_step,
        "explanation": sentence,
    });
    Ok(Output::ok(sentence, json))
}

/// The explanation, from the picture and the state it was made of.
#[must_use]
pub fn explain(plan: &Plan, p: &Picture, now: DateTime<Utc>) -> String {
    let step = p.current_step.as_deref().unwrap_or("?");
    let (tries, error) = plan
        .step(step)
        .map_or((0, None), |s| (s.run.tries(), s.run.error()));
    match p.status {
        Status::Success if p.skipped > 0 => format!(
            "The plan is done: {} of {} finished, {} skipped. Nothing more will run.",
            p.done,
            counted(p.total, "step"),
            p.skipped
        ),
        Status::Success => format!(
            "The plan is done: {} finished. Nothing more will run.",
            if p.total == 1 {
                "its one step".to_owned()
            } else {
                format!("all {} steps", p.total)
            }
        ),
        Status::Running => {
            let Some(f) = p.in_flight.as_ref() else {
                return format!("Step {step} is running.");
            };
            let since = f.since.as_deref().unwrap_or("an unknown time");
            let elapsed = f.elapsed_ms.map_or(String::new(), |ms| {
                format!(" ({} ago)", text::duration_ms(ms))
            });
            let pid = f.runner_pid.map_or("a runner".into(), |p| format!("runner pid {p}"));
            format!(
                "Step {step} is running: try {} started at {since}{elapsed}, and the run lease \
                 is held by {pid}. Nothing else starts until it ends (`seqctl cancel` stops it).",
                f.attempt
            )
        }
        Status::Blocked => format!(
            "Step {step} is blocked after {}; last error: {}. It runs again only \
             after `seqctl retry {step}` (optionally with --note) or `seqctl skip {step}`.",
            count(tries, "failed try", "failed tries"),
            text::clip(error.unwrap_or("(none recorded)"), 300)
        ),
        Status::Paused if p.failed_step.is_some() => format!(
            "The plan is paused after step {step} try {} failed: {}. `seqctl resume` retries \
             it; `seqctl retry {step}` starts its tries afresh; `seqctl skip {step}` passes it over.",
            tries,
            text::clip(error.unwrap_or("(none recorded)"), 300)
        ),
        Status::Paused => format!(
            "The plan is paused (`seqctl pause`): step {step} will not start until `seqctl resume`."
        ),
        Status::Waiting => waiting(plan, p, now, step),
    }
}

fn waiting(plan: &Plan, p: &Picture, now: DateTime<Utc>, step: &str) -> String {
    let Some(next) = &p.next else {
        return format!("Step {step} is waiting.");
    };
    let runner = p.runner.as_ref().map_or(
        " The next heartbeat (seq-check) starts a runner for it.".to_owned(),
        |r| format!(" Runner pid {} holds the lease and starts it then.", r.pid),
    );
    let in_progress = plan
        .step(step)
        .is_some_and(|s| matches!(s.run.state(), TryState::Running { .. }));
    let interrupted = if in_progress {
        format!(
            "Step {step} try {} was interrupted (no runner holds the lease). ",
            next.attempt - 1
        )
    } else {
        String::new()
    };
    if next.due_at <= now {
        let runner = p.runner.as_ref().map_or(
            " The next heartbeat (seq-check) starts it.".to_owned(),
            |r| {
                format!(
                    " Runner pid {} holds the lease and is about to start it.",
                    r.pid
                )
            },
        );
        return format!(
            "{interrupted}Step {} try {} is due now.{runner}",
            next.step, next.attempt
        );
    }
    let after = if next.attempt > 1 {
        format!("its failed try {}", next.attempt - 1)
    } else {
        "the previous step".to_owned()
    };
    format!(
        "{interrupted}Step {} try {} is waiting until {} ({}) because of the {}-minute delay \
         after {after}.{runner}",
        next.step,
        next.attempt,
        next.due,
        text::relative(next.due_at, now),
        plan.delay().num_milliseconds() as f64 / 60_000.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Limits;
    use crate::format::{timefmt, validate};
    use crate::report::picture::picture;
    use crate::store::lease::{Holder, LeaseState};

    fn say(state: &str, now: &str, lease: &LeaseState) -> String {
        let plan = Plan::of(&validate::parse(state.as_bytes()).unwrap());
        let now = timefmt::parse(now).unwrap();
        explain(
            &plan,
            &picture(
                &plan,
                now,
                Limits::default(),
                lease,
                &crate::core::Liveness {
                    held_elsewhere: lease.is_held(),
                    ..crate::core::Liveness::default()
                },
            ),
            now,
        )
    }

    const TWO: &str = r#""plan":{"steps":{"a":{"instruction":"x"},"b":{"instruction":"y"}}},"stepQueue":["a","b"]"#;

    #[test]
    fn each_reason_in_a_sentence() {
        let held = LeaseState::Held(Some(Holder {
            pid: 77,
            since: "2026-03-01T09:00:00Z".into(),
            ..Holder::default()
        }));
        let running = format!(
            r#"{{{TWO},"stepRuns":{{"a":{{"status":"IN_PROGRESS","tries":1,"startedIso":"2026-03-01T09:58:00Z"}}}}}}"#
        );
        assert_eq!(
            say(&running, "2026-03-01T10:00:00Z", &held),
            "Step a is running: try 1 started at 2026-03-01T09:58:00Z (2m 00s ago), and the run \
             lease is held by runner pid 77. Nothing else starts until it ends (`seqctl cancel` stops it)."
        );
        let delayed = format!(
            r#"{{{TWO},"currentStep":1,"stepDelayMinutes":5,"stepRuns":{{"a":{{"status":"DONE","tries":1,"finishedIso":"2026-03-01T09:58:00Z"}}}}}}"#
        );
        assert_eq!(
            say(&delayed, "2026-03-01T10:00:00Z", &LeaseState::Free),
            "Step b try 1 is waiting until 2026-03-01T10:03:00.000Z (in 3m 00s) because of the \
             5-minute delay after the previous step. The next heartbeat (seq-check) starts a runner for it."
        );
        let blocked = format!(
            r#"{{{TWO},"stepRuns":{{"a":{{"status":"FAILED","tries":3,"error":"boom"}}}}}}"#
        );
        assert!(say(&blocked, "2026-03-01T10:00:00Z", &LeaseState::Free)
            .starts_with("Step a is blocked after 3 failed tries; last error: boom."));
        let paused = format!(r#"{{{TWO},"paused":true}}"#);
        assert!(say(&paused, "2026-03-01T10:00:00Z", &LeaseState::Free)
            .starts_with("The plan is paused"));
        let done = format!(r#"{{{TWO},"currentStep":2,"status":"DONE"}}"#);
        assert!(
            say(&done, "2026-03-01T10:00:00Z", &LeaseState::Free).starts_with("The plan is done")
        );
        let due = format!("{{{TWO}}}");
        assert_eq!(
            say(&due, "2026-03-01T10:00:00Z", &LeaseState::Free),
            "Step a try 1 is due now. The next heartbeat (seq-check) starts it."
        );
    }
}
