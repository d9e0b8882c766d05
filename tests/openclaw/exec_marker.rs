//! Under OpenClaw's exec marker (`OPENCLAW_SHELL=exec`, set by the agent's exec tool and
//! inherited by `seq-check`, its runner and every step's agent) the gateway form of
//! `openclaw agent` cannot work: the real CLI refuses it. `seq-check` and `seq-runner` refuse it
//! up front instead of failing every try of every step.

use std::fs;
use std::time::Duration;

use crate::home::{Home, CLI_LIMIT};
use crate::process;
use crate::tools::Tools;

const GATEWAY_FORM: &str = "openclaw agent --session-key s --message";

#[test]
fn under_the_exec_marker_the_gateway_form_is_refused_up_front() {
    let Some(tools) = Tools::find("the exec-marker test") else {
        return;
    };
    let home = Home::new(&tools);

    let real = process::run(
        home.command("openclaw")
            .args(["agent", "--session-key", "s", "--message", "hi"])
            .env("OPENCLAW_SHELL", "exec"),
        CLI_LIMIT,
    );
    assert!(
        real.code() == Some(1)
            && (real.stdout + &real.stderr).contains("would lose inter-session attribution"),
        "the real openclaw should refuse its gateway form under the exec marker"
    );

    let state = home.path().join("state.json");
    process::run(
        home.command("seqctl")
            .args(["init", "--state"])
            .arg(&state)
            .args(["--step", "Alpha: Write the word alpha to alpha.txt"]),
        Duration::from_secs(30),
    )
    .ok();
    let before = fs::read(&state).expect("state.json");
    for program in ["seq-check", "seq-runner"] {
        let out = process::run(
            home.command(program)
                .arg(&state)
                .env("OPENCLAW_SHELL", "exec")
                .env("STEP_AGENT_CMD", GATEWAY_FORM),
            Duration::from_secs(30),
        );
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(
            out.code() == Some(2)
                && said.contains("STEP_AGENT_CMD")
                && said.contains("openclaw agent exec"),
            "{program} should refuse the gateway form with exit 2, naming STEP_AGENT_CMD and \
             recommending openclaw agent exec:\n{}",
            out.describe()
        );
        assert_eq!(
            fs::read(&state).ok(),
            Some(before.clone()),
            "{program} changed state.json"
        );
    }
    let events = fs::read_to_string(home.path().join("state.json.seq/events.jsonl"));
    assert!(
        !events.unwrap_or_default().contains("step_started"),
        "no step may start"
    );
}
