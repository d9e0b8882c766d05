//! The run lease: who is running this plan's steps right now.
//!
//! A runner holds an exclusive flock on the sidecar file `lease` for as long as it lives, and its
//! agent inherits that lock (the open file description is shared across fork and exec). So the
//! lease is held exactly while a runner or any process of its agent is alive, whatever kills
//! whom, and a check can tell "running" from "crashed" by trying the lock:
//!
//! - held, step IN_PROGRESS: in flight, leave it alone;
//! - free, step IN_PROGRESS: whoever ran it died; the try is recorded as interrupted.
//!
//! The lease file also carries a small JSON note (pid, step, attempt, since, the agent's process
//! group) for people and for `seqctl cancel`; the lock, not the note, is the truth.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::layout;
use super::Store;

/// What the holder of the lease says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub pid: u32,
    pub since: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The agent's process group id while a step runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_pgid: Option<u32>,
    /// A try that ended but whose result the runner could not record (its state write
    /// failed): the next heartbeat takes it back instead of counting it as interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<Lost>,
}

/// A try whose result could not be recorded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    pub step: String,
    pub attempt: u32,
    pub error: String,
}

/// The result of looking at the lease without taking it for long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    Free,
    /// Held; the note if it could be read.
    Held(Option<Holder>),
}

impl LeaseState {
    #[must_use]
    pub fn is_held(&self) -> bool {
        matches!(self, Self::Held(_))
    }
}

/// A held run lease. Dropping it (or the process dying) releases it, unless an agent that
/// inherited it is still alive.
#[derive(Debug)]
pub struct Lease {
    file: File,
    holder: Holder,
}

impl Lease {
    /// Takes the lease, retrying briefly: a check probing it holds it for microseconds, and a
    /// runner it has just started must not mistake that probe for a rival runner.
    pub fn acquire(store: &Store, patience: Duration) -> Result<Option<Self>> {
        let file = store.open_sidecar_file(layout::LEASE)?;
        let deadline = Instant::now() + patience;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(5));
                }
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(e).context("cannot lock the run lease"),
            }
        }
        // A result the previous runner could not record stays noted until this one has
        // taken it back.
        let mut file = file;
        let lost = read_holder(&mut file).and_then(|h| h.lost);
        let mut lease = Self {
            file,
            holder: Holder {
                pid: std::process::id(),
                since: crate::format::timefmt::format(chrono::Utc::now()),
                lost,
                ..Holder::default()
            },
        };
        lease.publish()?;
        Ok(Some(lease))
    }

    /// Looks at the lease: takes and drops it at once if free, else reads the holder's note.
    pub fn probe(store: &Store) -> Result<LeaseState> {
        let mut file = store.open_sidecar_file(layout::LEASE)?;
        match file.try_lock() {
            Ok(()) => Ok(LeaseState::Free),
            Err(TryLockError::WouldBlock) => Ok(LeaseState::Held(read_holder(&mut file))),
            Err(TryLockError::Error(e)) => Err(e).context("cannot probe the run lease"),
        }
    }

    /// Makes sure the lease still has its name. Someone may have deleted the sidecar (or just
    /// `lease`): a newcomer would then lock a new file of that name and think the plan free.
    /// The lease is then taken on the file the name holds now; `false` when another runner
    /// holds that one (it owns the plan now, and this runner must leave it).
    pub fn keep_named(&mut self, store: &Store) -> Result<bool> {
        if super::lock::same_file(&self.file, &store.layout().file(layout::LEASE)) {
            return Ok(true);
        }
        // Called under the state lock, whose file is known to be named: only the folders
        // (the log folder may be gone) are checked afresh.
        store.forget_folders();
        let file = store.open_sidecar_file(layout::LEASE)?;
        match file.try_lock() {
            Ok(()) => {
                // The old file's lock goes with the last process holding it open.
                self.file = file;
                self.publish()?;
                Ok(true)
            }
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(e).context("cannot lock the run lease"),
        }
    }

    /// The descriptor an agent must inherit to keep the lease alive while it runs.
    #[must_use]
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Notes that the result of a try could not be recorded (the last thing a failing runner
    /// writes: the lease file is open already, and a note is a few bytes).
    pub fn note_lost(&mut self, lost: Lost) -> Result<()> {
        self.holder.lost = Some(lost);
        self.publish()
    }

    /// The lost result this lease's note carries, if any (see [`Lease::note_lost`]).
    #[must_use]
    pub fn lost(&self) -> Option<&Lost> {
        self.holder.lost.as_ref()
    }

    /// Forgets a lost result once the plan has taken it back.
    pub fn clear_lost(&mut self) -> Result<()> {
        if self.holder.lost.take().is_some() {
            self.publish()?;
        }
        Ok(())
    }

    /// The note of a lease nobody holds: what its last holder left (a lost result).
    #[must_use]
    pub fn last_note(store: &Store) -> Option<Holder> {
        let mut file = store.open_sidecar_file(layout::LEASE).ok()?;
        read_holder(&mut file)
    }

    /// Updates the note: which step and attempt, and the agent's process group, if any.
    pub fn set_step(&mut self, step: Option<(&str, u32)>, agent_pgid: Option<u32>) -> Result<()> {
        self.holder.step = step.map(|(id, _)| id.to_owned());
        self.holder.attempt = step.map(|(_, attempt)| attempt);
        self.holder.agent_pgid = agent_pgid;
        self.publish()
    }

    fn publish(&mut self) -> Result<()> {
        let note = serde_json::to_vec(&self.holder)?;
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file
            .write_all(&note)
            .context("cannot write the lease note")
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut note = Vec::new();
    file.take(4096).read_to_end(&mut note).ok()?;
    serde_json::from_slice(&note).ok()
}

/// A try's own lease: an flock on `leases/<step>` in the sidecar, taken by the runner before
/// the try's agent starts and inherited by that agent (and only by it), so the try is known
/// to be alive for exactly as long as any process of its agent is, whatever happened to the
/// runner. With several tries in flight (`maxParallel`), each has its own.
#[derive(Debug)]
pub struct TryLease {
    file: File,
}

impl TryLease {
    /// Takes the lease of `step`'s tries; `None` when a process of an earlier try still holds
    /// it (that try is alive: a second must not start beside it).
    pub fn acquire(store: &Store, step: &str) -> Result<Option<Self>> {
        let dir = store
            .sidecar_dir()?
            .subdir(layout::LEASES)
            .context("cannot open the try leases' folder")?;
        let name = layout::Layout::try_lease_name(step);
        let file = dir
            .open_kept(&name, super::safe::Access::ReadWrite)
            .with_context(|| format!("cannot open the try lease {name}"))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e).context("cannot lock a try lease"),
        }
    }

    /// Makes `step`'s try lease file ahead of its first try, if it is missing (nothing is
    /// locked). Best effort; returns whether the file is there now.
    #[must_use]
    pub fn prepare(store: &Store, step: &str) -> bool {
        let Ok(dir) = store.sidecar_dir().and_then(|dir| {
            dir.subdir(layout::LEASES)
                .context("cannot open the try leases' folder")
        }) else {
            return false;
        };
        dir.open_kept(
            &layout::Layout::try_lease_name(step),
            super::safe::Access::ReadWrite,
        )
        .is_ok()
    }

    /// The descriptor the try's agent inherits.
    #[must_use]
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Whether a process holds `step`'s try lease now (a file that is missing, or cannot be
    /// opened, is held by nobody).
    #[must_use]
    pub fn held(store: &Store, step: &str) -> bool {
        // Never through a link someone put there (see `safe`).
        let Ok(dir) = super::safe::Dir::open(&store.layout().file(layout::LEASES)) else {
            return false;
        };
        let Ok(file) = dir.read_own(&layout::Layout::try_lease_name(step)) else {
            return false;
        };
        matches!(file.try_lock(), Err(TryLockError::WouldBlock))
    }
}
