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
//! mid-append, or grown past twice its items; a journal of a step whose items are gone (reset,
//! removed, a new plan) is removed once state.json no longer names them.
//!
//! A journal that is gone, empty, or not this expansion's while this process knows the
//! expansion (a runner, turn after turn) was not changed through the lock (such changes
//! append, or replace it with a valid one): what the process knew stands, and is written whole
//! at the next save. A link or fifo in its place is never read.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::layout::{self, Layout};
use super::safe::Dir;
use super::Store;
use crate::format::item_run::{ItemRun, Unread};
use crate::format::schema::{ItemRuns, State, StepRun, StepStatus};

/// The most bytes a journal may have: far more than `MAX_ITEMS` records need.
const MAX_JOURNAL_BYTES: u64 = 256 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    step: String,
    expanded: String,
    items: usize,
}

#[derive(Debug, Deserialize)]
struct Line {
    n: usize,
    run: StepRun,
}

#[derive(Serialize)]
struct LineOut<'a> {
    n: usize,
    run: &'a StepRun,
}

/// What this process knows of one journal on disk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    expanded: String,
    runs: Vec<ItemRun>,
    /// Its length as last read or written (another writer's append changes it).
    len: u64,
    lines: usize,
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
            let len = journal_len(&dir, &name);
            let known = cache
                .get(&id)
                .filter(|known| known.expanded == stamp && known.runs.len() == count);
            let fresh = match known {
                Some(known) if known.len == len && len > 0 => known.clone(),
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
                .is_none_or(|k| k.len != journal_len(&dir, &Layout::journal_name(id)))
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
            if known.expanded != *stamp || known.runs.len() != *count {
                known.rewrite = true;
            }
            let before = |n: usize| {
                if known.rewrite {
                    None
                } else {
                    known.runs.get(n)
                }
            };
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
            if known.rewrite || known.lines + changed.len() > 2 * count + 64 {
                let whole: Vec<ItemRun> = (0..*count)
                    .map(|n| {
                        if waits(n) { before(n) } else { runs.get(n) }
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect();
                write_whole(&dir, &name, id, stamp, &whole)?;
                *known = Known {
                    expanded: stamp.clone(),
                    lines: whole.iter().filter(|r| !r.is_empty()).count(),
                    runs: whole,
                    len: journal_len(&dir, &name),
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

fn journal_len(dir: &Dir, name: &str) -> u64 {
    dir.read_own(name)
        .and_then(|f| f.metadata())
        .map_or(0, |m| m.len())
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
        serde_json::to_writer(
            &mut text,
            &LineOut {
                n: n + 1,
                run: &run,
            },
        )?;
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
    known.lines += changed.len();
    Ok(())
}

/// Reads a journal: the last record of each item, or none if the journal is not this
/// expansion's (missing, stale header, unreadable header). A line in the writer's own shape is
/// kept unread but for its head (see `format::item_run`); any other is parsed now, and one
/// that does not parse is passed over (the item's earlier record stands).
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
    // Sized at once: a journal of ten thousand items is megabytes, read in one go.
    let size = file
        .metadata()
        .map_or(0, |m| m.len())
        .min(MAX_JOURNAL_BYTES);
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.take(MAX_JOURNAL_BYTES).read_to_end(&mut bytes)?;
    let bytes = Arc::new(bytes);
    let header_end = memchr::memchr(b'\n', &bytes).unwrap_or(bytes.len());
    let Ok(header) = serde_json::from_slice::<Header>(&bytes[..header_end]) else {
        return Ok(empty);
    };
    if header.expanded != stamp || header.items != count {
        return Ok(empty);
    }
    let mut known = Known {
        len: bytes.len() as u64,
        // A crash mid-append leaves a line without its newline: rewritten at the next save.
        rewrite: !bytes.ends_with(b"\n"),
        ..empty
    };
    let mut start = header_end + 1;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |at| start + at);
        let line = start..end;
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        let (n, run) = if let Some((n, body, status, tries)) = head(&bytes, line.clone()) {
            let unread = Unread::new(Arc::clone(&bytes), body, status, tries);
            (n, ItemRun::Unread(unread))
        } else if let Ok(Line { n, run }) = serde_json::from_slice::<Line>(&bytes[line]) {
            (n, ItemRun::from(run))
        } else {
            known.rewrite = true;
            continue;
        };
        if (1..=count).contains(&n) {
            known.runs[n - 1] = run;
            known.lines += 1;
        }
    }
    Ok(known)
}

/// The head of a line in the journal writer's own shape,
/// `{"n":<n>,"run":{"status":"<STATUS>","tries":<tries>...}}`: the item, where its record is,
/// its status and its tries. Anything else is no head (the line is parsed whole).
fn head(
    bytes: &[u8],
    line: std::ops::Range<usize>,
) -> Option<(usize, std::ops::Range<usize>, StepStatus, u32)> {
    let text = &bytes[line.clone()];
    let rest = text.strip_prefix(br#"{"n":"#)?;
    let (n, rest) = number(rest)?;
    let rest = rest.strip_prefix(br#","run":"#)?;
    let body_start = line.end - rest.len();
    let rest = rest.strip_prefix(br#"{"status":""#)?;
    let quote = rest.iter().position(|b| *b == b'"')?;
    let status = match &rest[..quote] {
        b"PENDING" => StepStatus::Pending,
        b"IN_PROGRESS" => StepStatus::InProgress,
        b"DONE" => StepStatus::Done,
        b"FAILED" => StepStatus::Failed,
        b"SKIPPED" => StepStatus::Skipped,
        _ => return None,
    };
    let rest = rest[quote..].strip_prefix(br#"","tries":"#)?;
    let (tries, rest) = number(rest)?;
    if !matches!(rest.first(), Some(b',' | b'}')) || !text.ends_with(b"}}") {
        return None;
    }
    Some((
        usize::try_from(n).ok()?,
        body_start..line.end - 1,
        status,
        u32::try_from(tries).ok()?,
    ))
}

/// A JSON number of plain digits at the start of `text`, and what follows it.
fn number(text: &[u8]) -> Option<(u64, &[u8])> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || (digits > 1 && text[0] == b'0') {
        return None;
    }
    let value = std::str::from_utf8(&text[..digits]).ok()?.parse().ok()?;
    Some((value, &text[digits..]))
}

/// Writes a journal whole: header, then one line per item that has a record.
fn write_whole(dir: &Dir, name: &str, id: &str, stamp: &str, runs: &[ItemRun]) -> Result<()> {
    let mut text = Vec::new();
    serde_json::to_writer(
        &mut text,
        &Header {
            step: id.to_owned(),
            expanded: stamp.to_owned(),
            items: runs.len(),
        },
    )?;
    text.push(b'\n');
    for (n, run) in runs.iter().enumerate() {
        if !run.is_empty() {
            let run = run.parsed();
            serde_json::to_writer(
                &mut text,
                &LineOut {
                    n: n + 1,
                    run: &run,
                },
            )?;
            text.push(b'\n');
        }
    }
    let temp = format!("{name}.new");
    let mut file = dir.create_new(&temp, false)?;
    file.write_all(&text)?;
    file.sync_all()?;
    dir.rename(&temp, name)?;
    dir.sync()?;
    Ok(())
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

    #[test]
    fn a_head_is_only_the_writers_exact_shape() {
        fn head_of(line: &str) -> Option<(usize, &str, StepStatus, u32)> {
            head(line.as_bytes(), 0..line.len()).map(|(n, body, s, t)| (n, &line[body], s, t))
        }
        assert_eq!(
            head_of(r#"{"n":12,"run":{"status":"SKIPPED","tries":0}}"#),
            Some((
                12,
                r#"{"status":"SKIPPED","tries":0}"#,
                StepStatus::Skipped,
                0
            ))
        );
        for other in [
            r#"{"n":012,"run":{"status":"DONE","tries":1}}"#,
            r#"{"n":1,"run":{"status":"DONE","tries":99999999999}}"#,
            r#"{"n":1,"run":{"status":"done","tries":1}}"#,
            r#"{"n":1,"run":{"status":"DONE","tries":1} }"#,
            r#"{"n":1,"run":{"status":"DONE","tries":1x}}"#,
            r#"{"n": 1,"run":{"status":"DONE","tries":1}}"#,
            r#"{"n":-1,"run":{"status":"DONE","tries":1}}"#,
        ] {
            assert_eq!(head_of(other), None, "{other}");
        }
    }
}
