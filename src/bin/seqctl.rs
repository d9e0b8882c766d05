//! `seqctl`: the operator's command for step plans. See `seqctl --help`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use agent_step_sequencer::cli::config::{Config, Paths};
use agent_step_sequencer::cli::ctl::{self, Output};
use agent_step_sequencer::cli::paint::Paint;
use agent_step_sequencer::cli::{args, exit};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Manage step plans run by seq-check and seq-runner: create, inspect, explain, retry, skip,
/// pause, resume and cancel them, and read their logs and event history.
#[derive(Parser)]
#[command(name = "seqctl", version, after_help = exit::SEQCTL_HELP)]
// clap's own `help` takes no options (`seqctl help --help` was an error): ours is a command.
#[command(disable_help_subcommand = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The plan's state file, as an argument or as `--state`.
#[derive(Args)]
struct StateArg {
    /// The plan's state file [default: $STEP_STATE, else state.json].
    #[arg(value_name = "STATE")]
    state_file: Option<PathBuf>,
    /// The plan's state file (the same as STATE).
    #[arg(long, short, value_name = "FILE", conflicts_with = "state_file")]
    state: Option<PathBuf>,
}

impl StateArg {
    /// The file meant, resolved as every binary resolves it (see `Paths::state_file`).
    fn path(&self, paths: &Paths) -> PathBuf {
        paths.state_file(self.state_file.as_deref().or(self.state.as_deref()))
    }
}

#[derive(Args)]
struct Common {
    #[command(flatten)]
    at: StateArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// A step's fields, for add-step and edit-step.
#[derive(Args)]
struct StepFields {
    /// A short name for people.
    #[arg(long)]
    title: Option<String>,
    /// What the agent is told to do.
    #[arg(long)]
    instruction: Option<String>,
    /// Files the step must leave, comma-separated, relative to the workspace.
    #[arg(long, value_name = "PATHS")]
    outputs: Option<String>,
    /// Attempts in all before the step becomes a blocker.
    #[arg(long, value_name = "N")]
    max_retries: Option<u32>,
    /// The time limit of one attempt.
    #[arg(long, value_name = "SECONDS")]
    timeout_seconds: Option<u64>,
    /// The steps it waits for, comma-separated (`--needs ''`: none, it may start at once);
    /// without it, a new step waits for the step before it in the queue.
    #[arg(long, value_name = "IDS")]
    needs: Option<String>,
}

impl StepFields {
    fn into_fields(self) -> ctl::edit::Fields {
        ctl::edit::Fields {
            title: self.title,
            instruction: self.instruction,
            outputs: self.outputs,
            max_retries: self.max_retries,
            timeout_seconds: self.timeout_seconds,
            needs: self.needs,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create a state file from a plan file or from --step flags (ids step-1, step-2, ...).
    #[command(after_help = "\
Examples:
  seqctl init --state state.json --delay-minutes 2 \\
    --step \"Research: Research topic X and write a summary to study/summary.md\" \\
    --outputs study/summary.md \\
    --step \"Write paper: Using study/summary.md, write a paper to study/paper.md\" \\
    --outputs study/paper.md
  seqctl init --state state.json --plan plan.json     (plan.json holds plan and stepQueue)")]
    Init {
        #[command(flatten)]
        common: Common,
        /// A JSON file with `plan` and `stepQueue` (`-` reads stdin).
        #[arg(long, value_name = "FILE", conflicts_with = "step")]
        plan: Option<PathBuf>,
        /// A step as "title: instruction"; repeat in order.
        #[arg(long, value_name = "TITLE: INSTRUCTION")]
        step: Vec<String>,
        /// Files the step given just before must leave (its requiredOutputs), comma-separated,
        /// relative to the workspace: a try that exits 0 without them fails.
        #[arg(long, value_name = "PATHS", requires = "step")]
        outputs: Vec<String>,
        /// Minutes to wait between steps.
        #[arg(long, value_name = "MINUTES")]
        delay_minutes: Option<f64>,
        /// Replace a plan that is not DONE (never one a runner is working on).
        #[arg(long)]
        force: bool,
    },
    /// Ask an agent to turn a task into a plan, checked as `init --plan` checks one, and print
    /// it to confirm (--write writes it).
    #[command(after_help = "\
Examples:
  seqctl plan --task \"Research topic X, summarise it to study/summary.md, then write a paper\"
  seqctl plan --task \"...\" --out plan.json     (then, once confirmed: seqctl init --plan plan.json)
  seqctl plan --task \"...\" --agent planner --write --state state.json
The agent is STEP_AGENT_CMD, or --agent, a named agent of the agents file (STEP_AGENTS_FILE).
Without --write or --out nothing is written. Exit 2 if no try gave a valid plan, 130 if
stopped by Ctrl-C (the agent is stopped too).")]
    Plan(PlanArgs),
    /// Check a state or plan file as the engine does, with warnings; exit 0 valid, 2 invalid.
    #[command(after_help = "Example:\n  seqctl validate state.json")]
    Validate {
        #[command(flatten)]
        common: Common,
    },
    /// Where the plan stands: a table of steps, progress, what is in flight, next, or blocked.
    #[command(
        after_help = "Example:\n  seqctl status --state state.json\n  seqctl status -s state.json --json"
    )]
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// What the plan produced: its status, each finished step's whole result, the failed step.
    #[command(after_help = "\
Prints {\"status\", \"completed_results\": [{\"step\", \"title\", \"result\"}], \"failed_step\"} with --json;
status is success, failed, running, blocked or paused.

Example:
  seqctl result --state state.json --json")]
    Result {
        #[command(flatten)]
        common: Common,
    },
    /// Why the current step (or the one named) is or is not running right now, in a sentence or two.
    #[command(
        after_help = "Examples:\n  seqctl explain --state state.json\n  seqctl explain merge --state state.json\n  seqctl explain 'summarise[3]' --state state.json"
    )]
    Explain {
        /// A step (or a forEach item, `step[N]`) to explain instead of the plan.
        step: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Clear a step's blocker and tries so it runs again; --note is added to its next prompt.
    #[command(after_help = "\
A step that has run (or a forEach item, step[N]) can be retried; retrying an earlier step moves
the plan back to it (later DONE steps are not re-run). A step that a running try waits for
cannot be retried under it; a forEach step's items are made afresh.

Example:
  seqctl retry step-2 --state state.json --note \"CoinGecko is down; use the Binance API\"")]
    Retry {
        /// The step id.
        step: String,
        /// A person's hint for the next try, added to its prompt.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Mark a step SKIPPED: the plan passes over it (and its blocker goes).
    #[command(after_help = "Example:\n  seqctl skip step-2 --state state.json")]
    Skip {
        /// The step id.
        step: String,
        #[command(flatten)]
        common: Common,
    },
    /// Start nothing new until `seqctl resume` (a try in flight runs to its end).
    #[command(after_help = "Example:\n  seqctl pause --state state.json")]
    Pause {
        #[command(flatten)]
        common: Common,
    },
    /// Let a paused plan run again.
    #[command(after_help = "Example:\n  seqctl resume --state state.json")]
    Resume {
        #[command(flatten)]
        common: Common,
    },
    /// Stop the tries in flight (SIGTERM to each agent's process group, SIGKILL after 3 s),
    /// record them as cancelled, and pause the plan; with --step, stop only that step's try and
    /// hold that step for a person while the others go on.
    #[command(
        after_help = "Examples:\n  seqctl cancel --state state.json\n  seqctl cancel --step 'fetch[3]' --state state.json"
    )]
    Cancel {
        /// Only this step's (or forEach item's) try; it is then held as a blocker.
        #[arg(long, value_name = "STEP")]
        step: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Print the captured output of a step's try (the latest unless --attempt); without a step,
    /// list every try's log the plan keeps.
    #[command(
        after_help = "Examples:\n  seqctl logs                  (every try's log kept, listed)\n  seqctl logs step-1 --state state.json --attempt 2\n  seqctl logs step-1 --follow"
    )]
    Logs {
        /// The step id [default: list every try's log the plan keeps].
        step: Option<String>,
        /// The try number (1-based); default: the latest.
        #[arg(long, value_name = "N")]
        attempt: Option<u32>,
        /// Keep printing while the try runs.
        #[arg(long, short, conflicts_with = "json")]
        follow: bool,
        /// A log by its name in the listing (kept logs from before a retry, helpers' logs).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["attempt", "follow"])]
        file: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Print the plan's event log (<state>.seq/events.jsonl), one event a line.
    #[command(
        after_help = "Example:\n  seqctl events --state state.json\n  seqctl events --follow     (until interrupted)"
    )]
    Events {
        /// Keep printing new events as they come, until interrupted.
        #[arg(long, short)]
        follow: bool,
        /// Print the JSON lines as they are.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: StateArg,
    },
    /// Add a step to the plan, under the lock, checked as the engine checks a file (agents: use
    /// this, not an edit of state.json, which a heartbeat may overwrite).
    #[command(after_help = "\
Examples:
  seqctl add-step --title \"Proofread\" --instruction \"Proofread study/paper.md\" --outputs study/paper.md
  seqctl add-step fact-check --after step-2 --instruction \"Check every claim in study/paper.md\"")]
    AddStep {
        /// The new step's id [default: the next free step-N].
        id: Option<String>,
        /// Put it after this step [default: at the end].
        #[arg(long, value_name = "STEP")]
        after: Option<String>,
        #[command(flatten)]
        fields: StepFields,
        #[command(flatten)]
        common: Common,
    },
    /// Change a step's title, instruction, outputs or limits (not while its try runs).
    #[command(
        after_help = "Example:\n  seqctl edit-step step-2 --instruction \"Write three pages, not two\""
    )]
    EditStep {
        /// The step id.
        step: String,
        #[command(flatten)]
        fields: StepFields,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a step and its record (not while its try runs).
    #[command(after_help = "Example:\n  seqctl remove-step step-3")]
    RemoveStep {
        /// The step id.
        step: String,
        #[command(flatten)]
        common: Common,
    },
    /// Check that everything is in place for the heartbeat to carry a plan: the agent command
    /// (as the runner and OpenClaw's exec tool would run it), the settings, the binaries, the
    /// state file, the installed skill, and OpenClaw's view of it. Exit 1 if something is wrong.
    #[command(after_help = "\
Example:
  seqctl doctor ~/.openclaw/workspace/state.json
Each line is `ok`, `warning` or `problem`, with the fix below it.")]
    Doctor {
        #[command(flatten)]
        common: Common,
    },
    /// Write the skill folder (SKILL.md and references) matching this version.
    #[command(
        after_help = "Example:\n  seqctl install-skill     (into ~/.openclaw/skills/agent-step-sequencer)\n  seqctl install-skill ./skills/agent-step-sequencer"
    )]
    InstallSkill {
        /// The skill folder to write [default: ~/.openclaw/skills/agent-step-sequencer].
        dir: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove the plan's old logs and event logs: every file of its log folder, its event log
    /// and runner.log (and their older generations) not written to for DAYS days. Never the log
    /// of a try in flight, the state file or the steps' results.
    #[command(after_help = "\
Examples:
  seqctl prune --dry-run              (what would go)
  seqctl prune state.json --older-than 7")]
    Prune {
        /// Remove what was not written to for this many days.
        #[arg(long, value_name = "DAYS", default_value_t = 30)]
        older_than: u32,
        /// Say what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
Examples:
  seqctl completions bash > ~/.local/share/bash-completion/completions/seqctl
  seqctl completions zsh seq-check > ~/.zfunc/_seq-check
  seqctl completions fish > ~/.config/fish/completions/seqctl.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
        /// The program to complete.
        #[arg(value_enum, default_value = "seqctl")]
        program: Program,
    },
    /// Print the manual page (roff) of seqctl, seq-check or seq-runner.
    #[command(after_help = "\
Examples:
  seqctl man | man -l -
  seqctl man seq-check > ~/.local/share/man/man1/seq-check.1")]
    Man {
        /// The program.
        #[arg(value_enum, default_value = "seqctl")]
        program: Program,
    },
    /// Print this help, or the help of the given command.
    #[command(after_help = "Example:\n  seqctl help retry")]
    Help {
        /// The command to explain.
        command: Option<String>,
    },
}

/// One of the three programs, for completions and manual pages.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Program {
    Seqctl,
    SeqCheck,
    SeqRunner,
}

impl Program {
    fn command(self) -> clap::Command {
        match self {
            Self::Seqctl => Cli::command(),
            Self::SeqCheck => args::CheckArgs::command(),
            Self::SeqRunner => args::RunnerArgs::command(),
        }
    }
}

// One arm per command, each a line or two: the table reads better whole than split.
#[allow(clippy::too_many_lines)]
fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let config = Config::or_default();
    let (paths, paint) = (config.paths, config.paint);
    let mut stdout = io::stdout().lock();
    let (json, result) = match cli.command {
        Command::Help { command } => return help(command.as_deref()),
        Command::Completions { shell, program } => {
            let mut command = program.command();
            let name = command.get_name().to_owned();
            clap_complete::generate(shell, &mut command, name, &mut stdout);
            return ExitCode::SUCCESS;
        }
        Command::Man { program } => {
            return match clap_mangen::Man::new(program.command()).render(&mut stdout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => streamed(Err(e.into())),
            };
        }
        Command::Init {
            common,
            plan,
            step,
            outputs,
            delay_minutes,
            force,
        } => {
            let init = ctl::init::Init {
                plan,
                outputs: match init_outputs(&matches, outputs) {
                    Ok(outputs) => outputs,
                    Err(e) => return exit::report_error("seqctl", &e),
                },
                steps: step,
                delay_minutes,
                force,
            };
            (common.json, ctl::init::run(&common.at.path(&paths), &init))
        }
        Command::Plan(args) => args.run(&paths),
        Command::Validate { common } => (common.json, ctl::validate::run(&common.at.path(&paths))),
        Command::Status { common } => (common.json, ctl::status::run(&common.at.path(&paths))),
        Command::Explain { step, common } => {
            // `seqctl explain state.json`: a lone argument that names a file is the state file.
            let (step, path) = match step {
                Some(step) if names_state_file(&step, &common.at) => {
                    (None, paths.state_file(Some(step.as_ref())))
                }
                step => (step, common.at.path(&paths)),
            };
            (common.json, ctl::explain::run(&path, step.as_deref()))
        }
        Command::Prune {
            older_than,
            dry_run,
            common,
        } => (
            common.json,
            ctl::prune::run(
                &common.at.path(&paths),
                ctl::prune::Prune {
                    older_than_days: older_than,
                    dry_run,
                },
            ),
        ),
        Command::Result { common } => (common.json, ctl::result::run(&common.at.path(&paths))),
        Command::Retry { step, note, common } => (
            common.json,
            ctl::retry::run(&common.at.path(&paths), &step, note.as_deref()),
        ),
        Command::Skip { step, common } => {
            (common.json, ctl::skip::run(&common.at.path(&paths), &step))
        }
        Command::Pause { common } => (common.json, ctl::pause::run(&common.at.path(&paths), true)),
        Command::Resume { common } => {
            (common.json, ctl::pause::run(&common.at.path(&paths), false))
        }
        Command::Cancel { step, common } => (
            common.json,
            ctl::cancel::run(&common.at.path(&paths), step.as_deref()),
        ),
        Command::AddStep {
            id,
            after,
            fields,
            common,
        } => (
            common.json,
            looks_like_state(id.as_deref(), &common.at).and_then(|()| {
                ctl::edit::add(
                    &common.at.path(&paths),
                    id.as_deref(),
                    after.as_deref(),
                    &fields.into_fields(),
                )
            }),
        ),
        Command::EditStep {
            step,
            fields,
            common,
        } => (
            common.json,
            ctl::edit::edit(&common.at.path(&paths), &step, &fields.into_fields()),
        ),
        Command::RemoveStep { step, common } => (
            common.json,
            ctl::edit::remove(&common.at.path(&paths), &step),
        ),
        Command::Doctor { common } => (common.json, ctl::doctor::run(&common.at.path(&paths))),
        Command::InstallSkill { dir, json } => (json, ctl::install_skill::run(dir.as_deref())),
        Command::Logs {
            step,
            attempt,
            follow,
            file,
            common,
        } => {
            // `seqctl logs state.json`: a lone argument that names a file is the state file.
            let (step, path) = match step {
                Some(step) if names_state_file(&step, &common.at) => {
                    (None, paths.state_file(Some(step.as_ref())))
                }
                step => (step, common.at.path(&paths)),
            };
            if let Some(name) = file {
                return streamed(ctl::logs::show_file(&path, &name, &mut stdout));
            }
            let Some(step) = step else {
                if follow || attempt.is_some() {
                    return exit::report_error(
                        "seqctl",
                        &anyhow::anyhow!("--follow and --attempt need a step"),
                    );
                }
                return streamed(ctl::logs::list(&path, common.json, &mut stdout));
            };
            let logs = ctl::logs::Logs {
                step: &step,
                attempt,
                follow,
                json: common.json,
            };
            return streamed(ctl::logs::run(&path, &logs, &mut stdout));
        }
        Command::Events { follow, json, at } => {
            return streamed(ctl::events::run(
                &at.path(&paths),
                follow,
                json,
                &mut stdout,
            ));
        }
    };
    finish(&mut stdout, json, result, paint)
}

/// Prints a command's output (or its error) and gives its exit code.
fn finish(
    stdout: &mut dyn Write,
    json: bool,
    result: anyhow::Result<Output>,
    paint: Paint,
) -> ExitCode {
    match result {
        Ok(output) => {
            print(stdout, &output, json, paint);
            output.code.into()
        }
        Err(error) => {
            if json {
                let value = serde_json::json!({ "error": format!("{error:#}") });
                let _ = writeln!(stdout, "{value}");
            }
            exit::report_error("seqctl", &error)
        }
    }
}

/// Which step each `--outputs` of `init` belongs to: the `--step` given just before it (clap
/// keeps each value's position on the command line).
fn init_outputs(
    matches: &clap::ArgMatches,
    outputs: Vec<String>,
) -> anyhow::Result<Vec<(usize, String)>> {
    let Some(init) = matches.subcommand_matches("init") else {
        return Ok(Vec::new());
    };
    let steps: Vec<usize> = init.indices_of("step").into_iter().flatten().collect();
    let at: Vec<usize> = init.indices_of("outputs").into_iter().flatten().collect();
    at.into_iter()
        .zip(outputs)
        .map(|(position, paths)| {
            let step = steps.iter().rposition(|s| *s < position).ok_or_else(|| {
                anyhow::anyhow!("--outputs {paths:?} comes before any --step: give it after the step it belongs to")
            })?;
            Ok((step, paths))
        })
        .collect()
}

/// Whether a lone argument before the state file is a state file, with no state file given
/// otherwise: one that names a file, or looks like a path (`~/…`, `./…`, `/…`, `….json`), so
/// that a mistyped path is reported as the path it is, not looked up as a step.
fn names_state_file(word: &str, at: &StateArg) -> bool {
    let looks_like_path = ["~/", "./", "../", "/"].iter().any(|p| word.starts_with(p))
        || std::path::Path::new(word)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    at.state_file.is_none()
        && at.state.is_none()
        && (looks_like_path || std::path::Path::new(word).is_file())
}

/// `add-step [ID] [STATE]`: a lone argument is the new step's id, so `add-step state.json`
/// would add a step called `state.json` to ./state.json. Refused when it names a file.
fn looks_like_state(id: Option<&str>, at: &StateArg) -> anyhow::Result<()> {
    match id {
        Some(id) if names_state_file(id, at) => {
            anyhow::bail!(
                "`{id}` is a file: add-step takes the new step's id first, then the state file \
                 (`seqctl add-step [ID] STATE`, or --state {id})"
            )
        }
        _ => Ok(()),
    }
}

/// `seqctl help [COMMAND]`: the long help of seqctl or of one of its commands.
fn help(command: Option<&str>) -> ExitCode {
    let mut cli = Cli::command();
    let shown = match command {
        None => cli.print_long_help(),
        Some(name) => {
            let Some(sub) = cli.find_subcommand_mut(name) else {
                eprintln!("seqctl: no command `{name}`; `seqctl help` lists them");
                return exit::Exit::Invalid.into();
            };
            sub.print_long_help()
        }
    };
    drop(shown); // a closed pipe is the reader's choice
    ExitCode::SUCCESS
}

fn print(out: &mut dyn Write, output: &Output, json: bool, paint: Paint) {
    let written = if json {
        writeln!(out, "{}", output.json)
    } else if output.text.is_empty() || output.text.ends_with('\n') {
        write!(out, "{}", paint.text(&output.text))
    } else {
        writeln!(out, "{}", paint.text(&output.text))
    };
    // A closed pipe (`seqctl status | head -1`) is the reader's choice, not an error.
    drop(written);
}

/// The exit code of a command that printed as it went.
fn streamed(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error)
            if error
                .chain()
                .filter_map(|c| c.downcast_ref::<io::Error>())
                .any(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => exit::report_error("seqctl", &error),
    }
}

// `seqctl plan`'s arguments (a struct of their own keeps `main` short). No doc comment:
// clap would show it in place of the subcommand's.
#[derive(Args)]
struct PlanArgs {
    /// What the plan is for, in your words.
    #[arg(long)]
    task: String,
    /// A named agent of the agents file [default: STEP_AGENT_CMD].
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// How many times the agent is asked, at most.
    #[arg(long, value_name = "N", default_value_t = ctl::plan::DEFAULT_TRIES,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    tries: u32,
    /// The time limit of one try [default: STEP_TIMEOUT_SECONDS].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout_seconds: Option<u64>,
    /// Write the plan to the state file (as `init`).
    #[arg(long)]
    write: bool,
    /// With --write: replace a plan that is not DONE (never one a runner is working on).
    #[arg(long, requires = "write")]
    force: bool,
    /// Save the plan as a new plan file, to confirm and then give to `init --plan`.
    #[arg(long, value_name = "FILE", conflicts_with = "write")]
    out: Option<PathBuf>,
    /// The state file --write writes (its folder is where the agent runs).
    #[command(flatten)]
    at: StateArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl PlanArgs {
    fn run(self, paths: &Paths) -> (bool, anyhow::Result<Output>) {
        let request = ctl::plan::Request {
            task: &self.task,
            agent: self.agent.as_deref(),
            tries: self.tries,
            timeout: self.timeout_seconds.map(std::time::Duration::from_secs),
            write: self.write,
            force: self.force,
            out: self.out.as_deref(),
        };
        (self.json, ctl::plan::run(&self.at.path(paths), &request))
    }
}
