//! One integration-test binary that runs the real executables in temp workspaces.

mod common;
mod corpus;
mod crash;
mod faults;
mod legacy;
mod proof;
mod properties;
mod stress;
