//! Descriptors a child must not keep: marking every inherited descriptor close-on-exec, or
//! closing all but one, between fork and exec, where only async-signal-safe calls are allowed.
//!
//! Linux has `close_range(2)`, which does it in one call. Elsewhere (macOS), and on a Linux
//! kernel older than 5.11, each descriptor up to a bound is visited with `fcntl`/`close`. The
//! bound is found before the fork ([`limit`]): the soft `RLIMIT_NOFILE`, capped, since it may be
//! "unlimited" and a loop to `i32::MAX` would take minutes.

use std::os::fd::RawFd;

/// The most descriptors a fallback loop visits.
const MAX_VISITED: RawFd = 1 << 16;

/// One past the highest descriptor this process may hold (capped at [`MAX_VISITED`]). Call it
/// before the fork: `getrlimit` is not on POSIX's list of async-signal-safe functions.
#[must_use]
pub fn limit() -> RawFd {
    let mut rlim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut rlim) } != 0 {
        return MAX_VISITED;
    }
    RawFd::try_from(rlim.rlim_cur).map_or(MAX_VISITED, |n| n.clamp(3, MAX_VISITED))
}

/// Marks every descriptor from `first` up close-on-exec, so a leaked one (an exec tool's
/// pipes) does not reach the program about to be run. Marked rather than closed, so std can
/// still report an exec failure through its own pipe.
///
/// # Safety
/// Async-signal-safe; meant for a `pre_exec` closure. It changes this process's descriptors.
pub unsafe fn cloexec_from(first: RawFd, limit: RawFd) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a plain syscall on this process's descriptor table.
        let done = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        } == 0;
        if done {
            return;
        }
    }
    // SAFETY: as above; the loop is the portable spelling of the same.
    unsafe { cloexec_loop(first, limit) }
}

/// [`cloexec_from`] one descriptor at a time.
///
/// # Safety
/// As [`cloexec_from`].
pub unsafe fn cloexec_loop(first: RawFd, limit: RawFd) {
    for fd in first..limit {
        // SAFETY: fcntl on a descriptor number; an unused one fails with EBADF, harmlessly.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// Closes every descriptor below `limit` but `keep`, for a forked process that never execs
/// and must hold nothing of its parent's (locks, pipes) but what it was made for.
///
/// # Safety
/// Async-signal-safe; only for a process that owns nothing the closed descriptors back.
pub unsafe fn close_all_but(keep: RawFd, limit: RawFd) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on this process's descriptor table.
        let closed = unsafe {
            (keep == 0 || libc::syscall(libc::SYS_close_range, 0, keep - 1, 0) == 0)
                && libc::syscall(
                    libc::SYS_close_range,
                    (keep + 1) as libc::c_uint,
                    libc::c_uint::MAX,
                    0,
                ) == 0
        };
        if closed {
            return;
        }
    }
    for fd in (0..limit.max(keep + 1)).filter(|fd| *fd != keep) {
        // SAFETY: close of a descriptor number; an unused one fails with EBADF, harmlessly.
        unsafe {
            libc::close(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// Whether a child started with `setup` between fork and exec still has `fd` open.
    fn child_sees(fd: RawFd, setup: fn(RawFd)) -> bool {
        let mut command = Command::new("/bin/sh");
        command.args([
            "-c",
            &format!("test -e /dev/fd/{fd} && echo open || echo closed"),
        ]);
        // SAFETY: the closure makes only async-signal-safe calls.
        unsafe {
            command.pre_exec(move || {
                setup(limit());
                Ok(())
            });
        }
        let out = command.output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "open"
    }

    #[test]
    fn the_portable_loop_keeps_a_leaked_descriptor_from_the_child() {
        let file = tempfile::tempfile().unwrap();
        let fd = file.as_raw_fd();
        // SAFETY: clears close-on-exec on our own descriptor, as a careless caller would.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        assert!(child_sees(fd, |_| {}), "the leak is real");
        // SAFETY: in the child only.
        assert!(!child_sees(fd, |limit| unsafe { cloexec_loop(3, limit) }));
        // SAFETY: in the child only.
        assert!(!child_sees(fd, |limit| unsafe { cloexec_from(3, limit) }));
    }

    #[test]
    fn the_limit_is_bounded() {
        let n = limit();
        assert!((3..=MAX_VISITED).contains(&n), "{n}");
    }
}
