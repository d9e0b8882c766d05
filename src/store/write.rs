//! Atomic, durable replacement of a file: every writer of a file someone else reads goes
//! through here (the state, the installed skill).
//!
//! A temp file in a folder on the same file system is written, fsynced, renamed over the
//! target, and the target's folder fsynced, so that the rename itself survives a power cut.
//! A reader, or a machine that loses power, sees the old file or the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

/// How to replace a file.
#[derive(Debug, Clone, Copy)]
pub struct Replace<'a> {
    /// Where the temp file is made: on the target's file system.
    pub temp_dir: &'a Path,
    pub temp_prefix: &'a str,
    pub temp_suffix: &'a str,
    /// The new file's permission bits.
    pub mode: u32,
    /// Refuse to replace a file that exists (it appeared since we looked).
    pub new: bool,
    /// What the file is, for messages ("state", "skill file").
    pub what: &'a str,
}

/// A fresh, empty temp file for a replacement. Making one allocates an inode, which on ext4
/// costs as much as the rest of a small save: a writer with time to spare (a runner while its
/// agent runs) makes the next one ahead (see `Store::prepare_save`).
pub fn temp_file(how: &Replace) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(how.temp_prefix)
        .suffix(how.temp_suffix)
        .permissions(fs::Permissions::from_mode(how.mode))
        .tempfile_in(how.temp_dir)
        .with_context(|| format!("{}: cannot create a temp file", how.temp_dir.display()))
}

/// Replaces `target` with `bytes` through `temp` (made by [`temp_file`]); `dir`, the target's
/// open folder, is fsynced after the rename. A `temp` someone removed meanwhile (a sweep of
/// stale temp files) is replaced by a fresh one.
pub fn replace(
    target: &Path,
    bytes: &[u8],
    how: &Replace,
    temp: Option<NamedTempFile>,
    dir: &File,
) -> Result<()> {
    let temp = match temp {
        Some(temp) if temp.path().exists() => temp,
        _ => temp_file(how)?,
    };
    if temp
        .as_file()
        .metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o7777 != how.mode)
    {
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(how.mode))
            .with_context(|| format!("{}: cannot set the mode", temp.path().display()))?;
    }
    let mut temp = temp;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("{}: cannot write the new {}", target.display(), how.what))?;
    let persisted = if how.new {
        temp.persist_noclobber(target)
    } else {
        temp.persist(target)
    };
    persisted
        .map_err(|e| e.error)
        .with_context(|| format!("{}: cannot replace the {}", target.display(), how.what))?;
    // The file is replaced now: a failure from here on must not say "nothing changed". The
    // rename may not survive a power cut, which is worth a warning, not an error.
    if let Err(e) = sync_dir(dir) {
        eprintln!(
            "warning: {}: replaced, but its folder could not be fsynced ({e}): the change may \
             not survive a power cut",
            target.display()
        );
    }
    Ok(())
}

fn sync_dir(dir: &File) -> io::Result<()> {
    if super::faults::injected("dir-fsync") {
        return Err(io::Error::other("injected fault"));
    }
    dir.sync_all()
}

/// Replaces `target` (creating its folder if needed) with a temp file beside it.
pub fn replace_beside(target: &Path, bytes: &[u8], mode: u32, what: &str) -> Result<()> {
    let dir = target.parent().context("a file without a folder")?;
    fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let handle = File::open(dir).with_context(|| format!("{}: cannot open", dir.display()))?;
    let how = Replace {
        temp_dir: dir,
        temp_prefix: ".tmp.",
        temp_suffix: "",
        mode,
        new: false,
        what,
    };
    replace(target, bytes, &how, None, &handle)
}
