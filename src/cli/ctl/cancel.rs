//! `seqctl cancel`: stop the try in flight and record it as cancelled.
//!
//! The order matters, because the runner records its own result when the agent dies:
//!
//! 1. under the state lock, the try is marked FAILED ("cancelled by seqctl ...") and the plan
//!    paused, so that nothing starts again behind the person's back;
//! 2. then the agent's process group (from the lease note) gets SIGTERM, and SIGKILL after a
//!    grace.
//!
//! When the runner then tries to record the agent's death, `schedule::record` finds the try no
//! longer IN_PROGRESS and leaves the person's record alone. Signalling first would race: the
//! runner could record an ordinary failure and even start the next try before the mark landed.
//! The group is signalled only while the lease is held, i.e. while the agent (which inherits
//! the lease) or its runner is alive, and only if the note names this very try, so a stale
//! note cannot aim the signal at a reused process id.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::Utc;
use serde_json::json;

use super::{change, Output};
use crate::exec::attempt::{self, Stopped};
use crate::format::schema::StepStatus;
use crate::format::timefmt;
use crate::store::events::Kind;
use crate::store::lease::{Lease, LeaseState};
use crate::store::Store;

/// How long to wait for a runner that has marked a try started to publish its agent's group.
const START_PATIENCE: Duration = Duration::from_secs(2);

pub fn run(path: &Path) -> Result<Output> {
    let store = super::existing(path)?;
    let (step, attempt, pgid) = change(&store, |state, lease| {
        let step = state.current_id().map(str::to_owned);
        let running = step
            .as_deref()
            .filter(|id| state.run_of(id).status == StepStatus::InProgress);
        let holder = match (running, lease) {
            (Some(_), LeaseState::Held(holder)) => holder.clone(),
            (Some(id), LeaseState::Free) => bail!(
                "step {id} shows IN_PROGRESS but no runner holds the lease: it already stopped, \
                 and the next heartbeat records it as interrupted"
            ),
            (None, _) => {
                bail!("nothing is in flight; `seqctl pause` stops new tries from starting")
            }
        };
        let id = running.unwrap_or_default().to_owned();
        let now = Utc::now();
        let run = state.run_mut(&id);
        let attempt = run.tries;
        let pgid = holder
            .filter(|h| h.step.as_deref() == Some(&id) && h.attempt == Some(attempt))
            .and_then(|h| h.agent_pgid);
        run.status = StepStatus::Failed;
        run.error = Some(format!(
            "cancelled by seqctl (pid {}) at {}",
            std::process::id(),
            timefmt::format(now)
        ));
        run.duration_ms = run
            .started_iso
            .as_deref()
            .and_then(timefmt::parse)
            .map(|t| super::text::between(t, now));
        run.finished_iso = Some(timefmt::format(now));
        state.paused = true;
        let event = Kind::Cancelled {
            step: id.clone(),
            attempt,
            agent_pgid: pgid,
        };
        Ok(((id, attempt, pgid), vec![event]))
    })?;
    let pgid = pgid.or_else(|| wait_for_agent(&store, &step, attempt));
    let stopped = pgid.map(attempt::stop_group);
    let how = match (pgid, stopped) {
        (Some(g), Some(Stopped::Terminated)) => {
            format!("its agent (process group {g}) stopped on SIGTERM")
        }
        (Some(g), Some(Stopped::Killed)) => {
            format!("its agent (process group {g}) ignored SIGTERM and was killed")
        }
        (Some(g), _) => format!("its agent (process group {g}) had already exited"),
        (None, _) => "its agent had not started; its result will not be recorded".to_owned(),
    };
    let text = format!(
        "cancelled step {step} try {attempt}: {how}\nthe plan is paused: `seqctl resume` retries \
         it, `seqctl retry {step}` starts its tries afresh, `seqctl skip {step}` passes it over"
    );
    let json = json!({
        "step": step,
        "attempt": attempt,
        "agentPgid": pgid,
        "stopped": stopped.map(|s| format!("{s:?}").to_lowercase()),
    });
    Ok(Output::ok(text, json))
}

/// The agent's process group, once the runner that holds the lease publishes it for this try;
/// None if the lease is let go or the note does not come in time.
fn wait_for_agent(store: &Store, step: &str, attempt: u32) -> Option<u32> {
    let deadline = Instant::now() + START_PATIENCE;
    while Instant::now() < deadline {
        match Lease::probe(store).ok()? {
            LeaseState::Free => return None,
            LeaseState::Held(Some(h))
                if h.step.as_deref() == Some(step) && h.attempt == Some(attempt) =>
            {
                if let Some(pgid) = h.agent_pgid {
                    return Some(pgid);
                }
            }
            LeaseState::Held(_) => {}
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}
