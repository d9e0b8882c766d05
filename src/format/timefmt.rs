//! Timestamps as state.json holds them: ISO 8601 text, read leniently, written one way.
//!
//! The Python version wrote `datetime.utcnow().isoformat()` (no offset) or an offset-carrying
//! form; agents write whatever they like. We read RFC 3339 and offset-less ISO 8601 (taken as
//! UTC), and write RFC 3339 in UTC with milliseconds and `Z`, which Python 3.11 reads back.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Parses an ISO 8601 timestamp; one without an offset is taken as UTC.
#[must_use]
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

#[must_use]
pub fn format(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form_the_python_version_and_agents_write() {
        for text in [
            "2026-02-07T12:00:00.123456+00:00",
            "2026-02-07T12:00:00.123456",
            "2026-02-07T12:00:00Z",
            "2026-02-07 12:00:00",
            "2026-02-07T14:00:00+02:00",
        ] {
            let t = parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                t.format("%Y-%m-%d %H").to_string(),
                "2026-02-07 12",
                "{text}"
            );
        }
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn writes_utc_with_millis_and_z() {
        let t = parse("2026-02-07T12:00:00.5+00:00").unwrap();
        assert_eq!(format(t), "2026-02-07T12:00:00.500Z");
        assert_eq!(parse(&format(t)), Some(t));
    }
}
