//! Where a state file lives, and the only way to change it: under its lock, atomically, durably.
//!
//! A state file `state.json` has a sidecar folder `state.json.seq/` beside it for everything else
//! that belongs to it (the lock, the run lease, logs, the event log, temp files; see
//! [`layout`]). The lock is taken on the sidecar file `lock`, not on state.json: an atomic
//! rename gives state.json a new inode, and a lock on the old one would protect nothing.
//!
//! [`lock::Locked`] is the guard: holding it is the only way to write, and dropping it unlocks.
//! A [`Store`] keeps the handles it opened (the lock file, the workspace folder to fsync) for
//! as long as it lives, so a runner does not reopen them for every step.

use std::cell::{Cell, OnceCell, RefCell};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::format::schema::State;
use crate::format::validate;

pub mod events;
pub mod faults;
pub mod follow;
pub mod items;
pub mod journal;
pub mod layout;
pub mod lease;
pub mod lock;
pub mod prune;
pub mod read;
pub mod results;
pub mod safe;
pub mod write;

pub use layout::Layout;
pub use lock::{Locked, Snapshot};
pub use read::MAX_STATE_BYTES;
use safe::{Access, Dir};

/// A state file, found by its real path, with its sidecar folder.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    workspace: PathBuf,
    layout: Layout,
    /// The sidecar folder is known to exist (made or checked once).
    sidecar_ready: Cell<bool>,
    /// The state lock's file, kept open while it is still the file of that name.
    lock_file: RefCell<Option<File>>,
    /// The workspace folder, opened once, to fsync after each rename.
    workspace_dir: OnceCell<File>,
    /// Temp files of killed saves were swept (once per process: see `lock`).
    swept: Cell<bool>,
    /// The temp file of the next save, made ahead (see [`Store::prepare_save`]).
    spare: RefCell<Option<tempfile::NamedTempFile>>,
    /// The `forEach` items' journals as this process last read or wrote them.
    items_cache: RefCell<items::Cache>,
    /// The journal of saves beside state.json, as this process knows it (see `journal`).
    journal: RefCell<journal::Known>,
    /// When this process last rewrote state.json.
    last_rewrite: Cell<Option<std::time::Instant>>,
    /// Saves this process made, for the test suite's injected faults (see `faults`).
    saves: Cell<u32>,
    /// The sidecar folder was made by this process (the first use of the state file).
    made_sidecar: Cell<bool>,
}

/// A copy for another thread or owner: the same file, with handles of its own.
impl Clone for Store {
    fn clone(&self) -> Self {
        Self::new(self.path.clone(), self.workspace.clone())
    }
}

impl Store {
    fn new(path: PathBuf, workspace: PathBuf) -> Self {
        Self {
            layout: Layout::new(layout::sidecar_of(&path)),
            path,
            workspace,
            sidecar_ready: Cell::new(false),
            lock_file: RefCell::new(None),
            workspace_dir: OnceCell::new(),
            swept: Cell::new(false),
            spare: RefCell::new(None),
            items_cache: RefCell::new(items::Cache::new()),
            journal: RefCell::new(journal::Known::None),
            last_rewrite: Cell::new(None),
            saves: Cell::new(0),
            made_sidecar: Cell::new(false),
        }
    }

    /// Finds the state file; `Ok(None)` when there is none in its folder (no plan is not an
    /// error). A folder that does not exist is: such a path cannot be right (a typo, a
    /// relative path from another folder, a `~` no shell expanded), and a heartbeat that
    /// quietly found "no plan" there would look healthy for ever.
    ///
    /// A symlinked state file is followed to its target, so that writes replace the real file
    /// rather than the link, and the sidecar sits beside the real file.
    pub fn locate(path: &Path) -> Result<Option<Self>> {
        let real = match fs::canonicalize(path) {
            Ok(real) => real,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let folder = folder_of(path);
                if fs::metadata(folder).is_ok_and(|m| m.is_dir()) {
                    return Ok(None);
                }
                bail!(
                    "{}: no such folder {}{}",
                    path.display(),
                    std::path::absolute(folder)
                        .unwrap_or_else(|_| folder.to_path_buf())
                        .display(),
                    unexpanded_hint(path)
                );
            }
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
        Ok(Some(Self::new(real, workspace)))
    }

    /// The store for a state file that may not exist yet (`seqctl init`): an existing file is
    /// found as by [`Store::locate`]; a missing one is placed in its directory's real path, so
    /// its sidecar is where every later command will look. Create it with [`Locked::create`].
    ///
    /// The folder is made if it is missing (a fresh home has no `~/.openclaw/workspace`).
    pub fn at(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .with_context(|| format!("{}: not a file name", path.display()))?;
        let parent = folder_of(path);
        if !unexpanded_hint(path).is_empty() {
            // `$HOME` or `~user` taken as a folder's name would make a folder called that.
            bail!(
                "{}: not a usable path{}",
                path.display(),
                unexpanded_hint(path)
            );
        }
        fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create the folder", parent.display()))?;
        if let Some(store) = Self::locate(path)? {
            return Ok(store);
        }
        let workspace = fs::canonicalize(parent)
            .with_context(|| format!("{}: cannot resolve", parent.display()))?;
        Ok(Self::new(workspace.join(name), workspace))
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
        self.layout.dir()
    }

    /// The sidecar's file names.
    #[must_use]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Creates the sidecar folder (owner-only: logs may hold secrets) if it is missing.
    pub fn ensure_sidecar(&self) -> Result<&Path> {
        let dir = self.layout.dir();
        if self.sidecar_ready.get() {
            return Ok(dir);
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => self.made_sidecar.set(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !fs::symlink_metadata(dir)?.is_dir() {
                    bail!(
                        "{}: expected the sidecar folder here, found something else",
                        dir.display()
                    );
                }
            }
            Err(e) => return Err(e).with_context(|| format!("{}: cannot create", dir.display())),
        }
        self.sidecar_ready.set(true);
        Ok(dir)
    }

    /// The sidecar folder, opened (made if missing), never through a link.
    pub fn sidecar_dir(&self) -> Result<Dir> {
        let dir = self.ensure_sidecar()?;
        Dir::open(dir).with_context(|| format!("{}: cannot open the sidecar folder", dir.display()))
    }

    /// The folder of attempts' logs, opened (made if missing), never through a link.
    pub fn logs_dir(&self) -> Result<Dir> {
        let logs = self.layout.logs();
        self.sidecar_dir()?
            .subdir(layout::LOGS)
            .with_context(|| format!("{}: cannot open the log folder", logs.display()))
    }

    /// Opens a file the sidecar keeps (the lock, the lease, the event log, `runner.log`),
    /// made anew if it is missing or is not a plain file of ours (see `safe`).
    pub fn open_kept(&self, name: &str, access: Access) -> Result<File> {
        self.sidecar_dir()?
            .open_kept(name, access)
            .with_context(|| format!("{}: cannot open", self.layout.file(name).display()))
    }

    /// Opens (creating) a file in the sidecar folder, for locks.
    pub(crate) fn open_sidecar_file(&self, name: &str) -> Result<File> {
        self.open_kept(name, Access::ReadWrite)
    }

    /// Forgets what is known about the sidecar (its folders exist, the lock file is the one
    /// named `lock`): someone removed or replaced it, and it is made afresh.
    /// Takes back a sidecar this process made for a file that proved not to be a state file,
    /// so that a bad request leaves nothing behind (not even an `/etc/passwd.seq/`): only the
    /// lock and lease files go, and the folder only if nothing else is in it.
    pub(crate) fn take_back_sidecar(&self) {
        if !self.made_sidecar.replace(false) {
            return;
        }
        let dir = self.layout.dir();
        self.lock_file.borrow_mut().take();
        for name in [layout::LOCK, layout::LEASE] {
            let _ = fs::remove_file(dir.join(name));
        }
        let _ = fs::remove_dir(dir);
        self.sidecar_ready.set(false);
    }

    pub(crate) fn forget_sidecar(&self) {
        self.forget_folders();
        self.lock_file.borrow_mut().take();
    }

    /// Forgets that the sidecar folder exists (it is checked, and made, again).
    pub(crate) fn forget_folders(&self) {
        self.sidecar_ready.set(false);
    }

    /// The workspace folder, opened on first use and kept, for the fsync after a rename.
    fn workspace_dir(&self) -> Result<&File> {
        if let Some(dir) = self.workspace_dir.get() {
            return Ok(dir);
        }
        let dir = File::open(&self.workspace)
            .with_context(|| format!("{}: cannot open", self.workspace.display()))?;
        Ok(self.workspace_dir.get_or_init(|| dir))
    }

    /// Reads and validates the state without the lock. Safe because every write is an atomic
    /// rename: a reader sees the old file or the new one, never a mix. For read-only commands.
    pub fn read(&self) -> Result<State> {
        let mut state = self.read_light()?;
        self.load_items(&mut state)?;
        Ok(state)
    }

    /// [`Store::read`] without the `forEach` items' records (which a heartbeat while a runner
    /// works never needs): the state as state.json and its journal (see `journal`) have it.
    pub fn read_light(&self) -> Result<State> {
        self.read_light_bytes().map(|(state, _)| state)
    }

    /// [`Store::read_light`], with the bytes of state.json it read.
    ///
    /// Without the lock (a status), a rewrite may land between the read of state.json and
    /// the read of its journal, pairing the old file with the next journal or none: the
    /// state would seem to go back. So the pair is read again, a few times at most, until
    /// state.json is the same file after the journal's read as before it.
    pub fn read_light_bytes(&self) -> Result<(State, Vec<u8>)> {
        let identity = || {
            fs::metadata(&self.path)
                .ok()
                .map(|m| (m.ino(), m.len(), m.mtime_nsec()))
        };
        let mut tries = 0;
        loop {
            tries += 1;
            let before = identity();
            let bytes = read::read_bounded(&self.path, MAX_STATE_BYTES)?;
            let mut state = validate::parse(&bytes)
                .with_context(|| format!("{}: invalid state", self.path.display()))?;
            self.replay_journal(&bytes, &mut state)?;
            if tries == 3 || before.is_some() && identity() == before {
                return Ok((state, bytes));
            }
        }
    }
}

/// The folder a state file is in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Why a path with `~` or `$` in it may not be what its writer meant: no shell expanded it
/// (a `--command-argv` of an OpenClaw automation, a variable set in its config).
fn unexpanded_hint(path: &Path) -> &'static str {
    let text = path.to_string_lossy();
    if text.starts_with(['~', '$']) || text.contains("/$") {
        " (no shell expanded `~` or `$` in this path: write it in full, e.g. /home/you/...)"
    } else {
        ""
    }
}
