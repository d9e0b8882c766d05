//! Opening files in the sidecar without trusting what is there. The agent runs in the workspace
//! and may replace any sidecar file with a symbolic or hard link to a file the user owns (a
//! key, a dotfile): writing through it would overwrite that file with agent-controlled text,
//! and reading it (`seqctl logs`) would print it.
//!
//! So every sidecar file is opened relative to an open folder that is not a link (`openat`
//! with `O_NOFOLLOW`), and a file is only used if it is a regular file with one name: a file
//! made for one try is always made new (`O_EXCL`, anything in its place removed first); a file
//! kept across runs (the lock, the lease, the event log, `runner.log`) that turns out to be a
//! link or not ours is removed and made anew; a file read for a person must pass the same test.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// How a kept file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and written in place (the lock, the lease).
    ReadWrite,
    /// Appended to (the event log, `runner.log`).
    Append,
}

/// An open folder that was not a link when opened.
#[derive(Debug)]
pub struct Dir(File);

fn c_name(name: &str) -> io::Result<CString> {
    if name.contains('/') || name.is_empty() || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a file name: {name:?}"),
        ));
    }
    CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl Dir {
    /// Opens the folder at `path`, refusing a link.
    pub fn open(path: &Path) -> io::Result<Self> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: a plain open of a NUL-terminated path; the descriptor returned is owned below.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` was just opened and is owned by nobody else.
        Ok(Self(unsafe { File::from_raw_fd(fd) }))
    }

    /// Another handle on the same folder.
    pub fn try_clone(&self) -> io::Result<Self> {
        self.0.try_clone().map(Self)
    }

    /// The subfolder `name`, made (owner-only) if missing; a link there is refused.
    pub fn subdir(&self, name: &str) -> io::Result<Self> {
        let c = c_name(name)?;
        // SAFETY: mkdirat relative to our open folder, with a NUL-terminated name.
        let made = unsafe { libc::mkdirat(self.0.as_raw_fd(), c.as_ptr(), 0o700) };
        if made < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        // SAFETY: openat relative to our open folder; the descriptor is owned below.
        let fd = check(unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: `fd` was just opened.
        Ok(Self(unsafe { File::from_raw_fd(fd) }))
    }

    fn openat(&self, name: &CString, flags: libc::c_int, mode: libc::c_uint) -> io::Result<File> {
        // SAFETY: openat relative to our open folder; the descriptor is owned below.
        let fd = check(unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode,
            )
        })?;
        // SAFETY: `fd` was just opened.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Removes whatever non-folder entry has this name, if any.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        let c = c_name(name)?;
        // SAFETY: unlinkat relative to our open folder; it never follows a link.
        match check(unsafe { libc::unlinkat(self.0.as_raw_fd(), c.as_ptr(), 0) }) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A new, empty file for one try (owner-only), never one that was there: anything in its
    /// place is removed first, and it is made with `O_EXCL`.
    pub fn create_new(&self, name: &str, read_too: bool) -> io::Result<File> {
        let c = c_name(name)?;
        let access = if read_too {
            libc::O_RDWR
        } else {
            libc::O_WRONLY
        };
        for _ in 0..8 {
            self.remove(name)?;
            match self.openat(&c, access | libc::O_CREAT | libc::O_EXCL, 0o600) {
                // Something was put back between the removal and the creation: again.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                other => return other,
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{name}: something keeps being put in its place"),
        ))
    }

    /// A file kept across runs, made (owner-only) if missing; one that is a link, not a
    /// regular file, or has another name elsewhere (a hard link) is removed and made anew.
    pub fn open_kept(&self, name: &str, access: Access) -> io::Result<File> {
        let c = c_name(name)?;
        // Non-blocking: opening a fifo planted in its place to write would wait for a reader
        // for ever (under the state lock). On a regular file the flag changes nothing.
        let flags = libc::O_NONBLOCK
            | match access {
                Access::ReadWrite => libc::O_RDWR,
                Access::Append => libc::O_WRONLY | libc::O_APPEND,
            };
        match self.openat(&c, flags | libc::O_CREAT, 0o600) {
            Ok(file) if ours(&file) => return Ok(file),
            Ok(_) => {}
            // O_NOFOLLOW on a link: ELOOP (EMLINK on some systems); a fifo with no reader,
            // opened to write without blocking: ENXIO.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ELOOP | libc::EMLINK | libc::ENXIO)
                ) => {}
            Err(e) => return Err(e),
        }
        self.create_new(name, access == Access::ReadWrite)
            .and_then(|_| self.openat(&c, flags, 0o600))
    }

    /// Renames `from` to `to` in this folder, replacing `to` (a link there is replaced, never
    /// followed).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (c_name(from)?, c_name(to)?);
        let fd = self.0.as_raw_fd();
        // SAFETY: renameat within our open folder, with NUL-terminated names.
        check(unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) }).map(drop)
    }

    /// Makes the folder's entries (a rename) durable.
    pub fn sync(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    /// A file to read for a person, only if it is a regular file with one name.
    pub fn read_own(&self, name: &str) -> io::Result<File> {
        let c = c_name(name)?;
        let file = self
            .openat(&c, libc::O_RDONLY | libc::O_NONBLOCK, 0)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP | libc::EMLINK) => not_ours(name),
                _ => e,
            })?;
        if ours(&file) {
            Ok(file)
        } else {
            Err(not_ours(name))
        }
    }
}

/// Whether an open file is a regular file with a single name: one we made.
fn ours(file: &File) -> bool {
    file.metadata()
        .is_ok_and(|m| m.file_type().is_file() && m.nlink() == 1)
}

fn not_ours(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{name} is a link or not a file seq-runner wrote; it is not read"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn setup() -> (tempfile::TempDir, Dir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join("secret");
        std::fs::write(&secret, "key").unwrap();
        let side = tmp.path().join("side");
        std::fs::create_dir(&side).unwrap();
        let dir = Dir::open(&side).unwrap();
        (tmp, dir, secret)
    }

    #[test]
    fn planted_links_are_never_written_through_or_read() {
        let (tmp, dir, secret) = setup();
        let side = tmp.path().join("side");
        std::os::unix::fs::symlink(&secret, side.join("log")).unwrap();
        std::fs::hard_link(&secret, side.join("hard")).unwrap();
        std::os::unix::fs::symlink(&secret, side.join("events")).unwrap();
        std::fs::hard_link(&secret, side.join("lease")).unwrap();
        dir.create_new("log", false)
            .unwrap()
            .write_all(b"agent text")
            .unwrap();
        dir.create_new("hard", false)
            .unwrap()
            .write_all(b"agent text")
            .unwrap();
        dir.open_kept("events", Access::Append)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        let mut lease = dir.open_kept("lease", Access::ReadWrite).unwrap();
        lease.set_len(0).unwrap();
        lease.write_all(b"note").unwrap();
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "key");
        assert_eq!(
            std::fs::read_to_string(side.join("log")).unwrap(),
            "agent text"
        );
        // Reading for a person: a link is refused, a file we made is read.
        std::os::unix::fs::symlink(&secret, side.join("shown")).unwrap();
        assert!(dir.read_own("shown").is_err());
        let mut text = String::new();
        dir.read_own("log")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "agent text");
        std::fs::hard_link(side.join("log"), tmp.path().join("elsewhere")).unwrap();
        assert!(
            dir.read_own("log").is_err(),
            "a file with two names is not ours"
        );
    }

    #[test]
    fn a_linked_folder_is_refused_and_names_must_be_plain() {
        let (tmp, dir, _) = setup();
        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("side/sub")).unwrap();
        assert!(dir.subdir("sub").is_err());
        assert!(dir.subdir("logs").is_ok());
        assert!(dir.create_new("../x", false).is_err());
        std::os::unix::fs::symlink(tmp.path().join("side"), tmp.path().join("link")).unwrap();
        assert!(Dir::open(&tmp.path().join("link")).is_err());
    }
}
