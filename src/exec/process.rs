//! Process groups and orphans: stopping what an agent left running, whoever started it.
//!
//! The agent runs in its own process group; when it exits (or times out, or is cancelled) the
//! group gets SIGTERM, then SIGKILL after a grace. A process that left the group (`setsid`, a
//! daemon) is found as an orphan the runner adopted: the runner is its subreaper.

use std::thread;
use std::time::{Duration, Instant};

/// How long a process group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// Makes this process the parent of its agents' orphans (`PR_SET_CHILD_SUBREAPER`), so that a
/// leftover process it stops can be reaped here. Where PID 1 reaps nothing (many containers),
/// a stopped straggler would otherwise stay a zombie in the agent's process group, and the group
/// would look alive until the grace ran out.
pub fn adopt_orphans() {
    // SAFETY: prctl with an integer argument; affects only this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// Reaps every child that has exited (adopted orphans; the agent itself is reaped by its waiter).
fn reap_orphans() {
    // SAFETY: waitpid with WNOHANG on any child; a null status pointer is allowed.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// How [`stop_group`] ended a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// There was nobody left to stop.
    AlreadyGone,
    /// SIGTERM was enough.
    Terminated,
    /// The grace ran out; SIGKILL.
    Killed,
}

/// Stops whatever is left in a process group: SIGTERM, a grace, then SIGKILL. Used for the
/// agent's leftovers here and by `seqctl cancel`.
#[allow(clippy::must_use_candidate)] // the runner stops leftovers whatever they were
pub fn stop_group(pgid: u32) -> Stopped {
    if !signal_group(pgid, libc::SIGTERM) {
        return Stopped::AlreadyGone; // the common case, and it costs one syscall
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
        reap_orphans();
        if !signal_group(pgid, 0) {
            return Stopped::Terminated;
        }
    }
    signal_group(pgid, libc::SIGKILL);
    thread::sleep(Duration::from_millis(5));
    reap_orphans();
    Stopped::Killed
}

/// Stops what the agent left running outside its process group (a `setsid` helper, a daemon).
/// As subreaper the runner becomes their parent once their own parents exit, so they are found
/// among its children; it has no others once the agent is reaped. One left alive would keep the
/// inherited run lease, and the plan "in flight", for as long as it lived.
pub fn stop_adopted() {
    reap_orphans();
    if !has_children() {
        return; // the common case: one syscall
    }
    let deadline = Instant::now() + GRACE;
    while has_children() && Instant::now() < deadline {
        // Signalled each round: a process orphaned meanwhile is a new child.
        signal_children(libc::SIGTERM);
        thread::sleep(Duration::from_millis(5));
        reap_orphans();
    }
    while has_children() {
        signal_children(libc::SIGKILL);
        thread::sleep(Duration::from_millis(5));
        reap_orphans();
    }
}

/// Whether this process has any child, alive or not yet reaped.
fn has_children() -> bool {
    // SAFETY: WNOHANG never blocks; it returns -1 (ECHILD) only when there are no children.
    // A child that has exited is reaped here, which is what the callers want anyway.
    unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) != -1 }
}

/// Sends `signal` to every child of this process (and the group it leads, if it leads one).
fn signal_children(signal: libc::c_int) {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so read after the last `)`.
        let parent = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1));
        if parent == Some(me.as_str()) && pid > 1 {
            // SAFETY: plain kill of our own child, and of the group it leads (ESRCH if none).
            unsafe {
                libc::kill(-pid, signal);
                libc::kill(pid, signal);
            }
        }
    }
}

/// Sends a signal to a process group; false if the group no longer exists.
#[allow(clippy::must_use_candidate)] // callers signal for effect; the answer is optional
pub fn signal_group(pgid: u32, signal: libc::c_int) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: plain syscall; a negative pid addresses the group, and pgid > 1 is checked so
    // that we can never signal every process we may (-1) or our own group (0).
    pgid > 1 && unsafe { libc::kill(-pgid, signal) } == 0
}
