//! The texts users and agents read match the binaries: SKILL.md's frontmatter, the published
//! skill folder, and the README's quick start, run word for word.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::CHECK;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `key: value` lines between SKILL.md's `---` fences.
fn frontmatter() -> Vec<(String, String)> {
    let skill = read("skill/SKILL.md");
    let mut lines = skill.lines();
    assert_eq!(
        lines.next(),
        Some("---"),
        "SKILL.md must open with frontmatter"
    );
    lines
        .take_while(|line| *line != "---")
        .map(|line| {
            let (key, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("frontmatter line {line:?}"));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn field(name: &str) -> String {
    frontmatter()
        .into_iter()
        .find(|(key, _)| key == name)
        .unwrap_or_else(|| panic!("SKILL.md frontmatter has no `{name}`"))
        .1
}

#[test]
fn skill_frontmatter_declares_what_openclaw_needs() {
    // OpenClaw's validator (skills/skill-creator/scripts/quick_validate.py) refuses any other
    // top-level key; `version` among them, so the version lives in the metadata.
    const ALLOWED: &[&str] = &[
        "name",
        "description",
        "homepage",
        "license",
        "allowed-tools",
        "user-invocable",
        "disable-model-invocation",
        "command-dispatch",
        "command-tool",
        "command-arg-mode",
        "metadata",
    ];
    for (key, _) in frontmatter() {
        assert!(
            ALLOWED.contains(&key.as_str()),
            "SKILL.md front matter key `{key}` is refused by OpenClaw's validator"
        );
    }
    assert_eq!(field("name"), "agent-step-sequencer");
    let description = field("description");
    assert!(
        description.len() > 80 && description.chars().count() < 160,
        "one line that tells the agent when to use the skill, under 160 characters as \
         OpenClaw's docs advise: {} characters",
        description.chars().count()
    );
    assert!(
        !description.contains(['<', '>']),
        "OpenClaw's validator refuses angle brackets in the description"
    );
    let metadata: Value = serde_json::from_str(&field("metadata")).expect("metadata is JSON");
    assert_eq!(
        metadata["version"],
        env!("CARGO_PKG_VERSION"),
        "SKILL.md's metadata and Cargo.toml versions differ"
    );
    let openclaw = &metadata["openclaw"];
    let bins: Vec<&str> = openclaw["requires"]["bins"]
        .as_array()
        .expect("requires.bins")
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    for required in ["seq-check", "seq-runner"] {
        assert!(bins.contains(&required), "requires.bins lacks {required}");
    }
    for bin in &bins {
        assert!(
            root().join(format!("src/bin/{bin}.rs")).is_file(),
            "requires.bins names `{bin}`, which is not a binary of this crate"
        );
    }
    assert_eq!(
        openclaw["requires"]["env"],
        serde_json::json!(["STEP_AGENT_CMD"])
    );
    // OpenClaw silently drops installer kinds it does not know (there is no `cargo` kind).
    for installer in openclaw["install"].as_array().into_iter().flatten() {
        let kind = installer["kind"].as_str().unwrap_or_default();
        assert!(
            ["brew", "node", "go", "uv", "download"].contains(&kind),
            "installer kind {kind:?} would be dropped"
        );
    }
}

/// Every file under `dir`, asserting what ClawHub would leave out is absent.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(
            !meta.file_type().is_symlink(),
            "{} is a symlink: ClawHub leaves it out",
            path.display()
        );
        let name = entry.file_name();
        assert!(
            !name.to_string_lossy().starts_with('.'),
            "{} is hidden: ClawHub leaves it out",
            path.display()
        );
        if meta.is_dir() {
            walk(&path, out);
        } else {
            assert!(
                meta.len() < 10 << 20,
                "{} is over ClawHub's 10 MB",
                path.display()
            );
            out.push(path);
        }
    }
}

#[test]
fn the_published_skill_folder_is_complete_without_links() {
    let skill = root().join("skill");
    assert_eq!(
        read("skill/references/state-schema.md"),
        read("references/state-schema.md"),
        "skill/references/state-schema.md must be a copy of references/state-schema.md (ClawHub drops symlinks)"
    );
    let mut files = Vec::new();
    walk(&skill, &mut files);
    // Every relative link in SKILL.md resolves inside the folder.
    let text = read("skill/SKILL.md");
    for link in text
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
    {
        if link.starts_with("http") || link.starts_with('#') {
            continue;
        }
        assert!(
            files.contains(&skill.join(link)),
            "SKILL.md links to {link}, which the skill folder lacks"
        );
    }
}

#[test]
fn the_readme_quick_start_is_the_demo_and_the_ci_test_command() {
    let readme = read("README.md");
    let quick = readme
        .split("## Quick start")
        .nth(1)
        .expect("a Quick start section");
    let block = quick
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    assert_eq!(
        block.trim().lines().collect::<Vec<_>>(),
        ["examples/demo.sh", "cargo test --locked"]
    );
    assert!(
        read(".ci/run").contains("cargo test --locked"),
        ".ci/run must run the README's test command"
    );
}

/// Runs `examples/demo.sh [example]` with the binaries under test; returns its exit code,
/// output and the workspace it made.
fn demo(example: Option<&str>) -> (i32, String, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(CHECK).parent().unwrap();
    let output = Command::new(root().join("examples/demo.sh"))
        .args(example)
        .env("SEQ_BIN_DIR", bin_dir)
        .env("TMPDIR", tmp.path())
        .env_remove("STEP_AGENT_CMD")
        .output()
        .expect("run examples/demo.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let workspace = fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .next()
        .expect("the demo made a workspace")
        .path();
    let kept = tmp.keep();
    assert!(workspace.starts_with(&kept));
    (output.status.code().unwrap_or(-1), text, workspace)
}

#[test]
fn the_quick_start_demo_runs_the_plan_to_the_end() {
    let (code, out, workspace) = demo(None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("done: all 3 steps finished; artifacts: study/notes.md, study/outline.md, study/paper.md"), "{out}");
    for file in ["study/notes.md", "study/outline.md", "study/paper.md"] {
        let text = fs::read_to_string(workspace.join(file))
            .unwrap_or_else(|_| panic!("{file} missing\n{out}"));
        assert!(text.contains("Written by the demo agent"), "{file}: {text}");
    }
    let state: Value =
        serde_json::from_slice(&fs::read(workspace.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["status"], "DONE");
    let _ = fs::remove_dir_all(workspace.parent().unwrap());
}

#[test]
fn the_failure_demo_shows_the_retry_prompt_and_a_blocker() {
    let (code, out, workspace) = demo(Some("failure"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(
        "Step fetch failed (tries: 1). Previous run ended with: exit code 1: price source A timed out after 30 s. \
         Please troubleshoot and retry: Fetch today's prices into data/prices.md"
    ), "{out}");
    assert!(out.contains("blocked: step publish failed 2 tries; last error: exit code 4: publishing endpoint refused the upload: HTTP 403"), "{out}");
    let state: Value =
        serde_json::from_slice(&fs::read(workspace.join("state.json")).unwrap()).unwrap();
    assert_eq!(
        state["blockers"],
        serde_json::json!(["publish: max retries (2) exceeded"])
    );
    let _ = fs::remove_dir_all(workspace.parent().unwrap());
}

/// Every test the README's Guarantees section names exists (so a promise never points at a
/// test that was renamed or removed).
#[test]
fn every_guarantee_names_a_test_that_exists() {
    let readme = read("README.md");
    let section = readme
        .split("## Guarantees")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Guarantees section");
    let mut sources = String::new();
    for dir in ["tests/integration", "src"] {
        let mut files = Vec::new();
        walk_rs(&root().join(dir), &mut files);
        for file in files {
            sources.push_str(&fs::read_to_string(file).unwrap());
        }
    }
    let named: Vec<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            word.contains('_')
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    assert!(named.len() > 10, "the section names its tests: {named:?}");
    for name in named {
        assert!(
            sources.contains(&format!("fn {name}(")),
            "README's Guarantees name `{name}`, which no test defines"
        );
    }
}

fn walk_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate is not on crates.io: no text may tell a user to install it by name.
#[test]
fn no_document_installs_the_unpublished_crate_by_name() {
    let mut files = vec![root().join("README.md")];
    for dir in ["skill", "references", "examples", "src"] {
        let mut found = Vec::new();
        walk_any(&root().join(dir), &mut found);
        files.extend(found);
    }
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("cargo install")) {
            assert!(
                line.contains("--path"),
                "{}: {line:?} installs from a registry the crate is not on",
                file.display()
            );
        }
    }
}

fn walk_any(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk_any(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The ```json blocks of a Markdown file that hold a plan (`stepQueue`).
fn plan_examples(path: &str) -> Vec<String> {
    let text = read(path);
    text.split("```json\n")
        .skip(1)
        .filter_map(|rest| rest.split("\n```").next())
        .filter(|block| block.contains("\"stepQueue\""))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_plan_an_agent_is_shown_is_one_seqctl_accepts() {
    let mut checked = 0;
    for doc in ["skill/SKILL.md", "references/state-schema.md", "README.md"] {
        for example in plan_examples(doc) {
            let dir = tempfile::tempdir().unwrap();
            let plan = dir.path().join("plan.json");
            fs::write(&plan, &example).unwrap();
            let state = dir.path().join("state.json");
            let out = std::process::Command::new(crate::common::SEQCTL)
                .args(["init", "--state"])
                .arg(&state)
                .arg("--plan")
                .arg(&plan)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{doc}: a plan example is refused:\n{example}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} plan examples found");
}
