//! The on-disk format of `state.json`, faithful to the Python skill's file.
//!
//! These types mirror the file field by field (camelCase, the Python names), so that a file written
//! by the Python version, by an agent by hand, or by this project reads and writes the same way.
//! Fields this project does not know are kept in `extra` maps at every level and written back
//! unchanged. Meaning (what is due, what a status implies) lives in `schedule`; shape checks that
//! serde cannot express live in `validate`.

use std::fmt;
use std::marker::PhantomData;

use indexmap::IndexMap;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub plan: Plan,
    pub step_queue: Vec<String>,
    #[serde(default)]
    pub current_step: u64,
    #[serde(default, deserialize_with = "unique_keys")]
    pub step_runs: IndexMap<String, StepRun>,
    /// Kept as the JSON number it was written as, so `2` stays `2` and `0.5` stays `0.5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_delay_minutes: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_iso: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<String>>,
    #[serde(default)]
    pub status: PlanStatus,
    /// New in this project: when the plan became DONE, so the first heartbeat after it can say so
    /// once (later ones stay quiet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_iso: Option<String>,
    /// New in this project: a paused plan starts nothing new (`seqctl pause`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// New in this project: a heartbeat has told of the finish (so none tells of it again,
    /// whatever the clock or a hand edit did to `finishedIso` and `lastHeartbeatIso`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finish_reported: bool,
    /// New in this project: when `seq-check --no-reply` last told of a standing blocker, so
    /// that it tells again at most daily, not every heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocker_reported_iso: Option<String>,
    /// New in this project: the hash of the plan's steps as last validated (see
    /// `core::fingerprint`): an edit by any other means than `seqctl` under a live run is
    /// seen, and the run stops for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// Everything else the agent wrote, kept as it was.
    #[serde(flatten)]
    pub extra: Extras,
    /// The run records of `forEach` items: not in this file's JSON, but kept beside it (see
    /// `store::items`).
    #[serde(skip)]
    pub items: ItemRuns,
}

/// The run records of the items of each expanded `forEach` step, in item order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemRuns {
    /// Whether they were read: a state read without them (a heartbeat while a runner works)
    /// must not write them.
    pub loaded: bool,
    pub by_step: IndexMap<String, Vec<super::item_run::ItemRun>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    #[serde(deserialize_with = "unique_keys")]
    pub steps: IndexMap<String, Step>,
    /// New: the steps' default `context` (which earlier results their prompts carry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextMode>,
    /// New: the most characters that results (references and context) add to one prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_max_chars: Option<u64>,
    /// New: a named agent that summarises results too long for the bound, instead of cutting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress_agent: Option<String>,
    /// New: how many tries may run at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    #[serde(flatten)]
    pub extra: Extras,
}

/// A step's condition: false means the step is SKIPPED (with the reason), and its dependents
/// go on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct When {
    /// The step whose outcome it looks at; it must run before this one.
    pub step: String,
    /// Its status must be this (`DONE`, `FAILED` or `SKIPPED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StepStatus>,
    /// Its result must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_contains: Option<String>,
    /// Its result must match this regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_matches: Option<String>,
    #[serde(flatten)]
    pub extra: Extras,
}

/// Where a `forEach` step's items come from, and how they are split.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForEach {
    /// `steps.<id>.result` or `file:<relative path>`.
    pub from: String,
    #[serde(default)]
    pub split: Split,
    /// The most items it may expand into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    #[serde(flatten)]
    pub extra: Extras,
}

/// How a `forEach` source is cut into items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// One item per non-empty line.
    #[default]
    Lines,
    /// One item per element of a JSON array.
    Json,
}

/// A step that runs again, its previous result in the prompt, until a check passes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repeat {
    /// The most runs in all.
    pub max: u32,
    /// The check a run's result must pass to end the repeat.
    pub until: Verify,
    #[serde(flatten)]
    pub extra: Extras,
}

/// Which earlier results a step's prompt carries, after its instruction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextMode {
    /// None (references in the instruction still work).
    #[default]
    None,
    /// The result of the step before it.
    Previous,
    /// The results of every step before it.
    All,
}

/// The checks a step's result must pass before the try counts as DONE (the monitor).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verify {
    /// Paths (relative to the workspace) that must exist and not be empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    /// Text the result must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// A regular expression the result must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// The result must parse as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<bool>,
    /// The fewest characters the result may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_chars: Option<u64>,
    /// A named agent asked to judge the result; its last line is `PASS` or `FAIL: <reason>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What that agent is asked to check, besides the step's instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    #[serde(flatten)]
    pub extra: Extras,
}

/// One step as the agent planned it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Optional here so that a step missing it gets a message naming the step, from `validate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_outputs: Option<Vec<String>>,
    /// The Python version's alias; kept under its own name so the file round-trips.
    #[serde(
        default,
        rename = "required_outputs",
        skip_serializing_if = "Option::is_none"
    )]
    pub required_outputs_alias: Option<Vec<String>>,
    /// Attempts before the step becomes a blocker; overrides `STEP_MAX_RETRIES`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Seconds before the agent is stopped; overrides `STEP_TIMEOUT_SECONDS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// New: a file (relative to the workspace) whose content is the step's result, instead of
    /// its stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_file: Option<String>,
    /// New: which earlier results the prompt carries (default: the plan's `context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextMode>,
    /// New: checks the result must pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Box<Verify>>,
    /// New: the operator's named agent that runs the step (default: `STEP_AGENT_CMD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// New: agents for later tries: try k runs the k-th of `agent` and these, the last one
    /// repeating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_agents: Option<Vec<String>>,
    /// New: the steps it waits for, instead of the one before it in `stepQueue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<Vec<String>>,
    /// New: a condition; false skips the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Box<When>>,
    /// New: out of tries, the step ends FAILED without a blocker and the plan goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// New: the step runs once per item of a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<Box<ForEach>>,
    /// New: the step runs again until a check passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Box<Repeat>>,
    #[serde(flatten)]
    pub extra: Extras,
}

impl Step {
    /// The required outputs under either spelling (`validate` refuses a step that has both).
    #[must_use]
    pub fn required_outputs(&self) -> &[String] {
        self.required_outputs
            .as_deref()
            .or(self.required_outputs_alias.as_deref())
            .unwrap_or_default()
    }

    #[must_use]
    pub fn instruction(&self) -> &str {
        self.instruction.as_deref().unwrap_or_default()
    }
}

/// What happened to a step so far. A step with no entry is PENDING with 0 tries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRun {
    #[serde(default)]
    pub status: StepStatus,
    #[serde(default)]
    pub tries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_iso: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    // New in this project, all optional so older files load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_iso: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_iso: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<String>,
    /// A person's hint for the next try (`seqctl retry --note`), added to the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The runner that runs the try in flight: whether the try is alive does not depend on
    /// the sidecar's files alone (someone may delete them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<RunnerId>,
    /// The named agent that ran the last try (absent: `STEP_AGENT_CMD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Why the step was SKIPPED, when the plan skipped it (`when` was false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A `repeat` step's run in hand (1-based; absent: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// Why a `repeat` step runs again: the `until` check its last result failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_again: Option<String>,
    /// `tries` when the run in hand began: each run of a `repeat` step gets `maxRetries` tries
    /// of its own, while `tries` keeps counting (so no log is overwritten).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_start: Option<u32>,
    /// A `forEach` step's items, once expanded (their records are kept beside, see
    /// `store::items`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Extras,
}

/// A process, told apart from a later one that reuses its pid by when it started (clock ticks
/// since boot on Linux, microseconds since the epoch on macOS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunnerId {
    pub pid: u32,
    pub start: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepStatus {
    #[default]
    Pending,
    InProgress,
    Done,
    Failed,
    /// New in this project: passed over by `seqctl skip`; counts as finished.
    Skipped,
}

impl StepStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::InProgress => "IN_PROGRESS",
            Self::Done => "DONE",
            Self::Failed => "FAILED",
            Self::Skipped => "SKIPPED",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlanStatus {
    #[default]
    InProgress,
    Done,
}

impl State {
    /// The queue id at `currentStep`, if the plan is not past its end.
    #[must_use]
    pub fn current_id(&self) -> Option<&str> {
        let index = usize::try_from(self.current_step).ok()?;
        self.step_queue.get(index).map(String::as_str)
    }

    /// The run record of a step; a step never run is PENDING with 0 tries.
    #[must_use]
    pub fn run_of(&self, id: &str) -> StepRun {
        self.step_runs.get(id).cloned().unwrap_or_default()
    }

    /// The record to change for a step, created PENDING if it has none yet.
    pub fn run_mut(&mut self, id: &str) -> &mut StepRun {
        self.step_runs.entry(id.to_owned()).or_default()
    }

    #[must_use]
    pub fn delay_minutes(&self) -> f64 {
        self.step_delay_minutes
            .as_ref()
            .and_then(Number::as_f64)
            .unwrap_or(0.0)
    }

    #[must_use]
    pub fn blockers(&self) -> &[String] {
        self.blockers.as_deref().unwrap_or_default()
    }

    #[must_use]
    pub fn artifacts(&self) -> &[String] {
        self.artifacts.as_deref().unwrap_or_default()
    }
}

/// The fields of an object this project does not know, kept in their order and written back
/// as they were. A key written twice is refused, at any depth: serde_json would keep the last
/// without a word, and the next save would silently drop the first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Extras(Map<String, Value>);

impl std::ops::Deref for Extras {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Extras {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'de> Deserialize<'de> for Extras {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_map(UniqueValue)? {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(serde::de::Error::custom("expected an object")),
        }
    }
}

/// Builds a JSON value like serde_json does, refusing a key written twice in any object.
struct UniqueValue;

impl<'de> serde::de::DeserializeSeed<'de> for UniqueValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(value) = seq.next_element_seed(UniqueValue)? {
            out.push(value);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "field `{key}` is written twice"
                )));
            }
            let value = map.next_value_seed(UniqueValue)?;
            out.insert(key, value);
        }
        // serde_json hands arbitrary-precision and raw numbers as a one-key map: none here.
        Ok(Value::Object(out))
    }
}

/// Deserialises a JSON object into an ordered map, refusing a key written twice.
///
/// serde_json keeps the last of two equal keys without a word; for step ids that would silently
/// drop a step the agent planned, so a duplicate is an error here.
pub(crate) fn unique_keys<'de, D, V>(deserializer: D) -> Result<IndexMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueKeys<V>(PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueKeys<V> {
        type Value = IndexMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object keyed by step id")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = IndexMap::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(key) = map.next_key::<String>()? {
                match out.entry(key) {
                    indexmap::map::Entry::Occupied(taken) => {
                        return Err(serde::de::Error::custom(format_args!(
                            "step id `{}` is defined twice",
                            taken.key()
                        )));
                    }
                    indexmap::map::Entry::Vacant(slot) => {
                        slot.insert(map.next_value()?);
                    }
                }
            }
            Ok(out)
        }
    }

    deserializer.deserialize_map(UniqueKeys(PhantomData))
}
