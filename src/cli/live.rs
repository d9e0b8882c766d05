//! Who is alive for a plan's tries, from what the shells can see: the run lease, and the
//! runner each try in flight names in the state (a try's runner still running keeps it alive
//! even when someone deleted the sidecar's lease file under it).

use crate::core::{Liveness, Plan, TryState};
use crate::exec::process::{self, ProcessId};
use crate::store::lease::LeaseState;

/// The liveness a caller sees. `lease` is the run lease as probed (a caller that holds it
/// itself, a runner, passes `Free`); `me` is the caller's own identity, whose tries are not
/// someone else's to keep alive.
#[must_use]
pub fn liveness(plan: &Plan, lease: &LeaseState, me: Option<ProcessId>) -> Liveness {
    let alive = plan
        .running()
        .filter(|step| match step.run.state() {
            TryState::Running {
                runner: Some(runner),
                ..
            } => Some(runner) != me && process::is_alive(&runner),
            _ => false,
        })
        .map(|step| step.id.clone())
        .collect();
    Liveness {
        held_elsewhere: lease.is_held(),
        alive,
    }
}
