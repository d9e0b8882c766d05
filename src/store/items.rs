//! The run records of `forEach` items, kept beside state.json in one journal per step
//! (`items/<step>.jsonl` in the sidecar), so that a try of one item of a thousand costs one
//! small append, not a rewrite of the whole state. state.json stays the summary: the step's
//! own record (its items' texts, its status) as before, readable by anything that reads it.
//!
//! A journal starts with a header line naming the step and when its items were made (the
//! step's `startedIso` then), so a journal left from an earlier expansion is never taken for
//! this one. Each later line is one item's whole run record after a change:
//! `{"n": <item, from 1>, "run": {...}}`; the last line of an item wins. A save appends the
//! records that changed, made durable (`fdatasync`), under the state lock like every write:
//! the records of tries that ended (or were reset) before state.json is replaced, since it may
//! build on them (a step done once its items are); those of tries that start after it, so a
//! kill between the two never shows a try started in a turn whose state.json was not written
//! (that try never ran, and the plan would show more in flight than `maxParallel`). A journal
//! is rewritten whole (temp file, fsync, rename) when it is new, stale, torn by a crash
//! mid-append, or has more lines appended than [`tail_limit`]; a journal of a step whose items
//! are gone (reset, removed, a new plan) is removed once state.json no longer names them.
//!
//! A journal written whole is compacted: after its header comes an index line, one entry per
//! item (its status, tries, and the length of its line), then each item's line in item order.
//! The header says how long the index is and where the compacted part ends, so a reader reads
//! the header, the index and the lines appended since, and not the records: a heartbeat on a
//! plan of ten thousand items that are over reads a hundred kilobytes, not their results. A
//! record is read from the file when something asks for it (see `format::item_run`). An index
//! that does not add up to its header is no index: the journal is then read line by line, as
//! one without an index is.
//!
//! A journal that is gone, empty, or not this expansion's while this process knows the
//! expansion (a runner, turn after turn) was not changed through the lock (such changes
//! append, or replace it with a valid one): what the process knew stands, and is written whole
//! at the next save. A link or fifo in its place is never read.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::layout::{self, Layout};
use super::safe::Dir;
use super::Store;
use crate::format::item_run::{self, Head, ItemRun, Lines, Source, Unread};
use crate::format::schema::{ItemRuns, State, StepRun, StepStatus};

/// The most bytes a journal may have: far more than `MAX_ITEMS` records need.
const MAX_JOURNAL_BYTES: u64 = 256 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    step: String,
    expanded: String,
    items: usize,
    /// A compacted journal's index: see [`Compacted`]. Read leniently: one that does not
    /// parse is no index (the lines are read one by one), not a journal of another expansion.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    compacted: Option<Compacted>,
}

fn lenient<'de, D: serde::Deserializer<'de>>(from: D) -> Result<Option<Compacted>, D::Error> {
    let value = serde_json::Value::deserialize(from)?;
    Ok(serde_json::from_value(value).ok())
}

/// Where the parts of a journal written whole are.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Compacted {
    /// The index line's length, its newline included; it follows the header's.
    index: usize,
    /// Where the compacted part ends: appended lines follow.
    end: u64,
}

/// The index line: `{"index":"<entry>,<entry>,..."}`, an entry per item: `-` for no record,
/// else its status's first letter (`I` for IN_PROGRESS), its tries, `.`, and its line's length
/// (newline included).
#[derive(Debug, Serialize, Deserialize)]
struct Index {
    index: String,
}

#[derive(Debug, Deserialize)]
struct Line {
    n: usize,
    run: StepRun,
}

/// Lines appended after the compacted part before the journal is written whole again: a
/// reader reads them all, so they are kept few next to the items (an eighth of them).
fn tail_limit(count: usize) -> usize {
    (count / 8).max(64)
}

/// What this process knows of one journal on disk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    expanded: String,
    runs: Vec<ItemRun>,
    /// Its length as last read or written (another writer's append changes it), and its
    /// inode (another writer's rewrite replaces it, perhaps with as many bytes).
    len: u64,
    ino: u64,
    /// The lines after its compacted part (all of them, in a journal without one).
    tail: usize,
    /// Stale, torn, or not there: the next save writes it whole.
    rewrite: bool,
    /// The items whose start a save held back until after state.json ([`Phase::Before`]):
    /// all that [`Phase::After`] has to look at, not every item again.
    held_back: Option<Vec<usize>>,
}

/// The journals as this process last read or wrote them, by step id.
pub(crate) type Cache = HashMap<String, Known>;

/// Which part of a save's item records to write: see the module's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Before state.json is replaced: every change but a try's start.
    Before,
    /// After it: the starts (and the journals of items that are gone).
    After,
    /// All of it, when state.json is left as it is: one append, the ends before the starts
    /// (a kill cannot cut a single write short; a power cut that tears it keeps a prefix).
    All,
}

/// The steps whose items are made (`stepRuns.<id>.items`), with their expansion stamp.
fn expanded(state: &State) -> Vec<(String, String, usize)> {
    state
        .plan
        .steps
        .iter()
        .filter(|(_, s)| s.for_each.is_some())
        .filter_map(|(id, _)| {
            let run = state.step_runs.get(id)?;
            let items = run.items.as_ref()?;
            Some((
                id.clone(),
                run.started_iso.clone().unwrap_or_default(),
                items.len(),
            ))
        })
        .collect()
}

impl Store {
    fn items_dir(&self) -> Result<Dir> {
        self.sidecar_dir()?
            .subdir(layout::ITEMS)
            .context("cannot open the items' folder")
    }

    /// Fills `state.items` from the journals (the state was just read).
    pub(crate) fn load_items(&self, state: &mut State) -> Result<()> {
        let steps = expanded(state);
        let mut cache = self.items_cache.borrow_mut();
        let mut runs = ItemRuns {
            loaded: true,
            by_step: indexmap::IndexMap::new(),
        };
        if steps.is_empty() {
            cache.clear();
            state.items = runs;
            return Ok(());
        }
        let dir = self.items_dir()?;
        cache.retain(|id, _| steps.iter().any(|(s, _, _)| s == id));
        for (id, stamp, count) in steps {
            let name = Layout::journal_name(&id);
            let (ino, len) = journal_id(&dir, &name);
            let known = cache
                .get(&id)
                .filter(|known| known.expanded == stamp && known.runs.len() == count);
            let fresh = match known {
                Some(known) if (known.ino, known.len) == (ino, len) && len > 0 => known.clone(),
                _ => {
                    let read = read_journal(&dir, &name, &stamp, count).with_context(|| {
                        format!(
                            "{}: cannot read",
                            self.layout().items().join(&name).display()
                        )
                    })?;
                    match known {
                        // Gone, emptied, or replaced by something not this expansion's: not
                        // a change anyone made through the lock (that appends), so what this
                        // process knew stands, and is written whole again at the next save.
                        // Read as no records, an item's try deleting its own journal would
                        // start that item again, untried, for ever.
                        Some(known) if read.len == 0 => Known {
                            rewrite: true,
                            ..known.clone()
                        },
                        _ => read,
                    }
                }
            };
            runs.by_step.insert(id.clone(), fresh.runs.clone());
            cache.insert(id, fresh);
        }
        state.items = runs;
        Ok(())
    }

    /// Whether a journal changed on disk since this process last read or wrote it.
    pub(crate) fn items_changed(&self, state: &State) -> bool {
        if !state.items.loaded {
            return false;
        }
        let cache = self.items_cache.borrow();
        let Ok(dir) = Dir::open(&self.layout().items()) else {
            return !cache.is_empty();
        };
        expanded(state).iter().any(|(id, _, _)| {
            cache
                .get(id)
                .is_none_or(|k| (k.ino, k.len) != journal_id(&dir, &Layout::journal_name(id)))
        })
    }

    /// Writes what changed in `state.items` to the journals, durably: in `phase`, the part of
    /// it that goes there (see the module's documentation).
    pub(crate) fn save_items(&self, state: &State, phase: Phase) -> Result<()> {
        if !state.items.loaded {
            return Ok(()); // read without them (a heartbeat while a runner works): untouched
        }
        let steps = expanded(state);
        let mut cache = self.items_cache.borrow_mut();
        if steps.is_empty() && cache.is_empty() && !self.layout().items().exists() {
            return Ok(());
        }
        let dir = self.items_dir()?;
        for (id, stamp, count) in &steps {
            let empty = Vec::new();
            let runs = state.items.by_step.get(id).unwrap_or(&empty);
            let name = Layout::journal_name(id);
            let known = cache.entry(id.clone()).or_insert_with(|| Known {
                rewrite: true,
                ..Known::default()
            });
            // What the journal holds for these items, as far as this process knows: nothing
            // for an expansion it did not read or write. A journal to be written whole for
            // its shape (torn, a long tail, gone while known) still holds its records, and a
            // try in flight keeps its own until its start is written after state.json.
            let same = known.expanded == *stamp && known.runs.len() == *count;
            if !same {
                known.rewrite = true;
            }
            let before = |n: usize| if same { known.runs.get(n) } else { None };
            // Before state.json, a try's start waits: the item keeps what the journal had.
            let waits = |n: usize| {
                phase == Phase::Before
                    && runs.get(n).is_some_and(|r| {
                        r.status() == StepStatus::InProgress && Some(r) != before(n)
                    })
            };
            let held_back = if phase == Phase::After {
                known.held_back.take()
            } else {
                None
            };
            let mut changed: Vec<usize> = match held_back {
                Some(held) if !known.rewrite => held
                    .into_iter()
                    .filter(|&n| runs.get(n) != known.runs.get(n))
                    .collect(),
                _ => (0..*count)
                    .filter(|&n| runs.get(n) != known.runs.get(n) && !waits(n))
                    .collect(),
            };
            if phase == Phase::All {
                // Ends first: a start never lands without the ends written beside it.
                changed.sort_by_key(|&n| {
                    runs.get(n)
                        .is_some_and(|r| r.status() == StepStatus::InProgress)
                });
            }
            let waiting: Option<Vec<usize>> =
                (phase == Phase::Before).then(|| (0..*count).filter(|&n| waits(n)).collect());
            if known.rewrite || known.tail + changed.len() > tail_limit(*count) {
                let whole: Vec<ItemRun> = (0..*count)
                    .map(|n| {
                        if waits(n) { before(n) } else { runs.get(n) }
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect();
                let (ino, len) = write_whole(&dir, &name, id, stamp, &whole)?;
                *known = Known {
                    expanded: stamp.clone(),
                    // As they are in the state (a runner keeps its state from turn to turn):
                    // the next save tells them unchanged without reading them.
                    runs: whole,
                    len,
                    ino,
                    tail: 0,
                    rewrite: false,
                    held_back: None,
                };
            } else if !changed.is_empty() {
                append(&dir, &name, runs, &changed, known)?;
            }
            known.held_back = waiting;
        }
        if phase == Phase::Before {
            return Ok(());
        }
        // Journals of steps whose items are gone: once state.json no longer names them.
        let gone: Vec<String> = cache
            .keys()
            .filter(|id| !steps.iter().any(|(s, _, _)| s == *id))
            .cloned()
            .collect();
        for id in gone {
            let _ = dir.remove(&Layout::journal_name(&id));
            cache.remove(&id);
        }
        Ok(())
    }
}

/// A journal's inode and length (none: 0 and 0).
fn journal_id(dir: &Dir, name: &str) -> (u64, u64) {
    dir.read_own(name)
        .and_then(|f| f.metadata())
        .map_or((0, 0), |m| (m.ino(), m.len()))
}

/// Appends the records of the items `changed` to a journal, durably, and notes them known.
fn append(
    dir: &Dir,
    name: &str,
    runs: &[ItemRun],
    changed: &[usize],
    known: &mut Known,
) -> Result<()> {
    let mut text = Vec::new();
    let none = ItemRun::default();
    for &n in changed {
        let run = runs.get(n).unwrap_or(&none).parsed();
        text.extend(item_run::line(n + 1, &run)?);
        text.push(b'\n');
    }
    let mut file = dir
        .open_kept(name, super::safe::Access::Append)
        .with_context(|| format!("cannot open the journal {name}"))?;
    file.write_all(&text)
        .and_then(|()| file.sync_data())
        .with_context(|| format!("cannot write the journal {name}"))?;
    for &n in changed {
        known.runs[n] = runs.get(n).cloned().unwrap_or_default();
    }
    known.len += text.len() as u64;
    known.tail += changed.len();
    Ok(())
}

/// Reads a journal: the last record of each item, or none if the journal is not this
/// expansion's (missing, stale header, unreadable header). A compacted journal is read by its
/// index, its records left in the file; the lines after it are read, and kept unread but for
/// their head when in the writer's own shape (see `format::item_run`). A line of any other
/// shape is parsed now, and one that does not parse is passed over (the item's earlier record
/// stands).
fn read_journal(dir: &Dir, name: &str, stamp: &str, count: usize) -> Result<Known> {
    let empty = Known {
        expanded: stamp.to_owned(),
        runs: vec![ItemRun::default(); count],
        rewrite: true,
        ..Known::default()
    };
    let file = match dir.read_own(name) {
        Ok(file) => file,
        // Missing, or a link or fifo planted in its place (never read): no journal, which the
        // next save writes whole over whatever is there.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData
            ) =>
        {
            return Ok(empty)
        }
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    let len = meta.len().min(MAX_JOURNAL_BYTES);
    let file = Arc::new(Journal(file));
    // The header line: short (a step id, a time), so within the first few kilobytes.
    let first = read_at(&file, 0, len.min(64 << 10))?;
    let Some(header_len) = memchr::memchr(b'\n', &first) else {
        return Ok(empty);
    };
    let Ok(header) = serde_json::from_slice::<Header>(&first[..header_len]) else {
        return Ok(empty);
    };
    if header.expanded != stamp || header.items != count {
        return Ok(empty);
    }
    let mut known = Known {
        len,
        ino: meta.ino(),
        rewrite: false,
        ..empty
    };
    let index_at = header_len as u64 + 1;
    let indexed = match header.compacted {
        Some(compacted) => read_index(&file, index_at, compacted, len, &mut known.runs)?,
        None => false,
    };
    let tail_at = match header.compacted {
        Some(compacted) if indexed => compacted.end,
        // None, or not what its header says: read line by line (the index line is passed
        // over, and the journal written whole at the next save), with nothing of the index
        // left behind.
        _ => {
            known.runs.fill(ItemRun::Empty);
            index_at
        }
    };
    let tail = Arc::new(read_at(&file, tail_at, len - tail_at)?);
    // A crash mid-append leaves a line without its newline: rewritten at the next save.
    known.rewrite = !tail.is_empty() && !tail.ends_with(b"\n");
    let mut start = 0;
    while start < tail.len() {
        let end = memchr::memchr(b'\n', &tail[start..]).map_or(tail.len(), |at| start + at);
        let line = start..end;
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        let head = Head::of(&tail[line.clone()]).and_then(|head| {
            let source = Source::Bytes(Arc::clone(&tail));
            Some((
                head.n,
                Unread::new(source, line.clone(), head.n, head.status, head.tries)?,
            ))
        });
        let (n, run) = if let Some((n, unread)) = head {
            (n, ItemRun::Unread(unread))
        } else if let Ok(Line { n, run }) = serde_json::from_slice::<Line>(&tail[line]) {
            (n, ItemRun::from(run))
        } else {
            known.rewrite = true;
            continue;
        };
        if (1..=count).contains(&n) {
            known.runs[n - 1] = run;
            known.tail += 1;
        }
    }
    // Many lines since it was written whole (or it never was): a reader that saves writes it
    // whole, so the next one reads little.
    known.rewrite |= known.tail > tail_limit(count);
    Ok(known)
}

/// Reads a compacted journal's index into `runs` (as records left in `file`): whether it adds
/// up, an entry per item and lines that end where the header says (if not, `runs` holds part
/// of it).
fn read_index(
    file: &Arc<Journal>,
    at: u64,
    compacted: Compacted,
    len: u64,
    runs: &mut [ItemRun],
) -> Result<bool> {
    let index_len = compacted.index as u64;
    // Within the file (and so never a huge read), whatever the header says.
    if at.saturating_add(index_len) > compacted.end || compacted.end > len {
        return Ok(false);
    }
    let bytes = read_at(file, at, index_len)?;
    let Some(Ok(Index { index })) = bytes
        .strip_suffix(b"\n")
        .map(serde_json::from_slice::<Index>)
    else {
        return Ok(false);
    };
    let mut offset = at + index_len;
    let mut entries = memchr::memchr_iter(b',', index.as_bytes())
        .chain([index.len()])
        .scan(0, |from, comma| {
            let entry = &index.as_bytes()[*from..comma];
            *from = comma + 1;
            Some(entry)
        });
    for (n, run) in runs.iter_mut().enumerate() {
        let Some(entry) = entries.next() else {
            return Ok(false);
        };
        if entry == b"-" {
            *run = ItemRun::Empty;
            continue;
        }
        let Some((status, tries, line_len)) = index_entry(entry) else {
            return Ok(false);
        };
        // The line without its newline.
        let end = offset.saturating_add(line_len - 1);
        let (Ok(start), Ok(end)) = (usize::try_from(offset), usize::try_from(end)) else {
            return Ok(false);
        };
        let source = Source::Elsewhere(Arc::clone(file) as Arc<dyn Lines>);
        let Some(unread) = Unread::new(source, start..end, n + 1, status, tries) else {
            return Ok(false);
        };
        *run = ItemRun::Unread(unread);
        offset = offset.saturating_add(line_len);
    }
    Ok(entries.next().is_none() && offset == compacted.end)
}

/// One entry of an index (see [`Index`]): a status, tries, and a line's length.
fn index_entry(entry: &[u8]) -> Option<(StepStatus, u32, u64)> {
    let (letter, rest) = entry.split_first()?;
    let status = match letter {
        b'P' => StepStatus::Pending,
        b'I' => StepStatus::InProgress,
        b'D' => StepStatus::Done,
        b'F' => StepStatus::Failed,
        b'S' => StepStatus::Skipped,
        _ => return None,
    };
    let (tries, rest) = item_run::number(rest)?;
    let (line_len, rest) = item_run::number(rest.strip_prefix(b".")?)?;
    // The shortest line is longer than `{}` and its newline.
    (rest.is_empty() && (3..=MAX_JOURNAL_BYTES).contains(&line_len)).then_some((
        status,
        u32::try_from(tries).ok()?,
        line_len,
    ))
}

/// The letter of a status in an index.
fn index_letter(status: StepStatus) -> char {
    match status {
        StepStatus::Pending => 'P',
        StepStatus::InProgress => 'I',
        StepStatus::Done => 'D',
        StepStatus::Failed => 'F',
        StepStatus::Skipped => 'S',
    }
}

/// A journal file, open: its compacted part is never written again (the file is replaced
/// whole, and this handle keeps reading the one it was), so a record is read from it when
/// something asks.
struct Journal(std::fs::File);

impl Lines for Journal {
    fn read(&self, range: std::ops::Range<usize>) -> Option<Vec<u8>> {
        let len = u64::try_from(range.len()).ok()?;
        let bytes = read_at(self, u64::try_from(range.start).ok()?, len).ok()?;
        (bytes.len() == range.len()).then_some(bytes)
    }
}

/// `len` bytes of `file` from `at` (fewer if it is shorter).
fn read_at(Journal(file): &Journal, at: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0; usize::try_from(len).unwrap_or(0)];
    let mut filled = 0;
    while filled < bytes.len() {
        match std::os::unix::fs::FileExt::read_at(file, &mut bytes[filled..], at + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// Writes a journal whole, compacted: header, index, then one line per item that has a
/// record, in item order. Returns its inode and length.
fn write_whole(
    dir: &Dir,
    name: &str,
    id: &str,
    stamp: &str,
    runs: &[ItemRun],
) -> Result<(u64, u64)> {
    let mut records = Vec::new();
    let mut index = String::with_capacity(runs.len() * 10);
    for (n, run) in runs.iter().enumerate() {
        if n > 0 {
            index.push(',');
        }
        if run.is_empty() {
            index.push('-');
            continue;
        }
        let start = records.len();
        // Copied as it was read, while its head is still this record's.
        match run.line_of().and_then(Unread::line) {
            Some((line, _)) => records.extend_from_slice(&line),
            None => records.extend(item_run::line(n + 1, &run.parsed())?),
        }
        records.push(b'\n');
        std::fmt::Write::write_fmt(
            &mut index,
            format_args!(
                "{}{}.{}",
                index_letter(run.status()),
                run.tries(),
                records.len() - start
            ),
        )?;
    }
    let mut index = serde_json::to_vec(&Index { index })?;
    index.push(b'\n');
    // The header holds where the compacted part ends, which depends on the header's own
    // length: grown until it holds still.
    let header = |end: usize| -> Result<Vec<u8>> {
        let mut text = serde_json::to_vec(&Header {
            step: id.to_owned(),
            expanded: stamp.to_owned(),
            items: runs.len(),
            compacted: Some(Compacted {
                index: index.len(),
                end: end as u64,
            }),
        })?;
        text.push(b'\n');
        Ok(text)
    };
    let mut head = header(0)?;
    loop {
        let again = header(head.len() + index.len() + records.len())?;
        let settled = again.len() == head.len();
        head = again;
        if settled {
            break;
        }
    }
    let records_at = head.len() + index.len();
    let temp = format!("{name}.new");
    let mut file = dir.create_new(&temp, true)?;
    file.write_all(&head)?;
    file.write_all(&index)?;
    file.write_all(&records)?;
    file.sync_all()?;
    dir.rename(&temp, name)?;
    dir.sync()?;
    Ok((file.metadata()?.ino(), (records_at + records.len()) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::validate;

    const PLAN: &str = r#"{"plan":{"steps":{"each":{"instruction":"do {{item}}",
        "forEach":{"from":"file:list.txt"}}}},"stepQueue":["each"],
        "stepRuns":{"each":{"status":"IN_PROGRESS","tries":0,
        "startedIso":"2026-01-01T00:00:00.000Z","items":["a","b"]}}}"#;

    fn run(status: StepStatus, tries: u32) -> ItemRun {
        ItemRun::from(StepRun {
            status,
            tries,
            ..StepRun::default()
        })
    }

    /// A store of `PLAN` in a temp folder, and its state with the items' records loaded.
    fn loaded() -> (tempfile::TempDir, Store, State) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, PLAN).unwrap();
        let store = Store::locate(&path).unwrap().unwrap();
        let mut state = validate::parse(PLAN.as_bytes()).unwrap();
        store.load_items(&mut state).unwrap();
        (dir, store, state)
    }

    /// The last record of each item in the journal on disk.
    fn on_disk(store: &Store, state: &State) -> Vec<(StepStatus, u32)> {
        let mut fresh = state.clone();
        store.items_cache.borrow_mut().clear();
        store.load_items(&mut fresh).unwrap();
        fresh.items.by_step["each"]
            .iter()
            .map(|r| (r.status(), r.parsed().tries))
            .collect()
    }

    #[test]
    fn a_try_that_starts_reaches_the_journal_only_after_state_json() {
        let (_dir, store, mut state) = loaded();
        let pending = (StepStatus::Pending, 0);

        // A new journal, written whole: item 1 ended, item 2 starts.
        state.items.by_step["each"] =
            vec![run(StepStatus::Done, 1), run(StepStatus::InProgress, 1)];
        store.save_items(&state, Phase::Before).unwrap();
        assert_eq!(on_disk(&store, &state), [(StepStatus::Done, 1), pending]);
        store.save_items(&state, Phase::After).unwrap();
        assert_eq!(
            on_disk(&store, &state),
            [(StepStatus::Done, 1), (StepStatus::InProgress, 1)]
        );

        // Appended: item 2 ended, item 1 starts again.
        state.items.by_step["each"] =
            vec![run(StepStatus::InProgress, 2), run(StepStatus::Done, 1)];
        store.save_items(&state, Phase::Before).unwrap();
        assert_eq!(
            on_disk(&store, &state),
            [(StepStatus::Done, 1), (StepStatus::Done, 1)]
        );
        store.save_items(&state, Phase::After).unwrap();
        assert_eq!(
            on_disk(&store, &state),
            [(StepStatus::InProgress, 2), (StepStatus::Done, 1)]
        );
    }

    #[test]
    fn with_state_json_left_as_it_is_ends_and_starts_go_in_one_append_ends_first() {
        let (_dir, store, mut state) = loaded();
        state.items.by_step["each"] =
            vec![run(StepStatus::Done, 1), run(StepStatus::InProgress, 1)];
        store.save_items(&state, Phase::All).unwrap();
        // Item 1 starts again as item 2 ends: the end is written first, the start after it.
        state.items.by_step["each"] =
            vec![run(StepStatus::InProgress, 2), run(StepStatus::Done, 1)];
        store.save_items(&state, Phase::All).unwrap();
        assert_eq!(
            on_disk(&store, &state),
            [(StepStatus::InProgress, 2), (StepStatus::Done, 1)]
        );
        let text = std::fs::read_to_string(store.layout().items().join("each.jsonl")).unwrap();
        let last: Vec<&str> = text.lines().rev().take(2).collect();
        assert!(
            last[1].contains("\"n\":2") && last[0].contains("\"n\":1"),
            "the end (item 2) must come before the start (item 1):\n{text}"
        );
    }

    #[test]
    fn the_writers_lines_are_kept_unread_and_read_back_as_written() {
        let (_dir, store, mut state) = loaded();
        let done = StepRun {
            status: StepStatus::Done,
            tries: 2,
            stdout: Some("ok \"quoted\"\nline".into()),
            ..StepRun::default()
        };
        state.items.by_step["each"] = vec![ItemRun::from(done.clone()), run(StepStatus::Failed, 1)];
        store.save_items(&state, Phase::All).unwrap();
        let mut fresh = state.clone();
        store.items_cache.borrow_mut().clear();
        store.load_items(&mut fresh).unwrap();
        let read = &fresh.items.by_step["each"];
        assert!(
            read.iter().all(|r| matches!(r, ItemRun::Unread(_))),
            "{read:?}"
        );
        assert_eq!(read[0].clone().into_parsed(), done);
        assert_eq!(*read, state.items.by_step["each"]);
    }

    #[test]
    fn a_line_of_another_shape_is_parsed_and_one_whose_body_is_broken_keeps_its_head() {
        let (_dir, store, state) = loaded();
        let journal = store.layout().items().join("each.jsonl");
        std::fs::create_dir_all(journal.parent().unwrap()).unwrap();
        std::fs::write(
            &journal,
            "{\"step\":\"each\",\"expanded\":\"2026-01-01T00:00:00.000Z\",\"items\":2}\n\
             {\"run\":{\"tries\":1,\"status\":\"DONE\",\"stdout\":\"a\"},\"n\":1}\n\
             {\"n\":2,\"run\":{\"status\":\"DONE\",\"tries\":3,\"stdout\":5}}\n",
        )
        .unwrap();
        let mut fresh = state.clone();
        store.items_cache.borrow_mut().clear();
        store.load_items(&mut fresh).unwrap();
        let read = &fresh.items.by_step["each"];
        assert!(matches!(read[0], ItemRun::Parsed(_)), "{read:?}");
        assert_eq!(read[0].parsed().stdout.as_deref(), Some("a"));
        let broken = read[1].clone().into_parsed();
        assert_eq!(
            (broken.status, broken.tries, broken.stdout),
            (StepStatus::Done, 3, None)
        );
    }

    /// The journal of `PLAN`'s step, fresh from disk: what a new process reads.
    fn read_fresh(store: &Store, state: &State) -> Known {
        let mut fresh = state.clone();
        store.items_cache.borrow_mut().clear();
        store.load_items(&mut fresh).unwrap();
        store.items_cache.borrow()["each"].clone()
    }

    fn journal(store: &Store) -> String {
        std::fs::read_to_string(store.layout().items().join("each.jsonl")).unwrap()
    }

    #[test]
    fn a_journal_written_whole_is_read_by_its_index_and_the_lines_appended_since() {
        let (_dir, store, mut state) = loaded();
        let first = StepRun {
            status: StepStatus::Done,
            tries: 1,
            stdout: Some("result of a".into()),
            ..StepRun::default()
        };
        state.items.by_step["each"] = vec![ItemRun::from(first.clone()), ItemRun::Empty];
        store.save_items(&state, Phase::All).unwrap();
        let text = journal(&store);
        assert!(
            text.lines().next().unwrap().contains(r#""compacted""#),
            "{text}"
        );
        let known = read_fresh(&store, &state);
        assert!(
            matches!(&known.runs[0], ItemRun::Unread(u) if u.line().is_some()),
            "{:?}",
            known.runs
        );
        assert_eq!(known.runs[0].clone().into_parsed(), first);
        assert_eq!((known.tail, known.rewrite), (0, false));

        // Item 2 runs and ends: appended after the compacted part, read from there.
        state.items.by_step["each"][1] = run(StepStatus::InProgress, 1);
        store.save_items(&state, Phase::All).unwrap();
        state.items.by_step["each"][1] = run(StepStatus::Done, 1);
        store.save_items(&state, Phase::All).unwrap();
        let known = read_fresh(&store, &state);
        assert_eq!(known.tail, 2);
        assert_eq!(known.runs[0].clone().into_parsed(), first);
        assert_eq!(known.runs[1].status(), StepStatus::Done);

        // Past the limit of appended lines, the next save writes it whole again.
        for tries in 2..=u32::try_from(tail_limit(2)).unwrap() {
            state.items.by_step["each"][1] = run(StepStatus::Done, tries);
            store.save_items(&state, Phase::All).unwrap();
        }
        let known = read_fresh(&store, &state);
        assert_eq!(known.tail, 0, "{}", journal(&store));
        assert_eq!(known.runs[1].tries(), u32::try_from(tail_limit(2)).unwrap());
        assert_eq!(known.runs[0].clone().into_parsed(), first);
    }

    #[test]
    fn an_index_that_does_not_add_up_is_passed_over_and_the_lines_are_read_one_by_one() {
        let (_dir, store, mut state) = loaded();
        state.items.by_step["each"] = vec![run(StepStatus::Done, 1), run(StepStatus::Failed, 2)];
        store.save_items(&state, Phase::All).unwrap();
        let good = journal(&store);
        let path = store.layout().items().join("each.jsonl");
        let (header, rest) = good.split_once('\n').unwrap();
        let (_, records) = rest.split_once('\n').unwrap();
        for (what, bad) in [
            (
                "an entry less",
                good.replacen("D1.", "", 1).replacen(",F", "F", 1),
            ),
            ("a length off", good.replacen("D1.", "D1.1", 1)),
            (
                "an end past the file",
                good.replacen(r#""end":"#, r#""end":9"#, 1),
            ),
            ("no index line", format!("{header}\n{records}")),
            (
                "an index longer than anything",
                good.replacen(
                    r#""compacted":{"index":"#,
                    r#""compacted":{"index":1844674407370955161"#,
                    1,
                ),
            ),
            ("a status that is none", good.replacen("D1.", "X1.", 1)),
        ] {
            std::fs::write(&path, &bad).unwrap();
            let known = read_fresh(&store, &state);
            let read: Vec<_> = known.runs.iter().map(|r| (r.status(), r.tries())).collect();
            assert_eq!(
                read,
                [(StepStatus::Done, 1), (StepStatus::Failed, 2)],
                "{what}:\n{bad}"
            );
        }
    }

    #[test]
    fn a_journal_written_whole_for_its_shape_keeps_the_try_in_flight_until_state_json() {
        // A journal of another shape (no index) with more lines than the tail limit: the next
        // save writes it whole. Item 2's try started in an earlier turn; if this save's
        // state.json write then fails (or the process is killed), the journal must still
        // show it, or the try would run again beside its agent.
        let (_dir, store, mut state) = loaded();
        let mut text = String::from(
            "{\"step\":\"each\",\"expanded\":\"2026-01-01T00:00:00.000Z\",\"items\":2}\n",
        );
        for tries in 1..=69 {
            let line = format!(r#"{{"n":1,"run":{{"status":"DONE","tries":{tries}}}}}"#);
            text.push_str(&line);
            text.push('\n');
        }
        text += "{\"n\":2,\"run\":{\"status\":\"IN_PROGRESS\",\"tries\":3}}\n";
        let path = store.layout().items().join("each.jsonl");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        store.items_cache.borrow_mut().clear();
        store.load_items(&mut state).unwrap();
        store.save_items(&state, Phase::Before).unwrap();
        assert!(journal(&store).contains(r#""compacted""#), "written whole");
        assert_eq!(
            on_disk(&store, &state),
            [(StepStatus::Done, 69), (StepStatus::InProgress, 3)]
        );
    }

    #[test]
    fn an_index_that_does_not_add_up_leaves_none_of_its_entries_behind() {
        let (_dir, store, mut state) = loaded();
        state.items.by_step["each"] = vec![run(StepStatus::Done, 1), ItemRun::Empty];
        store.save_items(&state, Phase::All).unwrap();
        let good = journal(&store);
        assert!(good.contains(r#"{"index":"D1.42,-"}"#), "{good}");
        // Item 2 has no record; the damaged index says it has one (and so does not add up).
        let bad = good
            .replacen(r#"{"index":"D1.42,-"}"#, r#"{"index":"D1.42,D1.3"}"#, 1)
            .replacen(
                r#""compacted":{"index":20,"#,
                r#""compacted":{"index":23,"#,
                1,
            );
        assert!(bad.contains(r#""index":23,"#), "the header's too: {bad}");
        std::fs::write(store.layout().items().join("each.jsonl"), bad).unwrap();
        let known = read_fresh(&store, &state);
        let read: Vec<_> = known.runs.iter().map(|r| (r.status(), r.tries())).collect();
        assert_eq!(read, [(StepStatus::Done, 1), (StepStatus::Pending, 0)]);
    }
}
