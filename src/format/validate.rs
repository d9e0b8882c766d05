//! Parsing and checking a state file before anything runs.
//!
//! Every field of state.json is treated as written by someone we do not trust. `parse` turns bytes
//! into a [`State`] or into one message that names the offending field (and, for syntax and type
//! errors, the line and column); `check` then enforces what serde cannot: references between
//! fields, ranges, and timestamps. Nothing here touches the file system.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::graph::Graph;
use crate::format::schema::{self, State, StepStatus, Verify};
use crate::format::timefmt;

/// The longest `stepDelayMinutes` accepted: a year. Longer is a typo, not a plan.
pub const MAX_DELAY_MINUTES: f64 = 525_600.0;
/// Step ids become file names and terminal output: keep them short and printable.
pub const MAX_STEP_ID_BYTES: usize = 200;

/// What is wrong with a state file, and where; with the file's other problems, if it has more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// A path into the document such as `stepRuns.step-1.tries`, or empty for the whole file.
    pub field: String,
    pub problem: String,
    /// The file's other problems, in the order found.
    pub others: Vec<Invalid>,
}

impl Invalid {
    /// Every problem, this one first.
    pub fn all(&self) -> impl Iterator<Item = &Invalid> {
        std::iter::once(self).chain(&self.others)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (n, problem) in self.all().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            if problem.field.is_empty() {
                f.write_str(&problem.problem)?;
            } else {
                write!(f, "{}: {}", problem.field, problem.problem)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        problem: problem.into(),
        others: Vec::new(),
    }
}

/// Parses and checks the bytes of a state file.
pub fn parse(bytes: &[u8]) -> Result<State, Invalid> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("", "the file is empty"));
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        // serde_json would say "expected value at line 1 column 1", which sends people looking
        // for a syntax error they cannot see.
        return Err(invalid(
            "",
            "the file starts with a byte-order mark (BOM): save it as UTF-8 without one",
        ));
    }
    // The plain parse is the hot path (every heartbeat), and checks the UTF-8 of what it reads;
    // the whole file's UTF-8, and the field path, are only looked at once it failed.
    let Ok(state) = serde_json::from_slice::<State>(bytes) else {
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(invalid(
                "",
                format!(
                    "not UTF-8 text (invalid byte at offset {})",
                    e.valid_up_to()
                ),
            ));
        }
        return Err(locate_error(bytes));
    };
    check(&state)?;
    Ok(state)
}

/// Parses again, tracking the path, to say which field made the plain parse fail.
fn locate_error(bytes: &[u8]) -> Invalid {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, State>(&mut de) {
        Err(e) => {
            // A syntax error inside an object is reported at a key the parser never read,
            // which the path shows as `?`: name the object it is in instead.
            let path = e.path().to_string();
            let field = path.trim_end_matches(".?");
            let field = if field == "." || field == "?" {
                ""
            } else {
                field
            };
            invalid(field, e.into_inner().to_string())
        }
        Ok(_) => match de.end() {
            Err(e) => invalid("", format!("{e} (after the JSON object)")),
            // Both parsers are serde_json; they cannot disagree, but never panic on input.
            Ok(()) => invalid("", "the file could not be parsed"),
        },
    }
}

/// Checks what the types alone cannot: references, ranges, and timestamps. Every problem of
/// the file is found, not only the first: the first is the error's field and problem, the
/// others follow it (see [`Invalid::others`]).
pub fn check(state: &State) -> Result<(), Invalid> {
    // Problems are reported in queue order, each step's beside its place in the queue.
    let mut at: Vec<(usize, Invalid)> = Vec::new();
    let position: HashMap<&str, usize> = state
        .step_queue
        .iter()
        .enumerate()
        .map(|(n, id)| (id.as_str(), n))
        .rev()
        .collect();
    check_queue(state, &mut at);
    let mut found = Vec::new();
    let graph = graph_of(state, &position, &mut found);
    for (index, id) in state.step_queue.iter().enumerate() {
        // Ids refused above are not checked further (a twice-queued one, at its first place).
        let Some(step) = state
            .plan
            .steps
            .get(id)
            .filter(|_| position.get(id.as_str()) == Some(&index))
        else {
            continue;
        };
        if check_id(String::new, id).is_some() {
            continue;
        }
        let base = Base(id);
        let mut mine = Vec::new();
        check_step(&base, step, &mut mine);
        check_results(&base, index, step, &position, &graph, &mut mine);
        check_flow(&base, index, step, &position, &graph, &mut mine);
        at.extend(mine.into_iter().map(|p| (index, p)));
    }
    at.sort_by_key(|(index, _)| *index);
    found.splice(0..0, at.into_iter().map(|(_, p)| p));
    check_plan_results(&state.plan, &mut found);
    let fields = RunFields {
        queue_len: state.step_queue.len(),
        current_step: state.current_step,
        step_delay_minutes: state.step_delay_minutes.as_ref(),
        last_heartbeat_iso: state.last_heartbeat_iso.as_deref(),
        finished_iso: state.finished_iso.as_deref(),
        blocker_reported_iso: state.blocker_reported_iso.as_deref(),
    };
    check_fields(&fields, state.step_runs.iter(), &mut found);
    into_result(found)
}

/// The fields a run's save may change (see `store::journal`): the plan-wide ones, and the run
/// records given, for a plan of `queue_len` queued steps.
pub struct RunFields<'a> {
    pub queue_len: usize,
    pub current_step: u64,
    pub step_delay_minutes: Option<&'a serde_json::Number>,
    pub last_heartbeat_iso: Option<&'a str>,
    pub finished_iso: Option<&'a str>,
    pub blocker_reported_iso: Option<&'a str>,
}

/// [`check`] of what a run's save may change, as `fields` and `runs` would make it.
pub fn check_runs<'a>(
    fields: &RunFields<'_>,
    runs: impl Iterator<Item = (&'a String, &'a crate::format::schema::StepRun)>,
) -> Result<(), Invalid> {
    let mut found = Vec::new();
    check_fields(fields, runs, &mut found);
    into_result(found)
}

/// The checks of the plan-wide fields a run changes, and of the run records given.
fn check_fields<'a>(
    fields: &RunFields<'_>,
    runs: impl Iterator<Item = (&'a String, &'a crate::format::schema::StepRun)>,
    found: &mut Vec<Invalid>,
) {
    let len = fields.queue_len as u64;
    if fields.current_step > len {
        found.push(invalid(
            "currentStep",
            format!(
                "{} is past the end of stepQueue (0..={len})",
                fields.current_step
            ),
        ));
    }
    if let Some(n) = fields.step_delay_minutes {
        match n.as_f64() {
            Some(m) if m.is_finite() && (0.0..=MAX_DELAY_MINUTES).contains(&m) => {}
            _ => found.push(invalid(
                "stepDelayMinutes",
                format!("{n} is not a number of minutes from 0 to {MAX_DELAY_MINUTES}"),
            )),
        }
    }
    let mut time = |field: &dyn Fn() -> String, value: Option<&str>| {
        found.extend(check_time(field, value).err());
    };
    time(&|| "lastHeartbeatIso".into(), fields.last_heartbeat_iso);
    time(&|| "finishedIso".into(), fields.finished_iso);
    time(&|| "blockerReportedIso".into(), fields.blocker_reported_iso);
    for (id, run) in runs {
        time(
            &|| format!("stepRuns.{id}.lastRunIso"),
            run.last_run_iso.as_deref(),
        );
        time(
            &|| format!("stepRuns.{id}.startedIso"),
            run.started_iso.as_deref(),
        );
        time(
            &|| format!("stepRuns.{id}.finishedIso"),
            run.finished_iso.as_deref(),
        );
    }
}

/// The first problem, with the others beside it; or none.
fn into_result(found: Vec<Invalid>) -> Result<(), Invalid> {
    let mut found = found.into_iter();
    match found.next() {
        None => Ok(()),
        Some(mut first) => {
            first.others = found.collect();
            Err(first)
        }
    }
}

/// The queue's ids: printable, queued once, defined.
fn check_queue(state: &State, at: &mut Vec<(usize, Invalid)>) {
    let mut queued = HashSet::with_capacity(state.step_queue.len());
    // Field names are only spelt out for a problem: this runs on every heartbeat.
    for (index, id) in state.step_queue.iter().enumerate() {
        let field = || format!("stepQueue[{index}]");
        if let Some(problem) = check_id(field, id) {
            at.push((index, problem));
            continue;
        }
        if !queued.insert(id.as_str()) {
            at.push((
                index,
                invalid(field(), format!("step `{id}` is queued twice")),
            ));
            continue;
        }
        if !state.plan.steps.contains_key(id) {
            at.push((
                index,
                invalid(field(), format!("step `{id}` is not defined in plan.steps")),
            ));
        }
    }
}

/// `plan.steps.<id>`, spelt out only when a problem is reported.
struct Base<'a>(&'a str);

impl fmt::Display for Base<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "plan.steps.{}", self.0)
    }
}

/// The checks of one queued step's definition.
fn check_step(base: &Base, step: &crate::format::schema::Step, found: &mut Vec<Invalid>) {
    if step.instruction().trim().is_empty() {
        found.push(invalid(
            format!("{base}.instruction"),
            "missing or empty: every queued step needs an instruction",
        ));
    }
    // A NUL cannot be passed to a program: it would fail every try, so refuse it up front.
    if step.instruction().contains('\0') {
        found.push(invalid(
            format!("{base}.instruction"),
            "contains a NUL character",
        ));
    }
    if step.required_outputs().iter().any(|p| p.contains('\0')) {
        found.push(invalid(
            format!("{base}.requiredOutputs"),
            "a path contains a NUL character",
        ));
    }
    if step.required_outputs.is_some() && step.required_outputs_alias.is_some() {
        found.push(invalid(
            base.to_string(),
            "has both `requiredOutputs` and `required_outputs`: keep one",
        ));
    }
    if step.max_retries == Some(0) {
        found.push(invalid(
            format!("{base}.maxRetries"),
            "must be at least 1 (it counts attempts)",
        ));
    }
    if step.timeout_seconds == Some(0) {
        found.push(invalid(
            format!("{base}.timeoutSeconds"),
            "must be at least 1",
        ));
    }
}

/// The most characters `plan.contextMaxChars` may allow: more would not fit an argument list.
pub const MAX_CONTEXT_CHARS: u64 = 10_000_000;
/// An agent's name: a word of the agents file (`[agents.<name>]`).
pub const MAX_AGENT_NAME_BYTES: usize = 64;
/// What a `verify.matches` expression may compile to: a hostile plan cannot make every
/// heartbeat build a huge automaton.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The checks of a step's results, verify and agents (references run backwards only).
fn check_results(
    base: &Base,
    me: usize,
    step: &schema::Step,
    position: &HashMap<&str, usize>,
    graph: &Graph,
    found: &mut Vec<Invalid>,
) {
    for (_, id) in super::refs::references(step.instruction()) {
        if let Some(problem) = earlier(id, me, position, graph) {
            found.push(invalid(
                format!("{base}.instruction"),
                format!("refers to the result of step `{id}`, which {problem}"),
            ));
        }
    }
    if let Some(path) = &step.result_file {
        found.extend(check_relative(&format!("{base}.resultFile"), path));
    }
    if let Some(name) = &step.agent {
        found.extend(check_agent_name(&format!("{base}.agent"), name));
    }
    for (n, name) in step.fallback_agents.iter().flatten().enumerate() {
        found.extend(check_agent_name(
            &format!("{base}.fallbackAgents[{n}]"),
            name,
        ));
    }
    if let Some(verify) = &step.verify {
        check_verify(&format!("{base}.verify"), verify, found);
    }
}

/// Why step `id` cannot be one that runs before the step at `me`, if it cannot.
fn earlier(
    id: &str,
    me: usize,
    position: &HashMap<&str, usize>,
    graph: &Graph,
) -> Option<&'static str> {
    match position.get(id) {
        None => Some("is not in stepQueue"),
        Some(&at) if !graph.runs_before(at, me) => Some("does not run before this one"),
        Some(_) => None,
    }
}

/// The graph of the queue's steps, with problems of `needs` (unknown ids, cycles) reported.
fn graph_of(state: &State, position: &HashMap<&str, usize>, found: &mut Vec<Invalid>) -> Graph {
    let queue = &state.step_queue;
    let graph = Graph::new(queue.len(), |i| {
        let needs = state.plan.steps.get(&queue[i])?.needs.as_ref()?;
        let mut deps = Vec::with_capacity(needs.len());
        for (n, id) in needs.iter().enumerate() {
            match position.get(id.as_str()) {
                Some(&at) => deps.push(at),
                None => found.push(invalid(
                    format!("plan.steps.{}.needs[{n}]", queue[i]),
                    format!("step `{id}` is not in stepQueue"),
                )),
            }
        }
        Some(deps)
    });
    if let Some(cycle) = graph.cycle() {
        let names: Vec<String> = cycle.iter().map(|&i| format!("`{}`", queue[i])).collect();
        found.push(invalid(
            format!("plan.steps.{}.needs", queue[cycle[0]]),
            format!(
                "the steps wait for each other in a cycle: {} (each waits for the next)",
                names.join(" -> ")
            ),
        ));
    }
    graph
}

/// The most items a `forEach` may expand into, whatever its `maxItems` says.
pub const MAX_ITEMS: u64 = 100_000;
/// `forEach.maxItems` unless it says.
pub const DEFAULT_MAX_ITEMS: u64 = 1_000;
/// The most runs a `repeat` may ask for.
pub const MAX_REPEAT: u32 = 100;
/// The most tries `plan.maxParallel` may run at once.
pub const MAX_PARALLEL: u32 = 64;

/// Whether `id` looks like a `forEach` item's id (`<step>[<n>]`), which a plan's own step
/// may not take: an item's id must be unique in the whole plan.
#[must_use]
pub fn is_item_id(id: &str) -> bool {
    id.strip_suffix(']')
        .and_then(|rest| rest.rsplit_once('['))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The checks of a step's place in the flow: `needs`, `when`, `forEach`, `repeat`.
fn check_flow(
    base: &Base,
    me: usize,
    step: &schema::Step,
    position: &HashMap<&str, usize>,
    graph: &Graph,
    found: &mut Vec<Invalid>,
) {
    if is_item_id(base.0) {
        found.push(invalid(
            base.to_string(),
            "a step id may not end in `[<number>]`: that is how forEach items are named",
        ));
    }
    if let Some(when) = &step.when {
        if let Some(problem) = earlier(&when.step, me, position, graph) {
            found.push(invalid(
                format!("{base}.when.step"),
                format!("step `{}` {problem}", when.step),
            ));
        }
        if matches!(
            when.status,
            Some(StepStatus::Pending | StepStatus::InProgress)
        ) {
            found.push(invalid(
                format!("{base}.when.status"),
                "must be DONE, FAILED or SKIPPED: the step it names has finished by then",
            ));
        }
        if when.status.is_none() && when.result_contains.is_none() && when.result_matches.is_none()
        {
            found.push(invalid(
                format!("{base}.when"),
                "has no condition: give status, resultContains or resultMatches",
            ));
        }
        if let Some(pattern) = &when.result_matches {
            found.extend(check_regex(&format!("{base}.when.resultMatches"), pattern));
        }
    }
    if let Some(each) = &step.for_each {
        match each.from.strip_prefix("file:") {
            Some(path) => found.extend(check_relative(&format!("{base}.forEach.from"), path)),
            None => match each
                .from
                .strip_prefix("steps.")
                .and_then(|rest| rest.strip_suffix(".result"))
            {
                Some(id) => {
                    if let Some(problem) = earlier(id, me, position, graph) {
                        found.push(invalid(
                            format!("{base}.forEach.from"),
                            format!("step `{id}` {problem}"),
                        ));
                    }
                }
                None => found.push(invalid(
                    format!("{base}.forEach.from"),
                    format!(
                        "{:?} is neither `steps.<id>.result` nor `file:<path>`",
                        each.from
                    ),
                )),
            },
        }
        if each
            .max_items
            .is_some_and(|n| !(1..=MAX_ITEMS).contains(&n))
        {
            found.push(invalid(
                format!("{base}.forEach.maxItems"),
                format!("must be from 1 to {MAX_ITEMS}"),
            ));
        }
        for (field, given) in [
            ("resultFile", step.result_file.is_some()),
            ("repeat", step.repeat.is_some()),
        ] {
            if given {
                found.push(invalid(
                    format!("{base}.{field}"),
                    "cannot be used with forEach: each item is a run of its own",
                ));
            }
        }
    }
    if let Some(repeat) = &step.repeat {
        if !(1..=MAX_REPEAT).contains(&repeat.max) {
            found.push(invalid(
                format!("{base}.repeat.max"),
                format!("must be from 1 to {MAX_REPEAT}"),
            ));
        }
        check_verify(&format!("{base}.repeat.until"), &repeat.until, found);
    }
}

/// A regular expression a plan gives, compiled as it will be used.
fn check_regex(field: &str, pattern: &str) -> Option<Invalid> {
    let e = regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .err()?
        .to_string();
    let first = e.lines().last().unwrap_or_default().trim().to_owned();
    Some(invalid(
        field,
        format!("not a regular expression this program accepts: {first}"),
    ))
}

fn check_verify(base: &str, verify: &Verify, found: &mut Vec<Invalid>) {
    let Verify {
        files,
        contains,
        matches,
        json,
        min_chars,
        agent,
        instruction,
        extra: _,
    } = verify;
    if files.is_none()
        && contains.is_none()
        && matches.is_none()
        && json.is_none()
        && min_chars.is_none()
        && agent.is_none()
    {
        found.push(invalid(
            base,
            "has no check: give files, contains, matches, json, minChars or agent",
        ));
    }
    for (n, path) in files.iter().flatten().enumerate() {
        found.extend(check_relative(&format!("{base}.files[{n}]"), path));
    }
    if let Some(pattern) = matches {
        found.extend(check_regex(&format!("{base}.matches"), pattern));
    }
    if contains.as_deref() == Some("") {
        found.push(invalid(
            format!("{base}.contains"),
            "is empty: it would always pass",
        ));
    }
    if let Some(name) = agent {
        found.extend(check_agent_name(&format!("{base}.agent"), name));
    } else if instruction.is_some() {
        found.push(invalid(
            format!("{base}.instruction"),
            "is for a verify agent, and verify names none",
        ));
    }
    if instruction.as_deref().is_some_and(|i| i.contains('\0')) {
        found.push(invalid(
            format!("{base}.instruction"),
            "contains a NUL character",
        ));
    }
}

/// The plan-wide result settings.
fn check_plan_results(plan: &schema::Plan, found: &mut Vec<Invalid>) {
    if let Some(n) = plan.context_max_chars {
        if !(1..=MAX_CONTEXT_CHARS).contains(&n) {
            found.push(invalid(
                "plan.contextMaxChars",
                format!("{n} is not a number of characters from 1 to {MAX_CONTEXT_CHARS}"),
            ));
        }
    }
    if let Some(name) = &plan.compress_agent {
        found.extend(check_agent_name("plan.compressAgent", name));
    }
    if plan
        .max_parallel
        .is_some_and(|n| !(1..=MAX_PARALLEL).contains(&n))
    {
        found.push(invalid(
            "plan.maxParallel",
            format!("must be from 1 to {MAX_PARALLEL}"),
        ));
    }
}

/// A path a plan names: inside the workspace, so relative, and never climbing out of it.
fn check_relative(field: &str, path: &str) -> Option<Invalid> {
    let problem = if path.trim().is_empty() {
        "is empty"
    } else if path.contains('\0') {
        "contains a NUL character"
    } else if std::path::Path::new(path).is_absolute() {
        "must be relative to the workspace, not absolute"
    } else if std::path::Path::new(path)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        "must stay inside the workspace (no `..`)"
    } else {
        return None;
    };
    Some(invalid(field, format!("{path:?} {problem}")))
}

/// Whether `name` can name an agent: a plain word (letters, digits, `_`, `-`, `.`).
#[must_use]
pub fn is_agent_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_AGENT_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A name that must be one of the operator's agents: a plain word, so it can only ever be
/// looked up, never read as a command.
fn check_agent_name(field: &str, name: &str) -> Option<Invalid> {
    (!is_agent_name(name)).then(|| {
        invalid(
            field,
            format!(
                "{name:?} is not an agent's name: a name from the operator's agents file \
                 (letters, digits, `_`, `-`, `.`; at most {MAX_AGENT_NAME_BYTES})"
            ),
        )
    })
}

fn check_id(field: impl Fn() -> String, id: &str) -> Option<Invalid> {
    let problem = if id.is_empty() {
        "a step id must not be empty".to_owned()
    } else if id.len() > MAX_STEP_ID_BYTES {
        format!("a step id must be at most {MAX_STEP_ID_BYTES} bytes")
    } else if id.chars().any(char::is_control) {
        format!("step id {id:?} contains a control character")
    } else if id.chars().any(super::text::is_bidi_control) {
        // Bidirectional controls make an id read differently on a screen than it is.
        format!("step id {id:?} contains a bidirectional control character")
    } else {
        return None;
    };
    Some(invalid(field(), problem))
}

fn check_time(field: &dyn Fn() -> String, value: Option<&str>) -> Result<(), Invalid> {
    match value {
        Some(text) if timefmt::parse(text).is_none() => Err(invalid(
            field(),
            format!("{text:?} is not an ISO 8601 time"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"plan":{"steps":{"a":{"instruction":"do a"}}},"stepQueue":["a"]}"#;

    fn err(text: &str) -> String {
        parse(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn minimal_plan_loads_with_defaults() {
        let state = parse(GOOD.as_bytes()).unwrap();
        assert_eq!(state.current_step, 0);
        assert!(state.step_runs.is_empty());
        assert!(state.step_delay_minutes.is_none());
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let e = err("{\n  \"plan\": {,\n}");
        assert!(e.contains("line 2 column"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_object_they_are_in_never_a_question_mark() {
        for (text, field) in [
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}, }},"stepQueue":["a"]}"#,
                "plan.steps",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x}}},"stepQueue":["a"]}"#,
                "plan.steps.a",
            ),
            (r#"{"plan": {"steps": {}}, }"#, ""),
        ] {
            let e = parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.field, field, "{text}: {e}");
            assert!(!e.to_string().contains('?'), "{e}");
        }
    }

    #[test]
    fn type_errors_name_the_field() {
        let e = err(
            r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"stepRuns":{"a":{"tries":"3"}}}"#,
        );
        assert!(e.starts_with("stepRuns.a.tries: invalid type"), "{e}");
        let e = err(r#"{"plan":{"steps":{}},"stepQueue":["a"],"currentStep":-1}"#);
        assert!(e.starts_with("currentStep: invalid value"), "{e}");
    }

    #[test]
    fn duplicate_step_ids_are_refused() {
        let e = err(
            r#"{"plan":{"steps":{"a":{"instruction":"x"},"a":{"instruction":"y"}}},"stepQueue":["a"]}"#,
        );
        assert!(e.contains("step id `a` is defined twice"), "{e}");
        assert!(e.starts_with("plan.steps"), "{e}");
    }

    #[test]
    fn duplicate_known_fields_are_refused() {
        let e = err(
            r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"currentStep":0,"currentStep":1}"#,
        );
        assert!(e.contains("duplicate field `currentStep`"), "{e}");
    }

    #[test]
    fn duplicate_unknown_fields_are_refused_at_any_depth() {
        // Kept as the last value, the next save would silently drop the first.
        for (text, field) in [
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x","foo":1,"foo":2}}},"stepQueue":["a"]}"#,
                "plan.steps.a",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"mine":{"k":1,"k":2}}"#,
                "",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}},"n":[{"z":1,"z":1}]},"stepQueue":["a"]}"#,
                "plan",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"stepRuns":{"a":{"q":0,"q":0}}}"#,
                "stepRuns.a",
            ),
        ] {
            let e = err(text);
            assert!(e.contains("is written twice"), "{text}: {e}");
            assert!(e.starts_with(field), "{text}: {e}");
        }
        // Distinct keys, nested values of every kind, and floats are kept exactly.
        let text = r#"{"plan":{"steps":{"a":{"instruction":"x","o":{"k":[1,-2,0.1,1e300,"s",null,true]}}}},"stepQueue":["a"]}"#;
        let state = parse(text.as_bytes()).unwrap();
        let plain: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            state.plan.steps["a"].extra["o"], plain["plan"]["steps"]["a"]["o"],
            "read exactly as serde_json reads it"
        );
    }

    #[test]
    fn references_and_ranges_are_checked() {
        let cases = [
            (
                r#"{"plan":{"steps":{}},"stepQueue":["a"]}"#,
                "stepQueue[0]: step `a` is not defined in plan.steps",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a","a"]}"#,
                "stepQueue[1]: step `a` is queued twice",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":" "}}},"stepQueue":["a"]}"#,
                "plan.steps.a.instruction: missing or empty",
            ),
            (
                r#"{"plan":{"steps":{"a":{"title":"t"}}},"stepQueue":["a"]}"#,
                "plan.steps.a.instruction: missing or empty",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"currentStep":2}"#,
                "currentStep: 2 is past the end",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"stepDelayMinutes":-1}"#,
                "stepDelayMinutes: -1 is not",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"stepDelayMinutes":1e300}"#,
                "stepDelayMinutes:",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x","maxRetries":0}}},"stepQueue":["a"]}"#,
                "plan.steps.a.maxRetries: must be at least 1",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x","requiredOutputs":[],"required_outputs":[]}}},"stepQueue":["a"]}"#,
                "plan.steps.a: has both",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"stepRuns":{"a":{"lastRunIso":"soon"}}}"#,
                "stepRuns.a.lastRunIso: \"soon\" is not an ISO 8601 time",
            ),
            (
                r#"{"plan":{"steps":{"":{"instruction":"x"}}},"stepQueue":[""]}"#,
                "stepQueue[0]: a step id must not be empty",
            ),
            (
                r#"{"plan":{"steps":{"a\u001b[2J":{"instruction":"x"}}},"stepQueue":["a\u001b[2J"]}"#,
                "contains a control character",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"],"status":"RUNNING"}"#,
                "status: unknown variant `RUNNING`",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x"}}},"stepQueue":["a"]} {}"#,
                "after the JSON object",
            ),
            ("", "the file is empty"),
            (
                "\u{feff}{\"plan\":{\"steps\":{}},\"stepQueue\":[]}",
                "the file starts with a byte-order mark (BOM)",
            ),
            ("[]", "invalid type: sequence"),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x\u0000"}}},"stepQueue":["a"]}"#,
                "plan.steps.a.instruction: contains a NUL character",
            ),
            (
                r#"{"plan":{"steps":{"a":{"instruction":"x","requiredOutputs":["a\u0000"]}}},"stepQueue":["a"]}"#,
                "plan.steps.a.requiredOutputs: a path contains a NUL",
            ),
        ];
        for (text, expected) in cases {
            let e = err(text);
            assert!(
                e.starts_with(expected) || e.contains(expected),
                "{text}\n  got: {e}"
            );
        }
    }

    #[test]
    fn every_problem_of_a_file_is_reported_at_once() {
        let e = parse(
            br#"{"plan":{"steps":{"a":{"instruction":" ","maxRetries":0},"b":{"instruction":"x"}}},
                "stepQueue":["a","b","b","c"],"currentStep":9,"stepDelayMinutes":-1}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = e.all().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "plan.steps.a.instruction",
                "plan.steps.a.maxRetries",
                "stepQueue[2]",
                "stepQueue[3]",
                "currentStep",
                "stepDelayMinutes"
            ]
        );
        let text = e.to_string();
        assert!(
            text.starts_with("plan.steps.a.instruction: missing or empty"),
            "{text}"
        );
        assert!(
            text.contains("; plan.steps.a.maxRetries: must be at least 1"),
            "{text}"
        );
    }

    #[test]
    fn the_flow_is_checked_needs_cycles_conditions_and_items() {
        let text = r#"{"plan":{"maxParallel":0,"steps":{
            "a":{"instruction":"x","needs":["zz"]},
            "b":{"instruction":"x","needs":["c"]},
            "c":{"instruction":"x","needs":["b"]},
            "d":{"instruction":"x","needs":[],"when":{"step":"e","status":"PENDING"}},
            "e":{"instruction":"x","when":{"step":"a"},"forEach":{"from":"nope","maxItems":0},"repeat":{"max":0,"until":{}}},
            "f":{"instruction":"x","needs":["a"],"forEach":{"from":"steps.b.result"}},
            "g[1]":{"instruction":"x","needs":[],"when":{"step":"a","resultMatches":"("},"forEach":{"from":"file:../x"}}}},
          "stepQueue":["a","b","c","d","e","f","g[1]"]}"#;
        let e = parse(text.as_bytes()).unwrap_err().to_string();
        for expected in [
            "plan.steps.a.needs[0]: step `zz` is not in stepQueue",
            "plan.steps.b.needs: the steps wait for each other in a cycle: `b` -> `c` -> `b`",
            "plan.steps.d.when.step: step `e` does not run before this one",
            "plan.steps.d.when.status: must be DONE, FAILED or SKIPPED",
            "plan.steps.e.when: has no condition",
            "plan.steps.e.forEach.from: \"nope\" is neither",
            "plan.steps.e.forEach.maxItems: must be from 1 to 100000",
            "plan.steps.e.repeat: cannot be used with forEach",
            "plan.steps.e.repeat.max: must be from 1 to 100",
            "plan.steps.e.repeat.until: has no check",
            "plan.steps.f.forEach.from: step `b` does not run before this one",
            "plan.steps.g[1]: a step id may not end in `[<number>]`",
            "plan.steps.g[1].when.resultMatches: not a regular expression",
            "plan.steps.g[1].forEach.from: \"../x\" must stay inside the workspace",
            "plan.maxParallel: must be from 1 to 64",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in {e}");
        }
        // With needs, "before" means waited for: a sibling branch is not before.
        let ok = r#"{"plan":{"steps":{
            "a":{"instruction":"x"},"b":{"instruction":"x","needs":[]},
            "c":{"instruction":"use {{steps.a.result}} and {{steps.b.result}}","needs":["a","b"]}}},
          "stepQueue":["a","b","c"]}"#;
        assert!(parse(ok.as_bytes()).is_ok());
        let sibling = ok.replace(r#""needs":["a","b"]"#, r#""needs":["b"]"#);
        let e = parse(sibling.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("refers to the result of step `a`, which does not run before"),
            "{e}"
        );
    }

    #[test]
    fn non_utf8_is_refused_with_the_offset() {
        let e = parse(b"{\"plan\": \"\xff\"}").unwrap_err().to_string();
        assert_eq!(e, "not UTF-8 text (invalid byte at offset 10)");
    }
}
