//! The prompt of a step's next try: its instruction (or, after a failure, the Python version's
//! troubleshoot prompt around it), with the earlier results it asks for, and a person's note.
//!
//! Results reach a prompt two ways: a reference `{{steps.<id>.result}}` in the instruction is
//! replaced by that step's result, and the step's `context` appends earlier results after it
//! as `[Step N Result]: …` (the plan/execute/monitor seed's format). Together they add at most
//! `contextMaxChars` characters: the newest results whole, older ones cut to their head and
//! tail with a marker, or, with a `compressAgent`, replaced by that agent's summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::model::{Item, Plan, Step, StepId};
use crate::format::schema::ContextMode;
use crate::format::text::without_nul;

/// The prompt without earlier results: the instruction, or on a retry the Python version's
/// troubleshoot prompt word for word (agents tuned to it keep working), then a person's note.
#[must_use]
pub fn prompt(step: &Step) -> String {
    assemble(step, &task(step), "")
}

/// The instruction as this step (or item) is told it, without earlier results: an item's
/// `{{item}}` and `{{index}}` filled in.
#[must_use]
pub fn task(step: &Step) -> String {
    fill(&step.spec.instruction, step.item.as_ref(), &mut |_| None)
}

/// Fills a template in one pass: `{{item}}` and `{{index}}` from the item, the n-th
/// reference `{{steps.<id>.result}}` from `reference(n)` (as written when that gives none).
/// Inserted text is never read again for tokens, so an item or a result cannot smuggle a
/// reference to another step's result in.
#[must_use]
pub fn fill(
    template: &str,
    item: Option<&Item>,
    reference: &mut dyn FnMut(usize) -> Option<String>,
) -> String {
    let refs = references(template);
    let mut out = String::with_capacity(template.len());
    let mut at = 0;
    let mut next_ref = 0;
    while at < template.len() {
        let rest = &template[at..];
        let Some(open) = rest.find("{{") else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..open]);
        let start = at + open;
        let token = &template[start..];
        if let Some((range, _)) = refs.get(next_ref).filter(|(r, _)| r.start == start) {
            match reference(next_ref) {
                Some(text) => out.push_str(&text),
                None => out.push_str(&template[range.clone()]),
            }
            next_ref += 1;
            at = range.end;
        } else if let (Some(item), true) = (item, token.starts_with("{{item}}")) {
            out.push_str(item.text());
            at = start + "{{item}}".len();
        } else if let (Some(item), true) = (item, token.starts_with("{{index}}")) {
            out.push_str(&item.index.to_string());
            at = start + "{{index}}".len();
        } else {
            out.push_str("{{");
            at = start + 2;
        }
    }
    without_nul(&out).into_owned()
}

fn assemble(step: &Step, instruction: &str, context: &str) -> String {
    let run = &step.run;
    let mut prompt = match run.error() {
        // A retry (not a `repeat` step's next run, which starts afresh).
        Some(error) if run.tries_this_run() > 0 => format!(
            "Step {} failed (tries: {}). Previous run ended with: {error}. \
             Please troubleshoot and retry: {instruction}",
            step.id,
            run.tries()
        ),
        _ => instruction.to_owned(),
    };
    prompt.push_str(context);
    if let Some(note) = run.note().filter(|n| !n.trim().is_empty()) {
        prompt.push_str("\n\nNote from the person supervising this plan: ");
        prompt.push_str(note);
    }
    // The error is an agent's output: a NUL in it must not keep the next try from starting.
    without_nul(&prompt).into_owned()
}

pub use crate::format::refs::references;

/// An earlier step's result as the shell found it: the whole text, and the compress agent's
/// summary of it if one was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub text: String,
    pub summary: Option<String>,
}

/// The earlier steps whose results the prompt of `step` carries (referenced, or in its
/// context), each once, in plan order.
#[must_use]
pub fn needs(plan: &Plan, step: &Step) -> Vec<StepId> {
    let mut ids: Vec<(usize, StepId)> = injections(plan, step)
        .into_iter()
        .map(|(position, id, _)| (position, id))
        .collect();
    ids.sort();
    ids.dedup();
    ids.into_iter().map(|(_, id)| id).collect()
}

/// Where results go in the prompt: a reference (by its place in the instruction) or the
/// context (after the instruction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Reference(usize),
    Context,
}

/// Every result the prompt carries: the step's position, its id, and where it goes.
fn injections(plan: &Plan, step: &Step) -> Vec<(usize, StepId, Place)> {
    // An item is where its step is.
    let Some(me) = plan.position(step.id.as_str()) else {
        return Vec::new();
    };
    let graph = plan.graph();
    let mut out = Vec::new();
    for (n, (_, id)) in references(&step.spec.instruction).into_iter().enumerate() {
        if let Some(position) = plan
            .position(id)
            .filter(|p| *p != me && graph.runs_before(*p, me))
        {
            out.push((position, StepId::from(id), Place::Reference(n)));
        }
    }
    let mode = step.spec.context.unwrap_or(plan.results.context);
    let earlier: Vec<usize> = match mode {
        ContextMode::None => Vec::new(),
        // What it waits for: in a plain list, the step before it.
        ContextMode::Previous => plan.deps(me).to_vec(),
        ContextMode::All => graph.ancestors(me),
    };
    for position in earlier {
        out.push((position, plan.steps[position].id.clone(), Place::Context));
    }
    out
}

/// Finds an earlier step's result (the runner reads the sidecar): asked only for results that
/// still have room in the prompt, so a long plan's older results are never read at all.
pub type Load<'a> = dyn FnMut(&StepId) -> Known + 'a;

/// The results that do not fit the bound whole and have no summary yet: what a compress agent
/// is asked to summarise (once per result: the summary is kept).
#[must_use]
pub fn to_summarise(plan: &Plan, step: &Step, load: &mut Load) -> Vec<StepId> {
    let mut out: Vec<StepId> = Vec::new();
    for (_, id, fit) in fitted(plan, step, load) {
        if matches!(
            fit,
            Fit::Cut {
                summarised: false,
                ..
            }
        ) && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}

/// How one injected result is used.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fit {
    Whole(String),
    /// Cut to fit (or left out: no room was left); `summarised`: a summary exists but did not
    /// fit either.
    Cut {
        text: String,
        summarised: bool,
    },
}

impl Fit {
    fn text(&self) -> &str {
        match self {
            Self::Whole(text) | Self::Cut { text, .. } => text,
        }
    }
}

/// Each injection with the text it gets within the bound: newest first, whole while they fit,
/// then the summary if there is one that fits, else cut to head and tail.
fn fitted(plan: &Plan, step: &Step, load: &mut Load) -> Vec<(Place, StepId, Fit)> {
    let mut items = injections(plan, step);
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let mut room = plan.results.max_chars;
    let mut loaded: BTreeMap<StepId, Known> = BTreeMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (position, id, place) in items {
        if room == 0 {
            let text = format!(
                "[… step {}'s result left out to fit contextMaxChars …]",
                position + 1
            );
            out.push((
                place,
                id,
                Fit::Cut {
                    text,
                    summarised: false,
                },
            ));
            continue;
        }
        let known = loaded
            .entry(id.clone())
            .or_insert_with(|| load(&id))
            .clone();
        // Outer whitespace (an agent's final newline) only gets in the way of the sentence
        // a reference sits in.
        let text = match known.text.trim() {
            "" => format!("(step {} left no result)", position + 1),
            text => text.to_owned(),
        };
        let len = text.chars().count();
        let fit = if len <= room {
            room -= len;
            Fit::Whole(text)
        } else if let Some(summary) = known.summary.as_ref().filter(|s| s.chars().count() <= room) {
            room -= summary.chars().count();
            Fit::Whole(summary.clone())
        } else {
            let text = cut(&text, room);
            room = 0;
            Fit::Cut {
                text,
                summarised: known.summary.is_some(),
            }
        };
        out.push((place, id, fit));
    }
    out
}

/// `text` cut to at most `room` characters: its head and tail around a marker.
pub(crate) fn cut(text: &str, room: usize) -> String {
    let len = text.chars().count();
    let marker = |cut: usize| format!("\n[… {cut} characters cut to fit contextMaxChars …]\n");
    if room < 40 {
        return marker(len).trim().to_owned();
    }
    let head = room / 2;
    let tail = room - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(len - tail).collect();
    format!("{start}{}{end}", marker(len - room))
}

/// A prompt built with results, and the task it carries (the instruction with its references
/// resolved, without a retry's wrapping: what a verify agent is told the task was).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub prompt: String,
    pub task: String,
}

/// What a compress agent is asked: a summary of step `number`'s result in at most `chars`.
#[must_use]
pub fn summary_request(number: usize, result: &str, chars: usize) -> String {
    format!(
        "Summarise the following result of step {number} of a plan in at most {chars} \
         characters. Keep every fact a later step may need: names, numbers, file paths, \
         decisions and conclusions. Reply with the summary only.\n\n{result}"
    )
}

/// The prompt with the earlier results it asks for.
#[must_use]
pub fn with_results(plan: &Plan, step: &Step, load: &mut Load) -> Built {
    let fitted = fitted(plan, step, load);
    let text_of = |wanted: Place| {
        fitted
            .iter()
            .find(|(place, _, _)| *place == wanted)
            .map(|(_, _, fit)| fit.text().to_owned())
    };
    // A reference validation let through but that names no earlier step stays as written.
    let resolved = fill(&step.spec.instruction, step.item.as_ref(), &mut |n| {
        text_of(Place::Reference(n))
    });
    let mut contexts: Vec<(usize, &Fit)> = fitted
        .iter()
        .filter(|(place, _, _)| *place == Place::Context)
        .filter_map(|(_, id, fit)| plan.position(id.as_str()).map(|p| (p, fit)))
        .collect();
    contexts.sort_by_key(|(position, _)| *position);
    let mut context = String::new();
    for (position, fit) in contexts {
        let _ = write!(context, "\n[Step {} Result]: {}", position + 1, fit.text());
    }
    // A `repeat` step's later run: what it made last time, and why that was not enough.
    if step.run.round() > 1 {
        let previous = load(&step.id).text;
        let previous = if previous.chars().count() > plan.results.max_chars {
            cut(previous.trim(), plan.results.max_chars)
        } else {
            previous.trim().to_owned()
        };
        let _ = write!(context, "\n\n[Previous result]: {previous}");
        if let Some(why) = step.run.why_again() {
            let _ = write!(context, "\n[Why it runs again]: {why}");
        }
    }
    Built {
        prompt: assemble(step, &resolved, &context),
        task: without_nul(&format!("{resolved}{context}")).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::validate;

    fn plan(extra_plan: &str, b: &str, c: &str) -> Plan {
        let text = format!(
            r#"{{"plan":{{"steps":{{"a":{{"instruction":"find X"}},"b":{b},"c":{c}}}{extra_plan}}},
               "stepQueue":["a","b","c"],"currentStep":2,
               "stepRuns":{{"a":{{"status":"DONE","tries":1}},"b":{{"status":"DONE","tries":1}}}}}}"#
        );
        Plan::of(&validate::parse(text.as_bytes()).unwrap())
    }

    fn loader(results: &BTreeMap<StepId, Known>) -> impl FnMut(&StepId) -> Known + '_ {
        |id| results.get(id).cloned().unwrap_or_default()
    }

    fn known(pairs: &[(&str, &str)]) -> BTreeMap<StepId, Known> {
        pairs
            .iter()
            .map(|(id, text)| {
                (
                    StepId::from(*id),
                    Known {
                        text: (*text).to_owned(),
                        summary: None,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn references_are_found_and_replaced_and_context_appended_in_the_seeds_format() {
        assert_eq!(
            references("use {{steps.a.result}} and {{steps.b.result}}, not {{steps.x"),
            [(4..22, "a"), (27..45, "b")]
        );
        let p = plan(
            "",
            r#"{"instruction":"summarise {{steps.a.result}}"}"#,
            r#"{"instruction":"write it up","context":"all"}"#,
        );
        let results = known(&[("a", "X is 42"), ("b", "a summary")]);
        let b = p.step("b").unwrap();
        assert_eq!(needs(&p, b), [StepId::from("a")]);
        assert_eq!(
            with_results(&p, b, &mut loader(&results)).prompt,
            "summarise X is 42"
        );
        let c = p.step("c").unwrap();
        assert_eq!(needs(&p, c), [StepId::from("a"), StepId::from("b")]);
        assert_eq!(
            with_results(&p, c, &mut loader(&results)).prompt,
            "write it up\n[Step 1 Result]: X is 42\n[Step 2 Result]: a summary"
        );
        // The plan's default context, and "previous".
        let p = plan(
            r#","context":"previous""#,
            r#"{"instruction":"b"}"#,
            r#"{"instruction":"c"}"#,
        );
        assert_eq!(
            with_results(&p, p.step("c").unwrap(), &mut loader(&results)).prompt,
            "c\n[Step 2 Result]: a summary"
        );
        assert_eq!(
            prompt(p.step("c").unwrap()),
            "c",
            "without results, as before"
        );
    }

    #[test]
    fn over_the_bound_the_newest_stay_whole_and_older_are_cut_or_summarised() {
        let p = plan(
            r#","contextMaxChars":100"#,
            r#"{"instruction":"b"}"#,
            r#"{"instruction":"c","context":"all"}"#,
        );
        let c = p.step("c").unwrap();
        let mut results = known(&[("a", &"A".repeat(300)), ("b", &"B".repeat(60))]);
        let text = with_results(&p, c, &mut loader(&results)).prompt;
        assert!(
            text.contains(&format!("[Step 2 Result]: {}", "B".repeat(60))),
            "{text}"
        );
        assert!(
            text.contains("[… 260 characters cut to fit contextMaxChars …]"),
            "{text}"
        );
        assert_eq!(text.matches('A').count(), 40);
        // With a summary for the older one, it is used instead of a cut.
        assert_eq!(
            to_summarise(&p, c, &mut loader(&results)),
            [StepId::from("a")]
        );
        results.get_mut(&StepId::from("a")).unwrap().summary = Some("A, shortly".into());
        let text = with_results(&p, c, &mut loader(&results)).prompt;
        assert!(text.contains("[Step 1 Result]: A, shortly"), "{text}");
        assert!(to_summarise(&p, c, &mut loader(&results)).is_empty());
    }

    #[test]
    fn the_retry_prompt_wraps_the_resolved_instruction_and_a_missing_result_says_so() {
        let text = r#"{"plan":{"steps":{"a":{"instruction":"x"},"b":{"instruction":"use {{steps.a.result}}"}}},
            "stepQueue":["a","b"],"currentStep":1,
            "stepRuns":{"a":{"status":"SKIPPED"},"b":{"status":"FAILED","tries":1,"error":"boom {{steps.a.result}}"}}}"#;
        let p = Plan::of(&validate::parse(text.as_bytes()).unwrap());
        assert_eq!(
            with_results(&p, p.step("b").unwrap(), &mut loader(&BTreeMap::new())).prompt,
            "Step b failed (tries: 1). Previous run ended with: boom {{steps.a.result}}. \
             Please troubleshoot and retry: use (step 1 left no result)"
        );
    }
}
