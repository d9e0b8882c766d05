//! The MCP server: rmcp's tool router over stdio, one tool per `seqctl` command (and the
//! heartbeat), each a thin call into the library.
//!
//! A tool's work is blocking (file locks, fsyncs, waiting for a runner to take its lease, up to
//! a few seconds for `plan_cancel`), so it runs on tokio's blocking threads and the server keeps
//! answering meanwhile. Whatever the work returns becomes a tool result: the command's text for
//! clients that show text, its JSON object as `structuredContent`; an error is a result with
//! `isError` and the message the CLI prints, and a panic is caught by the join, so no request
//! can bring the server down.

use std::sync::Arc;

use anyhow::Result;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{tool, tool_handler, tool_router, ServerHandler, ServiceExt as _};
use serde_json::json;

use super::args::{EventsArgs, LogsArgs, MaybeStepArgs, PlanArgs, RetryArgs, StateArgs, StepArgs};
use super::{beat, plan, read};
use crate::cli::config::Config;
use crate::cli::ctl::{self, Output};

const INSTRUCTIONS: &str = "\
Runs multi-step plans for an agent, one step at a time, across crashes and restarts: each step's \
instruction goes to the agent command (STEP_AGENT_CMD), failures are retried, and a step that \
keeps failing becomes a blocker for a person. Write a plan with plan_validate, then plan_start \
(it starts the first step in the background). A heartbeat (seq-check every few minutes, or the \
heartbeat tool) carries the plan on. plan_status and plan_explain tell where it stands, \
plan_result what it produced; step_retry (with a note), step_skip, plan_pause, plan_resume and \
plan_cancel steer it; step_logs and plan_events show what happened. Every tool takes `state`, \
the plan's state file (default state.json).";

/// The server: the settings read from the environment at start, and the tools.
#[derive(Clone)]
pub struct Server {
    /// `Err`: the environment is invalid; the tools that start steps report it.
    config: Arc<Result<Config, String>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Server {
    #[must_use]
    pub fn new(config: Result<Config, String>) -> Self {
        Self {
            config: Arc::new(config),
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Check a plan as plan_start would, listing every problem (not only the \
            first) and warnings, and whether plan_start could write it to `state`. Writes nothing.",
        annotations(read_only_hint = true)
    )]
    async fn plan_validate(&self, Parameters(args): Parameters<PlanArgs>) -> CallToolResult {
        call(move || plan::validate(&args.state, &args.plan)).await
    }

    #[tool(
        description = "Write a new plan to `state` and start its first step in the background \
            (one heartbeat). Refuses to replace a plan that is not DONE; a refused or invalid \
            plan changes no file."
    )]
    async fn plan_start(&self, Parameters(args): Parameters<PlanArgs>) -> CallToolResult {
        let config = Arc::clone(&self.config);
        call(move || plan::start(&args.state, &args.plan, &config)).await
    }

    #[tool(
        description = "Where the plan stands: status (running, waiting, blocked, \
            paused, success), every step's status and tries, what is in flight, next, or blocked.",
        annotations(read_only_hint = true)
    )]
    async fn plan_status(&self, Parameters(args): Parameters<StateArgs>) -> CallToolResult {
        call(move || ctl::status::run(&args.state)).await
    }

    #[tool(
        description = "Why the plan, or the step named by `step`, is or is not running right \
            now, in a sentence or two (what it waits for, when it is due).",
        annotations(read_only_hint = true)
    )]
    async fn plan_explain(&self, Parameters(args): Parameters<MaybeStepArgs>) -> CallToolResult {
        call(move || ctl::explain::run(&args.state, args.step.as_deref())).await
    }

    #[tool(
        description = "What the plan produced: its status, each finished step's result (as \
            later steps see it: its output, or its resultFile) and the failed step with its \
            error, if any.",
        annotations(read_only_hint = true)
    )]
    async fn plan_result(&self, Parameters(args): Parameters<StateArgs>) -> CallToolResult {
        call(move || plan::result(&args.state)).await
    }

    #[tool(
        description = "Give a failed or blocked step a fresh set of tries; the note (what to do \
            differently) is added to its next prompt. Only the current step or an earlier one. \
            It runs at the next heartbeat."
    )]
    async fn step_retry(&self, Parameters(args): Parameters<RetryArgs>) -> CallToolResult {
        call(move || ctl::retry::run(&args.state, &args.step, args.note.as_deref())).await
    }

    #[tool(
        description = "Mark a step SKIPPED: the plan passes over it (and its blocker goes). A \
            step in flight must be cancelled first.",
        annotations(idempotent_hint = true)
    )]
    async fn step_skip(&self, Parameters(args): Parameters<StepArgs>) -> CallToolResult {
        call(move || ctl::skip::run(&args.state, &args.step)).await
    }

    #[tool(
        description = "Pause the plan: nothing new starts until plan_resume (a try in flight \
            runs to its end; plan_cancel stops it).",
        annotations(idempotent_hint = true)
    )]
    async fn plan_pause(&self, Parameters(args): Parameters<StateArgs>) -> CallToolResult {
        call(move || ctl::pause::run(&args.state, true)).await
    }

    #[tool(
        description = "Let a paused plan run again; the next heartbeat starts what is due.",
        annotations(idempotent_hint = true)
    )]
    async fn plan_resume(&self, Parameters(args): Parameters<StateArgs>) -> CallToolResult {
        call(move || ctl::pause::run(&args.state, false)).await
    }

    #[tool(
        description = "Stop the tries in flight (SIGTERM to each agent, SIGKILL after 3 s), \
            record them as cancelled, and pause the plan. With `step`, stop only that step's \
            (or item's) try and hold it as a blocker while the plan's other branches go on.",
        annotations(destructive_hint = true)
    )]
    async fn plan_cancel(&self, Parameters(args): Parameters<MaybeStepArgs>) -> CallToolResult {
        call(move || ctl::cancel::run(&args.state, args.step.as_deref())).await
    }

    #[tool(
        description = "The captured output of a step's try (the latest unless `attempt`): the \
            last `max_bytes` of it (default 16 KiB).",
        annotations(read_only_hint = true)
    )]
    async fn step_logs(&self, Parameters(args): Parameters<LogsArgs>) -> CallToolResult {
        call(move || read::step_logs(&args)).await
    }

    #[tool(
        description = "The plan's event log (steps started and finished, retries, blockers, \
            ...) from position `since` on; pass the result's `next` to get only newer events.",
        annotations(read_only_hint = true)
    )]
    async fn plan_events(&self, Parameters(args): Parameters<EventsArgs>) -> CallToolResult {
        call(move || read::plan_events(&args)).await
    }

    #[tool(
        description = "One heartbeat, as seq-check runs it: records it, settles the plan \
            (interrupted tries, blockers, the finish) and starts the runner in the background if \
            a step is due. Returns at once, with seq-check's lines."
    )]
    async fn heartbeat(&self, Parameters(args): Parameters<StateArgs>) -> CallToolResult {
        let config = Arc::clone(&self.config);
        call(move || beat::run(&args.state, &config)).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("seq-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// Runs `work` on a blocking thread and makes its outcome a tool result.
async fn call(work: impl FnOnce() -> Result<Output> + Send + 'static) -> CallToolResult {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(output)) => success(output),
        Ok(Err(error)) => failure(format!("{error:#}")),
        Err(join) => failure(format!("internal error: {join}")),
    }
}

fn success(output: Output) -> CallToolResult {
    let mut result = CallToolResult::structured(output.json);
    result.content = vec![ContentBlock::text(output.text)];
    result
}

/// An error as `seqctl --json` prints it, and its message as the text.
fn failure(message: String) -> CallToolResult {
    let mut result = CallToolResult::structured_error(json!({ "error": message }));
    result.content = vec![ContentBlock::text(message)];
    result
}

/// Serves the tools on stdin and stdout until the client closes them.
pub fn serve(config: Result<Config, String>) -> Result<()> {
    // One thread for the protocol is plenty; the tools' work goes to blocking threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let running = Server::new(config).serve(rmcp::transport::stdio()).await?;
        running.waiting().await?;
        Ok(())
    })
}
