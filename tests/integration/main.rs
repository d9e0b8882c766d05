//! One integration-test binary that runs the real executables in temp workspaces.

mod common;
mod crash;
mod legacy;
mod proof;
mod stress;
