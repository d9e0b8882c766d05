//! One integration-test binary that runs the real executables in temp workspaces.

mod agent_command;
mod check;
mod common;
mod corpus;
mod crash;
mod docs;
mod faults;
mod hostile;
mod layers;
mod legacy;
mod plan;
mod proof;
mod properties;
mod results;
mod runner;
mod seqctl;
mod stress;
mod usability;
mod workflow;
