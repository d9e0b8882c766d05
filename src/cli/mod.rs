//! The programs' work: one module per binary's job, and `seqctl`'s commands.

pub mod args;
pub mod check;
pub mod config;
pub mod ctl;
pub mod exit;
pub mod live;
pub mod paint;
pub mod reads;
pub mod runner;
pub mod trial;
pub mod watch;
