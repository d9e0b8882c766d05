//! `seqctl events [--follow]`: the event log, one readable line per event (or the JSON lines
//! as they are, with `--json`).

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::report::text;
use crate::store::events;
use crate::store::follow;
use crate::store::layout;

pub fn run(path: &Path, follow: bool, json: bool, out: &mut dyn Write) -> Result<()> {
    let store = super::existing(path)?;
    let show = |line: &str, out: &mut dyn Write| -> std::io::Result<()> {
        if json {
            writeln!(out, "{line}")
        } else {
            writeln!(out, "{}", readable(&events::parse_line(line)))
        }
    };
    if !follow {
        for value in events::read(&store)? {
            let line = match &value {
                Value::String(raw) => raw.clone(),
                other => other.to_string(),
            };
            show(&line, out)?;
        }
        return Ok(());
    }
    // The older generation first, then the live file from its start, as it grows; never
    // through a link (see `store::safe`).
    let log = events::path(&store);
    let dir = store.sidecar_dir()?;
    let older = format!("{}.1", layout::EVENTS);
    if let Ok(bytes) = events::read_file(&dir, &older) {
        for line in String::from_utf8_lossy(&bytes).lines() {
            show(line, out)?;
        }
    }
    let mut partial = Vec::new();
    follow::follow(
        &log,
        &|| dir.read_own(layout::EVENTS),
        &mut |bytes| {
            partial.extend_from_slice(bytes);
            while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                show(String::from_utf8_lossy(&line).trim_end(), out)?;
            }
            out.flush()
        },
        &mut || true, // until interrupted
    )
}

/// `2026-03-01T10:00:00.000Z  runner[123]  step_finished  step=a attempt=1 status=DONE ...`
#[must_use]
pub fn readable(event: &Value) -> String {
    let Value::Object(fields) = event else {
        return format!("(not an event) {}", text::clip(&event.to_string(), 300));
    };
    let get = |key: &str| fields.get(key).map_or(String::new(), plain);
    let mut line = format!(
        "{}  {}[{}]  {}",
        get("ts"),
        get("by"),
        get("pid"),
        get("event")
    );
    for (key, value) in fields {
        if !["ts", "by", "pid", "event"].contains(&key.as_str()) && !value.is_null() {
            let _ = write!(line, " {key}={}", quoted(&text::clip(&plain(value), 300)));
        }
    }
    line
}

/// A value as logfmt writes it: bare if it is one plain word, else in double quotes, so
/// `error="exit code 3: no network"` reads as one value, not four.
fn quoted(text: &str) -> String {
    if !text.is_empty() && !text.contains(|c: char| c.is_whitespace() || "\"=\\".contains(c)) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_one_line_each() {
        let event = serde_json::json!({
            "ts": "2026-03-01T10:00:00.000Z", "by": "runner", "pid": 12, "event": "step_finished",
            "step": "a", "attempt": 1, "status": "FAILED", "error": "exit code 3:\nno network"
        });
        assert_eq!(
            readable(&event),
            "2026-03-01T10:00:00.000Z  runner[12]  step_finished step=a attempt=1 status=FAILED \
             error=\"exit code 3: no network\""
        );
        let event = serde_json::json!({"event": "retried", "note": r#"say "hi" \ go"#, "x": ""});
        assert!(
            readable(&event).ends_with(r#"note="say \"hi\" \\ go" x="""#),
            "{}",
            readable(&event)
        );
    }
}
