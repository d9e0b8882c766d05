//! Small formatting helpers for what people read: durations, times, and untrusted text made
//! safe for a terminal and short enough for a table.

use chrono::{DateTime, Utc};

/// A duration as a person says it: `0.4s`, `12s`, `3m 05s`, `2h 07m`, `3d 04h`.
#[must_use]
pub fn duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..10 => format!("{:.1}s", ms as f64 / 1000.0),
        10..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The time from `from` to `to` (zero if negative), for durations.
#[must_use]
pub fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    (to - from).num_milliseconds().max(0) as u64
}

/// `in 1m 30s` or `3m 12s ago`, relative to `now`.
#[must_use]
pub fn relative(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if time > now {
        format!("in {}", duration_ms(between(now, time)))
    } else {
        format!("{} ago", duration_ms(between(time, now)))
    }
}

/// A time for a table: `2026-03-01 09:00:00Z` (UTC, whole seconds).
#[must_use]
pub fn short_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Untrusted text for one line of a terminal: control characters (escape sequences, newlines)
/// become spaces, and text past `max` characters is cut with an ellipsis.
#[must_use]
pub fn clip(text: &str, max: usize) -> String {
    let clean: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= max {
        clean
    } else {
        clean
            .chars()
            .take(max.saturating_sub(1))
            .collect::<String>()
            + "…"
    }
}

/// Lays out rows as left-aligned columns two spaces apart, trailing spaces trimmed.
#[must_use]
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_ms(400), "0.4s");
        assert_eq!(duration_ms(12_000), "12s");
        assert_eq!(duration_ms(185_000), "3m 05s");
        assert_eq!(duration_ms(7_620_000), "2h 07m");
        assert_eq!(duration_ms(3 * 86_400_000 + 4 * 3_600_000), "3d 04h");
    }

    #[test]
    fn clip_makes_text_safe_and_short() {
        assert_eq!(clip("a\x1b[2Jb\nc", 20), "a [2Jb c");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("  abc ", 4), "abc");
    }

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["long".into(), "x".into(), String::new()],
        ];
        assert_eq!(table(&rows), "A     BB  C\nlong  x\n");
    }
}
