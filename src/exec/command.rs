//! STEP_AGENT_CMD: split without a shell, found on PATH, judged by the policy, and turned into
//! the argument vector for one prompt.
//!
//! The prompt is data. It goes in as exactly one argument: in place of a `{prompt}` token (which
//! may sit inside a word, as in `--message={prompt}`), or as the path of a file holding it in
//! place of `{prompt_file}`, or else appended last as the Python version did; for a known agent
//! CLI, where that agent takes it (after `--`, or as `--option=<prompt>`). A prompt that would
//! be read as an option is refused for that try (`policy::prompt_problem`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::{env, fs};

use anyhow::{anyhow, bail, Result};

use super::openclaw;
use super::policy::{self, Judgement, Kind, Trust};
use super::shells::System;

/// The variable that names the agent command.
pub const VAR: &str = "STEP_AGENT_CMD";
pub const PROMPT_TOKEN: &str = "{prompt}";
pub const PROMPT_FILE_TOKEN: &str = "{prompt_file}";
/// Linux refuses a single argument of 32 pages (128 KiB) or more, with E2BIG.
pub const MAX_ARG_BYTES: usize = 128 * 1024 - 1;

/// The fix every refusal ends with.
fn suggestion() -> String {
    format!(
        "use the agent's own command, e.g. STEP_AGENT_CMD='{}'",
        openclaw::RECOMMENDED_AGENT
    )
}

/// A checked agent command, ready to be given prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCommand {
    /// The command with the prompt's place marked (the policy's template).
    words: Vec<String>,
    program: PathBuf,
    judgement: Judgement,
    /// Where the command came from (`STEP_AGENT_CMD`, or a named agent), for messages.
    label: String,
}

impl AgentCommand {
    /// Checks a command line (`None`: the variable is unset); relative program paths are taken
    /// from `workspace`, where the agent will run. `under_exec_marker` says whether OpenClaw's
    /// exec marker is set: a command that cannot work there is refused now rather than
    /// failing every try. `trust` is `STEP_AGENT_TRUST`.
    pub fn parse(
        raw: Option<&str>,
        path: Option<&OsStr>,
        workspace: &Path,
        under_exec_marker: bool,
        trust: &Trust,
    ) -> Result<Self> {
        Self::parse_as(VAR, raw, path, workspace, under_exec_marker, trust)
    }

    /// [`AgentCommand::parse`] for a command that is not `STEP_AGENT_CMD` (a named agent):
    /// `label` says which, in every message. The policy is the same.
    pub fn parse_as(
        label: &str,
        raw: Option<&str>,
        path: Option<&OsStr>,
        workspace: &Path,
        under_exec_marker: bool,
        trust: &Trust,
    ) -> Result<Self> {
        let raw = raw.unwrap_or_default();
        if raw.trim().is_empty() {
            bail!(
                "{label} is not set: it names the agent that runs each step; {}",
                suggestion()
            );
        }
        let words = shell_words::split(raw)
            .map_err(|e| anyhow!("{label} cannot be parsed ({e}): {raw}"))?;
        let Some(first) = words.first() else {
            bail!("{label} is empty; {}", suggestion());
        };
        if first.contains(PROMPT_TOKEN) || first.contains(PROMPT_FILE_TOKEN) {
            bail!(
                "{label} is refused: the program itself cannot be the prompt; {}",
                suggestion()
            );
        }
        let system = System::new(path, workspace);
        let program = find_program(first, path, workspace)
            .ok_or_else(|| anyhow!("{label}: {}", not_found(first, workspace)))?;
        let judgement = policy::judge(&words, &system, trust)
            .map_err(|why| anyhow!("{label} is refused: {why}; {}", suggestion()))?;
        if under_exec_marker {
            if let Some(why) = openclaw::refused_under_exec_marker(&words) {
                bail!("{label} is refused here: {why}");
            }
        }
        Ok(Self {
            words: judgement.template.clone(),
            program,
            judgement,
            label: label.to_owned(),
        })
    }

    /// What reads the prompt: a known agent (and where it takes the prompt), a program the
    /// operator vouched for, or the user's own program.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.judgement.kind
    }

    /// Whether a prompt that starts with `-` would be refused: the command puts the prompt
    /// where the program reads options.
    #[must_use]
    pub fn exposes_dash(&self) -> bool {
        policy::prompt_problem(&self.judgement, "-").is_some()
    }

    /// The program that reads the prompt, as written (behind any wrappers).
    #[must_use]
    pub fn reader(&self) -> &str {
        &self.words[self.judgement.program_at]
    }

    /// The program's real path (symlinks resolved): what the policy judged and what is run.
    #[must_use]
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The program as the user wrote it, used as `argv[0]`.
    #[must_use]
    pub fn program_word(&self) -> &str {
        &self.words[0]
    }

    #[must_use]
    pub fn wants_prompt_file(&self) -> bool {
        self.words.iter().any(|w| w.contains(PROMPT_FILE_TOKEN))
    }

    /// The arguments after the program for one prompt; `prompt_file` is the path that replaces
    /// `{prompt_file}`. Fails, naming the fix, when the prompt would be read as an option or
    /// an argument would exceed the kernel's limit.
    pub fn args(&self, prompt: &str, prompt_file: Option<&Path>) -> Result<Vec<String>, String> {
        if let Some(why) = policy::prompt_problem(&self.judgement, prompt) {
            return Err(why);
        }
        let file = prompt_file.map(|p| p.to_string_lossy().into_owned());
        // The policy's template always holds the prompt's place.
        let args: Vec<String> = self.words[1..]
            .iter()
            .map(|word| {
                let mut word = word.clone();
                if let Some(file) = &file {
                    word = word.replace(PROMPT_FILE_TOKEN, file);
                }
                word.replace(PROMPT_TOKEN, prompt)
            })
            .collect();
        if let Some(long) = args.iter().find(|a| a.len() > MAX_ARG_BYTES) {
            return Err(format!(
                "the prompt makes an argument of {} bytes, over the kernel's limit of 128 KiB per \
                 argument: put {PROMPT_FILE_TOKEN} in {} so the agent reads the prompt from a file",
                long.len(),
                self.label
            ));
        }
        Ok(args)
    }
}

/// Why `word` names no program to run, in the words that lead to the fix: a path is taken
/// from the workspace (where the agent runs), a bare name from PATH, and no shell expands
/// `~` or `$HOME` in the command.
fn not_found(word: &str, workspace: &Path) -> String {
    if word.starts_with('~') || word.contains('$') {
        return format!(
            "program `{word}` not found: no shell expands `~` or `$` in the agent command \
             (it is split, never run by a shell); write the program's full path"
        );
    }
    if word.contains('/') {
        let place = if word.starts_with('/') {
            String::new()
        } else {
            format!(
                " in the workspace {} (a relative path is taken from the state file's folder, \
                 where the agent runs)",
                workspace.display()
            )
        };
        let why = if workspace.join(word).exists() {
            "is not an executable file (chmod +x it, or add its interpreter: python3 script.py)"
        } else {
            "not found"
        };
        return format!("program `{word}` {why}{place}");
    }
    format!("program `{word}` not found on PATH (or not executable)")
}

/// Finds a program as exec would: a word with a slash is a path (relative to `workspace`),
/// otherwise the first executable file of that name on `path`. Returns the real path.
#[must_use]
pub fn find_program(word: &str, path: Option<&OsStr>, workspace: &Path) -> Option<PathBuf> {
    if word.is_empty() {
        return None;
    }
    let candidates: Vec<PathBuf> = if word.contains('/') {
        vec![workspace.join(word)]
    } else {
        env::split_paths(path.unwrap_or_default())
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(word))
            .collect()
    };
    candidates.into_iter().find_map(|candidate| {
        let real = fs::canonicalize(candidate).ok()?;
        is_executable(&real).then_some(real)
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<AgentCommand> {
        AgentCommand::parse(
            Some(raw),
            Some(OsStr::new("/usr/bin:/bin")),
            Path::new("/"),
            false,
            &Trust::default(),
        )
    }

    #[test]
    fn unset_empty_and_unbalanced_name_the_variable() {
        for raw in ["", "   "] {
            let e = parse(raw).unwrap_err().to_string();
            assert!(e.starts_with("STEP_AGENT_CMD is not set"), "{e}");
        }
        let e = AgentCommand::parse(None, None, Path::new("/"), false, &Trust::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("STEP_AGENT_CMD is not set") && e.contains("openclaw agent"),
            "{e}"
        );
        let e = parse("echo 'unclosed").unwrap_err().to_string();
        assert!(e.starts_with("STEP_AGENT_CMD cannot be parsed"), "{e}");
    }

    #[test]
    fn a_missing_path_says_where_it_was_looked_for_and_that_no_shell_expands_tildes() {
        let ws = Path::new("/nonexistent-ws");
        assert_eq!(
            not_found("./myagent.sh", ws),
            "program `./myagent.sh` not found in the workspace /nonexistent-ws (a relative path \
             is taken from the state file's folder, where the agent runs)"
        );
        assert_eq!(
            not_found("/opt/x/agent", ws),
            "program `/opt/x/agent` not found"
        );
        for word in ["~/bin/agent", "$HOME/bin/agent"] {
            assert!(
                not_found(word, ws).contains("no shell expands `~` or `$`"),
                "{word}"
            );
        }
        let here = std::env::temp_dir();
        let file = tempfile::NamedTempFile::new_in(&here).unwrap();
        let name = format!("./{}", file.path().file_name().unwrap().to_string_lossy());
        assert!(
            not_found(&name, &here).contains("is not an executable file"),
            "{}",
            not_found(&name, &here)
        );
    }

    #[test]
    fn missing_programs_are_reported() {
        let e = parse("no-such-agent-xyz --message")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "STEP_AGENT_CMD: program `no-such-agent-xyz` not found on PATH (or not executable)"
        );
    }

    #[test]
    fn shells_are_refused_with_a_suggestion() {
        let e = parse("bash -c").unwrap_err().to_string();
        assert!(e.starts_with("STEP_AGENT_CMD is refused:"), "{e}");
        assert!(e.contains(openclaw::RECOMMENDED_AGENT), "{e}");
    }

    #[test]
    fn the_prompt_is_one_argument_wherever_it_goes() {
        let cmd = parse("echo --message").unwrap();
        assert_eq!(cmd.program_word(), "echo");
        assert_eq!(
            cmd.args("a b; $(x)", None).unwrap(),
            ["--message", "a b; $(x)"]
        );
        let cmd = parse("echo --message={prompt} --json").unwrap();
        assert_eq!(
            cmd.args("hi there", None).unwrap(),
            ["--message=hi there", "--json"]
        );
        let cmd = parse("echo -- {prompt}").unwrap();
        assert_eq!(
            cmd.args("{prompt_file}", None).unwrap(),
            ["--", "{prompt_file}"]
        );
        let cmd = parse("echo --message-file {prompt_file}").unwrap();
        assert!(cmd.wants_prompt_file());
        assert_eq!(
            cmd.args("x", Some(Path::new("/tmp/p.txt"))).unwrap(),
            ["--message-file", "/tmp/p.txt"]
        );
    }

    #[test]
    fn a_prompt_too_long_for_one_argument_is_a_clear_error() {
        let cmd = parse("echo").unwrap();
        let e = cmd.args(&"x".repeat(200_000), None).unwrap_err();
        assert!(
            e.contains("200000 bytes") && e.contains("{prompt_file}"),
            "{e}"
        );
        let cmd = parse("echo {prompt_file}").unwrap();
        assert!(cmd
            .args(&"x".repeat(200_000), Some(Path::new("/p")))
            .is_ok());
    }
}
