//! The test harness: a temp workspace, tiny fake agents, and the real binaries run in it.
//!
//! On failure, `Run`'s assertions print the command, its output and the workspace's files, so a
//! red test says what happened without a debugger.

#![allow(dead_code)] // each test module uses a different part of the harness

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const CHECK: &str = env!("CARGO_BIN_EXE_seq-check");
pub const RUNNER: &str = env!("CARGO_BIN_EXE_seq-runner");
pub const SEQCTL: &str = env!("CARGO_BIN_EXE_seqctl");

/// A temp workspace holding `state.json`, fake agents and whatever they write.
pub struct Workspace {
    dir: tempfile::TempDir,
    /// Extra environment for every command run here.
    pub env: Vec<(String, String)>,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            env: Vec::new(),
        }
    }

    /// A workspace whose state.json is `text`.
    pub fn with_state(text: &str) -> Self {
        let ws = Self::new();
        ws.write("state.json", text);
        ws
    }

    /// A workspace holding a copy of a legacy fixture as state.json.
    pub fn with_fixture(name: &str) -> Self {
        Self::with_state(&fs::read_to_string(fixture(name)).expect("fixture"))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_path(&self) -> PathBuf {
        self.path().join("state.json")
    }

    pub fn sidecar(&self) -> PathBuf {
        self.path().join("state.json.seq")
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.path().join(name);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).unwrap();
        }
        fs::write(path, text).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    /// Writes an executable `/bin/sh` script (a user's own agent with a shebang line).
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.path().join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Sets STEP_AGENT_CMD to a fresh script with `body`.
    pub fn agent(&mut self, body: &str) -> &mut Self {
        let path = self.script("agent.sh", body);
        self.set("STEP_AGENT_CMD", &path.display().to_string())
    }

    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(self.path())
            .env_remove("STEP_AGENT_CMD")
            .env_remove("STEP_MAX_RETRIES")
            .env_remove("STEP_TIMEOUT_SECONDS")
            .env_remove("STEP_RUNNER")
            .env_remove("STEP_AGENT_TRUST")
            .env_remove("STEP_STATE")
            // Output is compared as text: no colour, whatever the terminal running the tests.
            .env_remove("CLICOLOR_FORCE")
            .env_remove("CLICOLOR")
            .env_remove("NO_COLOR")
            // The machine's own named agents must not leak into a test.
            .env("STEP_AGENTS_FILE", "/nonexistent/agents.toml")
            // A test run from inside an OpenClaw agent must not carry its exec marker in.
            .env_remove("OPENCLAW_SHELL")
            .envs(self.env.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null());
        command
    }

    /// Runs `seq-check` with `args` to completion.
    pub fn check(&self, args: &[&str]) -> Run {
        self.run(CHECK, args)
    }

    /// Runs `seqctl` with `args` to completion.
    pub fn seqctl(&self, args: &[&str]) -> Run {
        self.run(SEQCTL, args)
    }

    /// Runs `seq-runner` with `args` to completion.
    pub fn runner(&self, args: &[&str]) -> Run {
        self.run(RUNNER, args)
    }

    pub fn run(&self, program: &str, args: &[&str]) -> Run {
        let output = self
            .command(program)
            .args(args)
            .output()
            .expect("spawn binary");
        Run {
            what: format!(
                "{} {}",
                program.rsplit('/').next().unwrap_or(program),
                args.join(" ")
            ),
            output,
            listing: self.listing(),
        }
    }

    /// The state: the parsed state file, with the journal of a runner's saves in a burst of
    /// fast steps applied when there is one (as every reader of the tools does; see
    /// `store::journal`). The file alone: [`Workspace::bytes`].
    pub fn state(&self) -> Value {
        let raw: Value = serde_json::from_slice(&fs::read(self.state_path()).expect("state.json"))
            .expect("state parses");
        if !self.sidecar().join("journal.jsonl").exists() {
            return raw;
        }
        let store = agent_step_sequencer::store::Store::locate(&self.state_path())
            .expect("state.json")
            .expect("state.json");
        serde_json::to_value(store.read_light().expect("state and journal read")).unwrap()
    }

    pub fn bytes(&self) -> Vec<u8> {
        fs::read(self.state_path()).unwrap()
    }

    /// Waits (up to `limit`) until `done(state)` holds; panics with the state otherwise.
    pub fn wait_for(&self, limit: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(bytes) = fs::read(self.state_path()) {
                let state: Value =
                    serde_json::from_slice(&bytes).expect("state parses at every moment");
                if done(&state) {
                    return state;
                }
                assert!(
                    Instant::now() <= deadline,
                    "timed out waiting for {what}\nstate: {state:#}\nfiles:\n{}\nrunner.log:\n{}",
                    self.listing(),
                    self.read("state.json.seq/runner.log")
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the plan's status is DONE.
    pub fn wait_done(&self, limit: Duration) -> Value {
        self.wait_for(limit, "status DONE", |s| s["status"] == "DONE")
    }

    /// Waits until no process holds the run lease (the runner and its agent have exited).
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let free = !lease_held(self.path());
            if free {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the run lease is still held\n{}",
                self.listing()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the process `pid` (a detached runner, say) has exited.
    pub fn wait_pid(&self, pid: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        while pid_alive(pid) {
            assert!(
                Instant::now() < deadline,
                "process {pid} still runs\n{}",
                self.listing()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every file under the workspace with its size, for failure messages.
    pub fn listing(&self) -> String {
        fn walk(dir: &Path, root: &Path, out: &mut String) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            let mut entries: Vec<_> = entries.flatten().collect();
            entries.sort_by_key(fs::DirEntry::path);
            for entry in entries {
                let path = entry.path();
                // A temp file may vanish between the listing and the stat: skip it.
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
                let name = path.strip_prefix(root).unwrap().display().to_string();
                if meta.is_dir() {
                    walk(&path, root, out);
                } else {
                    let _ = writeln!(out, "  {name} ({} bytes)", meta.len());
                }
            }
        }
        let mut out = String::new();
        walk(self.path(), self.path(), &mut out);
        out
    }
}

/// A finished command and what it printed.
pub struct Run {
    pub what: String,
    pub output: Output,
    pub listing: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts the exit code, printing everything about the run if it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "`{}` exited {} (expected {code})\nstdout:\n{}\nstderr:\n{}\nfiles:\n{}",
            self.what,
            self.code(),
            self.stdout(),
            self.stderr(),
            self.listing
        );
        self
    }

    /// Asserts that stdout contains `text`.
    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout().contains(text),
            "`{}` stdout lacks {text:?}:\n{}\nstderr:\n{}",
            self.what,
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Asserts that stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr().contains(text),
            "`{}` stderr lacks {text:?}:\n{}\nstdout:\n{}",
            self.what,
            self.stderr(),
            self.stdout()
        );
        self
    }

    /// The stdout parsed as one JSON value (for `--json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout().trim())
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{}", self.what, self.stdout()))
    }
}

/// A file of the shared legacy fixtures (`../shared/fixtures/legacy/` beside the repository),
/// with a copy under `tests/fixtures/legacy/` so the tests run from a lone clone too.
pub fn fixture(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    root.join("tests/fixtures/legacy").join(name)
}

/// A plan of `n` steps `s1..sn` whose instructions are "do sN"; `extra` is spliced into the top
/// level (e.g. `"stepDelayMinutes": 0.01,`).
pub fn plan(n: usize, extra: &str) -> String {
    let steps: Vec<String> = (1..=n)
        .map(|i| format!(r#""s{i}": {{"title": "Step {i}", "instruction": "do s{i}"}}"#))
        .collect();
    let queue: Vec<String> = (1..=n).map(|i| format!(r#""s{i}""#)).collect();
    format!(
        r#"{{ {extra} "plan": {{ "steps": {{ {} }} }}, "stepQueue": [{}], "currentStep": 0, "stepRuns": {{}}, "status": "IN_PROGRESS" }}"#,
        steps.join(", "),
        queue.join(", ")
    )
}

/// Whether a process exists and is not a zombie.
pub fn pid_alive(pid: u64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(") ")
            .next()
            .is_some_and(|rest| !rest.starts_with('Z'))
    })
}

/// A command started in the background, with its output captured for [`Spawned::finish`].
pub struct Spawned {
    pub what: String,
    pub child: std::process::Child,
}

impl Spawned {
    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for it and returns what it printed.
    pub fn finish(self, ws: &Workspace) -> Run {
        let output = self.child.wait_with_output().expect("wait");
        Run {
            what: self.what,
            output,
            listing: ws.listing(),
        }
    }
}

impl Workspace {
    /// Starts `program` with `args` without waiting for it (stdout and stderr captured).
    pub fn spawn(&self, program: &str, args: &[&str]) -> Spawned {
        let child = self
            .command(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn binary");
        Spawned {
            what: format!(
                "{} {}",
                program.rsplit('/').next().unwrap_or(program),
                args.join(" ")
            ),
            child,
        }
    }

    /// Replaces state.json with `state`.
    pub fn set_state(&self, state: &Value) {
        self.write("state.json", &serde_json::to_string_pretty(state).unwrap());
    }

    /// The lines of a file in the workspace (none if it does not exist).
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.read(name).lines().map(str::to_owned).collect()
    }

    /// Waits until the file `name` exists and is not empty; returns its text.
    pub fn wait_file(&self, name: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.read(name);
            if !text.is_empty() {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {name}\nfiles:\n{}\nrunner.log:\n{}",
                self.listing(),
                self.read("state.json.seq/runner.log")
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (up to `limit`) until the file `name` contains `text`; returns the file.
    pub fn wait_file_has(&self, name: &str, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.read(name);
            if now.contains(text) {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {text:?} in {name}:
{now}
files:
{}",
                self.listing()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The run lease's note (`{pid, since, step, attempt, agentPgid}`).
    pub fn lease_note(&self) -> Value {
        serde_json::from_slice(&fs::read(self.sidecar().join("lease")).expect("lease file"))
            .expect("lease note is JSON")
    }

    /// Names of everything in the sidecar folder (recursively, relative to it).
    pub fn sidecar_files(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut dirs = vec![self.sidecar()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path.clone());
                }
                names.push(
                    path.strip_prefix(self.sidecar())
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
        names.sort();
        names
    }

    /// Asserts that state.json is byte-for-byte `before` and that nothing but the lock files
    /// appeared in the sidecar: no temp file, no runner started, no attempt log.
    #[track_caller]
    pub fn assert_untouched(&self, before: &[u8], context: &str) {
        assert!(
            self.bytes() == before,
            "{context}: state.json changed:\n{}",
            String::from_utf8_lossy(&self.bytes())
        );
        let stray: Vec<String> = self
            .sidecar_files()
            .into_iter()
            .filter(|name| name != "lock" && name != "lease")
            .collect();
        assert!(stray.is_empty(), "{context}: the sidecar gained {stray:?}");
    }
}

/// A state with the given steps (`(id, step object)`) queued in order.
pub fn plan_of(steps: &[(&str, Value)], extra: &Value) -> Value {
    let mut defined = serde_json::Map::new();
    for (id, step) in steps {
        defined.insert((*id).to_owned(), step.clone());
    }
    let mut state = serde_json::json!({
        "plan": { "steps": defined },
        "stepQueue": steps.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        "currentStep": 0,
        "stepRuns": {},
        "status": "IN_PROGRESS",
    });
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            state[key] = value.clone();
        }
    }
    state
}

/// The session id of a process, from /proc/<pid>/stat.
pub fn session_of(pid: u64) -> i64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("process stat");
    let rest = stat.rsplit(") ").next().unwrap();
    // Fields after the command: state, ppid, pgrp, session, ...
    rest.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// Nanoseconds since the epoch as the fake agents log them (`date +%s%N`).
pub fn stamp(line: &str) -> u128 {
    line.rsplit(' ').next().unwrap().parse().expect("a stamp")
}

/// Whether a process holds the run lease of the plan in `dir`, or a try's own lease (taken and
/// dropped at once if free): whether anything of the plan still runs.
pub fn lease_held(dir: &Path) -> bool {
    let held = |path: &Path| {
        fs::File::open(path)
            .is_ok_and(|file| matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock)))
    };
    held(&dir.join("state.json.seq/lease"))
        || fs::read_dir(dir.join("state.json.seq/leases"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| held(&entry.path()))
}

/// Asserts that a step's run record is an interrupted try: FAILED, `tries` counted, and an error
/// that says it was interrupted.
#[track_caller]
pub fn assert_interrupted(run: &Value, tries: u64) {
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["tries"], tries, "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("interrupted"),
        "{run}"
    );
}
