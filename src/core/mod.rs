//! The decision core: pure functions from a plan, the time and who is alive to what happens.

pub mod schedule;
