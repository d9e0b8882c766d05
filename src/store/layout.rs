//! Where an attempt's output is kept: `<state>.seq/logs/<step>.<attempt>.log`.
//!
//! Step ids come from an untrusted file, so the name is derived, never taken as given: bytes
//! outside `[A-Za-z0-9_-]` are %-escaped (so `../x` cannot climb out and distinct ids never
//! share a file), and a long id is shortened with a hash to stay within file-name limits.

use std::fmt::Write;
use std::path::PathBuf;

use crate::store::Store;

/// The log file of one attempt of one step.
#[must_use]
pub fn attempt_log(store: &Store, step: &str, attempt: u32) -> PathBuf {
    store
        .sidecar()
        .join("logs")
        .join(format!("{}.{attempt}.log", file_stem(step)))
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
}
