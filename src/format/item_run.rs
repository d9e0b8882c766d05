//! One `forEach` item's run record, as its journal line holds it (see `store::items`).
//!
//! A big plan's items are mostly over, and for them the rules ask no more than the status and
//! the tries: a heartbeat on a plan of ten thousand items that parsed every record whole spent
//! most of its time on it. So a line in the journal writer's own shape is kept as the bytes it
//! was read from, with its status and tries read from its head, and parsed whole only when
//! something asks for more (its result, its times, its error).
//!
//! What a line that is not what its head says turns into: its head stands (the status and
//! tries the rules went by), and the rest of the record is empty. Only a hand-edited or forged
//! journal has such a line; the writer's lines always parse.

use std::ops::Range;
use std::sync::Arc;

use super::schema::{StepRun, StepStatus};

/// An item's run record: none yet, read whole, or not read yet. Small (the whole record is
/// boxed), since a plan holds one per item, twice.
#[derive(Debug, Clone, Default)]
pub enum ItemRun {
    /// No record: the item was never tried (or was reset).
    #[default]
    Empty,
    Parsed(Box<StepRun>),
    Unread(Unread),
}

impl From<StepRun> for ItemRun {
    fn from(run: StepRun) -> Self {
        Self::Parsed(Box::new(run))
    }
}

/// A record not parsed yet: where it is in the bytes it was read with, and its head.
#[derive(Clone)]
pub struct Unread {
    bytes: Arc<Vec<u8>>,
    /// The record's JSON object in `bytes`.
    body: Range<usize>,
    status: StepStatus,
    tries: u32,
}

impl std::fmt::Debug for Unread {
    // Not the bytes: they are the whole journal the record was read with.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unread")
            .field("status", &self.status)
            .field("tries", &self.tries)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

impl Unread {
    /// The record whose JSON object is `bytes[body]`, whose head says `status` and `tries`.
    #[must_use]
    pub fn new(bytes: Arc<Vec<u8>>, body: Range<usize>, status: StepStatus, tries: u32) -> Self {
        Self {
            bytes,
            body,
            status,
            tries,
        }
    }

    #[must_use]
    pub fn status(&self) -> StepStatus {
        self.status
    }

    #[must_use]
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// The whole record. The head stands whatever the rest says (see the module's
    /// documentation).
    #[must_use]
    pub fn parse(&self) -> StepRun {
        let body = self.bytes.get(self.body.clone()).unwrap_or_default();
        let mut run: StepRun = serde_json::from_slice(body).unwrap_or_default();
        run.status = self.status;
        run.tries = self.tries;
        run
    }

    /// Whether both are the same bytes: the same record, without reading it.
    fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.bytes, &other.bytes) && self.body == other.body
    }
}

impl ItemRun {
    #[must_use]
    pub fn status(&self) -> StepStatus {
        match self {
            Self::Empty => StepStatus::default(),
            Self::Parsed(run) => run.status,
            Self::Unread(unread) => unread.status,
        }
    }

    /// The whole record, parsed now if it was not.
    #[must_use]
    pub fn into_parsed(self) -> StepRun {
        match self {
            Self::Empty => StepRun::default(),
            Self::Parsed(run) => *run,
            Self::Unread(unread) => unread.parse(),
        }
    }

    /// The whole record, borrowed if it was parsed.
    #[must_use]
    pub fn parsed(&self) -> std::borrow::Cow<'_, StepRun> {
        match self {
            Self::Empty => std::borrow::Cow::Owned(StepRun::default()),
            Self::Parsed(run) => std::borrow::Cow::Borrowed(run),
            Self::Unread(unread) => std::borrow::Cow::Owned(unread.parse()),
        }
    }

    /// Whether it is no record at all (an item never tried, or reset).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Parsed(run) => **run == StepRun::default(),
            Self::Unread(_) => false,
        }
    }
}

impl PartialEq for ItemRun {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Unread(a), Self::Unread(b)) if a.same(b) => true,
            (Self::Empty, Self::Empty) => true,
            (Self::Parsed(a), Self::Parsed(b)) => a == b,
            _ => self.parsed() == other.parsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unread(text: &str) -> Unread {
        let bytes = Arc::new(text.as_bytes().to_vec());
        Unread::new(bytes, 0..text.len(), StepStatus::Done, 1)
    }

    #[test]
    fn a_record_is_parsed_when_asked_and_equals_its_parsed_self() {
        let text = r#"{"status":"DONE","tries":1,"stdout":"ok"}"#;
        let lazy = ItemRun::Unread(unread(text));
        let parsed = lazy.clone().into_parsed();
        assert_eq!(parsed.stdout.as_deref(), Some("ok"));
        assert_eq!(lazy, ItemRun::from(parsed));
        assert!(!lazy.is_empty());
    }

    #[test]
    fn a_body_that_does_not_parse_leaves_its_head_and_nothing_else() {
        let lazy = unread(r#"{"status":"DONE","tries":1,"stdout":"ok",oops}"#);
        let run = lazy.parse();
        assert_eq!(
            (run.status, run.tries, run.stdout),
            (StepStatus::Done, 1, None)
        );
    }

    #[test]
    fn the_head_stands_over_a_body_that_says_otherwise() {
        let lazy = unread(r#"{"status":"FAILED","tries":7}"#);
        let run = lazy.parse();
        assert_eq!((run.status, run.tries), (StepStatus::Done, 1));
    }
}
