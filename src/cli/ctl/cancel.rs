//! `seqctl cancel`: stop the try in flight and record it as cancelled.
//!
//! Under the state lock the try is marked FAILED ("cancelled by seqctl ...") and the plan
//! paused, so that nothing starts again behind the person's back. Then the try's runner, which
//! looks at the plan every second while its agent runs, sees its try is no longer in flight
//! and stops its agent's process group (SIGTERM, SIGKILL after a grace); its own result is not
//! recorded over the person's. This command sends no signal itself: the only process group it
//! could name comes from a file the agent can write, and a planted number would have it
//! signal a stranger. It waits for the runner's report and says how the agent stopped.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::{change, Output};
use crate::core::{Event, Input, StepId, TryState};
use crate::exec::attempt;
use crate::exec::process::{self, Stopped};
use crate::store::events as log;
use crate::store::lease::{Lease, LeaseState};
use crate::store::Store;

pub fn run(path: &Path, only: Option<&str>) -> Result<Output> {
    let store = super::existing(path)?;
    let seen = log::read(&store).map_or(0, |events| events.len());
    let done = change(
        &store,
        |plan, lease| {
            // The group to signal, only if the lease note names this very try: a stale note
            // must not aim the signal at a reused process id.
            let agent_pgid = match lease {
                LeaseState::Held(Some(h)) => plan
                    .running()
                    .filter(|s| only.is_none_or(|id| s.id == *id))
                    .find_map(|s| match s.run.state() {
                        TryState::Running { attempt, .. }
                            if h.step.as_deref() == Some(s.id.as_str())
                                && h.attempt == Some(attempt) =>
                        {
                            h.agent_pgid
                        }
                        _ => None,
                    }),
                _ => None,
            };
            Input::Cancel {
                by: format!("seqctl (pid {})", std::process::id()),
                agent_pgid,
                step: only.map(StepId::from),
            }
        },
        |_, _| {},
    )?;
    let cancelled: Vec<(String, u32, Option<u32>)> = done
        .events
        .into_iter()
        .filter_map(|e| match e {
            Event::Cancelled {
                step,
                attempt,
                agent_pgid,
            } => Some((step.to_string(), attempt, agent_pgid)),
            _ => None,
        })
        .collect();
    if cancelled.is_empty() {
        anyhow::bail!("nothing was cancelled");
    }
    let mut lines = Vec::new();
    let mut tries = Vec::new();
    for (step, attempt, agent_pgid) in &cancelled {
        let stopped = wait_for_runner(&store, step, *attempt, seen);
        let group = agent_pgid.map_or(String::new(), |g| format!(" (process group {g})"));
        let how = match stopped {
            Stop::Reported(Some(Stopped::Terminated)) => {
                format!("its agent{group} stopped on SIGTERM")
            }
            Stop::Reported(Some(Stopped::Killed)) => {
                format!("its agent{group} ignored SIGTERM and was killed")
            }
            Stop::Reported(_) => format!("its agent{group} had already exited"),
            Stop::RunnerGone => {
                "its runner had stopped already; nothing was left to stop".to_owned()
            }
            Stop::NotYet => format!(
                "its runner has not stopped the agent{group} within {} s; it will once it looks \
                 (`seqctl status` shows when the try is over)",
                PATIENCE.as_secs()
            ),
        };
        lines.push(format!("cancelled step {step} try {attempt}: {how}"));
        tries.push(json!({
            "step": step,
            "attempt": attempt,
            "agentPgid": agent_pgid,
            "stopped": match stopped {
                Stop::Reported(how) => how.map(|s| format!("{s:?}").to_lowercase()),
                _ => None,
            },
        }));
    }
    let (step, attempt, agent_pgid) = cancelled[0].clone();
    let after = if only.is_some() {
        format!(
            "step {step} is blocked: `seqctl retry {step}` starts its tries afresh, `seqctl skip \
             {step}` passes it over; the other steps go on"
        )
    } else {
        format!(
            "the plan is paused: `seqctl resume` retries it, `seqctl retry {step}` starts its \
             tries afresh, `seqctl skip {step}` passes it over"
        )
    };
    let text = format!("{}\n{after}", lines.join("\n"));
    let mut json = tries[0].clone();
    json["tries"] = tries.into();
    let _ = (attempt, agent_pgid);
    Ok(Output::ok(text, json))
}

/// How long to wait for the runner's report: its look at the plan, the grace, and a margin.
const PATIENCE: Duration =
    Duration::from_secs(attempt::STOP_CHECK.as_secs() + process::GRACE.as_secs() + 3);

/// What became of the cancelled try's agent.
enum Stop {
    /// The runner reported the try's end: how it stopped the agent, if it had to.
    Reported(Option<Stopped>),
    /// Nobody holds the lease any more, and no report came: the runner was gone.
    RunnerGone,
    NotYet,
}

/// Waits for the runner's `step_finished` event of this try (among the events after the first
/// `seen`), or for the lease to be let go.
fn wait_for_runner(store: &Store, step: &str, attempt: u32, seen: usize) -> Stop {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let events = log::read(store).unwrap_or_default();
        let report = events.iter().skip(seen).find(|e| {
            e["event"] == "step_finished" && e["step"] == step && e["attempt"] == attempt
        });
        if let Some(report) = report {
            return Stop::Reported(serde_json::from_value(report["stopped"].clone()).ok());
        }
        if !Lease::probe(store).is_ok_and(|l| l.is_held()) {
            return Stop::RunnerGone;
        }
        if Instant::now() >= deadline {
            return Stop::NotYet;
        }
        thread::sleep(Duration::from_millis(50));
    }
}
