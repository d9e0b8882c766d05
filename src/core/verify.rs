//! The monitor: whether a try that ended well did the work its step asks for (`verify`).
//! Pure: the result's text and the facts about its files are gathered by the exec layer.
//!
//! The built-in checks run first (they are cheap and need nobody): `files` exist and are not
//! empty, the result `contains` a text, `matches` a regular expression, parses as `json`, has
//! at least `minChars`. Then a verify agent, if the step names one, is sent the instruction
//! and the result and must end its answer with a line `PASS` or `FAIL: <reason>`. Any failure
//! makes the try FAILED with the reason as its error, so the troubleshoot prompt carries it.

use super::prompt::cut;
use super::verdict::{Missing, OutputFact, MAX_ERROR_CHARS};
use crate::format::schema::Verify;
use crate::format::validate::REGEX_SIZE_LIMIT;

/// The most characters of a result a verify agent is sent (head and tail beyond it).
pub const VERIFY_RESULT_CHARS: usize = 60_000;

/// Whether the step's verify needs the result's text (not only its files).
#[must_use]
pub fn needs_text(verify: &Verify) -> bool {
    verify.contains.is_some()
        || verify.matches.is_some()
        || verify.json == Some(true)
        || verify.min_chars.is_some()
        || verify.agent.is_some()
}

/// The built-in checks, in order; the first that fails says why.
pub fn builtin(verify: &Verify, result: &str, files: &[OutputFact]) -> Result<(), String> {
    let bad: Vec<String> = files
        .iter()
        .filter_map(|(path, missing)| {
            missing.map(|m| match m {
                Missing::Absent => format!("{path} is missing"),
                Missing::Empty => format!("{path} is empty"),
                other => format!("{path} ({})", other.why()),
            })
        })
        .collect();
    if !bad.is_empty() {
        return Err(short(&format!("verify failed: files: {}", bad.join(", "))));
    }
    if let Some(text) = &verify.contains {
        if !result.contains(text.as_str()) {
            return Err(short(&format!(
                "verify failed: the result does not contain {text:?}"
            )));
        }
    }
    if let Some(pattern) = &verify.matches {
        // Validation compiled it already; a failure here is the same refusal.
        let matched = regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| short(&format!("verify failed: matches: {e}")))?
            .is_match(result);
        if !matched {
            return Err(short(&format!(
                "verify failed: the result does not match /{pattern}/"
            )));
        }
    }
    if verify.json == Some(true) {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(result.trim()) {
            return Err(short(&format!(
                "verify failed: the result is not JSON ({e})"
            )));
        }
    }
    if let Some(min) = verify.min_chars {
        let chars = result.chars().count() as u64;
        if chars < min {
            return Err(format!(
                "verify failed: the result has {chars} characters, fewer than minChars {min}"
            ));
        }
    }
    Ok(())
}

/// What the verify agent is asked.
#[must_use]
pub fn agent_prompt(instruction: &str, verify: &Verify, result: &str) -> String {
    let mut prompt = String::from(
        "You are checking whether another agent really did its task. Do not do the task \
         yourself.\n\nThe task was:\n",
    );
    prompt.push_str(instruction);
    if let Some(what) = verify
        .instruction
        .as_deref()
        .filter(|w| !w.trim().is_empty())
    {
        prompt.push_str("\n\nWhat to check: ");
        prompt.push_str(what);
    }
    prompt.push_str("\n\nIts result:\n");
    if result.chars().count() > VERIFY_RESULT_CHARS {
        prompt.push_str(&cut(result, VERIFY_RESULT_CHARS));
    } else {
        prompt.push_str(result);
    }
    prompt.push_str(
        "\n\nExplain briefly if you like, then end your answer with one line that is exactly \
         PASS if the task was done, or FAIL: <the reason> if it was not.",
    );
    prompt
}

/// The verify agent's verdict, from the last line of what it printed.
pub fn agent_verdict(agent: &str, answer: &str) -> Result<(), String> {
    let last = answer
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    // Agents dress a verdict up: `**PASS**`, `` `FAIL: x` ``, `Verdict: PASS.`
    let plain = last.trim_matches(|c: char| matches!(c, '*' | '`' | '_' | '"' | '\'' | '.' | ' '));
    let plain = plain
        .strip_prefix("Verdict:")
        .or_else(|| plain.strip_prefix("VERDICT:"))
        .map_or(plain, str::trim_start);
    let upper = plain.to_ascii_uppercase();
    if upper == "PASS" || upper == "PASSED" {
        return Ok(());
    }
    if let Some(rest) = upper.strip_prefix("FAIL") {
        let reason = plain[plain.len() - rest.len()..]
            .trim_start_matches(['E', 'D', 'e', 'd'])
            .trim_start_matches([':', '-', ' ', '—'])
            .trim();
        let reason = if reason.is_empty() {
            "no reason given"
        } else {
            reason
        };
        return Err(short(&format!("verify failed: agent `{agent}`: {reason}")));
    }
    let shown: String = last.chars().take(200).collect();
    Err(short(&format!(
        "verify failed: agent `{agent}` gave no verdict (its last line must be PASS or \
         FAIL: <reason>; it was {shown:?})"
    )))
}

fn short(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(json: &str) -> Verify {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn built_in_checks_say_what_failed() {
        let v = verify(r#"{"contains":"X is","matches":"\\d+","json":false,"minChars":5}"#);
        assert_eq!(builtin(&v, "X is 42", &[]), Ok(()));
        assert_eq!(
            builtin(&v, "Y is 42", &[]),
            Err("verify failed: the result does not contain \"X is\"".into())
        );
        assert_eq!(
            builtin(&v, "X is none", &[]),
            Err("verify failed: the result does not match /\\d+/".into())
        );
        assert_eq!(
            builtin(&verify(r#"{"minChars":10}"#), "short", &[]),
            Err("verify failed: the result has 5 characters, fewer than minChars 10".into())
        );
        let json = verify(r#"{"json":true}"#);
        assert_eq!(builtin(&json, " {\"a\":[1]}\n", &[]), Ok(()));
        let e = builtin(&json, "I could not finish", &[]).unwrap_err();
        assert!(
            e.starts_with("verify failed: the result is not JSON (expected value"),
            "{e}"
        );
        let files = verify(r#"{"files":["a.md","b.md","c.md"]}"#);
        assert_eq!(
            builtin(
                &files,
                "",
                &[
                    ("a.md", None),
                    ("b.md", Some(Missing::Empty)),
                    ("c.md", Some(Missing::Absent))
                ]
            ),
            Err("verify failed: files: b.md is empty, c.md is missing".into())
        );
        assert!(!needs_text(&files));
        assert!(needs_text(&json));
    }

    #[test]
    fn the_agents_last_line_is_its_verdict() {
        assert_eq!(agent_verdict("r", "looks fine\nPASS\n\n"), Ok(()));
        assert_eq!(agent_verdict("r", "**PASS**"), Ok(()));
        assert_eq!(agent_verdict("r", "Verdict: PASS."), Ok(()));
        assert_eq!(
            agent_verdict("r", "hmm\nFAIL: the summary cites nothing"),
            Err("verify failed: agent `r`: the summary cites nothing".into())
        );
        assert_eq!(
            agent_verdict("r", "FAILED - empty"),
            Err("verify failed: agent `r`: empty".into())
        );
        assert_eq!(
            agent_verdict("r", "`FAIL`"),
            Err("verify failed: agent `r`: no reason given".into())
        );
        let e = agent_verdict("r", "PASS\nI think it is good").unwrap_err();
        assert!(
            e.contains("gave no verdict") && e.contains("I think it is good"),
            "{e}"
        );
        assert!(agent_verdict("r", "")
            .unwrap_err()
            .contains("gave no verdict"));
    }

    #[test]
    fn the_verify_agent_is_told_the_task_what_to_check_and_the_result() {
        let v = verify(r#"{"agent":"reviewer","instruction":"every claim has a source"}"#);
        let p = agent_prompt("summarise X", &v, "X is 42");
        assert!(p.contains("The task was:\nsummarise X"), "{p}");
        assert!(p.contains("What to check: every claim has a source"), "{p}");
        assert!(p.contains("Its result:\nX is 42"), "{p}");
        assert!(p.ends_with("FAIL: <the reason> if it was not."), "{p}");
        let long = agent_prompt("t", &v, &"z".repeat(VERIFY_RESULT_CHARS * 2));
        assert!(long.len() < VERIFY_RESULT_CHARS + 1000, "{}", long.len());
    }
}
