//! `seq-check`: one heartbeat for a plan. See `seq-check --help`.

use std::fmt::Write as _;
use std::process::ExitCode;

use agent_step_sequencer::cli::args::CheckArgs as Args;
use agent_step_sequencer::cli::check::{self, Checked};
use agent_step_sequencer::cli::config::Config;
use agent_step_sequencer::cli::exit::{self, Exit};
use agent_step_sequencer::cli::paint::Paint;
use agent_step_sequencer::cli::watch::{self, Watch};
use agent_step_sequencer::report::heartbeat::BeatResult;
use clap::Parser;

fn main() -> ExitCode {
    let args = Args::parse();
    let quiet = args.quiet || args.json || args.no_reply;
    let config = Config::from_env();
    // Lines for a person at a terminal may be coloured; JSON and NO_REPLY output never are.
    let paint = match &config {
        Ok(config) if !quiet => config.paint,
        _ => Paint::default(),
    };
    let outcome = config.and_then(|config| {
        let path = config.paths.state_file(args.state_file.as_deref());
        // A sign of life while --wait runs a step: a progress line, or with -v the output.
        let watch = (args.wait && !quiet).then(|| Watch::terminal(args.verbose));
        let mode = check::Mode {
            wait: args.wait,
            watch: watch.as_ref(),
            tells_person: args.no_reply,
            then_exit: true,
        };
        check::run(&path, &config, mode, &mut |line| {
            if !quiet {
                watch::clear();
                print!("{}", paint.text(&format!("{line}\n")));
            }
        })
    });
    watch::clear();
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
                let mut text = String::new();
                for change in &beat.changes {
                    let _ = writeln!(text, "{change}");
                }
                let _ = writeln!(text, "{}", beat.line());
                for warning in beat.warnings.iter().chain(&beat.config_problem) {
                    let _ = writeln!(text, "warning: {warning}");
                }
                print!("{}", paint.text(&text));
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
