//! Timestamps as stored: fixed-width RFC 3339 in UTC with microseconds, so that text order is
//! time order in both backends.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::StoreError;

/// Formats a timestamp for storage (`2026-11-28T23:13:51.123456Z`).
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a stored timestamp.
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| StoreError::Corrupt(format!("timestamp `{text}`: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_timestamps_round_trip_and_sort_as_text() {
        let early = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.5Z")
            .expect("valid")
            .with_timezone(&Utc);
        let late = early + chrono::Duration::microseconds(1);
        let (early_text, late_text) = (format_timestamp(early), format_timestamp(late));
        assert_eq!(early_text, "2026-01-02T03:04:05.500000Z");
        assert!(early_text < late_text);
        assert_eq!(parse_timestamp(&early_text).expect("parse"), early);
    }
}
