//! Plan, execute, monitor (issue 14): results flowing between steps, verify, named agents with
//! fallbacks, compression, and `seqctl result`, end to end with fake agents.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{plan_of, Workspace};

/// A fake agent named `name`: keeps each prompt it gets as `prompt.<name>.<step>.<try>` and
/// answers with `body` (a shell snippet).
fn agent(ws: &Workspace, name: &str, body: &str) -> PathBuf {
    ws.script(
        &format!("{name}.sh"),
        &format!(
            "for last; do :; done\nprintf '%s' \"$last\" > \"prompt.{name}.$STEP_ID.$STEP_ATTEMPT\"\n{body}"
        ),
    )
}

/// An agents file outside the workspace defining `agents` (name, script).
fn agents_file(dir: &Path, agents: &[(&str, &Path)]) -> PathBuf {
    let mut text = String::new();
    for (name, script) in agents {
        let _ = writeln!(text, "[agents.{name}]\ncommand = \"{}\"", script.display());
    }
    let path = dir.join("agents.toml");
    fs::write(&path, text).unwrap();
    path
}

fn prompt(ws: &Workspace, name: &str, step: &str, attempt: u32) -> String {
    let file = format!("prompt.{name}.{step}.{attempt}");
    assert!(
        ws.path().join(&file).exists(),
        "{file} was never written: {}",
        ws.listing()
    );
    ws.read(&file)
}

fn events(ws: &Workspace) -> Vec<Value> {
    ws.lines("state.json.seq/events.jsonl")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_result_reaches_the_next_step_a_verify_agent_sends_it_back_and_a_fallback_agent_retries() {
    let mut ws = Workspace::with_state(
        &plan_of(
            &[
                ("find", json!({"title": "Find", "instruction": "Find X"})),
                (
                    "sum",
                    json!({
                        "title": "Summarise",
                        "instruction": "Summarise: {{steps.find.result}}",
                        "agent": "writer",
                        "fallbackAgents": ["editor"],
                        "verify": {"agent": "reviewer", "instruction": "the summary cites 42"}
                    }),
                ),
                (
                    "write",
                    json!({"title": "Write", "instruction": "Write it up", "context": "all"}),
                ),
            ],
            &json!({"stepDelayMinutes": 0}),
        )
        .to_string(),
    );
    let default = agent(
        &ws,
        "default",
        r#"case "$STEP_ID" in find) echo "X is 42";; *) echo "paper written";; esac"#,
    );
    let writer = agent(&ws, "writer", "echo 'summary v1'");
    let editor = agent(&ws, "editor", "echo 'summary v2 cites 42'");
    // The monitor: fails the first summary, passes the second.
    let reviewer = agent(
        &ws,
        "reviewer",
        r#"if [ "$STEP_ATTEMPT" = 1 ]; then printf 'It says nothing of 42.\nFAIL: the summary does not cite 42\n'; else echo 'Looks right.'; echo '**PASS**'; fi"#,
    );
    let outside = tempfile::tempdir().unwrap();
    let agents = agents_file(
        outside.path(),
        &[
            ("writer", &writer),
            ("editor", &editor),
            ("reviewer", &reviewer),
        ],
    );
    ws.set("STEP_AGENT_CMD", &default.display().to_string())
        .set("STEP_AGENTS_FILE", &agents.display().to_string());
    ws.runner(&[]).expect(0);

    assert_eq!(prompt(&ws, "default", "find", 1), "Find X");
    assert_eq!(prompt(&ws, "writer", "sum", 1), "Summarise: X is 42");
    let review = prompt(&ws, "reviewer", "sum", 1);
    assert!(
        review.contains("The task was:\nSummarise: X is 42"),
        "{review}"
    );
    assert!(
        review.contains("What to check: the summary cites 42"),
        "{review}"
    );
    assert!(review.contains("Its result:\nsummary v1"), "{review}");
    assert_eq!(
        prompt(&ws, "editor", "sum", 2),
        "Step sum failed (tries: 1). Previous run ended with: verify failed: agent `reviewer`: \
         the summary does not cite 42. Please troubleshoot and retry: Summarise: X is 42"
    );
    assert!(prompt(&ws, "reviewer", "sum", 2).contains("Its result:\nsummary v2 cites 42"));
    assert_eq!(
        prompt(&ws, "default", "write", 1),
        "Write it up\n[Step 1 Result]: X is 42\n[Step 2 Result]: summary v2 cites 42"
    );

    agents_are_recorded_and_shown(&ws);
    let result = ws.seqctl(&["result", "--json"]).expect(0).json();
    assert_eq!(
        result,
        json!({
            "status": "success",
            "completed_results": [
                {"step": "find", "title": "Find", "result": "X is 42\n"},
                {"step": "sum", "title": "Summarise", "result": "summary v2 cites 42\n"},
                {"step": "write", "title": "Write", "result": "paper written\n"},
            ],
            "failed_step": null,
        })
    );
}

/// The agents used are recorded with each try, in the events, and shown by status and logs.
fn agents_are_recorded_and_shown(ws: &Workspace) {
    let state = ws.state();
    assert_eq!(state["stepRuns"]["sum"]["agent"], "editor", "{state}");
    assert_eq!(state["stepRuns"]["sum"]["tries"], 2);
    assert!(state["stepRuns"]["find"].get("agent").is_none(), "{state}");
    let started: Vec<(String, Value)> = events(ws)
        .into_iter()
        .filter(|e| e["event"] == "step_started")
        .map(|e| (e["step"].as_str().unwrap().to_owned(), e["agent"].clone()))
        .collect();
    assert_eq!(
        started,
        [
            ("find".to_owned(), Value::Null),
            ("sum".to_owned(), json!("writer")),
            ("sum".to_owned(), json!("editor")),
            ("write".to_owned(), Value::Null),
        ]
    );
    let failed = events(ws)
        .into_iter()
        .find(|e| e["event"] == "step_finished" && e["status"] == "FAILED")
        .unwrap();
    assert_eq!(
        failed["error"],
        "verify failed: agent `reviewer`: the summary does not cite 42"
    );
    let status = ws.seqctl(&["status"]).expect(0).stdout();
    assert!(status.contains("AGENT"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.contains("sum") && l.contains("editor")),
        "{status}"
    );
    let logs = ws.seqctl(&["logs", "sum"]).expect(0).stdout();
    assert!(
        logs.starts_with("[seqctl: step sum try 2 ran agent editor]\nsummary v2 cites 42"),
        "{logs}"
    );
    assert!(
        logs.contains("the verify agent's answer") && logs.contains("**PASS**"),
        "{logs}"
    );
}

#[test]
fn an_agent_that_exits_0_without_doing_the_work_is_caught_by_verify_and_retried() {
    let mut ws = Workspace::with_state(
        &plan_of(
            &[(
                "s1",
                json!({"instruction": "Fetch the prices as JSON", "verify": {"json": true, "contains": "price"}}),
            )],
            &json!({}),
        )
        .to_string(),
    );
    let script = agent(
        &ws,
        "default",
        r#"if [ "$STEP_ATTEMPT" = 1 ]; then echo "I could not finish: the API is down."; else echo '{"price": 3}'; fi"#,
    );
    ws.set("STEP_AGENT_CMD", &script.display().to_string());
    ws.runner(&[]).expect(0);
    let state = ws.state();
    assert_eq!(state["stepRuns"]["s1"]["status"], "DONE", "{state}");
    assert_eq!(state["stepRuns"]["s1"]["tries"], 2);
    let retry = prompt(&ws, "default", "s1", 2);
    assert!(
        retry.starts_with(
            "Step s1 failed (tries: 1). Previous run ended with: verify failed: the result does \
             not contain \"price\""
        ),
        "{retry}"
    );
    // Out of tries, the same failure is a blocker that says why.
    let mut ws = Workspace::with_state(
        &plan_of(
            &[(
                "s1",
                json!({"instruction": "x", "maxRetries": 1, "verify": {"matches": "^RESULT: ", "files": ["out.md"]}}),
            )],
            &json!({}),
        )
        .to_string(),
    );
    ws.write("out.md", "");
    ws.agent("echo 'RESULT: fine'");
    ws.runner(&[]).expect(1);
    let state = ws.state();
    assert_eq!(
        state["stepRuns"]["s1"]["error"], "verify failed: files: out.md is empty",
        "{state}"
    );
    assert!(
        ws.seqctl(&["result", "--json"]).expect(0).json()["failed_step"]["error"]
            .as_str()
            .unwrap()
            .contains("out.md is empty")
    );
}

#[test]
fn a_result_file_is_the_result_and_one_not_written_fails_the_try() {
    let mut ws = Workspace::with_state(
        &plan_of(
            &[
                (
                    "a",
                    json!({"instruction": "write it", "resultFile": "out/a.md", "maxRetries": 1}),
                ),
                ("b", json!({"instruction": "use {{steps.a.result}}"})),
            ],
            &json!({}),
        )
        .to_string(),
    );
    let script = agent(
        &ws,
        "default",
        r#"[ "$STEP_ID" = a ] && mkdir -p out && echo "the file's words" > out/a.md; echo "chatter"; true"#,
    );
    ws.set("STEP_AGENT_CMD", &script.display().to_string());
    ws.runner(&[]).expect(0);
    assert_eq!(prompt(&ws, "default", "b", 1), "use the file's words");
    // Changed later, the kept result stays what the step produced.
    ws.write("out/a.md", "rewritten");
    let result = ws.seqctl(&["result", "--json"]).expect(0).json();
    assert_eq!(
        result["completed_results"][0]["result"],
        "the file's words\n"
    );

    let mut ws = Workspace::with_state(
        &plan_of(
            &[(
                "a",
                json!({"instruction": "x", "resultFile": "a.md", "maxRetries": 1}),
            )],
            &json!({}),
        )
        .to_string(),
    );
    ws.agent("echo done");
    ws.runner(&[]).expect(1);
    assert_eq!(
        ws.state()["stepRuns"]["a"]["error"],
        "resultFile a.md was not written"
    );
}

#[test]
fn results_over_the_bound_are_cut_or_summarised_once_by_the_compress_agent() {
    let with = |fields: Value| {
        let mut state = plan_of(
            &[
                ("a", json!({"instruction": "big"})),
                ("b", json!({"instruction": "next", "context": "previous"})),
                ("c", json!({"instruction": "last", "context": "all"})),
            ],
            &json!({}),
        );
        for (key, value) in fields.as_object().unwrap() {
            state["plan"][key] = value.clone();
        }
        state.to_string()
    };
    let body = r#"case "$STEP_ID" in a) head -c 5000 /dev/zero | tr '\0' 'A';; b) echo short;; *) echo end;; esac"#;
    // Deterministic: the newest whole, older cut to head and tail with a marker.
    let mut ws = Workspace::with_state(&with(json!({"contextMaxChars": 1000})));
    let script = agent(&ws, "default", body);
    ws.set("STEP_AGENT_CMD", &script.display().to_string());
    ws.runner(&[]).expect(0);
    let last = prompt(&ws, "default", "c", 1);
    assert!(last.contains("\n[Step 2 Result]: short"), "{last}");
    assert!(
        last.contains("characters cut to fit contextMaxChars"),
        "{last}"
    );
    assert!(last.len() < 1200, "{}", last.len());
    let next = prompt(&ws, "default", "b", 1);
    assert!(
        next.contains("cut to fit contextMaxChars") && next.len() < 1200,
        "{next}"
    );

    // With a compress agent: asked once per result, its summary used by every later step.
    let mut ws = Workspace::with_state(&with(
        json!({"contextMaxChars": 1000, "compressAgent": "squeeze"}),
    ));
    let script = agent(&ws, "default", body);
    let squeeze = ws.script(
        "squeeze.sh",
        "echo called >> squeeze.calls\necho 'A, five thousand times'",
    );
    let outside = tempfile::tempdir().unwrap();
    let agents = agents_file(outside.path(), &[("squeeze", &squeeze)]);
    ws.set("STEP_AGENT_CMD", &script.display().to_string())
        .set("STEP_AGENTS_FILE", &agents.display().to_string());
    ws.runner(&[]).expect(0);
    assert_eq!(
        prompt(&ws, "default", "b", 1),
        "next\n[Step 1 Result]: A, five thousand times"
    );
    assert_eq!(
        prompt(&ws, "default", "c", 1),
        "last\n[Step 1 Result]: A, five thousand times\n[Step 2 Result]: short"
    );
    assert_eq!(
        ws.read("squeeze.calls"),
        "called\n",
        "one summary per result"
    );
}

#[test]
fn results_are_bounded_and_a_planted_link_is_never_read_into_a_prompt() {
    let mut ws = Workspace::with_state(
        &plan_of(
            &[
                ("a", json!({"instruction": "flood"})),
                ("b", json!({"instruction": "got: {{steps.a.result}}"})),
            ],
            &json!({}),
        )
        .to_string(),
    );
    let script = agent(
        &ws,
        "default",
        r#"[ "$STEP_ID" = a ] && head -c 3000000 /dev/zero | tr '\0' 'x'; true"#,
    );
    ws.set("STEP_AGENT_CMD", &script.display().to_string());
    ws.runner(&[]).expect(0);
    let kept = fs::read_to_string(ws.sidecar().join("results/a.result")).unwrap();
    assert!(kept.len() < (1 << 20) + 200, "{}", kept.len());
    assert!(kept.ends_with("[… the result was 3000000 bytes; only the first 1 MiB is kept …]\n"));

    // A result the agent replaced with a link to a secret: refused, the prompt says so.
    let mut ws = Workspace::with_state(
        &plan_of(
            &[
                ("a", json!({"instruction": "one"})),
                ("b", json!({"instruction": "got: {{steps.a.result}}"})),
            ],
            &json!({}),
        )
        .to_string(),
    );
    let secret = tempfile::NamedTempFile::new().unwrap();
    fs::write(secret.path(), "SECRET KEY").unwrap();
    let script = agent(&ws, "default", "echo first");
    ws.set("STEP_AGENT_CMD", &script.display().to_string());
    // Step a runs alone first; then its result is replaced by a link, as an agent could do;
    // then step b is added and runs.
    let mut state = ws.state();
    state["stepQueue"] = json!(["a"]);
    state["plan"]["steps"].as_object_mut().unwrap().remove("b");
    ws.set_state(&state);
    ws.runner(&[]).expect(0);
    let result = ws.sidecar().join("results/a.result");
    fs::remove_file(&result).unwrap();
    std::os::unix::fs::symlink(secret.path(), &result).unwrap();
    ws.seqctl(&["add-step", "b", "--instruction", "got: {{steps.a.result}}"])
        .expect(0);
    ws.runner(&[]).expect(0);
    let got = prompt(&ws, "default", "b", 1);
    assert!(!got.contains("SECRET"), "{got}");
    assert_eq!(got, "got: (step 1 left no result)");
}

#[test]
fn references_unknown_agents_and_bad_checks_are_refused_before_anything_runs() {
    let mut state = plan_of(
        &[
            (
                "a",
                json!({"instruction": "use {{steps.b.result}} and {{steps.zz.result}}", "agent": "no good"}),
            ),
            (
                "b",
                json!({"instruction": "x", "resultFile": "../up.md",
                       "verify": {"matches": "(", "files": ["/etc/passwd"], "instruction": "?"}}),
            ),
            ("c", json!({"instruction": "x", "verify": {}})),
        ],
        &json!({}),
    );
    state["plan"]["contextMaxChars"] = json!(0);
    let ws = Workspace::with_state(&state.to_string());
    let before = ws.bytes();
    let run = ws.seqctl(&["validate"]);
    let text = format!("{}{}", run.stdout(), run.stderr());
    for expected in [
        "plan.steps.a.instruction: refers to the result of step `b`, which does not run before this one",
        "refers to the result of step `zz`, which is not in stepQueue",
        "plan.steps.a.agent: \"no good\" is not an agent's name",
        "plan.steps.b.resultFile: \"../up.md\" must stay inside the workspace",
        "plan.steps.b.verify.files[0]: \"/etc/passwd\" must be relative",
        "plan.steps.b.verify.matches: not a regular expression",
        "plan.steps.b.verify.instruction: is for a verify agent",
        "plan.steps.c.verify: has no check",
        "plan.contextMaxChars: 0 is not a number of characters",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_ne!(run.code(), 0);
    let mut ws = ws;
    ws.agent("echo hi");
    ws.check(&[]).expect(2);
    ws.assert_untouched(&before, "an invalid plan");

    // A name the agents file does not define: the try fails saying where agents are defined.
    let mut ws = Workspace::with_state(
        &plan_of(
            &[(
                "a",
                json!({"instruction": "x", "agent": "ghost", "maxRetries": 1}),
            )],
            &json!({}),
        )
        .to_string(),
    );
    ws.agent("echo hi");
    // seqctl validate says so before anything runs.
    ws.seqctl(&["validate"]).expect(0).stdout_has(
        "warning: plan.steps.a.agent: no agent named `ghost` in /nonexistent/agents.toml",
    );
    ws.runner(&[]).expect(1);
    let error = ws.state()["stepRuns"]["a"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.starts_with("agent not started: no agent named `ghost` in /nonexistent/agents.toml"),
        "{error}"
    );
}
