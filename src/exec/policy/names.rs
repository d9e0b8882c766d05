//! What a program word names. A program is recognised by its family, not its exact name:
//! versions (`python3.12`, `perl5.36.0`, `bash-5.2`), ABI and build suffixes (`python3.7m`,
//! `python3-dbg`) and distribution suffixes (`bash-static`, `sh.distrib`, `vim.tiny`) are
//! the same program.

use std::path::Path;

/// Name parts that distributions and builds append to a program's name without making it
/// another program. A part not listed here (`my-agent.sh`, `node-agent`) keeps the name its
/// own, so a user's script is not mistaken for the program its name starts with.
const BUILD_SUFFIXES: &[&str] = &[
    "static", "distrib", "dist", "dbg", "debug", "tiny", "basic", "nox", "gtk", "gtk2", "gtk3",
    "athena", "motif", "huge", "small", "minimal", "full", "real", "orig", "wrapped", "bin",
    "default", "latest", "stable", "nightly", "musl", "glibc", "legacy", "compat", "exe",
];

/// The families a program may belong to: its basename, lowercased, without `.exe` and a
/// trailing version; the part before its first digit, for ABI and build suffixes; and its
/// first part when every other part is a version or a build suffix.
#[must_use]
pub(super) fn families(path: &Path) -> Vec<String> {
    let base = path
        .file_name()
        .map(|b| b.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    // Nix wraps programs as `.bash-wrapped`.
    let base = base.trim_start_matches('.');
    let base = base.strip_suffix(".exe").unwrap_or(base);
    let versionless =
        base.trim_end_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    let mut out = vec![versionless.to_string()];
    let mut add = |family: &str| {
        if !family.is_empty() && !out.iter().any(|f| f == family) {
            out.push(family.to_string());
        }
    };
    match base.find(|c: char| c.is_ascii_digit()) {
        Some(i) if i > 0 => add(&base[..i]),
        _ => {}
    }
    let mut parts = base.split(['.', '-', '_']);
    let first = parts.next().unwrap_or_default();
    let mut rest = parts.peekable();
    if rest.peek().is_some() && rest.all(|p| is_version(p) || BUILD_SUFFIXES.contains(&p)) {
        add(first.trim_end_matches(|c: char| c.is_ascii_digit()));
    }
    out
}

/// `5`, `36`, `v2`, `2a`: a version part.
fn is_version(part: &str) -> bool {
    let part = part.strip_prefix('v').unwrap_or(part);
    part.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str) -> Vec<String> {
        families(Path::new(name))
    }

    #[test]
    fn versions_and_distribution_suffixes_keep_the_family() {
        for (name, family) in [
            ("/usr/bin/python3.12", "python"),
            ("python3.7m", "python"),
            ("python3-dbg", "python"),
            ("perl5.36.0", "perl"),
            ("bash-5.2", "bash"),
            ("bash-static", "bash"),
            ("sh.distrib", "sh"),
            ("zsh-static", "zsh"),
            ("mksh-static", "mksh"),
            ("BASH", "bash"),
            ("vim.tiny", "vim"),
            ("vim.basic", "vim"),
            (".bash-wrapped", "bash"),
            ("node20", "node"),
            ("busybox-static", "busybox"),
        ] {
            assert!(
                of(name).contains(&family.to_string()),
                "{name}: {:?}",
                of(name)
            );
        }
    }

    #[test]
    fn a_users_script_keeps_its_own_name() {
        for (name, not) in [
            ("my-agent.sh", "sh"),
            ("node-agent", "node"),
            ("sh-tools", "sh"),
            ("python-helper", "python"),
            ("cursor-agent", "cursor"),
        ] {
            assert!(
                !of(name).contains(&not.to_string()),
                "{name}: {:?}",
                of(name)
            );
        }
    }
}
