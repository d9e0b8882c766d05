//! `planHash`: a fingerprint of what the plan's steps ask for (the queue, each queued step's
//! spec, and the plan-wide settings of how they run), so that an edit made by any other means
//! than `seqctl` under a live run is seen. An agent's own fields are left out: notes it keeps
//! beside the plan change nothing that runs.
//!
//! FNV-1a over a length-prefixed encoding: stable across Rust releases (the hash is written to
//! the file and compared by later versions). Worked out from the model, only when a rule asks
//! (a heartbeat on a plan that is done, or held by a runner, never does).

use std::fmt::Write as _;

use super::model::{Plan, StepId, StepSpec};

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

/// The fingerprint of `plan`'s steps, as 16 hex digits.
#[must_use]
pub fn of(plan: &Plan) -> String {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    // What the settings do, not how they are spelt: a default written out changes nothing.
    let settings = plan.result_settings();
    h.json(Some(&settings.context));
    h.json(Some(&settings.max_chars));
    h.text(settings.compress_agent.as_deref());
    h.json(Some(&plan.max_parallel()));
    for step in plan.steps() {
        h.text(Some(step.id.as_str()));
        spec(&mut h, &step.spec);
    }
    let mut out = String::with_capacity(16);
    let _ = write!(out, "{:016x}", h.0);
    out
}

fn spec(h: &mut Fnv, spec: &StepSpec) {
    h.text(spec.title.as_deref());
    h.text(Some(&spec.instruction));
    h.json(Some(&spec.required_outputs));
    h.json(spec.max_tries.as_ref());
    h.json(spec.timeout.map(|t| t.as_secs()).as_ref());
    h.text(spec.result_file.as_deref());
    h.json(spec.context.as_ref());
    h.json(spec.verify.as_ref());
    h.text(spec.agent.as_deref());
    h.json(spec.fallback_agents.as_ref());
    let needs: Option<Vec<&str>> = spec
        .needs
        .as_ref()
        .map(|n| n.iter().map(StepId::as_str).collect());
    h.json(needs.as_ref());
    h.json(spec.when.as_ref());
    h.json(Some(&spec.optional));
    h.json(spec.for_each.as_ref());
    h.json(spec.repeat.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::validate;

    fn hash(text: &str) -> String {
        of(&Plan::of(&validate::parse(text.as_bytes()).unwrap()))
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
            base.replace(
                r#""instruction":"y""#,
                r#""instruction":"y","requiredOutputs":[]"#,
            ),
        ] {
            assert_eq!(hash(&same), h, "{same}");
        }
    }
}
