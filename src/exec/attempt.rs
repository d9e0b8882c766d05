//! One try of one step: start the agent, bound it in time, capture it, and clean up after it.
//!
//! The agent runs in its own process group, with stdin from /dev/null, in the workspace, with
//! `STEP_ID`, `STEP_ATTEMPT`, `STEP_STATE_FILE` and `STEP_WORKSPACE` set. It inherits its try's
//! lease (see `lease::TryLease`), at descriptor 100 or above, out of the way of the script's
//! own files, so no other try of its step can start while any process of this one lives; and
//! it dies with its runner, so a killed runner does not leave an unwatched agent behind: on
//! Linux by `PR_SET_PDEATHSIG`, elsewhere (macOS) by a sentinel that kills the agent's process
//! group when the runner is gone (see `sentinel`). On timeout the whole group gets SIGTERM,
//! then SIGKILL after a grace.
//! When the agent exits, whatever it left running in its group is stopped the same way: the
//! step is over, and a straggler would overlap the next step's agent.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::capture::{CappedLog, Spool};
use super::command::AgentCommand;
use super::pipes::{self, Echo, Pipes};
use super::process::{signal_group, stop_adopted, stop_group, GRACE};
#[cfg(not(target_os = "linux"))]
use super::sentinel;
#[cfg(target_os = "linux")]
use super::spawn::RUNNER_GONE;
use super::spawn::{Agent, Spec};
use crate::core::verdict::{Ending, StopWhy, Stopped};
use crate::store::safe::Dir;

/// The deadline of a try whose limit the clock cannot count: a century.
const NO_LIMIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How long to wait for output pipes to close after the agent's group is gone (a process that
/// left the group may hold them open; we stop listening rather than wait on it).
const DRAIN: Duration = Duration::from_secs(2);

/// Everything one try needs.
pub struct Attempt<'a> {
    pub agent: &'a AgentCommand,
    pub prompt: &'a str,
    pub step: &'a str,
    pub attempt: u32,
    pub workspace: &'a Path,
    pub state_file: &'a Path,
    pub timeout: Duration,
    /// The log folder, and the names of this try's log and prompt file in it.
    pub logs: &'a Dir,
    pub log_name: &'a str,
    pub prompt_name: &'a str,
    /// The prompt file's path as the agent is told it, for `{prompt_file}`.
    pub prompt_path: &'a Path,
    /// The run lease's descriptor, for the agent to inherit.
    pub lease_fd: Option<RawFd>,
    /// Log cap: bytes kept from the start and from the end of the output.
    pub log_cap: (u64, u64),
    /// Where stdout's first bytes are also kept, and how many: the folder and file name.
    pub spool: Option<(&'a Dir, &'a str, u64)>,
    /// Who also sees the output as it comes (`seq-check --wait -v`), if anyone.
    pub echo: Option<&'a Echo>,
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
    /// Why the log could not be written in full, if it could not (the log says so too).
    pub log_error: Option<String>,
    /// What went to the spool: the bytes of stdout in all, and the first write error.
    pub spooled: Option<(u64, Option<String>)>,
}

/// How often, at most, a running try looks whether it must stop (a person cancelled it).
pub const STOP_CHECK: Duration = Duration::from_secs(1);

/// Characters of stdout and stderr kept for the state file.
pub const TAIL_CHARS: usize = 500;

/// Runs the try to its end. `on_start` gets the agent's process group id once it runs; `stop`
/// is asked, every time the watch wakes and at least every [`STOP_CHECK`], whether the try
/// must be stopped now, and why.
pub fn run(a: &Attempt, on_start: impl FnOnce(u32), stop: &dyn Fn() -> Option<StopWhy>) -> Report {
    let started = Instant::now();
    let not_started = |reason: String| Report {
        ending: Ending::NotStarted(reason),
        duration: started.elapsed(),
        stdout: String::new(),
        stderr: String::new(),
        printed: 0,
        log_error: None,
        spooled: None,
    };
    let (args, mut log, spool) = match prepare(a) {
        Ok(prepared) => prepared,
        Err(reason) => return not_started(reason),
    };
    let mut guard = match DeathGuard::new() {
        Ok(guard) => guard,
        Err(e) => return not_started(format!("cannot prepare the agent's guard: {e}")),
    };
    let attempt_number = a.attempt.to_string();
    let env = [
        ("STEP_ID", OsStr::new(a.step)),
        ("STEP_ATTEMPT", OsStr::new(&attempt_number)),
        ("STEP_STATE_FILE", a.state_file.as_os_str()),
        ("STEP_WORKSPACE", a.workspace.as_os_str()),
    ];
    let (setup, lease_fd) = (guard.setup(), a.lease_fd);
    let spec = Spec {
        program: a.agent.program(),
        arg0: a.agent.program_word(),
        args: &args,
        cwd: a.workspace,
        env: &env,
        setup: move || child_setup(setup, lease_fd),
    };
    let spawned = super::process::spawn_agent(&spec);
    guard.spawned();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return not_started(format!(
                "could not start {}: {e}",
                a.agent.program().display()
            ))
        }
    };
    let pgid = child.pid;
    on_start(pgid);
    let mut pipes = match Pipes::new(child.stdout.take(), child.stderr.take()) {
        Ok(pipes) => pipes,
        Err(e) => {
            stop_group(pgid);
            let _ = child.wait();
            super::process::agent_done(pgid);
            guard.stand_down();
            return not_started(format!("cannot read the agent's output: {e}"));
        }
    };
    pipes.spool = spool;
    pipes.echo = a.echo.map(|echo| (echo.clone(), a.step.to_owned()));
    let (status, cut) = watch(
        &child,
        &mut pipes,
        &mut log,
        pgid,
        // A limit past what the clock can count (`timeoutSeconds` near 2^64) is no limit.
        started.checked_add(a.timeout).unwrap_or(started + NO_LIMIT),
        stop,
    );
    super::process::agent_done(pgid);
    stop_group(pgid);
    stop_adopted();
    guard.stand_down();
    let duration = started.elapsed();
    pipes.finish(&mut log, Instant::now() + DRAIN);
    if let Some(echo) = a.echo {
        echo(a.step, 0, &[]);
        echo(a.step, 1, &[]);
    }
    let (printed, log_error) = log.finish();
    let ending = match (cut, status) {
        (Some((Cut::TimedOut, _)), _) => Ending::TimedOut(a.timeout),
        (Some((Cut::Stopped(why), how)), _) => Ending::Stopped { why, how },
        (None, Ok(status)) => ending_of(status),
        (None, Err(e)) => Ending::NotStarted(format!("lost track of the agent: {e}")),
    };
    Report {
        ending,
        duration,
        stdout: pipes.tails[0].text(TAIL_CHARS),
        stderr: pipes.tails[1].text(TAIL_CHARS),
        printed,
        log_error,
        spooled: pipes.spool.as_ref().map(Spool::finish),
    }
}

/// Everything a try needs before its agent starts: the arguments (a prompt the command cannot
/// take is refused before anything is written or started), the prompt file, the log and the
/// result spool; or why the try cannot start.
fn prepare(a: &Attempt) -> Result<(Vec<String>, CappedLog, Option<Spool>), String> {
    // The arguments first: a prompt the command cannot take (too long, or read as an option)
    // is refused before anything is written or started.
    let args = a.agent.args(a.prompt, Some(a.prompt_path))?;
    if a.agent.wants_prompt_file() {
        a.logs
            .create_new(a.prompt_name, false)
            .and_then(|mut file| file.write_all(a.prompt.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", a.prompt_path.display()))?;
    }
    let logs = a
        .logs
        .try_clone()
        .map_err(|e| format!("cannot open the log folder: {e}"))?;
    let log = CappedLog::create(logs, a.log_name, a.log_cap.0, a.log_cap.1)
        .map_err(|e| format!("cannot prepare the log {}: {e}", a.log_name))?;
    let spool = a
        .spool
        .map(|(dir, name, limit)| Spool::create(dir, name, limit))
        .transpose()
        .map_err(|e| format!("cannot prepare the result file: {e}"))?;
    Ok((args, log, spool))
}

/// Why the runner cut a try short, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    TimedOut,
    Stopped(StopWhy),
}

/// Copies the agent's output as it comes until the agent exits. Past `deadline`, or once
/// `stop` says why it must, stops the agent's group (SIGTERM, then SIGKILL after the grace).
/// Returns its status, and why and how it was cut short if it was.
fn watch(
    child: &Agent,
    pipes: &mut Pipes,
    log: &mut CappedLog,
    pgid: u32,
    deadline: Instant,
    stop: &dyn Fn() -> Option<StopWhy>,
) -> (io::Result<ExitStatus>, Option<(Cut, Stopped)>) {
    let exit_fd = pipes::exit_fd(pgid);
    let exit_raw = exit_fd.as_ref().map(AsRawFd::as_raw_fd);
    let mut cut: Option<(Cut, Stopped)> = None;
    let mut kill_at = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (Ok(status), cut),
            Ok(None) => {}
            Err(e) => return (Err(e), cut),
        }
        let now = Instant::now();
        if cut.is_none() {
            let why = if now >= deadline {
                Some(Cut::TimedOut)
            } else {
                stop().map(Cut::Stopped)
            };
            if let Some(why) = why {
                signal_group(pgid, libc::SIGTERM);
                cut = Some((why, Stopped::Terminated));
                kill_at = Some(now + GRACE);
            }
        }
        if kill_at.is_some_and(|at| now >= at) {
            signal_group(pgid, libc::SIGKILL);
            if let Some((_, how)) = cut.as_mut() {
                *how = Stopped::Killed;
            }
            kill_at = None;
        }
        let wait = pipes::next_wait(
            now,
            &[
                cut.is_none().then_some(deadline),
                kill_at,
                cut.is_none().then_some(now + STOP_CHECK),
            ],
            exit_raw.is_some(),
        );
        pipes.pump(log, exit_raw, wait);
    }
}

/// The lowest descriptor number the agent gets its lease at. The runner's own number for it
/// varies (with tries in parallel, anything from 5 to 30), and shell scripts open files of
/// their own on the low ones (`exec 9>lock; flock 9` is flock(1)'s own idiom): one that
/// happened to use the lease's number would close it, and its try would look dead to a
/// heartbeat once its runner died, while it still ran.
const LEASE_FD_FLOOR: libc::c_int = 100;

/// How a killed runner's agent is made to die with it: by the kernel on Linux
/// (`PR_SET_PDEATHSIG`); elsewhere by a sentinel process (see `sentinel`).
#[cfg(target_os = "linux")]
struct DeathGuard;

#[cfg(target_os = "linux")]
impl DeathGuard {
    #[allow(clippy::unnecessary_wraps)] // the same signature as the sentinel's
    fn new() -> io::Result<Self> {
        Ok(Self)
    }

    /// What the child needs: the runner's pid, to tell that it is still the runner's child.
    #[allow(clippy::unused_self)] // the same signature as the sentinel's
    fn setup(&self) -> libc::pid_t {
        std::process::id() as libc::pid_t
    }

    #[allow(clippy::unused_self)] // likewise
    fn spawned(&mut self) {}

    #[allow(clippy::unused_self)] // likewise
    fn stand_down(self) {}
}

#[cfg(not(target_os = "linux"))]
struct DeathGuard(sentinel::Guard);

#[cfg(not(target_os = "linux"))]
impl DeathGuard {
    fn new() -> io::Result<Self> {
        sentinel::Guard::new().map(Self)
    }

    /// What the child needs: the sentinel's pipe, and how far to look for descriptors to close.
    fn setup(&self) -> (RawFd, RawFd) {
        (self.0.read_fd(), super::fds::limit())
    }

    fn spawned(&mut self) {
        self.0.spawned();
    }

    fn stand_down(self) {
        self.0.stand_down();
    }
}

/// In the child, before exec (Linux): die with the runner. Allocation-free; fails with an
/// `errno`, or `RUNNER_GONE`.
#[cfg(target_os = "linux")]
fn child_setup(runner_pid: libc::pid_t, lease_fd: Option<RawFd>) -> Result<(), i32> {
    // SAFETY: getppid and prctl are async-signal-safe and touch only this process.
    unsafe {
        // Die with the runner: a SIGKILLed runner must not leave an agent nobody watches.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(errno());
        }
        // The runner may have died before prctl took effect; then we are someone else's child.
        if libc::getppid() != runner_pid {
            return Err(RUNNER_GONE);
        }
    }
    inherit_lease(lease_fd)
}

/// In the child, between fork and exec (no parent-death signal): start the sentinel that
/// kills this process group if the runner dies. No race with the runner's death: the
/// sentinel's pipe reaches end of file only once the runner's write end is closed too.
#[cfg(not(target_os = "linux"))]
fn child_setup((read_fd, limit): (RawFd, RawFd), lease_fd: Option<RawFd>) -> Result<(), i32> {
    // SAFETY: `arm` makes only async-signal-safe calls; this child leads its own group.
    unsafe { sentinel::arm(read_fd, limit) }.map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    inherit_lease(lease_fd)
}

/// Keeps the lease open across exec, so the lock lives as long as the agent does: a copy at
/// [`LEASE_FD_FLOOR`] or above (`F_DUPFD` clears `FD_CLOEXEC` on it; the original closes at
/// exec), where a script's own `exec 9>file` cannot close it; the original itself where the
/// process may not have that many descriptors.
fn inherit_lease(lease_fd: Option<RawFd>) -> Result<(), i32> {
    if let Some(fd) = lease_fd {
        // SAFETY: fcntl is async-signal-safe and touches only this process's descriptors.
        let kept = unsafe {
            libc::fcntl(fd, libc::F_DUPFD, LEASE_FD_FLOOR) >= 0
                || libc::fcntl(fd, libc::F_SETFD, 0) == 0
        };
        if !kept {
            return Err(errno());
        }
    }
    Ok(())
}

/// This thread's `errno`, read without allocating (the child may not allocate).
fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn ending_of(status: ExitStatus) -> Ending {
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(signal)) => Ending::Signaled(signal),
        (None, None) => Ending::NotStarted(format!("ended with unknown status {status}")),
    }
}
