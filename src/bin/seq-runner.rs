//! `seq-runner`: runs a plan's due steps. Normally started by `seq-check`; see `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use agent_step_sequencer::cli::exit::{self, Exit};
use agent_step_sequencer::cli::{config::Config, runner};
use agent_step_sequencer::format::timefmt;
use agent_step_sequencer::store::Store;
use clap::Parser;

/// Run the plan's due steps one after another with the agent in STEP_AGENT_CMD, sleeping
/// through stepDelayMinutes and retrying failures, until nothing more is due. Holds the run
/// lease, so at most one runner works on a plan.
#[derive(Parser)]
#[command(name = "seq-runner", version, after_help = exit::RUNNER_HELP)]
struct Args {
    /// The plan's state file [default: $STEP_STATE, else state.json].
    #[arg(value_name = "STATE")]
    state_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = (|| {
        let config = Config::from_env()?;
        let path = config.paths.state_file(args.state_file.as_deref());
        let Some(store) = Store::locate(&path)? else {
            let absolute = std::path::absolute(&path).unwrap_or(path);
            println!("no plan at {}", absolute.display());
            return Ok(Exit::Ok);
        };
        let agent = config.agent(store.workspace())?;
        let summary = runner::run(&store, &config, &agent, &mut |line| {
            println!("{} {line}", timefmt::format(chrono::Utc::now()));
        })?;
        Ok(summary.exit())
    })();
    match outcome {
        Ok(exit) => exit.into(),
        Err(error) => exit::report_error("seq-runner", &error),
    }
}
