//! What this project knows about OpenClaw's own command line, checked against the real CLI
//! (openclaw 2026.9.6): which way an `openclaw agent` command runs a turn, and the exec marker.
//!
//! OpenClaw's exec tool sets `OPENCLAW_SHELL=exec` for everything it starts, and its children
//! inherit it: `seq-check` run by the agent (right after it writes a plan, or in a heartbeat
//! turn), the runner it starts, and every step's agent. Under that marker the gateway form
//! `openclaw agent --session-key … --message …` refuses to run ("would lose inter-session
//! attribution… Do not … remove the exec marker"), so every step would fail into a blocker.
//! `openclaw agent exec` runs one isolated embedded turn instead and works from every path
//! OpenClaw starts us on; it is the command this project recommends.

use std::path::Path;

/// The variable OpenClaw's exec tool sets, and the value it sets it to.
pub const EXEC_MARKER: (&str, &str) = ("OPENCLAW_SHELL", "exec");

/// The agent command the docs, the skill and every hint recommend: one isolated turn per step
/// (no shared session history), the prompt from a file (so it can never be read as an option,
/// and may be as long as 4 MiB), and no deadline of OpenClaw's own (`agent exec` stops a turn
/// after 600 s by default), so `STEP_TIMEOUT_SECONDS` and `timeoutSeconds` govern.
pub const RECOMMENDED_AGENT: &str = "openclaw agent exec --timeout 0 --message-file {prompt_file}";

/// How an `openclaw agent` command runs its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentRoute {
    /// `openclaw agent …`: a turn through the gateway, in a session whose history it shares.
    Gateway,
    /// `openclaw agent --local …`: an embedded turn in a session of the local state.
    Local,
    /// `openclaw agent exec …`: one isolated embedded turn.
    Exec,
}

/// Options of `openclaw` itself that take a value, before the command.
pub(crate) const GLOBAL_VALUE_OPTIONS: &[&str] = &["--container", "--log-level", "--profile"];
/// Options of `openclaw agent` that take a value (before a possible `exec`).
pub(crate) const AGENT_VALUE_OPTIONS: &[&str] = &[
    "--agent",
    "--channel",
    "-m",
    "--message",
    "--message-file",
    "--model",
    "--reply-account",
    "--reply-channel",
    "--reply-to",
    "--session-id",
    "--session-key",
    "-t",
    "--to",
    "--thinking",
    "--timeout",
    "--verbose",
];

/// How `words` (a parsed `STEP_AGENT_CMD`) runs `openclaw agent`, if it does: the first word
/// named `openclaw` (alone or behind wrappers such as `timeout 600`) whose command is `agent`.
#[must_use]
pub fn agent_route(words: &[String]) -> Option<AgentRoute> {
    words.iter().enumerate().find_map(|(i, word)| {
        let named = Path::new(word).file_name()?.to_str()? == "openclaw";
        named.then(|| route_after(&words[i + 1..])).flatten()
    })
}

/// The route of the words after an `openclaw` program word.
fn route_after(args: &[String]) -> Option<AgentRoute> {
    let mut rest = positionals(args, GLOBAL_VALUE_OPTIONS);
    let (agent_at, command) = rest.next()?;
    if command != "agent" {
        return None;
    }
    let agent_args = &args[agent_at + 1..];
    let sub = positionals(agent_args, AGENT_VALUE_OPTIONS).next();
    Some(match sub {
        Some((_, "exec")) => AgentRoute::Exec,
        _ if agent_args.iter().any(|a| a == "--local") => AgentRoute::Local,
        _ => AgentRoute::Gateway,
    })
}

/// The positional words of `args` (with their index), skipping options and the values of
/// those in `value_options` (given as the next word; `--opt=value` is one word).
fn positionals<'a>(
    args: &'a [String],
    value_options: &'a [&str],
) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    let mut skip_next = false;
    args.iter().enumerate().filter_map(move |(i, word)| {
        if std::mem::take(&mut skip_next) {
            return None;
        }
        if word.starts_with('-') {
            skip_next = value_options.contains(&word.as_str());
            return None;
        }
        Some((i, word.as_str()))
    })
}

/// Why a command cannot work where OpenClaw's exec marker is set, if it cannot.
#[must_use]
pub fn refused_under_exec_marker(words: &[String]) -> Option<String> {
    (agent_route(words) == Some(AgentRoute::Gateway)).then(|| {
        format!(
            "`openclaw agent` without `exec` is a gateway turn, and the gateway refuses one \
             started from inside an agent's exec tool ({}={} is set here, as it is whenever \
             the agent runs seq-check), so every step would fail; use \
             STEP_AGENT_CMD='{RECOMMENDED_AGENT}' (one isolated turn per step)",
            EXEC_MARKER.0, EXEC_MARKER.1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(line: &str) -> Option<AgentRoute> {
        agent_route(&shell_words::split(line).unwrap())
    }

    #[test]
    fn every_form_of_openclaw_agent_is_told_apart() {
        use AgentRoute::{Exec, Gateway, Local};
        for (line, want) in [
            ("openclaw agent --session-key s --message", Some(Gateway)),
            ("openclaw agent -m", Some(Gateway)),
            (
                "/usr/local/bin/openclaw agent --agent ops --message-file {prompt_file}",
                Some(Gateway),
            ),
            (
                "openclaw --profile work agent --to +1555 --message",
                Some(Gateway),
            ),
            ("openclaw agent --session-key exec --message", Some(Gateway)),
            ("timeout 600 openclaw agent --message", Some(Gateway)),
            (
                "openclaw agent --local --session-id 1 --message",
                Some(Local),
            ),
            ("openclaw agent exec", Some(Exec)),
            (
                "openclaw agent exec --timeout 0 --message-file {prompt_file}",
                Some(Exec),
            ),
            (
                "openclaw agent --timeout 900 exec --message-file {prompt_file}",
                Some(Exec),
            ),
            ("openclaw --log-level warn agent exec", Some(Exec)),
            ("env A=1 nice openclaw agent exec --cwd .", Some(Exec)),
            ("openclaw agents list", None),
            ("openclaw --profile agent cron list", None),
            ("claude -p", None),
            ("myagent --config openclaw", None),
        ] {
            assert_eq!(route(line), want, "{line}");
        }
    }

    #[test]
    fn only_the_gateway_form_is_refused_under_the_marker_with_the_fix() {
        let words = |line: &str| shell_words::split(line).unwrap();
        let why = refused_under_exec_marker(&words("openclaw agent --session-key s --message"))
            .expect("refused");
        assert!(
            why.contains("OPENCLAW_SHELL=exec") && why.contains(RECOMMENDED_AGENT),
            "{why}"
        );
        for ok in [
            RECOMMENDED_AGENT,
            "openclaw agent --local --message",
            "claude -p",
        ] {
            assert_eq!(refused_under_exec_marker(&words(ok)), None, "{ok}");
        }
    }
}
