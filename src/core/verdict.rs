//! Judging a finished try: DONE or FAILED, and the words recorded for either. Pure: the facts
//! about the required outputs are gathered by the exec layer (`exec::outputs`).
//!
//! Success is exit 0 and every required output present inside the workspace. The error kept in
//! the state is at most 500 characters: the reason first, then the most useful tail of output.

use std::time::Duration;

/// The longest `error` recorded, as in the Python version.
pub const MAX_ERROR_CHARS: usize = 500;

/// How the agent's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
    TimedOut(Duration),
    /// It never ran: the reason.
    NotStarted(String),
    /// The runner stopped it before it ended: why, and how it went.
    Stopped {
        why: StopWhy,
        how: Stopped,
    },
}

/// Why a runner stopped its own agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopWhy {
    /// The plan no longer shows the try in flight: a person cancelled or skipped it.
    Superseded,
    /// The runner was told to stop (SIGTERM, SIGINT, SIGHUP): the number.
    Signal(i32),
}

/// How a process group was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stopped {
    /// There was nobody left to stop.
    AlreadyGone,
    /// SIGTERM was enough.
    Terminated,
    /// The grace ran out; SIGKILL.
    Killed,
}

/// Why a required output does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Simply not there.
    Absent,
    NotAFileName,
    Absolute,
    Outside,
    /// The plan's own state file or sidecar folder, which exist whatever the agent did.
    PlansOwn,
    /// There, but empty (only `verify.files` asks).
    Empty,
}

impl Missing {
    /// Why, in a few words ("" for plainly absent).
    #[must_use]
    pub fn why(self) -> &'static str {
        match self {
            Self::Absent => "",
            Self::Empty => "empty",
            Self::NotAFileName => "not a file name",
            Self::Absolute => "absolute: must be relative to the workspace",
            Self::Outside => "outside the workspace",
            Self::PlansOwn => "the plan's own file, not an output",
        }
    }
}

/// What the exec layer found for one required output: `None` when it counts.
pub type OutputFact<'a> = (&'a str, Option<Missing>);

/// `Ok(artifacts)` (the required outputs, as written) or `Err(error)`.
pub fn verdict(
    ending: &Ending,
    stdout_tail: &str,
    stderr_tail: &str,
    outputs: &[OutputFact],
) -> Result<Vec<String>, String> {
    let tail = if stderr_tail.trim().is_empty() {
        stdout_tail
    } else {
        stderr_tail
    };
    match ending {
        Ending::Exited(0) => {}
        Ending::Exited(code) => return Err(reason_with_tail(&format!("exit code {code}"), tail)),
        Ending::Signaled(signal) => {
            return Err(reason_with_tail(
                &format!("killed by signal {signal}"),
                tail,
            ))
        }
        Ending::TimedOut(after) => return Err(format!("timed out after {} s", after.as_secs())),
        Ending::Stopped {
            why: StopWhy::Superseded,
            ..
        } => {
            return Err(
                "stopped: the plan no longer shows this try in flight (a person \
                        cancelled or skipped it)"
                    .into(),
            )
        }
        Ending::Stopped {
            why: StopWhy::Signal(signal),
            ..
        } => return Err(format!("stopped: the runner was sent signal {signal}")),
        Ending::NotStarted(why) => return Err(truncate(&format!("agent not started: {why}"))),
    }
    let missing: Vec<String> = outputs
        .iter()
        .filter_map(|(path, missing)| {
            let shown = if path.is_empty() { "\"\"" } else { path };
            missing.map(|m| match m.why() {
                "" => shown.to_owned(),
                why => format!("{shown} ({why})"),
            })
        })
        .collect();
    if missing.is_empty() {
        Ok(outputs.iter().map(|(path, _)| (*path).to_owned()).collect())
    } else {
        Err(truncate(&format!(
            "Missing required outputs: {}",
            missing.join(", ")
        )))
    }
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

    #[test]
    fn failures_say_why_with_the_most_useful_tail() {
        let v = |ending, out, err| verdict(&ending, out, err, &[]);
        assert_eq!(
            v(Ending::Exited(3), "out", "err"),
            Err("exit code 3: err".into())
        );
        assert_eq!(
            v(Ending::Exited(3), "out", " \n"),
            Err("exit code 3: out".into())
        );
        assert_eq!(v(Ending::Exited(1), "", ""), Err("exit code 1".into()));
        assert_eq!(
            v(Ending::Signaled(9), "", ""),
            Err("killed by signal 9".into())
        );
        assert_eq!(
            v(Ending::TimedOut(Duration::from_secs(5)), "", "x"),
            Err("timed out after 5 s".into())
        );
        let ys = "y".repeat(2000);
        let long = v(Ending::Exited(2), "", &ys).unwrap_err();
        assert_eq!(long.chars().count(), MAX_ERROR_CHARS);
        assert!(long.starts_with("exit code 2: yyy"));
        assert_eq!(
            v(Ending::NotStarted("no such file".into()), "", ""),
            Err("agent not started: no such file".into())
        );
    }

    #[test]
    fn every_missing_output_is_named_with_why() {
        let ok = Ending::Exited(0);
        assert_eq!(
            verdict(&ok, "", "", &[("a.md", None), ("b/c.md", None)]),
            Ok(vec!["a.md".into(), "b/c.md".into()])
        );
        assert_eq!(
            verdict(
                &ok,
                "",
                "",
                &[
                    ("a.md", None),
                    ("b.md", Some(Missing::Absent)),
                    ("../x", Some(Missing::Outside)),
                    ("/etc/passwd", Some(Missing::Absolute)),
                    ("", Some(Missing::NotAFileName)),
                    ("state.json", Some(Missing::PlansOwn)),
                ]
            ),
            Err(
                "Missing required outputs: b.md, ../x (outside the workspace), /etc/passwd \
                 (absolute: must be relative to the workspace), \"\" (not a file name), \
                 state.json (the plan's own file, not an output)"
                    .into()
            )
        );
    }
}
