//! Severities shared by detections and findings.
//!
//! The four levels and their wire spelling (`LOW`, `MEDIUM`, `HIGH`, `CRITICAL`) are those of the
//! SCC Findings API, so an occurrence written by any Palisade engine reads the same as one written
//! by IBM's own providers.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How serious a finding is. Ordered from least to most severe, so `max()` picks the worst.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Worth a look; no action expected on its own.
    Low,
    /// Needs a human decision soon.
    Medium,
    /// Likely an attack or a compromise in progress.
    High,
    /// Act now.
    Critical,
}

impl Severity {
    /// Every level, from least to most severe.
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// Returns the level as it travels on the wire (`"HIGH"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_travels_in_screaming_case_and_orders_by_gravity() {
        for severity in Severity::ALL {
            let wire = serde_json::to_string(&severity).expect("serialises");
            assert_eq!(wire, format!("\"{}\"", severity.as_str()));
            let back: Severity = serde_json::from_str(&wire).expect("parses");
            assert_eq!(back, severity);
        }
        assert!(Severity::Low < Severity::Medium && Severity::High < Severity::Critical);
        assert_eq!(
            Severity::ALL.iter().copied().max(),
            Some(Severity::Critical)
        );
    }
}
