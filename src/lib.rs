//! agent-step-sequencer: the library behind `seq-check`, `seq-runner` and `seqctl`.

pub mod lease;
pub mod policy;
pub mod schedule;
pub mod state;
pub mod store;
pub mod timefmt;
pub mod validate;
