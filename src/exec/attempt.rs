//! One try of one step: start the agent, bound it in time, capture it, and clean up after it.
//!
//! The agent runs in its own process group, with stdin from /dev/null, in the workspace, with
//! `STEP_ID`, `STEP_ATTEMPT`, `STEP_STATE_FILE` and `STEP_WORKSPACE` set. It inherits the run
//! lease (see `lease`), so no other agent can start for this plan while any process of this one
//! lives; and it dies with its runner (`PR_SET_PDEATHSIG`), so a killed runner does not leave an
//! unwatched agent behind. On timeout the whole group gets SIGTERM, then SIGKILL after a grace.
//! When the agent exits, whatever it left running in its group is stopped the same way: the
//! step is over, and a straggler would overlap the next step's agent.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::capture::CappedLog;
use super::command::AgentCommand;
use super::pipes::{self, Pipes};
use super::process::{signal_group, stop_adopted, stop_group, GRACE};
use crate::core::verdict::Ending;

/// How long to wait for output pipes to close after the agent's group is gone (a process that
/// left the group may hold them open; we stop listening rather than wait on it).
const DRAIN: Duration = Duration::from_secs(2);

/// Everything one try needs.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub agent: &'a AgentCommand,
    pub prompt: &'a str,
    pub step: &'a str,
    pub attempt: u32,
    pub workspace: &'a Path,
    pub state_file: &'a Path,
    pub timeout: Duration,
    pub log_path: &'a Path,
    /// Where the prompt is written when the command takes `{prompt_file}`.
    pub prompt_path: &'a Path,
    /// The run lease's descriptor, for the agent to inherit.
    pub lease_fd: Option<RawFd>,
    /// Log cap: bytes kept from the start and from the end of the output.
    pub log_cap: (u64, u64),
}

/// What a try produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub ending: Ending,
    pub duration: Duration,
    pub stdout: String,
    pub stderr: String,
    /// Bytes the agent printed in all.
    pub printed: u64,
}

/// Characters of stdout and stderr kept for the state file.
pub const TAIL_CHARS: usize = 500;

/// Runs the try to its end. `on_start` gets the agent's process group id once it runs.
pub fn run(a: &Attempt, on_start: impl FnOnce(u32)) -> Report {
    let started = Instant::now();
    let not_started = |reason: String| Report {
        ending: Ending::NotStarted(reason),
        duration: started.elapsed(),
        stdout: String::new(),
        stderr: String::new(),
        printed: 0,
    };
    // The arguments first: a prompt the command cannot take (too long, or read as an option)
    // is refused before anything is written or started.
    let args = match a.agent.args(a.prompt, Some(a.prompt_path)) {
        Ok(args) => args,
        Err(reason) => return not_started(reason),
    };
    if a.agent.wants_prompt_file() {
        if let Err(e) = write_private(a.prompt_path, a.prompt.as_bytes()) {
            return not_started(format!("cannot write {}: {e}", a.prompt_path.display()));
        }
    }
    let mut log = match CappedLog::create(a.log_path, a.log_cap.0, a.log_cap.1) {
        Ok(log) => log,
        Err(e) => return not_started(format!("cannot create {}: {e}", a.log_path.display())),
    };
    let mut command = Command::new(a.agent.program());
    command
        .arg0(a.agent.program_word())
        .args(&args)
        .current_dir(a.workspace)
        .env("STEP_ID", a.step)
        .env("STEP_ATTEMPT", a.attempt.to_string())
        .env("STEP_STATE_FILE", a.state_file)
        .env("STEP_WORKSPACE", a.workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let lease_fd = a.lease_fd;
    let runner_pid = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
    unsafe {
        command.pre_exec(move || child_setup(runner_pid, lease_fd));
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return not_started(format!(
                "could not start {}: {e}",
                a.agent.program().display()
            ))
        }
    };
    let pgid = child.id();
    on_start(pgid);
    let mut pipes = match Pipes::new(child.stdout.take(), child.stderr.take()) {
        Ok(pipes) => pipes,
        Err(e) => {
            stop_group(pgid);
            let _ = child.wait();
            return not_started(format!("cannot read the agent's output: {e}"));
        }
    };
    let (status, timed_out) = watch(&mut child, &mut pipes, &mut log, pgid, started + a.timeout);
    stop_group(pgid);
    stop_adopted();
    let duration = started.elapsed();
    pipes.finish(&mut log, Instant::now() + DRAIN);
    let (printed, _) = log.finish();
    let ending = match (timed_out, status) {
        (true, _) => Ending::TimedOut(a.timeout),
        (false, Ok(status)) => ending_of(status),
        (false, Err(e)) => Ending::NotStarted(format!("lost track of the agent: {e}")),
    };
    Report {
        ending,
        duration,
        stdout: pipes.tails[0].text(TAIL_CHARS),
        stderr: pipes.tails[1].text(TAIL_CHARS),
        printed,
    }
}

/// Copies the agent's output as it comes until the agent exits; past `deadline`, stops its
/// group (SIGTERM, then SIGKILL after the grace). Returns its status and whether it timed out.
fn watch(
    child: &mut Child,
    pipes: &mut Pipes,
    log: &mut CappedLog,
    pgid: u32,
    deadline: Instant,
) -> (io::Result<ExitStatus>, bool) {
    let exit_fd = pipes::exit_fd(pgid);
    let exit_raw = exit_fd.as_ref().map(AsRawFd::as_raw_fd);
    let mut timed_out = false;
    let mut kill_at = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (Ok(status), timed_out),
            Ok(None) => {}
            Err(e) => return (Err(e), timed_out),
        }
        let now = Instant::now();
        if !timed_out && now >= deadline {
            timed_out = true;
            signal_group(pgid, libc::SIGTERM);
            kill_at = Some(now + GRACE);
        }
        if kill_at.is_some_and(|at| now >= at) {
            signal_group(pgid, libc::SIGKILL);
            kill_at = None;
        }
        let wait = pipes::next_wait(
            now,
            &[(!timed_out).then_some(deadline), kill_at],
            exit_raw.is_some(),
        );
        pipes.pump(log, exit_raw, wait);
    }
}

/// In the child, between fork and exec.
fn child_setup(runner_pid: libc::pid_t, lease_fd: Option<RawFd>) -> io::Result<()> {
    // SAFETY: getppid, prctl and fcntl are async-signal-safe and touch only this process.
    unsafe {
        // Die with the runner: a SIGKILLed runner must not leave an agent nobody watches.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The runner may have died before prctl took effect; then we are someone else's child.
        if libc::getppid() != runner_pid {
            return Err(io::Error::other("the runner died while starting the agent"));
        }
        // Keep the lease open across exec, so the lock lives as long as the agent does.
        if let Some(fd) = lease_fd {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

fn ending_of(status: ExitStatus) -> Ending {
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(signal)) => Ending::Signaled(signal),
        (None, None) => Ending::NotStarted(format!("ended with unknown status {status}")),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}
