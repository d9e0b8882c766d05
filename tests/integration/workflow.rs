//! Workflows, not only lists (issue 15): needs and maxParallel (overlap measured with
//! timestamps), when, optional, forEach, repeat, and a plan changed under a live run, each end
//! to end with fake agents.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{stamp, Workspace};

/// An agent that logs `start <step> <try> <ns>` and `end <step> <try> <ns>` around a pause,
/// keeps its prompt as `prompt.<step>.<try>`, then runs `body`.
fn agent(ws: &mut Workspace, pause: &str, body: &str) {
    ws.agent(&format!(
        r#"for last; do :; done
printf '%s' "$last" > "prompt.$STEP_ID.$STEP_ATTEMPT"
echo "start $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log
sleep {pause}
echo "end $STEP_ID $STEP_ATTEMPT $(date +%s%N)" >> events.log
{body}"#
    ));
}

/// The (start, end) stamps of each try of `step`, in order.
fn spans(ws: &Workspace, step: &str) -> Vec<(u128, u128)> {
    let lines = ws.lines("events.log");
    let of = |kind: &str| -> Vec<u128> {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("{kind} {step} ")))
            .map(|l| stamp(l))
            .collect()
    };
    of("start").into_iter().zip(of("end")).collect()
}

fn state_of(steps: &[(&str, Value)], plan: &Value) -> String {
    let mut state = crate::common::plan_of(steps, &json!({}));
    for (key, value) in plan.as_object().unwrap() {
        state["plan"][key] = value.clone();
    }
    state.to_string()
}

#[test]
fn needs_and_max_parallel_run_independent_steps_side_by_side_and_wait_for_both() {
    let mut ws = Workspace::with_state(&state_of(
        &[
            ("a", json!({"instruction": "fetch a", "needs": []})),
            ("b", json!({"instruction": "fetch b", "needs": []})),
            ("c", json!({"instruction": "fetch c", "needs": []})),
            (
                "merge",
                json!({"instruction": "merge", "needs": ["a", "b", "c"]}),
            ),
        ],
        &json!({"maxParallel": 2}),
    ));
    agent(&mut ws, "0.6", "echo ok");
    ws.runner(&[]).expect(0);
    let state = ws.state();
    assert_eq!(state["status"], "DONE", "{state}");
    let (a, b, c, merge) = (
        spans(&ws, "a")[0],
        spans(&ws, "b")[0],
        spans(&ws, "c")[0],
        spans(&ws, "merge")[0],
    );
    // a and b overlap; c starts only when one of them ended (maxParallel 2); merge after all.
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "a {a:?} and b {b:?} did not overlap"
    );
    assert!(
        c.0 >= a.1.min(b.1),
        "c {c:?} started with two already running"
    );
    assert!(
        merge.0 >= a.1.max(b.1).max(c.1),
        "merge {merge:?} started early"
    );
    // Exactly once each.
    for step in ["a", "b", "c", "merge"] {
        assert_eq!(spans(&ws, step).len(), 1, "{step}");
    }
}

#[test]
fn a_false_condition_skips_the_step_with_the_reason_and_its_dependents_go_on() {
    let mut ws = Workspace::with_state(&state_of(
        &[
            ("test", json!({"instruction": "run the tests"})),
            (
                "fix",
                json!({"instruction": "fix them", "when": {"step": "test", "resultContains": "FAILED"}}),
            ),
            (
                "party",
                json!({"instruction": "celebrate", "needs": ["test"], "when": {"step": "test", "resultMatches": "^all \\d+ passed"}}),
            ),
            (
                "report",
                json!({"instruction": "report", "needs": ["fix", "party"], "when": {"step": "fix", "status": "SKIPPED"}}),
            ),
        ],
        &json!({}),
    ));
    agent(
        &mut ws,
        "0",
        r#"[ "$STEP_ID" = test ] && echo "3 FAILED, 9 passed"; true"#,
    );
    ws.runner(&[]).expect(0);
    let state = ws.state();
    let runs = &state["stepRuns"];
    assert_eq!(runs["fix"]["status"], "DONE", "{state}");
    assert_eq!(runs["party"]["status"], "SKIPPED", "{state}");
    assert_eq!(
        runs["party"]["reason"],
        "when: the result of step test does not match /^all \\d+ passed/"
    );
    assert_eq!(runs["report"]["status"], "SKIPPED");
    assert_eq!(
        runs["report"]["reason"],
        "when: step fix is DONE, not SKIPPED"
    );
    assert_eq!(state["status"], "DONE");
    assert!(spans(&ws, "party").is_empty() && spans(&ws, "report").is_empty());
    let explained = ws.seqctl(&["explain", "party"]).expect(0).stdout();
    assert!(
        explained.contains("was skipped: when: the result of step test"),
        "{explained}"
    );
}

#[test]
fn an_optional_step_out_of_tries_fails_for_good_and_the_plan_goes_on() {
    let mut ws = Workspace::with_state(&state_of(
        &[
            (
                "flaky",
                json!({"instruction": "try the mirror", "optional": true, "maxRetries": 2}),
            ),
            ("next", json!({"instruction": "go on"})),
        ],
        &json!({}),
    ));
    agent(
        &mut ws,
        "0",
        r#"[ "$STEP_ID" = flaky ] && { echo "mirror down" >&2; exit 3; }; echo ok"#,
    );
    ws.check(&["--wait"])
        .expect(0)
        .stdout_has("done: 1 of 2 steps finished (1 optional step FAILED: flaky)");
    let state = ws.state();
    assert_eq!(state["stepRuns"]["flaky"]["status"], "FAILED");
    assert_eq!(state["stepRuns"]["flaky"]["tries"], 2);
    assert_eq!(state["stepRuns"]["next"]["status"], "DONE");
    assert!(
        state.get("blockers").is_none_or(|b| *b == json!([])),
        "no blocker for an optional step: {state}"
    );
    let status = ws.seqctl(&["status"]).expect(0).stdout();
    assert!(
        status.contains("gave up: flaky: optional: gave up after 2 tries"),
        "{status}"
    );
}

#[test]
fn for_each_runs_one_item_per_line_in_parallel_and_the_next_step_gets_them_all() {
    let mut ws = Workspace::with_state(&state_of(
        &[
            ("list", json!({"instruction": "list the files"})),
            (
                "each",
                json!({"instruction": "summarise {{item}} (file {{index}})",
                       "forEach": {"from": "steps.list.result"}}),
            ),
            (
                "merge",
                json!({"instruction": "merge: {{steps.each.result}}"}),
            ),
        ],
        &json!({"maxParallel": 3}),
    ));
    agent(
        &mut ws,
        "0.4",
        r#"case "$STEP_ID" in
  list) printf 'a.md\nb.md\n\nc.md\n';;
  each*) echo "summary of $STEP_ID";;
  *) echo merged;;
esac"#,
    );
    ws.runner(&[]).expect(0);
    let state = ws.state();
    assert_eq!(state["status"], "DONE", "{state}");
    assert_eq!(
        state["stepRuns"]["each"]["items"],
        json!(["a.md", "b.md", "c.md"])
    );
    assert_eq!(ws.read("prompt.each[2].1"), "summarise b.md (file 2)");
    let (one, two, three) = (
        spans(&ws, "each[1]")[0],
        spans(&ws, "each[2]")[0],
        spans(&ws, "each[3]")[0],
    );
    assert!(
        one.0 < two.1 && two.0 < one.1 && three.0 < one.1,
        "items did not overlap: {one:?} {two:?} {three:?}"
    );
    assert_eq!(
        ws.read("prompt.merge.1"),
        "merge: [Item 1: a.md]: summary of each[1]\n[Item 2: b.md]: summary of each[2]\n[Item 3: c.md]: summary of each[3]"
    );
    let status = ws.seqctl(&["status"]).expect(0).stdout();
    assert!(status.contains("DONE 3/3"), "{status}");
    let result = ws.seqctl(&["result", "--json"]).expect(0).json();
    assert_eq!(
        result["completed_results"][1]["result"],
        "[Item 1: a.md]: summary of each[1]\n[Item 2: b.md]: summary of each[2]\n[Item 3: c.md]: summary of each[3]\n"
    );
    // The items' records are kept beside state.json, not in it.
    assert!(state["stepRuns"].get("each[1]").is_none(), "{state}");
    assert!(ws
        .read("state.json.seq/items/each.jsonl")
        .contains(r#""n":3"#));
    // An item is explained, retried and skipped like a step.
    let why = ws.seqctl(&["explain", "each[2]"]).expect(0).stdout();
    assert!(why.contains("Step each[2] is done"), "{why}");
}

#[test]
fn a_for_each_source_that_is_too_long_or_missing_fails_like_a_try() {
    let mut ws = Workspace::with_state(&state_of(
        &[(
            "each",
            json!({"instruction": "do {{item}}", "maxRetries": 1,
                   "forEach": {"from": "file:list.json", "split": "json", "maxItems": 2}}),
        )],
        &json!({}),
    ));
    agent(&mut ws, "0", "true");
    ws.runner(&[]).expect(1);
    assert_eq!(
        ws.state()["stepRuns"]["each"]["error"],
        "forEach: list.json: no such file"
    );
    ws.write("list.json", r#"["x", "y", "z"]"#);
    ws.seqctl(&["retry", "each"]).expect(0);
    ws.runner(&[]).expect(1);
    assert_eq!(
        ws.state()["stepRuns"]["each"]["error"],
        "forEach: the source has 3 items, more than maxItems (2)"
    );
    ws.write("list.json", r#"["x", {"k": 1}]"#);
    ws.seqctl(&["retry", "each"]).expect(0);
    ws.runner(&[]).expect(0);
    assert_eq!(ws.read("prompt.each[2].1"), r#"do {"k":1}"#);
}

#[test]
fn repeat_runs_again_with_its_previous_result_until_the_check_passes() {
    let mut ws = Workspace::with_state(&state_of(
        &[(
            "draft",
            json!({"instruction": "write the draft",
                   "repeat": {"max": 3, "until": {"contains": "APPROVED"}}}),
        )],
        &json!({}),
    ));
    agent(
        &mut ws,
        "0",
        r#"n=$(cat runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > runs
if [ $n -ge 2 ]; then echo "draft $n APPROVED"; else echo "draft $n"; fi"#,
    );
    ws.runner(&[]).expect(0);
    let state = ws.state();
    assert_eq!(state["stepRuns"]["draft"]["status"], "DONE", "{state}");
    assert_eq!(state["stepRuns"]["draft"]["round"], 2);
    // Each run keeps its own try number, so no run's log is overwritten.
    assert_eq!(state["stepRuns"]["draft"]["tries"], 2);
    assert!(ws.sidecar().join("logs/draft.1.log").exists());
    assert!(ws.sidecar().join("logs/draft.2.log").exists());
    assert_eq!(ws.read("prompt.draft.2"), "write the draft\n\n[Previous result]: draft 1\n[Why it runs again]: verify failed: the result does not contain \"APPROVED\"");
    let events: Vec<Value> = ws
        .lines("state.json.seq/events.jsonl")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["event"] == "repeated")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["round"], 2);
    // Out of runs, the last result stands.
    let mut ws = Workspace::with_state(&state_of(
        &[(
            "draft",
            json!({"instruction": "x", "repeat": {"max": 2, "until": {"contains": "NEVER"}}}),
        )],
        &json!({}),
    ));
    agent(&mut ws, "0", "echo same");
    ws.runner(&[]).expect(0);
    let state = ws.state();
    assert_eq!(state["stepRuns"]["draft"]["status"], "DONE");
    assert_eq!(state["stepRuns"]["draft"]["round"], 2);
    assert_eq!(spans(&ws, "draft").len(), 2);
}

#[test]
fn a_plan_edited_by_hand_under_a_live_run_stops_for_a_person() {
    let mut ws = Workspace::with_state(&state_of(
        &[
            ("a", json!({"instruction": "first"})),
            ("b", json!({"instruction": "second"})),
        ],
        &json!({}),
    ));
    // a fails (the plan is live: a try ran), then b is rewritten by hand, not with seqctl.
    agent(&mut ws, "0", r#"[ "$STEP_ID" = a ] && exit 3; echo ok"#);
    ws.set("STEP_MAX_RETRIES", "1");
    ws.runner(&[]).expect(1);
    let mut state = ws.state();
    assert!(state["planHash"].is_string(), "{state}");
    state["plan"]["steps"]["b"]["instruction"] = json!("rm -rf everything");
    ws.set_state(&state);
    ws.seqctl(&["retry", "a"]).expect(0);
    // The heartbeat tells of it as a blocker for a person (exit 1), not as a pause.
    ws.check(&[]).expect(1).stdout_has(
        "blocked: plan changed: the steps were changed outside seqctl while the plan ran",
    );
    let state = ws.state();
    assert_eq!(state["paused"], true);
    let blockers = state["blockers"].to_string();
    assert!(
        blockers.contains("plan changed: the steps were changed outside seqctl"),
        "{blockers}"
    );
    assert!(ws
        .lines("state.json.seq/events.jsonl")
        .iter()
        .any(|l| l.contains(r#""event":"plan_changed""#)));
    // A person looks, and resumes: the plan runs as it is now.
    ws.seqctl(&["resume"]).expect(0);
    let state = ws.state();
    assert!(state.get("paused").is_none(), "{state}");
    assert!(
        !state["blockers"].to_string().contains("plan changed"),
        "{state}"
    );
}

#[test]
fn a_hand_edit_that_drops_plan_hash_under_a_running_step_stops_the_plan_too() {
    let mut ws = Workspace::with_state(&state_of(
        &[
            ("a", json!({"instruction": "first"})),
            ("b", json!({"instruction": "second"})),
        ],
        &json!({}),
    ));
    ws.agent(
        r#"echo "$STEP_ID" >> trace.log
[ "$STEP_ID" = a ] && { echo x > a.started; while [ ! -f go ]; do sleep 0.05; done; }
echo ok"#,
    );
    ws.check(&[]).expect(0).stdout_has("started: step a try 1");
    ws.wait_file("a.started", Duration::from_secs(20));
    // A tool that keeps only the fields it knows rewrites the file: b changed, planHash gone.
    let mut state = ws.state();
    assert!(state["planHash"].is_string(), "{state}");
    state["plan"]["steps"]["b"]["instruction"] = json!("rm -rf everything");
    state.as_object_mut().unwrap().remove("planHash");
    ws.set_state(&state);
    ws.write("go", "");
    ws.wait_idle(Duration::from_secs(20));
    let state = ws.state();
    assert_eq!(state["paused"], true, "{state}");
    assert!(
        state["blockers"].to_string().contains("plan changed"),
        "{state}"
    );
    assert_eq!(ws.read("trace.log"), "a\n", "b must not run as edited");
}

#[test]
fn cancel_of_one_step_holds_it_for_a_person_while_the_other_branch_goes_on() {
    let mut ws = Workspace::with_state(&state_of(
        &[
            ("slow", json!({"instruction": "slow", "needs": []})),
            ("quick", json!({"instruction": "quick", "needs": []})),
            (
                "after",
                json!({"instruction": "after quick", "needs": ["quick"]}),
            ),
        ],
        &json!({"maxParallel": 2}),
    ));
    agent(
        &mut ws,
        "0",
        r#"case "$STEP_ID" in slow) sleep 30;; quick) sleep 1;; esac; echo ok"#,
    );
    let runner = ws.spawn(crate::common::RUNNER, &[]);
    ws.wait_for(std::time::Duration::from_secs(10), "slow in flight", |s| {
        s["stepRuns"]["slow"]["status"] == "IN_PROGRESS"
    });
    ws.seqctl(&["cancel", "--step", "slow"])
        .expect(0)
        .stdout_has("cancelled step slow try 1")
        .stdout_has("the other steps go on");
    let state = ws.wait_for(std::time::Duration::from_secs(20), "after DONE", |s| {
        s["stepRuns"]["after"]["status"] == "DONE"
    });
    assert_eq!(state["stepRuns"]["slow"]["status"], "FAILED", "{state}");
    assert!(state["paused"].is_null(), "the plan goes on: {state}");
    assert!(
        state["blockers"]
            .to_string()
            .contains("slow: try 1 cancelled by seqctl"),
        "{state}"
    );
    runner.finish(&ws).expect(1);
}

#[test]
fn a_for_each_step_not_expanded_yet_is_no_blocker_to_the_views() {
    let mut ws = Workspace::with_state(
        r#"{"plan":{"steps":{"e":{"instruction":"{{item}}","forEach":{"from":"file:l.txt"}}}},
            "stepQueue":["e"]}"#,
    );
    ws.write("l.txt", "a\n");
    ws.agent("echo ok");
    let result = ws.seqctl(&["result", "--json"]).expect(0).json();
    assert_eq!(result["status"], "running", "{result}");
    assert!(result["failed_step"].is_null(), "{result}");
    let status = ws.seqctl(&["status"]).expect(0).stdout();
    assert!(!status.contains("blocked"), "{status}");
    let why = ws.seqctl(&["explain"]).expect(0).stdout();
    assert!(!why.contains("blocked"), "{why}");
    ws.check(&["--wait"]).expect(0);
    assert_eq!(ws.state()["status"], "DONE");
}

#[test]
fn failed_items_of_an_optional_for_each_are_told_not_counted_as_done() {
    let mut ws = Workspace::with_state(
        r#"{"plan":{"steps":{"e":{"instruction":"do {{item}}","optional":true,"maxRetries":1,
            "forEach":{"from":"file:l.txt"}},"z":{"instruction":"last"}}},"stepQueue":["e","z"]}"#,
    );
    ws.write("l.txt", "ok1\nbad\nok2\n");
    ws.agent("for last; do :; done\ncase \"$last\" in *bad*) exit 3;; esac\necho fine");
    ws.check(&["--wait"])
        .expect(0)
        .stdout_has("done: all 2 steps finished (1 item FAILED: e[2])");
    ws.seqctl(&["status"])
        .expect(0)
        .stdout_has("DONE 3/3, 1 failed");
    let json = ws.seqctl(&["status", "--json"]).expect(0).json();
    assert_eq!(json["steps"][0]["items"]["failed"], 1, "{json}");
}

/// `seqctl add-step --needs` and `edit-step --needs` change a step's dependencies under the
/// lock; an unknown id or a cycle is refused with the problem named, and the file is left as
/// it was; the plan then runs by the new graph.
#[test]
fn needs_are_set_and_changed_with_seqctl_and_a_cycle_or_unknown_id_is_refused() {
    let mut ws = Workspace::with_state(&state_of(
        &[
            ("a", json!({"instruction": "do a"})),
            ("b", json!({"instruction": "do b"})),
        ],
        &json!({"maxParallel": 3}),
    ));
    ws.seqctl(&["add-step", "c", "--instruction", "do c", "--needs", "a"])
        .expect(0);
    ws.seqctl(&["edit-step", "b", "--needs", ""]).expect(0);
    let state = ws.state();
    assert_eq!(
        state["plan"]["steps"]["c"]["needs"],
        json!(["a"]),
        "{state}"
    );
    assert_eq!(state["plan"]["steps"]["b"]["needs"], json!([]), "{state}");
    let before = ws.bytes();
    ws.seqctl(&["edit-step", "a", "--needs", "c"])
        .expect(2)
        .stderr_has("`a` -> `c` -> `a`");
    ws.seqctl(&["add-step", "d", "--instruction", "do d", "--needs", "a,zz"])
        .expect(2)
        .stderr_has("zz");
    assert!(ws.bytes() == before, "a refused change wrote the file");
    // b needs nothing: it runs beside a; c waits for a only.
    agent(&mut ws, "0.3", "");
    ws.runner(&[]).expect(0);
    assert_eq!(ws.state()["status"], "DONE");
    let (a, b, c) = (spans(&ws, "a")[0], spans(&ws, "b")[0], spans(&ws, "c")[0]);
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "a and b did not overlap: {a:?} {b:?}"
    );
    assert!(c.0 >= a.1, "c started before a ended: {a:?} {c:?}");
}
