//! What people and programs read, rendered purely from the core's values: the heartbeat's
//! report, the status picture, and text helpers that make untrusted text safe to print.

pub mod heartbeat;
pub mod picture;
pub mod text;
pub mod why;
