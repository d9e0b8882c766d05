//! One try of a launch: the agent run with only the run lease held, watched (a signal to the
//! runner, or a person's cancel, stops it), and judged.

use std::cell::Cell;
use std::fs;
use std::path::Path;
use std::time::Instant;

use crate::core::verdict::{self, Ending, StopWhy};
use crate::core::{Event, Launch, Plan, TryOutcome, TryState};
use crate::exec::attempt::{self, Attempt};
use crate::exec::command::AgentCommand;
use crate::exec::{capture, outputs, signals};
use crate::store::events::{self, By};
use crate::store::lease::Lease;
use crate::store::{Layout, Store};

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
    agent: &AgentCommand,
    launch: &Launch,
    lease: &mut Lease,
    say: &mut dyn FnMut(String),
) -> Tried {
    let (step, attempt) = (launch.step.as_str(), launch.attempt);
    let logs = match store.logs_dir() {
        Ok(logs) => logs,
        Err(e) => {
            return Tried {
                outcome: unrecorded(&format!("{e:#}")),
                signalled: false,
                logged: 0,
            }
        }
    };
    let log_name = Layout::attempt_log_name(step, attempt);
    let prompt_name = Layout::prompt_name(step, attempt);
    let lease_fd = lease.fd();
    let prompt_file = store.layout().prompt_file(step, attempt);
    let superseded = Superseded::new(store, step, attempt);
    let report = attempt::run(
        &Attempt {
            agent,
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
        },
        |pgid| {
            // The lease note is for people and `seqctl cancel`: failing to write it must
            // neither cost a try that never ran nor lose the result of one that did.
            drop(lease.set_step(Some((step, attempt)), Some(pgid)));
            let spawned = Event::StepStarted {
                step: launch.step.clone(),
                attempt,
                agent_pid: pgid,
            };
            say(spawned.to_string());
            events::emit(store, By::Runner, [&spawned]);
            // While the agent runs: the next save's temp file, off the path between tries.
            store.prepare_save();
        },
        &|| {
            signals::received()
                .map(StopWhy::Signal)
                .or_else(|| superseded.check().then_some(StopWhy::Superseded))
        },
    );
    drop(lease.set_step(None, None));
    let facts = outputs::facts(
        &launch.required_outputs,
        store.workspace(),
        &[store.path(), store.sidecar()],
    );
    let verdict = verdict::verdict(&report.ending, &report.stdout, &report.stderr, &facts);
    let (exit_code, signal, stopped) = match report.ending {
        Ending::Exited(code) => (Some(code), None, None),
        Ending::Signaled(signal) => (None, Some(signal), None),
        Ending::Stopped { how, .. } => (None, None, Some(how)),
        Ending::TimedOut(_) | Ending::NotStarted(_) => (None, None, None),
    };
    let signalled = matches!(
        report.ending,
        Ending::Stopped {
            why: StopWhy::Signal(_),
            ..
        }
    );
    let outcome = TryOutcome {
        verdict,
        stdout_tail: report.stdout,
        exit_code,
        signal,
        duration_ms: report.duration.as_millis() as u64,
        stopped,
    };
    if let Some(error) = &report.log_error {
        say(format!(
            "step {step}: try {attempt}: its log could not be written in full: {error}"
        ));
    }
    Tried {
        outcome,
        signalled,
        logged: report
            .printed
            .min(capture::HEAD_BYTES + capture::TAIL_BYTES),
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
        }
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
    }
}
