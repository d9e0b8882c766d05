//! `seq-check`: one heartbeat for a plan. See `seq-check --help`.

use std::process::ExitCode;

use agent_step_sequencer::cli::args::CheckArgs as Args;
use agent_step_sequencer::cli::check::{self, Checked};
use agent_step_sequencer::cli::config::Config;
use agent_step_sequencer::cli::exit::{self, Exit};
use agent_step_sequencer::report::heartbeat::BeatResult;
use clap::Parser;

fn main() -> ExitCode {
    let args = Args::parse();
    let quiet = args.quiet || args.json || args.no_reply;
    let outcome = Config::from_env().and_then(|config| {
        let path = config.paths.state_file(args.state_file.as_deref());
        let mode = check::Mode {
            wait: args.wait,
            tells_person: args.no_reply,
        };
        check::run(&path, &config, mode, &mut |line| {
            if !quiet {
                println!("{line}");
            }
        })
    });
    match outcome {
        Ok(Checked {
            signal: Some(signal),
            ..
        }) => {
            if !args.quiet {
                eprintln!("seq-check: stopped by signal {signal}; the try in flight does not count, and the next heartbeat resumes the plan");
            }
            Exit::Signal(signal).into()
        }
        Ok(Checked {
            heartbeat: beat, ..
        }) => {
            if !args.quiet {
                for typo in &beat.typos {
                    eprintln!("seq-check: warning: {typo}");
                }
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&beat).expect("a heartbeat serialises")
                );
            } else if args.no_reply && !beat.worth_telling() {
                println!("NO_REPLY");
            } else if !args.quiet {
                for change in &beat.changes {
                    println!("{change}");
                }
                println!("{}", beat.line());
                for warning in beat.warnings.iter().chain(&beat.config_problem) {
                    println!("warning: {warning}");
                }
            }
            // With --no-reply a blocker is news delivered, not a failed job run.
            Exit::attention_if(beat.result == BeatResult::Blocked && !args.no_reply).into()
        }
        Err(error) => {
            if args.json {
                let json = serde_json::json!({ "result": "error", "error": format!("{error:#}") });
                println!("{json}");
            } else if args.no_reply {
                // An automation delivers stdout only: the person must hear what is broken.
                println!("seq-check: {error:#}");
            }
            exit::report_error("seq-check", &error)
        }
    }
}
