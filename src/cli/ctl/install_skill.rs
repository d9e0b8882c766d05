//! `seqctl install-skill [DIR]`: write the skill folder that matches this very binary.
//!
//! SKILL.md and its reference are compiled in (`include_str!`), so the instructions an agent
//! reads always describe the programs it runs; installing a new version rewrites them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use super::Output;
use crate::store::write;

/// The skill's files: path inside the skill folder, and contents.
pub const FILES: &[(&str, &str)] = &[
    (
        "SKILL.md",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/skill/SKILL.md")),
    ),
    (
        "references/state-schema.md",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/skill/references/state-schema.md"
        )),
    ),
];

/// `~/.openclaw/skills/agent-step-sequencer`.
pub fn default_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("HOME is not set; give the skills directory explicitly")?;
    Ok(Path::new(&home).join(".openclaw/skills/agent-step-sequencer"))
}

pub fn run(dir: Option<&Path>) -> Result<Output> {
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => default_dir()?,
    };
    let mut written = Vec::new();
    for (name, text) in FILES {
        let path = dir.join(name);
        // Atomic and durable: an agent reading the skill meanwhile sees the old file or the new.
        write::replace_beside(&path, text.as_bytes(), 0o644, "skill file")?;
        written.push(path.display().to_string());
    }
    let text = format!(
        "installed the agent-step-sequencer skill {} in {}",
        env!("CARGO_PKG_VERSION"),
        dir.display()
    );
    let json = json!({
        "dir": dir.display().to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "files": written,
    });
    Ok(Output::ok(text, json))
}
