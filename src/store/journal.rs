//! Group commit for fast steps: while a runner's steps follow each other within a second, its
//! saves are appended to a journal beside state.json instead of rewriting the whole file.
//!
//! A save that starts a try must be durable before the agent starts, and state.json is
//! rewritten whole (the Python version's format): on a plan of a thousand steps that is a
//! quarter of a megabyte written, flushed and renamed per step, and most of a fast step's
//! cost. So a runner that rewrote state.json less than [`WINDOW`] ago appends what changed
//! instead (`journal.jsonl` in the sidecar): one line, made durable with `fdatasync`. The
//! next save after the window rewrites state.json whole, with everything, and removes the
//! journal. Real agents take seconds or minutes per step, so for them every save is a
//! rewrite, as before; only bursts of sub-second steps are journaled, and state.json lags
//! them by at most a second.
//!
//! The state is state.json plus its journal, and every reader here reads both (see
//! [`Store::read_light`](super::Store::read_light) and `Locked::reload`). Any other save (a
//! heartbeat, seqctl, the runner's last) rewrites state.json with everything and removes the
//! journal; one exception, a heartbeat's look at a big plan a runner holds, is a line of its
//! own, which the runner folds in (see [`Store::may_note_in_journal`]). After a crash
//! mid-burst the journal stays until that next save.
//!
//! The journal's first line names the state.json it extends (its length and a hash of its
//! bytes, and its `planHash`). It applies whole to exactly that file; to that file edited since
//! by other means (the same `planHash`) only with its run records that are newer than the
//! file's; to any other (a new plan written over it) not at all. Each later line is one save:
//! the plan-wide fields, and the run records that changed, whole; the last line for a step
//! wins. A line cut short by a crash (or a fault), or one that would not pass in state.json,
//! ends the journal.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::layout;
use super::Store;
use crate::format::schema::{PlanStatus, State, StepRun, StepStatus};

/// How long after a rewrite of state.json a runner's saves go to the journal.
pub const WINDOW: Duration = Duration::from_secs(1);

/// A journal of more lines than this is folded into state.json at the next save, window or
/// not (a second of the fastest steps is a few hundred).
const MAX_RECORDS: usize = 4096;

/// The most bytes of a journal read: far more than [`MAX_RECORDS`] lines take.
const MAX_BYTES: u64 = 64 << 20;

/// A journal of more lines than this is folded into state.json by a heartbeat's save beside
/// a runner (a runner folds it at its next save; one that waits long, for a slow agent, would
/// otherwise leave every heartbeat to read a growing journal).
const MAX_NOTES: usize = 16;

/// The size of state.json from which a heartbeat's save beside a runner goes to the journal:
/// below it, a rewrite costs about what a new journal does.
const NOTE_ABOVE: usize = 64 << 10;

/// The first line: which state.json the journal extends.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    /// The file's length, and an FNV-1a hash of its bytes (see [`base_of`]).
    base: String,
    /// The file's `planHash`: a state.json edited since (by hand, by another tool) that still
    /// records it is that plan, and the journal's run records still belong to it.
    #[serde(rename = "planHash", default, skip_serializing_if = "Option::is_none")]
    plan_hash: Option<String>,
}

/// One save: every plan-wide field a runner's turn can change, and the run records it changed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Record {
    current_step: u64,
    #[serde(deserialize_with = "crate::format::schema::unique_keys")]
    step_runs: IndexMap<String, StepRun>,
    step_delay_minutes: Option<Number>,
    blockers: Option<Vec<String>>,
    last_heartbeat_iso: Option<String>,
    artifacts: Option<Vec<String>>,
    status: PlanStatus,
    finished_iso: Option<String>,
    paused: bool,
    finish_reported: bool,
    blocker_reported_iso: Option<String>,
    plan_hash: Option<String>,
}

impl Record {
    fn of(state: &State, changed: &[String]) -> Self {
        Self {
            current_step: state.current_step,
            step_runs: changed
                .iter()
                .filter_map(|id| Some((id.clone(), state.step_runs.get(id)?.clone())))
                .collect(),
            step_delay_minutes: state.step_delay_minutes.clone(),
            blockers: state.blockers.clone(),
            last_heartbeat_iso: state.last_heartbeat_iso.clone(),
            artifacts: state.artifacts.clone(),
            status: state.status,
            finished_iso: state.finished_iso.clone(),
            paused: state.paused,
            finish_reported: state.finish_reported,
            blocker_reported_iso: state.blocker_reported_iso.clone(),
            plan_hash: state.plan_hash.clone(),
        }
    }

    /// Whether the fields it sets read as a state file's must, in a plan of `queue_len` steps.
    fn valid(&self, queue_len: usize, whole: bool) -> bool {
        let fields = crate::format::validate::RunFields {
            queue_len,
            current_step: if whole { self.current_step } else { 0 },
            step_delay_minutes: self.step_delay_minutes.as_ref(),
            last_heartbeat_iso: self.last_heartbeat_iso.as_deref(),
            finished_iso: self.finished_iso.as_deref(),
            blocker_reported_iso: self.blocker_reported_iso.as_deref(),
        };
        crate::format::validate::check_runs(&fields, self.step_runs.iter()).is_ok()
    }

    fn apply(self, state: &mut State) {
        state.current_step = self.current_step;
        for (id, run) in self.step_runs {
            state.step_runs.insert(id, run);
        }
        state.step_delay_minutes = self.step_delay_minutes;
        state.blockers = self.blockers;
        state.last_heartbeat_iso = self.last_heartbeat_iso;
        state.artifacts = self.artifacts;
        state.status = self.status;
        state.finished_iso = self.finished_iso;
        state.paused = self.paused;
        state.finish_reported = self.finish_reported;
        state.blocker_reported_iso = self.blocker_reported_iso;
        state.plan_hash = self.plan_hash;
    }
}

/// The journal this process writes, open for appends.
#[derive(Debug)]
pub(crate) struct Open {
    file: File,
    /// Its length after our last append: any other change to it shows.
    len: u64,
    records: usize,
}

/// What this process knows of the journal beside the state file.
#[derive(Debug, Default)]
pub(crate) enum Known {
    /// None: there was none when this process last looked, or its last rewrite removed it.
    #[default]
    None,
    /// This process writes it, and knows every line of it.
    Ours(Open),
    /// Another process's, as read. `appendable`: it extends the state.json read with it and
    /// ends with a whole line, so a small save may go after it (see
    /// [`Store::may_note_in_journal`]); the runner's next save rewrites state.json.
    Read {
        appendable: bool,
        id: FileId,
        len: u64,
        records: usize,
    },
    /// This process's, changed or removed by someone else since: what the process knows
    /// stands, and its next save rewrites state.json with it.
    Lost,
}

/// Whether a journal's run record is newer than the one in an edited state.json: there is
/// none, or it counts more tries, or it ends the try the file still shows unfinished. The edit
/// was made on a file that lacked the journal's records, so they are newer than its own; but a
/// journal left behind by a crash between the rewrite that folded it in and its removal is
/// older than the file, whose records it must not take back.
fn newer(run: &StepRun, file: Option<&StepRun>) -> bool {
    let unfinished = |r: &StepRun| matches!(r.status, StepStatus::Pending | StepStatus::InProgress);
    file.is_none_or(|file| {
        run.tries > file.tries || (run.tries == file.tries && unfinished(file) && !unfinished(run))
    })
}

/// A file's identity: device and inode.
type FileId = (u64, u64);

fn id_of(meta: &std::fs::Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

/// Names a state.json's bytes: their length and a 64-bit FNV-1a hash of them, a word at a
/// time (stable across releases: a journal outlives the binary that wrote it).
fn base_of(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        hash = (hash ^ word).wrapping_mul(0x0100_0000_01b3);
    }
    for byte in words.remainder() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}:{hash:016x}", bytes.len())
}

impl Store {
    fn journal_path(&self) -> std::path::PathBuf {
        self.layout.file(layout::JOURNAL)
    }

    /// Applies the journal to `state`, just read from `bytes`, and remembers it as read (the
    /// next rewrite of state.json folds it in, or removes one that does not apply):
    ///
    /// - one that extends exactly those bytes: whole;
    /// - one over a state.json edited since by other means (by hand, by another tool) that
    ///   still records the same `planHash`: its run records, which are newer than the file the
    ///   edit was made on; the plan-wide fields are the edit's;
    /// - any other (a new plan written over it, a crash between a rewrite and the journal's
    ///   removal): not at all.
    ///
    /// Lines after one cut short, or one whose fields would not pass as a state file's, are
    /// ignored.
    pub(crate) fn replay_journal(&self, bytes: &[u8], state: &mut State) -> Result<()> {
        let Some((text, id)) = self.read_journal()? else {
            *self.journal.borrow_mut() = Known::None;
            return Ok(());
        };
        let mut lines = text.split_inclusive(|b| *b == b'\n');
        let header = lines
            .next()
            .and_then(|line| serde_json::from_slice::<Header>(line).ok());
        let extends = header.as_ref().is_some_and(|h| h.base == base_of(bytes));
        let edited = !extends
            && header
                .as_ref()
                .and_then(|h| h.plan_hash.as_ref())
                .is_some_and(|hash| state.plan_hash.as_ref() == Some(hash));
        let mut records = 0;
        let mut whole = extends;
        if extends || edited {
            for line in lines {
                let record = line
                    .ends_with(b"\n") // not cut short by a crash mid-append
                    .then(|| serde_json::from_slice::<Record>(line).ok())
                    .flatten()
                    .filter(|record| record.valid(state.step_queue.len(), extends));
                let Some(record) = record else {
                    whole = false;
                    break;
                };
                records += 1;
                if extends {
                    record.apply(state);
                } else {
                    for (id, run) in record.step_runs {
                        if newer(&run, state.step_runs.get(&id)) {
                            state.step_runs.insert(id, run);
                        }
                    }
                }
            }
        }
        *self.journal.borrow_mut() = Known::Read {
            appendable: whole,
            id,
            len: text.len() as u64,
            records,
        };
        Ok(())
    }

    /// The journal's bytes and identity, if there is one (a link or fifo in its place is
    /// none).
    fn read_journal(&self) -> Result<Option<(Vec<u8>, FileId)>> {
        let Ok(dir) = super::safe::Dir::open(self.layout.dir()) else {
            return Ok(None); // no sidecar, no journal
        };
        let Ok(file) = dir.read_own(layout::JOURNAL) else {
            return Ok(None); // missing, or not a regular file of ours: never read
        };
        let id = file
            .metadata()
            .map(|m| id_of(&m))
            .with_context(|| format!("{}: cannot read", self.journal_path().display()))?;
        let mut text = Vec::new();
        file.take(MAX_BYTES)
            .read_to_end(&mut text)
            .with_context(|| format!("{}: cannot read", self.journal_path().display()))?;
        Ok(Some((text, id)))
    }

    /// Whether what this process knows of the state beside state.json still holds, for a
    /// runner whose state.json is as it left it: its own journal as it left it (or removed or
    /// replaced by someone: then what it knows stands, and its next save rewrites
    /// state.json), no journal where it left none, a journal it read unchanged. `false`: one
    /// was made or added to meanwhile (a heartbeat's line), and the state must be read again.
    pub(crate) fn journal_fresh(&self) -> bool {
        let named = std::fs::symlink_metadata(self.journal_path()).ok();
        let mut known = self.journal.borrow_mut();
        match &*known {
            Known::None => named.is_none(),
            Known::Lost => true,
            Known::Read { id, len, .. } => {
                named.is_some_and(|m| id_of(&m) == *id && m.len() == *len)
            }
            Known::Ours(open) => match (open.file.metadata().ok(), named) {
                // Appended to by another process: read again.
                (Some(mine), Some(named)) if id_of(&mine) == id_of(&named) => {
                    named.len() == open.len
                }
                _ => {
                    *known = Known::Lost;
                    true
                }
            },
        }
    }

    /// Whether this process's next save may go to the journal: it rewrote state.json less
    /// than [`WINDOW`] ago, and the journal (if any) is its own and not full.
    pub(crate) fn may_append_journal(&self) -> bool {
        let recent = self
            .last_rewrite
            .get()
            .is_some_and(|at| at.elapsed() < WINDOW);
        recent
            && match &*self.journal.borrow() {
                Known::None => true,
                Known::Ours(open) => open.records < MAX_RECORDS,
                Known::Read { .. } | Known::Lost => false,
            }
    }

    /// Whether a small save of a big state (a heartbeat's, while a runner holds the plan) may
    /// go to the journal: `base`, the bytes of state.json read under the lock, is big enough
    /// that a rewrite costs more than a line, and the journal is none, or one that extends it
    /// (which the runner's next save folds in).
    pub(crate) fn may_note_in_journal(&self, base: &[u8]) -> bool {
        base.len() >= NOTE_ABOVE
            && match &*self.journal.borrow() {
                Known::None => true,
                Known::Read {
                    appendable,
                    records,
                    ..
                } => *appendable && *records < MAX_NOTES,
                Known::Ours(open) => open.records < MAX_NOTES,
                Known::Lost => false,
            }
    }

    /// Whether state.json alone is not the whole state: a journal was read or written.
    pub(crate) fn journal_pending(&self) -> bool {
        !matches!(*self.journal.borrow(), Known::None)
    }

    /// Appends one save to the journal (see [`Store::may_append_journal`]): `changed` names
    /// every run record that differs from `base` (the bytes of state.json, read under the
    /// lock) plus what the journal holds. `false`: there is no journal to write (something
    /// else is in its place), and state.json must be rewritten instead.
    pub(crate) fn append_journal(
        &self,
        base: &[u8],
        state: &State,
        changed: &[String],
    ) -> Result<bool> {
        let mut known = self.journal.borrow_mut();
        let mut line = serde_json::to_vec(&Record::of(state, changed))
            .context("cannot serialise the journal line")?;
        line.push(b'\n');
        let what = || {
            format!(
                "{}: cannot write the new state to its journal {}",
                self.path.display(),
                self.journal_path().display()
            )
        };
        if let Known::Ours(open) = &mut *known {
            let written = open
                .file
                .write_all(&line)
                .and_then(|()| open.file.sync_data());
            if let Err(e) = written {
                // Whatever part of the line reached the file ends the journal there; the next
                // save rewrites state.json with everything.
                *known = Known::Lost;
                return Err(e).with_context(what);
            }
            open.len += line.len() as u64;
            open.records += 1;
            return Ok(true);
        }
        if let Known::Read {
            appendable: true,
            id,
            len,
            records,
        } = &mut *known
        {
            // Another process's journal, which extends this state.json: a line after it.
            let dir = self.sidecar_dir()?;
            let Ok(mut file) = dir.open_kept(layout::JOURNAL, super::safe::Access::Append) else {
                *known = Known::Lost;
                return Ok(false); // something else in its place: state.json is rewritten
            };
            let same = file
                .metadata()
                .is_ok_and(|m| id_of(&m) == *id && m.len() == *len);
            if !same {
                drop(file); // changed since it was read, under the lock: a bug, or a hand
                *known = Known::Lost;
                anyhow::bail!("{}: changed while locked", self.journal_path().display());
            }
            if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
                *known = Known::Lost;
                return Err(e).with_context(what);
            }
            *len += line.len() as u64;
            *records += 1;
            return Ok(true);
        }
        if !matches!(*known, Known::None) {
            anyhow::bail!("{}: not to be added to", self.journal_path().display());
        }
        // A new journal: made whole, then its name made durable, before the try it records
        // starts.
        let mut text = serde_json::to_vec(&Header {
            base: base_of(base),
            plan_hash: state.plan_hash.clone(),
        })
        .context("cannot serialise the journal header")?;
        text.push(b'\n');
        text.extend_from_slice(&line);
        let dir = self.sidecar_dir()?;
        let Ok(mut file) = dir.create_new(layout::JOURNAL, false) else {
            // Something that cannot be removed is in its place (a folder someone made): no
            // journal, state.json is rewritten as before.
            return Ok(false);
        };
        let made = file
            .write_all(&text)
            .and_then(|()| file.sync_data())
            .and_then(|()| dir.sync());
        if let Err(e) = made {
            *known = Known::Lost;
            return Err(e).with_context(what);
        }
        *known = Known::Ours(Open {
            file,
            len: text.len() as u64,
            records: 1,
        });
        Ok(true)
    }

    /// After a rewrite of state.json (which holds everything): the journal goes.
    pub(crate) fn rewritten(&self) {
        self.last_rewrite.set(Some(Instant::now()));
        let mut known = self.journal.borrow_mut();
        // Removed whatever this process knew: a heartbeat after a crash, or a seqctl command,
        // folds in a journal it never wrote too.
        // Its removal is made durable when there was one: after a power cut, a journal that
        // came back beside the file it was folded into would read as that file edited.
        if std::fs::symlink_metadata(self.journal_path()).is_ok() {
            if let Ok(dir) = super::safe::Dir::open(self.layout.dir()) {
                if dir.remove(layout::JOURNAL).is_ok() {
                    let _ = dir.sync();
                }
            }
        }
        *known = Known::None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::validate;

    const PLAN: &str = r#"{"plan":{"steps":{"a":{"instruction":"x"},"b":{"instruction":"y"}}},
        "stepQueue":["a","b"],"currentStep":0,"stepRuns":{},"status":"IN_PROGRESS"}"#;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, PLAN).unwrap();
        let store = Store::locate(&path).unwrap().unwrap();
        store.ensure_sidecar().unwrap();
        (dir, store)
    }

    /// A store whose runner rewrote state.json just now, then journaled the start of `a`.
    fn a_started() -> (tempfile::TempDir, Store, State) {
        let (dir, store) = store();
        let mut state = validate::parse(PLAN.as_bytes()).unwrap();
        store.rewritten();
        started(&mut state, "a");
        store
            .append_journal(PLAN.as_bytes(), &state, &["a".into()])
            .unwrap();
        (dir, store, state)
    }

    fn started(state: &mut State, id: &str) {
        let run = state.step_runs.entry(id.to_owned()).or_default();
        run.status = crate::format::schema::StepStatus::InProgress;
        run.tries += 1;
        state.current_step += 1;
    }

    #[test]
    fn a_journal_is_applied_to_the_state_it_extends_and_no_other() {
        let (_dir, store) = store();
        let mut state = validate::parse(PLAN.as_bytes()).unwrap();
        assert!(!store.may_append_journal()); // no rewrite of state.json by this process yet
        store.rewritten(); // as after a rewrite of state.json just now
        started(&mut state, "a");
        assert!(store.may_append_journal());
        store
            .append_journal(PLAN.as_bytes(), &state, &["a".into()])
            .unwrap();
        started(&mut state, "b");
        store
            .append_journal(PLAN.as_bytes(), &state, &["b".into()])
            .unwrap();
        let reader = Store::locate(store.path()).unwrap().unwrap();
        let mut read = validate::parse(PLAN.as_bytes()).unwrap();
        reader.replay_journal(PLAN.as_bytes(), &mut read).unwrap();
        assert_eq!(read, state);
        // Another state.json (a new plan written over it): the journal is not applied.
        let other = PLAN.replace("\"x\"", "\"z\"");
        let mut fresh = validate::parse(other.as_bytes()).unwrap();
        let before = fresh.clone();
        reader.replay_journal(other.as_bytes(), &mut fresh).unwrap();
        assert_eq!(fresh, before);
    }

    #[test]
    fn a_line_cut_short_ends_the_journal_and_a_rewrite_removes_it() {
        let (_dir, store, mut state) = a_started();
        let after_a = state.clone();
        started(&mut state, "b");
        store
            .append_journal(PLAN.as_bytes(), &state, &["b".into()])
            .unwrap();
        let path = store.journal_path();
        let text = std::fs::read(&path).unwrap();
        std::fs::write(&path, &text[..text.len() - 5]).unwrap();
        let mut read = validate::parse(PLAN.as_bytes()).unwrap();
        store.replay_journal(PLAN.as_bytes(), &mut read).unwrap();
        assert_eq!(read, after_a);
        // Someone else's journal now: this process rewrites state.json at its next save.
        assert!(!store.may_append_journal());
        assert!(store.journal_pending());
        store.rewritten();
        assert!(!path.exists());
    }

    #[test]
    fn a_journal_changed_under_its_writer_is_no_longer_appended_to() {
        let (_dir, store, _) = a_started();
        assert!(store.journal_fresh());
        // Removed by someone: what the writer knows stands, and its next save rewrites.
        std::fs::remove_file(store.journal_path()).unwrap();
        assert!(store.journal_fresh());
        assert!(!store.may_append_journal());
        assert!(store.journal_pending());
    }

    #[test]
    fn a_line_another_process_adds_makes_the_writer_read_the_journal_again() {
        let (_dir, store, state) = a_started();
        // A heartbeat: reads the state, notes its look after the runner's line.
        let beat = Store::locate(store.path()).unwrap().unwrap();
        let mut seen = validate::parse(PLAN.as_bytes()).unwrap();
        beat.replay_journal(PLAN.as_bytes(), &mut seen).unwrap();
        assert_eq!(seen, state);
        seen.last_heartbeat_iso = Some("2026-11-26T07:00:00.000Z".into());
        assert!(
            !beat.may_note_in_journal(PLAN.as_bytes()),
            "a small file is rewritten"
        );
        beat.append_journal(PLAN.as_bytes(), &seen, &[]).unwrap();
        // The runner sees that its journal grew, and reads it again.
        assert!(!store.journal_fresh());
        let mut again = validate::parse(PLAN.as_bytes()).unwrap();
        store.replay_journal(PLAN.as_bytes(), &mut again).unwrap();
        assert_eq!(again, seen);
        assert!(
            !store.may_append_journal(),
            "its next save folds the journal in"
        );
    }

    #[test]
    fn over_a_hand_edit_of_the_same_plan_its_run_records_stand_and_the_edit_its_fields() {
        let (dir, store) = store();
        // A plan whose steps were hashed (every save of a runner records it).
        let plan = PLAN.replace("\"stepQueue\"", "\"planHash\":\"0123\",\"stepQueue\"");
        std::fs::write(store.path(), &plan).unwrap();
        let mut state = validate::parse(plan.as_bytes()).unwrap();
        store.rewritten();
        started(&mut state, "a");
        store
            .append_journal(plan.as_bytes(), &state, &["a".into()])
            .unwrap();
        // Edited by hand meanwhile, from the file as it was: paused, a note of its own.
        let edited = plan.replace("\"status\":\"IN_PROGRESS\"", "\"paused\":true,\"note\":1");
        let base = validate::parse(edited.as_bytes()).unwrap();
        // Any reader (a heartbeat, seqctl, the runner): the run records stand, the edit's
        // fields too.
        for reader in [Store::locate(store.path()).unwrap().unwrap(), store] {
            let mut read = base.clone();
            reader.replay_journal(edited.as_bytes(), &mut read).unwrap();
            assert_eq!(read.step_runs, state.step_runs);
            assert!(read.paused);
            assert_eq!(read.current_step, 0);
            assert!(read.extra.contains_key("note"));
            assert!(
                reader.journal_pending(),
                "the next save rewrites state.json"
            );
        }
        // A new plan written over it, even of the same steps, is not that plan's edit.
        let reader = Store::locate(&dir.path().join("state.json"))
            .unwrap()
            .unwrap();
        let fresh = validate::parse(PLAN.as_bytes()).unwrap();
        let mut read = fresh.clone();
        reader.replay_journal(PLAN.as_bytes(), &mut read).unwrap();
        assert_eq!(read, fresh);
    }

    #[test]
    fn a_line_that_would_not_pass_as_a_state_files_ends_the_journal() {
        let (_dir, store, state) = a_started();
        let good = state.clone();
        let mut bad = state.clone();
        bad.last_heartbeat_iso = Some("not a time".into());
        store.append_journal(PLAN.as_bytes(), &bad, &[]).unwrap();
        let mut read = validate::parse(PLAN.as_bytes()).unwrap();
        store.replay_journal(PLAN.as_bytes(), &mut read).unwrap();
        assert_eq!(read, good, "the lines before it stand, it does not");
        assert!(
            !store.may_note_in_journal(&vec![0; 1 << 20]),
            "it is folded, not added to"
        );
    }

    #[test]
    fn a_line_with_a_run_record_written_twice_ends_the_journal() {
        let (_dir, store) = store();
        let state = validate::parse(PLAN.as_bytes()).unwrap();
        store.rewritten();
        store.append_journal(PLAN.as_bytes(), &state, &[]).unwrap();
        let mut text = std::fs::read_to_string(store.journal_path()).unwrap();
        let line = r#"{"currentStep":0,"stepRuns":{"a":{"status":"DONE","tries":1},"a":{"status":"PENDING","tries":0}},"stepDelayMinutes":null,"blockers":null,"lastHeartbeatIso":null,"artifacts":null,"status":"IN_PROGRESS","finishedIso":null,"paused":false,"finishReported":false,"blockerReportedIso":null,"planHash":null}"#;
        text.push_str(line);
        text.push('\n');
        std::fs::write(store.journal_path(), text).unwrap();
        let mut read = validate::parse(PLAN.as_bytes()).unwrap();
        store.replay_journal(PLAN.as_bytes(), &mut read).unwrap();
        assert!(read.step_runs.is_empty(), "{:?}", read.step_runs);
    }
}
