//! The bad-input corpus (`tests/corpus/`): every malformed or hostile state file, run through
//! `seq-check` and `seq-runner`, exits 2 within 2 s of CPU and 64 MiB, with a message naming the
//! file and the field, and leaves the file byte for byte. The files whose ids only look hostile
//! (`tests/corpus/valid/`) run to the end with every log inside the sidecar folder.

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{Workspace, CHECK, RUNNER};
use crate::proof::{run_measured, Measured};

/// CPU time a refusal may take (debug builds; CPU, not wall time, so a loaded machine does
/// not fail the test), and the wall time that would mean it hung.
const TIME_LIMIT: Duration = Duration::from_secs(2);
const HANG_LIMIT: Duration = Duration::from_secs(30);
const RSS_LIMIT_KIB: u64 = 64 * 1024;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// The table of `expected.txt`: file name -> message fragment.
fn expected() -> Vec<(String, String)> {
    fs::read_to_string(corpus_dir().join("expected.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, fragment) = l.split_once('\t').expect("file<TAB>fragment");
            (name.to_owned(), fragment.to_owned())
        })
        .collect()
}

/// What the state path is, for "unchanged" checks of files that are not regular files.
#[derive(Debug, PartialEq, Eq)]
enum Snapshot {
    Bytes(Vec<u8>),
    Link(PathBuf),
    Fifo,
    Dir(Vec<String>),
}

fn snapshot(path: &Path) -> Snapshot {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.file_type().is_symlink() {
        Snapshot::Link(fs::read_link(path).unwrap())
    } else if meta.file_type().is_fifo() {
        Snapshot::Fifo
    } else if meta.is_dir() {
        let mut names: Vec<String> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Snapshot::Dir(names)
    } else {
        Snapshot::Bytes(fs::read(path).unwrap())
    }
}

/// Runs both binaries on the workspace's state.json and checks every promise for one case.
fn refuse(ws: &Workspace, name: &str, fragment: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let before = snapshot(&ws.state_path());
    for program in [CHECK, RUNNER] {
        let binary = program.rsplit('/').next().unwrap();
        let mut command: Command = ws.command(program);
        command.arg("state.json");
        let scratch = tempfile::tempdir().unwrap();
        let out: Measured = run_measured(&mut command, scratch.path());
        eprintln!(
            "{name} via {binary}: exit {:?} in {} ms, peak RSS {} KiB",
            out.status.code(),
            out.elapsed.as_millis(),
            out.max_rss_kib
        );
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit {:?}, not 2", out.status));
        }
        if !out.stderr.contains("state.json") {
            problems.push("the message does not name the file".to_owned());
        }
        if !out.stderr.contains(fragment) {
            problems.push(format!("the message lacks {fragment:?}"));
        }
        if out.cpu > TIME_LIMIT || out.elapsed > HANG_LIMIT {
            problems.push(format!(
                "took {:?} of CPU ({:?} in all)",
                out.cpu, out.elapsed
            ));
        }
        if out.max_rss_kib > RSS_LIMIT_KIB {
            problems.push(format!("peak RSS {} KiB", out.max_rss_kib));
        }
        if snapshot(&ws.state_path()) != before {
            problems.push("the state file changed".to_owned());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{name} via {binary}: {}\n    stderr: {}",
                problems.join("; "),
                out.stderr.trim()
            ));
        }
    }
    failures
}

fn workspace() -> Workspace {
    let mut ws = Workspace::new();
    // A valid agent, so nothing but the state file can be what is refused.
    ws.agent("true");
    ws
}

#[test]
fn every_corpus_file_is_refused_quickly_in_bounded_memory_and_left_unchanged() {
    let table = expected();
    // The table and the folder agree: no file without an expected message, and the reverse.
    let mut files: Vec<String> = fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = table.iter().map(|(n, _)| n.clone()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "tests/corpus/*.json and expected.txt disagree"
    );
    assert!(table.len() >= 30);

    let mut failures = Vec::new();
    for (name, fragment) in &table {
        let ws = workspace();
        fs::copy(corpus_dir().join(name), ws.state_path()).unwrap();
        failures.extend(refuse(&ws, name, fragment));
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

#[test]
fn generated_hostile_files_are_refused_too() {
    let mut failures = Vec::new();

    // A 100 MB string: refused by its size before a byte is read.
    let ws = workspace();
    {
        use std::io::Write;
        let mut file = fs::File::create(ws.state_path()).unwrap();
        file.write_all(br#"{"plan": {"steps": {}}, "x": ""#)
            .unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..100 {
            file.write_all(&chunk).unwrap();
        }
        file.write_all(b"\"}\n").unwrap();
    }
    failures.extend(refuse(
        &ws,
        "100 MB string",
        "a state file may be at most 32 MiB",
    ));

    // Just under the size cap: read and parsed, still within the memory bound.
    let ws = workspace();
    let mut text = String::from(r#"{"x": ""#);
    text.push_str(&"a".repeat(31 << 20));
    text.push_str(
        r#"", "plan": {"steps": {"a": {"instruction": "x"}}}, "stepQueue": ["a"], "status": "RUNNING"}"#,
    );
    fs::write(ws.state_path(), text).unwrap();
    failures.extend(refuse(
        &ws,
        "31 MiB string",
        "status: unknown variant `RUNNING`",
    ));

    let ws = workspace();
    symlink("/dev/zero", ws.state_path()).unwrap();
    failures.extend(refuse(&ws, "symlink to /dev/zero", "is not a regular file"));

    let ws = workspace();
    let path = std::ffi::CString::new(ws.state_path().to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    failures.extend(refuse(&ws, "fifo", "is not a regular file"));

    let ws = workspace();
    fs::create_dir(ws.state_path()).unwrap();
    failures.extend(refuse(&ws, "directory", "is a directory, not a state file"));

    let ws = workspace();
    symlink("state.json", ws.state_path()).unwrap();
    failures.extend(refuse(&ws, "symlink loop", "cannot resolve"));

    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Ids that look like paths or shell code are valid; they must stay data: every log lands
/// flat in the sidecar's logs folder, nothing is created outside the workspace, nothing runs.
#[test]
fn path_like_and_shell_like_step_ids_stay_inside_the_sidecar() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("ws");
    fs::create_dir(&root).unwrap();
    let state = root.join("state.json");
    fs::copy(corpus_dir().join("valid/hostile-ids.json"), &state).unwrap();
    let agent = root.join("agent.sh");
    fs::write(&agent, "#!/bin/sh\necho \"ran $STEP_ID\"\n").unwrap();
    fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new(CHECK)
        .arg(&state)
        .arg("--wait")
        .current_dir(&root)
        .env("STEP_AGENT_CMD", &agent)
        .env_remove("STEP_RUNNER")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
    assert_eq!(value["status"], "DONE", "{value:#}");
    let logs = root.join("state.json.seq/logs");
    for id in value["stepQueue"].as_array().unwrap() {
        let id = id.as_str().unwrap();
        let run = &value["stepRuns"][id];
        assert_eq!(run["status"], "DONE", "{id}");
        assert_eq!(run["stdout"], format!("ran {id}\n"), "{id}");
        let log = run["logFile"].as_str().unwrap();
        let name = log
            .strip_prefix("state.json.seq/logs/")
            .unwrap_or_else(|| panic!("{id}: log {log} is not in the sidecar"));
        assert!(!name.contains('/') && name.len() < 255, "{id}: {name}");
        assert!(logs.join(name).is_file(), "{id}: {name} missing");
        assert!(value["plan"]["steps"][id]["x_keep"].is_number(), "{id}");
    }
    // Nothing beside the workspace, nothing unexpected in it, no shell code ran.
    let beside: Vec<_> = fs::read_dir(outer.path()).unwrap().collect();
    assert_eq!(beside.len(), 1, "files were created outside the workspace");
    let mut names: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["agent.sh", "state.json", "state.json.seq"]);
    let mut sidecar: Vec<String> = fs::read_dir(root.join("state.json.seq"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    sidecar.sort();
    assert_eq!(
        sidecar,
        ["events.jsonl", "lease", "leases", "lock", "logs", "results"]
    );
    for entry in fs::read_dir(&logs).unwrap() {
        assert!(entry.unwrap().file_type().unwrap().is_file());
    }
    for entry in fs::read_dir(root.join("state.json.seq/leases")).unwrap() {
        assert!(entry.unwrap().file_type().unwrap().is_file());
    }
    for entry in fs::read_dir(root.join("state.json.seq/results")).unwrap() {
        assert!(entry.unwrap().file_type().unwrap().is_file());
    }
    assert!(!Path::new("/tmp/seq-proof-abs-id.1.log").exists());
    assert!(!Path::new("/tmp/seq-proof-abs-id").exists());
}
