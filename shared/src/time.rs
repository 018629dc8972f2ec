//! Timestamps: ISO 8601 UTC with milliseconds, as the API answers them.

use chrono::{DateTime, SecondsFormat, Utc};

/// The current time.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// `2025-01-15T10:30:00.000Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses what [`iso`] writes.
pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips_with_milliseconds() {
        let t = parse_iso("2025-01-15T10:30:00.123Z").unwrap();
        assert_eq!(iso(t), "2025-01-15T10:30:00.123Z");
    }
}
