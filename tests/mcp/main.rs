//! `seq-mcp` driven over stdio as an MCP client drives it, in temp workspaces with fake agents.
//! Built only with the `mcp` feature: `cargo test --features mcp --test mcp`.

#[path = "../integration/common.rs"]
mod common;

mod client;
mod detached;
mod errors;
mod lifecycle;
