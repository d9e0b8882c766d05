//! The operator's named agents: a TOML file outside the workspace (`STEP_AGENTS_FILE`, by
//! default `~/.config/agent-step-sequencer/agents.toml`) that gives each agent a command:
//!
//! ```toml
//! [agents.researcher]
//! command = "openclaw agent exec --timeout 0 --session-key research --message-file {prompt_file}"
//! ```
//!
//! A plan only ever names one of these (`agent`, `fallbackAgents`, `verify.agent`,
//! `compressAgent`): state.json is written by an agent and may carry a stranger's text, so it
//! chooses among the commands the operator wrote and can never define one. Each command passes
//! the same policy as `STEP_AGENT_CMD`, which stays the default agent (the name `default`).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;

use crate::core::model::DEFAULT_AGENT;
use crate::format::validate::{is_agent_name, MAX_AGENT_NAME_BYTES};

/// The variable that names the agents file.
pub const FILE_VAR: &str = "STEP_AGENTS_FILE";
/// An agents file larger than this is a mistake, not a list of commands.
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    agents: BTreeMap<String, Definition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Definition {
    command: String,
}

/// The agents the operator defined, and the file they came from (for messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agents {
    path: Option<PathBuf>,
    commands: BTreeMap<String, String>,
}

impl Agents {
    /// Reads the agents file at `path`; a file that does not exist defines no agents.
    /// `workspace`: a file inside it is refused, since the agent could rewrite it.
    pub fn load(path: Option<&Path>, workspace: &Path) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let shown = path.display();
        let mut file = match crate::store::read::open_regular(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: Some(path.to_owned()),
                    commands: BTreeMap::new(),
                })
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read the agents file {shown}"))
            }
        };
        if let (Ok(real), Ok(ws)) = (fs::canonicalize(path), fs::canonicalize(workspace)) {
            if real.starts_with(&ws) {
                bail!(
                    "the agents file {shown} is inside the workspace {}, where the agent could \
                     rewrite it: keep it outside (the default is \
                     ~/.config/agent-step-sequencer/agents.toml)",
                    ws.display()
                );
            }
        }
        let mut text = String::new();
        file.by_ref()
            .take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read the agents file {shown} as UTF-8 text"))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            bail!("the agents file {shown} is over 1 MiB");
        }
        Self::parse(&text, path)
    }

    /// The agents of a file's text; `path` names it in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let shown = path.display();
        let shape: FileShape = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("the agents file {shown}: {}", e.to_string().trim()))?;
        let mut commands = BTreeMap::new();
        for (name, definition) in shape.agents {
            if name == DEFAULT_AGENT {
                bail!(
                    "the agents file {shown}: `{DEFAULT_AGENT}` is STEP_AGENT_CMD's name; give \
                     this agent another"
                );
            }
            if !is_agent_name(&name) {
                bail!(
                    "the agents file {shown}: {name:?} is not a usable name (letters, digits, \
                     `_`, `-`, `.`; at most {MAX_AGENT_NAME_BYTES} bytes)"
                );
            }
            commands.insert(name, definition.command);
        }
        Ok(Self {
            path: Some(path.to_owned()),
            commands,
        })
    }

    /// The command of the agent `name`, or why there is none.
    pub fn command(&self, name: &str) -> Result<&str> {
        match (self.commands.get(name), &self.path) {
            (Some(command), _) => Ok(command),
            (None, Some(path)) => bail!(
                "no agent named `{name}` in {} (a plan can only name the operator's agents; \
                 define it there as [agents.{name}] with a command)",
                path.display()
            ),
            (None, None) => bail!(
                "no agent named `{name}`: there is no agents file ({FILE_VAR} is unset and \
                 there is no home folder)"
            ),
        }
    }

    /// The agents' names and commands, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.commands.iter().map(|(n, c)| (n.as_str(), c.as_str()))
    }

    /// The file the agents come from, if there is one.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Where the agents file is: `STEP_AGENTS_FILE` if set, else under `$XDG_CONFIG_HOME` or
/// `~/.config`.
#[must_use]
pub fn file_path(
    var: Option<PathBuf>,
    xdg: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    if let Some(path) = var.filter(|p| !p.as_os_str().is_empty()) {
        return Some(path);
    }
    let config = xdg
        .filter(|p| p.is_absolute())
        .or_else(|| home.filter(|h| h.is_absolute()).map(|h| h.join(".config")))?;
    Some(config.join("agent-step-sequencer").join("agents.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Agents> {
        Agents::parse(text, Path::new("/etc/agents.toml"))
    }

    #[test]
    fn agents_are_read_by_name() {
        let agents = parse(
            "[agents.researcher]\ncommand = \"openclaw agent --message\"\n\
             [agents.reviewer]\ncommand = 'claude -p'\n",
        )
        .unwrap();
        assert_eq!(agents.command("reviewer").unwrap(), "claude -p");
        let e = agents.command("writer").unwrap_err().to_string();
        assert!(
            e.starts_with("no agent named `writer` in /etc/agents.toml"),
            "{e}"
        );
        assert_eq!(parse("").unwrap().iter().count(), 0);
    }

    #[test]
    fn mistakes_in_the_file_are_named() {
        for (text, expected) in [
            ("[agents.a]\ncomand = 'x'\n", "unknown field `comand`"),
            ("[agents.a]\n", "missing field `command`"),
            (
                "[agents.default]\ncommand = 'x'\n",
                "is STEP_AGENT_CMD's name",
            ),
            ("[agents.\"a b\"]\ncommand = 'x'\n", "is not a usable name"),
            ("[agent.a]\ncommand = 'x'\n", "unknown field `agent`"),
            ("[agents.a\n", "/etc/agents.toml"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
            assert!(e.contains("/etc/agents.toml"), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_file_is_found_where_the_operator_keeps_settings() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(file_path(p("/x.toml"), p("/xdg"), p("/h")), p("/x.toml"));
        assert_eq!(
            file_path(None, p("/xdg"), p("/h")),
            p("/xdg/agent-step-sequencer/agents.toml")
        );
        assert_eq!(
            file_path(None, p("rel"), p("/h")),
            p("/h/.config/agent-step-sequencer/agents.toml")
        );
        assert_eq!(file_path(None, None, None), None);
    }

    #[test]
    fn a_file_inside_the_workspace_is_refused_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("agents.toml");
        fs::write(&inside, "[agents.a]\ncommand = 'x'\n").unwrap();
        let e = Agents::load(Some(&inside), dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("inside the workspace"), "{e}");
        let other = tempfile::tempdir().unwrap();
        assert_eq!(
            Agents::load(Some(&inside), other.path())
                .unwrap()
                .command("a")
                .unwrap(),
            "x"
        );
        let missing = Agents::load(Some(&other.path().join("none.toml")), dir.path()).unwrap();
        assert_eq!(missing.iter().count(), 0);
    }
}
