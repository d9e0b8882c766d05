//! Who is alive for a plan's tries, from what the shells can see: the run lease; each try's
//! own lease (held while any process of its agent lives, whatever happened to its runner);
//! the runner each try in flight names in the state (a try's runner still running keeps it
//! alive even when someone deleted the sidecar's lease files under it); the caller's own tries
//! in flight; and a result a failing runner noted as lost.

use crate::core::{Liveness, Plan, StepId, TryState};
use crate::exec::process::{self, ProcessId};
use crate::store::lease::{Lease, LeaseState, Lost, TryLease};
use crate::store::Store;

/// The liveness a caller sees. `lease` is the run lease as probed (a caller that holds it
/// itself, a runner, passes `Free`); `me` is the caller's own identity, and `mine` the tries
/// it runs now (alive, whoever else looks); `lost` is a lost result noted in the lease.
#[must_use]
pub fn liveness(
    store: &Store,
    plan: &Plan,
    lease: &LeaseState,
    me: Option<ProcessId>,
    mine: &[StepId],
    lost: Option<&Lost>,
) -> Liveness {
    let alive = plan
        .running()
        .filter(|step| {
            if mine.contains(&step.id) {
                return true;
            }
            let (runner_alive, ours, attempt) = match step.run.state() {
                TryState::Running {
                    runner, attempt, ..
                } => (
                    runner.is_some_and(|r| Some(r) != me && process::is_alive(&r)),
                    runner.is_some() && runner == me,
                    attempt,
                ),
                _ => (false, false, 0),
            };
            // Last, and only for a try that looks dead and is not this runner's (which knows
            // its own: one not in `mine` has ended): a process it left may live on although
            // someone deleted its lease file.
            runner_alive
                || TryLease::held(store, step.id.as_str())
                || (!ours && process::try_process_alive(store.path(), step.id.as_str(), attempt))
        })
        .map(|step| step.id.clone())
        .collect();
    Liveness {
        held_elsewhere: lease.is_held(),
        alive,
        lost: lost.map(|l| (l.step.as_str().into(), l.attempt, l.error.clone())),
    }
}

/// What a check or a person's command sees from outside the runner.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub live: Liveness,
    /// The pid of a Python `agent-step-sequencer` process still at work on the plan.
    pub python: Option<u32>,
}

/// The liveness a check or a person's command sees: the lease as probed; when nobody holds it
/// while a try shows in flight, the lost result its last holder may have noted; and when that
/// try names no runner (the Python version wrote it), the Python runner if it is still at work
/// (during a migration: its agent may be mid-step, and a second must not start beside it).
#[must_use]
pub fn seen_from_outside(store: &Store, plan: &Plan, lease: &LeaseState) -> Seen {
    let unheld_try = !lease.is_held() && plan.running().next().is_some();
    let lost = unheld_try
        .then(|| Lease::last_note(store).and_then(|note| note.lost))
        .flatten();
    let mut live = liveness(store, plan, lease, None, &[], lost.as_ref());
    let nameless = plan
        .running()
        .any(|s| matches!(s.run.state(), TryState::Running { runner: None, .. }));
    let python = (unheld_try && nameless)
        .then(|| process::python_runner_for(store.path()))
        .flatten();
    live.held_elsewhere |= python.is_some();
    Seen { live, python }
}
