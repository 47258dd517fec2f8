//! Report renderers: a scan's roll-up and evaluations as CSV, JSON, OSCAL assessment-results
//! (OSCAL 1.1.2), SARIF 2.1.0 (for `palisade scan --format sarif` in CI) and PDF (cargo
//! feature `pdf`, on by default).
//!
//! Every renderer takes a [`ReportData`] (what the report is about: [`ReportMeta`], the
//! [`Rollup`](palisade_posture::Rollup) and optionally the
//! [`ReportDrift`](palisade_posture::ReportDrift) since the previous report) and the
//! evaluations as an iterator, so a server can stream them from its store instead of loading a
//! scan of 100,000 resources at once. CSV writes row by row; the other formats build one
//! document.
//!
//! Hand-written parts and why: OSCAL and SARIF are written as `serde_json` values — the subset
//! we emit is small, and the model crates for both (`oscal`, `serde-sarif`) bring far more
//! types than we fill. The PDF layout (lines and table rows on A4 pages) is ours on top of
//! `printpdf`, which embeds the DejaVu Sans font (subset) so text stays extractable and
//! non-ASCII names render.

pub mod csv;
pub mod json;
pub mod oscal;
#[cfg(feature = "pdf")]
pub mod pdf;
pub mod sarif;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use palisade_posture::rollup::{ResourceWithStats, RuleWithStats};
use palisade_posture::{ReportDrift, Rollup};
use serde::{Deserialize, Serialize};

/// Which report this is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportMeta {
    /// The report id.
    pub report_id: String,
    /// `ondemand` or `scheduled`.
    pub report_type: String,
    /// When the report was created.
    pub created_on: DateTime<Utc>,
    /// When the scan ran.
    pub scan_time: DateTime<Utc>,
    /// The profile's id.
    pub profile_id: String,
    /// The profile's name.
    pub profile_name: String,
    /// The profile's version.
    pub profile_version: String,
    /// The attachment, when the scan ran on one (the offline CLI has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_id: Option<String>,
    /// The attachment's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_name: Option<String>,
    /// The instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

/// Everything a renderer needs besides the evaluations.
#[derive(Debug, Clone, Copy)]
pub struct ReportData<'a> {
    /// Which report.
    pub meta: &'a ReportMeta,
    /// The roll-ups.
    pub rollup: &'a Rollup,
    /// Changes since the previous report of the same attachment.
    pub drift: Option<&'a ReportDrift>,
}

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing to the output failed.
    #[error("cannot write the report: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV writer failed.
    #[error("cannot write the CSV report: {0}")]
    Csv(#[from] ::csv::Error),
    /// JSON encoding failed (a bug: every type here encodes).
    #[error("internal error (a bug): cannot encode the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Lookups renderers share: rule and resource by id.
pub(crate) struct Index<'a> {
    pub rules: HashMap<&'a str, &'a RuleWithStats>,
    pub resources: HashMap<&'a str, &'a ResourceWithStats>,
}

impl<'a> Index<'a> {
    pub fn new(rollup: &'a Rollup) -> Self {
        Index {
            rules: rollup
                .rules
                .iter()
                .map(|rule| (rule.rule_id.as_str(), rule))
                .collect(),
            resources: rollup
                .resources
                .iter()
                .map(|resource| (resource.id.as_str(), resource))
                .collect(),
        }
    }
}

/// Renders a JSON value compactly for a table cell (`null` when absent, strings unquoted).
pub(crate) fn cell(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => "null".into(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod testdata;
