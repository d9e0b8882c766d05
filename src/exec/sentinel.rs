//! "A killed runner takes its agent along" where the kernel has no parent-death signal (macOS
//! and the BSDs have no `PR_SET_PDEATHSIG`).
//!
//! Before a try the runner makes a pipe and keeps its write end; nobody else holds it (it is
//! close-on-exec, and the agent's copy goes at exec). Between fork and exec the agent's child
//! forks a *sentinel* (through an intermediate that exits at once, so the sentinel is nobody's
//! child the agent knows of, and the agent's own `wait` never meets it). The sentinel leaves the
//! agent's session and process group, closes every descriptor but the pipe's read end (so it
//! keeps neither the run lease nor the agent's output pipes nor std's exec-error pipe), and
//! blocks in `read`:
//!
//! - one byte: the runner saw the try end and stopped its group ([`Guard::stand_down`]); the
//!   sentinel exits;
//! - end of file: every write end is gone, so the runner died (however: SIGKILL included)
//!   without standing down; the sentinel SIGKILLs the agent's process group and exits.
//!
//! Only async-signal-safe calls run in the forked processes (`fork`, `setsid`, `sigaction`,
//! `close`, `read`, `kill`, `waitpid`, `_exit`). Linux uses `PR_SET_PDEATHSIG` instead (see
//! `attempt`), but this module is built and tested there too, so the logic macOS relies on is
//! exercised on every test run.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The runner's side of one try's sentinel: the pipe it holds while the agent runs.
#[derive(Debug)]
pub struct Guard {
    write: OwnedFd,
    /// Needed until the agent's child has forked; closed by [`Guard::spawned`].
    read: Option<OwnedFd>,
}

impl Guard {
    /// A fresh pipe, both ends close-on-exec.
    pub fn new() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors into the array, which we then own.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just created, owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&read, &write] {
            // SAFETY: fcntl on a descriptor we own.
            if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Self {
            write,
            read: Some(read),
        })
    }

    /// The read end, for [`arm`] in the agent's child.
    #[must_use]
    pub fn read_fd(&self) -> RawFd {
        self.read.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// The agent has been started (its child forked the sentinel): the runner's copy of the
    /// read end is not needed.
    pub fn spawned(&mut self) {
        self.read = None;
    }

    /// The try is over and its group stopped: the sentinel exits without killing anything.
    pub fn stand_down(self) {
        let byte = [1u8];
        // SAFETY: a one-byte write to our own pipe. If the sentinel is gone the write fails
        // (EPIPE; std ignores SIGPIPE), which is fine: there is nothing to stand down.
        unsafe {
            libc::write(self.write.as_raw_fd(), byte.as_ptr().cast(), 1);
        }
    }
}

/// In the agent's child, between fork and exec: starts the sentinel for the process group
/// this child leads, watching `read_fd`. `limit` is [`super::fds::limit`], found before the fork.
/// Fails (so the agent is not started unguarded) if the sentinel cannot be forked.
///
/// # Safety
/// Only for a `pre_exec` closure of a child that leads its own process group; makes only
/// async-signal-safe calls.
pub unsafe fn arm(read_fd: RawFd, limit: RawFd) -> io::Result<()> {
    // SAFETY: the calls below are async-signal-safe; each forked process ends in `_exit`.
    unsafe {
        let group = libc::getpgrp();
        let middle = libc::fork();
        if middle < 0 {
            return Err(io::Error::last_os_error());
        }
        if middle == 0 {
            // The intermediate: fork the sentinel and go, so the sentinel is orphaned at once.
            match libc::fork() {
                0 => watch(read_fd, group, limit),
                pid if pid > 0 => libc::_exit(0),
                _ => libc::_exit(1),
            }
        }
        let mut status = 0;
        while libc::waitpid(middle, &raw mut status, 0) < 0 {
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return Err(io::Error::last_os_error());
            }
        }
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            return Err(io::Error::other("could not start the agent's sentinel"));
        }
    }
    Ok(())
}

/// The sentinel itself: waits for the runner's word, or its death.
unsafe fn watch(read_fd: RawFd, group: libc::pid_t, limit: RawFd) -> ! {
    // SAFETY: async-signal-safe calls only; this process owns nothing it closes.
    unsafe {
        // Out of the agent's session and group: a signal to either (a timeout's SIGTERM, a
        // terminal's Ctrl-C) must not end the watch, and the sentinel must not keep the
        // agent's group alive in the runner's eyes.
        libc::setsid();
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &raw const action, std::ptr::null_mut());
        }
        super::fds::close_all_but(read_fd, limit);
        let mut byte = 0u8;
        loop {
            match libc::read(read_fd, (&raw mut byte).cast(), 1) {
                1 => libc::_exit(0),
                0 => {
                    // Every write end is closed: the runner died without standing down.
                    if group > 1 {
                        libc::kill(-group, libc::SIGKILL);
                    }
                    libc::_exit(0);
                }
                _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                _ => libc::_exit(1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{fds, process};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// `sleep 30` in its own group, guarded by a sentinel as the runner does off Linux.
    fn guarded() -> (Child, Guard) {
        let mut guard = Guard::new().unwrap();
        let (read, limit) = (guard.read_fd(), fds::limit());
        let mut command = Command::new("sleep");
        command.arg("30").stdout(Stdio::piped()).process_group(0);
        // SAFETY: `arm` makes only async-signal-safe calls.
        unsafe {
            command.pre_exec(move || arm(read, limit));
        }
        let child = command.spawn().unwrap();
        guard.spawned();
        (child, guard)
    }

    fn ended_within(child: &mut Child, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            // An error is a child already reaped: by another test's `waitpid(-1)`, say.
            if !matches!(child.try_wait(), Ok(None)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_runner_gone_without_a_word_takes_the_agents_group_along() {
        let (mut child, guard) = guarded();
        // The sentinel holds no copy of the agent's output pipe: the agent's end is its own.
        let mut stdout = child.stdout.take().unwrap();
        assert!(!ended_within(&mut child, Duration::from_millis(200)));
        drop(guard); // the runner's write end closes, as when the runner is killed
        assert!(
            ended_within(&mut child, Duration::from_secs(5)),
            "the sentinel did not kill the agent"
        );
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    }

    #[test]
    fn a_guard_stood_down_leaves_the_agent_alone() {
        let (mut child, guard) = guarded();
        guard.stand_down();
        assert!(!ended_within(&mut child, Duration::from_millis(500)));
        process::signal_group(child.id(), libc::SIGKILL);
        let _ = child.wait();
    }
}
