//! The agent's two output pipes and its exit, watched from one thread with poll(2): no thread
//! per stream, no waiter thread. What arrives goes to the capped log and the in-memory tails as
//! it comes, so memory stays flat however much the agent prints.
//!
//! The agent's exit is seen through a pidfd where Linux has one (it becomes readable when the
//! process exits, so a poll wakes at once); elsewhere, or on an older kernel, by asking
//! `waitpid` between short polls. Either way an agent that closed its pipes (or left them to a
//! child) is still seen to exit.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::capture::{CappedLog, Spool, Tail};

/// How long a poll sleeps at most when nothing but a `waitpid` can tell the agent exited.
const EXIT_CHECK: Duration = Duration::from_millis(50);

/// Where the agent's output is also shown as it comes (`seq-check --wait -v`): the step, the
/// stream (0 stdout, 1 stderr) and the bytes; an empty chunk when the try's output has ended.
pub type Echo = std::sync::Arc<dyn Fn(&str, usize, &[u8]) + Send + Sync>;

/// The agent's stdout and stderr, until each closes.
pub struct Pipes {
    streams: [Option<OwnedFd>; 2],
    pub tails: [Tail; 2],
    /// Where stdout is also kept, for the step's result.
    pub spool: Option<Spool>,
    /// Who also sees the output as it comes, if anyone, and the step it is told.
    pub echo: Option<(Echo, String)>,
    buf: Vec<u8>,
}

impl Pipes {
    /// Takes the child's pipes and makes them non-blocking.
    pub fn new(stdout: Option<OwnedFd>, stderr: Option<OwnedFd>) -> io::Result<Self> {
        let streams = [stdout, stderr];
        for fd in streams.iter().flatten() {
            set_nonblocking(fd.as_raw_fd())?;
        }
        Ok(Self {
            streams,
            tails: [Tail::default(), Tail::default()],
            spool: None,
            echo: None,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Whether both pipes have closed.
    #[must_use]
    pub fn closed(&self) -> bool {
        self.streams.iter().all(Option::is_none)
    }

    /// Waits up to `wait` for output (or for `exit_fd`, a pidfd, to say the agent exited), and
    /// copies whatever is there to the log and the tails. Returns whether `exit_fd` fired.
    pub fn pump(&mut self, log: &mut CappedLog, exit_fd: Option<RawFd>, wait: Duration) -> bool {
        let mut fds: Vec<libc::pollfd> = self
            .streams
            .iter()
            .flatten()
            .map(|fd| poll_for(fd.as_raw_fd()))
            .collect();
        if let Some(fd) = exit_fd {
            fds.push(poll_for(fd));
        }
        let millis = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        if fds.is_empty() {
            std::thread::sleep(wait);
            return false;
        }
        // SAFETY: `fds` is a valid array of pollfd of the length given.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
        if ready <= 0 {
            return false; // timed out, or EINTR: the caller loops
        }
        let exited = exit_fd.is_some_and(|_| fds.last().is_some_and(|p| p.revents != 0));
        for index in 0..2 {
            self.drain(index, log);
        }
        exited
    }

    /// Reads a pipe until it would block, or closes it at its end.
    fn drain(&mut self, index: usize, log: &mut CappedLog) {
        let Some(fd) = &self.streams[index] else {
            return;
        };
        // SAFETY: the descriptor is owned by `self.streams` and outlives this borrow; the File
        // made from it is forgotten, never closed here.
        let mut file =
            std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd.as_raw_fd()) });
        loop {
            match file.read(&mut self.buf) {
                Ok(0) => {
                    self.streams[index] = None;
                    return;
                }
                Ok(n) => {
                    log.write(&self.buf[..n]);
                    if index == 0 {
                        if let Some(spool) = &mut self.spool {
                            spool.write(&self.buf[..n]);
                        }
                    }
                    self.tails[index].push(&self.buf[..n]);
                    if let Some((echo, step)) = &self.echo {
                        echo(step, index, &self.buf[..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.streams[index] = None;
                    return;
                }
            }
        }
    }

    /// Reads what is left until both pipes close or `until` passes (a process that escaped
    /// every stop may hold them: we stop listening rather than wait on it).
    pub fn finish(&mut self, log: &mut CappedLog, until: Instant) {
        while !self.closed() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.pump(log, None, left.min(EXIT_CHECK));
        }
    }
}

fn poll_for(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A descriptor that becomes readable when the process exits (Linux 5.3+), if there is one.
#[must_use]
pub fn exit_fd(pid: u32) -> Option<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        let pid = libc::pid_t::try_from(pid).ok()?;
        // SAFETY: a plain syscall; a descriptor it returns is ours to own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: the kernel just gave us this descriptor, close-on-exec.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// How long a poll may sleep before the caller must look again: until the next deadline, and
/// no longer than [`EXIT_CHECK`] when only a `waitpid` can tell of the agent's exit.
#[must_use]
pub fn next_wait(now: Instant, deadlines: &[Option<Instant>], has_exit_fd: bool) -> Duration {
    let mut wait = if has_exit_fd {
        Duration::from_secs(3600)
    } else {
        EXIT_CHECK
    };
    for deadline in deadlines.iter().flatten() {
        wait = wait.min(deadline.saturating_duration_since(now));
    }
    wait
}
