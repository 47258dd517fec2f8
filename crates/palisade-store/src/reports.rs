//! Posture reports and their evaluations.
//!
//! A report's roll-up (controls, resources, score) is one JSON body; evaluations — one per
//! (rule, resource) of a scan, possibly millions — are rows keyed by (report, rule, resource),
//! written in batches as the scan goes and listed with filters and keyset pagination.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreResult;

/// A stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    pub id: String,
    pub attachment_id: String,
    pub profile_id: String,
    /// `ondemand` or `scheduled`.
    pub scan_type: String,
    pub created_on: DateTime<Utc>,
    pub body: serde_json::Value,
}

/// What a listing of reports shows: a report without its roll-up. The counts are copied out of
/// the roll-up (`rollup.score`, `rollup.controls_summary.stats`, `rollup.evaluations_summary`)
/// into columns when the report is stored, so a listing never reads whole roll-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSummary {
    pub id: String,
    pub attachment_id: String,
    pub profile_id: String,
    /// `ondemand` or `scheduled`.
    pub scan_type: String,
    pub created_on: DateTime<Utc>,
    /// Passed evaluations (the score's numerator).
    pub passed: u64,
    /// Passed, failed and errored evaluations (the score's denominator).
    pub scored: u64,
    /// Controls not compliant.
    pub controls_failing: u64,
    /// Every evaluation of the report, skipped ones included.
    pub evaluations: u64,
}

impl ReportSummary {
    /// The exact compliance score in percent, `None` when nothing was scored.
    pub fn score_percent(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.passed as f64 * 100.0 / self.scored as f64)
    }
}

/// One evaluation row.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationRow {
    pub rule_id: String,
    pub resource_id: String,
    /// `pass`, `failure`, `error` or `skipped`.
    pub status: String,
    pub body: serde_json::Value,
}

/// Which evaluations of a report to list; `after` is the last (rule, resource) of the
/// previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluationFilter {
    pub status: Option<String>,
    pub rule_id: Option<String>,
    pub resource_id: Option<String>,
    pub after: Option<(String, String)>,
    pub limit: Option<u32>,
}

/// Reports and evaluations of an instance.
#[async_trait]
pub trait ReportStore {
    /// Stores (or replaces) a report.
    async fn put_report(&self, instance_id: &str, report: &StoredReport) -> StoreResult<()>;
    /// Returns one report.
    async fn get_report(
        &self,
        instance_id: &str,
        report_id: &str,
    ) -> StoreResult<Option<StoredReport>>;
    /// Lists reports, newest first, optionally of one attachment.
    async fn list_reports(
        &self,
        instance_id: &str,
        attachment_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<StoredReport>>;
    /// Lists reports without their roll-ups, newest first, optionally of one attachment.
    async fn list_report_summaries(
        &self,
        instance_id: &str,
        attachment_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ReportSummary>>;
    /// Stores a batch of evaluations of a report in one transaction.
    async fn insert_evaluations(
        &self,
        instance_id: &str,
        report_id: &str,
        rows: &[EvaluationRow],
    ) -> StoreResult<()>;
    /// Lists evaluations in (rule, resource) order.
    async fn list_evaluations(
        &self,
        instance_id: &str,
        report_id: &str,
        filter: &EvaluationFilter,
    ) -> StoreResult<Vec<EvaluationRow>>;
    /// Counts evaluations matching the filter (ignoring `after` and `limit`).
    async fn count_evaluations(
        &self,
        instance_id: &str,
        report_id: &str,
        filter: &EvaluationFilter,
    ) -> StoreResult<u64>;
}
