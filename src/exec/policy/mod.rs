//! The policy for `STEP_AGENT_CMD`: which agent commands may be handed a prompt, and where
//! the prompt goes.
//!
//! # Threat model
//!
//! A step's prompt is untrusted *data*: it may have been written from web content by a
//! stranger. The command is split into argv words (no shell is involved) and the prompt is
//! passed as one argument. That is only safe if the program reading it treats it as data,
//! and if it is read as the prompt, not as an option (`--help`, `--settings={…}`) or a
//! subcommand. The policy is shaped to stop whole classes of mistakes, not names:
//!
//! - **Known agents** (`agents`: openclaw, claude, codex, gemini, qwen, aider, goose,
//!   opencode, cursor-agent) are trusted with any of their own flags, also behind wrappers
//!   (`env`, `timeout`, `nice`, …). Their prompt positions are known, so the prompt is put
//!   after `--` or glued into `--option=<prompt>`, where it cannot be an option.
//! - **Everything else** must show that the prompt is data: it is the user's own program,
//!   never a shell (by any name: versions, distribution suffixes, a symlink, a copy listed in
//!   /etc/shells), an interpreter given code, no script or a module (`python3 -m`), awk/sed
//!   taking their program from the command line, or a tool with an option or an operand that
//!   runs code (`make`, `gdb -ex`, `vim +cmd`, `sqlite3`, `tar -I`, `scp -o`, `find -exec`).
//!   Wrappers and launchers are looked through, and since a program the policy does not
//!   know may be a launcher too, an argument of it that names a shell is refused, and one
//!   that names an interpreter or a code-running tool is judged as the command it would be
//!   (`fakeroot sh -ec`, `dbus-run-session -- perl -E`, `find . -exec sh -ec {prompt} ;`).
//! - **STEP_AGENT_TRUST** names programs the operator vouches for: programs the policy
//!   cannot judge, which never run their arguments as code. Their arguments are not searched;
//!   a shell or interpreter cannot be vouched for.
//! - **A prompt that starts with `-`** is only passed after `--` or glued into an option;
//!   elsewhere the try is refused (`prompt_problem`).
//!
//! # Limits
//!
//! We judge the command, not what a program does with its arguments: a user's own script
//! that `eval`s its arguments, a launcher the policy does not know given `{prompt}` as the
//! program to run (`somelauncher {prompt}`), or an option this module does not know taking
//! the prompt as code, are beyond a command-line check. `--` is taken to end the options of
//! the program that reads the prompt.

mod agents;
mod judge;
mod names;
mod opts;
mod tables;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use agents::{Agent, Place, AGENTS};

pub(crate) const PROMPT: &str = "{prompt}";
pub(crate) const PROMPT_FILE: &str = "{prompt_file}";

/// Why `STEP_AGENT_CMD` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The word of the command that was judged (e.g. "bash", "perl").
    pub program: String,
    /// Why, in plain words, e.g. "is a shell: it would run the prompt as shell code".
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {}", self.program, self.reason)
    }
}

impl std::error::Error for Rejection {}

pub(crate) fn rejection(program: &str, reason: impl Into<String>) -> Rejection {
    Rejection {
        program: program.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn has_placeholder(word: &str) -> bool {
    word.contains(PROMPT) || word.contains(PROMPT_FILE)
}

/// What the policy may ask of the machine about a program word.
pub trait Lookup {
    /// The canonical real path (symlinks resolved) of a program word, if it can be found.
    fn resolve(&self, word: &str) -> Option<PathBuf>;

    /// Whether the file is a shell by what it is, whatever its name: listed in /etc/shells,
    /// or the same file as one.
    fn is_shell_file(&self, _real: &Path) -> bool {
        false
    }
}

impl<F: Fn(&str) -> Option<PathBuf>> Lookup for F {
    fn resolve(&self, word: &str) -> Option<PathBuf> {
        self(word)
    }
}

/// `STEP_AGENT_TRUST`: programs the operator vouches never run their arguments as code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    entries: Vec<String>,
}

impl Trust {
    /// Comma-separated program names (`mytool`) or paths (`/opt/bin/mytool`).
    #[must_use]
    pub fn parse(raw: &str) -> Self {
        Self {
            entries: raw
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    #[must_use]
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Whether the program word (or the real path it resolves to) is vouched for: a name
    /// entry matches the word's file name, a path entry the word or the real path.
    fn vouches_for(&self, word: &str, real: Option<&Path>) -> bool {
        self.entries.iter().any(|entry| {
            if entry.contains('/') {
                entry == word
                    || real.is_some_and(|r| {
                        r == Path::new(entry)
                            || std::fs::canonicalize(entry).is_ok_and(|e| e.as_path() == r)
                    })
            } else {
                Path::new(word)
                    .file_name()
                    .is_some_and(|n| n == entry.as_str())
            }
        })
    }
}

/// What kind of program reads the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A known agent CLI, and where it takes the prompt.
    Agent(&'static Agent, Place),
    /// A program named in STEP_AGENT_TRUST.
    Trusted,
    /// A user's own program or script.
    Program,
}

/// An accepted command, with the prompt's place marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The command's words with `{prompt}` (or `{prompt_file}`) where the prompt goes.
    pub template: Vec<String>,
    /// The index of the program that reads the prompt (behind any wrappers).
    pub program_at: usize,
    /// The first word that is that program's own argument (after an interpreter's script):
    /// a `--` from here on ends its options.
    pub reader_from: usize,
    pub kind: Kind,
}

/// Judges the agent command. `words` is the parsed `STEP_AGENT_CMD`; if no word holds
/// `{prompt}` or `{prompt_file}`, the prompt goes last (or, for a known agent, where it
/// takes it). `lookup` resolves program words; both a word's name and its real path are
/// judged, so `ln -s /bin/bash myagent` is caught.
pub fn judge(words: &[String], lookup: &dyn Lookup, trust: &Trust) -> Result<Judgement, Rejection> {
    let appended = !words.iter().any(|w| has_placeholder(w));
    let mut all = words.to_vec();
    if appended {
        all.push(PROMPT.to_owned());
    }
    if all.len() < 2 {
        return Err(rejection(PROMPT, "is the whole command"));
    }
    let judgement = judge::judge(&all, appended, lookup, trust)?;
    if judgement.kind == Kind::Program {
        refuse_dash_c_e(&judgement.template)?;
        refuse_response_file(&judgement.template)?;
    }
    Ok(judgement)
}

/// `@{prompt_file}` (or `@{prompt}`): a response file, which compilers, `java` and many other
/// programs read as more of their own options (gcc's `-wrapper` runs a command): the prompt
/// would be options, not data.
fn refuse_response_file(words: &[String]) -> Result<(), Rejection> {
    match words
        .iter()
        .find(|w| w.contains("@{prompt}") || w.contains("@{prompt_file}"))
    {
        Some(word) => Err(rejection(
            &words[0],
            format!(
                "is given `{word}`: many programs read `@file` as more of their own options \
                 (gcc's `-wrapper` runs a command), so the prompt would not be data"
            ),
        )),
        None => Ok(()),
    }
}

/// The legacy rule, kept for programs the policy does not know: a bare `-c` or `-e` makes
/// an argument code in too many programs. A known agent's own `-c`/`-e` (`claude -c`,
/// `codex exec -c key=value`, `gemini -e none`) and a vouched-for program's are theirs.
fn refuse_dash_c_e(words: &[String]) -> Result<(), Rejection> {
    match words.iter().find(|w| *w == "-c" || *w == "-e") {
        Some(flag) => Err(rejection(
            &words[0],
            format!(
                "is given `{flag}`: for a program that is not a known agent, `-c`/`-e` is \
                 refused, as it turns an argument into code in too many programs"
            ),
        )),
        None => Ok(()),
    }
}

/// Why this prompt cannot be given to the command, if it cannot: it starts with `-` where
/// the program would read it as an option, or with a prefix the known agent runs as its
/// own command.
#[must_use]
pub fn prompt_problem(judgement: &Judgement, prompt: &str) -> Option<String> {
    let program = &judgement.template[judgement.program_at];
    if let Kind::Agent(agent, _) = judgement.kind {
        let start = prompt.trim_start();
        if let Some(prefix) = agent
            .command_prefixes
            .iter()
            .find(|p| start.starts_with(**p))
        {
            return Some(format!(
                "the instruction starts with `{prefix}`, which {} runs as one of its own \
                 commands rather than as a prompt (`!` and `/run` run shell commands), so \
                 STEP_AGENT_CMD cannot be given it; reword the instruction",
                agent.name
            ));
        }
    }
    if !prompt.starts_with('-') {
        return None;
    }
    let template = &judgement.template;
    let exposed = template.iter().enumerate().any(|(i, word)| {
        word.starts_with(PROMPT)
            && !template[judgement.reader_from.min(i)..i]
                .iter()
                .any(|w| w == "--")
    });
    exposed.then(|| {
        format!(
            "the instruction starts with `-`, and STEP_AGENT_CMD passes it where `{program}` \
             would read it as an option; put `--` before {PROMPT}, pass it as \
             `--option={PROMPT}`, or use {PROMPT_FILE}"
        )
    })
}
