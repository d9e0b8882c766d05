//! `seqctl cancel`: stop the try in flight and record it as cancelled.
//!
//! The order matters, because the runner records its own result when the agent dies:
//!
//! 1. under the state lock, the try is marked FAILED ("cancelled by seqctl ...") and the plan
//!    paused, so that nothing starts again behind the person's back;
//! 2. then the agent's process group (from the lease note) gets SIGTERM, and SIGKILL after a
//!    grace.
//!
//! When the runner then reports the agent's death, the core (`Input::Finished`) finds the try no
//! longer IN_PROGRESS and leaves the person's record alone. Signalling first would race: the
//! runner could record an ordinary failure and even start the next try before the mark landed.
//! The group is signalled only while the lease is held, i.e. while the agent (which inherits
//! the lease) or its runner is alive, and only if the note names this very try, so a stale
//! note cannot aim the signal at a reused process id.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::{change, Output};
use crate::core::{Event, Input, TryState};
use crate::exec::process::{self, Stopped};
use crate::store::lease::{Lease, LeaseState};
use crate::store::Store;

/// How long to wait for a runner that has marked a try started to publish its agent's group.
const START_PATIENCE: Duration = Duration::from_secs(2);

pub fn run(path: &Path) -> Result<Output> {
    let store = super::existing(path)?;
    let done = change(
        &store,
        |plan, lease| {
            // The group to signal, only if the lease note names this very try: a stale note
            // must not aim the signal at a reused process id.
            let running = plan.current().and_then(|s| match s.run.state() {
                TryState::Running { attempt, .. } => Some((s.id.as_str(), attempt)),
                _ => None,
            });
            let agent_pgid = match (running, lease) {
                (Some((step, attempt)), LeaseState::Held(Some(h)))
                    if h.step.as_deref() == Some(step) && h.attempt == Some(attempt) =>
                {
                    h.agent_pgid
                }
                _ => None,
            };
            Input::Cancel {
                by: format!("seqctl (pid {})", std::process::id()),
                agent_pgid,
            }
        },
        |_, _| {},
    )?;
    let Some(Event::Cancelled {
        step,
        attempt,
        agent_pgid,
    }) = done.events.into_iter().next()
    else {
        anyhow::bail!("nothing was cancelled");
    };
    let step = step.to_string();
    let pgid = agent_pgid.or_else(|| wait_for_agent(&store, &step, attempt));
    let stopped = pgid.map(process::stop_group);
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
