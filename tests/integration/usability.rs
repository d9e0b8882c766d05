//! What a new user meets first (issue 13): a wrong path, a fresh home, honest summaries,
//! typos, the configuration, the help and the small words. Each test fails on the code before
//! its fix.

use std::fs;

use crate::common::{Workspace, CHECK, RUNNER, SEQCTL};

#[test]
fn each_binary_names_itself_in_its_version_line() {
    let ws = Workspace::new();
    let version = env!("CARGO_PKG_VERSION");
    for (program, name) in [
        (CHECK, "seq-check"),
        (RUNNER, "seq-runner"),
        (SEQCTL, "seqctl"),
    ] {
        let run = ws.run(program, &["--version"]);
        assert_eq!(run.expect(0).stdout(), format!("{name} {version}\n"));
    }
}

#[test]
fn help_takes_help_like_every_command() {
    let ws = Workspace::new();
    ws.seqctl(&["help", "--help"])
        .expect(0)
        .stdout_has("Print this help, or the help of the given command");
    ws.seqctl(&["help", "retry"])
        .expect(0)
        .stdout_has("Clear a step's blocker");
    ws.seqctl(&["help"]).expect(0).stdout_has("Commands:");
    ws.seqctl(&["help", "nosuch"])
        .expect(2)
        .stderr_has("no command `nosuch`");
}

#[test]
fn counts_read_in_the_right_number() {
    let mut ws = Workspace::new();
    ws.agent("echo no >&2; exit 3").set("STEP_MAX_RETRIES", "1");
    ws.seqctl(&["init", "--step", "Only: do the one thing"])
        .expect(0)
        .stdout_has(": 1 step (step-1)");
    ws.seqctl(&["validate", "state.json"])
        .expect(0)
        .stdout_has("valid: 1 step\n");
    ws.check(&["--wait"])
        .expect(1)
        .stdout_has("blocked: step step-1 failed 1 try; last error");
}

#[test]
fn a_step_reset_by_retry_shows_no_old_times() {
    let mut ws = Workspace::new();
    ws.agent("echo no >&2; exit 3").set("STEP_MAX_RETRIES", "1");
    ws.seqctl(&["init", "--step", "Only: do the one thing"])
        .expect(0);
    ws.check(&["--wait"]).expect(1);
    ws.seqctl(&["retry", "step-1"]).expect(0);
    let status = ws.seqctl(&["status"]).expect(0).stdout();
    let row = status
        .lines()
        .find(|l| l.contains("step-1"))
        .unwrap_or_default()
        .to_owned();
    assert!(row.ends_with("PENDING  0      -     -"), "{status}");
}

#[test]
fn a_syntax_error_names_the_object_never_a_question_mark() {
    let ws = Workspace::with_state(
        r#"{"plan":{"steps":{"a":{"instruction":"x"}, }},"stepQueue":["a"]}"#,
    );
    let json = ws
        .seqctl(&["validate", "state.json", "--json"])
        .expect(2)
        .json();
    assert_eq!(json["field"], "plan.steps");
    let run = ws.check(&["--json"]);
    assert!(!run.expect(2).stdout().contains(".?"), "{}", run.stdout());
}

#[test]
fn a_license_file_backs_the_manifests_license() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("license = \"MIT\""));
    let license = fs::read_to_string(root.join("LICENSE")).expect("a LICENSE file");
    assert!(license.starts_with("MIT License"), "{license}");
}

#[test]
fn a_state_path_that_cannot_be_right_is_an_error_and_a_missing_file_is_named() {
    let mut ws = Workspace::new();
    let here = fs::canonicalize(ws.path()).unwrap();
    ws.check(&["nosuch.json"])
        .expect(0)
        .stdout_has(&format!("no plan at {}/nosuch.json\n", here.display()));
    let json = ws.check(&["--json", "nosuch.json"]).expect(0).json();
    assert_eq!(json["result"], "no_plan");
    assert_eq!(json["stateFile"], format!("{}/nosuch.json", here.display()));
    ws.check(&["--no-reply", "nosuch.json"])
        .expect(0)
        .stdout_has("NO_REPLY");
    for program in [CHECK, RUNNER] {
        ws.run(program, &["/no/such/dir/state.json"])
            .expect(2)
            .stderr_has("/no/such/dir/state.json: no such folder /no/such/dir");
    }
    ws.runner(&["nosuch.json"])
        .expect(0)
        .stdout_has("no plan at");
    ws.check(&["--no-reply", "/no/such/dir/state.json"])
        .expect(2)
        .stdout_has("no such folder");
    // What an automation's --command-argv passes: no shell expanded anything.
    ws.set("HOME", &here.display().to_string()).agent("exit 0");
    ws.seqctl(&["init", "--step", "A: do a"]).expect(0);
    ws.check(&["--json", "~/state.json"])
        .expect(0)
        .stdout_has("\"result\":\"started\"");
    ws.check(&["$HOME/state.json"])
        .expect(2)
        .stderr_has("no shell expanded");
}

#[test]
fn init_makes_the_workspace_folder_on_a_fresh_home() {
    let mut ws = Workspace::new();
    let home = ws.path().join("home");
    ws.set("HOME", &home.display().to_string());
    // SKILL.md's own line, as an OpenClaw exec tool (or a shell) runs it on a new machine.
    ws.seqctl(&[
        "init",
        "--state",
        "~/.openclaw/workspace/state.json",
        "--step",
        "Research: write notes.md",
    ])
    .expect(0)
    .stdout_has("created ");
    assert!(home.join(".openclaw/workspace/state.json").is_file());
    ws.seqctl(&["init", "--state", "$HOME/x/state.json", "--step", "A: a"])
        .expect(2)
        .stderr_has("no shell expanded");
}

#[test]
fn every_command_takes_the_state_file_as_an_argument_or_from_step_state() {
    let mut ws = Workspace::new();
    ws.agent("echo done");
    fs::create_dir(ws.path().join("w")).unwrap();
    ws.seqctl(&["init", "w/plan.json", "--step", "A: do a"])
        .expect(0);
    for args in [
        &["status", "w/plan.json"][..],
        &["explain", "w/plan.json"],
        &["validate", "w/plan.json"],
        &["pause", "w/plan.json"],
        &["resume", "w/plan.json"],
        &["edit-step", "step-1", "w/plan.json", "--title", "B"],
        &["add-step", "step-2", "w/plan.json", "--instruction", "do b"],
        &["skip", "step-2", "w/plan.json"],
        &["remove-step", "step-2", "w/plan.json"],
        &["status", "--state", "w/plan.json"],
    ] {
        ws.seqctl(args).expect(0);
    }
    ws.check(&["--wait", "w/plan.json"]).expect(0);
    ws.seqctl(&["events", "w/plan.json"]).expect(0);
    ws.seqctl(&["logs", "step-1", "w/plan.json"])
        .expect(0)
        .stdout_has("done");
    ws.seqctl(&["add-step", "w/plan.json", "--instruction", "x"])
        .expect(2)
        .stderr_has("is a file: add-step takes the new step's id first");
    ws.seqctl(&["status", "w/plan.json", "--state", "w/plan.json"])
        .expect(2);
    // STEP_STATE is the default for all three binaries.
    ws.set("STEP_STATE", "w/plan.json");
    ws.seqctl(&["status"]).expect(0).stdout_has("plan success");
    ws.check(&[])
        .expect(0)
        .stdout_has("nothing to do: the plan is done");
    ws.runner(&[]).expect(0);
    assert!(!ws.path().join("state.json").exists());
}
