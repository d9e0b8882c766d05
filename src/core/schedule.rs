//! The decision core: given a state, the time and whether a runner is alive, what happens now.
//!
//! Pure functions over [`State`]: no clock, no files, no processes, so every rule is unit-tested
//! with a fixed time. The rules follow the Python skill's check script, with its defects fixed:
//!
//! - a DONE (or SKIPPED) current step moves `currentStep` on; past the end the plan is DONE;
//! - an IN_PROGRESS step nobody holds the lease for was interrupted: it becomes a failed try;
//! - a FAILED step with attempts left is retried, one with none left is a blocker, recorded once;
//! - nothing starts before it is due: `stepDelayMinutes` after the previous step (or the failed
//!   try) finished; retries are immediate when the delay is 0;
//! - while another runner holds the lease, nothing changes: that runner owns the plan.

use chrono::{DateTime, Duration, Utc};

use crate::format::schema::{PlanStatus, State, StepStatus};
use crate::format::timefmt;

/// Settings that come from the environment, not the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Attempts a step gets before it becomes a blocker (`STEP_MAX_RETRIES`, default 3).
    pub max_tries: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_tries: 3 }
    }
}

/// What should happen next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The plan is DONE: nothing more will ever run.
    Finished,
    /// Another runner holds the lease and owns the plan.
    Busy,
    /// `seqctl pause`: nothing new starts.
    Paused,
    /// The step used all its attempts; a person must reset it.
    Blocked { step: String, tries: u32 },
    /// The step is due at `until`, not before.
    Wait { step: String, until: DateTime<Utc> },
    /// The step is due now; this is its attempt number (1-based).
    Run { step: String, attempt: u32 },
}

/// A change `settle` made, for reports and the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Interrupted { step: String, attempt: u32 },
    Advanced { step: String },
    Blocked { step: String, tries: u32 },
    PlanDone,
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Self::Interrupted { step, attempt } => write!(
                f,
                "interrupted: step {step} try {attempt} was cut short (its runner stopped); recorded as a failed try"
            ),
            Self::Advanced { step } => write!(f, "advanced past finished step {step}"),
            Self::Blocked { step, tries } => write!(
                f,
                "step {step} ran out of tries ({tries}): recorded as a blocker"
            ),
            Self::PlanDone => f.write_str("plan finished"),
        }
    }
}

/// Applies every transition that is due at `now` and says what should happen next.
/// `busy` means another process holds the run lease.
pub fn settle(
    state: &mut State,
    now: DateTime<Utc>,
    limits: Limits,
    busy: bool,
) -> (Next, Vec<Transition>) {
    let mut changes = Vec::new();
    if state.status == PlanStatus::Done {
        return (Next::Finished, changes);
    }
    if busy {
        return (Next::Busy, changes);
    }
    loop {
        let Some(id) = state.current_id().map(str::to_owned) else {
            state.status = PlanStatus::Done;
            state.finished_iso = Some(timefmt::format(now));
            changes.push(Transition::PlanDone);
            return (Next::Finished, changes);
        };
        // Looked up, not created: a step never run stays without a record, as agents wrote it.
        let status = state
            .step_runs
            .get(&id)
            .map_or(StepStatus::Pending, |r| r.status);
        match status {
            StepStatus::Done | StepStatus::Skipped => {
                state.current_step += 1;
                changes.push(Transition::Advanced { step: id });
                continue;
            }
            StepStatus::InProgress => {
                let run = state.run_mut(&id);
                run.status = StepStatus::Failed;
                run.error = Some(format!(
                    "interrupted: try {} was still running when its runner stopped \
                     (killed, crashed or the machine restarted)",
                    run.tries
                ));
                run.finished_iso = Some(timefmt::format(now));
                changes.push(Transition::Interrupted {
                    step: id.clone(),
                    attempt: run.tries,
                });
            }
            StepStatus::Failed | StepStatus::Pending => {}
        }
        let next = decide(state, &id, now, limits);
        if let Next::Blocked { step, tries } = &next {
            if record_blocker(state, step, max_tries(state, step, limits)) {
                changes.push(Transition::Blocked {
                    step: step.clone(),
                    tries: *tries,
                });
            }
        }
        return (next, changes);
    }
}

/// The decision for the current step, which is PENDING or FAILED.
fn decide(state: &State, id: &str, now: DateTime<Utc>, limits: Limits) -> Next {
    let run = state.run_of(id);
    if run.status == StepStatus::Failed && run.tries >= max_tries(state, id, limits) {
        return Next::Blocked {
            step: id.to_owned(),
            tries: run.tries,
        };
    }
    if state.paused {
        return Next::Paused;
    }
    let after = if run.status == StepStatus::Failed {
        finished_at(state, id)
    } else {
        previous_id(state).and_then(|prev| finished_at(state, prev))
    };
    let until = due_time(after, state.delay_minutes(), now);
    if until > now {
        Next::Wait {
            step: id.to_owned(),
            until,
        }
    } else {
        Next::Run {
            step: id.to_owned(),
            attempt: run.tries.saturating_add(1),
        }
    }
}

/// When a step is due: `delay` after `after`. A time in the future (a clock that went back, or
/// a hand-edited file) counts as now, so a bad timestamp can delay a step by one delay at most.
fn due_time(after: Option<DateTime<Utc>>, delay_minutes: f64, now: DateTime<Utc>) -> DateTime<Utc> {
    match after {
        Some(after) if delay_minutes > 0.0 => {
            let delay = Duration::milliseconds((delay_minutes * 60_000.0).round() as i64);
            after.min(now) + delay
        }
        _ => now,
    }
}

fn previous_id(state: &State) -> Option<&str> {
    let index = usize::try_from(state.current_step).ok()?.checked_sub(1)?;
    state.step_queue.get(index).map(String::as_str)
}

/// When a step's last try ended: `finishedIso`, or the Python version's `lastRunIso`.
fn finished_at(state: &State, id: &str) -> Option<DateTime<Utc>> {
    let run = state.step_runs.get(id)?;
    run.finished_iso
        .as_deref()
        .or(run.last_run_iso.as_deref())
        .and_then(timefmt::parse)
}

/// Whether a DONE plan finished after the last heartbeat, so that heartbeat should tell.
#[must_use]
pub fn finish_unreported(state: &State) -> bool {
    let finished = state.finished_iso.as_deref().and_then(timefmt::parse);
    let heartbeat = state.last_heartbeat_iso.as_deref().and_then(timefmt::parse);
    match (finished, heartbeat) {
        (Some(finished), Some(heartbeat)) => finished > heartbeat,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Attempts the step gets: its own `maxRetries`, else the environment's.
#[must_use]
pub fn max_tries(state: &State, id: &str, limits: Limits) -> u32 {
    state
        .plan
        .steps
        .get(id)
        .and_then(|s| s.max_retries)
        .unwrap_or(limits.max_tries)
}

/// The blocker line for a step, in the Python version's words.
#[must_use]
pub fn blocker_text(id: &str, max: u32) -> String {
    format!("{id}: max retries ({max}) exceeded")
}

/// Whether a blocker line is about this step.
#[must_use]
pub fn is_blocker_for(line: &str, id: &str) -> bool {
    line.strip_prefix(id)
        .is_some_and(|rest| rest.starts_with(": "))
}

/// Adds the step's blocker unless one is already there; says whether it added one.
fn record_blocker(state: &mut State, id: &str, max: u32) -> bool {
    let blockers = state.blockers.get_or_insert_with(Vec::new);
    if blockers.iter().any(|line| is_blocker_for(line, id)) {
        return false;
    }
    blockers.push(blocker_text(id, max));
    true
}

/// The prompt for the next try: the instruction, or on a retry the Python version's
/// troubleshoot prompt word for word, so agents tuned to it keep working. A person's note
/// (`seqctl retry --note`) follows it.
#[must_use]
pub fn prompt(state: &State, id: &str) -> String {
    let run = state.run_of(id);
    let instruction = state.plan.steps.get(id).map_or("", |s| s.instruction());
    let mut prompt = match run.error.as_deref() {
        Some(error) if run.tries > 0 => format!(
            "Step {id} failed (tries: {}). Previous run ended with: {error}. \
             Please troubleshoot and retry: {instruction}",
            run.tries
        ),
        _ => instruction.to_owned(),
    };
    if let Some(note) = run.note.as_deref().filter(|n| !n.trim().is_empty()) {
        prompt.push_str("\n\nNote from the person supervising this plan: ");
        prompt.push_str(note);
    }
    prompt
}

/// Marks a step's try as started: IN_PROGRESS, one more try, when, and where its output goes.
pub fn mark_started(state: &mut State, id: &str, now: DateTime<Utc>, log_file: Option<String>) {
    let run = state.run_mut(id);
    let stamp = timefmt::format(now);
    run.status = StepStatus::InProgress;
    run.tries = run.tries.saturating_add(1);
    run.last_run_iso = Some(stamp.clone());
    run.started_iso = Some(stamp);
    run.finished_iso = None;
    run.duration_ms = None;
    run.exit_code = None;
    run.signal = None;
    run.log_file = log_file;
    run.note = None;
}

/// How a try ended, as judged by the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Ok(artifacts)` for DONE (the required outputs that exist); `Err(error)` for FAILED.
    pub verdict: Result<Vec<String>, String>,
    pub stdout_tail: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ms: u64,
}

/// Records a finished try. Returns false, changing nothing, when the state no longer shows this
/// try in flight (a person skipped or cancelled it meanwhile): their word wins.
pub fn record(
    state: &mut State,
    id: &str,
    attempt: u32,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> bool {
    let Some(run) = state.step_runs.get_mut(id) else {
        return false;
    };
    if run.status != StepStatus::InProgress || run.tries != attempt {
        return false;
    }
    let stamp = timefmt::format(now);
    run.last_run_iso = Some(stamp.clone());
    run.finished_iso = Some(stamp);
    run.duration_ms = Some(outcome.duration_ms);
    run.exit_code = outcome.exit_code;
    run.signal = outcome.signal;
    run.stdout = Some(outcome.stdout_tail);
    match outcome.verdict {
        Ok(produced) => {
            run.status = StepStatus::Done;
            // `error` stays, as in the Python version: the last failure's words, for the record.
            let artifacts = state.artifacts.get_or_insert_with(Vec::new);
            for path in produced {
                if !artifacts.contains(&path) {
                    artifacts.push(path);
                }
            }
        }
        Err(error) => {
            run.status = StepStatus::Failed;
            run.error = Some(error);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::schema::StepRun;
    use crate::format::validate;

    fn t(text: &str) -> DateTime<Utc> {
        timefmt::parse(text).unwrap()
    }

    fn plan(delay: &str) -> State {
        let text = format!(
            r#"{{"plan":{{"steps":{{"a":{{"instruction":"do a"}},"b":{{"instruction":"do b","maxRetries":2}}}}}},
               "stepQueue":["a","b"],"stepDelayMinutes":{delay}}}"#
        );
        validate::parse(text.as_bytes()).unwrap()
    }

    fn with_run(
        mut state: State,
        id: &str,
        status: StepStatus,
        tries: u32,
        finished: &str,
    ) -> State {
        state.step_runs.insert(
            id.into(),
            StepRun {
                status,
                tries,
                finished_iso: Some(finished.into()),
                error: Some("boom".into()),
                ..StepRun::default()
            },
        );
        state
    }

    const NOW: &str = "2026-03-01T10:00:00Z";
    const L: Limits = Limits { max_tries: 3 };

    #[test]
    fn a_fresh_plan_runs_its_first_step_at_once_even_with_a_delay() {
        let mut s = plan("2");
        let (next, changes) = settle(&mut s, t(NOW), L, false);
        assert_eq!(
            next,
            Next::Run {
                step: "a".into(),
                attempt: 1
            }
        );
        assert!(changes.is_empty());
    }

    #[test]
    fn a_busy_plan_is_left_alone() {
        let mut s = with_run(plan("0"), "a", StepStatus::InProgress, 1, NOW);
        let before = s.clone();
        assert_eq!(settle(&mut s, t(NOW), L, true).0, Next::Busy);
        assert_eq!(s, before);
    }

    #[test]
    fn done_steps_advance_and_the_plan_finishes() {
        let mut s = with_run(plan("0"), "a", StepStatus::Done, 1, NOW);
        s = with_run(s, "b", StepStatus::Done, 1, NOW);
        let (next, changes) = settle(&mut s, t(NOW), L, false);
        assert_eq!(next, Next::Finished);
        assert_eq!(s.current_step, 2);
        assert_eq!(s.status, PlanStatus::Done);
        assert_eq!(changes.last(), Some(&Transition::PlanDone));
        assert_eq!(s.finished_iso.as_deref(), Some("2026-03-01T10:00:00.000Z"));
        assert!(finish_unreported(&s));
        s.last_heartbeat_iso = Some("2026-03-01T10:05:00Z".into());
        assert!(!finish_unreported(&s));
        // A finished plan stays finished, and nothing changes on later heartbeats.
        let after = s.clone();
        assert_eq!(settle(&mut s, t(NOW), L, false).0, Next::Finished);
        assert_eq!(s, after);
    }

    #[test]
    fn the_delay_runs_from_the_previous_steps_finish() {
        let mut s = with_run(plan("2"), "a", StepStatus::Done, 1, "2026-03-01T09:59:00Z");
        let (next, _) = settle(&mut s, t(NOW), L, false);
        assert_eq!(
            next,
            Next::Wait {
                step: "b".into(),
                until: t("2026-03-01T10:01:00Z")
            }
        );
        let (next, _) = settle(&mut s, t("2026-03-01T10:01:00Z"), L, false);
        assert_eq!(
            next,
            Next::Run {
                step: "b".into(),
                attempt: 1
            }
        );
    }

    #[test]
    fn fractional_delays_are_honoured() {
        let mut s = with_run(plan("0.5"), "a", StepStatus::Done, 1, NOW);
        let (next, _) = settle(&mut s, t(NOW), L, false);
        assert_eq!(
            next,
            Next::Wait {
                step: "b".into(),
                until: t("2026-03-01T10:00:30Z")
            }
        );
    }

    #[test]
    fn a_future_timestamp_delays_by_one_delay_at_most() {
        let mut s = with_run(plan("2"), "a", StepStatus::Done, 1, "2999-01-01T00:00:00Z");
        let (next, _) = settle(&mut s, t(NOW), L, false);
        assert_eq!(
            next,
            Next::Wait {
                step: "b".into(),
                until: t("2026-03-01T10:02:00Z")
            }
        );
    }

    #[test]
    fn retries_are_immediate_without_a_delay_and_wait_with_one() {
        let mut s = with_run(plan("0"), "a", StepStatus::Failed, 1, NOW);
        assert_eq!(
            settle(&mut s, t(NOW), L, false).0,
            Next::Run {
                step: "a".into(),
                attempt: 2
            }
        );
        let mut s = with_run(plan("2"), "a", StepStatus::Failed, 1, NOW);
        assert_eq!(
            settle(&mut s, t(NOW), L, false).0,
            Next::Wait {
                step: "a".into(),
                until: t("2026-03-01T10:02:00Z")
            }
        );
    }

    #[test]
    fn exhausted_steps_block_once() {
        let mut s = with_run(plan("0"), "a", StepStatus::Failed, 3, NOW);
        let (next, changes) = settle(&mut s, t(NOW), L, false);
        assert_eq!(
            next,
            Next::Blocked {
                step: "a".into(),
                tries: 3
            }
        );
        assert_eq!(
            changes,
            vec![Transition::Blocked {
                step: "a".into(),
                tries: 3
            }]
        );
        assert_eq!(s.blockers(), ["a: max retries (3) exceeded"]);
        let (_, changes) = settle(&mut s, t(NOW), L, false);
        assert!(changes.is_empty());
        assert_eq!(s.blockers().len(), 1);
    }

    #[test]
    fn a_steps_own_max_retries_wins() {
        let mut s = with_run(plan("0"), "a", StepStatus::Done, 1, NOW);
        s = with_run(s, "b", StepStatus::Failed, 2, NOW);
        assert_eq!(
            settle(&mut s, t(NOW), L, false).0,
            Next::Blocked {
                step: "b".into(),
                tries: 2
            }
        );
        assert_eq!(s.blockers(), ["b: max retries (2) exceeded"]);
        let limits = Limits { max_tries: 1 };
        let mut s = with_run(plan("0"), "a", StepStatus::Failed, 1, NOW);
        assert_eq!(
            settle(&mut s, t(NOW), limits, false).0,
            Next::Blocked {
                step: "a".into(),
                tries: 1
            }
        );
    }

    #[test]
    fn an_orphaned_in_progress_step_is_an_interrupted_try() {
        let mut s = with_run(plan("0"), "a", StepStatus::InProgress, 1, NOW);
        let (next, changes) = settle(&mut s, t(NOW), L, false);
        assert_eq!(
            changes,
            vec![Transition::Interrupted {
                step: "a".into(),
                attempt: 1
            }]
        );
        assert_eq!(
            next,
            Next::Run {
                step: "a".into(),
                attempt: 2
            }
        );
        let run = s.run_of("a");
        assert_eq!(run.status, StepStatus::Failed);
        assert!(run.error.unwrap().starts_with("interrupted: try 1"));
        // Its last attempt interrupted, the step blocks like any other failure.
        let mut s = with_run(plan("0"), "a", StepStatus::InProgress, 3, NOW);
        assert_eq!(
            settle(&mut s, t(NOW), L, false).0,
            Next::Blocked {
                step: "a".into(),
                tries: 3
            }
        );
    }

    #[test]
    fn a_paused_plan_starts_nothing_but_still_reports_blockers() {
        let mut s = plan("0");
        s.paused = true;
        assert_eq!(settle(&mut s, t(NOW), L, false).0, Next::Paused);
        let mut s = with_run(plan("0"), "a", StepStatus::Failed, 3, NOW);
        s.paused = true;
        assert!(matches!(
            settle(&mut s, t(NOW), L, false).0,
            Next::Blocked { .. }
        ));
    }

    #[test]
    fn prompts_match_the_python_version() {
        let s = plan("0");
        assert_eq!(prompt(&s, "a"), "do a");
        let s = with_run(plan("0"), "a", StepStatus::Failed, 2, NOW);
        assert_eq!(
            prompt(&s, "a"),
            "Step a failed (tries: 2). Previous run ended with: boom. Please troubleshoot and retry: do a"
        );
        let mut s = s;
        s.run_mut("a").note = Some("use the mirror".into());
        assert!(prompt(&s, "a")
            .ends_with("\n\nNote from the person supervising this plan: use the mirror"));
    }

    #[test]
    fn recording_a_result_only_lands_on_the_try_in_flight() {
        let mut s = plan("0");
        mark_started(&mut s, "a", t(NOW), None);
        let run = s.run_of("a");
        assert_eq!((run.status, run.tries), (StepStatus::InProgress, 1));
        let done = Outcome {
            verdict: Ok(vec!["out.md".into()]),
            stdout_tail: "ok".into(),
            exit_code: Some(0),
            signal: None,
            duration_ms: 5,
        };
        assert!(
            !record(&mut s, "a", 2, done.clone(), t(NOW)),
            "wrong attempt"
        );
        assert!(record(&mut s, "a", 1, done.clone(), t(NOW)));
        assert_eq!(s.run_of("a").status, StepStatus::Done);
        assert_eq!(s.artifacts(), ["out.md"]);
        assert!(!record(&mut s, "a", 1, done, t(NOW)), "already recorded");
    }

    #[test]
    fn blocker_lines_match_by_step_id_prefix() {
        assert!(is_blocker_for("step-1: max retries (3) exceeded", "step-1"));
        assert!(!is_blocker_for(
            "step-10: max retries (3) exceeded",
            "step-1"
        ));
    }
}
