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
