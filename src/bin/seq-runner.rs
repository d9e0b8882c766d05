//! `seq-runner`: runs a plan's due steps. Normally started by `seq-check`; see `--help`.

use std::process::ExitCode;

use agent_step_sequencer::cli::args::RunnerArgs as Args;
use agent_step_sequencer::cli::exit::{self, Exit};
use agent_step_sequencer::cli::watch::Watch;
use agent_step_sequencer::cli::{config::Config, runner};
use agent_step_sequencer::format::timefmt;
use agent_step_sequencer::store::Store;
use clap::Parser;

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
        let summary = runner::run(&store, &config, &agent, &Watch::default(), &mut |line| {
            println!("{} {line}", timefmt::format(chrono::Utc::now()));
        })?;
        Ok(summary.exit())
    })();
    match outcome {
        Ok(exit) => exit.into(),
        Err(error) => exit::report_error("seq-runner", &error),
    }
}
