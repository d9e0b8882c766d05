//! Errors: tool results with `isError` and the message `seqctl` prints, and a bad request
//! changes no file.

use serde_json::{json, Value};

use crate::client::Client;
use crate::common::{plan, Workspace};
use crate::lifecycle;

/// The message `seqctl` prints for `args` (its stderr without the `seqctl: ` prefix).
fn seqctl_error(ws: &Workspace, args: &[&str]) -> String {
    let run = ws.seqctl(args);
    run.expect(2);
    run.stderr()
        .trim_end()
        .strip_prefix("seqctl: ")
        .unwrap_or_else(|| panic!("{}", run.stderr()))
        .to_owned()
}

#[test]
fn tools_are_listed_with_schemas_for_their_arguments() {
    let ws = Workspace::new();
    let mut mcp = Client::start(&ws);
    let tools = mcp.tools();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "heartbeat",
            "plan_cancel",
            "plan_events",
            "plan_explain",
            "plan_pause",
            "plan_result",
            "plan_resume",
            "plan_start",
            "plan_status",
            "plan_validate",
            "step_logs",
            "step_retry",
            "step_skip",
        ]
    );
    for tool in &tools {
        let name = tool["name"].as_str().unwrap();
        assert!(
            tool["description"].as_str().is_some_and(|d| d.len() > 20),
            "{tool:#}"
        );
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object", "{name}");
        assert_eq!(schema["additionalProperties"], false, "{name}");
        assert_eq!(schema["properties"]["state"]["type"], "string", "{name}");
        assert_eq!(
            schema["properties"]["state"]["default"], "state.json",
            "{name}"
        );
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        let want: &[&str] = match name {
            "plan_validate" | "plan_start" => &["plan"],
            "step_retry" | "step_skip" | "step_logs" => &["step"],
            _ => &[],
        };
        assert_eq!(required, want, "{name}");
    }
    let start = tools.iter().find(|t| t["name"] == "plan_start").unwrap();
    let plan = &start["inputSchema"]["properties"]["plan"];
    assert_eq!(plan["required"], json!(["plan", "stepQueue"]), "{plan:#}");
    assert_eq!(
        plan["properties"]["plan"]["properties"]["steps"]["additionalProperties"]["required"],
        json!(["instruction"])
    );
    let read_only: Vec<&str> = tools
        .iter()
        .filter(|t| t["annotations"]["readOnlyHint"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        read_only.len(),
        6,
        "validate, status, explain, result, logs, events: {read_only:?}"
    );
}

#[test]
fn errors_are_tool_results_with_the_cli_message_and_change_nothing() {
    let mut ws = Workspace::with_state(&plan(2, ""));
    ws.agent("echo ok");
    let before = ws.bytes();
    let mut mcp = Client::start(&ws);

    let cases: [(&str, Value, &[&str]); 8] = [
        (
            "plan_status",
            json!({ "state": "missing.json" }),
            &["status", "--state", "missing.json"],
        ),
        (
            "plan_explain",
            json!({ "state": "missing.json" }),
            &["explain", "--state", "missing.json"],
        ),
        (
            "step_retry",
            json!({ "step": "zz", "note": "x" }),
            &["retry", "zz", "--note", "x"],
        ),
        ("step_skip", json!({ "step": "zz" }), &["skip", "zz"]),
        ("step_logs", json!({ "step": "s1" }), &["logs", "s1"]),
        ("plan_cancel", json!({}), &["cancel"]),
        (
            "plan_cancel",
            json!({ "step": "zz" }),
            &["cancel", "--step", "zz"],
        ),
        ("plan_explain", json!({ "step": "zz" }), &["explain", "zz"]),
    ];
    for (tool, args, cli) in cases {
        let message = mcp.err(tool, &args);
        assert_eq!(message, seqctl_error(&ws, cli), "{tool}");
    }
    // init's refusal to replace a plan that is not DONE, word for word.
    ws.write("plan.json", &lifecycle::plan().to_string());
    let message = mcp.err("plan_start", &json!({ "plan": lifecycle::plan() }));
    assert_eq!(message, seqctl_error(&ws, &["init", "--plan", "plan.json"]));
    assert!(
        message.contains("holds a plan that is not DONE"),
        "{message}"
    );

    // Requests that do not fit the tool.
    let message = mcp.err("plan_status", &json!({ "stat": "x.json" }));
    assert!(message.contains("unknown field `stat`"), "{message}");
    let message = mcp.err("step_skip", &json!({}));
    assert!(message.contains("missing field `step`"), "{message}");
    let message = mcp.err("plan_start", &json!({ "state": "new.json", "plan": "{}" }));
    assert_eq!(
        message,
        "invalid plan: expected a JSON object with plan and stepQueue, got a string"
    );
    let message = mcp.err("plan_start", &json!({ "state": "new.json", "plan": {} }));
    assert!(message.starts_with("invalid plan: "), "{message}");
    let unknown = mcp.raw("tools/call", &json!({ "name": "nope", "arguments": {} }));
    assert_eq!(unknown["error"]["code"], -32602, "{unknown:#}");

    // The server is still there, and no file changed.
    assert_eq!(mcp.ok("plan_status", &json!({}))["status"], "waiting");
    ws.assert_untouched(&before, "after the bad requests");
    assert!(!ws.path().join("new.json").exists());
    assert_eq!(mcp.close(), 0);
}

#[test]
fn a_plan_is_not_written_when_its_first_step_could_not_start() {
    // No STEP_AGENT_CMD in the server's environment: refused before the write.
    let ws = Workspace::new();
    let mut mcp = Client::start(&ws);
    let message = mcp.err("plan_start", &json!({ "plan": lifecycle::plan() }));
    assert!(message.contains("STEP_AGENT_CMD"), "{message}");
    assert!(!ws.state_path().exists(), "the plan was written: {message}");
    // A shell as the agent: refused as seq-check refuses it, and nothing written either.
    let mut ws = Workspace::new();
    ws.set("STEP_AGENT_CMD", "sh -c 'echo hi'");
    let mut mcp = Client::start(&ws);
    let message = mcp.err("plan_start", &json!({ "plan": lifecycle::plan() }));
    assert!(message.contains("shell"), "{message}");
    assert!(!ws.state_path().exists(), "the plan was written: {message}");
    assert!(!ws.sidecar().exists(), "the sidecar was made");
}
