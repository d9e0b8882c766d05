//! Reading files we do not trust, bounded: a regular file of at most a given size (devices,
//! fifos and giants refused before a byte is read), or a stream cut at the bound. Every reader
//! of a state or plan file goes through here.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The largest state file read: ten thousand steps take about 3 MiB; anything near this is hostile.
pub const MAX_STATE_BYTES: u64 = 32 * 1024 * 1024;

/// Opens a file to read that must be a regular file: a fifo planted in its place neither
/// blocks the open (which would wait for a writer for ever, maybe under the state lock) nor
/// is read.
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

/// Reads a regular file of at most `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK) // a fifo must not block us before the check below
        .open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot stat", path.display()))?;
    if meta.is_dir() {
        bail!("{}: is a directory, not a state file", path.display());
    }
    if !meta.is_file() {
        bail!("{}: is not a regular file", path.display());
    }
    if meta.len() > max {
        bail!(
            "{}: is {} bytes; a state file may be at most {} MiB",
            path.display(),
            meta.len(),
            max >> 20
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    read_stream(file, max, &mut bytes)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(bytes)
}

/// Reads a stream (stdin) of at most `max` bytes; more is an error, not a silent cut.
pub fn read_stream(from: impl Read, max: u64, into: &mut Vec<u8>) -> Result<()> {
    from.take(max + 1).read_to_end(into)?;
    if into.len() as u64 > max {
        bail!("more than {} MiB", max >> 20);
    }
    Ok(())
}
