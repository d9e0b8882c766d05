//! The command lines of `seq-check` and `seq-runner`, defined here rather than in their
//! binaries so that `seqctl completions` and `seqctl man` can describe all three programs.

use std::path::PathBuf;

use clap::Parser;

use super::exit;

/// Resume a step plan: record the heartbeat, decide what is due, and start `seq-runner` in the
/// background if a step should run. Returns at once; safe to run many times concurrently.
#[derive(Parser)]
#[command(name = "seq-check", version, after_help = exit::CHECK_HELP)]
#[allow(clippy::struct_excessive_bools)] // independent command-line flags, as clap wants them
pub struct CheckArgs {
    /// The plan's state file [default: $STEP_STATE, else state.json]. Its folder must exist; a
    /// leading `~/` is the home folder.
    #[arg(value_name = "STATE")]
    pub state_file: Option<PathBuf>,
    /// Stay in the foreground, running steps and sleeping through delays, until the plan is
    /// done, blocked or paused.
    #[arg(long)]
    pub wait: bool,
    /// Print one JSON object instead of lines.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Print nothing but errors; the exit code tells the outcome.
    #[arg(long, short)]
    pub quiet: bool,
    /// For an OpenClaw command automation, whose output is delivered to the user: print
    /// `NO_REPLY` (which posts nothing) unless a person should hear something (a blocker, the
    /// plan just finished, an error), and exit 0 for a blocked plan too, so the scheduler never
    /// backs off or disables the job for reporting one.
    #[arg(long, conflicts_with_all = ["quiet", "json"])]
    pub no_reply: bool,
    /// With --wait: show each step's agent output as it comes (control characters escaped).
    /// Without it, a terminal shows which step runs and for how long.
    #[arg(long, short, requires = "wait", conflicts_with_all = ["quiet", "json", "no_reply"])]
    pub verbose: bool,
}

/// Run the plan's due steps one after another with the agent in STEP_AGENT_CMD, sleeping
/// through stepDelayMinutes and retrying failures, until nothing more is due. Holds the run
/// lease, so at most one runner works on a plan.
#[derive(Parser)]
#[command(name = "seq-runner", version, after_help = exit::RUNNER_HELP)]
pub struct RunnerArgs {
    /// The plan's state file [default: $STEP_STATE, else state.json].
    #[arg(value_name = "STATE")]
    pub state_file: Option<PathBuf>,
}
