//! The tools' inputs, each with the JSON Schema rmcp lists for it (from the doc comments).
//!
//! Unknown fields are refused: a misspelt `state` would otherwise fall back to `state.json` and
//! act on another plan than the one meant.

use std::path::PathBuf;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_json::Value;

fn default_state() -> PathBuf {
    PathBuf::from("state.json")
}

/// A tool that needs only the plan.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateArgs {
    /// The plan's state file; a relative path is taken from the server's working directory.
    #[serde(default = "default_state")]
    pub state: PathBuf,
}

/// A tool that acts on the plan, or on one step of it when `step` is given.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaybeStepArgs {
    /// The plan's state file; a relative path is taken from the server's working directory.
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// One step's id (or a forEach item's, `<id>[<n>]`); without it, the plan as a whole.
    #[serde(default)]
    pub step: Option<String>,
}

/// A tool that acts on one step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepArgs {
    /// The plan's state file; a relative path is taken from the server's working directory.
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// The step's id, as in stepQueue.
    pub step: String,
}

/// `step_retry`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryArgs {
    /// The plan's state file; a relative path is taken from the server's working directory.
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// The step's id: the current step or an earlier one.
    pub step: String,
    /// A hint for the next try (what to do differently), added to the step's prompt.
    #[serde(default)]
    pub note: Option<String>,
}

/// `plan_validate` and `plan_start`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    /// The plan's state file; a relative path is taken from the server's working directory.
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// The plan, as a plan file for `seqctl init --plan` holds it: plan.steps (step id -> step)
    /// and stepQueue (the ids in the order they run). Progress fields (currentStep, stepRuns,
    /// status, ...) are cleared: a new plan starts at its first step.
    #[schemars(schema_with = "plan_schema")]
    pub plan: Value,
}

/// `step_logs`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsArgs {
    /// The plan's state file; a relative path is taken from the server's working directory.
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// The step's id.
    pub step: String,
    /// The try (1-based); default: the latest.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub attempt: Option<u32>,
    /// At most this many bytes, from the end of the log (default 16384, at most 1048576).
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

/// `plan_events`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsArgs {
    /// The plan's state file; a relative path is taken from the server's working directory.
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// The position to read from: a line index into the event log (0, the default, is its
    /// start). Pass the `next` of the previous result to get only what happened since.
    #[serde(default)]
    pub since: usize,
    /// At most this many events (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The shape of a plan file (references/state-schema.md), for the client and the model that
/// writes it; the server checks it as `seqctl init --plan` does, and keeps fields it does not
/// know.
fn plan_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "required": ["plan", "stepQueue"],
        "properties": {
            "plan": {
                "type": "object",
                "required": ["steps"],
                "properties": {
                    "steps": {
                        "type": "object",
                        "description": "Step id -> step. Ids are non-empty, at most 200 bytes, \
                            without control characters.",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["instruction"],
                            "properties": {
                                "title": {
                                    "type": "string",
                                    "description": "A short name for people."
                                },
                                "instruction": {
                                    "type": "string",
                                    "description": "What the agent is told to do: the step's prompt."
                                },
                                "requiredOutputs": {
                                    "type": "array",
                                    "items": { "type": "string" },
                                    "description": "Paths relative to the workspace that must \
                                        exist after the agent exits 0, or the try fails."
                                },
                                "maxRetries": {
                                    "type": "integer",
                                    "minimum": 1,
                                    "description": "Attempts in all before the step becomes a \
                                        blocker (default STEP_MAX_RETRIES, 3)."
                                },
                                "timeoutSeconds": {
                                    "type": "integer",
                                    "minimum": 1,
                                    "description": "Time limit of one attempt (default \
                                        STEP_TIMEOUT_SECONDS, 3600)."
                                }
                            }
                        }
                    }
                }
            },
            "stepQueue": {
                "type": "array",
                "items": { "type": "string" },
                "description": "Step ids in the order they run; each defined in plan.steps, none twice."
            },
            "stepDelayMinutes": {
                "type": "number",
                "minimum": 0,
                "maximum": 525_600,
                "description": "Minutes to wait between steps and before a retry (default 0)."
            }
        }
    })
}
