//! `planHash`: a fingerprint of what the plan's steps ask for (the queue, each queued step's
//! definition, and the plan-wide settings of how they run), so that an edit made by any other
//! means than `seqctl` under a live run is seen. An agent's own fields are left out: notes it
//! keeps beside the plan change nothing that runs.
//!
//! FNV-1a over a length-prefixed encoding: stable across Rust releases (the hash is written to
//! the file and compared by later versions), and fast enough for every heartbeat.

use std::fmt::Write as _;

use super::schema::{State, Step};

struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn text(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.bytes(b"s");
                self.bytes(text.as_bytes());
            }
            None => self.bytes(b"-"),
        }
    }

    fn json<T: serde::Serialize>(&mut self, value: Option<&T>) {
        let text = value.and_then(|v| serde_json::to_string(v).ok());
        self.text(text.as_deref());
    }
}

/// The hash of the plan's steps as `state` holds them, as 16 hex digits.
#[must_use]
pub fn plan_hash(state: &State) -> String {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    let plan = &state.plan;
    h.json(plan.context.as_ref());
    h.json(plan.context_max_chars.as_ref());
    h.text(plan.compress_agent.as_deref());
    h.json(plan.max_parallel.as_ref());
    for id in &state.step_queue {
        h.text(Some(id));
        match plan.steps.get(id) {
            Some(step) => step_hash(&mut h, step),
            None => h.bytes(b"undefined"),
        }
    }
    let mut out = String::with_capacity(16);
    let _ = write!(out, "{:016x}", h.0);
    out
}

fn step_hash(h: &mut Fnv, step: &Step) {
    h.text(step.title.as_deref());
    h.text(step.instruction.as_deref());
    for outputs in [&step.required_outputs, &step.required_outputs_alias] {
        h.json(outputs.as_ref());
    }
    h.json(step.max_retries.as_ref());
    h.json(step.timeout_seconds.as_ref());
    h.text(step.result_file.as_deref());
    h.json(step.context.as_ref());
    h.json(step.verify.as_ref());
    h.text(step.agent.as_deref());
    h.json(step.fallback_agents.as_ref());
    h.json(step.needs.as_ref());
    h.json(step.when.as_ref());
    h.json(step.optional.as_ref());
    h.json(step.for_each.as_ref());
    h.json(step.repeat.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::validate;

    fn hash(text: &str) -> String {
        plan_hash(&validate::parse(text.as_bytes()).unwrap())
    }

    #[test]
    fn what_runs_changes_the_hash_and_an_agents_notes_do_not() {
        let base = r#"{"plan":{"steps":{"a":{"instruction":"x"},"b":{"instruction":"y"}}},"stepQueue":["a","b"]}"#;
        let h = hash(base);
        assert_eq!(h.len(), 16);
        assert_eq!(h, hash(base), "stable");
        for changed in [
            base.replace(r#""y""#, r#""z""#),
            base.replace(r#"["a","b"]"#, r#"["b","a"]"#),
            base.replace(r#""instruction":"y""#, r#""instruction":"y","needs":[]"#),
            base.replace(r#""steps""#, r#""maxParallel":2,"steps""#),
        ] {
            assert_ne!(hash(&changed), h, "{changed}");
        }
        for same in [
            base.replace(r#""instruction":"y""#, r#""instruction":"y","myNote":1"#),
            base.replace(r#""stepQueue""#, r#""stepDelayMinutes":3,"stepQueue""#),
            base.replace("]}", r#"],"stepRuns":{"a":{"status":"DONE"}}}"#),
        ] {
            assert_eq!(hash(&same), h, "{same}");
        }
    }
}
