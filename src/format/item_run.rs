//! One `forEach` item's run record, as its journal line holds it (see `store::items`), and the
//! shape of that line: `{"n":<item, from 1>,"run":{"status":"<STATUS>","tries":<n>,...}}`.
//!
//! A big plan's items are mostly over, and for them the rules ask no more than the status and
//! the tries: a heartbeat on a plan of ten thousand items that parsed every record whole spent
//! most of its time on it. So a record is kept unread, with its status and tries from its
//! head (or from the journal's index), and its line is read and parsed whole only when
//! something asks for more (its result, its times, its error).
//!
//! What a line that is not what its head says turns into: its head stands (the status and
//! tries the rules went by), and the rest of the record is empty. Only a hand-edited or forged
//! journal has such a line; the writer's lines always parse.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use super::schema::{StepRun, StepStatus};

/// An item's run record: none yet, read whole, not read yet, or read from its line and kept.
/// Small (a whole record is boxed), since a plan holds one per item, twice.
#[derive(Debug, Clone, Default)]
pub enum ItemRun {
    /// No record: the item was never tried (or was reset).
    #[default]
    Empty,
    Parsed(Box<StepRun>),
    Unread(Unread),
    /// Its line, and the record read from it: still that line (so a save tells it unchanged
    /// without reading it), and not read again. A runner keeps its state from turn to turn,
    /// and the rules ask for a FAILED item's error and end on every one.
    Kept(Box<(Unread, StepRun)>),
}

impl From<StepRun> for ItemRun {
    fn from(run: StepRun) -> Self {
        Self::Parsed(Box::new(run))
    }
}

/// Where an unread record's line is.
#[derive(Clone)]
pub enum Source {
    /// In bytes read already (the journal's tail).
    Bytes(Arc<Vec<u8>>),
    /// Elsewhere, read when asked: the compacted part of a journal file, which the store reads
    /// (this layer does no I/O).
    Elsewhere(Arc<dyn Lines>),
}

/// Bytes kept out of memory, read when asked: see [`Source::Elsewhere`].
pub trait Lines: Send + Sync {
    /// The bytes at `range`, or none if they cannot be read whole.
    fn read(&self, range: Range<usize>) -> Option<Vec<u8>>;
}

/// A record not parsed yet: where its line is, and its head.
#[derive(Clone)]
pub struct Unread {
    source: Source,
    /// The line, without its newline: in the bytes, or in the file.
    /// (u32: a journal is at most 256 MiB, and a plan's items at most 100,000; a plan holds a
    /// record per item, so they are kept small.)
    line: Range<u32>,
    /// The item it is of, from 1: a line read later must say so.
    n: u32,
    status: StepStatus,
    tries: u32,
}

impl std::fmt::Debug for Unread {
    // Not the bytes: they are the whole journal the record was read with.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unread")
            .field("n", &self.n)
            .field("status", &self.status)
            .field("tries", &self.tries)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

/// What a line's head says: the item, where its record is in the line, its status and tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub n: usize,
    pub body: Range<usize>,
    pub status: StepStatus,
    pub tries: u32,
}

impl Head {
    /// The head of a line in the writer's own shape; anything else has none (and is parsed
    /// whole, as any JSON).
    #[must_use]
    pub fn of(line: &[u8]) -> Option<Self> {
        let rest = line.strip_prefix(br#"{"n":"#)?;
        let (n, rest) = number(rest)?;
        let rest = rest.strip_prefix(br#","run":"#)?;
        let body_start = line.len() - rest.len();
        let rest = rest.strip_prefix(br#"{"status":""#)?;
        let quote = memchr::memchr(b'"', rest)?;
        let status = status_of(&rest[..quote])?;
        let rest = rest[quote..].strip_prefix(br#"","tries":"#)?;
        let (tries, rest) = number(rest)?;
        if !matches!(rest.first(), Some(b',' | b'}')) || !line.ends_with(b"}}") {
            return None;
        }
        Some(Self {
            n: usize::try_from(n).ok()?,
            body: body_start..line.len() - 1,
            status,
            tries: u32::try_from(tries).ok()?,
        })
    }
}

/// A status as the file spells it.
#[must_use]
fn status_of(word: &[u8]) -> Option<StepStatus> {
    Some(match word {
        b"PENDING" => StepStatus::Pending,
        b"IN_PROGRESS" => StepStatus::InProgress,
        b"DONE" => StepStatus::Done,
        b"FAILED" => StepStatus::Failed,
        b"SKIPPED" => StepStatus::Skipped,
        _ => return None,
    })
}

/// A JSON number of plain digits at the start of `text`, and what follows it.
#[must_use]
pub fn number(text: &[u8]) -> Option<(u64, &[u8])> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    // At most 19 digits: always within a u64.
    if digits == 0 || digits > 19 || (digits > 1 && text[0] == b'0') {
        return None;
    }
    let value = text[..digits]
        .iter()
        .fold(0, |value, digit| value * 10 + u64::from(digit - b'0'));
    Some((value, &text[digits..]))
}

/// A journal line for item `n` (from 1), without its newline.
///
/// # Errors
/// Never in practice: a record is plain data.
pub fn line(n: usize, run: &StepRun) -> serde_json::Result<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        n: usize,
        run: &'a StepRun,
    }
    serde_json::to_vec(&Line { n, run })
}

impl Unread {
    /// The record of item `n` whose line is `line` in `source`, its head saying `status` and
    /// `tries`.
    /// `None` if the line is past 4 GiB or the item past 2^32 (neither is ever so).
    #[must_use]
    pub fn new(
        source: Source,
        line: Range<usize>,
        n: usize,
        status: StepStatus,
        tries: u32,
    ) -> Option<Self> {
        Some(Self {
            source,
            line: u32::try_from(line.start).ok()?..u32::try_from(line.end).ok()?,
            n: u32::try_from(n).ok()?,
            status,
            tries,
        })
    }

    #[must_use]
    pub fn status(&self) -> StepStatus {
        self.status
    }

    #[must_use]
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// The line, if it can be read and is still this record's (the item, status and tries its
    /// head says are the ones it was kept with).
    #[must_use]
    pub fn line(&self) -> Option<(Cow<'_, [u8]>, Head)> {
        let line = self.line.start as usize..self.line.end as usize;
        let bytes: Cow<'_, [u8]> = match &self.source {
            Source::Bytes(bytes) => Cow::Borrowed(bytes.get(line)?),
            Source::Elsewhere(lines) => Cow::Owned(lines.read(line)?),
        };
        let head = Head::of(&bytes).filter(|h| {
            h.n == self.n as usize && h.status == self.status && h.tries == self.tries
        })?;
        Some((bytes, head))
    }

    /// The whole record. The head stands whatever the rest says (see the module's
    /// documentation).
    #[must_use]
    pub fn parse(&self) -> StepRun {
        let mut run: StepRun = self
            .line()
            .and_then(|(bytes, head)| serde_json::from_slice(&bytes[head.body]).ok())
            .unwrap_or_default();
        run.status = self.status;
        run.tries = self.tries;
        run
    }

    /// Whether both are the same line: the same record, without reading it.
    fn same(&self, other: &Self) -> bool {
        let source = match (&self.source, &other.source) {
            (Source::Bytes(a), Source::Bytes(b)) => Arc::ptr_eq(a, b),
            (Source::Elsewhere(a), Source::Elsewhere(b)) => {
                std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
            }
            _ => false,
        };
        source && self.line == other.line
    }
}

impl ItemRun {
    #[must_use]
    pub fn status(&self) -> StepStatus {
        match self {
            Self::Empty => StepStatus::default(),
            Self::Parsed(run) => run.status,
            Self::Unread(unread) => unread.status,
            Self::Kept(kept) => kept.1.status,
        }
    }

    #[must_use]
    pub fn tries(&self) -> u32 {
        match self {
            Self::Empty => 0,
            Self::Parsed(run) => run.tries,
            Self::Unread(unread) => unread.tries,
            Self::Kept(kept) => kept.1.tries,
        }
    }

    /// The line it is, if it is one.
    #[must_use]
    pub fn line_of(&self) -> Option<&Unread> {
        match self {
            Self::Unread(unread) => Some(unread),
            Self::Kept(kept) => Some(&kept.0),
            Self::Empty | Self::Parsed(_) => None,
        }
    }

    /// The whole record, parsed now if it was not.
    #[must_use]
    pub fn into_parsed(self) -> StepRun {
        match self {
            Self::Empty => StepRun::default(),
            Self::Parsed(run) => *run,
            Self::Unread(unread) => unread.parse(),
            Self::Kept(kept) => kept.1,
        }
    }

    /// The whole record, borrowed if it was parsed.
    #[must_use]
    pub fn parsed(&self) -> Cow<'_, StepRun> {
        match self {
            Self::Empty => Cow::Owned(StepRun::default()),
            Self::Parsed(run) => Cow::Borrowed(run),
            Self::Unread(unread) => Cow::Owned(unread.parse()),
            Self::Kept(kept) => Cow::Borrowed(&kept.1),
        }
    }

    /// Whether it is no record at all (an item never tried, or reset).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Parsed(run) => **run == StepRun::default(),
            Self::Unread(_) | Self::Kept(_) => false,
        }
    }
}

impl PartialEq for ItemRun {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Empty, Self::Empty) => true,
            (Self::Parsed(a), Self::Parsed(b)) => a == b,
            _ => match (self.line_of(), other.line_of()) {
                (Some(a), Some(b)) if a.same(b) => true,
                _ => self.parsed() == other.parsed(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unread(text: &str) -> Unread {
        let head = Head::of(text.as_bytes()).expect("a head");
        let bytes = Arc::new(text.as_bytes().to_vec());
        Unread::new(
            Source::Bytes(bytes),
            0..text.len(),
            1,
            head.status,
            head.tries,
        )
        .unwrap()
    }

    #[test]
    fn a_record_is_parsed_when_asked_and_equals_its_parsed_self() {
        let text = r#"{"n":1,"run":{"status":"DONE","tries":1,"stdout":"ok"}}"#;
        let lazy = ItemRun::Unread(unread(text));
        let parsed = lazy.clone().into_parsed();
        assert_eq!(parsed.stdout.as_deref(), Some("ok"));
        assert_eq!(lazy, ItemRun::from(parsed.clone()));
        assert!(!lazy.is_empty());
        assert_eq!(line(1, &parsed).unwrap(), text.as_bytes());
    }

    #[test]
    fn a_body_that_does_not_parse_leaves_its_head_and_nothing_else() {
        let lazy = unread(r#"{"n":1,"run":{"status":"DONE","tries":1,"stdout":"ok",oops}}"#);
        let run = lazy.parse();
        assert_eq!(
            (run.status, run.tries, run.stdout),
            (StepStatus::Done, 1, None)
        );
    }

    #[test]
    fn a_line_that_is_no_longer_the_one_kept_leaves_the_head_kept() {
        // Read from a file that was changed in place since (by hand): another item's line.
        struct Changed;
        impl Lines for Changed {
            fn read(&self, _: Range<usize>) -> Option<Vec<u8>> {
                Some(br#"{"n":2,"run":{"status":"FAILED","tries":7,"stdout":"x"}}"#.to_vec())
            }
        }
        let lazy = Unread::new(
            Source::Elsewhere(Arc::new(Changed)),
            0..57,
            1,
            StepStatus::Done,
            1,
        )
        .unwrap();
        assert!(lazy.line().is_none());
        let run = lazy.parse();
        assert_eq!(
            (run.status, run.tries, run.stdout),
            (StepStatus::Done, 1, None)
        );
    }

    #[test]
    fn a_head_is_only_the_writers_exact_shape() {
        fn head_of(line: &str) -> Option<(usize, &str, StepStatus, u32)> {
            Head::of(line.as_bytes()).map(|h| (h.n, &line[h.body], h.status, h.tries))
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
            r#"{"run":{"status":"DONE","tries":1},"n":1}"#,
        ] {
            assert_eq!(head_of(other), None, "{other}");
        }
    }
}
