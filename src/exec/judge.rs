//! Judging a finished try: DONE or FAILED, and the words recorded for either.
//!
//! Success is exit 0 and every required output present inside the workspace. The error kept in
//! the state is at most 500 characters: the reason first, then the most useful tail of output.

use std::fs;
use std::path::{Component, Path};

use crate::exec::attempt::{Ending, Report};

/// The longest `error` recorded, as in the Python version.
pub const MAX_ERROR_CHARS: usize = 500;

/// `Ok(artifacts)` (the required outputs, as written) or `Err(error)`. `reserved` are paths that
/// never count as an output though they are in the workspace: the plan's own state file and its
/// sidecar folder, which exist whatever the agent did.
pub fn verdict(
    report: &Report,
    required: &[String],
    workspace: &Path,
    reserved: &[&Path],
) -> Result<Vec<String>, String> {
    let tail = if report.stderr.trim().is_empty() {
        &report.stdout
    } else {
        &report.stderr
    };
    match &report.ending {
        Ending::Exited(0) => {}
        Ending::Exited(code) => return Err(reason_with_tail(&format!("exit code {code}"), tail)),
        Ending::Signaled(signal) => {
            return Err(reason_with_tail(
                &format!("killed by signal {signal}"),
                tail,
            ))
        }
        Ending::TimedOut(after) => return Err(format!("timed out after {} s", after.as_secs())),
        Ending::NotStarted(why) => return Err(truncate(&format!("agent not started: {why}"))),
    }
    let missing: Vec<String> = required
        .iter()
        .filter_map(|path| {
            let shown = if path.is_empty() { "\"\"" } else { path };
            problem_with(path, workspace, reserved).map(|why| match why {
                "" => shown.to_owned(),
                why => format!("{shown} ({why})"),
            })
        })
        .collect();
    if missing.is_empty() {
        Ok(required.to_vec())
    } else {
        Err(truncate(&format!(
            "Missing required outputs: {}",
            missing.join(", ")
        )))
    }
}

/// Why a required output does not count, or None if it does. "" means simply missing.
fn problem_with(path: &str, workspace: &Path, reserved: &[&Path]) -> Option<&'static str> {
    let relative = Path::new(path);
    if path.trim().is_empty() || relative.components().all(|c| c == Component::CurDir) {
        return Some("not a file name");
    }
    if relative.is_absolute() {
        return Some("absolute: must be relative to the workspace");
    }
    let Ok(workspace) = fs::canonicalize(workspace) else {
        return Some("");
    };
    match fs::canonicalize(workspace.join(relative)) {
        Ok(real) if reserved.iter().any(|r| real.starts_with(r)) => {
            Some("the plan's own file, not an output")
        }
        Ok(real) if real.starts_with(&workspace) && real != workspace => None,
        Ok(_) => Some("outside the workspace"),
        // A dangling link or a missing file: say "outside" when the words climb out.
        Err(_) if escapes(relative) => Some("outside the workspace"),
        Err(_) => Some(""),
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

/// `reason: tail`, the tail cut from its start to fit in [`MAX_ERROR_CHARS`].
fn reason_with_tail(reason: &str, tail: &str) -> String {
    let tail = tail.trim();
    if tail.is_empty() {
        return truncate(reason);
    }
    let room = MAX_ERROR_CHARS.saturating_sub(reason.chars().count() + 2);
    let count = tail.chars().count();
    let tail: String = tail.chars().skip(count.saturating_sub(room)).collect();
    truncate(&format!("{reason}: {tail}"))
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn report(ending: Ending, stdout: &str, stderr: &str) -> Report {
        Report {
            ending,
            duration: Duration::ZERO,
            stdout: stdout.into(),
            stderr: stderr.into(),
            printed: 0,
        }
    }

    #[test]
    fn failures_say_why_with_the_most_useful_tail() {
        let ws = Path::new("/");
        assert_eq!(
            verdict(&report(Ending::Exited(3), "out", "err"), &[], ws, &[]),
            Err("exit code 3: err".into())
        );
        assert_eq!(
            verdict(&report(Ending::Exited(3), "out", " \n"), &[], ws, &[]),
            Err("exit code 3: out".into())
        );
        assert_eq!(
            verdict(&report(Ending::Exited(1), "", ""), &[], ws, &[]),
            Err("exit code 1".into())
        );
        assert_eq!(
            verdict(&report(Ending::Signaled(9), "", ""), &[], ws, &[]),
            Err("killed by signal 9".into())
        );
        assert_eq!(
            verdict(
                &report(Ending::TimedOut(Duration::from_secs(5)), "", "x"),
                &[],
                ws,
                &[]
            ),
            Err("timed out after 5 s".into())
        );
        let long = verdict(
            &report(Ending::Exited(2), "", &"y".repeat(2000)),
            &[],
            ws,
            &[],
        )
        .unwrap_err();
        assert_eq!(long.chars().count(), MAX_ERROR_CHARS);
        assert!(long.starts_with("exit code 2: yyy"));
    }

    #[test]
    fn required_outputs_must_exist_inside_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        fs::create_dir_all(ws.join("sub")).unwrap();
        fs::write(ws.join("a.md"), "a").unwrap();
        fs::write(dir.path().join("outside.md"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.md"), ws.join("link.md")).unwrap();
        std::os::unix::fs::symlink(ws.join("a.md"), ws.join("inside-link.md")).unwrap();
        let ok = report(Ending::Exited(0), "", "");
        let required: Vec<String> = ["a.md", "sub/../a.md", "inside-link.md"]
            .map(String::from)
            .to_vec();
        assert_eq!(verdict(&ok, &required, &ws, &[]), Ok(required.clone()));
        let required: Vec<String> = [
            "a.md",
            "b.md",
            "../outside.md",
            "link.md",
            "/etc/passwd",
            "",
            "../nope",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            verdict(&ok, &required, &ws, &[]),
            Err("Missing required outputs: b.md, ../outside.md (outside the workspace), \
                 link.md (outside the workspace), /etc/passwd (absolute: must be relative to the workspace), \
                 \"\" (not a file name), ../nope (outside the workspace)"
                .into())
        );
    }
}
