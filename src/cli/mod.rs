//! The programs' work: one module per binary's job, and `seqctl`'s commands.

pub mod check;
pub mod config;
pub mod ctl;
pub mod exit;
pub mod live;
pub mod reads;
pub mod runner;
pub mod trial;
