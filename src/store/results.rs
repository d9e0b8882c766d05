//! Steps' results, kept whole in the sidecar's `results/` folder so later steps can use them
//! (`{{steps.<id>.result}}`, `context`) and `seqctl result` can show them.
//!
//! A result is its successful try's stdout, or the file the step names as `resultFile`, up to
//! [`RESULT_MAX_BYTES`]; past that it is cut, with a line saying so. A try's candidate is
//! written to `<step>.<try>.out` while the agent runs (never held in memory), judged, and only
//! then renamed to `<step>.result`, made durable before the state records the step DONE. A
//! result is only ever used while its step is DONE, so a stale file (a step reset and run
//! again) is never taken for a new one. Files are opened as `safe` opens every sidecar file:
//! never through a link the agent planted.

use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::{Context as _, Result};

use super::layout::{self, Layout};
use super::safe::Dir;
use super::Store;

/// The most bytes of a result kept (1 MiB); the rest is cut, and the result says so.
pub const RESULT_MAX_BYTES: u64 = 1 << 20;

impl Store {
    /// The results folder, opened (made if missing), never through a link.
    pub fn results_dir(&self) -> Result<Dir> {
        let results = self.layout().results();
        self.sidecar_dir()?
            .subdir(layout::RESULTS)
            .with_context(|| format!("{}: cannot open the results folder", results.display()))
    }

    /// The results folder if it exists (a read-only view makes nothing).
    #[must_use]
    pub fn results_if_any(&self) -> Option<Dir> {
        Dir::open(&self.layout().results()).ok()
    }
}

/// The line that ends a result cut at the limit.
#[must_use]
pub fn cut_note(total: u64) -> String {
    format!(
        "\n[… the result was {total} bytes; only the first {} MiB is kept …]\n",
        RESULT_MAX_BYTES >> 20
    )
}

/// Reads a kept file (a result, a summary) as text, at most `RESULT_MAX_BYTES` and a note;
/// `None` when there is none. Bytes that are not UTF-8 are shown as `�`.
pub fn read(dir: &Dir, name: &str) -> io::Result<Option<String>> {
    let file = match dir.read_own(name) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(RESULT_MAX_BYTES + 4096).read_to_end(&mut bytes)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The result of `step`, if it has one.
pub fn result(dir: &Dir, step: &str) -> io::Result<Option<String>> {
    read(dir, &Layout::result_name(step))
}

/// The compress agent's summary of the result of `step`, if it made one.
pub fn summary(dir: &Dir, step: &str) -> io::Result<Option<String>> {
    read(dir, &Layout::summary_name(step))
}

/// Keeps a try's candidate (`<step>.<try>.out`) as the step's result, durably; its old summary
/// goes (it summarised the old result).
pub fn keep(dir: &Dir, step: &str, attempt: u32) -> io::Result<()> {
    let candidate = Layout::spool_name(step, attempt);
    dir.remove(&Layout::summary_name(step))?;
    match dir.read_own(&candidate) {
        Ok(file) => file.sync_all()?,
        // A silent try: its result is empty, which no file says as well (and costs no fsync).
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return dir.remove(&Layout::result_name(step));
        }
        Err(e) => return Err(e),
    }
    dir.rename(&candidate, &Layout::result_name(step))?;
    dir.sync()
}

/// Keeps the compress agent's summary of a result.
pub fn keep_summary(dir: &Dir, step: &str, text: &str) -> io::Result<()> {
    let name = Layout::summary_name(step);
    let temp = format!("{name}.new");
    let mut file = dir.create_new(&temp, false)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    dir.rename(&temp, &name)
}

/// Makes a try's candidate from the file the step names (`resultFile`), copied at most
/// [`RESULT_MAX_BYTES`]: the agent may change the file later, the result must not change.
pub fn copy_result_file(dir: &Dir, step: &str, attempt: u32, source: &Path) -> io::Result<()> {
    let mut from = super::read::open_regular(source)?;
    let mut to = dir.create_new(&Layout::spool_name(step, attempt), false)?;
    let copied = io::copy(&mut Read::by_ref(&mut from).take(RESULT_MAX_BYTES), &mut to)?;
    if copied == RESULT_MAX_BYTES {
        let rest = io::copy(&mut from, &mut io::sink())?;
        if rest > 0 {
            to.write_all(cut_note(copied + rest).as_bytes())?;
        }
    }
    Ok(())
}

/// Appends the cut note to a try's candidate whose stdout went past the limit.
pub fn note_cut(dir: &Dir, step: &str, attempt: u32, total: u64) -> io::Result<()> {
    let mut file = dir.open_kept(
        &Layout::spool_name(step, attempt),
        super::safe::Access::Append,
    )?;
    file.write_all(cut_note(total).as_bytes())
}

/// Removes a try's candidate (the try failed, or its result is not wanted).
pub fn discard(dir: &Dir, step: &str, attempt: u32) {
    let _ = dir.remove(&Layout::spool_name(step, attempt));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_becomes_the_result_and_replaces_the_summary() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        assert_eq!(result(&dir, "a/b").unwrap(), None);
        keep_summary(&dir, "a/b", "short").unwrap();
        assert_eq!(summary(&dir, "a/b").unwrap().as_deref(), Some("short"));
        dir.create_new(&Layout::spool_name("a/b", 2), false)
            .unwrap()
            .write_all(b"found \xff it")
            .unwrap();
        keep(&dir, "a/b", 2).unwrap();
        assert_eq!(
            result(&dir, "a/b").unwrap().as_deref(),
            Some("found \u{fffd} it")
        );
        assert_eq!(summary(&dir, "a/b").unwrap(), None, "the old summary went");
        assert!(!tmp.path().join(Layout::spool_name("a/b", 2)).exists());
    }

    #[test]
    fn a_result_file_is_copied_up_to_the_limit_and_a_planted_link_is_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let big = tmp.path().join("big.txt");
        std::fs::write(&big, vec![b'x'; RESULT_MAX_BYTES as usize + 10]).unwrap();
        copy_result_file(&dir, "s", 1, &big).unwrap();
        keep(&dir, "s", 1).unwrap();
        let text = result(&dir, "s").unwrap().unwrap();
        assert!(
            text.ends_with(&cut_note(RESULT_MAX_BYTES + 10)),
            "{}",
            &text[text.len() - 80..]
        );
        let secret = tmp.path().join("secret");
        std::fs::write(&secret, "key").unwrap();
        std::os::unix::fs::symlink(&secret, tmp.path().join(Layout::result_name("t"))).unwrap();
        assert!(result(&dir, "t").is_err());
    }
}
