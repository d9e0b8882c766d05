//! The Python version's files load, run or report correctly, and keep every field.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::{assert_interrupted, fixture, Workspace};

const FIXTURES: &[&str] = &[
    "agent-extras.json",
    "blocked.json",
    "done.json",
    "failed-retry.json",
    "fresh-plan.json",
    "mid-run.json",
];

/// Every field of `before` is in `after` with the same value, at every level, except the
/// fields the engine owns and is expected to change.
fn assert_kept(before: &Value, after: &Value, path: &str) {
    const OWNED: &[&str] = &[
        "status",
        "tries",
        "lastRunIso",
        "error",
        "stdout",
        "currentStep",
        "lastHeartbeatIso",
        "artifacts",
        "blockers",
    ];
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (key, value) in b {
                let inner = format!("{path}.{key}");
                let Some(kept) = a.get(key) else {
                    panic!("field {inner} was lost");
                };
                if !OWNED.contains(&key.as_str()) {
                    assert_kept(value, kept, &inner);
                }
            }
        }
        _ => assert_eq!(before, after, "field {path} changed"),
    }
}

#[test]
fn shared_fixtures_match_the_copies_in_this_repository() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/legacy");
    if !shared.exists() {
        return; // a lone clone: the copies are all there is
    }
    for name in FIXTURES {
        assert_eq!(
            fs::read(shared.join(name)).unwrap(),
            fs::read(fixture(name)).unwrap(),
            "tests/fixtures/legacy/{name} differs from the shared fixture"
        );
    }
}

#[test]
fn every_fixture_survives_a_heartbeat_with_all_its_fields() {
    for name in FIXTURES {
        let mut ws = Workspace::with_fixture(name);
        ws.agent("exit 0").set("STEP_RUNNER", "/bin/true");
        let before = ws.state();
        let run = ws.check(&[]);
        assert!(
            run.code() == 0 || (run.code() == 1 && *name == "blocked.json"),
            "{name}: {}",
            run.stderr()
        );
        assert_kept(&before, &ws.state(), name);
    }
}

#[test]
fn legacy_plans_run_to_the_end_keeping_every_field() {
    for name in ["fresh-plan.json", "failed-retry.json"] {
        let mut ws = Workspace::with_fixture(name);
        ws.agent("mkdir -p study && touch study/summary.md prices.json");
        let before = ws.state();
        ws.check(&["--wait"]).expect(0).stdout_has("done: ");
        // The finish is reported once; later heartbeats stay quiet and write nothing.
        let settled = ws.bytes();
        ws.check(&[]).expect(0).stdout_has("nothing to do");
        ws.check(&["--no-reply"]).expect(0).stdout_has("NO_REPLY");
        assert_eq!(ws.bytes(), settled);
        let after = ws.state();
        assert_eq!(after["status"], "DONE", "{name}");
        assert_kept(&before, &after, name);
    }
}

#[test]
fn the_python_blockers_are_not_appended_again() {
    let mut ws = Workspace::with_fixture("blocked.json");
    ws.agent("exit 0");
    for _ in 0..3 {
        ws.check(&[])
            .expect(1)
            .stdout_has("blocked: step step-1 failed 3 tries; last error: CoinMarketCap");
    }
    assert_eq!(ws.state()["blockers"].as_array().unwrap().len(), 3);
}

#[test]
fn a_step_interrupted_under_python_is_retried_after_its_delay() {
    let mut ws = Workspace::with_fixture("mid-run.json");
    ws.agent("exit 0").set("STEP_RUNNER", "/bin/true");
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "waiting", "{beat}");
    assert_eq!(beat["step"], "pull-b");
    assert_interrupted(&ws.state()["stepRuns"]["pull-b"], 1);
}

#[test]
fn a_finished_legacy_plan_is_left_byte_for_byte() {
    let ws = Workspace::with_fixture("done.json");
    let before = ws.bytes();
    // Finished by the Python version: nothing to report, nothing to write.
    ws.check(&[])
        .expect(0)
        .stdout_has("nothing to do: the plan is done");
    ws.check(&["--no-reply"]).expect(0).stdout_has("NO_REPLY");
    let beat = ws.check(&["--json"]).expect(0).json();
    assert_eq!(beat["result"], "done");
    assert_eq!(ws.bytes(), before);
}

#[test]
fn temp_files_left_by_a_killed_write_are_swept_by_the_next_save() {
    let mut ws = Workspace::with_fixture("fresh-plan.json");
    ws.agent("mkdir -p study && touch study/summary.md");
    std::fs::create_dir_all(ws.sidecar()).unwrap();
    ws.write("state.json.seq/state.AbC123.tmp", "{\"half\": ");
    ws.check(&["--wait"]).expect(0);
    assert!(
        !ws.sidecar().join("state.AbC123.tmp").exists(),
        "{}",
        ws.listing()
    );
}
