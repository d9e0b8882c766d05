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
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::format::graph::Graph;
use crate::format::item_run::{ItemRun, Unread};
use crate::format::schema::{
    self, ContextMode, ForEach, PlanStatus, Repeat, RunnerId, State, StepRun, StepStatus, Verify,
    When,
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
    /// The steps it waits for (`needs`); none: the step before it in the queue.
    pub needs: Option<Vec<StepId>>,
    /// Its condition (`when`); false skips it.
    pub when: Option<Box<When>>,
    /// Out of tries, it ends FAILED without a blocker (`optional`).
    pub optional: bool,
    /// It runs once per item of a list (`forEach`).
    pub for_each: Option<Box<ForEach>>,
    /// It runs again until a check passes (`repeat`).
    pub repeat: Option<Box<Repeat>>,
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
            needs: None,
            when: None,
            optional: false,
            for_each: None,
            repeat: None,
        }
    }

    /// The spec of one of its `forEach` items: the same step, less what made it a list.
    #[must_use]
    pub fn for_item(&self) -> Self {
        Self {
            when: None,
            for_each: None,
            repeat: None,
            needs: None,
            ..self.clone()
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
        step.verify = self.verify;
        step.agent = self.agent;
        step.fallback_agents = self.fallback_agents;
        step.needs = self
            .needs
            .map(|needs| needs.into_iter().map(|id| id.0).collect());
        step.when = self.when;
        step.optional = self
            .optional
            .then_some(true)
            .or(step.optional.filter(|o| !o));
        step.for_each = self.for_each;
        step.repeat = self.repeat;
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
    /// (When it ended: [`Run::ended_at`].)
    Done {
        attempt: u32,
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
    /// Everything else: at hand, or (an item's record) still in its journal line.
    rest: Rest,
    /// `startedIso` (or `lastRunIso`) and the end, parsed when first asked and kept (see
    /// [`Run::retime`]): the rules look at them for every step of some decisions, and a
    /// heartbeat on a plan that is done at none.
    times: Memo<Times>,
    /// A transition changed it since it was taken from the file: every `&mut self` method
    /// below marks it, so a save can write only the records that changed (`store::journal`).
    touched: Touched,
}

/// A run record's fields beyond its status and tries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fields {
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
    /// Why the plan skipped it (`when`), or why an optional step ended FAILED for good.
    reason: Option<String>,
    /// A `repeat` step's run in hand (absent: the first).
    round: Option<u32>,
    /// Why a `repeat` step runs again.
    why_again: Option<String>,
    /// `tries` when the run in hand began.
    round_start: Option<u32>,
    /// A `forEach` step's items, once expanded: shared with the items' steps.
    items: Option<Arc<Vec<String>>>,
}

/// A record's [`Fields`], read from an item's journal line when first asked (see
/// `format::item_run`): on a plan of ten thousand items that are over, nothing asks.
#[derive(Debug, Clone, Default)]
struct Rest {
    fields: std::cell::OnceCell<Box<Fields>>,
    /// The line they are read from; dropped once they may change.
    unread: Option<Unread>,
}

impl Rest {
    fn known(fields: Fields) -> Self {
        Self {
            fields: std::cell::OnceCell::from(Box::new(fields)),
            unread: None,
        }
    }

    fn get(&self) -> &Fields {
        self.fields.get_or_init(|| {
            Box::new(
                self.unread
                    .as_ref()
                    .map_or_else(Fields::default, |u| Fields::take(&mut u.parse())),
            )
        })
    }

    fn get_mut(&mut self) -> &mut Fields {
        self.get();
        self.unread = None;
        self.fields.get_mut().expect("read just above")
    }
}

impl PartialEq for Rest {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Rest {}

/// Whether a record was changed; no part of what it means (two runs that differ only in it
/// are equal).
#[derive(Debug, Clone, Copy, Default)]
struct Touched(bool);

impl PartialEq for Touched {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Touched {}

/// When a try started, and when the last one ended.
type Times = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A value worked out when first needed and kept; no part of what its owner means, so two
/// owners that differ only in it are equal.
#[derive(Debug, Clone, Default)]
pub(crate) struct Memo<T>(std::cell::OnceCell<T>);

impl<T> PartialEq for Memo<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for Memo<T> {}

impl<T> Memo<T> {
    fn get(&self, work: impl FnOnce() -> T) -> &T {
        self.0.get_or_init(work)
    }

    fn forget(&mut self) {
        self.0 = std::cell::OnceCell::new();
    }

    fn known(value: T) -> Self {
        Self(std::cell::OnceCell::from(value))
    }

    fn peek(&self) -> Option<&T> {
        self.0.get()
    }
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
    /// A `repeat` step whose result did not pass its `until` check yet: why (it runs again,
    /// if it has runs left).
    pub again: Option<String>,
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
                since: self.parsed().0,
                runner: self.rest.get().runner,
            },
            // No time: a plan of a thousand DONE items asks for their state on every turn.
            StepStatus::Done => TryState::Done { attempt: tries },
            StepStatus::Failed => TryState::Failed {
                attempt: tries,
                at: self.ended_at(),
                error: self.rest.get().error.as_deref().unwrap_or_default(),
            },
            StepStatus::Skipped => TryState::Skipped { tries },
        }
    }

    /// When the last try ended: `finishedIso`, or the Python version's `lastRunIso`.
    #[must_use]
    pub fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.parsed().1
    }

    /// When the try in hand started, and when the last one ended, parsed once.
    fn parsed(&self) -> Times {
        *self.times.get(|| {
            let f = self.rest.get();
            (
                parse_time(f.started_iso.as_deref().or(f.last_run_iso.as_deref())),
                parse_time(f.finished_iso.as_deref().or(f.last_run_iso.as_deref())),
            )
        })
    }

    /// Forgets the parsed times after they changed.
    fn retime(&mut self) {
        self.times.forget();
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
        self.rest.get().error.as_deref()
    }

    /// The tail of the last try's stdout.
    #[must_use]
    pub fn stdout(&self) -> Option<&str> {
        self.rest.get().stdout.as_deref()
    }

    /// The named agent that ran the last try (`None`: `STEP_AGENT_CMD`).
    #[must_use]
    pub fn agent(&self) -> Option<&str> {
        self.rest.get().agent.as_deref()
    }

    /// A person's hint for the next try (`seqctl retry --note`).
    #[must_use]
    pub fn note(&self) -> Option<&str> {
        self.rest.get().note.as_deref()
    }

    /// Why the plan skipped the step, or why an optional step ended FAILED for good.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        self.rest.get().reason.as_deref()
    }

    /// A `repeat` step's run in hand, from 1.
    #[must_use]
    pub fn round(&self) -> u32 {
        self.rest.get().round.unwrap_or(1).max(1)
    }

    /// A `forEach` step's items, once expanded.
    #[must_use]
    pub fn items(&self) -> Option<&[String]> {
        self.rest.get().items.as_deref().map(Vec::as_slice)
    }

    /// Whether the step is over for the plan: DONE, SKIPPED, or FAILED for good (an optional
    /// step out of tries).
    #[must_use]
    pub fn finished(&self) -> bool {
        match self.status {
            StepStatus::Done | StepStatus::Skipped => true,
            StepStatus::Failed => self.rest.get().reason.is_some(),
            StepStatus::Pending | StepStatus::InProgress => false,
        }
    }

    #[must_use]
    pub fn started_text(&self) -> Option<&str> {
        let f = self.rest.get();
        f.started_iso.as_deref().or(f.last_run_iso.as_deref())
    }

    #[must_use]
    pub fn ended_text(&self) -> Option<&str> {
        let f = self.rest.get();
        f.finished_iso.as_deref().or(f.last_run_iso.as_deref())
    }

    #[must_use]
    pub fn duration_ms(&self) -> Option<u64> {
        self.rest.get().duration_ms
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
        self.touched = Touched(true);
        let f = self.rest.get_mut();
        f.runner = runner;
        f.agent = match agent {
            AgentRef::Named(name) => Some(name.clone()),
            AgentRef::Default => None,
        };
        let stamp = timefmt::format(now);
        self.status = StepStatus::InProgress;
        self.tries = self.tries.saturating_add(1);
        f.last_run_iso = Some(stamp.clone());
        f.started_iso = Some(stamp);
        f.finished_iso = None;
        f.duration_ms = None;
        f.exit_code = None;
        f.signal = None;
        f.log_file = log_file;
        f.note = None;
        self.retime();
    }

    /// Records how the try in flight ended.
    pub(crate) fn finish(&mut self, now: DateTime<Utc>, outcome: &TryOutcome) {
        self.touched = Touched(true);
        let f = self.rest.get_mut();
        let stamp = timefmt::format(now);
        f.runner = None;
        f.last_run_iso = Some(stamp.clone());
        f.finished_iso = Some(stamp);
        f.duration_ms = Some(outcome.duration_ms);
        f.exit_code = outcome.exit_code;
        f.signal = outcome.signal;
        f.stdout = Some(outcome.stdout_tail.clone());
        match &outcome.verdict {
            // `error` stays, as in the Python version: the last failure's words, for the record.
            Ok(_) => self.status = StepStatus::Done,
            Err(error) => {
                self.status = StepStatus::Failed;
                f.error = Some(error.clone());
            }
        }
        self.retime();
    }

    /// Ends the try in flight as failed without a result from its agent, with `error` saying
    /// why. `timed`: the try was stopped now (cancelled), so its duration is known; an
    /// interrupted try's end is unknown, only when it was noticed.
    pub(crate) fn fail(&mut self, now: DateTime<Utc>, error: String, timed: bool) {
        self.touched = Touched(true);
        let f = self.rest.get_mut();
        f.runner = None;
        self.status = StepStatus::Failed;
        f.error = Some(error);
        if timed {
            f.duration_ms = parse_time(f.started_iso.as_deref())
                .map(|started| (now - started).num_milliseconds().max(0) as u64);
        }
        f.finished_iso = Some(timefmt::format(now));
        self.retime();
    }

    /// Takes back the try in flight, as if it had not started: it was stopped by a signal to
    /// its runner, which is no failure of the step's. Its error stays the earlier try's.
    pub(crate) fn uncount(&mut self, now: DateTime<Utc>) {
        self.touched = Touched(true);
        let f = self.rest.get_mut();
        f.runner = None;
        self.tries = self.tries.saturating_sub(1);
        self.status = if self.tries > 0 {
            StepStatus::Failed
        } else {
            StepStatus::Pending
        };
        f.finished_iso = Some(timefmt::format(now));
        self.retime();
    }

    /// A fresh set of tries, with a person's note for the first.
    pub(crate) fn reset(&mut self, note: Option<String>) {
        self.touched = Touched(true);
        let f = self.rest.get_mut();
        self.status = StepStatus::Pending;
        self.tries = 0;
        f.error = None;
        f.note = note;
        f.reason = None;
        f.round = None;
        f.why_again = None;
        f.round_start = None;
        f.items = None;
    }

    pub(crate) fn skip(&mut self) {
        self.touched = Touched(true);
        self.status = StepStatus::Skipped;
    }

    /// Skipped by the plan itself (its `when` was false), saying why.
    pub(crate) fn skip_because(&mut self, now: DateTime<Utc>, reason: String) {
        self.touched = Touched(true);
        let f = self.rest.get_mut();
        self.status = StepStatus::Skipped;
        f.reason = Some(reason);
        f.finished_iso = Some(timefmt::format(now));
        self.retime();
    }

    /// An optional step out of tries: FAILED for good, saying so.
    pub(crate) fn give_up(&mut self, reason: String) {
        self.touched = Touched(true);
        let f = self.rest.get_mut();
        f.reason = Some(reason);
    }

    /// A `forEach` step's items, now known; the step is then done when they are.
    pub(crate) fn expand(&mut self, now: DateTime<Utc>, items: Vec<String>) {
        self.touched = Touched(true);
        let f = self.rest.get_mut();
        f.items = Some(Arc::new(items));
        self.status = StepStatus::Pending;
        f.started_iso = Some(timefmt::format(now));
        f.last_run_iso = f.started_iso.clone();
        self.retime();
    }

    /// A `forEach` step whose items are all over.
    pub(crate) fn complete(&mut self, now: DateTime<Utc>) {
        self.touched = Touched(true);
        let f = self.rest.get_mut();
        let stamp = timefmt::format(now);
        self.status = StepStatus::Done;
        f.last_run_iso = Some(stamp.clone());
        f.finished_iso = Some(stamp);
        self.retime();
    }

    /// A `forEach` step done with its items, opened again because one of them is retried.
    pub(crate) fn reopen(&mut self) {
        self.touched = Touched(true);
        let f = self.rest.get_mut();
        if f.items.is_some() && self.status == StepStatus::Done {
            self.status = StepStatus::Pending;
            f.finished_iso = None;
        }
        self.retime();
    }

    /// A `repeat` step's next run: a fresh set of tries, one round on, and why.
    pub(crate) fn next_round(&mut self, why: String) {
        self.touched = Touched(true);
        let round = self.round() + 1;
        let f = self.rest.get_mut();
        f.round = Some(round);
        self.status = StepStatus::Pending;
        f.round_start = Some(self.tries);
        f.why_again = Some(why);
    }

    /// The tries of the run in hand (a `repeat` step's later runs count from their start).
    #[must_use]
    pub fn tries_this_run(&self) -> u32 {
        self.tries
            .saturating_sub(self.rest.get().round_start.unwrap_or(0))
    }

    /// Why a `repeat` step runs again, in a round after the first.
    #[must_use]
    pub fn why_again(&self) -> Option<&str> {
        self.rest.get().why_again.as_deref()
    }

    /// Moves the owned fields out of a record, leaving its extras where they are.
    fn from_file(record: &mut StepRun) -> Self {
        Self {
            on_file: true,
            status: record.status,
            tries: record.tries,
            rest: Rest::known(Fields::take(record)),
            times: Memo::default(),
            touched: Touched(false),
        }
    }

    /// An item's record from its journal, read whole only when something asks.
    fn from_item(record: ItemRun) -> Self {
        match record {
            ItemRun::Empty => Self::from_file(&mut StepRun::default()),
            ItemRun::Parsed(mut record) => Self::from_file(&mut record),
            ItemRun::Unread(unread) => Self {
                on_file: true,
                status: unread.status(),
                tries: unread.tries(),
                rest: Rest {
                    fields: std::cell::OnceCell::new(),
                    unread: Some(unread),
                },
                times: Memo::default(),
                touched: Touched(false),
            },
            ItemRun::Kept(kept) => {
                let (unread, mut record) = *kept;
                Self {
                    on_file: true,
                    status: unread.status(),
                    tries: unread.tries(),
                    rest: Rest {
                        fields: std::cell::OnceCell::from(Box::new(Fields::take(&mut record))),
                        unread: Some(unread),
                    },
                    times: Memo::default(),
                    touched: Touched(false),
                }
            }
        }
    }

    fn into_file(self, record: &mut StepRun) {
        record.status = self.status;
        record.tries = self.tries;
        let f = self.rest.fields.into_inner().map_or_else(
            || {
                self.rest
                    .unread
                    .map_or_else(Fields::default, |u| Fields::take(&mut u.parse()))
            },
            |f| *f,
        );
        f.into_file(record);
    }

    /// The item's record for its journal: the line it was read from while nothing changed it
    /// (so a save sees it unchanged without reading it), with the record read from it if it
    /// was (so it is not read again).
    fn into_item(mut self) -> ItemRun {
        let unchanged = self
            .rest
            .unread
            .as_ref()
            .is_some_and(|u| u.status() == self.status && u.tries() == self.tries);
        match self.rest.unread.take() {
            Some(unread) if unchanged => match self.rest.fields.take() {
                None => ItemRun::Unread(unread),
                Some(fields) => {
                    let mut record = StepRun {
                        status: self.status,
                        tries: self.tries,
                        ..StepRun::default()
                    };
                    fields.into_file(&mut record);
                    ItemRun::Kept(Box::new((unread, record)))
                }
            },
            unread => {
                // Changed: the whole record, read from its line if it was not yet.
                self.rest.unread = unread;
                let mut record = StepRun::default();
                self.into_file(&mut record);
                ItemRun::from(record)
            }
        }
    }
}

impl Fields {
    /// Moves these fields out of a record.
    fn take(record: &mut StepRun) -> Self {
        Self {
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
            reason: record.reason.take(),
            round: record.round.take(),
            why_again: record.why_again.take(),
            round_start: record.round_start.take(),
            items: record.items.take().map(Arc::new),
        }
    }

    fn into_file(self, record: &mut StepRun) {
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
        record.reason = self.reason;
        record.round = self.round;
        record.why_again = self.why_again;
        record.round_start = self.round_start;
        // The items' steps, which shared them, are gone by now: moved back, not copied.
        record.items = self
            .items
            .map(|items| Arc::try_unwrap(items).unwrap_or_else(|items| Vec::clone(&items)));
    }
}

/// One queued step (or one item of a `forEach` step): what it asks for and how its tries
/// went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: StepId,
    /// Shared: the items of a `forEach` step all have the same spec.
    pub spec: Arc<StepSpec>,
    pub run: Run,
    /// For an item of a `forEach` step: which, and its text.
    pub item: Option<Item>,
}

/// One item of a `forEach` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its step and the texts of all its items, shared by them: a plan of ten thousand items
    /// holds them once.
    of: Arc<ItemList>,
    /// From 1.
    pub index: usize,
}

#[derive(Debug, PartialEq, Eq)]
struct ItemList {
    parent: StepId,
    texts: Arc<Vec<String>>,
}

impl Item {
    /// The `forEach` step it is an item of.
    #[must_use]
    pub fn parent(&self) -> &StepId {
        &self.of.parent
    }

    /// Its text: the `{{item}}` of its instruction.
    #[must_use]
    pub fn text(&self) -> &str {
        self.of
            .texts
            .get(self.index.wrapping_sub(1))
            .map_or("", String::as_str)
    }
}

/// The steps of the items of the expanded `forEach` step `parent`, whose run is `run` (of
/// which they share the texts), each with its spec and the run `runs` gives it (by index from
/// 0).
pub(crate) fn item_steps(
    parent: &StepId,
    run: &Run,
    spec: &StepSpec,
    mut runs: impl FnMut(usize) -> Run,
) -> Vec<Step> {
    let Some(texts) = run.rest.get().items.clone() else {
        return Vec::new();
    };
    let item_spec = Arc::new(spec.for_item());
    let of = Arc::new(ItemList {
        parent: parent.clone(),
        texts,
    });
    (0..of.texts.len())
        .map(|n| Step {
            id: item_id(parent.as_str(), n + 1),
            spec: Arc::clone(&item_spec),
            run: runs(n),
            item: Some(Item {
                of: Arc::clone(&of),
                index: n + 1,
            }),
        })
        .collect()
}

/// The id of item `index` (from 1) of step `parent`: `parent[index]`.
#[must_use]
pub fn item_id(parent: &str, index: usize) -> StepId {
    // Not `format!`: a heartbeat on a plan of ten thousand items makes ten thousand of them.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = index;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut id = String::with_capacity(parent.len() + digits.len() - at + 2);
    id.push_str(parent);
    id.push('[');
    id.extend(digits[at..].iter().map(|d| char::from(*d)));
    id.push(']');
    StepId(id)
}

/// The parent and index of an item's id.
#[must_use]
pub fn parse_item_id(id: &str) -> Option<(&str, usize)> {
    let (parent, n) = id.strip_suffix(']')?.rsplit_once('[')?;
    let n: usize = n.parse().ok().filter(|n| *n >= 1)?;
    Some((parent, n))
}

impl Step {
    /// Whether it is a `forEach` step whose items are known: it runs no try of its own.
    #[must_use]
    pub fn is_expanded(&self) -> bool {
        self.spec.for_each.is_some() && self.run.items().is_some()
    }

    /// Attempts the step gets: its own `maxRetries`, else the configured limit.
    #[must_use]
    pub fn max_tries(&self, default: u32) -> u32 {
        self.spec.max_tries.unwrap_or(default)
    }
}

/// The whole plan: queued steps, the cursor, and the plan-wide facts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // distinct facts of the file, not a state machine
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
    /// What each queued step waits for.
    pub(crate) graph: Graph,
    /// `plan.maxParallel`: how many tries may run at once.
    pub(crate) max_parallel: usize,
    /// The items of the expanded `forEach` steps, by the step's id.
    pub(crate) items: HashMap<StepId, Vec<Step>>,
    /// Whether the items' records were read (see `ItemRuns::loaded`).
    pub(crate) items_loaded: bool,
    /// Where each queued step is in `steps`.
    pub(crate) index: HashMap<StepId, usize>,
    /// `planHash`, as recorded, and the hash of the steps as they are now.
    pub(crate) hash_recorded: Option<String>,
    pub(crate) hash_now: Memo<String>,
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

/// A step's spec, as its definition in the file gives it.
fn spec_of(def: &schema::Step) -> StepSpec {
    StepSpec {
        title: def.title.clone(),
        instruction: def.instruction().to_owned(),
        required_outputs: def.required_outputs().to_vec(),
        max_tries: def.max_retries,
        timeout: def.timeout_seconds.map(Duration::from_secs),
        outputs_alias: def.required_outputs_alias.is_some(),
        result_file: def.result_file.clone(),
        context: def.context,
        verify: def.verify.clone(),
        agent: def.agent.clone(),
        fallback_agents: def.fallback_agents.clone(),
        needs: def
            .needs
            .as_ref()
            .map(|needs| needs.iter().map(|id| StepId::from(id.as_str())).collect()),
        when: def.when.clone(),
        optional: def.optional == Some(true),
        for_each: def.for_each.clone(),
        repeat: def.repeat.clone(),
    }
}

/// What a plan worked out from its state's definitions (the steps' specs, in queue order, and
/// the fingerprint if it was asked for), handed from [`Plan::put_back_keeping`] to the next
/// [`Plan::take_reusing`] of the same, unchanged state.
#[derive(Debug, Default)]
pub struct Derived {
    specs: Vec<Arc<StepSpec>>,
    hash: Option<String>,
}

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
        Self::take_reusing(state, Derived::default())
    }

    /// [`Plan::take`] of a state that [`Plan::put_back_keeping`] gave `derived` for, and that
    /// nothing changed since: its specs and fingerprint are not worked out again. (A runner
    /// whose own save is still the file's content takes the same state turn after turn; on a
    /// plan of a thousand steps, building the specs and hashing them was a fifth of a turn.)
    #[must_use]
    pub fn take_reusing(state: &mut State, derived: Derived) -> Self {
        let reuse = derived.specs.len() == state.step_queue.len();
        let mut known = derived.specs.into_iter();
        let mut items = HashMap::new();
        let steps: Vec<Step> = state
            .step_queue
            .iter()
            .map(|id| {
                let spec = known.next().filter(|_| reuse).unwrap_or_else(|| {
                    let def = state.plan.steps.get(id.as_str());
                    Arc::new(def.map_or_else(|| StepSpec::new(None, String::new()), spec_of))
                });
                let run = state
                    .step_runs
                    .get_mut(id.as_str())
                    .map(Run::from_file)
                    .unwrap_or_default();
                let id = StepId::from(id.as_str());
                // Read without its items' records (a heartbeat while a runner works): no items.
                let wanted = spec.for_each.is_some() && state.items.loaded;
                if wanted && run.items().is_some() {
                    // The items' records come from their journal (see `store::items`).
                    let mut records = state.items.by_step.get_mut(id.as_str());
                    let list = item_steps(&id, &run, &spec, |n| {
                        records
                            .as_mut()
                            .and_then(|r| r.get_mut(n))
                            .map(|r| Run::from_item(std::mem::take(r)))
                            .unwrap_or_default()
                    });
                    items.insert(id.clone(), list);
                }
                Step {
                    id,
                    spec,
                    run,
                    item: None,
                }
            })
            .collect();
        let mut plan = Self {
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
            graph: Graph::default(),
            max_parallel: state.plan.max_parallel.map_or(1, |n| n.max(1) as usize),
            items,
            items_loaded: state.items.loaded,
            index: HashMap::new(),
            hash_recorded: state.plan_hash.clone(),
            hash_now: derived
                .hash
                .filter(|_| reuse)
                .map_or_else(Memo::default, Memo::known),
        };
        plan.reindex();
        plan
    }

    /// Rebuilds what is derived from the steps' order and `needs` (after a step is added or
    /// removed).
    pub(crate) fn reindex(&mut self) {
        self.index = self
            .steps
            .iter()
            .enumerate()
            .map(|(n, s)| (s.id.clone(), n))
            .collect();
        let index = &self.index;
        let steps = &self.steps;
        self.graph = Graph::new(steps.len(), |i| {
            steps[i].spec.needs.as_ref().map(|needs| {
                needs
                    .iter()
                    .filter_map(|id| index.get(id).copied())
                    .collect()
            })
        });
    }

    /// A copy of the plan in `state`, leaving `state` as it is (for read-only views).
    #[must_use]
    pub fn of(state: &State) -> Self {
        Self::take(&mut state.clone())
    }

    /// The ids of the steps whose run records changed since the plan was taken, in queue
    /// order, for a save that writes only those (see `store::journal`); `None` when more than
    /// run records changed (steps added, removed or edited through seqctl).
    #[must_use]
    pub fn changed_runs(&self) -> Option<Vec<String>> {
        if self.reshaped.changed || !self.reshaped.removed.is_empty() {
            return None;
        }
        Some(
            self.steps
                .iter()
                .filter(|step| step.run.touched.0)
                .map(|step| step.id.0.clone())
                .collect(),
        )
    }

    /// Puts the plan back into the state it was taken from: every field this model owns is
    /// written; everything else (extras, steps not queued, specs) is as it was.
    pub fn put_back(self, state: &mut State) {
        drop(self.put_back_keeping(state));
    }

    /// [`Plan::put_back`], keeping what [`Plan::take_reusing`] needs to take the same state
    /// again without working it out afresh: valid for as long as nothing else changes the
    /// state (a runner checks that the file is still its own save).
    pub fn put_back_keeping(mut self, state: &mut State) -> Derived {
        // Changed through seqctl: the new steps are the validated ones.
        let new_hash = self.reshaped.changed.then(|| super::fingerprint::of(&self));
        // The specs are now the state's, in queue order (written back if they changed).
        let derived = Derived {
            specs: self.steps.iter().map(|s| Arc::clone(&s.spec)).collect(),
            hash: match &new_hash {
                Some(hash) => Some(hash.clone()),
                None => self.hash_now.peek().cloned(),
            },
        };
        // Removed steps' records go (and the items of a `forEach` step made afresh).
        for id in &self.reshaped.removed {
            state.step_runs.shift_remove(id.as_str());
        }
        if self.reshaped.changed {
            for id in &self.reshaped.removed {
                state.plan.steps.shift_remove(id.as_str());
            }
            state.step_queue = self.steps.iter().map(|s| s.id.0.clone()).collect();
            for step in &self.steps {
                let def = state.plan.steps.entry(step.id.0.clone()).or_default();
                StepSpec::clone(&step.spec).into_file(def);
            }
        }
        if self.items_loaded {
            state.items.loaded = true;
            state.items.by_step.clear();
            let mut items = std::mem::take(&mut self.items);
            for step in &self.steps {
                let Some(list) = items
                    .remove(&step.id)
                    .filter(|_| step.run.items().is_some())
                else {
                    continue;
                };
                // Moved, not copied: a turn of a runner puts back a thousand items.
                let records = list.into_iter().map(|item| item.run.into_item()).collect();
                state.items.by_step.insert(step.id.0.clone(), records);
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
        state.plan_hash = new_hash.or(self.hash_recorded);
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
        derived
    }

    #[must_use]
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// A queued step, or an item of a `forEach` step (`<step>[<n>]`).
    #[must_use]
    pub fn step(&self, id: &str) -> Option<&Step> {
        if let Some(&n) = self.index.get(id) {
            return self.steps.get(n);
        }
        let (parent, n) = parse_item_id(id)?;
        self.items.get(parent)?.get(n - 1)
    }

    pub(crate) fn step_mut(&mut self, id: &str) -> Option<&mut Step> {
        if let Some(&n) = self.index.get(id) {
            return self.steps.get_mut(n);
        }
        let (parent, n) = parse_item_id(id)?;
        self.items.get_mut(parent)?.get_mut(n - 1)
    }

    /// The queue position of a step (an item's is its step's).
    #[must_use]
    pub fn position(&self, id: &str) -> Option<usize> {
        match self.index.get(id) {
            Some(&n) => Some(n),
            None => self.index.get(parse_item_id(id)?.0).copied(),
        }
    }

    /// The items of an expanded `forEach` step.
    #[must_use]
    pub fn items_of(&self, id: &str) -> &[Step] {
        self.items.get(id).map_or(&[], Vec::as_slice)
    }

    /// Every step and item that runs tries, in the order they are considered: the queue, each
    /// expanded step's items in its place.
    pub fn units(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().flat_map(move |step| {
            let items = if step.run.items().is_some() {
                self.items_of(step.id.as_str())
            } else {
                &[]
            };
            std::iter::once(step)
                .filter(|s| !s.is_expanded())
                .chain(items.iter())
        })
    }

    /// What the queued step at `position` waits for, as queue positions.
    #[must_use]
    pub fn deps(&self, position: usize) -> &[usize] {
        self.graph.deps(position)
    }

    /// The dependency graph of the queue.
    #[must_use]
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Whether the queued step at `position` is behind the plan: before the step in hand
    /// (`currentStep`, which a Python-era file may have moved on by hand), or finished.
    #[must_use]
    pub fn passed(&self, position: usize) -> bool {
        position < self.cursor || self.steps.get(position).is_some_and(|s| s.run.finished())
    }

    /// `plan.maxParallel`.
    #[must_use]
    pub fn max_parallel(&self) -> usize {
        self.max_parallel
    }

    /// Whether the steps' definitions differ from the ones last validated (`planHash`):
    /// `Some(true)` changed, `Some(false)` the same, `None` never recorded.
    #[must_use]
    pub fn changed(&self) -> Option<bool> {
        self.hash_recorded.as_ref().map(|h| h != self.hash_now())
    }

    /// The fingerprint of the steps as they are now (`planHash`), worked out once.
    #[must_use]
    pub fn hash_now(&self) -> &str {
        self.hash_now.get(|| super::fingerprint::of(self))
    }

    /// Whether any step has started: a plan that has not is no live run to protect.
    #[must_use]
    pub fn started(&self) -> bool {
        // A try ever started leaves its time, even after a reset (`seqctl retry`).
        self.steps.iter().any(|s| {
            s.run.tries() > 0
                || s.run.status() != StepStatus::Pending
                || s.run.items().is_some()
                || s.run.started_text().is_some()
        })
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

    /// The steps and items whose try is IN_PROGRESS on file (alive or not: see `Liveness`).
    pub fn running(&self) -> impl Iterator<Item = &Step> {
        self.units()
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
    fn a_plan_taken_again_with_what_it_kept_is_the_plan_taken_afresh() {
        let mut state = validate::parse(LEGACY.as_bytes()).unwrap();
        state.plan_hash = Some("0123456789abcdef".into());
        let plan = Plan::take(&mut state);
        let afresh_hash = plan.hash_now().to_owned();
        let derived = plan.put_back_keeping(&mut state);
        assert_eq!(derived.specs.len(), 2);
        assert_eq!(derived.hash.as_deref(), Some(afresh_hash.as_str()));
        let again = Plan::take_reusing(&mut state.clone(), derived);
        assert_eq!(again, Plan::take(&mut state.clone()));
        assert_eq!(again.hash_now.peek(), Some(&afresh_hash));
        assert_eq!(again.changed(), Some(true));
    }

    #[test]
    fn what_a_plan_kept_is_not_used_for_a_queue_it_does_not_fit() {
        let mut state = validate::parse(LEGACY.as_bytes()).unwrap();
        let plan = Plan::take(&mut state);
        let _ = plan.hash_now();
        let derived = plan.put_back_keeping(&mut state);
        // Someone queued the third step since: nothing kept may stand for it.
        state.step_queue.push("c".into());
        let again = Plan::take_reusing(&mut state.clone(), derived);
        assert_eq!(again, Plan::take(&mut state.clone()));
        assert_eq!(again.steps[2].spec.instruction, "never queued");
        assert_eq!(again.hash_now.peek(), None, "the old fingerprint was kept");
    }

    #[test]
    fn the_typed_view_carries_each_states_data() {
        let mut state = validate::parse(LEGACY.as_bytes()).unwrap();
        let mut plan = Plan::take(&mut state);
        let a = &plan.steps[0].run;
        assert_eq!(a.state(), TryState::Done { attempt: 2 });
        assert_eq!(a.ended_at(), timefmt::parse("2026-02-07T12:00:00.123456"));
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

    #[test]
    fn item_ids_read_as_they_are_written() {
        for n in [1, 9, 10, 12_345, usize::MAX] {
            let id = item_id("each", n);
            assert_eq!(id.as_str(), format!("each[{n}]"));
            assert_eq!(parse_item_id(id.as_str()), Some(("each", n)));
        }
    }

    #[test]
    fn an_item_over_is_judged_without_reading_its_record_and_goes_back_as_it_came() {
        let line = r#"{"n":1,"run":{"status":"DONE","tries":1,"stdout":"ok","finishedIso":"2026-03-01T10:00:00Z"}}"#;
        let bytes = crate::format::item_run::Source::Bytes(Arc::new(line.as_bytes().to_vec()));
        let came =
            ItemRun::Unread(Unread::new(bytes, 0..line.len(), 1, StepStatus::Done, 1).unwrap());
        let run = Run::from_item(came.clone());
        assert!(matches!(run.state(), TryState::Done { attempt: 1 }));
        assert!(run.finished());
        assert!(run.rest.fields.get().is_none(), "judged without reading it");
        // Unread and unchanged, it goes back as it came.
        let back = run.clone().into_item();
        assert!(matches!(back, ItemRun::Unread(_)), "{back:?}");
        // Changed without being read (skipped): the whole record goes back, result and all.
        let mut skipped = run.clone();
        skipped.skip();
        let back = skipped.into_item().into_parsed();
        assert_eq!(
            (back.status, back.stdout.as_deref()),
            (StepStatus::Skipped, Some("ok"))
        );
        // Read when asked, and still the record it came as, kept read.
        assert_eq!(run.stdout(), Some("ok"));
        let back = run.clone().into_item();
        assert!(matches!(back, ItemRun::Kept(_)), "{back:?}");
        assert_eq!(back, came);
        let again = Run::from_item(back);
        assert!(again.rest.fields.get().is_some(), "not read again");
        assert_eq!(again.stdout(), Some("ok"));
        // Changed: the whole record goes back.
        let mut again = run;
        again.reset(None);
        let back = again.into_item();
        assert!(matches!(back, ItemRun::Parsed(_)), "{back:?}");
        assert_eq!(back.status(), StepStatus::Pending);
    }
}
