//! Atomic, durable replacement of a file: every writer of a file someone else reads goes
//! through here (the state, the installed skill).
//!
//! A temp file in a folder on the same file system is written, fsynced, renamed over the
//! target, and the target's folder fsynced, so that the rename itself survives a power cut.
//! A reader, or a machine that loses power, sees the old file or the new one, never a mix.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

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

/// Replaces `target` with `bytes`; the open folder handle `dir` (the target's folder) is fsynced
/// after the rename.
pub fn replace(target: &Path, bytes: &[u8], how: Replace, dir: &File) -> Result<()> {
    let mut temp = tempfile::Builder::new()
        .prefix(how.temp_prefix)
        .suffix(how.temp_suffix)
        .permissions(fs::Permissions::from_mode(how.mode))
        .tempfile_in(how.temp_dir)
        .with_context(|| format!("{}: cannot create a temp file", how.temp_dir.display()))?;
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
    dir.sync_all().with_context(|| {
        format!(
            "{}: cannot fsync the folder",
            target.parent().unwrap_or(Path::new(".")).display()
        )
    })
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
    replace(target, bytes, how, &handle)
}
