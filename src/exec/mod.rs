//! Running agents: the agent command and the policy it must pass, one attempt (spawned, bounded
//! in time, captured in flat memory, cleaned up after), process groups, and the facts about a
//! try's outputs that the core judges.

pub mod agents;
pub mod attempt;
pub mod capture;
pub mod command;
pub mod fds;
pub mod openclaw;
pub mod outputs;
pub mod pipes;
pub mod policy;
pub mod process;
pub mod sentinel;
pub mod shells;
pub mod signals;
pub mod spawn;
