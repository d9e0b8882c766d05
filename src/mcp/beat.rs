//! The `heartbeat` tool: exactly what `seq-check` does, its lines as the result.
//!
//! The step runs in the detached `seq-runner` the check starts (own session, no stdin, output
//! to `runner.log`), never in this server, so closing the client never stops a step. The runner
//! is this server's child, though: seq-check exits at once and leaves the runner to init, but a
//! server lives on, so it waits for each runner it started, or every finished runner would stay
//! a zombie for as long as the server runs.

use std::path::Path;

use anyhow::{anyhow, Result};
use serde_json::Value;

use crate::cli::check;
use crate::cli::config::Config;
use crate::cli::ctl::Output;
use crate::report::heartbeat::{BeatResult, Heartbeat};

/// One heartbeat for the plan at `path`.
pub fn run(path: &Path, config: &Result<Config, String>) -> Result<Output> {
    let config = config.as_ref().map_err(|e| anyhow!("{e}"))?;
    let (text, json) = once(path, config)?;
    Ok(Output::ok(text, json))
}

/// One heartbeat: the lines seq-check prints (as text, and as `lines` in its `--json` object).
pub fn once(path: &Path, config: &Config) -> Result<(String, Value)> {
    let beat = check::run(path, config, check::Mode::default(), &mut |_| {})?.heartbeat;
    reap(&beat);
    let mut lines: Vec<String> = beat.changes.iter().map(ToString::to_string).collect();
    lines.push(beat.line());
    let text = lines.join("\n");
    let mut json = serde_json::to_value(&beat)?;
    json["lines"] = lines.into();
    Ok((text, json))
}

/// Waits, on a thread of its own, for the runner this heartbeat started.
fn reap(beat: &Heartbeat) {
    let started = matches!(beat.result, BeatResult::Started | BeatResult::Waiting);
    let Some(pid) = beat.pid.filter(|_| started) else {
        return;
    };
    std::thread::spawn(move || {
        // SAFETY: waitpid on our own child's pid, with no status wanted. The pid cannot name
        // another process while we have not waited for it (a zombie keeps its pid).
        unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
    });
}
