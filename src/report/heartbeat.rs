//! What one heartbeat found and did, from the core's decision: printed as lines, or as one
//! JSON object (`seq-check --json`).

use std::fmt::Write as _;

use crate::core::decide::CHANGED;
use crate::core::model::is_blocker_for;
use serde::{Serialize, Serializer};

use crate::core::{Event, Next, Plan, TryState};
use crate::format::schema::StepStatus;
use crate::format::text::{count, counted, printable};

/// The heartbeat's result, in the words `--json` uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BeatResult {
    #[default]
    NoPlan,
    Started,
    InFlight,
    Waiting,
    Blocked,
    Paused,
    Done,
}

impl BeatResult {
    /// The one place a decision becomes a heartbeat's result.
    #[must_use]
    pub fn of(next: &Next) -> Self {
        match next {
            Next::Finished => Self::Done,
            Next::Busy => Self::InFlight,
            Next::Paused => Self::Paused,
            Next::Blocked { .. } => Self::Blocked,
            Next::Wait { .. } => Self::Waiting,
            Next::Run(_) => Self::Started,
        }
    }
}

/// Who holds the run lease, as its note says, and whether that runner still lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holding {
    pub pid: Option<u32>,
    pub alive: bool,
    /// It is the Python version's runner, still at work on the plan.
    pub python: bool,
}

impl Holding {
    /// The Python version's runner `pid`, still at work on the plan.
    #[must_use]
    pub fn python(pid: u32) -> Self {
        Self {
            pid: Some(pid),
            alive: true,
            python: true,
        }
    }
}

/// What one heartbeat found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::struct_excessive_bools)] // independent facts of one report, each its own flag
pub struct Heartbeat {
    pub result: BeatResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// In flight since, or waiting until.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The runner (or, with `--wait`, this process) doing the work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// Changes made on the way (interrupted tries, blockers, the plan finishing), as text.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "as_text")]
    pub changes: Vec<Event>,
    /// With `in_flight`: the lease is held, but not by a live runner: a process the runner
    /// started outlived it (the runner was killed). The try is retried once that process ends.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub runner_gone: bool,
    /// With `in_flight`: the holder is the Python version's runner, left to finish its try.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub python_runner: bool,
    /// Things a person should know that are not the result (a runner that did not start).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// With `done`: this heartbeat is the first since the plan finished (tell the user now).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub newly_done: bool,
    /// With `no_plan`: the absolute path looked at, so a typo in it shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<String>,
    /// With `done`: optional steps, and items of `forEach` steps, that ended FAILED (the plan
    /// went on without them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gave_up: Vec<String>,
    /// How many of `gave_up` are items (a step with a failed item is still a finished step).
    #[serde(skip)]
    pub gave_up_items: usize,
    #[serde(skip)]
    pub steps: usize,
    /// With `done`: how many steps were skipped rather than finished.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// With `waiting`: a runner holds the plan and sleeps until the step is due.
    #[serde(skip)]
    pub held: bool,
    /// With `blocked`: the blocker is news (not told of yet, or not for a day); `--no-reply`
    /// tells only news.
    #[serde(skip)]
    pub blocker_news: bool,
    /// The agent command would be refused, though nothing is due now (printed as a warning;
    /// not news for `--no-reply`: the heartbeat that would start a step fails loudly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_problem: Option<String>,
    /// Unknown fields of the file that look like known ones ("did you mean"), found when a
    /// runner is started; printed on stderr.
    #[serde(skip)]
    pub typos: Vec<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn as_text<S: Serializer>(events: &[Event], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(events.iter().map(ToString::to_string))
}

impl Heartbeat {
    /// The report of a heartbeat that found no state file at `path` (absolute).
    #[must_use]
    pub fn no_plan(path: String) -> Self {
        Self {
            state_file: Some(path),
            ..Self::default()
        }
    }

    /// The report of a decision about `plan`: `changes` are the events on the way, `holding`
    /// the lease as found, `newly_done` whether this heartbeat is the first since the finish.
    #[must_use]
    pub fn of(
        next: &Next,
        plan: &Plan,
        changes: Vec<Event>,
        holding: Holding,
        newly_done: bool,
    ) -> Self {
        let mut beat = Self {
            result: BeatResult::of(next),
            step: next.step().map(ToString::to_string),
            changes,
            steps: plan.steps().len(),
            ..Self::default()
        };
        match next {
            Next::Finished => {
                beat.newly_done = newly_done;
                beat.artifacts = plan.artifacts().to_vec();
                beat.skipped = plan.count(StepStatus::Skipped);
                let failed: Vec<_> = plan
                    .units()
                    .filter(|s| s.run.status() == crate::format::schema::StepStatus::Failed)
                    .collect();
                beat.gave_up_items = failed.iter().filter(|s| s.item.is_some()).count();
                beat.gave_up = failed.iter().map(|s| s.id.to_string()).collect();
            }
            Next::Busy => {
                let current = plan.current();
                beat.step = current.map(|s| s.id.to_string());
                if let Some(TryState::Running { attempt, .. }) = current.map(|s| s.run.state()) {
                    beat.attempt = Some(attempt);
                    beat.since = current
                        .and_then(|s| s.run.started_text())
                        .map(str::to_owned);
                }
                beat.pid = holding.pid.filter(|_| holding.alive);
                beat.runner_gone = holding.pid.is_some() && !holding.alive;
                beat.python_runner = holding.python;
            }
            Next::Blocked { step, tries } => {
                beat.attempt = Some(*tries);
                beat.error = plan
                    .step(step.as_str())
                    .and_then(|s| s.run.error())
                    .map(str::to_owned);
            }
            Next::Wait { until, .. } => beat.until = Some(crate::format::timefmt::format(*until)),
            Next::Run(launch) => beat.attempt = Some(launch.attempt),
            Next::Paused => {
                // Stopped because the steps were changed by other means under a live run:
                // that is a blocker for a person, not a pause they asked for.
                if let Some(line) = plan.blockers().iter().find(|l| is_blocker_for(l, CHANGED)) {
                    beat.result = BeatResult::Blocked;
                    beat.step = None;
                    beat.error = Some(line.clone());
                }
            }
        }
        beat
    }

    /// Whether a person should hear about this heartbeat: a blocker not told of yet (or not
    /// for a day), or a plan just finished.
    /// (`--no-reply` prints OpenClaw's `NO_REPLY` for everything else.)
    #[must_use]
    pub fn worth_telling(&self) -> bool {
        (self.result == BeatResult::Blocked && self.blocker_news)
            || (self.result == BeatResult::Done && self.newly_done)
            || !self.warnings.is_empty()
    }

    /// The one-line summary a person or an agent reads.
    #[must_use]
    pub fn line(&self) -> String {
        let step = self.step.as_deref().unwrap_or("?");
        let attempt = self.attempt.unwrap_or(0);
        match self.result {
            BeatResult::NoPlan => format!(
                "no plan at {}",
                printable(self.state_file.as_deref().unwrap_or("?"))
            ),
            BeatResult::Started => format!(
                "started: step {step} try {attempt} (seq-runner pid {})",
                self.pid.unwrap_or(0)
            ),
            BeatResult::InFlight => {
                let pid = if self.python_runner {
                    format!(
                        " (the Python agent-step-sequencer runner, pid {}, is still at work on \
                         it; it is left to finish)",
                        self.pid.unwrap_or(0)
                    )
                } else if self.runner_gone {
                    "; its runner has exited, and a process it started still holds the plan \
                     (the try is retried once that process ends)"
                        .to_owned()
                } else {
                    self.pid
                        .map(|p| format!(" (runner pid {p})"))
                        .unwrap_or_default()
                };
                match (self.attempt, &self.since) {
                    (Some(attempt), Some(since)) => {
                        format!("in flight: step {step} try {attempt} since {since}{pid}")
                    }
                    (Some(attempt), None) => format!("in flight: step {step} try {attempt}{pid}"),
                    // The lease is held between tries (a runner sleeping through a delay).
                    (None, _) => {
                        format!("in flight: a runner holds the plan{pid}; step {step} is next")
                    }
                }
            }
            BeatResult::Waiting => format!(
                "waiting: step {step} is due at {}{}",
                self.until.as_deref().unwrap_or("?"),
                match self.pid.filter(|_| self.held) {
                    Some(pid) => format!(" (runner pid {pid} waits for it)"),
                    None => String::new(),
                }
            ),
            // The plan itself is blocked (its steps were changed outside seqctl).
            BeatResult::Blocked if self.step.is_none() => format!(
                "blocked: {}",
                printable(self.error.as_deref().unwrap_or("(none recorded)"))
            ),
            BeatResult::Blocked => format!(
                "blocked: step {step} failed {}; last error: {}",
                count(attempt, "try", "tries"),
                printable(self.error.as_deref().unwrap_or("(none recorded)"))
            ),
            BeatResult::Paused => "paused: nothing new starts until the plan is resumed".to_owned(),
            BeatResult::Done if !self.newly_done => "nothing to do: the plan is done".to_owned(),
            BeatResult::Done => {
                // Skipped steps, and optional ones that failed, are not finished ones: the
                // agent tells the user what was done.
                let failed_steps = self.gave_up.len() - self.gave_up_items;
                let finished = self.steps.saturating_sub(self.skipped + failed_steps);
                let mut line = match (finished == self.steps, self.steps) {
                    (true, 1) => "done: its one step finished".to_owned(),
                    (true, n) => format!("done: all {n} steps finished"),
                    (false, n) => format!("done: {finished} of {} finished", counted(n, "step")),
                };
                if self.skipped > 0 {
                    let _ = write!(line, ", {} skipped", self.skipped);
                }
                if !self.gave_up.is_empty() {
                    // The final summary says so: the plan went on without them.
                    let what = match (failed_steps, self.gave_up_items) {
                        (_, 0) => count(failed_steps, "optional step", "optional steps"),
                        (0, n) => count(n, "item", "items"),
                        (_, n) => format!(
                            "{} and {}",
                            count(failed_steps, "optional step", "optional steps"),
                            count(n, "item", "items")
                        ),
                    };
                    let _ = write!(
                        line,
                        " ({what} FAILED: {})",
                        printable(&self.gave_up.join(", "))
                    );
                }
                if !self.artifacts.is_empty() {
                    let _ = write!(
                        line,
                        "; artifacts: {}",
                        printable(&self.artifacts.join(", "))
                    );
                }
                line
            }
        }
    }
}
