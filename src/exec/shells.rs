//! Finding programs as exec would, and knowing a shell by what it is rather than its name.
//!
//! A shell copied or hard-linked under another name (`cp /bin/bash ~/bin/helper`) keeps no
//! name the policy could read. The system's own list of login shells, /etc/shells, says which
//! files are shells; a program whose real path is one of them, is the same file (device and
//! inode), or has the same bytes is a shell whatever it is called.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::policy::Lookup;

/// The list of login shells.
const ETC_SHELLS: &str = "/etc/shells";
/// Files larger than this are not compared byte for byte (no shell is this large).
const MAX_COMPARE: u64 = 64 * 1024 * 1024;

/// A shell's identity: where it is and what file it is.
#[derive(Debug, Clone)]
struct Shell {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
}

/// The machine as the policy sees it: PATH lookup and the system's shells.
#[derive(Debug)]
pub struct System<'a> {
    path: Option<&'a OsStr>,
    workspace: &'a Path,
    shells: Vec<Shell>,
}

impl<'a> System<'a> {
    /// Reads /etc/shells (missing or unreadable: no shells known this way).
    #[must_use]
    pub fn new(path: Option<&'a OsStr>, workspace: &'a Path) -> Self {
        Self::with_shell_list(path, workspace, Path::new(ETC_SHELLS))
    }

    #[must_use]
    pub fn with_shell_list(path: Option<&'a OsStr>, workspace: &'a Path, list: &Path) -> Self {
        let text = fs::read_to_string(list).unwrap_or_default();
        let mut shells: Vec<Shell> = Vec::new();
        for line in text.lines().map(str::trim) {
            if !line.starts_with('/') {
                continue;
            }
            let Ok(real) = fs::canonicalize(line) else {
                continue;
            };
            let Ok(meta) = fs::metadata(&real) else {
                continue;
            };
            if meta.is_file() && !shells.iter().any(|s| s.path == real) {
                shells.push(Shell {
                    path: real,
                    dev: meta.dev(),
                    ino: meta.ino(),
                    len: meta.len(),
                });
            }
        }
        Self {
            path,
            workspace,
            shells,
        }
    }
}

impl Lookup for System<'_> {
    fn resolve(&self, word: &str) -> Option<PathBuf> {
        super::command::find_program(word, self.path, self.workspace)
    }

    fn is_shell_file(&self, real: &Path) -> bool {
        let Ok(meta) = fs::metadata(real) else {
            return false;
        };
        self.shells.iter().any(|shell| {
            shell.path == real
                || (shell.dev == meta.dev() && shell.ino == meta.ino())
                || (shell.len == meta.len()
                    && meta.len() <= MAX_COMPARE
                    && same_bytes(&shell.path, real))
        })
    }
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    let read = |p: &Path| -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        crate::store::read::open_regular(p)
            .ok()?
            .take(MAX_COMPARE)
            .read_to_end(&mut bytes)
            .ok()?;
        Some(bytes)
    };
    matches!((read(a), read(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_copy_of_a_listed_shell_is_a_shell_under_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let shell = dir.path().join("realsh");
        fs::write(&shell, b"#!fake shell binary\n").unwrap();
        fs::set_permissions(&shell, fs::Permissions::from_mode(0o755)).unwrap();
        let list = dir.path().join("shells");
        fs::write(
            &list,
            format!("# comment\n{}\n/no/such/shell\n", shell.display()),
        )
        .unwrap();
        let copy = dir.path().join("helper");
        fs::copy(&shell, &copy).unwrap();
        let linked = dir.path().join("linked");
        fs::hard_link(&shell, &linked).unwrap();
        let other = dir.path().join("agent");
        fs::write(&other, b"#!other program binary\n").unwrap();
        let system = System::with_shell_list(None, dir.path(), &list);
        assert!(system.is_shell_file(&shell));
        assert!(system.is_shell_file(&copy));
        assert!(system.is_shell_file(&linked));
        assert!(!system.is_shell_file(&other));
        assert!(!system.is_shell_file(&dir.path().join("missing")));
    }
}
