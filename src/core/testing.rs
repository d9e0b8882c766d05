//! Plans for the core's unit tests, written as the file would hold them.

use chrono::{DateTime, Utc};

use super::decide::{Context, Limits, Liveness};
use super::model::Plan;
use crate::format::{schema::State, timefmt, validate};

pub const NOW: &str = "2026-03-01T10:00:00Z";
pub const L: Limits = Limits {
    max_tries: 3,
    timeout: std::time::Duration::from_secs(3600),
};

pub fn t(text: &str) -> DateTime<Utc> {
    timefmt::parse(text).unwrap()
}

/// Steps `a` (`do a`) and `b` (`do b`, two tries), with `delay` minutes between them and
/// `runs` as the `stepRuns` object, plus any top-level `extra` fields.
pub fn state(delay: &str, runs: &str, extra: &str) -> State {
    let text = format!(
        r#"{{"plan":{{"steps":{{"a":{{"instruction":"do a"}},"b":{{"instruction":"do b","maxRetries":2}}}}}},
           "stepQueue":["a","b"],"stepDelayMinutes":{delay},"stepRuns":{{{runs}}}{extra}}}"#
    );
    validate::parse(text.as_bytes()).unwrap()
}

pub fn plan(delay: &str, runs: &str) -> Plan {
    Plan::of(&state(delay, runs, ""))
}

pub fn ctx(live: &Liveness) -> Context<'_> {
    at(NOW, live)
}

pub fn at<'a>(now: &str, live: &'a Liveness) -> Context<'a> {
    Context {
        now: t(now),
        live,
        limits: L,
        io: &super::decide::NoIo,
    }
}
