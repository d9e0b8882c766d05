//! `seqctl plan`: a fake planner agent (a script that answers from files, one reply per try)
//! and the real `seqctl`. What it is asked, what is accepted, what is written and what is not.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{pid_alive, plan, Workspace, SEQCTL};

/// A valid plan whose second step uses the first's result.
const VALID: &str = r#"{"plan":{"steps":{
  "research":{"title":"Research","instruction":"Research X and print what you found"},
  "write":{"title":"Write paper","instruction":"Using {{steps.research.result}}, write paper.md","requiredOutputs":["paper.md"]}}},
 "stepQueue":["research","write"]}"#;

/// Not a valid plan, twice over: a forward reference and a step without an instruction.
const INVALID: &str = r#"{"plan":{"steps":{
  "research":{"title":"Research","instruction":"Read {{steps.write.result}} first"},
  "write":{"title":"Write paper"}}},
 "stepQueue":["research","write"]}"#;

/// A workspace whose agents file is one that does not exist (no named agents), whatever the
/// person running the tests keeps in ~/.config, and whose temp folder is watched.
fn workspace() -> (Workspace, tempfile::TempDir) {
    let mut ws = Workspace::new();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir(outside.path().join("tmp")).unwrap();
    let agents = outside.path().join("agents.toml");
    ws.set("STEP_AGENTS_FILE", &agents.display().to_string());
    ws.set("TMPDIR", &outside.path().join("tmp").display().to_string());
    (ws, outside)
}

/// A fake planner: try n records its prompt in `prompt.<n>` (given as the argument, or as a
/// `{prompt_file}` path) and prints `replies[n-1]`, the last one once they run out.
fn planner(ws: &Workspace, name: &str, replies: &[&str]) -> PathBuf {
    for (n, reply) in replies.iter().enumerate() {
        ws.write(&format!("replies/{}", n + 1), reply);
    }
    ws.script(
        name,
        r#"n=$(( $(cat count 2>/dev/null || echo 0) + 1 ))
echo "$n" > count
if [ -f "$1" ]; then cat "$1" > "prompt.$n"; else printf '%s' "$1" > "prompt.$n"; fi
if [ -f "replies/$n" ]; then cat "replies/$n"; else cat "replies/$(ls replies | sort -n | tail -1)"; fi"#,
    )
}

fn tries(ws: &Workspace) -> u32 {
    ws.read("count").trim().parse().unwrap_or(0)
}

#[test]
fn a_fenced_plan_is_printed_and_written_only_with_write() {
    let (mut ws, outside) = workspace();
    let agent = planner(
        &ws,
        "planner.sh",
        &[&format!(
            "Here is your plan:\n\n```json\n{VALID}\n```\n\nShall I start?"
        )],
    );
    ws.set("STEP_AGENT_CMD", &agent.display().to_string());
    let task = "Research X, then write a paper about it";

    let shown = ws.seqctl(&["plan", "--task", task]);
    shown
        .expect(0)
        .stdout_has("\"stepQueue\": [\n    \"research\",\n    \"write\"\n  ]")
        .stdout_has("The plan (valid on try 1): 2 steps, 0 min between steps:\n  1. Research (research)\n  2. Write paper (write)")
        .stdout_has("Nothing was written");
    assert!(!ws.state_path().exists(), "written without --write");
    assert!(!ws.sidecar().exists(), "a sidecar without --write");
    assert_eq!(
        fs::read_dir(outside.path().join("tmp")).unwrap().count(),
        0,
        "the temp folder was left behind"
    );
    let prompt = ws.read("prompt.1");
    assert!(prompt.contains(&format!("The task:\n{task}\n")), "{prompt}");
    assert!(
        prompt.contains("one JSON object and nothing else"),
        "{prompt}"
    );
    assert!(prompt.contains("{{steps.<id>.result}}"), "{prompt}");
    assert!(prompt.contains("\"verify\""), "{prompt}");
    assert!(
        prompt.contains(&format!(
            "agent working in the folder {}",
            fs::canonicalize(ws.path()).unwrap().display()
        )),
        "{prompt}"
    );

    let written = ws.seqctl(&["plan", "--task", task, "--write", "--json"]);
    let out = written.expect(0).json();
    assert_eq!(out["written"], true, "{out}");
    assert_eq!(out["tries"], 1, "{out}");
    assert_eq!(out["plan"]["stepQueue"], json!(["research", "write"]));
    assert_eq!(
        out["plan"].get("stepRuns"),
        None,
        "a plan file has no progress"
    );
    ws.seqctl(&["validate", "state.json"])
        .expect(0)
        .stdout_has("valid: 2 steps");
    let state = ws.state();
    assert_eq!(state["status"], "IN_PROGRESS");
    assert_eq!(state["currentStep"], 0);
    assert_eq!(
        state["plan"]["steps"]["write"]["instruction"],
        "Using {{steps.research.result}}, write paper.md"
    );

    // --out saves the plan for a person to confirm; `seqctl init --plan` then takes it as is.
    let saved = ws.seqctl(&["plan", "--task", task, "--out", "plan.json", "--json"]);
    let out = saved.expect(0).json();
    assert_eq!(out["savedTo"], "plan.json", "{out}");
    assert_eq!(out["written"], false, "{out}");
    let file: serde_json::Value = serde_json::from_str(&ws.read("plan.json")).unwrap();
    assert_eq!(file, out["plan"]);
    ws.seqctl(&["init", "-s", "again.json", "--plan", "plan.json"])
        .expect(0);
    assert_eq!(tries(&ws), 3);
    // Never over a file that exists, and refused before the agent is asked.
    ws.seqctl(&["plan", "--task", task, "--out", "plan.json"])
        .expect(2)
        .stderr_has("plan.json: exists");
    assert_eq!(tries(&ws), 3);
    assert_eq!(
        fs::read_dir(outside.path().join("tmp")).unwrap().count(),
        0,
        "the temp folder was left behind"
    );
}

#[test]
fn an_invalid_plan_goes_back_with_its_problems_and_the_next_try_is_taken() {
    let (mut ws, _outside) = workspace();
    let agent = planner(&ws, "planner.sh", &[INVALID, VALID]);
    ws.set("STEP_AGENT_CMD", &agent.display().to_string());

    let run = ws.seqctl(&["plan", "--task", "Write a paper", "--write", "--json"]);
    let out = run.expect(0).json();
    assert_eq!(out["tries"], 2, "{out}");
    assert_eq!(out["written"], true, "{out}");
    assert_eq!(tries(&ws), 2);
    assert!(run
        .stderr()
        .contains("try 1: the reply is not a valid plan (2 problems)"));
    let first = ws.read("prompt.1");
    assert!(!first.contains("previous reply"), "{first}");
    let second = ws.read("prompt.2");
    for problem in [
        "- plan.steps.research.instruction: refers to the result of step `write`, which does \
         not run before this one\n",
        "- plan.steps.write.instruction: missing or empty: every queued step needs an \
         instruction\n",
    ] {
        assert!(
            second.contains(problem),
            "the retry lacks {problem:?}:\n{second}"
        );
    }
    assert!(
        second.ends_with(&format!("Your previous reply was:\n{INVALID}")),
        "{second}"
    );
    assert!(
        second.starts_with(&first),
        "the retry is the first prompt and more"
    );
    ws.seqctl(&["validate", "state.json"]).expect(0);
}

#[test]
fn a_planner_that_never_gives_a_valid_plan_exits_2_and_writes_nothing() {
    let (mut ws, _outside) = workspace();
    let agent = planner(&ws, "planner.sh", &["I would rather not.", INVALID]);
    ws.set("STEP_AGENT_CMD", &agent.display().to_string());

    let run = ws.seqctl(&["plan", "--task", "Write a paper", "--write"]);
    run.expect(2)
        .stdout_has("no valid plan after 3 tries; nothing was written")
        .stdout_has("- plan.steps.write.instruction: missing or empty");
    assert_eq!(tries(&ws), 3);
    assert!(ws
        .read("prompt.2")
        .contains("- the reply holds no JSON object\n"));
    assert!(!ws.state_path().exists(), "an invalid plan was written");

    let out = ws
        .seqctl(&["plan", "--task", "x", "--tries", "1", "--json"])
        .expect(2)
        .json();
    assert_eq!(out["plan"], serde_json::Value::Null);
    assert_eq!(out["written"], false);
    assert_eq!(out["tries"], 1);
    assert_eq!(out["problems"].as_array().unwrap().len(), 2, "{out}");

    // An agent that fails uses a try like a bad reply, and says why.
    let failing = ws.script("failing.sh", "echo 'no credit left' >&2; exit 3");
    ws.set("STEP_AGENT_CMD", &failing.display().to_string());
    ws.seqctl(&["plan", "--task", "x", "--tries", "2"])
        .expect(2)
        .stdout_has("no valid plan after 2 tries")
        .stdout_has("failed: exit code 3: no credit left");
    let slow = ws.script("slow.sh", "exec sleep 30");
    ws.set("STEP_AGENT_CMD", &slow.display().to_string());
    ws.seqctl(&[
        "plan",
        "--task",
        "x",
        "--tries",
        "1",
        "--timeout-seconds",
        "1",
    ])
    .expect(2)
    .stdout_has("timed out after 1 s");
    assert!(!ws.state_path().exists());
}

#[test]
fn a_named_planner_comes_from_the_operators_agents_file_and_an_unknown_name_is_refused() {
    let (mut ws, outside) = workspace();
    let named = planner(&ws, "named.sh", &[VALID]);
    let default = ws.script("default.sh", "touch default-was-asked; exit 1");
    ws.set("STEP_AGENT_CMD", &default.display().to_string());
    fs::write(
        outside.path().join("agents.toml"),
        format!(
            "[agents.planner]\ncommand = \"{} {{prompt_file}}\"\n[agents.reviewer]\ncommand = \"{}\"\n",
            named.display(),
            default.display()
        ),
    )
    .unwrap();

    ws.seqctl(&["plan", "--task", "Write a paper", "--agent", "planner"])
        .expect(0)
        .stdout_has("1. Research (research)");
    assert_eq!(tries(&ws), 1);
    assert!(
        !ws.path().join("default-was-asked").exists(),
        "STEP_AGENT_CMD's agent was asked instead"
    );
    let prompt = ws.read("prompt.1");
    assert!(
        prompt.contains("the named agents are \"planner\", \"reviewer\""),
        "the prompt (read from its {{prompt_file}}) lacks the operator's agents:\n{prompt}"
    );

    ws.seqctl(&["plan", "--task", "x", "--agent", "nobody"])
        .expect(2)
        .stderr_has("no agent named `nobody` in");
    assert_eq!(tries(&ws), 1, "no agent runs for an unknown name");
    assert!(!ws.path().join("default-was-asked").exists());
}

#[test]
fn write_refuses_an_unfinished_plan_before_the_agent_is_asked() {
    let (mut ws, _outside) = workspace();
    ws.write("state.json", &plan(2, ""));
    let before = ws.bytes();
    let agent = planner(&ws, "planner.sh", &[VALID]);
    ws.set("STEP_AGENT_CMD", &agent.display().to_string());

    ws.seqctl(&["plan", "--task", "x", "--write"])
        .expect(2)
        .stderr_has("holds a plan that is not DONE");
    assert_eq!(
        tries(&ws),
        0,
        "the agent was asked for a plan that cannot be written"
    );
    assert_eq!(ws.bytes(), before);

    ws.seqctl(&["plan", "--task", "x", "--write", "--force"])
        .expect(0)
        .stdout_has("replaced");
    assert_eq!(ws.state()["stepQueue"], json!(["research", "write"]));
}

#[test]
fn ctrl_c_stops_the_planner_agent_and_writes_nothing() {
    let (mut ws, _outside) = workspace();
    let agent = ws.script("slow.sh", "echo $$ > agent.pid\nexec sleep 30");
    ws.set("STEP_AGENT_CMD", &agent.display().to_string());
    let plan = ws.spawn(SEQCTL, &["plan", "--task", "x", "--write"]);
    let pid: u64 = ws
        .wait_file("agent.pid", Duration::from_secs(10))
        .trim()
        .parse()
        .unwrap();
    let sent = Instant::now();
    // SAFETY: a signal to the seqctl this test started.
    assert_eq!(
        unsafe { libc::kill(plan.pid() as libc::pid_t, libc::SIGINT) },
        0
    );
    let run = plan.finish(&ws);
    // Stopped, not waited for: the agent would sleep 30 s.
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "{:?}",
        sent.elapsed()
    );
    run.expect(130).stdout_has("stopped by SIGINT");
    ws.wait_pid(pid, Duration::from_secs(5));
    assert!(!pid_alive(pid), "the agent outlived seqctl");
    assert!(!ws.state_path().exists());
}
