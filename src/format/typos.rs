//! "Did you mean": unknown fields close to known ones.
//!
//! Fields this project does not know are kept as the writer's own (see `schema::Extras`), so a
//! misspelt field is not an error: `requiredOutput` would silently turn the output check off,
//! `stepDelayMinute` the delay. These warnings name the field and the one it looks like, for
//! `seqctl validate`, `seqctl doctor` and the heartbeat that starts a runner.

use std::fmt;

use super::schema::{Extras, State};

/// The fields of each level of the file, as written.
const TOP: &[&str] = &[
    "plan",
    "stepQueue",
    "currentStep",
    "stepRuns",
    "stepDelayMinutes",
    "blockers",
    "lastHeartbeatIso",
    "artifacts",
    "status",
    "finishedIso",
    "paused",
    "finishReported",
    "blockerReportedIso",
    "planHash",
];
const PLAN: &[&str] = &[
    "steps",
    "context",
    "contextMaxChars",
    "compressAgent",
    "maxParallel",
];
const STEP: &[&str] = &[
    "title",
    "instruction",
    "requiredOutputs",
    "required_outputs",
    "maxRetries",
    "timeoutSeconds",
    "resultFile",
    "context",
    "verify",
    "agent",
    "fallbackAgents",
    "needs",
    "when",
    "optional",
    "forEach",
    "repeat",
];
const WHEN: &[&str] = &["step", "status", "resultContains", "resultMatches"];
const FOR_EACH: &[&str] = &["from", "split", "maxItems"];
const REPEAT: &[&str] = &["max", "until"];
const VERIFY: &[&str] = &[
    "files",
    "contains",
    "matches",
    "json",
    "minChars",
    "agent",
    "instruction",
];
const RUN: &[&str] = &[
    "status",
    "tries",
    "lastRunIso",
    "error",
    "stdout",
    "startedIso",
    "finishedIso",
    "durationMs",
    "exitCode",
    "signal",
    "logFile",
    "note",
    "runner",
    "agent",
    "reason",
    "round",
    "whyAgain",
    "roundStart",
    "items",
];

/// An unknown field that looks like a known one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typo {
    /// Where it is: `plan.steps.a.requiredOutput`.
    pub field: String,
    /// The known field it looks like.
    pub known: &'static str,
}

impl fmt::Display for Typo {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}: not a field this version knows (kept as your own, and ignored); did you mean \
             `{}`?",
            self.field, self.known
        )
    }
}

/// Every unknown field of the file that looks like a known one, in file order.
#[must_use]
pub fn typos(state: &State) -> Vec<Typo> {
    let mut out = Vec::new();
    look(&state.extra, "", TOP, &mut out);
    look(&state.plan.extra, "plan.", PLAN, &mut out);
    for (id, step) in &state.plan.steps {
        let base = format!("plan.steps.{id}.");
        look(&step.extra, &base, STEP, &mut out);
        if let Some(verify) = &step.verify {
            look(&verify.extra, &format!("{base}verify."), VERIFY, &mut out);
        }
        if let Some(when) = &step.when {
            look(&when.extra, &format!("{base}when."), WHEN, &mut out);
        }
        if let Some(each) = &step.for_each {
            look(&each.extra, &format!("{base}forEach."), FOR_EACH, &mut out);
        }
        if let Some(repeat) = &step.repeat {
            look(&repeat.extra, &format!("{base}repeat."), REPEAT, &mut out);
            let until = format!("{base}repeat.until.");
            look(&repeat.until.extra, &until, VERIFY, &mut out);
        }
    }
    for (id, run) in &state.step_runs {
        look(&run.extra, &format!("stepRuns.{id}."), RUN, &mut out);
    }
    out
}

fn look(extra: &Extras, base: &str, known: &[&'static str], out: &mut Vec<Typo>) {
    for key in extra.keys() {
        if let Some(known) = closest(key, known) {
            out.push(Typo {
                field: format!("{base}{key}"),
                known,
            });
        }
    }
}

/// The known field `word` most likely means, if any: the same but for case, `_` or `-`; a
/// slip of a letter or two (a third of the field's length at most); or a word of five letters
/// or more inside it (`timeout`, `outputs`, `delay`).
fn closest(word: &str, known: &[&'static str]) -> Option<&'static str> {
    let word = squash(word);
    known
        .iter()
        .filter_map(|&k| {
            let k_squashed = squash(k);
            let distance = distance(&word, &k_squashed);
            let close = distance * 3 <= k_squashed.len()
                || (word.len() >= 5 && k_squashed.windows(word.len()).any(|w| w == word));
            close.then_some((distance, k))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

fn squash(word: &str) -> Vec<char> {
    word.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The edit distance of two words, a swap of neighbours counting as one edit.
fn distance(a: &[char], b: &[char]) -> usize {
    let mut rows = vec![(0..=b.len()).collect::<Vec<_>>(); a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::validate;

    #[test]
    fn the_typos_users_make_are_named_with_the_field_they_meant() {
        let state = validate::parse(
            br#"{"plan":{"steps":{"a":{"instruction":"x","requiredOutput":["a.md"],"maxRetry":2,
                   "timeoutSecond":5,"titel":"t","myNote":"mine","verify":{"contains":"x","minchars":3}}},
                   "contxt":"all"},
                 "stepQueue":["a"],"stepDelayMinute":2,"agentNotes":"mine",
                 "stepRuns":{"a":{"tries":0,"lastRunISO":"x"}}}"#,
        )
        .unwrap();
        let found: Vec<String> = typos(&state)
            .iter()
            .map(|t| format!("{} -> {}", t.field, t.known))
            .collect();
        assert_eq!(
            found,
            [
                "stepDelayMinute -> stepDelayMinutes",
                "plan.contxt -> context",
                "plan.steps.a.requiredOutput -> requiredOutputs",
                "plan.steps.a.maxRetry -> maxRetries",
                "plan.steps.a.timeoutSecond -> timeoutSeconds",
                "plan.steps.a.titel -> title",
                "plan.steps.a.verify.minchars -> minChars",
                "stepRuns.a.lastRunISO -> lastRunIso",
            ]
        );
        assert!(typos(&state)[0]
            .to_string()
            .ends_with("did you mean `stepDelayMinutes`?"));
    }

    /// The fields of each struct of `schema.rs`, as the file spells them (camelCase, or the
    /// `rename`), read from its source: the lists above must name exactly these.
    fn schema_fields() -> std::collections::HashMap<String, Vec<String>> {
        let source = include_str!("schema.rs");
        let mut out = std::collections::HashMap::new();
        let mut current: Option<String> = None;
        let mut rename: Option<String> = None;
        let mut skipped = false;
        for line in source.lines().map(str::trim) {
            // A field the file never holds (kept beside it, like `items`).
            if line == "#[serde(skip)]" {
                skipped = true;
                continue;
            }
            if let Some(name) = line.strip_prefix("pub struct ") {
                let name = name.split([' ', '(', '{']).next().unwrap().to_owned();
                out.insert(name.clone(), Vec::new());
                current = Some(name);
            } else if line == "}" {
                current = None;
            } else if let Some(r) = line.split("rename = \"").nth(1) {
                rename = r.split('"').next().map(str::to_owned);
            } else if let (Some(name), Some(field)) = (&current, line.strip_prefix("pub ")) {
                let field = field.split(':').next().unwrap();
                if field != "extra" && !std::mem::take(&mut skipped) {
                    let camel = rename.take().unwrap_or_else(|| camel(field));
                    out.get_mut(name).unwrap().push(camel);
                }
            }
        }
        out
    }

    fn camel(snake: &str) -> String {
        let mut out = String::new();
        let mut upper = false;
        for c in snake.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.extend(c.to_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn the_known_fields_are_exactly_the_schemas() {
        let fields = schema_fields();
        for (name, list) in [
            ("State", TOP),
            ("Plan", PLAN),
            ("Step", STEP),
            ("Verify", VERIFY),
            ("StepRun", RUN),
            ("When", WHEN),
            ("ForEach", FOR_EACH),
            ("Repeat", REPEAT),
        ] {
            let mut schema = fields[name].clone();
            let mut ours: Vec<String> = list.iter().map(|f| (*f).to_owned()).collect();
            schema.sort();
            ours.sort();
            assert_eq!(ours, schema, "the known fields of {name}");
        }
        for list in [TOP, PLAN, STEP, VERIFY, RUN, WHEN, FOR_EACH, REPEAT] {
            for field in list {
                assert_eq!(closest(field, list).map(squash), Some(squash(field)));
            }
        }
    }
}
