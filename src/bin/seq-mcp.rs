//! `seq-mcp`: the sequencer's tools over MCP on stdin and stdout. See `seq-mcp --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use agent_step_sequencer::cli::config::Config;
use agent_step_sequencer::cli::exit;
use agent_step_sequencer::mcp::server;
use anyhow::Context as _;
use clap::Parser;

/// Serve the step sequencer's tools (plan_start, plan_status, step_retry, heartbeat, ...) to an
/// MCP client over stdio. The client starts this program; it runs until the client closes it.
/// Steps run in a detached seq-runner, so closing the client never stops a running step.
#[derive(Parser)]
#[command(version, after_help = AFTER_HELP)]
struct Args {
    /// Work in DIR: relative `state` paths are taken from it (default: the current directory).
    #[arg(short = 'C', long, value_name = "DIR")]
    directory: Option<PathBuf>,
}

const AFTER_HELP: &str = "\
The environment is read once, at start: STEP_AGENT_CMD, STEP_MAX_RETRIES, STEP_TIMEOUT_SECONDS
and STEP_RUNNER, as seq-check reads them.

Example (Claude Code):
  claude mcp add --transport stdio --env STEP_AGENT_CMD='claude -p' step-sequencer -- seq-mcp -C ~/work

Exit codes:
  0  the client closed the connection
  2  bad usage, or the server could not start";

fn main() -> ExitCode {
    // The tools run on tokio's blocking threads, and glibc gives each thread a malloc arena of
    // its own and keeps what it freed: a server that lives for hours would hold about 7 MiB
    // more for nothing after following a 1,000-step plan. Calls come one or two at a time, so
    // one arena is plenty.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: a plain setting, made before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let args = Args::parse();
    let outcome = args
        .directory
        .map_or(Ok(()), |dir| {
            std::env::set_current_dir(&dir)
                .with_context(|| format!("{}: cannot work there", dir.display()))
        })
        .and_then(|()| server::serve(Config::from_env().map_err(|e| format!("{e:#}"))));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit::report_error("seq-mcp", &error),
    }
}
