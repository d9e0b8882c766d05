//! The plan as the engine thinks about it: steps in queue order, each with its spec and its
//! run, and a typed view of where each step's try stands ([`TryState`]) that carries each
//! state's data in its variant.
//!
//! A [`Plan`] is taken out of the faithful on-disk [`State`] and put back into it. The run
//! records are moved out and back (not copied, not re-created), and only the fields this
//! module owns are written back, so a plan read and written back unchanged is the same state,
//! extras at every level and timestamps as they were written included. Changes go through
//! the transition methods on [`Run`], which keep a record's fields consistent with each other;
//! the decisions read only the typed view.

use std::borrow::Borrow;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::format::schema::{
    self, ContextMode, PlanStatus, RunnerId, State, StepRun, StepStatus, Verify,
};
use crate::format::timefmt;

/// A step id as the plan names it (a key of `plan.steps`, a word of `stepQueue`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(String);

impl StepId {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for StepId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for StepId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<String> for StepId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl PartialEq<str> for StepId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// Which agent runs a try: the default one (`STEP_AGENT_CMD`) or one the operator named in
/// the agents file (see `exec::agents`); a plan only ever chooses among those.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AgentRef {
    #[default]
    Default,
    Named(String),
}

/// The name that means `STEP_AGENT_CMD` where a plan names agents (`"fallbackAgents":
/// ["default"]`); an agents file cannot define it.
pub const DEFAULT_AGENT: &str = "default";

impl AgentRef {
    /// The agent a plan's name stands for.
    #[must_use]
    pub fn named(name: &str) -> Self {
        if name == DEFAULT_AGENT {
            Self::Default
        } else {
            Self::Named(name.to_owned())
        }
    }

    /// Its name, as events and views show it.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Default => DEFAULT_AGENT,
            Self::Named(name) => name,
        }
    }
}

/// What a step asks for, as the plan wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec {
    pub title: Option<String>,
    pub instruction: String,
    /// Paths (relative to the workspace) that must exist after a successful try.
    pub required_outputs: Vec<String>,
    /// Attempts in all before the step becomes a blocker (`maxRetries`).
    pub max_tries: Option<u32>,
    /// The time limit of one attempt (`timeoutSeconds`).
    pub timeout: Option<Duration>,
    /// The outputs are spelt `required_outputs` in the file (the Python version's name).
    pub outputs_alias: bool,
    /// A file whose content is the step's result, instead of its stdout (`resultFile`).
    pub result_file: Option<String>,
    /// Which earlier results its prompt carries (`context`; else the plan's).
    pub context: Option<ContextMode>,
    /// The checks its result must pass (`verify`), boxed: most steps have none.
    pub verify: Option<Box<Verify>>,
    /// The named agent of its first try (`agent`; none: `STEP_AGENT_CMD`).
    pub agent: Option<String>,
    /// The agents of its later tries, the last one repeating (`fallbackAgents`).
    pub fallback_agents: Option<Vec<String>>,
}

impl StepSpec {
    /// A new step's spec.
    #[must_use]
    pub fn new(title: Option<String>, instruction: String) -> Self {
        Self {
            title,
            instruction,
            required_outputs: Vec::new(),
            max_tries: None,
            timeout: None,
            outputs_alias: false,
            result_file: None,
            context: None,
            verify: None,
            agent: None,
            fallback_agents: None,
        }
    }

    /// The agent that runs try `attempt` (1-based): the k-th of `[agent, fallbackAgents…]`,
    /// the last one repeating; without `agent`, try 1 is `STEP_AGENT_CMD`'s.
    #[must_use]
    pub fn agent_for(&self, attempt: u32) -> AgentRef {
        let fallbacks = self.fallback_agents.as_deref().unwrap_or_default();
        let index = (attempt.max(1) - 1) as usize;
        let name = if index == 0 {
            self.agent.as_deref()
        } else {
            fallbacks
                .get(index - 1)
                .or(fallbacks.last())
                .map(String::as_str)
                .or(self.agent.as_deref())
        };
        name.map_or(AgentRef::Default, AgentRef::named)
    }

    /// Writes the spec into the file's step, leaving the step's extras as they are.
    fn into_file(self, step: &mut schema::Step) {
        step.title = self.title;
        step.instruction = Some(self.instruction);
        // Written under the spelling the file used; an empty list only where one was.
        let field = if self.outputs_alias {
            &mut step.required_outputs_alias
        } else {
            &mut step.required_outputs
        };
        if !self.required_outputs.is_empty() || field.is_some() {
            *field = Some(self.required_outputs);
        }
        step.max_retries = self.max_tries;
        step.timeout_seconds = self.timeout.map(|t| t.as_secs());
        step.result_file = self.result_file;
        step.context = self.context;
        step.verify = self.verify.map(|v| *v);
        step.agent = self.agent;
        step.fallback_agents = self.fallback_agents;
    }
}

/// Where a step's try stands, with what matters in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryState<'a> {
    /// Not started, or reset for a fresh set of tries (`tries` may be above 0 in files the
    /// Python version wrote: it set a failed step back to PENDING before retrying it).
    Pending {
        tries: u32,
    },
    Running {
        attempt: u32,
        since: Option<DateTime<Utc>>,
        /// The runner that runs it, if the record names one (the Python version's do not).
        runner: Option<RunnerId>,
    },
    Done {
        attempt: u32,
        at: Option<DateTime<Utc>>,
    },
    Failed {
        attempt: u32,
        at: Option<DateTime<Utc>>,
        error: &'a str,
    },
    Skipped {
        tries: u32,
    },
}

/// A step's run record, as state.json keeps it (minus the extras, which stay in the file).
/// Fields are private: every change goes through a transition below.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    /// Whether state.json has a record for the step (a step never run has none, and keeps none).
    on_file: bool,
    status: StepStatus,
    tries: u32,
    last_run_iso: Option<String>,
    error: Option<String>,
    stdout: Option<String>,
    started_iso: Option<String>,
    finished_iso: Option<String>,
    duration_ms: Option<u64>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    log_file: Option<String>,
    note: Option<String>,
    runner: Option<RunnerId>,
    agent: Option<String>,
}

/// How a finished try came out, as the runner judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryOutcome {
    /// `Ok(artifacts)` for DONE (the required outputs, which exist); `Err(error)` for FAILED.
    pub verdict: Result<Vec<String>, String>,
    pub stdout_tail: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ms: u64,
    /// How the runner stopped the agent, if it did (a cancel, a timeout, a signal).
    pub stopped: Option<crate::core::verdict::Stopped>,
}

fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(timefmt::parse)
}

impl Run {
    /// The typed view of the record.
    #[must_use]
    pub fn state(&self) -> TryState<'_> {
        let tries = self.tries;
        match self.status {
            StepStatus::Pending => TryState::Pending { tries },
            StepStatus::InProgress => TryState::Running {
                attempt: tries,
                since: parse_time(self.started_iso.as_deref().or(self.last_run_iso.as_deref())),
                runner: self.runner,
            },
            StepStatus::Done => TryState::Done {
                attempt: tries,
                at: self.ended_at(),
            },
            StepStatus::Failed => TryState::Failed {
                attempt: tries,
                at: self.ended_at(),
                error: self.error.as_deref().unwrap_or_default(),
            },
            StepStatus::Skipped => TryState::Skipped { tries },
        }
    }

    /// When the last try ended: `finishedIso`, or the Python version's `lastRunIso`.
    #[must_use]
    pub fn ended_at(&self) -> Option<DateTime<Utc>> {
        parse_time(
            self.finished_iso
                .as_deref()
                .or(self.last_run_iso.as_deref()),
        )
    }

    #[must_use]
    pub fn status(&self) -> StepStatus {
        self.status
    }

    /// Attempts started so far.
    #[must_use]
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// The last failure's words; kept after a later success, as the Python version did.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The tail of the last try's stdout.
    #[must_use]
    pub fn stdout(&self) -> Option<&str> {
        self.stdout.as_deref()
    }

    /// The named agent that ran the last try (`None`: `STEP_AGENT_CMD`).
    #[must_use]
    pub fn agent(&self) -> Option<&str> {
        self.agent.as_deref()
    }

    /// A person's hint for the next try (`seqctl retry --note`).
    #[must_use]
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    #[must_use]
    pub fn started_text(&self) -> Option<&str> {
        self.started_iso.as_deref().or(self.last_run_iso.as_deref())
    }

    #[must_use]
    pub fn ended_text(&self) -> Option<&str> {
        self.finished_iso
            .as_deref()
            .or(self.last_run_iso.as_deref())
    }

    #[must_use]
    pub fn duration_ms(&self) -> Option<u64> {
        self.duration_ms
    }

    /// Marks a try started: IN_PROGRESS, one more try, when, by which runner, and where its
    /// output goes.
    pub(crate) fn start(
        &mut self,
        now: DateTime<Utc>,
        runner: Option<RunnerId>,
        agent: &AgentRef,
        log_file: Option<String>,
    ) {
        self.runner = runner;
        self.agent = match agent {
            AgentRef::Named(name) => Some(name.clone()),
            AgentRef::Default => None,
        };
        let stamp = timefmt::format(now);
        self.status = StepStatus::InProgress;
        self.tries = self.tries.saturating_add(1);
        self.last_run_iso = Some(stamp.clone());
        self.started_iso = Some(stamp);
        self.finished_iso = None;
        self.duration_ms = None;
        self.exit_code = None;
        self.signal = None;
        self.log_file = log_file;
        self.note = None;
    }

    /// Records how the try in flight ended.
    pub(crate) fn finish(&mut self, now: DateTime<Utc>, outcome: &TryOutcome) {
        let stamp = timefmt::format(now);
        self.runner = None;
        self.last_run_iso = Some(stamp.clone());
        self.finished_iso = Some(stamp);
        self.duration_ms = Some(outcome.duration_ms);
        self.exit_code = outcome.exit_code;
        self.signal = outcome.signal;
        self.stdout = Some(outcome.stdout_tail.clone());
        match &outcome.verdict {
            // `error` stays, as in the Python version: the last failure's words, for the record.
            Ok(_) => self.status = StepStatus::Done,
            Err(error) => {
                self.status = StepStatus::Failed;
                self.error = Some(error.clone());
            }
        }
    }

    /// Ends the try in flight as failed without a result from its agent, with `error` saying
    /// why. `timed`: the try was stopped now (cancelled), so its duration is known; an
    /// interrupted try's end is unknown, only when it was noticed.
    pub(crate) fn fail(&mut self, now: DateTime<Utc>, error: String, timed: bool) {
        self.runner = None;
        self.status = StepStatus::Failed;
        self.error = Some(error);
        if timed {
            self.duration_ms = parse_time(self.started_iso.as_deref())
                .map(|started| (now - started).num_milliseconds().max(0) as u64);
        }
        self.finished_iso = Some(timefmt::format(now));
    }

    /// Takes back the try in flight, as if it had not started: it was stopped by a signal to
    /// its runner, which is no failure of the step's. Its error stays the earlier try's.
    pub(crate) fn uncount(&mut self, now: DateTime<Utc>) {
        self.runner = None;
        self.tries = self.tries.saturating_sub(1);
        self.status = if self.tries > 0 {
            StepStatus::Failed
        } else {
            StepStatus::Pending
        };
        self.finished_iso = Some(timefmt::format(now));
    }

    /// A fresh set of tries, with a person's note for the first.
    pub(crate) fn reset(&mut self, note: Option<String>) {
        self.status = StepStatus::Pending;
        self.tries = 0;
        self.error = None;
        self.note = note;
    }

    pub(crate) fn skip(&mut self) {
        self.status = StepStatus::Skipped;
    }

    /// Moves the owned fields out of a record, leaving its extras where they are.
    fn from_file(record: &mut StepRun) -> Self {
        Self {
            on_file: true,
            status: record.status,
            tries: record.tries,
            last_run_iso: record.last_run_iso.take(),
            error: record.error.take(),
            stdout: record.stdout.take(),
            started_iso: record.started_iso.take(),
            finished_iso: record.finished_iso.take(),
            duration_ms: record.duration_ms.take(),
            exit_code: record.exit_code.take(),
            signal: record.signal.take(),
            log_file: record.log_file.take(),
            note: record.note.take(),
            runner: record.runner.take(),
            agent: record.agent.take(),
        }
    }

    fn into_file(self, record: &mut StepRun) {
        record.status = self.status;
        record.tries = self.tries;
        record.last_run_iso = self.last_run_iso;
        record.error = self.error;
        record.stdout = self.stdout;
        record.started_iso = self.started_iso;
        record.finished_iso = self.finished_iso;
        record.duration_ms = self.duration_ms;
        record.exit_code = self.exit_code;
        record.signal = self.signal;
        record.log_file = self.log_file;
        record.note = self.note;
        record.runner = self.runner;
        record.agent = self.agent;
    }
}

/// One queued step: what it asks for and how its tries went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: StepId,
    pub spec: StepSpec,
    pub run: Run,
}

impl Step {
    /// Attempts the step gets: its own `maxRetries`, else the configured limit.
    #[must_use]
    pub fn max_tries(&self, default: u32) -> u32 {
        self.spec.max_tries.unwrap_or(default)
    }
}

/// The whole plan: queued steps, the cursor, and the plan-wide facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub(crate) steps: Vec<Step>,
    /// `currentStep`: the index of the step in hand; `steps.len()` when past the end.
    pub(crate) cursor: usize,
    pub(crate) delay: TimeDelta,
    pub(crate) paused: bool,
    pub(crate) done: bool,
    pub(crate) finished_iso: Option<String>,
    pub(crate) finish_reported: bool,
    /// `blockerReportedIso`: when a standing blocker was last told of (`--no-reply`).
    pub(crate) blocker_reported_iso: Option<String>,
    pub(crate) blockers: Option<Vec<String>>,
    pub(crate) artifacts: Option<Vec<String>>,
    pub(crate) last_heartbeat_iso: Option<String>,
    /// Steps added, edited or removed, for [`Plan::put_back`].
    pub(crate) reshaped: Reshaped,
    /// How earlier results reach the prompts (`plan.context`, `contextMaxChars`,
    /// `compressAgent`).
    pub(crate) results: ResultSettings,
}

/// How earlier results reach a step's prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSettings {
    /// The steps' default context.
    pub context: ContextMode,
    /// The most characters results may add to one prompt.
    pub max_chars: usize,
    /// A named agent that summarises what does not fit, instead of cutting it.
    pub compress_agent: Option<String>,
}

/// The bound on the text results add to one prompt, unless `plan.contextMaxChars` says.
pub const DEFAULT_CONTEXT_MAX_CHARS: usize = 20_000;

/// Whether the plan's steps changed (so the specs and the queue are written back too), and
/// which were removed (their definitions and records go from the file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reshaped {
    pub(crate) changed: bool,
    pub(crate) removed: Vec<StepId>,
}

impl Plan {
    /// Takes the plan out of a (validated) state: the queued steps' records are moved out of
    /// `state`, which must get them back with [`Plan::put_back`].
    #[must_use]
    pub fn take(state: &mut State) -> Self {
        let steps = state
            .step_queue
            .iter()
            .map(|id| {
                let def = state.plan.steps.get(id.as_str());
                let spec = StepSpec {
                    title: def.and_then(|d| d.title.clone()),
                    instruction: def.map(|d| d.instruction().to_owned()).unwrap_or_default(),
                    required_outputs: def
                        .map(|d| d.required_outputs().to_vec())
                        .unwrap_or_default(),
                    max_tries: def.and_then(|d| d.max_retries),
                    timeout: def.and_then(|d| d.timeout_seconds).map(Duration::from_secs),
                    outputs_alias: def.is_some_and(|d| d.required_outputs_alias.is_some()),
                    result_file: def.and_then(|d| d.result_file.clone()),
                    context: def.and_then(|d| d.context),
                    verify: def.and_then(|d| d.verify.clone().map(Box::new)),
                    agent: def.and_then(|d| d.agent.clone()),
                    fallback_agents: def.and_then(|d| d.fallback_agents.clone()),
                };
                let run = state
                    .step_runs
                    .get_mut(id.as_str())
                    .map(Run::from_file)
                    .unwrap_or_default();
                Step {
                    id: StepId::from(id.as_str()),
                    spec,
                    run,
                }
            })
            .collect();
        Self {
            steps,
            cursor: usize::try_from(state.current_step).unwrap_or(usize::MAX),
            delay: TimeDelta::milliseconds((state.delay_minutes() * 60_000.0).round() as i64),
            paused: state.paused,
            done: state.status == PlanStatus::Done,
            finished_iso: state.finished_iso.clone(),
            finish_reported: state.finish_reported,
            blocker_reported_iso: state.blocker_reported_iso.clone(),
            blockers: state.blockers.clone(),
            artifacts: state.artifacts.clone(),
            last_heartbeat_iso: state.last_heartbeat_iso.clone(),
            reshaped: Reshaped::default(),
            results: ResultSettings {
                context: state.plan.context.unwrap_or_default(),
                max_chars: state
                    .plan
                    .context_max_chars
                    .map_or(DEFAULT_CONTEXT_MAX_CHARS, |n| {
                        usize::try_from(n).unwrap_or(usize::MAX)
                    }),
                compress_agent: state.plan.compress_agent.clone(),
            },
        }
    }

    /// A copy of the plan in `state`, leaving `state` as it is (for read-only views).
    #[must_use]
    pub fn of(state: &State) -> Self {
        Self::take(&mut state.clone())
    }

    /// Puts the plan back into the state it was taken from: every field this model owns is
    /// written; everything else (extras, steps not queued, specs) is as it was.
    pub fn put_back(self, state: &mut State) {
        if self.reshaped.changed {
            for id in &self.reshaped.removed {
                state.plan.steps.shift_remove(id.as_str());
                state.step_runs.shift_remove(id.as_str());
            }
            state.step_queue = self.steps.iter().map(|s| s.id.0.clone()).collect();
            for step in &self.steps {
                let def = state.plan.steps.entry(step.id.0.clone()).or_default();
                step.spec.clone().into_file(def);
            }
        }
        for step in self.steps {
            let run = step.run;
            if let Some(record) = state.step_runs.get_mut(step.id.as_str()) {
                run.into_file(record);
            } else if run != Run::default() {
                // A step never run has no record; it gets one once something happened to it.
                let mut record = StepRun::default();
                run.into_file(&mut record);
                state.step_runs.insert(step.id.0, record);
            }
        }
        state.current_step = self.cursor as u64;
        state.paused = self.paused;
        state.status = if self.done {
            PlanStatus::Done
        } else {
            PlanStatus::InProgress
        };
        state.finished_iso = self.finished_iso;
        state.finish_reported = self.finish_reported;
        state.blocker_reported_iso = self.blocker_reported_iso;
        state.blockers = self.blockers;
        state.artifacts = self.artifacts;
        state.last_heartbeat_iso = self.last_heartbeat_iso;
    }

    #[must_use]
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    #[must_use]
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == *id)
    }

    pub(crate) fn step_mut(&mut self, id: &str) -> Option<&mut Step> {
        self.steps.iter_mut().find(|s| s.id == *id)
    }

    /// The queue position of a step.
    #[must_use]
    pub fn position(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == *id)
    }

    /// The step in hand (`currentStep`), if the plan is not past its end.
    #[must_use]
    pub fn current(&self) -> Option<&Step> {
        self.steps.get(self.cursor)
    }

    /// The step before the one in hand.
    #[must_use]
    pub fn previous(&self) -> Option<&Step> {
        self.cursor.checked_sub(1).and_then(|i| self.steps.get(i))
    }

    #[must_use]
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// How earlier results reach the prompts.
    #[must_use]
    pub fn result_settings(&self) -> &ResultSettings {
        &self.results
    }

    /// `stepDelayMinutes`: the wait between steps and before retries.
    #[must_use]
    pub fn delay(&self) -> TimeDelta {
        self.delay
    }

    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Status DONE: nothing more will ever run.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done
    }

    #[must_use]
    pub fn blockers(&self) -> &[String] {
        self.blockers.as_deref().unwrap_or_default()
    }

    #[must_use]
    pub fn artifacts(&self) -> &[String] {
        self.artifacts.as_deref().unwrap_or_default()
    }

    #[must_use]
    pub fn last_heartbeat(&self) -> Option<&str> {
        self.last_heartbeat_iso.as_deref()
    }

    /// Counts the queued steps in a status.
    #[must_use]
    pub fn count(&self, status: StepStatus) -> usize {
        self.steps.iter().filter(|s| s.run.status == status).count()
    }

    /// The steps whose try is IN_PROGRESS on file (alive or not: see `Liveness`).
    pub fn running(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(|s| s.run.status == StepStatus::InProgress)
    }

    /// Whether no heartbeat has told of the plan's finish yet, as of `now`. Exactly once: a
    /// heartbeat that tells records it (`finishReported`). Files without that record (the
    /// previous version's) are judged by the times, a heartbeat stamped in the future counting
    /// for none (a clock set back, or a hand edit, must not keep the news from the user).
    #[must_use]
    pub fn finish_unreported(&self, now: DateTime<Utc>) -> bool {
        if self.finish_reported {
            return false;
        }
        let finished = parse_time(self.finished_iso.as_deref());
        let heartbeat = parse_time(self.last_heartbeat_iso.as_deref()).filter(|h| *h <= now);
        match (finished, heartbeat) {
            (Some(finished), Some(heartbeat)) => finished.min(now) > heartbeat,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Whether the blocker of `step` is news to a person as of `now`: never told of, blocked
    /// (again) since it was last told of, or last told of a day or more ago. A report time
    /// in the future counts for none (a clock set back must not silence a blocker).
    #[must_use]
    pub fn blocker_news(&self, step: &str, now: DateTime<Utc>) -> bool {
        let Some(reported) = parse_time(self.blocker_reported_iso.as_deref()).filter(|t| *t <= now)
        else {
            return true;
        };
        let blocked_at = self.step(step).and_then(|s| s.run.ended_at());
        blocked_at.is_some_and(|at| at.min(now) > reported) || now - reported >= BLOCKER_REMINDER
    }
}

/// A standing blocker is told of again after this long (`seq-check --no-reply`).
pub const BLOCKER_REMINDER: TimeDelta = TimeDelta::days(1);

/// The blocker line for a step, in the Python version's words.
#[must_use]
pub fn blocker_text(id: &StepId, max: u32) -> String {
    format!("{id}: max retries ({max}) exceeded")
}

/// Whether a blocker line is about this step.
#[must_use]
pub fn is_blocker_for(line: &str, id: &str) -> bool {
    line.strip_prefix(id)
        .is_some_and(|rest| rest.starts_with(": "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::validate;

    const LEGACY: &str = r#"{"plan":{"steps":{"a":{"instruction":"do a","mine":1},"b":{"instruction":"do b"},
        "c":{"instruction":"never queued"}},"planNote":"x"},
        "stepQueue":["a","b"],"currentStep":1,
        "stepRuns":{"a":{"status":"DONE","tries":2,"lastRunIso":"2026-02-07T12:00:00.123456","error":"boom","agentNote":[1]},
                    "zz":{"status":"FAILED"}},
        "stepDelayMinutes":0.5,"blockers":[],"status":"IN_PROGRESS","extra":{"k":"v"}}"#;

    #[test]
    fn a_plan_taken_out_and_put_back_unchanged_is_the_same_state() {
        let original = validate::parse(LEGACY.as_bytes()).unwrap();
        let mut state = original.clone();
        let plan = Plan::take(&mut state);
        assert_eq!(plan.steps.len(), 2);
        assert_eq!(plan.delay, TimeDelta::seconds(30));
        plan.put_back(&mut state);
        assert_eq!(state, original);
    }

    #[test]
    fn the_typed_view_carries_each_states_data() {
        let mut state = validate::parse(LEGACY.as_bytes()).unwrap();
        let mut plan = Plan::take(&mut state);
        let a = &plan.steps[0].run;
        assert_eq!(
            a.state(),
            TryState::Done {
                attempt: 2,
                at: timefmt::parse("2026-02-07T12:00:00.123456")
            }
        );
        assert_eq!(plan.steps[1].run.state(), TryState::Pending { tries: 0 });
        let now = timefmt::parse("2026-03-01T10:00:00Z").unwrap();
        let b = &mut plan.steps[1].run;
        let runner = RunnerId { pid: 7, start: 99 };
        b.start(now, Some(runner), &AgentRef::Default, Some("log".into()));
        assert_eq!(
            b.state(),
            TryState::Running {
                attempt: 1,
                since: Some(now),
                runner: Some(runner)
            }
        );
        b.fail(now + TimeDelta::seconds(2), "gone".into(), true);
        assert_eq!(
            b.state(),
            TryState::Failed {
                attempt: 1,
                at: Some(now + TimeDelta::seconds(2)),
                error: "gone"
            }
        );
        assert_eq!(b.duration_ms(), Some(2000));
        plan.put_back(&mut state);
        // The record now exists, and the Python one's extras are untouched.
        assert_eq!(state.step_runs["b"].status, StepStatus::Failed);
        assert_eq!(
            state.step_runs["a"].extra["agentNote"],
            serde_json::json!([1])
        );
        assert!(state.step_runs.contains_key("zz"));
    }

    #[test]
    fn a_blocker_is_news_once_then_daily_and_again_when_blocked_anew() {
        let at = |t: &str| timefmt::parse(t).unwrap();
        let plan = |reported: &str| {
            Plan::of(
                &validate::parse(
                    format!(
                        r#"{{"plan":{{"steps":{{"a":{{"instruction":"x"}}}}}},"stepQueue":["a"],
                        "stepRuns":{{"a":{{"status":"FAILED","tries":3,"finishedIso":"2026-03-01T10:00:00Z"}}}},
                        "blockers":["a: max retries (3) exceeded"]{reported}}}"#
                    )
                    .as_bytes(),
                )
                .unwrap(),
            )
        };
        let now = at("2026-03-01T12:00:00Z");
        assert!(plan("").blocker_news("a", now), "never told of");
        let told = plan(r#","blockerReportedIso":"2026-03-01T11:00:00Z""#);
        assert!(!told.blocker_news("a", now), "told an hour ago");
        assert!(
            told.blocker_news("a", at("2026-03-02T11:00:00Z")),
            "a day later"
        );
        let before = plan(r#","blockerReportedIso":"2026-03-01T09:00:00Z""#);
        assert!(before.blocker_news("a", now), "blocked again since");
        let future = plan(r#","blockerReportedIso":"2030-01-01T00:00:00Z""#);
        assert!(
            future.blocker_news("a", now),
            "a time in the future counts for none"
        );
    }
}
