//! The one vocabulary of what happens to a plan. The core returns these from every change it
//! makes; the event log stores them as JSON lines, and the heartbeat's and the runner's lines
//! are their [`fmt::Display`] text. Nothing else names these facts.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::StepId;
use crate::format::text::{counted, printable};

/// How a try ended, in the file's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Ended {
    Done,
    Failed,
    /// Stopped by a signal to its runner: it does not count as a try.
    Stopped,
}

/// What a heartbeat did that is worth a line in the log: it started a runner, for a step due
/// now or later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Launched {
    Started,
    Waiting,
}

/// What happened. Serialised as `"event": "step_started"` with the fields beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    PlanCreated {
        steps: usize,
        replaced: bool,
    },
    /// A heartbeat that did something: started a runner.
    Heartbeat {
        result: Launched,
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<StepId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        runner_pid: Option<u32>,
    },
    /// The previous heartbeat is older than expected: the schedule stopped firing for a while.
    HeartbeatGap {
        previous: String,
        gap_seconds: i64,
    },
    StepStarted {
        step: StepId,
        attempt: u32,
        agent_pid: u32,
        /// The named agent that runs it (absent: `STEP_AGENT_CMD`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    StepFinished {
        step: StepId,
        attempt: u32,
        status: Ended,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// False when a person changed the step while it ran (cancel, skip): their word won.
        recorded: bool,
        /// How the runner stopped the agent, if it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopped: Option<crate::core::verdict::Stopped>,
    },
    Interrupted {
        step: StepId,
        attempt: u32,
    },
    /// A try ended but its runner could not record the result; it does not count.
    ResultLost {
        step: StepId,
        attempt: u32,
        error: String,
    },
    Retried {
        step: StepId,
        previous_tries: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Blocked {
        step: StepId,
        tries: u32,
    },
    Skipped {
        step: StepId,
        /// Why the plan skipped it (`when`); absent: a person did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An optional step used all its tries: FAILED for good, the plan goes on.
    GaveUp {
        step: StepId,
        tries: u32,
    },
    /// A `forEach` step's items were made.
    Expanded {
        step: StepId,
        items: usize,
    },
    /// A `forEach` step's items are all over.
    ItemsDone {
        step: StepId,
        done: usize,
        failed: usize,
        skipped: usize,
    },
    /// A `repeat` step runs again: its result did not pass `until` yet.
    Repeated {
        step: StepId,
        round: u32,
        reason: String,
    },
    /// A `repeat` step used all its runs without passing `until`; its last result stands.
    RepeatsUsed {
        step: StepId,
        rounds: u32,
        reason: String,
    },
    /// The steps were changed outside `seqctl` under a live run: the plan stopped for a person.
    PlanChanged,
    /// A person accepted the changed steps (`seqctl resume`).
    PlanAccepted,
    Paused,
    Resumed,
    Cancelled {
        step: StepId,
        attempt: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_pgid: Option<u32>,
    },
    StepAdded {
        step: StepId,
    },
    StepEdited {
        step: StepId,
    },
    StepRemoved {
        step: StepId,
    },
    /// The cursor moved past a finished step: bookkeeping, not logged (its finish was the event).
    Advanced {
        step: StepId,
    },
    PlanDone,
}

/// Free text (errors, notes) in a logged event is cut to this many characters.
const MAX_TEXT_CHARS: usize = 1000;

impl Event {
    /// Whether the event log keeps this event.
    #[must_use]
    pub fn logged(&self) -> bool {
        !matches!(self, Self::Advanced { .. })
    }

    /// The event with its free text cut, so one logged event is one modest line whatever an
    /// agent printed.
    #[must_use]
    pub fn bounded(mut self) -> Self {
        let cut = |text: &mut Option<String>| {
            if let Some(t) = text {
                if t.chars().count() > MAX_TEXT_CHARS {
                    *t = t.chars().take(MAX_TEXT_CHARS).collect::<String>() + "…";
                }
            }
        };
        match &mut self {
            Self::StepFinished { error, .. } => cut(error),
            Self::Retried { note, .. } => cut(note),
            Self::Skipped { reason, .. } => cut(reason),
            Self::Repeated { reason, .. } | Self::RepeatsUsed { reason, .. } => {
                let mut text = Some(std::mem::take(reason));
                cut(&mut text);
                *reason = text.unwrap_or_default();
            }
            _ => {}
        }
        self
    }
}

/// The line a person reads for the event (the heartbeat's `changes`, the runner's output).
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::PlanCreated { steps, replaced } => {
                let how = if *replaced { "replaced" } else { "created" };
                write!(f, "plan {how} with {}", counted(*steps, "step"))
            }
            Self::Heartbeat { result, step, .. } => {
                let step = step.as_ref().map_or(String::new(), |s| format!(" for step {s}"));
                match result {
                    Launched::Started => write!(f, "heartbeat started a runner{step}"),
                    Launched::Waiting => write!(f, "heartbeat started a runner to wait{step}"),
                }
            }
            Self::HeartbeatGap {
                previous,
                gap_seconds,
            } => write!(
                f,
                "the previous heartbeat was {gap_seconds} s ago ({})",
                printable(previous)
            ),
            Self::StepStarted { step, attempt, agent, .. } => match agent {
                Some(agent) => write!(f, "step {step}: try {attempt} started (agent {agent})"),
                None => write!(f, "step {step}: try {attempt} started"),
            },
            Self::StepFinished {
                step,
                attempt,
                status: Ended::Done,
                duration_ms,
                recorded: true,
                ..
            } => write!(
                f,
                "step {step}: try {attempt} DONE in {}",
                human_ms(*duration_ms)
            ),
            // Before FAILED: a try stopped by a signal is recorded, but is no failure.
            Self::StepFinished {
                step,
                attempt,
                status: Ended::Stopped,
                error,
                ..
            } => write!(
                f,
                "step {step}: try {attempt} {}; it does not count as a try",
                printable(error.as_deref().unwrap_or("stopped"))
            ),
            Self::StepFinished {
                step,
                attempt,
                error,
                recorded: true,
                ..
            } => write!(
                f,
                "step {step}: try {attempt} FAILED: {}",
                printable(error.as_deref().unwrap_or_default())
            ),
            Self::StepFinished {
                step,
                attempt,
                recorded: false,
                ..
            } => write!(
                f,
                "step {step} try {attempt}: the plan changed while it ran; its result is not recorded"
            ),
            Self::Interrupted { step, attempt } => write!(
                f,
                "interrupted: step {step} try {attempt} was cut short (its runner stopped); \
                 recorded as a failed try"
            ),
            Self::ResultLost {
                step,
                attempt,
                error,
            } => write!(
                f,
                "step {step}: try {attempt} ended, but its runner could not record the result \
                 ({}); it does not count as a try and runs again",
                printable(error)
            ),
            Self::Retried { step, .. } => write!(f, "step {step}: tries reset"),
            Self::Blocked { step, tries } => write!(
                f,
                "step {step} ran out of tries ({tries}): recorded as a blocker"
            ),
            Self::Paused => f.write_str("paused"),
            Self::Resumed => f.write_str("resumed"),
            Self::Cancelled { step, attempt, .. } => {
                write!(f, "step {step}: try {attempt} cancelled")
            }
            Self::StepAdded { step } => write!(f, "step {step}: added"),
            Self::StepEdited { step } => write!(f, "step {step}: changed"),
            Self::StepRemoved { step } => write!(f, "step {step}: removed"),
            Self::Advanced { step } => write!(f, "advanced past finished step {step}"),
            Self::PlanDone => f.write_str("plan finished"),
            _ => self.flow_line(f),
        }
    }
}

impl Event {
    /// The lines of the workflow constructs' events (`optional`, `forEach`, `repeat`, plan
    /// changes).
    fn flow_line(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Skipped { step, reason: None } => write!(f, "step {step}: skipped"),
            Self::Skipped {
                step,
                reason: Some(why),
            } => write!(f, "step {step}: skipped ({})", printable(why)),
            Self::GaveUp { step, tries } => write!(
                f,
                "step {step} (optional) ran out of tries ({tries}): the plan goes on without it"
            ),
            Self::Expanded { step, items } => write!(f, "step {step}: {items} items to run"),
            Self::ItemsDone {
                step,
                done,
                failed,
                skipped,
            } => write!(
                f,
                "step {step}: all items over ({done} done, {failed} failed, {skipped} skipped)"
            ),
            Self::Repeated {
                step,
                round,
                reason,
            } => write!(f, "step {step}: runs again (run {round}): {}", printable(reason)),
            Self::RepeatsUsed {
                step,
                rounds,
                reason,
            } => write!(
                f,
                "step {step}: {rounds} runs used without passing its check ({}); the last result stands",
                printable(reason)
            ),
            Self::PlanChanged => f.write_str(
                "the plan's steps were changed outside seqctl while it ran: stopped for a person",
            ),
            Self::PlanAccepted => f.write_str("the changed steps were accepted"),
            _ => Ok(()),
        }
    }
}

/// `840 ms`, `12.3 s`, `4 min 5 s`: short enough for a log line.
#[must_use]
pub fn human_ms(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, ms / 1000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_flat_with_camel_case_fields() {
        let event = Event::StepFinished {
            step: "a".into(),
            attempt: 2,
            status: Ended::Failed,
            exit_code: Some(3),
            signal: None,
            duration_ms: 1500,
            error: Some("exit code 3".into()),
            recorded: true,
            stopped: None,
        };
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(
            text,
            r#"{"event":"step_finished","step":"a","attempt":2,"status":"FAILED","exitCode":3,"durationMs":1500,"error":"exit code 3","recorded":true}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), event);
        assert_eq!(
            serde_json::to_string(&Event::Heartbeat {
                result: Launched::Started,
                step: Some("s1".into()),
                runner_pid: Some(9)
            })
            .unwrap(),
            r#"{"event":"heartbeat","result":"started","step":"s1","runnerPid":9}"#
        );
        assert_eq!(
            serde_json::to_string(&Event::Paused).unwrap(),
            r#"{"event":"paused"}"#
        );
    }

    #[test]
    fn a_try_stopped_by_a_signal_reads_as_no_failure() {
        let event = Event::StepFinished {
            step: "a".into(),
            attempt: 1,
            status: Ended::Stopped,
            exit_code: None,
            signal: Some(2),
            duration_ms: 10,
            error: Some("stopped: the runner was sent signal 2".into()),
            recorded: true,
            stopped: None,
        };
        assert_eq!(
            event.to_string(),
            "step a: try 1 stopped: the runner was sent signal 2; it does not count as a try"
        );
    }

    #[test]
    fn long_text_is_cut() {
        let Event::Retried {
            note: Some(note), ..
        } = (Event::Retried {
            step: "a".into(),
            previous_tries: 3,
            note: Some("x".repeat(5000)),
        })
        .bounded()
        else {
            panic!()
        };
        assert_eq!(note.chars().count(), MAX_TEXT_CHARS + 1);
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(human_ms(840), "840 ms");
        assert_eq!(human_ms(12_340), "12.3 s");
        assert_eq!(human_ms(245_000), "4 min 5 s");
    }
}
