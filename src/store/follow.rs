//! Following a growing file (`tail -F`): the event log and an attempt's output as they grow.
//!
//! Polling, not inotify: the files are small and the poll interval is a quarter second, so it
//! costs nothing and needs no crate. A file replaced at its path (the event log rotated, or a
//! log truncated for a new attempt) is drained to its end and then reopened at the path.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

/// How often a file that has stopped growing is looked at again.
pub const POLL: Duration = Duration::from_millis(250);

/// Feeds `path`'s bytes to `sink` from its start, then as they are added, until `keep_going`
/// says stop (it is asked whenever there is nothing new); the bytes written before it said so
/// are still delivered. A file that does not exist yet is waited for. `open` opens the file at
/// `path` (`None`: not there yet); it decides what may be read (see `safe::Dir::read_own`).
pub fn follow(
    path: &Path,
    open: &dyn Fn() -> io::Result<File>,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    keep_going: &mut dyn FnMut() -> bool,
) -> Result<()> {
    let mut file: Option<File> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if file.is_none() {
            file = open_if_present(path, open)?;
        }
        let mut progressed = false;
        if let Some(f) = file.as_mut() {
            loop {
                let n = f
                    .read(&mut buf)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                if n == 0 {
                    break;
                }
                progressed = true;
                sink(&buf[..n]).context("cannot write the output")?;
            }
            if replaced(f, path) {
                file = None; // drained to its end above; pick up the new file next turn
                continue;
            }
        }
        if !progressed {
            if !keep_going() {
                // One last look: bytes may have landed between the read and the question.
                if let Some(f) = file.as_mut() {
                    let mut rest = Vec::new();
                    f.read_to_end(&mut rest)
                        .with_context(|| format!("{}: cannot read", path.display()))?;
                    sink(&rest).context("cannot write the output")?;
                }
                return Ok(());
            }
            thread::sleep(POLL);
        }
    }
}

fn open_if_present(path: &Path, open: &dyn Fn() -> io::Result<File>) -> Result<Option<File>> {
    match open() {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}: cannot open", path.display())),
    }
}

/// Whether the path now names another file than the one open (or none).
fn replaced(file: &File, path: &Path) -> bool {
    let open = file.metadata().map(|m| (m.dev(), m.ino())).ok();
    let named = std::fs::symlink_metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .ok();
    named.is_some() && open != named
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follows_growth_and_replacement_then_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        std::fs::write(&path, "one\n").unwrap();
        let mut got = Vec::new();
        let mut turn = 0;
        let opened = path.clone();
        follow(
            &path,
            &|| File::open(&opened),
            &mut |bytes| {
                got.extend_from_slice(bytes);
                Ok(())
            },
            &mut || {
                turn += 1;
                match turn {
                    1 => {
                        let mut f = std::fs::OpenOptions::new()
                            .append(true)
                            .open(&path)
                            .unwrap();
                        f.write_all(b"two\n").unwrap();
                    }
                    2 => {
                        // Rotation: the old file moves away, a new one takes its name.
                        std::fs::rename(&path, dir.path().join("f.log.1")).unwrap();
                        std::fs::write(&path, "three\n").unwrap();
                    }
                    _ => return false,
                }
                true
            },
        )
        .unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), "one\ntwo\nthree\n");
    }
}
