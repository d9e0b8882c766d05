//! agent-step-sequencer: the library behind `seq-check`, `seq-runner` and `seqctl`.
//!
//! A plan lives in `state.json`. The layers, each a folder:
//!
//! - [`format`]: the file's schema, faithful to the Python skill's format, and its validation;
//! - [`core`]: the pure decision core (what is due, retries, blockers, prompts);
//! - [`store`]: the sidecar folder, the state lock, atomic durable writes, the run lease and
//!   the event log;
//! - [`exec`]: `STEP_AGENT_CMD` parsed without a shell and judged, and one try of one step,
//!   bounded and recorded;
//! - [`report`]: what people and programs read (heartbeat lines, the status picture), pure;
//! - [`cli`]: the programs' work (`seq-check`, `seq-runner`, the `seqctl` commands), their
//!   settings and exit codes;
//! - `mcp` (with the `mcp` feature): `seq-mcp`, the same commands as MCP tools.

pub mod cli;
pub mod core;
pub mod exec;
pub mod format;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod report;
pub mod store;
