//! `seq-mcp`: the sequencer as an MCP server (the `mcp` feature), for agents that call tools
//! rather than write shell lines.
//!
//! Every tool is a thin call into what the programs use (`cli::ctl`'s commands, `cli::check`),
//! so a plan driven over MCP behaves exactly as one driven with `seqctl` and `seq-check`:
//! [`args`] holds the tools' inputs and their JSON Schemas; [`plan`], [`read`] and [`beat`] the
//! calls that are more than one command; [`server`] puts them all behind rmcp over stdio.

pub mod args;
pub mod beat;
pub mod plan;
pub mod read;
pub mod server;
