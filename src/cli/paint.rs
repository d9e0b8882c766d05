//! Colour for people at a terminal, never for programs: the words that say how things stand
//! (`blocked:`, `done:`, `warning`, `problem`, a step's status) are coloured on output that
//! goes to a terminal, unless `NO_COLOR` is set (or `TERM=dumb`); `CLICOLOR_FORCE` forces it.
//! Whether to colour is decided once, in `config`; this module only paints.
//!
//! Text is laid out first and painted after, word by word, so a table's columns stay aligned;
//! untrusted text was made printable before (see `format::text`), so no escape sequence but
//! ours reaches the terminal.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

/// Paints lines when `on`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paint {
    pub on: bool,
}

const BAD: Style = AnsiColor::Red.on_default().bold();
const GOOD: Style = AnsiColor::Green.on_default();
const WARN: Style = AnsiColor::Yellow.on_default();
const BUSY: Style = AnsiColor::Cyan.on_default();
const DIM: Style = Style::new().dimmed();

/// Words at the start of a line, and their colour.
const PREFIXES: &[(&str, Style)] = &[
    ("blocked:", BAD),
    ("failed:", BAD),
    ("problem", BAD),
    ("error:", BAD),
    ("done:", GOOD),
    ("ok ", GOOD),
    ("all good", GOOD),
    ("warning", WARN),
    ("paused:", WARN),
    ("started:", BUSY),
    ("in flight:", BUSY),
    ("waiting:", BUSY),
    ("next:", BUSY),
    ("no plan at", DIM),
    ("nothing to do:", DIM),
];

/// A step's or a plan's status, wherever it stands alone in a line (a table cell, a header).
const WORDS: &[(&str, Style)] = &[
    ("DONE", GOOD),
    ("FAILED", BAD),
    ("IN_PROGRESS", BUSY),
    ("SKIPPED", DIM),
    ("success:", GOOD),
    ("blocked:", BAD),
    ("running:", BUSY),
    ("waiting:", BUSY),
    ("paused:", WARN),
];

impl Paint {
    /// `text` with its status words coloured, if painting is on.
    #[must_use]
    pub fn text(self, text: &str) -> String {
        if !self.on {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len() + 32);
        for line in text.split_inclusive('\n') {
            out.push_str(&paint_line(line));
        }
        out
    }
}

fn paint_line(line: &str) -> String {
    if let Some((prefix, style)) = PREFIXES.iter().find(|(p, _)| line.starts_with(p)) {
        let word = prefix.trim_end();
        return format!("{style}{word}{style:#}{}", &line[word.len()..]);
    }
    let mut out = String::with_capacity(line.len() + 16);
    let mut first = true;
    for word in line.split(' ') {
        if !first {
            out.push(' ');
        }
        first = false;
        match WORDS.iter().find(|(w, _)| word == *w) {
            Some((_, style)) => {
                let _ = write!(out, "{style}{word}{style:#}");
            }
            None => out.push_str(word),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_is_the_text_as_it_is_and_on_colours_only_the_status_words() {
        let text = "plan blocked: 0/2 done\n>  a  DONE  1\nblocked: a: max retries\n";
        assert_eq!(Paint { on: false }.text(text), text);
        let painted = Paint { on: true }.text(text);
        assert_eq!(
            painted,
            "plan \u{1b}[1m\u{1b}[31mblocked:\u{1b}[0m 0/2 done\n>  a  \u{1b}[32mDONE\u{1b}[0m  1\n\
             \u{1b}[1m\u{1b}[31mblocked:\u{1b}[0m a: max retries\n"
        );
        // Without its escapes it is the same text: columns stay where they were.
        let plain: String = painted
            .split('\u{1b}')
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part
                } else {
                    &part[part.find('m').unwrap() + 1..]
                }
            })
            .collect();
        assert_eq!(plain, text);
    }
}
