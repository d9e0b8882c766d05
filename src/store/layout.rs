//! Where everything that belongs to a state file lives: one folder beside it, named after it
//! (`state.json` has `state.json.seq/`), so two plans in one workspace never collide. Every
//! file name in it is spelled here and nowhere else.
//!
//! Step ids come from an untrusted file, so a log's name is derived, never taken as given:
//! bytes outside `[A-Za-z0-9_-]` are %-escaped (so `../x` cannot climb out and distinct ids
//! never share a file), and a long id is shortened with a hash to stay within file-name limits.

use std::ffi::OsString;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The state lock: every read-modify-write of the state holds an exclusive flock on it.
pub const LOCK: &str = "lock";
/// The run lease (see `lease`).
pub const LEASE: &str = "lease";
/// The tries' own leases (see `lease::TryLease`).
pub const LEASES: &str = "leases";
/// The event log (see `events`), and its older generation.
pub const EVENTS: &str = "events.jsonl";
/// What detached runners print.
pub const RUNNER_LOG: &str = "runner.log";
/// Attempts' logs and prompt files.
pub const LOGS: &str = "logs";
/// `forEach` items' run records (see `items`).
pub const ITEMS: &str = "items";
/// The runner's saves in a burst of fast steps (see `journal`).
pub const JOURNAL: &str = "journal.jsonl";
/// Steps' results (see `results`).
pub const RESULTS: &str = "results";
/// Temp files of a save: `state.XXXXXX.tmp`.
pub const TEMP_PREFIX: &str = "state.";
pub const TEMP_SUFFIX: &str = ".tmp";

/// The sidecar folder of a state file at `path` (in the same directory).
#[must_use]
pub fn sidecar_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(".seq");
    path.with_file_name(name)
}

/// The sidecar's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The sidecar folder itself.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    #[must_use]
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The log folder.
    #[must_use]
    pub fn logs(&self) -> PathBuf {
        self.dir.join(LOGS)
    }

    /// The log file of one attempt of one step.
    #[must_use]
    pub fn attempt_log(&self, step: &str, attempt: u32) -> PathBuf {
        self.logs().join(Self::attempt_log_name(step, attempt))
    }

    /// The log's name in the log folder.
    #[must_use]
    pub fn attempt_log_name(step: &str, attempt: u32) -> String {
        format!("{}.{attempt}.log", file_stem(step))
    }

    /// The file holding an attempt's prompt, for `{prompt_file}`.
    #[must_use]
    pub fn prompt_file(&self, step: &str, attempt: u32) -> PathBuf {
        self.logs().join(Self::prompt_name(step, attempt))
    }

    /// The prompt file's name in the log folder.
    #[must_use]
    pub fn prompt_name(step: &str, attempt: u32) -> String {
        format!("{}.{attempt}.prompt", file_stem(step))
    }

    /// The items folder.
    #[must_use]
    pub fn items(&self) -> PathBuf {
        self.dir.join(ITEMS)
    }

    /// A `forEach` step's journal's name in the items folder.
    #[must_use]
    pub fn journal_name(step: &str) -> String {
        format!("{}.jsonl", file_stem(step))
    }

    /// A step's try lease's name in the leases folder.
    #[must_use]
    pub fn try_lease_name(step: &str) -> String {
        format!("{}.lease", file_stem(step))
    }

    /// The results folder.
    #[must_use]
    pub fn results(&self) -> PathBuf {
        self.dir.join(RESULTS)
    }

    /// A step's result's name in the results folder.
    #[must_use]
    pub fn result_name(step: &str) -> String {
        format!("{}.result", file_stem(step))
    }

    /// The name of the compress agent's summary of a step's result.
    #[must_use]
    pub fn summary_name(step: &str) -> String {
        format!("{}.summary", file_stem(step))
    }

    /// The name of the file a try's stdout is kept in until it is judged.
    #[must_use]
    pub fn spool_name(step: &str, attempt: u32) -> String {
        format!("{}.{attempt}.out", file_stem(step))
    }

    /// The log and prompt file names of a helper agent's turn for a try (`verify`) or for a
    /// result (`compress`): `<step>.<try>.verify.log`, `<step>.compress.log`.
    #[must_use]
    pub fn helper_names(step: &str, attempt: Option<u32>, what: &str) -> (String, String) {
        let base = match attempt {
            Some(attempt) => format!("{}.{attempt}.{what}", file_stem(step)),
            None => format!("{}.{what}", file_stem(step)),
        };
        (format!("{base}.log"), format!("{base}.prompt"))
    }

    /// The older generation of a rotated file (`events.jsonl.1`, `runner.log.1`).
    #[must_use]
    pub fn rotated(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".1");
        name.into()
    }
}

/// A file-name-safe, collision-free stem for a step id.
#[must_use]
pub fn file_stem(id: &str) -> String {
    let mut stem = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            stem.push(char::from(byte));
        } else {
            let _ = write!(stem, "%{byte:02X}");
        }
    }
    if stem.len() > 120 {
        stem.truncate(80);
        let _ = write!(stem, "~{:016x}", fnv1a(id.as_bytes()));
    }
    stem
}

/// FNV-1a: a stable hash (std's hasher may change between Rust releases; file names must not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_safe_and_distinct() {
        assert_eq!(file_stem("step-1"), "step-1");
        assert_eq!(file_stem("../etc/passwd"), "%2E%2E%2Fetc%2Fpasswd");
        assert_ne!(file_stem("a/b"), file_stem("a_b"));
        assert_eq!(file_stem("é"), "%C3%A9");
        let long = "x".repeat(200);
        let stem = file_stem(&long);
        assert!(stem.len() <= 100 && stem.starts_with("xxxx"), "{stem}");
        assert_ne!(stem, file_stem(&"x".repeat(199)));
    }

    #[test]
    fn every_file_is_in_the_sidecar() {
        assert_eq!(
            sidecar_of(Path::new("/w/state.json")),
            Path::new("/w/state.json.seq")
        );
        let layout = Layout::new(PathBuf::from("/w/state.json.seq"));
        assert_eq!(
            layout.attempt_log("a b", 2),
            Path::new("/w/state.json.seq/logs/a%20b.2.log")
        );
        assert_eq!(
            layout.prompt_file("a", 1),
            Path::new("/w/state.json.seq/logs/a.1.prompt")
        );
        assert_eq!(
            Layout::rotated(Path::new("/x/events.jsonl")),
            Path::new("/x/events.jsonl.1")
        );
    }
}
