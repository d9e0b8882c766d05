//! Property tests (proptest) of the pure parts: the state parser and validator, the schedule's
//! decision function, and the agent-command policy. 256 cases each by default; set
//! `PROPTEST_CASES` to run more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agent_step_sequencer::core::model::is_blocker_for;
use agent_step_sequencer::core::{
    apply, settle, AgentRef, Context, Event, Input, Limits, Liveness, Next, Plan, TryOutcome,
};
use agent_step_sequencer::exec::policy;
use agent_step_sequencer::format::schema::{State, StepStatus};
use agent_step_sequencer::format::{timefmt, validate};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// The parser and validator

/// A JSON leaf or small container, for unknown fields.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e6..1.0e6f64).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Unknown fields: keys no version of the format uses.
fn extras() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("x_[a-zA-Z0-9_]{1,8}", json_value(), 0..3)
        .prop_map(|m| m.into_iter().collect())
}

fn time() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "2026-03-01T10:00:00.000Z",
        "2026-02-07T12:00:00.123456+00:00",
        "2026-02-07T12:00:00.123456",
        "2026-02-07 12:00:00",
        "2026-02-07T14:00:00+02:00",
    ])
    .prop_map(str::to_owned)
}

fn text() -> impl Strategy<Value = String> {
    ".{0,24}"
}

/// Inserts `value` under `key` when present.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value);
    }
}

/// One step definition, its fields in the order the serializer writes them.
fn step() -> impl Strategy<Value = Value> {
    (
        prop::option::of(text()),
        // Any text but NUL, which the validator refuses in an instruction (no argv can hold it).
        "[^\\s\\x00]{1,3}[^\\x00]{0,30}",
        prop::option::of(prop::collection::vec("[a-z./]{1,10}", 0..3)),
        any::<bool>(),
        prop::option::of(1..20u32),
        prop::option::of(1..100_000u64),
        extras(),
    )
        .prop_map(
            |(title, instruction, outputs, alias, retries, timeout, extras)| {
                let mut m = Map::new();
                put(&mut m, "title", title.map(Value::from));
                m.insert("instruction".into(), instruction.into());
                let outputs = outputs.map(Value::from);
                if alias {
                    put(&mut m, "required_outputs", outputs);
                } else {
                    put(&mut m, "requiredOutputs", outputs);
                }
                put(&mut m, "maxRetries", retries.map(Value::from));
                put(&mut m, "timeoutSeconds", timeout.map(Value::from));
                m.extend(extras);
                Value::Object(m)
            },
        )
}

fn step_status() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["PENDING", "IN_PROGRESS", "DONE", "FAILED", "SKIPPED"])
}

/// One stepRuns entry, in serializer order.
fn step_run() -> impl Strategy<Value = Value> {
    (
        (step_status(), 0..10u32, prop::option::of(time())),
        (prop::option::of(text()), prop::option::of(text())),
        (prop::option::of(time()), prop::option::of(time())),
        (
            prop::option::of(any::<u64>()),
            prop::option::of(any::<i32>()),
            prop::option::of(1..64i32),
        ),
        (prop::option::of(text()), prop::option::of(text())),
        extras(),
    )
        .prop_map(
            |((status, tries, last), (error, stdout), (started, finished), nums, notes, extras)| {
                let mut m = Map::new();
                m.insert("status".into(), status.into());
                m.insert("tries".into(), tries.into());
                put(&mut m, "lastRunIso", last.map(Value::from));
                put(&mut m, "error", error.map(Value::from));
                put(&mut m, "stdout", stdout.map(Value::from));
                put(&mut m, "startedIso", started.map(Value::from));
                put(&mut m, "finishedIso", finished.map(Value::from));
                put(&mut m, "durationMs", nums.0.map(Value::from));
                put(&mut m, "exitCode", nums.1.map(Value::from));
                put(&mut m, "signal", nums.2.map(Value::from));
                put(&mut m, "logFile", notes.0.map(Value::from));
                put(&mut m, "note", notes.1.map(Value::from));
                m.extend(extras);
                Value::Object(m)
            },
        )
}

/// A valid state file as a JSON value, every field in the order the serializer writes it, so
/// that a faithful round trip gives back the same bytes.
fn valid_state() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((step(), prop::option::of(step_run())), 1..6),
        "[a-zA-Z0-9 ./_~é-]{0,6}",
        any::<prop::sample::Index>(),
        prop::option::of(prop::sample::select(vec![
            json!(0),
            json!(2),
            json!(0.5),
            json!(1440),
            json!(0.01),
        ])),
        (
            prop::option::of(prop::collection::vec(text(), 0..3)),
            prop::option::of(time()),
            prop::option::of(prop::collection::vec(text(), 0..3)),
        ),
        (any::<bool>(), prop::option::of(time()), any::<bool>()),
        (extras(), extras()),
    )
        .prop_map(
            |(steps, prefix, current, delay, (blockers, heartbeat, artifacts), flags, extra)| {
                let (done, finished, paused) = flags;
                let (top_extras, plan_extras) = extra;
                let mut defs = Map::new();
                let mut runs = Map::new();
                let mut queue = Vec::new();
                for (i, (def, run)) in steps.into_iter().enumerate() {
                    let id = format!("{prefix}{i}");
                    defs.insert(id.clone(), def);
                    if let Some(run) = run {
                        runs.insert(id.clone(), run);
                    }
                    queue.push(Value::from(id));
                }
                let current_step = current.index(queue.len() + 1);
                let mut plan = Map::new();
                plan.insert("steps".into(), Value::Object(defs));
                plan.extend(plan_extras);
                let mut m = Map::new();
                m.insert("plan".into(), Value::Object(plan));
                m.insert("stepQueue".into(), Value::from(queue));
                m.insert("currentStep".into(), current_step.into());
                m.insert("stepRuns".into(), Value::Object(runs));
                put(&mut m, "stepDelayMinutes", delay);
                put(&mut m, "blockers", blockers.map(Value::from));
                put(&mut m, "lastHeartbeatIso", heartbeat.map(Value::from));
                put(&mut m, "artifacts", artifacts.map(Value::from));
                m.insert(
                    "status".into(),
                    if done { "DONE" } else { "IN_PROGRESS" }.into(),
                );
                put(&mut m, "finishedIso", finished.map(Value::from));
                if paused {
                    m.insert("paused".into(), true.into());
                }
                m.extend(top_extras);
                Value::Object(m)
            },
        )
}

/// Edits a byte string: replace, insert or delete at a position.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, kind, byte) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = at % bytes.len();
        match kind % 3 {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ => {
                bytes.remove(at);
            }
        }
    }
    bytes
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = validate::parse(&bytes);
    }

    #[test]
    fn json_like_text_never_panics_the_parser(
        text in r#"[\[\]{}:,"\\ a-zA-Z0-9.eE+\-_\n\t]{0,300}"#,
    ) {
        let _ = validate::parse(text.as_bytes());
    }

    /// Valid files with a few bytes changed: the parser says yes or no, never panics, and
    /// what it accepts it can write back and read again.
    #[test]
    fn mutated_valid_files_never_panic_and_what_parses_reserializes(
        state in valid_state(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let bytes = mutate(serde_json::to_vec_pretty(&state).unwrap(), &edits);
        if let Ok(parsed) = validate::parse(&bytes) {
            let again = serde_json::to_vec_pretty(&parsed).unwrap();
            prop_assert_eq!(validate::parse(&again).unwrap(), parsed);
        }
    }

    /// Parse -> serialize gives back the same bytes, unknown fields and all, and parses to the
    /// same state.
    #[test]
    fn valid_states_round_trip_unchanged(state in valid_state()) {
        let text = serde_json::to_string_pretty(&state).unwrap();
        let parsed = validate::parse(text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("a valid state was refused: {e}\n{text}")))?;
        let written = serde_json::to_string_pretty(&parsed).unwrap();
        prop_assert_eq!(&written, &text);
        prop_assert_eq!(validate::parse(written.as_bytes()).unwrap(), parsed);
    }

    /// The core's model taken out of a state and put back unchanged is the same state, extras
    /// and timestamps as written included: the conversion loses nothing.
    #[test]
    fn the_core_model_round_trips_every_valid_state(state in valid_state()) {
        let text = serde_json::to_string_pretty(&state).unwrap();
        let original = validate::parse(text.as_bytes()).unwrap();
        let mut taken = original.clone();
        let plan = Plan::take(&mut taken);
        plan.put_back(&mut taken);
        prop_assert_eq!(taken, original);
    }
}

// ---------------------------------------------------------------------------------------------
// The schedule

#[derive(Debug, Clone)]
enum Op {
    /// A heartbeat or a runner's turn: settle, and start the step if one is due.
    Settle,
    /// Time passes (milliseconds).
    Advance(i64),
    /// The try in flight ends, DONE or FAILED.
    Finish(bool),
    /// The runner dies: the lease is free, the try stays IN_PROGRESS in the file.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Settle),
        3 => (0..200_000i64).prop_map(Op::Advance),
        3 => any::<bool>().prop_map(Op::Finish),
        1 => Just(Op::Crash),
    ]
}

fn sim_plan() -> impl Strategy<Value = (State, Limits)> {
    (
        prop::collection::vec(prop::option::of(1..4u32), 1..5),
        prop::sample::select(vec!["0", "0.5", "2", "0.01"]),
        1..4u32,
    )
        .prop_map(|(retries, delay, max_tries)| {
            let mut steps = Map::new();
            let mut queue = Vec::new();
            for (i, retries) in retries.into_iter().enumerate() {
                let id = format!("s{i}");
                let mut step = json!({"instruction": format!("do {id}")});
                if let Some(n) = retries {
                    step["maxRetries"] = n.into();
                }
                steps.insert(id.clone(), step);
                queue.push(id);
            }
            let text = format!(
                r#"{{"plan":{{"steps":{}}},"stepQueue":{},"stepDelayMinutes":{delay}}}"#,
                Value::Object(steps),
                json!(queue)
            );
            (
                validate::parse(text.as_bytes()).unwrap(),
                Limits {
                    max_tries,
                    ..Limits::default()
                },
            )
        })
}

fn outcome(ok: bool) -> TryOutcome {
    TryOutcome {
        verdict: if ok {
            Ok(Vec::new())
        } else {
            Err("exit 1".into())
        },
        stdout_tail: String::new(),
        exit_code: Some(i32::from(!ok)),
        signal: None,
        duration_ms: 1,
        stopped: None,
        again: None,
    }
}

fn delay(state: &State) -> Duration {
    Duration::milliseconds((state.delay_minutes() * 60_000.0).round() as i64)
}

proptest! {
    /// Random heartbeats, finishes, failures, crashes and time jumps through the pure API, as
    /// the runner and the check drive it. Checked at every step: never two starts without a
    /// finish; never a start before the step is due; tries never decrease; blockers never
    /// duplicated; currentStep never decreases; a busy or finished plan is left alone.
    #[test]
    fn the_schedule_never_double_starts_or_starts_early(
        (mut state, limits) in sim_plan(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut now: DateTime<Utc> = timefmt::parse("2026-03-01T10:00:00Z").unwrap();
        let mut in_flight: Option<(String, u32)> = None;
        // When each step's last try ended, by the simulation's clock.
        let mut ended: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        let mut tries: BTreeMap<String, u32> = BTreeMap::new();
        let mut current = 0;
        for op in ops {
            let mut plan = Plan::take(&mut state);
            let free = Liveness::free();
            let ctx = |live| Context {
                now,
                live,
                limits,
                io: &agent_step_sequencer::core::decide::NoIo,
            };
            match op {
                Op::Advance(ms) => now += Duration::milliseconds(ms),
                Op::Crash => in_flight = None,
                Op::Finish(ok) => {
                    if let Some((step, attempt)) = in_flight.take() {
                        let input = Input::Finished { step: step.as_str().into(), attempt, outcome: outcome(ok) };
                        let events = apply(&mut plan, input, &ctx(&free)).unwrap();
                        let recorded = matches!(events[..], [Event::StepFinished { recorded: true, .. }]);
                        prop_assert!(recorded, "the finish of the try in flight is recorded");
                        ended.insert(step, now);
                    }
                }
                Op::Settle => {
                    // A runner busy with its try holds the lease: the caller is someone else.
                    let busy = in_flight.is_some();
                    let live = if busy { Liveness::held() } else { Liveness::free() };
                    let before = plan.clone();
                    let orphan = plan.running().next().map(|s| s.id.to_string());
                    let (changes, next) = settle(&mut plan, &ctx(&live));
                    if before.is_done() {
                        prop_assert_eq!(&next, &Next::Finished);
                        prop_assert_eq!(&plan, &before);
                    } else if busy {
                        prop_assert_eq!(&next, &Next::Busy);
                        prop_assert_eq!(&plan, &before);
                    }
                    for change in &changes {
                        if let Event::Interrupted { step, .. } = change {
                            prop_assert_eq!(Some(step.to_string()), orphan.clone());
                            ended.insert(step.to_string(), now);
                        }
                    }
                    if let Next::Run(launch) = next.clone() {
                        let step = launch.step.to_string();
                        prop_assert!(in_flight.is_none(), "two starts without a finish");
                        let run = &plan.step(&step).unwrap().run;
                        prop_assert!(run.status() != StepStatus::InProgress, "an orphan was not settled first");
                        prop_assert_eq!(launch.attempt, run.tries() + 1);
                        prop_assert_eq!(plan.current().map(|s| s.id.to_string()), Some(step.clone()));
                        let after = if run.status() == StepStatus::Failed {
                            ended.get(&step).copied()
                        } else {
                            plan.previous().and_then(|p| ended.get(p.id.as_str()).copied())
                        };
                        if let Some(after) = after {
                            prop_assert!(now >= after + delay(&state),
                                "{} started at {} before it was due ({} + delay)", step, now, after);
                        }
                        let started = Input::Started {
                            step: launch.step.clone(),
                            attempt: launch.attempt,
                            agent: AgentRef::Default,
                            runner: None,
                            log_file: None,
                        };
                        prop_assert!(apply(&mut plan, started, &ctx(&free)).is_ok());
                        in_flight = Some((step, launch.attempt));
                    }
                    if let Next::Wait { until, .. } = next {
                        prop_assert!(until > now);
                    }
                    if let Next::Blocked { step, tries } = &next {
                        prop_assert!(*tries >= plan.step(step.as_str()).unwrap().max_tries(limits.max_tries));
                    }
                }
            }
            plan.put_back(&mut state);
            // Invariants after every event.
            for (id, run) in &state.step_runs {
                let seen = tries.entry(id.clone()).or_default();
                prop_assert!(run.tries >= *seen, "tries of {} went down", id);
                *seen = run.tries;
            }
            prop_assert!(state.current_step >= current, "currentStep went down");
            current = state.current_step;
            let blockers = state.blockers();
            for id in &state.step_queue {
                let n = blockers.iter().filter(|b| is_blocker_for(b, id)).count();
                prop_assert!(n <= 1, "blocker for {} recorded {} times", id, n);
            }
            let running: Vec<_> = state.step_runs.iter()
                .filter(|(_, r)| r.status == StepStatus::InProgress).collect();
            prop_assert!(running.len() <= 1, "two steps IN_PROGRESS");
            if let Some((step, _)) = &in_flight {
                prop_assert_eq!(state.run_of(step).status, StepStatus::InProgress);
            }
            prop_assert!(validate::check(&state).is_ok());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The agent-command policy

const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "fish",
    "csh",
    "tcsh",
    "ash",
    "mksh",
    "lksh",
    "bash-static",
    "sh.distrib",
    "zsh-static",
    "mksh-static",
];

/// Resolves a word as PATH lookup would: a bare name to /usr/bin/NAME, a path to itself.
fn resolve(word: &str) -> Option<PathBuf> {
    if word.is_empty() {
        None
    } else if word.contains('/') {
        Some(PathBuf::from(word))
    } else {
        Some(Path::new("/usr/bin").join(word))
    }
}

fn no_trust() -> policy::Trust {
    policy::Trust::default()
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        prop::sample::select(vec![
            "{prompt}",
            "{prompt_file}",
            "--message={prompt}",
            "-c",
            "-e",
            "--",
            "-",
            "env",
            "nice",
            "timeout",
            "sudo",
            "python3",
            "-n",
            "5",
            "A=1",
            "-i",
            "bash",
            "claude",
            "-p",
            "codex",
            "exec",
            "fakeroot",
            "-ec",
        ])
        .prop_map(str::to_owned),
    ]
}

fn shell_word() -> impl Strategy<Value = String> {
    (prop::sample::select(SHELLS.to_vec()), 0..3u8).prop_map(|(name, form)| match form {
        0 => name.to_owned(),
        1 => format!("/bin/{name}"),
        _ => format!("/usr/bin/{name}"),
    })
}

fn words_of(line: &[&str]) -> Vec<String> {
    line.iter().map(|w| (*w).to_owned()).collect()
}

fn wrapper() -> impl Strategy<Value = Vec<String>> {
    prop::sample::select(vec![
        vec!["nice"],
        vec!["nice", "-n", "10"],
        vec!["timeout", "5"],
        vec!["env", "A=1"],
        vec!["env"],
        vec!["fakeroot"],
        vec!["sudo", "-u", "bob"],
    ])
    .prop_map(|w| words_of(&w))
}

/// Commands the policy must refuse: a shell with any arguments, or an interpreter given code.
fn rejected_command() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        (shell_word(), prop::collection::vec(word(), 0..4))
            .prop_map(|(shell, rest)| { std::iter::once(shell).chain(rest).collect() }),
        prop::sample::select(vec![
            vec!["python3", "-c", "import os"],
            vec!["python3", "-m", "timeit"],
            vec!["perl", "-e", "print 1"],
            vec!["bash", "-c"],
            vec!["sh"],
            vec!["make", "-E"],
            vec!["sqlite3", ":memory:"],
        ])
        .prop_map(|w| words_of(&w)),
    ]
}

/// A program that is no known agent and no shell: a launcher the policy may or may not
/// know, a user's script, or an interpreter running one.
fn non_agent_program() -> impl Strategy<Value = Vec<String>> {
    prop::sample::select(vec![
        vec!["fakeroot"],
        vec!["mylauncher"],
        vec!["dbus-run-session", "--"],
        vec!["./my-agent.sh"],
        vec!["python3", "agent.py"],
        vec!["nice", "-n", "1", "fakeroot"],
        vec!["env", "A=1", "fakeroot", "--"],
        vec!["xvfb-run", "-a"],
    ])
    .prop_map(|w| words_of(&w))
}

/// Arguments that are neither a known agent nor a shell: flags, values, placeholders.
fn plain_arg() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}".prop_filter("not a known agent or a program that runs code", |w| {
            policy::judge(std::slice::from_ref(w), &resolve, &no_trust()).is_ok()
                && !policy::AGENTS.iter().any(|a| a.name == w)
        }),
        prop::sample::select(vec![
            "-v",
            "--flag",
            "-x",
            "--",
            "A=1",
            "{prompt}",
            "--m={prompt}"
        ])
        .prop_map(str::to_owned),
    ]
}

/// A known agent in a form that takes a prompt, with random flags of its own.
fn agent_command() -> impl Strategy<Value = Vec<String>> {
    let agent = prop::sample::select(vec![
        vec!["claude", "-p"],
        vec!["codex", "exec"],
        vec!["codex"],
        vec!["gemini", "-p"],
        vec!["gemini"],
        vec!["qwen", "-p"],
        vec!["aider"],
        vec!["goose", "run"],
        vec!["opencode", "run"],
        vec!["cursor-agent", "-p"],
        vec!["openclaw", "agent", "exec"],
        vec!["openclaw", "agent"],
    ]);
    let flag = prop::sample::select(vec![
        "-c",
        "-e",
        "-y",
        "-x",
        "--yolo",
        "--verbose",
        "--model=x",
        "--json",
        "-vv",
        "--force",
        "-c=x",
        "--dangerously-skip-permissions",
        "-p",
        "-m",
        "--",
    ]);
    let prefix = prop::collection::vec(wrapper(), 0..3);
    (prefix, agent, prop::collection::vec(flag, 0..6)).prop_map(|(prefix, agent, flags)| {
        let mut words: Vec<String> = prefix.into_iter().flatten().collect();
        // `fakeroot` is a wrapper: an agent behind it is still the agent.
        words.extend(agent.iter().map(|w| (*w).to_owned()));
        words.extend(flags.iter().map(|w| (*w).to_owned()));
        words
    })
}

proptest! {
    #[test]
    fn the_policy_never_panics(
        words in prop::collection::vec(word(), 1..8),
        trust in "[a-z,]{0,12}",
    ) {
        let _ = policy::judge(&words, &resolve, &policy::Trust::parse(&trust));
    }

    #[test]
    fn a_shell_as_the_program_is_always_refused(
        shell in shell_word(),
        rest in prop::collection::vec(word(), 0..5),
    ) {
        let words: Vec<String> = std::iter::once(shell).chain(rest).collect();
        prop_assert!(policy::judge(&words, &resolve, &no_trust()).is_err(), "accepted {:?}", words);
    }

    #[test]
    fn wrappers_keep_a_refused_command_refused(
        command in rejected_command(),
        wrappers in prop::collection::vec(wrapper(), 1..4),
    ) {
        prop_assert!(policy::judge(&command, &resolve, &no_trust()).is_err(), "accepted {:?}", command);
        let wrapped: Vec<String> = wrappers.into_iter().flatten().chain(command).collect();
        prop_assert!(policy::judge(&wrapped, &resolve, &no_trust()).is_err(), "accepted {:?}", wrapped);
    }

    /// Issue 12: a word naming a shell anywhere outside a known agent's own arguments is
    /// refused, whatever launcher or script it is handed to and wherever it sits.
    #[test]
    fn a_shell_word_outside_a_known_agent_is_refused(
        program in non_agent_program(),
        before in prop::collection::vec(plain_arg(), 0..4),
        shell in shell_word(),
        after in prop::collection::vec(plain_arg(), 0..4),
    ) {
        let words: Vec<String> = program.into_iter().chain(before).chain(std::iter::once(shell))
            .chain(after).collect();
        prop_assert!(policy::judge(&words, &resolve, &no_trust()).is_err(), "accepted {:?}", words);
    }

    /// Issue 12: a known agent is trusted with any flags of its own, and the prompt lands
    /// after `--` or glued into an option, so no prompt is ever read as an option.
    #[test]
    fn a_known_agent_with_random_flags_gets_the_prompt_as_data(words in agent_command()) {
        let judgement = match policy::judge(&words, &resolve, &no_trust()) {
            Ok(j) => j,
            // A trailing option that takes a value is refused with a reason; nothing else is.
            Err(r) => {
                prop_assert!(r.reason.contains("takes a value"), "{:?}: {}", words, r);
                return Ok(());
            }
        };
        prop_assert!(matches!(judgement.kind, policy::Kind::Agent(..)), "{:?}", judgement);
        let template = &judgement.template;
        let at = template.iter().position(|w| w.contains("{prompt}")).expect("a prompt place");
        let after_dash_dash = template[judgement.program_at + 1..at].iter().any(|w| w == "--");
        let glued = template[at].starts_with("--") && template[at].contains("={prompt}");
        prop_assert!(after_dash_dash || glued, "{:?} -> {:?}", words, template);
        for prompt in ["--help", "-p", "--dangerously-skip-permissions", "--settings={}"] {
            prop_assert_eq!(policy::prompt_problem(&judgement, prompt), None);
        }
    }
}
