//! The commands README.md and skill/SKILL.md tell a reader to run, read from the files
//! themselves: the test runs what the docs say, word for word (placeholders filled in), so a
//! doc that drifts from the real CLI fails here.

use std::fs;
use std::path::Path;

/// The commands of one section of a Markdown file.
pub struct DocCommands {
    source: String,
    /// The lines of its `sh` blocks: what a reader pastes.
    blocks: Vec<String>,
    /// Its inline code spans: commands mentioned in the prose.
    spans: Vec<String>,
}

impl DocCommands {
    /// The commands in the section whose heading contains `heading` (up to the next heading of
    /// the same or a higher level): the lines of its `sh` blocks (continuations joined, trailing
    /// `  # comments` dropped) and its inline code spans.
    pub fn read(file: &str, heading: &str) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let section = section(&text, heading)
            .unwrap_or_else(|| panic!("{file} has no section headed {heading:?}"));
        Self {
            source: format!("{file}, section {heading:?}"),
            blocks: block_lines(section),
            spans: inline_spans(section),
        }
    }

    /// The one command of the `sh` blocks that starts with `prefix`, else the one of the prose.
    pub fn find(&self, prefix: &str) -> String {
        let starting = |commands: &[String]| -> Vec<String> {
            commands
                .iter()
                .filter(|c| c.starts_with(prefix))
                .cloned()
                .collect()
        };
        let mut found = starting(&self.blocks);
        if found.is_empty() {
            found = starting(&self.spans);
        }
        assert!(
            found.len() == 1 || found.windows(2).all(|w| w[0] == w[1]),
            "{} has {} different commands starting with {prefix:?}: {found:#?}",
            self.source,
            found.len()
        );
        found.pop().unwrap_or_else(|| {
            panic!(
                "{} has no command starting with {prefix:?}; it has: {:#?}",
                self.source,
                [&self.blocks[..], &self.spans[..]].concat()
            )
        })
    }
}

fn section<'a>(text: &'a str, heading: &str) -> Option<&'a str> {
    let level = |line: &str| line.chars().take_while(|&c| c == '#').count();
    let mut offset = 0;
    let mut start = None;
    for line in text.split_inclusive('\n') {
        let depth = level(line);
        if depth > 0 && line[depth..].starts_with(' ') {
            match start {
                None if line.contains(heading) => start = Some((offset + line.len(), depth)),
                Some((from, at)) if depth <= at => return Some(&text[from..offset]),
                _ => {}
            }
        }
        offset += line.len();
    }
    start.map(|(from, _)| &text[from..])
}

fn block_lines(section: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in section.lines() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            in_sh = !in_sh && lang == "sh";
            continue;
        }
        if !in_sh || trimmed.is_empty() {
            continue;
        }
        let code = trimmed
            .split_once("  #")
            .map_or(trimmed, |(code, _)| code)
            .trim_end();
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
        } else {
            pending.push_str(code);
            commands.push(std::mem::take(&mut pending));
        }
    }
    commands
}

fn inline_spans(section: &str) -> Vec<String> {
    // Prose without its code blocks, as one line: a span may wrap across lines.
    let mut prose = String::new();
    let mut in_block = false;
    for line in section.lines() {
        if line.trim().starts_with("```") {
            in_block = !in_block;
        } else if !in_block {
            prose.push_str(line.trim());
            prose.push(' ');
        }
    }
    prose
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}
