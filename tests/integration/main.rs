//! One integration-test binary that runs the real executables in temp workspaces.

mod common;
mod docs;
mod legacy;
mod seqctl;
