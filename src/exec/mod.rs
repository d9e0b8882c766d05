//! Running agents: the agent command and its policy, one attempt, its output.

pub mod attempt;
pub mod capture;
pub mod command;
pub mod judge;
pub mod openclaw;
pub mod policy;
