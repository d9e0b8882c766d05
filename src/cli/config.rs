//! The operator's settings, read from the environment once, by the binaries, and checked with
//! a message that names the variable. Nothing below the binaries reads the environment.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use super::paint::Paint;
use crate::core::{AgentRef, Limits};
use crate::exec::agents::{self, Agents};
use crate::exec::command::{AgentCommand, VAR};
use crate::exec::openclaw;
use crate::exec::policy::Trust;

/// The variable naming programs the operator vouches for (see `exec::policy`).
pub const TRUST_VAR: &str = "STEP_AGENT_TRUST";

/// A plan's logs may take this much disk by default (MiB); the oldest go past it.
pub const DEFAULT_LOGS_MB: u64 = 256;

/// The variable naming the state file every binary uses when none is given.
pub const STATE_VAR: &str = "STEP_STATE";
/// The state file when neither an argument nor `STEP_STATE` names one.
pub const DEFAULT_STATE: &str = "state.json";

/// Everything the environment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub limits: Limits,
    /// `STEP_RUNNER`: the runner the check starts, if not the `seq-runner` beside it.
    pub runner: Option<PathBuf>,
    /// `STEP_LOGS_MAX_MB`: the most a plan's logs may take on disk, in bytes.
    pub logs_limit: u64,
    /// `STEP_AGENT_CMD` as given (`Err` if not UTF-8), judged when an agent is needed.
    agent: std::result::Result<Option<String>, String>,
    /// `PATH`, where the agent's program is looked up.
    path: Option<OsString>,
    /// OpenClaw's exec marker is set (see `exec::openclaw`).
    exec_marker: bool,
    /// `STEP_AGENT_TRUST`: programs the operator vouches never run their arguments as code.
    trust: Trust,
    /// `STEP_AGENTS_FILE`, or its default: the operator's named agents.
    agents_file: Option<PathBuf>,
    /// Where state files and paths are found: `HOME` and `STEP_STATE`.
    pub paths: Paths,
    /// Whether what goes to stdout is coloured (see `paint`).
    pub paint: Paint,
}

/// Colour on stdout: a terminal, and neither `NO_COLOR` nor `TERM=dumb` (nor `CLICOLOR=0`);
/// or `CLICOLOR_FORCE`. The conventions anstream follows, read by the crate it reads them with.
fn paint() -> Paint {
    let clicolor = anstyle_query::clicolor();
    let on = !anstyle_query::no_color()
        && (anstyle_query::clicolor_force()
            || (clicolor != Some(false)
                && (anstyle_query::term_supports_color() || clicolor == Some(true))
                && std::io::IsTerminal::is_terminal(&std::io::stdout())));
    Paint { on }
}

/// What a path given on the command line is resolved with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    /// `HOME`, for a leading `~/`.
    pub home: Option<PathBuf>,
    /// `STEP_STATE`: the state file when none is given.
    pub state: Option<PathBuf>,
}

impl Paths {
    fn from_env() -> Self {
        let set = |name| {
            env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            home: set("HOME"),
            state: set(STATE_VAR),
        }
    }

    /// The state file meant: the one given, else `STEP_STATE`, else `state.json`; a leading
    /// `~/` is the home folder (an OpenClaw `--command-argv` reaches us with no shell to
    /// expand it).
    #[must_use]
    pub fn state_file(&self, given: Option<&Path>) -> PathBuf {
        let path = given
            .or(self.state.as_deref())
            .unwrap_or(Path::new(DEFAULT_STATE));
        self.expand(path)
    }

    /// `path` with a leading `~` or `~/` made the home folder.
    #[must_use]
    pub fn expand(&self, path: &Path) -> PathBuf {
        match (&self.home, path.strip_prefix("~")) {
            (Some(home), Ok(rest)) => home.join(rest),
            _ => path.to_path_buf(),
        }
    }
}

impl Config {
    /// Reads the environment. Only the numbers are checked here; the agent command is judged
    /// by [`Config::agent`] when one is needed.
    pub fn from_env() -> Result<Self> {
        let (marker, value) = openclaw::EXEC_MARKER;
        Ok(Self {
            limits: Limits {
                max_tries: number("STEP_MAX_RETRIES", 3, u32::MAX.into())? as u32,
                timeout: Duration::from_secs(number(
                    "STEP_TIMEOUT_SECONDS",
                    Limits::default().timeout.as_secs(),
                    // A century: more is a typo, and it keeps deadline arithmetic far from overflow.
                    100 * 365 * 86_400,
                )?),
            },
            runner: env::var_os("STEP_RUNNER")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            logs_limit: number("STEP_LOGS_MAX_MB", DEFAULT_LOGS_MB, 1 << 30)? << 20,
            agent: match env::var_os(VAR) {
                None => Ok(None),
                Some(raw) => raw
                    .into_string()
                    .map(Some)
                    .map_err(|_| format!("{VAR} is not valid UTF-8")),
            },
            path: env::var_os("PATH"),
            exec_marker: env::var_os(marker).is_some_and(|v| v == value),
            trust: trust(),
            paths: Paths::from_env(),
            paint: paint(),
            agents_file: agents_file(),
        })
    }

    /// The settings for read-only views: a bad number is the check's and the runner's error
    /// to report, so a view falls back to the defaults.
    #[must_use]
    pub fn or_default() -> Self {
        Self::from_env().unwrap_or_else(|_| Self {
            limits: Limits::default(),
            runner: None,
            logs_limit: DEFAULT_LOGS_MB << 20,
            agent: Ok(None),
            path: env::var_os("PATH"),
            exec_marker: false,
            trust: trust(),
            paths: Paths::from_env(),
            paint: paint(),
            agents_file: agents_file(),
        })
    }

    /// The agent command, checked as the runner will run it; relative program paths are taken
    /// from `workspace`, where the agent will run.
    pub fn agent(&self, workspace: &Path) -> Result<AgentCommand> {
        let raw = self.agent.as_ref().map_err(|e| anyhow!("{e}"))?;
        AgentCommand::parse(
            raw.as_deref(),
            self.path.as_deref(),
            workspace,
            self.exec_marker,
            &self.trust,
        )
    }

    /// The operator's named agents (read afresh: the operator may edit them between tries).
    pub fn agents(&self, workspace: &Path) -> Result<Agents> {
        Agents::load(self.agents_file.as_deref(), workspace)
    }

    /// Where the named agents are defined, if anywhere.
    #[must_use]
    pub fn agents_file(&self) -> Option<&Path> {
        self.agents_file.as_deref()
    }

    /// The command of an agent a plan names, checked by the same policy as `STEP_AGENT_CMD`.
    pub fn agent_for(&self, agent: &AgentRef, workspace: &Path) -> Result<AgentCommand> {
        let AgentRef::Named(name) = agent else {
            return self.agent(workspace);
        };
        let agents = self.agents(workspace)?;
        let command = agents.command(name)?;
        let label = match agents.path() {
            Some(path) => format!("agent `{name}` (in {})", path.display()),
            None => format!("agent `{name}`"),
        };
        AgentCommand::parse_as(
            &label,
            Some(command),
            self.path.as_deref(),
            workspace,
            self.exec_marker,
            &self.trust,
        )
    }

    /// `STEP_AGENT_CMD` as given, for doctor's report.
    #[must_use]
    pub fn agent_text(&self) -> Option<&str> {
        self.agent.as_ref().ok().and_then(Option::as_deref)
    }

    #[must_use]
    pub fn path_var(&self) -> Option<&std::ffi::OsStr> {
        self.path.as_deref()
    }

    #[must_use]
    pub fn exec_marker(&self) -> bool {
        self.exec_marker
    }

    #[must_use]
    pub fn trust(&self) -> &Trust {
        &self.trust
    }
}

/// `STEP_AGENT_TRUST`, comma-separated; unset, empty or not UTF-8 trusts nothing.
fn trust() -> Trust {
    env::var(TRUST_VAR).map_or_else(|_| Trust::default(), |raw| Trust::parse(&raw))
}

/// `STEP_AGENTS_FILE`, or the default under the user's configuration folder.
fn agents_file() -> Option<PathBuf> {
    agents::file_path(
        env::var_os(agents::FILE_VAR).map(PathBuf::from),
        env::var_os("XDG_CONFIG_HOME").map(PathBuf::from),
        env::var_os("HOME").map(PathBuf::from),
    )
}

/// A whole number from 1 to `max`; unset or empty means `default`.
fn number(name: &str, default: u64, max: u64) -> Result<u64> {
    let Some(raw) = env::var_os(name).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    let Some(text) = raw.to_str() else {
        bail!("{name} is not valid UTF-8");
    };
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => bail!("{name}={text:?} is not a whole number from 1 to {max}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_path_is_given_else_step_state_else_state_json_with_home_expanded() {
        let paths = Paths {
            home: Some(PathBuf::from("/home/me")),
            state: Some(PathBuf::from("~/.openclaw/workspace/state.json")),
        };
        assert_eq!(
            paths.state_file(None),
            Path::new("/home/me/.openclaw/workspace/state.json")
        );
        assert_eq!(
            paths.state_file(Some(Path::new("a.json"))),
            Path::new("a.json")
        );
        assert_eq!(paths.expand(Path::new("~")), Path::new("/home/me"));
        assert_eq!(paths.expand(Path::new("~bob/x")), Path::new("~bob/x"));
        assert_eq!(paths.expand(Path::new("x/~/y")), Path::new("x/~/y"));
        assert_eq!(Paths::default().state_file(None), Path::new("state.json"));
        assert_eq!(Paths::default().expand(Path::new("~/x")), Path::new("~/x"));
    }
}
