//! `seqctl prune [--older-than DAYS] [--dry-run]`: removes a plan's old logs and event logs.
//!
//! The runner keeps a plan's logs within `STEP_LOGS_MAX_MB` on its own; this is for a person
//! who wants the space back sooner, or a finished plan's history gone. Files go by age, whole:
//! every file in the log folder (tries' logs and prompt files, logs kept by `seqctl retry`,
//! helpers' logs), the event log and its older generation, and `runner.log` and its older
//! generation, each once nothing was written to it for `DAYS` days. The log of a try in flight
//! is never touched, whatever its age; the state file and the steps' results never are.
//! Removal is relative to the sidecar's folders, never through a link.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use serde_json::json;

use super::Output;
use crate::core::{Plan, TryState};
use crate::format::text::counted;
use crate::store::layout;
use crate::store::safe::Dir;

/// What to prune.
#[derive(Debug, Clone, Copy)]
pub struct Prune {
    pub older_than_days: u32,
    pub dry_run: bool,
}

pub fn run(path: &Path, prune: Prune) -> Result<Output> {
    let store = super::existing(path)?;
    if prune.older_than_days == 0 && !prune.dry_run {
        bail!("--older-than 0 would remove the logs of tries just finished; give 1 or more days");
    }
    let cutoff = SystemTime::now() - Duration::from_secs(u64::from(prune.older_than_days) * 86_400);
    let plan = Plan::of(&store.read()?);
    // The log of a try in flight is its runner's, whatever its age.
    let running: Vec<String> = plan
        .steps()
        .iter()
        .filter_map(|s| match s.run.state() {
            TryState::Running { attempt, .. } => {
                Some(format!("{}.{attempt}.", layout::file_stem(s.id.as_str())))
            }
            _ => None,
        })
        .collect();
    let mut removed = Vec::new();
    let mut kept = 0usize;
    let mut bytes = 0u64;
    let mut sweep = |folder: &Path, dir: &Dir, names: &dyn Fn(&str) -> bool| -> Result<()> {
        let Ok(entries) = fs::read_dir(folder) else {
            return Ok(()); // no such folder yet: nothing to prune
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() || !names(&name) {
                continue;
            }
            let old = meta.modified().is_ok_and(|t| t < cutoff);
            if !old || running.iter().any(|r| name.starts_with(r)) {
                kept += 1;
                continue;
            }
            if !prune.dry_run {
                dir.remove(&name)?;
            }
            bytes += meta.len();
            removed.push(folder.join(&name).display().to_string());
        }
        Ok(())
    };
    if store.sidecar().is_dir() {
        let sidecar = store.sidecar_dir()?;
        let history = [
            layout::EVENTS.to_owned(),
            format!("{}.1", layout::EVENTS),
            layout::RUNNER_LOG.to_owned(),
            format!("{}.1", layout::RUNNER_LOG),
        ];
        sweep(store.sidecar(), &sidecar, &|name| {
            history.iter().any(|h| h == name)
        })?;
        if store.layout().logs().is_dir() {
            sweep(&store.layout().logs(), &store.logs_dir()?, &|_| true)?;
        }
    }
    let verb = if prune.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut text = format!(
        "{verb} {} ({}) not written to for {}; kept {}",
        counted(removed.len(), "file"),
        mib(bytes),
        counted(prune.older_than_days, "day"),
        counted(kept, "newer file")
    );
    for file in &removed {
        text.push_str("\n  ");
        text.push_str(file);
    }
    let json = json!({
        "dryRun": prune.dry_run,
        "removed": removed,
        "bytes": bytes,
        "kept": kept,
        "olderThanDays": prune.older_than_days,
    });
    Ok(Output::ok(text, json))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}
