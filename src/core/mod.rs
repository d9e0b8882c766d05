//! The decision core: pure functions from a plan, the time and who is alive to what happens.
//! No files, processes, environment, clock or libc here (a test greps for them): everything
//! is passed in, so every rule is unit-tested with a fixed clock.
//!
//! - [`model`]: the plan as the engine thinks about it, taken from and put back into the file;
//! - [`decide`]: what is due now ([`decide::decide`], [`decide::settle`]);
//! - [`apply`]: every change a plan can undergo, with its events or a refusal;
//! - [`event`]: the one vocabulary of what happened;
//! - [`prompt`], [`verdict`] and [`verify`]: what a try is told, how its end is judged, and
//!   whether it did the work;
//! - [`planner`]: what an agent is asked to turn a task into a plan, and how its reply is read.

pub mod apply;
pub mod decide;
pub mod event;
pub mod fingerprint;
pub mod items;
pub mod model;
pub mod planner;
pub mod prompt;
pub mod verdict;
pub mod verify;

pub use apply::{apply, Auto, Input, Refusal, StepEdit};
pub use decide::{decide, settle, upcoming, Context, Decision, Launch, Limits, Liveness, Next};
pub use event::Event;
pub use model::{AgentRef, Plan, Step, StepId, StepSpec, TryOutcome, TryState};

#[cfg(test)]
mod testing;
