//! Process groups and orphans: stopping what an agent left running, whoever started it.
//!
//! The agent runs in its own process group; when it exits (or times out, or is cancelled) the
//! group gets SIGTERM, then SIGKILL after a grace. A process that left the group (`setsid`, a
//! daemon) is found as an orphan the runner adopted: the runner is its subreaper. That is
//! Linux's `PR_SET_CHILD_SUBREAPER`; other systems (macOS) have no equivalent, so there such a
//! process is reparented to init, out of the runner's reach, and outlives a finished try (it
//! still holds the inherited run lease, so no second agent starts beside it).

use std::io;
#[cfg(target_os = "linux")]
use std::os::unix::ffi::OsStrExt;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::spawn::{spawn, Agent, Spec};

/// How long a process group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// Makes this process the parent of its agents' orphans (`PR_SET_CHILD_SUBREAPER`), so that a
/// leftover process it stops can be reaped here. Where PID 1 reaps nothing (many containers),
/// a stopped straggler would otherwise stay a zombie in the agent's process group, and the group
/// would look alive until the grace ran out.
pub fn adopt_orphans() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with an integer argument; affects only this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// The agents this process runs now, each waited for by the thread that started it. Reaping
/// adopted orphans must never take an agent's exit status from its thread, nor stop an agent
/// of another try: with several tries in flight (`maxParallel`), orphans are only reaped one
/// by one, and only stopped once no agent runs.
static AGENTS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn agents() -> std::sync::MutexGuard<'static, Vec<u32>> {
    AGENTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts an agent, registered as one (atomically with the reaping of orphans, so a reaper on
/// another thread cannot take its exit status before its thread waits for it).
pub fn spawn_agent<F>(spec: &Spec<F>) -> io::Result<Agent>
where
    F: Fn() -> Result<(), i32> + Send + Sync + Copy + 'static,
{
    let mut agents = agents();
    let agent = spawn(spec)?;
    agents.push(agent.pid);
    Ok(agent)
}

/// The agent `pid` has been waited for: it is no agent of this process any more.
pub fn agent_done(pid: u32) {
    agents().retain(|p| *p != pid);
}

/// Reaps every child that has exited (adopted orphans; the agents are reaped by their waiters).
fn reap_orphans() {
    let agents = agents();
    if agents.is_empty() {
        // SAFETY: waitpid with WNOHANG on any child; a null status pointer is allowed.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
        return;
    }
    for pid in children() {
        if !agents.contains(&pid.unsigned_abs()) {
            // SAFETY: waitpid with WNOHANG on one child of ours that is no agent.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
    }
}

pub use crate::core::verdict::Stopped;

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
/// inherited run lease, and the plan "in flight", for as long as it lived. Without a subreaper
/// (off Linux) nothing is adopted, and there is nothing to do.
#[cfg(not(target_os = "linux"))]
pub fn stop_adopted() {}

/// See above: Linux, where the runner is its agents' subreaper.
#[cfg(target_os = "linux")]
pub fn stop_adopted() {
    // Held throughout: no agent may start while the runner's children are being stopped.
    let agents = agents();
    if !agents.is_empty() {
        // Other tries run: their agents are children too. The last try to end stops what is
        // left.
        return;
    }
    // SAFETY: waitpid with WNOHANG on any child; a null status pointer is allowed.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    if !has_children() {
        return; // the common case: one syscall
    }
    let deadline = Instant::now() + GRACE;
    let reap = || {
        // SAFETY: as above; no agent runs (the lock is held).
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    };
    while has_children() && Instant::now() < deadline {
        // Signalled each round: a process orphaned meanwhile is a new child.
        signal_children(libc::SIGTERM);
        thread::sleep(Duration::from_millis(5));
        reap();
    }
    while has_children() {
        signal_children(libc::SIGKILL);
        thread::sleep(Duration::from_millis(5));
        reap();
    }
    drop(agents);
}

/// The pids of this process's children. Off Linux there is no subreaper, so the runner's only
/// children are its agents, which their own threads reap: none to find.
#[cfg(not(target_os = "linux"))]
fn children() -> Vec<libc::pid_t> {
    Vec::new()
}

/// The pids of this process's children, from /proc.
#[cfg(target_os = "linux")]
fn children() -> Vec<libc::pid_t> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<libc::pid_t>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let parent = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.to_owned();
            (parent == me && pid > 1).then_some(pid)
        })
        .collect()
}

/// Whether this process has any child, alive or not yet reaped.
#[cfg(target_os = "linux")]
fn has_children() -> bool {
    // SAFETY: WNOHANG never blocks; it returns -1 (ECHILD) only when there are no children.
    // A child that has exited is reaped here, which is what the callers want anyway.
    unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) != -1 }
}

/// Sends `signal` to every child of this process (and the group it leads, if it leads one).
#[cfg(target_os = "linux")]
fn signal_children(signal: libc::c_int) {
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so `children` reads
    // after the last `)`.
    for pid in children() {
        // SAFETY: plain kill of our own child, and of the group it leads (ESRCH if none).
        unsafe {
            libc::kill(-pid, signal);
            libc::kill(pid, signal);
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

/// A process as the state file records it: its pid and when it started.
pub use crate::format::schema::RunnerId as ProcessId;

/// This process.
#[must_use]
pub fn me() -> Option<ProcessId> {
    let pid = std::process::id();
    Some(ProcessId {
        pid,
        start: started(pid)?.0,
    })
}

/// Whether the process is still the one recorded: alive (not a zombie) and started when it
/// did (a pid reused by another process has another start).
#[must_use]
pub fn is_alive(id: &ProcessId) -> bool {
    started(id.pid).is_some_and(|(start, zombie)| start == id.start && !zombie)
}

/// Whether a process is alive and not a zombie (for reports: pids are reused). A killed
/// runner whose parent is gone can stay a zombie for good where PID 1 reaps nothing, and
/// `kill(pid, 0)` would call it alive.
#[must_use]
pub fn pid_alive(pid: u32) -> bool {
    pid > 0 && started(pid).is_some_and(|(_, zombie)| !zombie)
}

/// When a process started (clock ticks since boot), and whether it is a zombie.
#[cfg(target_os = "linux")]
fn started(pid: u32) -> Option<(u64, bool)> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so read after the
    // last `)`. The start time is the 20th field after the state.
    let rest = line.rsplit_once(") ")?.1;
    let mut fields = rest.split(' ');
    let zombie = fields.next().is_some_and(|s| s.starts_with(['Z', 'X']));
    let ticks = fields.nth(18)?.parse().ok()?;
    Some((ticks, zombie))
}

/// When a process started (microseconds since the epoch), and whether it is a zombie.
#[cfg(target_os = "macos")]
fn started(pid: u32) -> Option<(u64, bool)> {
    let mut info = std::mem::MaybeUninit::<libc::proc_bsdinfo>::zeroed();
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: proc_pidinfo writes at most `size` bytes into `info`.
    let got = unsafe {
        libc::proc_pidinfo(
            libc::c_int::try_from(pid).ok()?,
            libc::PROC_PIDTBSDINFO,
            0,
            info.as_mut_ptr().cast(),
            size,
        )
    };
    if got != size {
        return None;
    }
    // SAFETY: fully written, as checked above.
    let info = unsafe { info.assume_init() };
    let start = info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec;
    Some((start, info.pbi_status == libc::SZOMB))
}

/// Elsewhere only whether the pid exists can be told; its start is taken as 0.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn started(pid: u32) -> Option<(u64, bool)> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    (unsafe { libc::kill(pid, 0) } == 0).then_some((0, false))
}

/// A process of the Python `agent-step-sequencer` skill still at work on the state file at
/// `state` (its check or runner script, `step-sequencer-*.py`, naming that file or running in
/// its folder): during a migration it may be mid-step, and a second agent must not start
/// beside its own. Linux only (it reads `/proc`); elsewhere `None`.
#[must_use]
pub fn python_runner_for(state: &std::path::Path) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        let workspace = state.parent()?;
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let raw = std::fs::read(entry.path().join("cmdline")).ok()?;
                let argv: Vec<&[u8]> = raw.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
                let is_script = |arg: &&[u8]| {
                    let name = arg.rsplit(|b| *b == b'/').next().unwrap_or(arg);
                    name.starts_with(b"step-sequencer") && name.ends_with(b".py")
                };
                if !argv.iter().any(is_script) {
                    return None;
                }
                let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
                let names_state = argv.iter().any(|arg| {
                    let arg = std::path::Path::new(std::ffi::OsStr::from_bytes(arg));
                    std::fs::canonicalize(cwd.join(arg)).is_ok_and(|p| p == state)
                });
                (names_state || cwd == workspace).then_some(pid)
            })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = state;
        None
    }
}

/// Whether a process of try `attempt` of `step` of the plan in `state` still lives, by the
/// variables every agent of a try is given (`STEP_STATE_FILE`, `STEP_ID`, `STEP_ATTEMPT`),
/// which the processes it leaves behind inherit. The last word on a try whose runner is gone
/// and whose lease file someone deleted: the leftovers still hold the deleted file's lock,
/// which no one can look at any more. Linux only (it reads `/proc`); elsewhere `false`.
#[must_use]
pub fn try_process_alive(state: &std::path::Path, step: &str, attempt: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        let wanted: [Vec<u8>; 3] = [
            [b"STEP_STATE_FILE=".as_slice(), state.as_os_str().as_bytes()].concat(),
            format!("STEP_ID={step}").into_bytes(),
            format!("STEP_ATTEMPT={attempt}").into_bytes(),
        ];
        let me = std::process::id();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return false;
        };
        entries.flatten().any(|entry| {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                return false;
            };
            if pid == me {
                return false;
            }
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                return false;
            };
            let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
            wanted.iter().all(|w| vars.contains(&w.as_slice()))
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (state, step, attempt);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not_it() {
        let me = me().expect("this process has a start time");
        assert!(is_alive(&me));
        assert!(pid_alive(me.pid));
        assert!(!is_alive(&ProcessId {
            pid: me.pid,
            start: me.start + 1
        }));
        assert!(!pid_alive(0));
    }
}
