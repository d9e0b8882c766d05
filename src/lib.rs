//! agent-step-sequencer: the library behind `seq-check`, `seq-runner` and `seqctl`.

pub mod policy;
