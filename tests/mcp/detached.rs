//! The server starts no step itself: the step runs in a detached seq-runner, so closing the
//! client (which ends the server) never stops it.

use std::time::Duration;

use serde_json::json;

use crate::client::Client;
use crate::common::{lease_held, pid_alive, session_of, Workspace};

#[test]
fn closing_the_client_leaves_the_running_step_alone() {
    let mut ws = Workspace::new();
    ws.agent(
        r"echo $$ > agent.pid
        i=0; while [ ! -e go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
        echo finished",
    );
    let mut mcp = Client::start(&ws);
    let plan = json!({ "plan": { "steps": { "a": { "instruction": "wait for go" } } }, "stepQueue": ["a"] });
    let started = mcp.ok("plan_start", &json!({ "plan": plan }));
    let runner = started["heartbeat"]["pid"].as_u64().unwrap();
    let agent: u64 = ws
        .wait_file("agent.pid", Duration::from_secs(10))
        .trim()
        .parse()
        .unwrap();
    let server = u64::from(mcp.pid());
    assert_ne!(
        session_of(runner),
        session_of(server),
        "the runner has a session of its own"
    );

    assert_eq!(mcp.close(), 0);
    assert!(!pid_alive(server));
    assert!(
        pid_alive(runner) && pid_alive(agent),
        "the step died with the client"
    );
    assert!(lease_held(ws.path()));

    ws.write("go", "");
    let state = ws.wait_done(Duration::from_secs(30));
    assert_eq!(state["stepRuns"]["a"]["stdout"], "finished\n");
}
