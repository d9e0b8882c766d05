//! Keeping a plan's logs within a total size. Each log is capped (8 MiB), but a long plan, or
//! many retries, would add up without end; on a small disk they filled it and then the state
//! itself could not be saved. Past the limit the oldest logs (by modification time) go, down
//! to three quarters of it, never the ones of the try about to run.

use std::fs;
use std::path::Path;

/// What a sweep of the log folder found: its total size, and what it removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub total: u64,
    pub removed: usize,
}

/// Measures the log folder and, if it holds more than `limit` bytes, removes the oldest files
/// (those whose names start with none of `keep`) until it holds at most three quarters of it.
#[must_use]
pub fn prune(logs: &Path, limit: u64, keep: &[&str]) -> Pruned {
    let Ok(entries) = fs::read_dir(logs) else {
        return Pruned::default();
    };
    let mut files: Vec<(std::time::SystemTime, u64, std::path::PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok().filter(fs::Metadata::is_file)?;
            Some((meta.modified().ok()?, meta.len(), entry.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    let mut removed = 0;
    if total <= limit {
        return Pruned { total, removed };
    }
    files.sort();
    let target = limit / 4 * 3;
    for (_, len, path) in files {
        if total <= target {
            break;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if keep.iter().any(|k| name.starts_with(k)) {
            continue;
        }
        if fs::remove_file(&path).is_ok() {
            total -= len;
            removed += 1;
        }
    }
    Pruned { total, removed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_logs_go_first_and_the_kept_stay() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a.1.log", "b.1.log", "c.1.log", "d.1.log", "e.1.log"]
            .iter()
            .enumerate()
        {
            let path = dir.path().join(name);
            fs::write(&path, vec![b'x'; 400]).unwrap();
            let when =
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        assert_eq!(
            prune(dir.path(), 2000, &[]),
            Pruned {
                total: 2000,
                removed: 0
            }
        );
        // Over 1500: down to 1125 at most, the oldest first, but never the kept `a.`.
        assert_eq!(
            prune(dir.path(), 1500, &["a."]),
            Pruned {
                total: 800,
                removed: 3
            }
        );
        let left: Vec<bool> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| dir.path().join(format!("{n}.1.log")).exists())
            .collect();
        assert_eq!(left, [true, false, false, false, true]);
    }
}
