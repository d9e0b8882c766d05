//! Write faults: writes that fail (a file-size limit, a full file system, a read-only sidecar)
//! leave the previous state byte for byte, and the command says what failed and exits 2.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::common::{plan, Workspace, CHECK, RUNNER};
use crate::proof::{detector_agent, limit_file_size, temp_files, wait_no_processes, AgentLog};

/// Runs a binary on the workspace's state; its output goes to pipes, which a file-size limit
/// does not touch (a file would, and cut the very message under test).
fn run(ws: &Workspace, program: &str, setup: impl FnOnce(&mut Command)) -> Finished {
    let mut command = ws.command(program);
    command.arg("state.json");
    setup(&mut command);
    let out = command.output().expect("spawn");
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

#[track_caller]
fn assert_failed_write(out: &Finished, ws: &Workspace, before: &[u8], what: &str, why: &str) {
    assert_eq!(
        out.code,
        Some(2),
        "{what}: expected exit 2\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    let path = ws.state_path().canonicalize().unwrap();
    for fragment in [
        format!("{}: cannot write the new state", path.display()),
        why.to_owned(),
    ] {
        assert!(
            out.stderr.contains(&fragment),
            "{what}: stderr lacks {fragment:?}: {}",
            out.stderr
        );
    }
    assert!(
        ws.bytes() == before,
        "{what}: the state file changed:\n{}",
        String::from_utf8_lossy(&ws.bytes())
    );
    let temps = temp_files(&ws.sidecar());
    assert!(temps.is_empty(), "{what}: temp files left: {temps:?}");
}

#[test]
fn a_file_size_limit_fails_the_heartbeat_and_keeps_the_state() {
    let mut ws = Workspace::with_state(&plan(3, ""));
    ws.agent("true");
    let before = ws.bytes();
    // Smaller than the new state: the temp file's write fails with EFBIG.
    let out = run(&ws, CHECK, |c| limit_file_size(c, 64));
    assert_failed_write(&out, &ws, &before, "seq-check", "File too large");
    assert!(
        !ws.sidecar().join("runner.log").exists(),
        "no runner may start after a failed save"
    );
    // Without the limit the same heartbeat works.
    ws.check(&["--wait"]).expect(0);
    assert_eq!(ws.state()["status"], "DONE");
}

#[test]
fn a_file_size_limit_fails_the_runner_before_any_agent_runs() {
    let mut ws = Workspace::with_state(&plan(3, ""));
    ws.agent(&detector_agent(""));
    let before = ws.bytes();
    // Room for the lease note (~60 bytes), not for the state.
    let out = run(&ws, RUNNER, |c| limit_file_size(c, 128));
    assert_failed_write(&out, &ws, &before, "seq-runner", "File too large");
    assert!(
        AgentLog::read(ws.path()).starts.is_empty(),
        "an agent ran although its start could not be recorded"
    );
}

/// The limit leaves room for a step or two, then a write fails mid-plan: the runner stops
/// with exit 2 and the message, the file is the last good state, and a heartbeat without the
/// limit finishes the plan, repeating at most the one try whose result was not recorded.
#[test]
fn a_write_failing_mid_plan_keeps_the_last_good_state_and_resumes() {
    let pretty: serde_json::Value = serde_json::from_str(&plan(6, "")).unwrap();
    let mut ws = Workspace::with_state(&serde_json::to_string_pretty(&pretty).unwrap());
    ws.agent(&detector_agent(""));
    let limit = ws.bytes().len() as u64 + 700;
    let out = run(&ws, RUNNER, |c| limit_file_size(c, limit));
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("cannot write the new state") && out.stderr.contains("File too large"),
        "{}",
        out.stderr
    );
    // The state: the file, and the journal of the runner's saves in this burst of fast steps.
    let state = agent_step_sequencer::store::Store::locate(&ws.state_path())
        .unwrap()
        .unwrap()
        .read_light()
        .expect("the last good state parses");
    let done = state
        .step_runs
        .values()
        .filter(|r| r.status == agent_step_sequencer::format::schema::StepStatus::Done)
        .count();
    assert!(
        (1..6).contains(&done),
        "the limit should stop the plan midway: {done} done"
    );
    assert!(temp_files(&ws.sidecar()).is_empty());

    ws.check(&["--wait"]).expect(0);
    wait_no_processes(ws.path(), Duration::from_secs(10));
    let log = AgentLog::read(ws.path());
    log.assert_no_overlap("resumed after a failed write");
    let repeated: usize = log.starts.values().map(|s| s.len() - 1).sum();
    assert!(
        repeated <= 1,
        "at most the unrecorded try repeats:\n{}",
        log.text
    );
    assert_eq!(ws.state()["status"], "DONE");
}

/// Permission bits do not stop root, so this runs only for an ordinary user.
#[test]
fn a_read_only_sidecar_fails_the_write_and_keeps_the_state() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: running as root, where permission bits do not stop writes (the RLIMIT_FSIZE tests cover this)");
        return;
    }
    let mut ws = Workspace::with_state(&plan(2, ""));
    ws.agent("true");
    let before = ws.bytes();
    fs::create_dir(ws.sidecar()).unwrap();
    fs::write(ws.sidecar().join("lock"), "").unwrap();
    fs::write(ws.sidecar().join("lease"), "").unwrap();
    fs::set_permissions(ws.sidecar(), fs::Permissions::from_mode(0o500)).unwrap();
    let out = run(&ws, CHECK, |_| {});
    fs::set_permissions(ws.sidecar(), fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot create a temp file"),
        "{}",
        out.stderr
    );
    assert_eq!(ws.bytes(), before);
}

/// A full file system: a small tmpfs mounted in a user+mount namespace of our own (no root
/// needed where unprivileged user namespaces are allowed; skipped where they are not).
#[test]
fn a_full_file_system_fails_the_write_and_keeps_the_state() {
    let mut ws = Workspace::new();
    ws.agent("true");
    let mnt = ws.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    fs::write(ws.path().join("plan.json"), plan(3, "")).unwrap();
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=64k tmpfs "{mnt}" || exit 77
cp plan.json "{mnt}/state.json"
mkdir "{mnt}/state.json.seq"
dd if=/dev/zero of="{mnt}/fill" bs=1k count=1000 2>/dev/null || true
set +e
"{check}" "{mnt}/state.json" > out.txt 2> err.txt
echo $? > code.txt
if cmp -s plan.json "{mnt}/state.json"; then echo same > same.txt; else cp "{mnt}/state.json" after.json; fi
ls "{mnt}/state.json.seq" > sidecar.txt
"#,
        mnt = mnt.display(),
        check = CHECK,
    );
    let status = ws
        .command("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("skipped: cannot mount a private tmpfs here ({other:?})");
            return;
        }
    }
    let code = ws.read("code.txt");
    let err = ws.read("err.txt");
    assert_eq!(code.trim(), "2", "exit code; stderr: {err}");
    assert!(err.contains("cannot write the new state"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(
        ws.read("same.txt").trim(),
        "same",
        "state changed: {}",
        ws.read("after.json")
    );
    assert!(
        !ws.read("sidecar.txt").contains(".tmp"),
        "{}",
        ws.read("sidecar.txt")
    );
}
