//! Settings read from the environment, each checked with a message that names the variable.

use std::env;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::core::schedule::Limits;

/// The step timeout when neither `STEP_TIMEOUT_SECONDS` nor the step's `timeoutSeconds` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub limits: Limits,
    /// `STEP_TIMEOUT_SECONDS`.
    pub timeout: Duration,
    /// `STEP_RUNNER`: the runner the check starts, if not the `seq-runner` beside it.
    pub runner: Option<PathBuf>,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            limits: Limits {
                max_tries: number("STEP_MAX_RETRIES", 3, u32::MAX.into())? as u32,
            },
            timeout: Duration::from_secs(number(
                "STEP_TIMEOUT_SECONDS",
                DEFAULT_TIMEOUT.as_secs(),
                // A century: more is a typo, and it keeps deadline arithmetic far from overflow.
                100 * 365 * 86_400,
            )?),
            runner: env::var_os("STEP_RUNNER")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        })
    }
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
