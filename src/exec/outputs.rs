//! Facts about a try's required outputs, for the pure verdict (`core::verdict`): whether each
//! path names a file inside the workspace that exists, found by its real path (so `..` and
//! symlinks leading out are caught), and is not the plan's own state file or sidecar folder.

use std::fs;
use std::path::{Component, Path};

use crate::core::verdict::{Missing, OutputFact};

/// One fact per required output, in order.
#[must_use]
pub fn facts<'a>(
    required: &'a [String],
    workspace: &Path,
    reserved: &[&Path],
) -> Vec<OutputFact<'a>> {
    let workspace = fs::canonicalize(workspace).ok();
    required
        .iter()
        .map(|path| {
            (
                path.as_str(),
                problem_with(path, workspace.as_deref(), reserved),
            )
        })
        .collect()
}

/// Like [`facts`], for `verify.files`: each must also be a file that is not empty.
#[must_use]
pub fn non_empty_facts<'a>(
    paths: &'a [String],
    workspace: &Path,
    reserved: &[&Path],
) -> Vec<OutputFact<'a>> {
    let mut found = facts(paths, workspace, reserved);
    for (path, missing) in &mut found {
        if missing.is_none() {
            let size =
                fs::metadata(workspace.join(path))
                    .map_or(0, |m| if m.is_file() { m.len() } else { 1 });
            if size == 0 {
                *missing = Some(Missing::Empty);
            }
        }
    }
    found
}

/// The real path of a file the plan names inside the workspace (`resultFile`), or why it
/// cannot be used.
pub fn resolve(
    path: &str,
    workspace: &Path,
    reserved: &[&Path],
) -> Result<std::path::PathBuf, Missing> {
    let real_workspace = fs::canonicalize(workspace).map_err(|_| Missing::Absent)?;
    match problem_with(path, Some(&real_workspace), reserved) {
        Some(missing) => Err(missing),
        None => fs::canonicalize(real_workspace.join(path)).map_err(|_| Missing::Absent),
    }
}

/// Why a required output does not count, or None if it does.
fn problem_with(path: &str, workspace: Option<&Path>, reserved: &[&Path]) -> Option<Missing> {
    let relative = Path::new(path);
    if path.trim().is_empty() || relative.components().all(|c| c == Component::CurDir) {
        return Some(Missing::NotAFileName);
    }
    if relative.is_absolute() {
        return Some(Missing::Absolute);
    }
    let Some(workspace) = workspace else {
        return Some(Missing::Absent);
    };
    match fs::canonicalize(workspace.join(relative)) {
        Ok(real) if reserved.iter().any(|r| real.starts_with(r)) => Some(Missing::PlansOwn),
        Ok(real) if real.starts_with(workspace) && real != workspace => None,
        Ok(_) => Some(Missing::Outside),
        // A dangling link or a missing file: say "outside" when the words climb out.
        Err(_) if escapes(relative) => Some(Missing::Outside),
        Err(_) => Some(Missing::Absent),
    }
}

/// Whether a relative path's `..` components climb above its start.
fn escapes(path: &Path) -> bool {
    let mut depth = 0i64;
    for component in path.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_outputs_must_exist_inside_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        fs::create_dir_all(ws.join("sub")).unwrap();
        fs::write(ws.join("a.md"), "a").unwrap();
        fs::write(ws.join("state.json"), "{}").unwrap();
        fs::write(dir.path().join("outside.md"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.md"), ws.join("link.md")).unwrap();
        std::os::unix::fs::symlink(ws.join("a.md"), ws.join("inside-link.md")).unwrap();
        let required: Vec<String> = [
            "a.md",
            "sub/../a.md",
            "inside-link.md",
            "b.md",
            "../outside.md",
            "link.md",
            "/etc/passwd",
            "",
            "../nope",
            "state.json",
        ]
        .map(String::from)
        .to_vec();
        let state = ws.join("state.json");
        let got = facts(&required, &ws, &[&state]);
        assert_eq!(
            got.iter().map(|(_, m)| *m).collect::<Vec<_>>(),
            [
                None,
                None,
                None,
                Some(Missing::Absent),
                Some(Missing::Outside),
                Some(Missing::Outside),
                Some(Missing::Absolute),
                Some(Missing::NotAFileName),
                Some(Missing::Outside),
                Some(Missing::PlansOwn),
            ]
        );
    }
}
