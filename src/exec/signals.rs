//! SIGTERM, SIGINT and SIGHUP for a process that runs agents: they are noted, not obeyed at
//! once, so that the runner can stop its agent's process group, record the try as stopped by a
//! signal (it does not count against the retry limit) and exit. Without this a `kill` of the
//! runner (or Ctrl-C on `seq-check --wait`) left its agent running unwatched, or a try
//! IN_PROGRESS that the next heartbeat counted as a failure.
//!
//! The handler only stores the signal's number; the waits the runner does (`poll`, and
//! [`sleep`] here) return early when a signal arrives, because the handler is installed
//! without `SA_RESTART`.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The first stopping signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn note(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    let _ = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
}

/// Installs the handler for SIGTERM, SIGINT and SIGHUP.
pub fn install() {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: a handler that only stores to an atomic; the struct is zeroed and filled
        // before use, and sigaction copies it.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&raw mut action.sa_mask);
            action.sa_flags = 0; // no SA_RESTART: waits return EINTR and look at the flag
            libc::sigaction(signal, &raw const action, std::ptr::null_mut());
        }
    }
}

/// Stops everything this process runs as a SIGTERM would: for a runner that gives up (a
/// state it cannot write) while tries run on its other threads.
pub fn stop_all() {
    note(libc::SIGTERM);
}

/// The stopping signal received so far, if any.
#[must_use]
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Sleeps for `duration`, or less if a stopping signal arrives; returns whether it slept the
/// whole time. (`std::thread::sleep` would sleep on through the signal.)
#[allow(clippy::must_use_candidate)] // most callers sleep for the sleep, and look at `received`
pub fn sleep(duration: Duration) -> bool {
    let until = Instant::now() + duration;
    loop {
        if received().is_some() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        let millis = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: poll on no descriptors is a sleep that a signal interrupts.
        unsafe {
            libc::poll(std::ptr::null_mut(), 0, millis);
        }
    }
}

/// The name of a signal, for messages.
#[must_use]
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGKILL => "SIGKILL",
        _ => "a signal",
    }
}
