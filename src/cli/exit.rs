//! Exit codes, one table for every binary, and the text `--help` shows for them.

use std::process::ExitCode;

/// How a binary ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Fine: started, in flight, waiting, nothing to do, done.
    Ok,
    /// A person is needed: the plan is blocked (seq-check), a step failed (seq-runner), or
    /// doctor found a problem.
    Attention,
    /// Bad usage, an invalid state file or invalid configuration; nothing was changed.
    Invalid,
    /// Stopped by this signal (SIGTERM, SIGINT, SIGHUP), after stopping the agent and
    /// recording its try: 128 + the signal, as shells report it.
    Signal(i32),
}

impl Exit {
    /// The number the process exits with.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Attention => 1,
            Self::Invalid => 2,
            Self::Signal(signal) => u8::try_from(128 + signal).unwrap_or(u8::MAX),
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}

impl Exit {
    /// `Attention` when a person is needed, else `Ok`.
    #[must_use]
    pub fn attention_if(needed: bool) -> Self {
        if needed {
            Self::Attention
        } else {
            Self::Ok
        }
    }
}

pub const CHECK_HELP: &str = "\
Exit codes:
  0  fine: a runner was started, a step is in flight or waiting, nothing to do, or the plan is done
  1  the plan is blocked: a step used all its tries and needs a person
     (with --no-reply: 0, the blocker printed as news)
  2  bad usage, invalid state file or invalid configuration (nothing was changed)
  130, 143, 129  --wait stopped by Ctrl-C, SIGTERM or SIGHUP: the try in flight was stopped
     and recorded as not counting; the next heartbeat resumes the plan";

pub const RUNNER_HELP: &str = "\
Exit codes:
  0  the last step run ended DONE, or there was nothing to do
  1  a step FAILED (and, if it used all its tries, the plan is blocked)
  2  bad usage, invalid state file or invalid configuration (nothing was changed)
  130, 143, 129  stopped by SIGINT, SIGTERM or SIGHUP: the try in flight was stopped and
     recorded as not counting; the next heartbeat resumes the plan";

pub const SEQCTL_HELP: &str = "\
Every command takes the plan's state file as its last argument or as --state FILE (-s);
without one, $STEP_STATE, else state.json (a leading ~/ is the home folder). Every command
prints JSON with --json.

Exit codes:
  0  done as asked (status and explain exit 0 whatever the plan's state)
  1  `doctor` found a problem (each is printed with its fix)
  2  bad usage, an invalid state file, or a refusal (it names the reason); nothing was changed
     `validate` exits 2 for an invalid file";

/// Prints an error the way every binary does (`name: cause: cause`) and returns exit code 2.
#[must_use]
pub fn report_error(binary: &str, error: &anyhow::Error) -> ExitCode {
    eprintln!("{binary}: {error:#}");
    Exit::Invalid.into()
}
