//! The state lock's guard, [`Locked`]: the only way to read-modify-write the state.

use std::fs::{self, TryLockError};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::items::Phase;
use super::layout::{self, TEMP_PREFIX, TEMP_SUFFIX};
use super::read::{read_bounded, MAX_STATE_BYTES};
use super::write::{self, Replace};
use super::Store;
use crate::format::schema::State;
use crate::format::validate;

/// How long to wait for another process's read-modify-write before giving up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// How the state file is replaced: a temp file in the sidecar, with the file's mode.
    fn replacing(&self, new: bool) -> Result<Replace<'_>> {
        let mode = fs::metadata(&self.path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        Ok(Replace {
            temp_dir: self.ensure_sidecar()?,
            temp_prefix: TEMP_PREFIX,
            temp_suffix: TEMP_SUFFIX,
            mode,
            new,
            what: "state",
        })
    }

    /// Makes the temp file of the next save now, while there is time to spare (a runner while
    /// its agent runs), so the save itself does not wait for an inode. Best effort: a save
    /// without one makes its own.
    pub fn prepare_save(&self) {
        if self.spare.borrow().is_some() {
            return;
        }
        if let Ok(temp) = self.replacing(false).and_then(|how| write::temp_file(&how)) {
            *self.spare.borrow_mut() = Some(temp);
        }
    }

    /// Takes the state lock, waiting up to ten seconds for another writer to finish.
    ///
    /// The lock is only a lock while its file still has the name `lock`: if someone deleted
    /// the sidecar, a newcomer locks a new file of that name, and a lock on the old one would
    /// exclude nobody. So once locked, the file is checked against the name, and taken afresh
    /// if it was replaced.
    pub fn lock(&self) -> Result<Locked<'_>> {
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let mut pause = Duration::from_micros(200);
        loop {
            if self.lock_file.borrow().is_none() {
                let file = self.open_sidecar_file(layout::LOCK)?;
                *self.lock_file.borrow_mut() = Some(file);
            }
            let attempt = match self.lock_file.borrow().as_ref() {
                Some(file) => file.try_lock(),
                None => continue,
            };
            // std's File::try_lock (an flock(2)); fs2 is not used, see Cargo.toml.
            match attempt {
                Ok(()) => {
                    if self.lock_still_named() {
                        return Ok(Locked { store: self });
                    }
                    self.forget_sidecar(); // closing the stale file lets its lock go
                }
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => bail!(
                    "{}: another seq-check, seq-runner or seqctl has held the lock for over {} s",
                    self.path.display(),
                    LOCK_TIMEOUT.as_secs()
                ),
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("{}: cannot lock", self.path.display()))
                }
            }
        }
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
    /// Given back by [`Locked::reload`] as it was: the file is still this snapshot's save.
    reused: bool,
}

impl Snapshot {
    fn new(bytes: Vec<u8>, state: State) -> Self {
        Self {
            bytes,
            state,
            reused: false,
        }
    }

    /// Whether [`Locked::reload`] found the file unchanged since this snapshot was saved, and
    /// gave back its state as it was (so what was worked out from it still holds).
    #[must_use]
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The state, and the bytes it was read from, to give back to [`Locked::save_if_changed`].
    #[must_use]
    pub fn into_parts(self) -> (State, Vec<u8>) {
        (self.state, self.bytes)
    }
}

/// Proof that the state lock is held; the only way to write the state. Dropping it unlocks.
#[derive(Debug)]
pub struct Locked<'a> {
    store: &'a Store,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.store.lock_file.borrow().as_ref() {
            let _ = file.unlock();
        }
    }
}

impl Store {
    /// Whether the open lock file is the file named `lock` now.
    fn lock_still_named(&self) -> bool {
        let open = self.lock_file.borrow();
        let Some(file) = open.as_ref() else {
            return false;
        };
        same_file(file, &self.layout.file(layout::LOCK))
    }
}

/// Whether an open file is the one at `path` (not following a link there).
pub(crate) fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

impl Locked<'_> {
    #[must_use]
    pub fn store(&self) -> &Store {
        self.store
    }

    /// Reads and validates the state. On an error, a sidecar this process made for the file
    /// is taken back, lock included (a file that is no state gets none): the caller must give
    /// up, not write. One that goes on after an error reads through [`Locked::store`].
    pub fn load(&self) -> Result<State> {
        self.store
            .read()
            .inspect_err(|_| self.store.take_back_sidecar())
    }

    /// [`Locked::load`] without the `forEach` items' records (see [`Store::read_light`]);
    /// a save of what it gives leaves them as they are. With the bytes of state.json read.
    pub fn load_light(&self) -> Result<(State, Vec<u8>)> {
        self.store
            .read_light_bytes()
            .inspect_err(|_| self.store.take_back_sidecar())
    }

    /// Reads the state, reusing `known` if the file still holds exactly its bytes (and the
    /// items' journals are as this process left them). A journal of saves this process
    /// wrote that was changed or removed since is not read: what the process knew stands, and
    /// its next save rewrites state.json with it.
    pub fn reload(&self, known: Option<Snapshot>) -> Result<Snapshot> {
        let path = &self.store.path;
        let bytes = read_bounded(path, MAX_STATE_BYTES)?;
        if let Some(mut known) =
            known.filter(|known| known.bytes == bytes && self.store.journal_fresh())
        {
            if self.store.items_changed(&known.state) {
                self.store.load_items(&mut known.state)?;
            }
            known.reused = true;
            return Ok(known);
        }
        let mut state = validate::parse(&bytes)
            .with_context(|| format!("{}: invalid state", path.display()))?;
        self.store.replay_journal(&bytes, &mut state)?;
        self.store.load_items(&mut state)?;
        Ok(Snapshot::new(bytes, state))
    }

    /// Saves `state` (a try was just marked started), and returns the snapshot of the file as
    /// it now is. `read` is the file's bytes as loaded under this lock; `changed`, when known,
    /// names every run record this turn changed, and a save within a second of this process's
    /// last rewrite of state.json then goes to the journal (see `journal`). The items' records
    /// go to their journals; state.json is replaced only if its bytes change (a turn that only
    /// moved an item writes one journal line).
    pub fn save_snapshot(
        &self,
        state: State,
        read: Vec<u8>,
        changed: Option<&[String]>,
    ) -> Result<Snapshot> {
        // A turn that changed no run record (an item's, which its own journal holds) may
        // leave state.json as it is: compared below, not journaled.
        if let Some(changed) = changed.filter(|changed| !changed.is_empty()) {
            if self.store.may_append_journal() {
                let journaled = self.with_items(&state, || {
                    self.count_save()?;
                    self.store.append_journal(&read, &state, changed)
                })?;
                if journaled {
                    return Ok(Snapshot::new(read, state));
                }
            }
        }
        let bytes = serialise(&state)?;
        if bytes == read && !self.store.journal_pending() {
            // state.json stays as it is: the items' records, ends and starts, in one append.
            self.store.save_items(&state, Phase::All)?;
        } else {
            self.with_items(&state, || self.write_bytes(&bytes, false))?;
        }
        Ok(Snapshot::new(bytes, state))
    }

    /// Saves `state` only if its content differs from `read`, the bytes loaded under this
    /// lock (compared as states, so a file laid out differently is not rewritten for nothing).
    pub fn save_if_changed(&self, state: State, read: Vec<u8>) -> Result<Snapshot> {
        let bytes = self.with_items(&state, || {
            let unchanged = !self.store.journal_pending()
                && validate::parse(&read).is_ok_and(|original| {
                    original
                        == State {
                            items: original.items.clone(),
                            ..state.clone()
                        }
                });
            if unchanged {
                return Ok(read);
            }
            let bytes = serialise(&state)?;
            self.write_bytes(&bytes, false)?;
            Ok(bytes)
        })?;
        Ok(Snapshot::new(bytes, state))
    }

    /// Saves `state` read (without items) as `read`, a heartbeat's look at a plan a runner
    /// holds: where `changed` names every run record that changed and state.json is big, one
    /// line in the journal (see `journal`), which the runner's next save folds in; otherwise
    /// as [`Locked::save`].
    pub fn save_beside_runner(
        &self,
        state: &State,
        read: &[u8],
        changed: Option<&[String]>,
    ) -> Result<()> {
        match changed {
            Some(changed) if !state.items.loaded && self.store.may_note_in_journal(read) => {
                self.count_save()?;
                if self.store.append_journal(read, state, changed)? {
                    return Ok(());
                }
                self.save(state)
            }
            _ => self.save(state),
        }
    }

    /// Replaces the state file atomically and durably (see `write`), the items' records first.
    /// The file keeps its permission bits.
    pub fn save(&self, state: &State) -> Result<()> {
        self.with_items(state, || self.write_bytes(&serialise(state)?, false))
    }

    /// Writes a state file that does not exist yet, the same atomic way, but refusing to
    /// replace one that appeared meanwhile (an agent writing it by hand takes no lock).
    pub fn create(&self, state: &State) -> Result<()> {
        self.with_items(state, || self.write_bytes(&serialise(state)?, true))
    }

    /// Replaces state.json by `replace`, with the items' records around it: a try's end
    /// before (state.json may build on it), a try's start after (see `items`).
    fn with_items<T>(&self, state: &State, replace: impl FnOnce() -> Result<T>) -> Result<T> {
        self.store.save_items(state, Phase::Before)?;
        let done = replace()?;
        self.store.save_items(state, Phase::After)?;
        Ok(done)
    }

    /// Whether the state file exists (even as a dangling symlink): for `create` or `save`.
    #[must_use]
    pub fn exists(&self) -> bool {
        fs::symlink_metadata(&self.store.path).is_ok()
    }

    fn write_bytes(&self, bytes: &[u8], new: bool) -> Result<()> {
        let store = self.store;
        // Written out (pretty, one array element per line) a file can outgrow the bound every
        // reader holds it to; written anyway, it could never be read again.
        if bytes.len() as u64 > MAX_STATE_BYTES {
            anyhow::bail!(
                "{}: the state would be {} bytes written out, over the {} MiB a state file may \
                 have; nothing was written (make the plan smaller: its long lists, or its notes)",
                store.path.display(),
                bytes.len(),
                MAX_STATE_BYTES >> 20
            );
        }
        self.count_save()?;
        let sidecar = store.ensure_sidecar()?;
        if !store.swept.replace(true) {
            let spare = store
                .spare
                .borrow()
                .as_ref()
                .map(|t| t.path().to_path_buf());
            remove_stale_temps(sidecar, spare.as_deref());
        }
        let how = store.replacing(new)?;
        write::replace(
            &store.path,
            bytes,
            &how,
            store.spare.take(),
            store.workspace_dir()?,
        )?;
        store.rewritten();
        Ok(())
    }

    /// Counts a save (a rewrite or a journal line), failing it where the test suite injected
    /// a fault (see `faults`).
    fn count_save(&self) -> Result<()> {
        let store = self.store;
        store.saves.set(store.saves.get() + 1);
        if super::faults::injected_at("save", store.saves.get()) {
            anyhow::bail!(
                "{}: cannot write the new state: injected fault",
                store.path.display()
            );
        }
        Ok(())
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
/// stale; without this, every kill during a save would leave one behind for good. Once per
/// process: a killed writer is another process, whose leftovers the next one sweeps.
fn remove_stale_temps(sidecar: &Path, ours: Option<&Path>) {
    let Ok(entries) = fs::read_dir(sidecar) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX)
            && name.ends_with(TEMP_SUFFIX)
            && Some(entry.path().as_path()) != ours
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}
