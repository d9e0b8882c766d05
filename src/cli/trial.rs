//! One try of a launch: the agent run with only its try's lease held, watched (a signal to the
//! runner, or a person's cancel, stops it), and judged: its exit and required outputs, then
//! its result kept and checked by the step's `verify` (built-in checks, then a verify agent).
//! The compress agent's summaries of earlier results are made here too, before a try.

use std::cell::Cell;
use std::fs;
use std::path::Path;
use std::time::Instant;

use super::config::Config;
use super::watch::Watch;
use crate::core::prompt::{self, Known};
use crate::core::verdict::{self, Ending, Missing, StopWhy};
use crate::core::{verify, AgentRef, Event, Launch, Plan, StepId, TryOutcome, TryState};
use crate::exec::attempt::{self, Attempt, Report};
use crate::exec::command::AgentCommand;
use crate::exec::{capture, outputs, signals};
use crate::format::schema::{StepStatus, Verify};
use crate::store::events::{self, By};
use crate::store::lease::TryLease;
use crate::store::results::{self, RESULT_MAX_BYTES};
use crate::store::safe::Dir;
use crate::store::{Layout, Store};

/// The agents a runner can start: the default one, checked when the runner began, and the
/// operator's named ones, looked up (and checked by the same policy) when a try needs one, so
/// an edit to the agents file counts from the next try.
pub struct Crew<'a> {
    pub config: &'a Config,
    pub default: &'a AgentCommand,
    pub workspace: &'a Path,
    /// Who watches the tries (`seq-check --wait`), if anyone.
    pub watch: &'a Watch,
}

impl Crew<'_> {
    /// The command of `agent`, or why it cannot run.
    pub fn get(&self, agent: &AgentRef) -> Result<AgentCommand, String> {
        match agent {
            AgentRef::Default => Ok(self.default.clone()),
            named @ AgentRef::Named(_) => self
                .config
                .agent_for(named, self.workspace)
                .map_err(|e| format!("{e:#}")),
        }
    }
}

/// A path inside the workspace as the state file shows it: relative to the workspace.
pub fn shown(store: &Store, path: &Path) -> String {
    path.strip_prefix(store.workspace())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// How a try went: its outcome, whether a signal to this runner stopped it, and how many bytes
/// its log took.
pub struct Tried {
    pub outcome: TryOutcome,
    pub signalled: bool,
    pub logged: u64,
}

/// Runs one try with only the lease held, and judges it.
pub fn try_once(
    store: &Store,
    crew: &Crew,
    launch: &Launch,
    lease: &TryLease,
    spawned: &mut dyn FnMut(u32),
    say: &mut dyn FnMut(String),
) -> Tried {
    let (step, attempt) = (launch.step.as_str(), launch.attempt);
    let (agent, logs, results) = match ready(store, crew, &launch.agent) {
        Ok(ready) => ready,
        Err(why) => {
            return Tried {
                outcome: unrecorded(&why),
                signalled: false,
                logged: 0,
            }
        }
    };
    let (log_name, prompt_name) = (
        Layout::attempt_log_name(step, attempt),
        Layout::prompt_name(step, attempt),
    );
    let spool_name = Layout::spool_name(step, attempt);
    let (lease_fd, prompt_file) = (lease.fd(), store.layout().prompt_file(step, attempt));
    let superseded = Superseded::new(store, step, attempt);
    let must_stop = || superseded.must_stop(crew.watch);
    let report = attempt::run(
        &Attempt {
            agent: &agent,
            prompt: &launch.prompt,
            step,
            attempt,
            workspace: store.workspace(),
            state_file: store.path(),
            timeout: launch.timeout,
            logs: &logs,
            log_name: &log_name,
            prompt_name: &prompt_name,
            prompt_path: &prompt_file,
            lease_fd: Some(lease_fd),
            log_cap: (capture::HEAD_BYTES, capture::TAIL_BYTES),
            spool: launch.result_file.is_none().then_some((
                &results,
                spool_name.as_str(),
                RESULT_MAX_BYTES,
            )),
            echo: crew.watch.echo.as_ref(),
        },
        |pgid| {
            let started = Event::StepStarted {
                step: launch.step.clone(),
                attempt,
                agent_pid: pgid,
                agent: named(&launch.agent),
            };
            say(started.to_string());
            events::emit(store, By::Runner, [&started]);
            spawned(pgid);
        },
        &must_stop,
    );
    let judge = Judge {
        store,
        crew,
        launch,
        results: &results,
        logs: &logs,
        lease_fd,
        stop: &must_stop,
    };
    let (verdict, again, signalled) = judge.all(&report, say);
    if verdict.is_err() {
        results::discard(&results, step, attempt);
    }
    if let Some(error) = &report.log_error {
        say(format!(
            "step {step}: try {attempt}: its log could not be written in full: {error}"
        ));
    }
    Tried {
        logged: report
            .printed
            .min(capture::HEAD_BYTES + capture::TAIL_BYTES),
        outcome: TryOutcome {
            again,
            ..outcome_of(report, verdict)
        },
        signalled,
    }
}

/// What the core is told of a try.
fn outcome_of(report: Report, verdict: Result<Vec<String>, String>) -> TryOutcome {
    let (exit_code, signal, stopped) = match report.ending {
        Ending::Exited(code) => (Some(code), None, None),
        Ending::Signaled(signal) => (None, Some(signal), None),
        Ending::Stopped { how, .. } => (None, None, Some(how)),
        Ending::TimedOut(_) | Ending::NotStarted(_) => (None, None, None),
    };
    TryOutcome {
        verdict,
        stdout_tail: report.stdout,
        exit_code,
        signal,
        duration_ms: report.duration.as_millis() as u64,
        stopped,
        again: None,
    }
}

/// The agent's command and the folders a try writes to, or why the try cannot start.
fn ready(store: &Store, crew: &Crew, agent: &AgentRef) -> Result<(AgentCommand, Dir, Dir), String> {
    let agent = crew.get(agent)?;
    let logs = store.logs_dir().map_err(|e| format!("{e:#}"))?;
    let results = store.results_dir().map_err(|e| format!("{e:#}"))?;
    Ok((agent, logs, results))
}

/// The name of a named agent, as the state and the events record it.
fn named(agent: &AgentRef) -> Option<String> {
    match agent {
        AgentRef::Named(name) => Some(name.clone()),
        AgentRef::Default => None,
    }
}

/// What judging a successful try's result needs.
struct Judge<'a> {
    store: &'a Store,
    crew: &'a Crew<'a>,
    launch: &'a Launch,
    results: &'a Dir,
    logs: &'a Dir,
    lease_fd: std::os::fd::RawFd,
    stop: &'a dyn Fn() -> Option<StopWhy>,
}

/// A judged result: `Some(why)` when a `repeat` step's result does not pass `until` yet.
type NotYet = Option<String>;

impl Judge<'_> {
    /// The whole judgement of an ended try: its exit and required outputs, then its result
    /// (kept, verified, and for a `repeat` step checked against `until`). Returns the verdict,
    /// why a `repeat` step runs again, and whether a signal stopped it.
    fn all(
        &self,
        report: &Report,
        say: &mut dyn FnMut(String),
    ) -> (Result<Vec<String>, String>, NotYet, bool) {
        let store = self.store;
        let reserved = [store.path(), store.sidecar()];
        let facts = outputs::facts(&self.launch.required_outputs, store.workspace(), &reserved);
        let verdict = verdict::verdict(&report.ending, &report.stdout, &report.stderr, &facts);
        let signalled = matches!(
            report.ending,
            Ending::Stopped {
                why: StopWhy::Signal(_),
                ..
            }
        );
        if verdict.is_err() {
            return (verdict, None, signalled);
        }
        match self.result(report, say) {
            Ok(not_yet) => (verdict, not_yet, signalled),
            // A signal that stopped the verify agent stops the try, as it would the agent.
            Err(why) => (Err(why), None, signals::received().is_some()),
        }
    }

    /// Makes the try's result, checks it with the step's `verify`, and keeps it; or says why
    /// the try failed after all.
    fn result(&self, report: &Report, say: &mut dyn FnMut(String)) -> Result<NotYet, String> {
        let launch = self.launch;
        let (step, attempt) = (launch.step.as_str(), launch.attempt);
        let workspace = self.store.workspace();
        let reserved = [self.store.path(), self.store.sidecar()];
        match (&launch.result_file, report.spooled.as_ref()) {
            (Some(path), _) => {
                let real = outputs::resolve(path, workspace, &reserved).map_err(|m| match m {
                    Missing::Absent => format!("resultFile {path} was not written"),
                    other => format!("resultFile {path}: {}", other.why()),
                })?;
                results::copy_result_file(self.results, step, attempt, &real)
                    .map_err(|e| format!("resultFile {path}: cannot read it: {e}"))?;
            }
            (None, Some((_, Some(error)))) => {
                say(format!(
                    "step {step}: try {attempt}: its result could not be written in full: {error}"
                ));
            }
            (None, Some((total, None))) if *total > RESULT_MAX_BYTES => {
                if let Err(e) = results::note_cut(self.results, step, attempt, *total) {
                    say(format!(
                        "step {step}: try {attempt}: its result is cut without a note: {e}"
                    ));
                }
            }
            (None, _) => {}
        }
        if let Some(check) = &launch.verify {
            self.check(check, say)?;
        }
        // A `repeat` step's `until`: a result that fails it is kept, and the step runs again.
        let not_yet = match &launch.until {
            Some(until) => self.check(until, say).err(),
            None => None,
        };
        // The work is done and judged: a result that cannot be stored (a full disk, a deleted
        // sidecar) is said, like a log that cannot be written, but does not cost the step a
        // second run. Later steps are told it left no result.
        if let Err(e) = results::keep(self.results, step, attempt) {
            say(format!(
                "step {step}: try {attempt}: its result could not be kept: {e}"
            ));
        }
        Ok(not_yet)
    }

    /// Runs a check (`verify`, or a `repeat`'s `until`) on the try's result.
    fn check(&self, check: &Verify, say: &mut dyn FnMut(String)) -> Result<(), String> {
        let launch = self.launch;
        let (step, attempt) = (launch.step.as_str(), launch.attempt);
        let reserved = [self.store.path(), self.store.sidecar()];
        let text = if verify::needs_text(check) {
            results::read(self.results, &Layout::spool_name(step, attempt))
                .map_err(|e| format!("cannot read the result back: {e}"))?
                .unwrap_or_default()
        } else {
            String::new()
        };
        let files = outputs::non_empty_facts(
            check.files.as_deref().unwrap_or_default(),
            self.store.workspace(),
            &reserved,
        );
        verify::builtin(check, &text, &files)?;
        if let Some(name) = &check.agent {
            let prompt = verify::agent_prompt(&launch.task, check, &text);
            let (log, prompt_name) = Layout::helper_names(step, Some(attempt), "verify");
            say(format!(
                "step {step}: try {attempt}: asking agent {name} to verify it"
            ));
            let report = self.ask(&AgentRef::named(name), &prompt, &log, &prompt_name, None)?;
            if let Err(why) = verdict::verdict(&report.ending, &report.stdout, &report.stderr, &[])
            {
                return Err(format!(
                    "verify failed: agent `{name}` did not answer: {why}"
                ));
            }
            verify::agent_verdict(name, &report.stdout)?;
        }
        Ok(())
    }

    /// Runs a helper agent (verify, compress) for this try, as the try's own agent runs.
    fn ask(
        &self,
        agent: &AgentRef,
        prompt: &str,
        log_name: &str,
        prompt_name: &str,
        spool: Option<(&str, u64)>,
    ) -> Result<Report, String> {
        let command = self.crew.get(agent)?;
        let launch = self.launch;
        Ok(attempt::run(
            &Attempt {
                agent: &command,
                prompt,
                step: launch.step.as_str(),
                attempt: launch.attempt,
                workspace: self.store.workspace(),
                state_file: self.store.path(),
                timeout: launch.timeout,
                logs: self.logs,
                log_name,
                prompt_name,
                prompt_path: &self.store.layout().logs().join(prompt_name),
                lease_fd: Some(self.lease_fd),
                log_cap: (capture::HEAD_BYTES, capture::TAIL_BYTES),
                spool: spool.map(|(name, limit)| (self.results, name, limit)),
                echo: None,
            },
            |_| {},
            self.stop,
        ))
    }
}

/// Asks the plan's compress agent to summarise the earlier results that do not fit the
/// prompt of `launch`'s step whole, keeping each summary (so each result is summarised once),
/// then builds the prompt again. A summary that cannot be made leaves the result to be cut.
pub fn compress(
    store: &Store,
    crew: &Crew,
    plan: &Plan,
    launch: &mut Launch,
    wanted: &[StepId],
    lease: &TryLease,
    say: &mut dyn FnMut(String),
) {
    let Some(agent) = plan.result_settings().compress_agent.clone() else {
        return;
    };
    let (Ok(logs), Ok(results)) = (store.logs_dir(), store.results_dir()) else {
        return;
    };
    let Some(step) = plan.step(launch.step.as_str()) else {
        return;
    };
    let room = plan.result_settings().max_chars / prompt::needs(plan, step).len().max(1);
    let never = || signals::received().map(StopWhy::Signal);
    let judge = Judge {
        store,
        crew,
        launch,
        results: &results,
        logs: &logs,
        lease_fd: lease.fd(),
        stop: &never,
    };
    for id in wanted {
        let Ok(Some(text)) = results::result(&results, id.as_str()) else {
            continue;
        };
        let number = plan.position(id.as_str()).map_or(0, |p| p + 1);
        let ask = prompt::summary_request(number, &text, room.max(200));
        let (log, prompt_name) = Layout::helper_names(id.as_str(), None, "compress");
        let spool = format!("{}.new", Layout::summary_name(id.as_str()));
        say(format!(
            "step {}: asking agent {agent} to summarise step {id}'s result",
            launch.step
        ));
        let summary = judge
            .ask(
                &AgentRef::named(&agent),
                &ask,
                &log,
                &prompt_name,
                Some((&spool, RESULT_MAX_BYTES)),
            )
            .ok()
            .filter(|report| report.ending == Ending::Exited(0))
            .and_then(|_| results::read(&results, &spool).ok().flatten())
            .filter(|summary| !summary.trim().is_empty());
        let _ = results.remove(&spool);
        match summary {
            Some(summary) => {
                if let Err(e) = results::keep_summary(&results, id.as_str(), summary.trim()) {
                    say(format!("step {id}: the summary could not be kept: {e}"));
                }
            }
            None => say(format!(
                "step {id}: agent {agent} made no summary; the result is cut to fit instead"
            )),
        }
    }
    let built = prompt::with_results(plan, step, &mut loader(store, plan, &launch.step));
    launch.prompt = built.prompt;
    launch.task = built.task;
}

/// Reads earlier results for a prompt: only a DONE step's result counts (a file left by a
/// step since reset is not its result), but for `own` (a `repeat` step's previous run) its
/// result as kept; a `forEach` step's result is its items' results.
pub fn loader<'a>(
    store: &'a Store,
    plan: &'a Plan,
    own: &'a StepId,
) -> impl FnMut(&StepId) -> Known + 'a {
    let dir = store.results_if_any();
    move |id| {
        let Some(dir) = &dir else {
            return Known::default();
        };
        let read = |id: &StepId| results::result(dir, id.as_str()).ok().flatten();
        match plan.step(id.as_str()) {
            Some(step) if step.is_expanded() && step.run.status() == StepStatus::Done => Known {
                text: crate::core::items::joined(plan.items_of(id.as_str()), &mut |item| {
                    read(item)
                }),
                summary: results::summary(dir, id.as_str()).ok().flatten(),
            },
            Some(step) if step.run.status() == StepStatus::Done || id == own => Known {
                text: read(id).unwrap_or_default(),
                summary: results::summary(dir, id.as_str()).ok().flatten(),
            },
            _ => Known::default(),
        }
    }
}

/// Whether a person changed the plan under a running try (cancelled or skipped it), so its
/// runner must stop the agent: the runner stops only what it started itself, never a process
/// named in a file the agent can write. Looked at once per [`attempt::STOP_CHECK`], and the
/// state parsed only when the file changed since the runner's own save.
struct Superseded<'a> {
    store: &'a Store,
    step: &'a str,
    attempt: u32,
    seen: Cell<Option<FileId>>,
    next: Cell<Instant>,
    started: Instant,
}

/// What tells one version of a file from the next without reading it.
type FileId = (u64, u64, u64, i64, i64);

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

impl<'a> Superseded<'a> {
    fn new(store: &'a Store, step: &'a str, attempt: u32) -> Self {
        Self {
            store,
            step,
            attempt,
            seen: Cell::new(file_id(store.path())),
            next: Cell::new(Instant::now() + attempt::STOP_CHECK),
            started: Instant::now(),
        }
    }

    /// Whether the try must stop now, and why: a signal to the runner, or a person's change
    /// of the plan. Asked at least once a second, so it also tells `watch` how long the try
    /// has run.
    fn must_stop(&self, watch: &Watch) -> Option<StopWhy> {
        watch.tick(self.step, self.attempt, self.started.elapsed());
        signals::received()
            .map(StopWhy::Signal)
            .or_else(|| self.check().then_some(StopWhy::Superseded))
    }

    fn check(&self) -> bool {
        let now = Instant::now();
        if now < self.next.get() {
            return false;
        }
        self.next.set(now + attempt::STOP_CHECK);
        let id = file_id(self.store.path());
        if id == self.seen.get() {
            return false;
        }
        self.seen.set(id);
        // A broken file (a hand edit in progress) is no reason to stop an agent.
        self.store.read().is_ok_and(|state| {
            !Plan::of(&state).step(self.step).is_some_and(|s| {
                matches!(s.run.state(), TryState::Running { attempt, .. } if attempt == self.attempt)
            })
        })
    }
}

/// A try that could not start: `taken_back` when it must not count (it never ran, for a
/// reason that is no failure of the step's).
#[must_use]
pub fn not_started(why: &str, taken_back: bool) -> Tried {
    Tried {
        outcome: unrecorded(why),
        signalled: taken_back,
        logged: 0,
    }
}

/// The outcome of a try whose agent could not be started.
fn unrecorded(why: &str) -> TryOutcome {
    let ending = Ending::NotStarted(why.to_owned());
    TryOutcome {
        verdict: verdict::verdict(&ending, "", "", &[]),
        stdout_tail: String::new(),
        exit_code: None,
        signal: None,
        duration_ms: 0,
        stopped: None,
        again: None,
    }
}
