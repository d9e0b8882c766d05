//! One integration-test binary that runs the real executables in temp workspaces.

mod agent_command;
mod check;
mod common;
mod docs;
mod legacy;
mod runner;
mod seqctl;
