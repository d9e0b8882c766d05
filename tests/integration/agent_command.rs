//! STEP_AGENT_CMD wired end to end: a bad or refused command stops both seq-check and
//! seq-runner with exit 2 before anything changes; known agents get the prompt where it is
//! never an option; STEP_AGENT_TRUST. (The policy's own table is in src/exec/policy/tests.rs.)

use std::os::unix::fs::symlink;

use serde_json::{json, Value};

use crate::common::{plan, plan_of, Workspace};

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
    // A path is looked for in the workspace, and the message says so (issue 13; this pinned
    // "not found on PATH", which sent people searching their PATH).
    refused(
        &mut ws,
        Some("./not-exec"),
        &["`./not-exec` is not an executable file", "in the workspace"],
    );
    refused(
        &mut ws,
        Some("./nosuch.sh"),
        &["`./nosuch.sh` not found in the workspace"],
    );
    refused(
        &mut ws,
        Some("~/bin/agent"),
        &["no shell expands `~` or `$`"],
    );
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
/// a shell.
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

/// Stand-ins on PATH for every program named in `names`: each records its arguments, one a
/// line, in `<name>.args`, and the prompt file it is given, so a test can tell what ran.
fn stand_ins(ws: &mut Workspace, names: &[&str]) {
    std::fs::create_dir_all(ws.path().join("bin")).unwrap();
    for name in names {
        ws.script(
            &format!("bin/{name}"),
            &format!(
                r#"printf '%s\n' "$@" > "{name}.args"
while [ $# -gt 0 ]; do
  case "$1" in --message-file) cat "$2" > "{name}.prompt";; esac
  shift
done"#
            ),
        );
    }
    let path = format!("{}/bin:/usr/bin:/bin", ws.path().display());
    ws.set("PATH", &path);
}

/// Issue 12: every bypass found in review, and more of each class, is refused by both
/// binaries before anything changes, with a message naming STEP_AGENT_CMD and the reason.
#[test]
fn each_class_of_injection_is_refused_by_both_binaries_with_its_reason() {
    let mut ws = Workspace::new();
    stand_ins(
        &mut ws,
        &[
            "fakeroot",
            "dbus-run-session",
            "bash-static",
            "sh.distrib",
            "zsh-static",
            "mksh-static",
            "lksh",
            "gdb",
            "vim",
            "ex",
            "sqlite3",
            "npx",
            "zip",
            "scp",
            "make",
            "tar",
            "find",
            "mylauncher",
            "mytool",
        ],
    );
    for (cmd, why) in [
        ("python3 -m timeit -n 1", "runs a module"),
        ("fakeroot sh -ec", "is a shell"),
        ("nice -n 1 fakeroot bash -ec", "is a shell"),
        ("env A=1 fakeroot -- sh -ec", "is a shell"),
        ("dbus-run-session -- perl -E", "runs inline code"),
        ("find . -maxdepth 0 -exec sh -ec {prompt} ;", "`-exec`"),
        ("mylauncher zsh -c", "STEP_AGENT_TRUST"),
        ("bash-static -ec", "is a shell"),
        ("sh.distrib -ec", "is a shell"),
        ("zsh-static -c", "is a shell"),
        ("mksh-static -c", "is a shell"),
        ("lksh -c", "is a shell"),
        ("make -E", "runs code"),
        ("gdb -batch -nx -ex", "debugger commands"),
        ("vim -Nu NONE -es --cmd", "editor commands"),
        ("ex +{prompt}", "editor commands"),
        ("sqlite3 :memory:", "`.shell`"),
        ("npx --yes --call", "`--call`"),
        ("tar -c -f /dev/null -I", "`-I`"),
        ("zip out.zip -T --unzip-command", "`--unzip-command`"),
        ("scp -o ProxyCommand={prompt} a b", "`-o`"),
        ("mytool --shell bash", "STEP_AGENT_TRUST"),
    ] {
        refused(&mut ws, Some(cmd), &["STEP_AGENT_CMD is refused", why]);
    }
}

/// The three agent CLIs the old blanket `-c`/`-e` rule refused run with their own flags, and
/// an instruction that looks like an option reaches them as the prompt, never as an option.
#[test]
fn known_agents_run_with_their_flags_and_get_every_instruction_as_the_prompt() {
    let instructions = [
        "--help",
        "--dangerously-skip-permissions",
        "--settings={\"a\":1}",
    ];
    for (cmd, program, args) in [
        ("claude -c -p", "claude", "-c\n-p\n--\n"),
        (
            "codex exec -c model_reasoning_effort=high",
            "codex",
            "exec\n-c\nmodel_reasoning_effort=high\n--\n",
        ),
        ("gemini -e none -p", "gemini", "-e\nnone\n--prompt="),
    ] {
        for instruction in instructions {
            let state = plan_of(&[("s1", json!({"instruction": instruction}))], &json!({}));
            let mut ws = Workspace::with_state(&state.to_string());
            stand_ins(&mut ws, &[program]);
            ws.set("STEP_AGENT_CMD", cmd);
            ws.runner(&[]).expect(0);
            assert_eq!(ws.state()["stepRuns"]["s1"]["status"], "DONE", "{cmd}");
            assert_eq!(
                ws.read(&format!("{program}.args")),
                format!("{args}{instruction}\n"),
                "{cmd} with {instruction}"
            );
        }
    }
}

/// With a program that is not a known agent, an instruction that starts with `-` would be
/// read as its option: that try fails with the reason, and the program never runs with it.
#[test]
fn an_instruction_that_would_be_an_option_fails_its_try_with_the_reason() {
    let state = plan_of(&[("s1", json!({"instruction": "--help"}))], &json!({}));
    let mut ws = Workspace::with_state(&state.to_string());
    let agent = ws.script("agent.sh", "touch ran");
    ws.set("STEP_AGENT_CMD", &format!("{} --message", agent.display()))
        .set("STEP_MAX_RETRIES", "1");
    ws.seqctl(&["validate", "state.json"])
        .expect(0)
        .stdout_has("plan.steps.s1.instruction starts with `-`");
    ws.runner(&[]).expect(1);
    let run = &ws.state()["stepRuns"]["s1"];
    assert_eq!(run["status"], "FAILED", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("starts with `-`") && error.contains("STEP_AGENT_CMD"),
        "{error}"
    );
    assert!(!ws.path().join("ran").exists(), "the agent ran");
    // After `--` it is data, and the agent gets it.
    let mut ws = Workspace::with_state(&state.to_string());
    let agent = ws.script("agent.sh", r#"printf '%s|' "$@" > args.txt"#);
    ws.set(
        "STEP_AGENT_CMD",
        &format!("{} -- {{prompt}}", agent.display()),
    );
    ws.runner(&[]).expect(0);
    assert_eq!(ws.read("args.txt"), "--|--help|");
}

/// aider runs a message starting with `!` as a shell command: such a try is refused.
#[test]
fn aider_is_never_given_an_instruction_it_would_run_as_a_command() {
    let state = plan_of(
        &[("s1", json!({"instruction": "!touch pwned"}))],
        &json!({}),
    );
    let mut ws = Workspace::with_state(&state.to_string());
    stand_ins(&mut ws, &["aider"]);
    ws.set("STEP_AGENT_CMD", "aider --yes-always")
        .set("STEP_MAX_RETRIES", "1");
    ws.runner(&[]).expect(1);
    let error = ws.state()["stepRuns"]["s1"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("aider") && error.contains("`!`"), "{error}");
    assert!(!ws.path().join("aider.args").exists(), "aider ran");
}

/// STEP_AGENT_TRUST lets a program the policy cannot judge run; it never lets a shell.
#[test]
fn step_agent_trust_vouches_for_a_named_program_only() {
    let mut ws = Workspace::with_state(&plan(1, ""));
    stand_ins(&mut ws, &["mytool"]);
    ws.set("STEP_AGENT_CMD", "mytool --shell bash");
    ws.runner(&[])
        .expect(2)
        .stderr_has("name it in STEP_AGENT_TRUST");
    ws.set("STEP_AGENT_TRUST", "othertool, mytool");
    ws.runner(&[]).expect(0);
    assert_eq!(ws.read("mytool.args"), "--shell\nbash\ndo s1\n");
    ws.set("STEP_AGENT_TRUST", "bash")
        .set("STEP_AGENT_CMD", "bash -c");
    ws.set_state(&serde_json::from_str::<Value>(&plan(1, "")).unwrap());
    ws.runner(&[]).expect(2).stderr_has("is a shell");
}

/// doctor shows the argv the runner will use, with the prompt marked, and what reads it.
#[test]
fn doctor_shows_where_the_prompt_goes() {
    let mut ws = Workspace::new();
    stand_ins(&mut ws, &["claude"]);
    ws.set("STEP_AGENT_CMD", "claude -p");
    let out = ws.seqctl(&["doctor"]).stdout();
    assert!(out.contains("as: claude -p -- ⟨prompt⟩"), "{out}");
    assert!(out.contains("is a known agent (claude)"), "{out}");
}
