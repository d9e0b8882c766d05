//! The agent CLIs this project knows, and where each takes its prompt.
//!
//! A known agent is trusted with any of its own flags: it is an agent, it does not run its
//! arguments as code. What the policy must get right is where the prompt goes, so that it is
//! read as the prompt and never as an option or a subcommand, whatever it starts with. Each
//! entry says how its CLI parses that, from its documentation (`source`), and the runner puts
//! the prompt there:
//!
//! - after `--`, for CLIs whose prompt is a positional argument and whose parser ends its
//!   options at `--` (commander.js, clap, yargs' `"--"` list, cobra);
//! - as `--option=<prompt>`, for CLIs whose prompt is an option's value: glued with `=`, a
//!   value is taken whole by commander.js, yargs, argparse and clap, while `-p <prompt>` as
//!   two words is not (yargs and argparse will not take a value that starts with `-`).
//!
//! A `{prompt}` the user placed is moved to that place; one that would be another option's
//! value (`claude --settings {prompt}`) is refused.

use super::{has_placeholder, rejection, Rejection, PROMPT, PROMPT_FILE};
use crate::exec::openclaw::{AGENT_VALUE_OPTIONS, GLOBAL_VALUE_OPTIONS};

/// Where an agent takes its prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A positional argument, after `--`.
    AfterDashDash,
    /// The value of this long option, as `--option=<prompt>`.
    Option(&'static str),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AfterDashDash => write!(f, "after `--`"),
            Self::Option(long) => write!(f, "as `{long}=<prompt>`"),
        }
    }
}

/// One agent CLI and its prompt convention.
#[derive(Debug)]
pub struct Agent {
    /// The name in docs and messages.
    pub name: &'static str,
    names: &'static [&'static str],
    /// Subcommands that take the prompt; `command_required`: one of them must lead.
    commands: &'static [&'static str],
    command_required: bool,
    /// Subcommands that take no prompt (a prompt after `--` would be their operand).
    other_commands: &'static [&'static str],
    /// Options whose value is the next word, so that word is not taken for a subcommand.
    value_opts: &'static [&'static [&'static str]],
    /// Options whose value is the prompt: (short, long); the long one is used glued.
    prompt_opts: &'static [(&'static str, &'static str)],
    /// Options whose value is a file holding the prompt.
    file_opts: &'static [&'static str],
    /// Flags after which the documented form writes the prompt as a positional (`claude -p`).
    print_flags: &'static [&'static str],
    pub place: Place,
    /// A subcommand after `commands` that takes the prompt elsewhere (`openclaw agent exec`).
    sub_place: Option<(&'static str, Place)>,
    /// Prompt beginnings the agent runs as its own commands, not as a prompt.
    pub command_prefixes: &'static [&'static str],
    /// What the convention above was taken from.
    pub source: &'static str,
}

/// Agents are told apart by name: each appears once in `AGENTS`.
impl PartialEq for Agent {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Agent {}

const NONE: &[&str] = &[];

#[rustfmt::skip]
pub const AGENTS: &[Agent] = &[
    Agent {
        name: "openclaw",
        names: &["openclaw"],
        commands: &["agent"],
        command_required: true,
        other_commands: NONE,
        value_opts: &[GLOBAL_VALUE_OPTIONS, AGENT_VALUE_OPTIONS],
        prompt_opts: &[("-m", "--message")],
        file_opts: &["--message-file"],
        print_flags: NONE,
        place: Place::Option("--message"),
        sub_place: Some(("exec", Place::AfterDashDash)),
        command_prefixes: NONE,
        source: "openclaw 2026.9.6 `openclaw agent --help` and `openclaw agent exec --help` \
                 (shared/reference/openclaw.md): `agent -m/--message <text>`, `--message-file \
                 <path>`, `agent exec [message]`; commander.js, which ends options at `--` and \
                 reads `--message=<text>` whole",
    },
    Agent {
        name: "claude",
        names: &["claude"],
        commands: NONE,
        command_required: false,
        other_commands: &["mcp", "plugin", "plugins", "config", "update", "install", "doctor",
                          "setup-token", "migrate-installer"],
        value_opts: &[&["--model", "--fallback-model", "--output-format", "--input-format",
            "--append-system-prompt", "--system-prompt", "--permission-mode",
            "--permission-prompt-tool", "--settings", "--setting-sources", "--session-id", "-r",
            "--resume", "--max-turns", "--agents", "--agent", "--add-dir", "--allowedTools",
            "--allowed-tools", "--disallowedTools", "--disallowed-tools", "--mcp-config", "--tools",
            "--betas", "--plugin-dir", "--max-budget-usd", "--json-schema"]],
        prompt_opts: &[],
        file_opts: NONE,
        print_flags: &["-p", "--print"],
        place: Place::AfterDashDash,
        sub_place: None,
        command_prefixes: NONE,
        source: "Claude Code CLI reference (docs.anthropic.com/en/docs/claude-code/cli-reference): \
                 `claude [options] [prompt]`, `claude -p \"query\"`, `claude -c -p \"query\"`; \
                 commander.js, where `--` ends the options, the variadic lists of `--add-dir` \
                 and `--allowedTools` included",
    },
    Agent {
        name: "codex",
        names: &["codex"],
        commands: &["exec", "e"],
        command_required: false,
        other_commands: &["mcp", "mcp-server", "login", "logout", "apply", "a", "sandbox", "debug",
                          "completion", "cloud", "app-server", "proto", "generate-ts", "features",
                          "responses-api-proxy", "resume"],
        value_opts: &[&["-c", "--config", "-m", "--model", "-p", "--profile", "-s", "--sandbox",
            "-a", "--ask-for-approval", "-C", "--cd", "-i", "--image", "--enable", "--disable",
            "--local-provider", "--output-schema", "--color", "-o", "--output-last-message",
            "--add-dir"]],
        prompt_opts: &[],
        file_opts: NONE,
        print_flags: NONE,
        place: Place::AfterDashDash,
        sub_place: None,
        command_prefixes: NONE,
        source: "`codex exec --help` (openai/codex docs/exec.md): `codex exec [OPTIONS] [PROMPT]`, \
                 `-c key=value` overrides; clap, where `--` ends the options",
    },
    Agent {
        name: "gemini",
        names: &["gemini"],
        commands: NONE,
        command_required: false,
        other_commands: &["mcp", "extensions", "extension", "skills", "skill", "hooks", "hook",
                          "gemma"],
        value_opts: &[&["-m", "--model", "-e", "--extensions", "--approval-mode",
            "--allowed-tools", "--allowed-mcp-server-names", "--include-directories", "-o",
            "--output-format", "-r", "--resume", "--proxy", "--delete-session",
            "--telemetry-target", "--telemetry-otlp-endpoint"]],
        prompt_opts: &[("-p", "--prompt"), ("-i", "--prompt-interactive")],
        file_opts: NONE,
        print_flags: NONE,
        place: Place::Option("--prompt"),
        sub_place: None,
        command_prefixes: NONE,
        source: "Gemini CLI headless mode and `gemini --help` (geminicli.com/docs/cli/headless): \
                 `-p/--prompt <string>` runs one headless turn; yargs-parser takes \
                 `--prompt=<value>` whole, but gives `-p` no value that starts with `-`",
    },
    Agent {
        name: "qwen",
        names: &["qwen"],
        commands: NONE,
        command_required: false,
        other_commands: &["mcp", "extensions", "extension"],
        value_opts: &[&["-m", "--model", "-e", "--extensions", "--approval-mode",
            "--allowed-tools", "--include-directories", "-o", "--output-format", "--proxy"]],
        prompt_opts: &[("-p", "--prompt"), ("-i", "--prompt-interactive")],
        file_opts: NONE,
        print_flags: NONE,
        place: Place::Option("--prompt"),
        sub_place: None,
        command_prefixes: NONE,
        source: "Qwen Code, a fork of Gemini CLI: the same `-p/--prompt <string>` and yargs parsing",
    },
    Agent {
        name: "aider",
        names: &["aider"],
        commands: NONE,
        command_required: false,
        other_commands: NONE,
        value_opts: &[],
        prompt_opts: &[("-m", "--message"), ("", "--msg")],
        file_opts: &["-f", "--message-file"],
        print_flags: NONE,
        place: Place::Option("--message"),
        sub_place: None,
        command_prefixes: &["/", "!"],
        source: "aider --help (aider.chat/docs/scripting.html): `--message/-m` sends one message \
                 and exits, `--message-file/-f`, positional arguments are files to edit; \
                 argparse takes `--message=<value>` whole; aider/commands.py `is_command`: a \
                 message starting with `/` or `!` is an in-chat command (`!` and `/run` run \
                 shell commands)",
    },
    Agent {
        name: "goose",
        names: &["goose"],
        commands: &["run"],
        command_required: true,
        other_commands: NONE,
        value_opts: &[&["-n", "--name", "--path", "--with-extension", "--with-remote-extension",
            "--with-streamable-http-extension", "--with-builtin", "--recipe", "--params",
            "--provider", "--model", "--max-turns", "--sub-recipe", "--system"]],
        prompt_opts: &[("-t", "--text")],
        file_opts: &["-i", "--instructions"],
        print_flags: NONE,
        place: Place::Option("--text"),
        sub_place: None,
        command_prefixes: NONE,
        source: "goose guide, Running Tasks (block.github.io/goose/docs/guides/running-tasks): \
                 `goose run -t <text>` or `goose run -i <file>`; clap takes `--text=<value>` whole",
    },
    Agent {
        name: "opencode",
        names: &["opencode"],
        commands: &["run"],
        command_required: true,
        other_commands: NONE,
        value_opts: &[&["-m", "--model", "-s", "--session", "--agent", "--format", "-f", "--file",
            "--title", "--attach", "--port", "--dir", "--variant", "--command"]],
        prompt_opts: &[],
        file_opts: NONE,
        print_flags: NONE,
        place: Place::AfterDashDash,
        sub_place: None,
        command_prefixes: NONE,
        source: "opencode CLI docs, `opencode run [message..]`; its run command joins the \
                 message with the words after `--` (`[...args.message, ...args[\"--\"]]`)",
    },
    Agent {
        name: "cursor-agent",
        names: &["cursor-agent"],
        commands: NONE,
        command_required: false,
        other_commands: &["login", "logout", "status", "whoami", "update", "upgrade", "mcp", "ls",
                          "resume", "create-chat", "install-shell-integration",
                          "uninstall-shell-integration", "generate-rule", "rule", "models", "about"],
        value_opts: &[&["--model", "--output-format", "--api-key", "-H", "--header", "--resume",
            "--workspace", "--mode", "--sandbox", "--worktree-base", "-n", "--name"]],
        prompt_opts: &[],
        file_opts: NONE,
        print_flags: &["-p", "--print"],
        place: Place::AfterDashDash,
        sub_place: None,
        command_prefixes: NONE,
        source: "Cursor CLI docs, headless (cursor.com/docs/cli/headless): `cursor-agent -p \
                 [prompt...]`, the prompt positional; `--` assumed to end its options as in \
                 every Node CLI parser (its source is not public)",
    },
];

/// The known agent a program family names.
#[must_use]
pub fn find(family: &str) -> Option<&'static Agent> {
    AGENTS.iter().find(|a| a.names.contains(&family))
}

impl Agent {
    fn takes_value(&self, word: &str) -> bool {
        self.value_opts.iter().any(|t| t.contains(&word))
            || self.file_opts.contains(&word)
            || self.prompt_long(word).is_some()
    }

    /// The long form of the prompt option `word` (`-p` → `--prompt`), if it is one.
    fn prompt_long(&self, word: &str) -> Option<&'static str> {
        self.prompt_opts
            .iter()
            .find(|(short, long)| word == *long || (!short.is_empty() && word == *short))
            .map(|(_, long)| *long)
    }

    /// `--prompt=…` or `-p…` (a short prompt option with its value glued): the word in the
    /// glued long form, if it is one.
    fn glued_prompt(&self, word: &str) -> Option<String> {
        self.prompt_opts.iter().find_map(|(short, long)| {
            if word.starts_with(&format!("{long}=")) {
                Some(word.to_owned())
            } else if !short.is_empty() && word.len() > short.len() && word.starts_with(short) {
                Some(format!("{long}={}", &word[short.len()..]))
            } else {
                None
            }
        })
    }

    fn is_prompt_file_value(&self, previous: Option<&String>, word: &str) -> bool {
        (word == PROMPT_FILE && previous.is_some_and(|p| self.file_opts.contains(&p.as_str())))
            || self
                .file_opts
                .iter()
                .any(|f| f.starts_with("--") && word == format!("{f}={PROMPT_FILE}"))
    }

    /// The words before `--` that are not options or option values: the subcommands.
    fn positionals<'a>(&self, args: &'a [String]) -> Vec<&'a str> {
        let mut out = Vec::new();
        let mut skip = false;
        for word in args {
            if std::mem::take(&mut skip) {
                continue;
            }
            if word == "--" {
                break;
            }
            if word.starts_with('-') && word != "-" {
                skip = self.takes_value(word);
            } else if !has_placeholder(word) {
                out.push(word.as_str());
            }
        }
        out
    }

    /// Where this command (the agent's arguments, `args`) takes the prompt, or why it takes none.
    fn place_for(&self, args: &[String]) -> Result<Place, Rejection> {
        let positionals = self.positionals(args);
        let first = positionals.first().copied();
        if self.command_required && !first.is_some_and(|f| self.commands.contains(&f)) {
            return Err(rejection(
                self.name,
                format!(
                    "takes a prompt only as `{} {}`{}",
                    self.name,
                    self.commands.join("`/`"),
                    first.map_or(String::new(), |f| format!(", not `{} {f}`", self.name))
                ),
            ));
        }
        if let Some(other) = first.filter(|f| self.other_commands.contains(f)) {
            return Err(rejection(
                self.name,
                format!(
                    "with `{other}` takes no prompt: the prompt would be an operand of `{} \
                     {other}`; if `{other}` is an option's value, write it as \
                     `--option={other}`",
                    self.name
                ),
            ));
        }
        Ok(match self.sub_place {
            Some((word, place)) if positionals.get(1) == Some(&word) => place,
            _ => self.place,
        })
    }

    /// The command with the prompt where this agent takes it: `words[at]` is the agent,
    /// `words` holds no placeholder the runner added. Returns the words with `{prompt}` or
    /// `{prompt_file}` in their places, and the place.
    pub(super) fn normalise(
        &self,
        words: &[String],
        at: usize,
    ) -> Result<(Vec<String>, Place), Rejection> {
        let place = self.place_for(&words[at + 1..])?;
        let mut out: Vec<String> = words[..=at].to_vec();
        let mut tail = Vec::new();
        let mut after_dash_dash = false;
        let placed = words.iter().any(|w| has_placeholder(w));
        for word in &words[at + 1..] {
            if word == "--" && !after_dash_dash {
                after_dash_dash = true;
                out.push(word.clone());
                continue;
            }
            if after_dash_dash || !has_placeholder(word) {
                out.push(word.clone());
                continue;
            }
            let previous = out.get(at + 1..).and_then(<[String]>::last);
            if !word.contains(PROMPT) && self.is_prompt_file_value(previous, word) {
                out.push(word.clone());
            } else if let Some(glued) = self.glued_prompt(word) {
                out.push(glued);
            } else if let Some(long) = previous.and_then(|p| self.prompt_long(p)) {
                out.pop();
                out.push(format!("{long}={word}"));
            } else if let Some(option) =
                Some(word).filter(|w| w.starts_with('-')).or(previous
                    .filter(|p| p.starts_with('-') && !self.print_flags.contains(&p.as_str())))
            {
                let option = option.split('=').next().unwrap_or(option);
                return Err(rejection(
                    self.name,
                    format!(
                        "would get `{word}` as the value of `{option}`, which is not where {} \
                         takes its prompt ({}); leave the placeholder out and the runner \
                         passes the prompt {place}",
                        self.name,
                        self.prompt_forms()
                    ),
                ));
            } else {
                match place {
                    Place::AfterDashDash => tail.push(word.clone()),
                    Place::Option(long) => out.push(format!("{long}={word}")),
                }
            }
        }
        let trailing = out.get(at + 1..).and_then(<[String]>::last);
        let appending = !placed || !tail.is_empty();
        if let Some(option) = trailing.filter(|t| {
            appending && !after_dash_dash && self.takes_value(t) && self.prompt_long(t).is_none()
        }) {
            return Err(rejection(
                self.name,
                format!(
                    "ends with `{option}`, which takes a value: the prompt, or the `--` before \
                     it, would become that value; give `{option}` its value"
                ),
            ));
        }
        if !placed {
            match (trailing.and_then(|t| self.prompt_long(t)), place) {
                (Some(long), _) => {
                    out.pop();
                    out.push(format!("{long}={PROMPT}"));
                }
                (None, Place::Option(long)) => out.push(format!("{long}={PROMPT}")),
                (None, Place::AfterDashDash) => tail.push(PROMPT.to_owned()),
            }
        }
        if !tail.is_empty() {
            if !after_dash_dash {
                out.push("--".to_owned());
            }
            out.extend(tail);
        }
        Ok((out, place))
    }

    /// The documented prompt positions, for messages: `-p/--prompt`, `--message-file`, ….
    #[must_use]
    pub fn prompt_forms(&self) -> String {
        let mut forms: Vec<String> = self
            .prompt_opts
            .iter()
            .map(|(s, l)| {
                if s.is_empty() {
                    (*l).to_owned()
                } else {
                    format!("{s}/{l}")
                }
            })
            .collect();
        forms.extend(self.file_opts.iter().map(|f| format!("{f} {PROMPT_FILE}")));
        if self.place == Place::AfterDashDash || self.sub_place.is_some() {
            forms.push("a positional after `--`".to_owned());
        }
        forms.join(", ")
    }
}
