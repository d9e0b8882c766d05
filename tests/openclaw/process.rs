//! Running a command with a deadline, and stopping everything a test started.
//!
//! Every process a test starts carries `SEQ_E2E_MARKER=<id>` in its environment, and OpenClaw
//! passes its environment on: the gateway, its spawn broker (in a process group of its own), the
//! exec tool's shells, `seq-check`, the runner it detaches with `setsid`, and each step's
//! `openclaw agent exec`. Killing a process group would miss most of them; the marker finds them
//! all, and only this test's.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The variable that marks a test's processes.
pub const MARKER: &str = "SEQ_E2E_MARKER";

/// What a finished command did.
pub struct Finished {
    pub line: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The command line, its exit and its output, for a failure message.
    pub fn describe(&self) -> String {
        format!(
            "$ {}\nexit: {:?} after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.line,
            self.status.code(),
            self.elapsed.as_secs_f64(),
            tail(&self.stdout, 6000),
            tail(&self.stderr, 6000),
        )
    }

    /// Panics with the whole story unless the command exited 0.
    pub fn ok(self) -> Self {
        assert!(
            self.status.success(),
            "command failed:\n{}",
            self.describe()
        );
        self
    }

    /// stdout parsed as JSON (OpenClaw prints JSON results there).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("expected JSON on stdout ({e}):\n{}", self.describe()))
    }
}

/// Runs `cmd` with stdin from /dev/null in a process group of its own, and kills that group if
/// it is not done within `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Finished {
    let line = command_line(cmd);
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {line}: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_for(&mut child, start + limit).unwrap_or_else(|| {
        kill_group(&child, libc::SIGKILL);
        let _ = child.wait();
        panic!(
            "timed out after {} s: {line}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            limit.as_secs(),
            tail(&collect(&stdout, Duration::from_secs(1)), 6000),
            tail(&collect(&stderr, Duration::from_secs(1)), 6000),
        )
    });
    // Output is complete once the pipes close; a detached grandchild (seq-check's runner) must
    // not hold them, so a short grace is enough.
    let stdout = collect(&stdout, Duration::from_secs(5));
    let stderr = collect(&stderr, Duration::from_secs(5));
    Finished {
        line,
        status,
        stdout,
        stderr,
        elapsed: start.elapsed(),
    }
}

/// Waits for `child` until `deadline`; `None` if it is still running then.
pub fn wait_for(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to the process group `child` leads.
pub fn kill_group(child: &Child, signal: i32) {
    let pgid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Stops every process whose environment holds `MARKER=id`: SIGTERM, up to 3 s to go, SIGKILL.
pub fn stop_marked(id: &str) {
    let wanted = format!("{MARKER}={id}");
    signal_all(&marked(&wanted), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !marked(&wanted).is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    signal_all(&marked(&wanted), libc::SIGKILL);
}

fn signal_all(pids: &[libc::pid_t], signal: i32) {
    for &pid in pids {
        // SAFETY: kill(2) on a pid read from /proc just now; no memory is involved.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The pids (other than ours) whose environment holds `wanted`.
fn marked(wanted: &str) -> Vec<libc::pid_t> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == wanted.as_bytes()))
        })
        .filter_map(|pid| libc::pid_t::try_from(pid).ok())
        .collect()
}

/// Reads a pipe to the end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

fn collect(rx: &mpsc::Receiver<Vec<u8>>, limit: Duration) -> String {
    rx.recv_timeout(limit).map_or_else(
        |_| "(output still held open by a background process)".into(),
        |bytes| String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// `cmd` as a shell-like line, for messages.
pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|word| {
            let word = word.to_string_lossy();
            if word.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
                format!("'{}'", word.replace('\'', r"'\''"))
            } else {
                word.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `max` bytes of `text` (at a char boundary), marked when cut.
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {start} bytes cut ...]\n{}", &text[start..])
}
