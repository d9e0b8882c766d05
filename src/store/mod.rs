//! Where a state file lives, and the only way to change it: under its lock, atomically, durably.
//!
//! A state file `state.json` has a sidecar folder `state.json.seq/` beside it for everything else
//! that belongs to it (the lock, the run lease, logs, temp files), so two plans in one workspace
//! never collide. The lock is taken on the sidecar file `lock`, not on state.json: an atomic rename
//! gives state.json a new inode, and a lock on the old one would protect nothing.
//!
//! [`Locked`] is the guard: holding it is the only way to write, and dropping it unlocks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub mod events;
pub mod follow;
pub mod layout;
pub mod lease;

use crate::format::schema::State;
use crate::format::validate;

/// The largest state file read: ten thousand steps take about 3 MiB; anything near this is hostile.
pub const MAX_STATE_BYTES: u64 = 32 * 1024 * 1024;
/// Temp files of a save: `state.XXXXXX.tmp` in the sidecar folder.
const TEMP_PREFIX: &str = "state.";
const TEMP_SUFFIX: &str = ".tmp";
/// How long to wait for another process's read-modify-write before giving up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A state file that exists, found by its real path, with its sidecar folder's name.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    workspace: PathBuf,
    sidecar: PathBuf,
}

impl Store {
    /// Finds the state file; `Ok(None)` when there is none (no plan is not an error).
    ///
    /// A symlinked state file is followed to its target, so that writes replace the real file
    /// rather than the link, and the sidecar sits beside the real file.
    pub fn locate(path: &Path) -> Result<Option<Self>> {
        let real = match fs::canonicalize(path) {
            Ok(real) => real,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot resolve", path.display())),
        };
        let meta =
            fs::metadata(&real).with_context(|| format!("{}: cannot stat", path.display()))?;
        if meta.is_dir() {
            bail!("{}: is a directory, not a state file", path.display());
        }
        if !meta.is_file() {
            bail!("{}: is not a regular file", path.display());
        }
        let workspace = real
            .parent()
            .context("state file has no parent directory")?
            .to_path_buf();
        let mut sidecar_name = real
            .file_name()
            .context("state file has no name")?
            .to_os_string();
        sidecar_name.push(".seq");
        Ok(Some(Self {
            sidecar: workspace.join(sidecar_name),
            path: real,
            workspace,
        }))
    }

    /// The store for a state file that may not exist yet (`seqctl init`): an existing file is
    /// found as by [`Store::locate`]; a missing one is placed in its directory's real path, so
    /// its sidecar is where every later command will look. Create it with [`Locked::create`].
    pub fn at(path: &Path) -> Result<Self> {
        if let Some(store) = Self::locate(path)? {
            return Ok(store);
        }
        let name = path
            .file_name()
            .with_context(|| format!("{}: not a file name", path.display()))?;
        let parent = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let workspace = fs::canonicalize(parent)
            .with_context(|| format!("{}: no such directory", parent.display()))?;
        let mut sidecar_name = name.to_os_string();
        sidecar_name.push(".seq");
        Ok(Self {
            path: workspace.join(name),
            sidecar: workspace.join(sidecar_name),
            workspace,
        })
    }

    /// The state file's real path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder the state file is in: the agent's working directory.
    #[must_use]
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// The sidecar folder (it may not exist yet; [`Store::ensure_sidecar`] makes it).
    #[must_use]
    pub fn sidecar(&self) -> &Path {
        &self.sidecar
    }

    /// Creates the sidecar folder (owner-only: logs may hold secrets) if it is missing.
    pub fn ensure_sidecar(&self) -> Result<&Path> {
        match fs::DirBuilder::new().mode(0o700).create(&self.sidecar) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta = fs::symlink_metadata(&self.sidecar)?;
                if !meta.is_dir() {
                    bail!(
                        "{}: expected the sidecar folder here, found something else",
                        self.sidecar.display()
                    );
                }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("{}: cannot create", self.sidecar.display()))
            }
        }
        Ok(&self.sidecar)
    }

    /// Opens (creating) a file in the sidecar folder, for locks.
    pub(crate) fn open_sidecar_file(&self, name: &str) -> Result<File> {
        let path = self.ensure_sidecar()?.join(name);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("{}: cannot open", path.display()))
    }

    /// Takes the state lock, waiting up to ten seconds for another writer to finish.
    pub fn lock(&self) -> Result<Locked<'_>> {
        let file = self.open_sidecar_file("lock")?;
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let mut pause = Duration::from_micros(200);
        loop {
            // std's File::try_lock (an flock(2)); fs2 is not used, see Cargo.toml.
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Locked {
                        store: self,
                        _lock: file,
                    })
                }
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => bail!(
                    "{}: another seq-check, seq-runner or seqctl has held the lock for over {} s",
                    self.path.display(),
                    LOCK_TIMEOUT.as_secs()
                ),
                Err(fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("{}: cannot lock", self.path.display()))
                }
            }
        }
    }

    /// Reads and validates the state without the lock. Safe because every write is an atomic
    /// rename: a reader sees the old file or the new one, never a mix. For read-only commands.
    pub fn read(&self) -> Result<State> {
        let bytes = read_bounded(&self.path)?;
        validate::parse(&bytes).with_context(|| format!("{}: invalid state", self.path.display()))
    }
}

/// A state together with the exact bytes of the file it was read from or written as.
///
/// A runner keeps the snapshot of its own last write; while the file still holds exactly those
/// bytes, the state it describes is known and need not be parsed and validated again. Any other
/// writer changes the bytes (a byte comparison, not an inode or mtime guess: those are reused
/// and coarse), and then the file is read afresh.
#[derive(Debug, Clone)]
pub struct Snapshot {
    bytes: Vec<u8>,
    state: State,
}

impl Snapshot {
    /// The state, and the bytes it was read from, to give back to [`Locked::save_if_changed`].
    #[must_use]
    pub fn into_parts(self) -> (State, Vec<u8>) {
        (self.state, self.bytes)
    }
}

/// Proof that the state lock is held; the only way to write the state.
#[derive(Debug)]
pub struct Locked<'a> {
    store: &'a Store,
    _lock: File,
}

impl Locked<'_> {
    #[must_use]
    pub fn store(&self) -> &Store {
        self.store
    }

    pub fn load(&self) -> Result<State> {
        self.store.read()
    }

    /// Reads the state, reusing `known` if the file still holds exactly its bytes.
    pub fn reload(&self, known: Option<Snapshot>) -> Result<Snapshot> {
        let path = &self.store.path;
        let bytes = read_bounded(path)?;
        if let Some(known) = known.filter(|known| known.bytes == bytes) {
            return Ok(known);
        }
        let state = validate::parse(&bytes)
            .with_context(|| format!("{}: invalid state", path.display()))?;
        Ok(Snapshot { bytes, state })
    }

    /// Saves `state`, known to differ from the file (a try was just marked started), and
    /// returns the snapshot of the file as it now is.
    pub fn save_snapshot(&self, state: State) -> Result<Snapshot> {
        let bytes = serialise(&state)?;
        self.write_bytes(&bytes, false)?;
        Ok(Snapshot { bytes, state })
    }

    /// Saves `state` only if its content differs from `read`, the bytes loaded under this
    /// lock (compared as states, so a file laid out differently is not rewritten for nothing).
    /// Off the per-step path, so parsing `read` again is cheaper than cloning every turn.
    pub fn save_if_changed(&self, state: State, read: Vec<u8>) -> Result<Snapshot> {
        if validate::parse(&read).is_ok_and(|original| original == state) {
            return Ok(Snapshot { bytes: read, state });
        }
        self.save_snapshot(state)
    }

    /// Replaces the state file atomically and durably: a temp file in the sidecar folder (same
    /// file system), written, fsynced, renamed over the state file, then the directory fsynced so
    /// the rename itself survives a power cut. The file keeps its permission bits.
    pub fn save(&self, state: &State) -> Result<()> {
        self.write(state, false)
    }

    /// Writes a state file that does not exist yet, the same atomic way, but refusing to
    /// replace one that appeared meanwhile (an agent writing it by hand takes no lock).
    pub fn create(&self, state: &State) -> Result<()> {
        self.write(state, true)
    }

    /// Whether the state file exists (even as a dangling symlink): for `create` or `save`.
    #[must_use]
    pub fn exists(&self) -> bool {
        fs::symlink_metadata(&self.store.path).is_ok()
    }

    fn write(&self, state: &State, new: bool) -> Result<()> {
        self.write_bytes(&serialise(state)?, new)
    }

    fn write_bytes(&self, bytes: &[u8], new: bool) -> Result<()> {
        let path = &self.store.path;
        let mode = fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        let sidecar = self.store.ensure_sidecar()?;
        remove_stale_temps(sidecar);
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .permissions(fs::Permissions::from_mode(mode))
            .tempfile_in(sidecar)
            .with_context(|| {
                format!(
                    "{}: cannot create a temp file",
                    self.store.sidecar.display()
                )
            })?;
        let written = temp
            .write_all(bytes)
            .and_then(|()| temp.as_file().sync_all());
        written.with_context(|| format!("{}: cannot write the new state", path.display()))?;
        let persisted = if new {
            temp.persist_noclobber(path)
        } else {
            temp.persist(path)
        };
        persisted
            .map_err(|e| e.error)
            .with_context(|| format!("{}: cannot replace the state file", path.display()))?;
        File::open(&self.store.workspace)
            .and_then(|dir| dir.sync_all())
            .with_context(|| {
                format!(
                    "{}: cannot fsync the directory",
                    self.store.workspace.display()
                )
            })
    }
}

/// The file's text: pretty-printed as agents and the Python version write it, newline-ended.
fn serialise(state: &State) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(state).context("cannot serialise the state")?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Removes the temp files of writers that died mid-save (killed, or the machine stopped).
/// Only the holder of the state lock writes temp files, so any found while holding it is
/// stale; without this, every kill during a save would leave one behind for good.
fn remove_stale_temps(sidecar: &Path) {
    let Ok(entries) = fs::read_dir(sidecar) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Reads a regular file of at most [`MAX_STATE_BYTES`], refusing devices, fifos and giants
/// before reading them, so that a hostile path costs neither time nor memory.
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK) // a fifo must not block us before the check below
        .open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot stat", path.display()))?;
    if meta.is_dir() {
        bail!("{}: is a directory, not a state file", path.display());
    }
    if !meta.is_file() {
        bail!("{}: is not a regular file", path.display());
    }
    if meta.len() > MAX_STATE_BYTES {
        bail!(
            "{}: is {} bytes; a state file may be at most {} MiB",
            path.display(),
            meta.len(),
            MAX_STATE_BYTES >> 20
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        bail!(
            "{}: grew past {} MiB while being read",
            path.display(),
            MAX_STATE_BYTES >> 20
        );
    }
    Ok(bytes)
}
