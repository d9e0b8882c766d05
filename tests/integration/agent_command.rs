//! STEP_AGENT_CMD wired end to end: a bad or refused command stops both seq-check and
//! seq-runner with exit 2 before anything changes. (The policy's own table is in src/policy.rs.)

use std::os::unix::fs::symlink;

use serde_json::{json, Value};

use crate::common::{plan, Workspace};

/// Runs both binaries with `STEP_AGENT_CMD` = `cmd` (None: unset) against a plan the check
/// would change (an interrupted try to record) and one the runner would start; both must exit
/// 2 with a message holding `words`, leaving the file byte-for-byte and no step IN_PROGRESS.
fn refused(ws: &mut Workspace, cmd: Option<&str>, words: &[&str]) {
    ws.env.retain(|(name, _)| name != "STEP_AGENT_CMD");
    if let Some(cmd) = cmd {
        ws.set("STEP_AGENT_CMD", cmd);
    }
    ws.set("STEP_RUNNER", "/bin/true");
    let what = format!("STEP_AGENT_CMD={cmd:?}");

    let mut state: Value = serde_json::from_str(&plan(2, "")).unwrap();
    state["stepRuns"]["s1"] = json!({"status": "IN_PROGRESS", "tries": 1});
    ws.set_state(&state);
    let before = ws.bytes();
    for args in [&[][..], &["--wait"], &["--json"]] {
        let run = ws.check(args);
        run.expect(2).stderr_has("STEP_AGENT_CMD");
        for word in words {
            run.stderr_has(word);
        }
        ws.assert_untouched(&before, &format!("seq-check {args:?} with {what}"));
    }

    ws.set_state(&serde_json::from_str::<Value>(&plan(2, "")).unwrap());
    let before = ws.bytes();
    let run = ws.runner(&[]);
    run.expect(2).stderr_has("STEP_AGENT_CMD");
    for word in words {
        run.stderr_has(word);
    }
    ws.assert_untouched(&before, &format!("seq-runner with {what}"));
    assert_eq!(
        ws.state()["stepRuns"],
        json!({}),
        "{what}: a step was marked IN_PROGRESS"
    );
    assert!(!ws.path().join("ran").exists(), "{what}: something ran");
}

#[test]
fn unset_empty_and_unparsable_commands_are_refused_by_both_binaries() {
    let mut ws = Workspace::new();
    refused(&mut ws, None, &["not set"]);
    refused(&mut ws, Some(""), &["not set"]);
    refused(&mut ws, Some("   "), &["not set"]);
    refused(&mut ws, Some("myagent 'unclosed"), &["cannot be parsed"]);
    refused(&mut ws, Some("{prompt} --x"), &["refused"]);
}

#[test]
fn a_program_not_on_path_is_refused_by_both_binaries() {
    let mut ws = Workspace::new();
    refused(
        &mut ws,
        Some("no-such-agent-xyz --message"),
        &["`no-such-agent-xyz` not found on PATH"],
    );
    ws.write("not-exec", "#!/bin/sh\ntouch ran\n");
    refused(&mut ws, Some("./not-exec"), &["not found on PATH"]);
}

#[test]
fn a_shell_is_refused_by_both_binaries_with_a_suggestion() {
    let mut ws = Workspace::new();
    for cmd in ["bash", "sh -c", "bash --norc"] {
        refused(
            &mut ws,
            Some(cmd),
            // The fix named is the command that works from every path OpenClaw starts us on.
            &[
                "refused",
                "openclaw agent exec --timeout 0 --message-file {prompt_file}",
            ],
        );
    }
}

/// The policy judges the program's real path, so a symlink to bash under another name is still
/// a shell. (Needs the real policy of src/policy.rs; the placeholder judges names only.)
#[test]
fn a_symlink_to_a_shell_is_refused_by_both_binaries() {
    let mut ws = Workspace::new();
    symlink("/bin/bash", ws.path().join("myagent")).unwrap();
    refused(&mut ws, Some("./myagent --message"), &["refused"]);
    let path = format!(
        "{}:{}",
        ws.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    ws.set("PATH", &path);
    refused(&mut ws, Some("myagent --message"), &["refused"]);
}

#[test]
fn an_allowed_command_with_arguments_runs() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    let agent = ws.script("my agent.sh", r#"printf '%s|' "$@" > args.txt"#);
    ws.set(
        "STEP_AGENT_CMD",
        &format!("'{}' --session-key \"k 1\" --message", agent.display()),
    );
    ws.runner(&[]).expect(0);
    assert_eq!(ws.read("args.txt"), "--session-key|k 1|--message|do s1|");
}

/// A stand-in `openclaw` on PATH that records its arguments and the prompt file it is given.
fn fake_openclaw(ws: &mut Workspace) {
    std::fs::create_dir_all(ws.path().join("bin")).unwrap();
    ws.script(
        "bin/openclaw",
        r#"printf '%s\n' "$@" >> openclaw.args
while [ $# -gt 0 ]; do
  [ "$1" = --message-file ] && cat "$2" >> openclaw.prompts && echo >> openclaw.prompts
  shift
done"#,
    );
    let path = format!("{}/bin:/usr/bin:/bin", ws.path().display());
    ws.set("PATH", &path);
}

#[test]
fn under_openclaws_exec_marker_the_gateway_form_is_refused_up_front_and_agent_exec_runs() {
    let mut ws = Workspace::new();
    fake_openclaw(&mut ws);
    ws.set("OPENCLAW_SHELL", "exec");
    for gateway in [
        "openclaw agent --session-key step-sequencer --message",
        "openclaw agent --session-key s --timeout 0 --message-file {prompt_file}",
        "timeout 600 openclaw agent -m",
    ] {
        refused(
            &mut ws,
            Some(gateway),
            &["OPENCLAW_SHELL=exec", "openclaw agent exec --timeout 0"],
        );
    }
    // The recommended command runs every step, each prompt through a file.
    ws.set(
        "STEP_AGENT_CMD",
        "openclaw agent exec --timeout 0 --message-file {prompt_file}",
    );
    ws.env.retain(|(name, _)| name != "STEP_RUNNER");
    ws.set_state(&serde_json::from_str::<Value>(&plan(2, "")).unwrap());
    ws.check(&["--wait"]).expect(0);
    assert_eq!(ws.state()["status"], "DONE");
    let args = ws.read("openclaw.args");
    assert!(
        args.starts_with("agent\nexec\n--timeout\n0\n--message-file\n"),
        "{args}"
    );
    assert_eq!(ws.read("openclaw.prompts"), "do s1\ndo s2\n");
    // Without the marker (a person's shell, a command automation) the gateway form is the
    // user's choice, and runs.
    ws.env.retain(|(name, _)| name != "OPENCLAW_SHELL");
    ws.set("STEP_AGENT_CMD", "openclaw agent --session-key s --message");
    ws.set_state(&serde_json::from_str::<Value>(&plan(1, "")).unwrap());
    ws.check(&["--wait"]).expect(0);
    assert_eq!(ws.state()["status"], "DONE");
}
