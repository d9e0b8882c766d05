//! A `forEach` step's items: its source's text cut into one item per line, or per element of
//! a JSON array, within `maxItems`. Pure.

use std::fmt::Write as _;

use super::model::{Step, StepId};
use crate::format::schema::Split;

/// A `forEach` step's result as later steps see it: its items' results, one after another,
/// each under its item. `read` gives an item's own result.
pub fn joined(items: &[Step], read: &mut dyn FnMut(&StepId) -> Option<String>) -> String {
    let mut out = String::new();
    for item in items {
        let Some(of) = &item.item else { continue };
        let result = if item.run.status() == crate::format::schema::StepStatus::Done {
            read(&item.id).unwrap_or_default()
        } else {
            format!("({})", item.run.status().as_str())
        };
        let _ = writeln!(out, "[Item {}: {}]: {}", of.index, of.text(), result.trim());
    }
    out
}

/// The items of `text`: every non-blank line (trimmed), or every element of a JSON array (a
/// string as itself, anything else as its JSON). More than `max` is an error, not a cut: a
/// list cut short would look done.
pub fn split(text: &str, how: Split, max: u64) -> Result<Vec<String>, String> {
    let items: Vec<String> = match how {
        Split::Lines => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        Split::Json => {
            let value: serde_json::Value = serde_json::from_str(text.trim())
                .map_err(|e| format!("forEach: the source is not JSON ({e})"))?;
            let serde_json::Value::Array(elements) = value else {
                return Err("forEach: the source is JSON but not an array".into());
            };
            elements
                .into_iter()
                .map(|e| match e {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect()
        }
    };
    if items.len() as u64 > max {
        return Err(format!(
            "forEach: the source has {} items, more than maxItems ({max})",
            items.len()
        ));
    }
    // An item goes into a prompt, which no program argument can carry with a NUL in it.
    Ok(items
        .into_iter()
        .map(|i| i.replace('\0', "\u{FFFD}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_json_arrays_become_items_within_the_bound() {
        assert_eq!(
            split("a.md\n\n  b.md  \r\nc.md", Split::Lines, 10).unwrap(),
            ["a.md", "b.md", "c.md"]
        );
        assert_eq!(
            split(r#" ["x", 2, {"k":1}] "#, Split::Json, 10).unwrap(),
            ["x", "2", r#"{"k":1}"#]
        );
        assert!(split("", Split::Lines, 10).unwrap().is_empty());
        let e = split("a\nb\nc", Split::Lines, 2).unwrap_err();
        assert_eq!(e, "forEach: the source has 3 items, more than maxItems (2)");
        assert!(split("{}", Split::Json, 2)
            .unwrap_err()
            .contains("not an array"));
        assert!(split("nope", Split::Json, 2)
            .unwrap_err()
            .contains("not JSON"));
    }
}
