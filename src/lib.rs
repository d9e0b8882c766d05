//! agent-step-sequencer: the library behind `seq-check`, `seq-runner` and `seqctl`.
//!
//! A plan lives in `state.json`. The modules, from the file outwards:
//!
//! - [`state`]: the file's schema, faithful to the Python skill's format;
//! - [`validate`]: parsing and checking untrusted bytes into a [`state::State`];
//! - [`store`]: the sidecar folder, the state lock and atomic durable writes;
//! - [`lease`]: the run lease that tells "running" from "crashed";
//! - [`schedule`]: the pure decision core (what is due, retries, blockers, prompts);
//! - [`agent`] and [`policy`]: `STEP_AGENT_CMD`, parsed without a shell and judged;
//! - [`openclaw`]: facts about OpenClaw's own CLI (the exec marker, `openclaw agent exec`);
//! - [`attempt`], [`capture`], [`judge`], [`logs`]: one try of one step, bounded and recorded;
//! - [`runner`] and [`check`]: the two programs' work; [`config`], [`exit`]: their settings;
//! - [`events`] and [`follow`]: the append-only event log, and reading files as they grow;
//! - [`ctl`]: `seqctl`, the operator's commands, one file per command.

pub mod agent;
pub mod attempt;
pub mod capture;
pub mod check;
pub mod config;
pub mod ctl;
pub mod events;
pub mod exit;
pub mod follow;
pub mod judge;
pub mod lease;
pub mod logs;
pub mod openclaw;
pub mod policy;
pub mod runner;
pub mod schedule;
pub mod state;
pub mod store;
pub mod timefmt;
pub mod validate;
