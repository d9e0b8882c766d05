//! The promises kept when the workspace, the clock or the processes around us misbehave
//! (issue "Keep every promise"): each test reproduces an attack or a fault first.

use std::fs;
use std::time::Duration;

use crate::common::{plan, Workspace};
use crate::proof::{detector_agent, AgentLog};

const LONG: Duration = Duration::from_secs(30);

/// Waits until the agent of `step` has started (the detector agent logs it).
fn wait_started(ws: &Workspace, step: &str) {
    ws.wait_file_has("agent.log", &format!("start {step} 1"), LONG);
}

/// Every step ran exactly once, never two agents at once.
fn assert_once_each(ws: &Workspace, steps: &[&str]) {
    let log = AgentLog::read(ws.path());
    assert!(log.overlaps.is_empty(), "agents overlapped:\n{}", log.text);
    for step in steps {
        assert_eq!(
            log.starts.get(*step).map(Vec::as_slice),
            Some(&[1][..]),
            "step {step} must run exactly once:\n{}",
            log.text
        );
        assert_eq!(ws.state()["stepRuns"][step]["tries"], 1, "{step}");
    }
}

#[test]
fn deleting_the_sidecar_under_a_running_step_never_starts_a_second_agent() {
    for victim in ["state.json.seq", "state.json.seq/lease"] {
        let mut ws = Workspace::with_state(&plan(2, ""));
        ws.agent(&detector_agent("2"));
        ws.check(&[]).expect(0).stdout_has("started: step s1 try 1");
        wait_started(&ws, "s1");
        // A person "clearing the logs", or an agent tidying its workspace.
        let path = ws.path().join(victim);
        if path.is_dir() {
            fs::remove_dir_all(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
        for _ in 0..3 {
            ws.check(&[])
                .expect(0)
                .stdout_has("in flight: step s1 try 1");
        }
        ws.wait_done(LONG);
        ws.wait_idle(LONG);
        assert_once_each(&ws, &["s1", "s2"]);
    }
}

#[test]
fn a_runner_whose_lease_was_deleted_while_it_slept_leaves_the_plan_to_the_new_one() {
    // One second between steps: the runner sleeps through it holding the lease.
    let mut ws = Workspace::with_state(&plan(3, r#""stepDelayMinutes": 0.02,"#));
    ws.agent(&detector_agent(""));
    ws.check(&[]).expect(0);
    wait_started(&ws, "s1");
    ws.wait_for(LONG, "s1 done", |s| s["stepRuns"]["s1"]["status"] == "DONE");
    fs::remove_file(ws.path().join("state.json.seq/lease")).unwrap();
    // The lease file is new and free: this heartbeat starts a second runner for the wait.
    ws.check(&[]).expect(0);
    ws.wait_done(LONG);
    ws.wait_idle(LONG);
    assert_once_each(&ws, &["s1", "s2", "s3"]);
}
