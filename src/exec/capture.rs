//! Keeping an agent's output in flat memory, whatever it prints.
//!
//! Output streams straight to a per-attempt log file, so nothing is lost if the runner dies.
//! The log is capped: the first `head` bytes go to the log as they come; later bytes go to a
//! ring file of `tail` bytes beside it (written in place, never held in memory); when the try
//! ends the ring is appended in order, after a line saying how much was cut. Memory use is one
//! read buffer (see `pipes`) plus a few KiB of tail for the state file's `stdout` and `error`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use crate::store::safe::Dir;

/// Bytes of each stream kept in memory for `stdout` / `error` (500 characters need at most 2000).
pub const TAIL_KEEP: usize = 2048;
/// Default cap: 4 MiB from the start of the output and 4 MiB from its end.
pub const HEAD_BYTES: u64 = 4 << 20;
pub const TAIL_BYTES: u64 = 4 << 20;

/// A log file capped at `head + tail` bytes, created when the agent first prints (a try that
/// prints nothing leaves no file: creating one costs an inode for nothing). It and its ring are
/// made new in the log folder, never opened where they stand (see `store::safe`: the agent
/// could have put a link there).
#[derive(Debug)]
pub struct CappedLog {
    dir: Dir,
    name: String,
    log: Option<File>,
    ring_name: String,
    ring: Option<File>,
    head: u64,
    tail: u64,
    /// Everything written so far, head and ring together.
    total: u64,
    /// The first write error; draining goes on so the agent never blocks on a full pipe.
    error: Option<String>,
}

impl CappedLog {
    /// A log to be written as `name` in `dir`; whatever an earlier try of that number left
    /// there (a plan reset by hand) is removed now, so the file, if any, is this try's.
    pub fn create(dir: Dir, name: &str, head: u64, tail: u64) -> io::Result<Self> {
        dir.remove(name)?;
        Ok(Self {
            dir,
            name: name.to_owned(),
            log: None,
            ring_name: format!("{name}.tail"),
            ring: None,
            head,
            tail,
            total: 0,
            error: None,
        })
    }

    /// The log file, created (owner-only: agents print secrets too) on first use.
    fn file(&mut self) -> io::Result<&mut File> {
        if self.error.is_none() && crate::store::faults::injected("log-write") {
            return Err(io::Error::other("injected fault"));
        }
        if self.log.is_none() {
            self.log = Some(self.dir.create_new(&self.name, false)?);
        }
        Ok(self.log.as_mut().expect("just opened"))
    }

    pub fn write(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let inner = self;
        if inner.total < inner.head {
            let room = (inner.head - inner.total).min(data.len() as u64) as usize;
            if let Err(e) = inner.file().and_then(|log| log.write_all(&data[..room])) {
                inner.error.get_or_insert(e.to_string());
            }
            inner.total += room as u64;
            data = &data[room..];
        }
        if data.is_empty() || inner.tail == 0 {
            inner.total += data.len() as u64;
            return;
        }
        if let Err(e) = inner.write_ring(data) {
            inner.error.get_or_insert(e.to_string());
        }
        inner.total += data.len() as u64;
    }

    /// Puts the ring's bytes in order at the end of the log and removes the ring file.
    /// Returns the total bytes the agent printed and the first write error, if any.
    pub fn finish(&mut self) -> (u64, Option<String>) {
        let inner = self;
        if let Err(e) = inner.unwind_ring() {
            inner.error.get_or_insert(e.to_string());
        }
        if let Some(error) = inner.error.clone() {
            // Say where the log stops being whole (if even this line can be written).
            if let Ok(log) = inner.file() {
                let _ = writeln!(
                    log,
                    "\n[seq-runner: the log could not be written in full ({error}); output is missing from it]"
                );
            }
        }
        if let Some(log) = inner.log.as_mut() {
            let _ = log.flush();
        }
        inner.head = inner.total; // later writes (a straggler) go nowhere harmful
        inner.tail = 0;
        (inner.total, inner.error.clone())
    }
}

impl CappedLog {
    fn write_ring(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.ring.is_none() {
            self.ring = Some(self.dir.create_new(&self.ring_name, true)?);
        }
        let ring = self.ring.as_ref().expect("just opened");
        let mut pos = self.total - self.head;
        // Only the last `tail` bytes of a large write can survive in the ring.
        if data.len() as u64 > self.tail {
            pos += data.len() as u64 - self.tail;
            data = &data[data.len() - self.tail as usize..];
        }
        while !data.is_empty() {
            let at = pos % self.tail;
            let n = ((self.tail - at) as usize).min(data.len());
            ring.write_all_at(&data[..n], at)?;
            pos += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    fn unwind_ring(&mut self) -> io::Result<()> {
        let Some(mut ring) = self.ring.take() else {
            return Ok(());
        };
        let (head, tail, in_ring) = (self.head, self.tail, self.total - self.head);
        let log = self.file()?;
        if in_ring > tail {
            let cut = in_ring - tail;
            writeln!(
                log,
                "\n[seq-runner: {cut} bytes cut here; the log keeps the first {head} and the last {tail} bytes]"
            )?;
            let start = in_ring % tail;
            ring.seek(SeekFrom::Start(start))?;
            io::copy(&mut (&mut ring).take(tail - start), log)?;
            ring.seek(SeekFrom::Start(0))?;
            io::copy(&mut (&mut ring).take(start), log)?;
        } else {
            ring.seek(SeekFrom::Start(0))?;
            io::copy(&mut (&mut ring).take(in_ring), log)?;
        }
        drop(ring);
        self.dir.remove(&self.ring_name)
    }
}

/// The first `limit` bytes of the agent's stdout, in a file of their own (the try's result
/// candidate, see `store::results`), never in memory. Made when the try starts, so a silent
/// try has an empty result rather than none.
#[derive(Debug)]
pub struct Spool {
    file: File,
    limit: u64,
    total: u64,
    error: Option<String>,
}

impl Spool {
    /// A new, empty spool `name` in `dir` (whatever was there is removed first).
    pub fn create(dir: &Dir, name: &str, limit: u64) -> io::Result<Self> {
        Ok(Self {
            file: dir.create_new(name, false)?,
            limit,
            total: 0,
            error: None,
        })
    }

    pub fn write(&mut self, data: &[u8]) {
        let room = self.limit.saturating_sub(self.total).min(data.len() as u64) as usize;
        if room > 0 && self.error.is_none() {
            if let Err(e) = self.file.write_all(&data[..room]) {
                self.error = Some(e.to_string());
            }
        }
        self.total += data.len() as u64;
    }

    /// Bytes printed in all (more than were kept when past the limit), and the first write
    /// error, if any.
    #[must_use]
    pub fn finish(&self) -> (u64, Option<String>) {
        (self.total, self.error.clone())
    }
}

/// The last few KiB of one stream.
#[derive(Debug, Default)]
pub struct Tail(Vec<u8>);

impl Tail {
    pub fn push(&mut self, data: &[u8]) {
        if data.len() >= TAIL_KEEP {
            self.0.clear();
            self.0.extend_from_slice(&data[data.len() - TAIL_KEEP..]);
        } else {
            let overflow = (self.0.len() + data.len()).saturating_sub(TAIL_KEEP);
            self.0.drain(..overflow);
            self.0.extend_from_slice(data);
        }
    }

    /// The last `chars` characters, invalid UTF-8 replaced, never starting mid-character.
    #[must_use]
    pub fn text(&self, chars: usize) -> String {
        last_chars(&self.0, chars)
    }
}

/// The last `chars` characters of `bytes`, cut on a character boundary.
#[must_use]
pub fn last_chars(bytes: &[u8], chars: usize) -> String {
    // Skip continuation bytes of a character whose start fell off the tail.
    let start = bytes
        .iter()
        .take(3)
        .take_while(|b| (0x80..0xC0).contains(*b))
        .count();
    let text = String::from_utf8_lossy(&bytes[start..]);
    let count = text.chars().count();
    // Kept in the state, and from there in the next prompt: no NUL (see `format::text`).
    text.chars()
        .skip(count.saturating_sub(chars))
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn logged(chunks: &[&[u8]], head: u64, tail: u64) -> (Vec<u8>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut log =
            CappedLog::create(Dir::open(dir.path()).unwrap(), "a.log", head, tail).unwrap();
        for chunk in chunks {
            log.write(chunk);
        }
        let (total, error) = log.finish();
        assert_eq!(error, None);
        assert!(
            !dir.path().join("a.log.tail").exists(),
            "ring file left behind"
        );
        (fs::read(&path).unwrap(), total)
    }

    #[test]
    fn a_silent_try_leaves_no_file_and_clears_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        fs::write(&path, "an earlier try's output").unwrap();
        let mut log = CappedLog::create(Dir::open(dir.path()).unwrap(), "a.log", 8, 8).unwrap();
        assert!(!path.exists(), "the stale log is gone at once");
        assert_eq!(log.finish(), (0, None));
        assert!(!path.exists());
    }

    #[test]
    fn small_output_is_kept_whole() {
        assert_eq!(
            logged(&[b"hello ", b"world"], 8, 8),
            (b"hello world".to_vec(), 11)
        );
    }

    #[test]
    fn output_up_to_the_cap_is_kept_whole_across_head_and_ring() {
        assert_eq!(
            logged(&[b"0123456789", b"abcdef"], 8, 8).0,
            b"0123456789abcdef"
        );
    }

    #[test]
    fn past_the_cap_the_head_and_tail_survive_with_a_note() {
        let data: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
        for chunk in [1, 3, 7, 100] {
            let chunks: Vec<&[u8]> = data.chunks(chunk).collect();
            let (log, total) = logged(&chunks, 10, 10);
            assert_eq!(total, 100);
            let text = String::from_utf8(log).unwrap();
            assert!(
                text.starts_with("abcdefghij\n[seq-runner: 80 bytes cut here"),
                "{text}"
            );
            assert!(
                text.ends_with(std::str::from_utf8(&data[90..]).unwrap()),
                "chunk {chunk}: {text}"
            );
        }
    }

    #[test]
    fn tails_cut_on_character_boundaries() {
        let mut tail = Tail::default();
        tail.push("é".repeat(3000).as_bytes());
        let text = tail.text(500);
        assert_eq!(text, "é".repeat(500));
        assert_eq!(last_chars(b"ok \xff\xfe end", 6), "\u{fffd}\u{fffd} end");
        assert_eq!(last_chars(&"é".as_bytes()[1..], 5), "");
    }
}
