//! [`ReportStore`] for [`SqlStore`].

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, classify, corrupt};
use crate::reports::{EvaluationFilter, EvaluationRow, ReportStore, ReportSummary, StoredReport};
use crate::time::{format_timestamp, parse_timestamp};
use crate::{StoreError, StoreResult};

/// Rows per multi-row INSERT: 6 binds each, well under both backends' bind limits.
const ROWS_PER_STATEMENT: usize = 150;

fn json_of(text: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn report_from_row(row: &AnyRow) -> StoreResult<StoredReport> {
    Ok(StoredReport {
        id: row.try_get("id").map_err(corrupt)?,
        attachment_id: row.try_get("attachment_id").map_err(corrupt)?,
        profile_id: row.try_get("profile_id").map_err(corrupt)?,
        scan_type: row.try_get("scan_type").map_err(corrupt)?,
        created_on: parse_timestamp(&row.try_get::<String, _>("created_on").map_err(corrupt)?)?,
        body: json_of(&row.try_get::<String, _>("body").map_err(corrupt)?)?,
    })
}

fn count(row: &AnyRow, column: &str) -> StoreResult<u64> {
    Ok(u64::try_from(row.try_get::<i64, _>(column).map_err(corrupt)?).unwrap_or(0))
}

fn summary_from_row(row: &AnyRow) -> StoreResult<ReportSummary> {
    Ok(ReportSummary {
        id: row.try_get("id").map_err(corrupt)?,
        attachment_id: row.try_get("attachment_id").map_err(corrupt)?,
        profile_id: row.try_get("profile_id").map_err(corrupt)?,
        scan_type: row.try_get("scan_type").map_err(corrupt)?,
        created_on: parse_timestamp(&row.try_get::<String, _>("created_on").map_err(corrupt)?)?,
        passed: count(row, "score_passed")?,
        scored: count(row, "score_total")?,
        controls_failing: count(row, "controls_failing")?,
        evaluations: count(row, "evaluation_count")?,
    })
}

/// The summary columns of a report, read from its roll-up (0 where the roll-up lacks one).
fn summary_columns(body: &serde_json::Value) -> [i64; 4] {
    let rollup = &body["rollup"];
    [
        &rollup["score"]["passed"],
        &rollup["score"]["total_count"],
        &rollup["controls_summary"]["stats"]["not_compliant_count"],
        &rollup["evaluations_summary"]["total_count"],
    ]
    .map(|value| value.as_i64().unwrap_or(0))
}

/// The filter's conditions after `instance_id = $1 AND report_id = $2`, with their binds.
fn filter_sql(filter: &EvaluationFilter, with_page: bool) -> (String, Vec<String>) {
    let mut conditions = String::new();
    let mut binds = Vec::new();
    for (column, value) in [
        ("status", &filter.status),
        ("rule_id", &filter.rule_id),
        ("resource_id", &filter.resource_id),
    ] {
        if let Some(value) = value {
            binds.push(value.clone());
            conditions.push_str(&format!(" AND {column} = ${}", binds.len() + 2));
        }
    }
    if with_page && let Some((rule_id, resource_id)) = &filter.after {
        binds.push(rule_id.clone());
        binds.push(resource_id.clone());
        let (rule, resource) = (binds.len() + 1, binds.len() + 2);
        // A row-value comparison, not `rule_id > r OR (rule_id = r AND …)`: SQLite seeks into
        // the primary-key index only for the former (a later page of 100,000 evaluations took
        // half a second with the OR form).
        conditions.push_str(&format!(
            " AND (rule_id, resource_id) > (${rule}, ${resource})"
        ));
    }
    (conditions, binds)
}

const REPORT_COLUMNS: &str = "id, attachment_id, profile_id, scan_type, created_on, body";
const SUMMARY_COLUMNS: &str = "id, attachment_id, profile_id, scan_type, created_on, \
     score_passed, score_total, controls_failing, evaluation_count";

impl SqlStore {
    /// An instance's newest reports (of one attachment, or all), newest first, with `columns`.
    async fn newest_reports(
        &self,
        columns: &str,
        instance_id: &str,
        attachment_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AnyRow>> {
        let rows = match attachment_id {
            Some(attachment_id) => {
                sqlx::query(self.sql(&format!(
                    "SELECT {columns} FROM reports WHERE instance_id = $1 AND attachment_id = $2 \
                     ORDER BY created_on DESC, id LIMIT $3"
                )))
                .bind(instance_id)
                .bind(attachment_id)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(self.sql(&format!(
                    "SELECT {columns} FROM reports WHERE instance_id = $1 ORDER BY created_on DESC, id LIMIT $2"
                )))
                .bind(instance_id)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
        };
        Ok(rows)
    }
    /// Stores (or replaces) a report on a connection (or inside a transaction).
    pub(super) async fn write_report(
        &self,
        connection: &mut sqlx::AnyConnection,
        instance_id: &str,
        report: &StoredReport,
    ) -> StoreResult<()> {
        let [passed, scored, controls_failing, evaluations] = summary_columns(&report.body);
        sqlx::query(self.sql(&format!(
            "INSERT INTO reports (instance_id, {REPORT_COLUMNS}, score_passed, score_total, controls_failing, evaluation_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (instance_id, id) DO UPDATE SET body = excluded.body, \
             score_passed = excluded.score_passed, score_total = excluded.score_total, \
             controls_failing = excluded.controls_failing, evaluation_count = excluded.evaluation_count"
        )))
        .bind(instance_id)
        .bind(&report.id)
        .bind(&report.attachment_id)
        .bind(&report.profile_id)
        .bind(&report.scan_type)
        .bind(format_timestamp(report.created_on))
        .bind(report.body.to_string())
        .bind(passed)
        .bind(scored)
        .bind(controls_failing)
        .bind(evaluations)
        .execute(&mut *connection)
        .await
        .map_err(|error| classify(error, &format!("report {}", report.id)))?;
        Ok(())
    }

    /// Inserts evaluations of a report on a connection (or inside a transaction); a row
    /// already there is kept.
    pub(super) async fn write_evaluations(
        &self,
        connection: &mut sqlx::AnyConnection,
        instance_id: &str,
        report_id: &str,
        rows: &[EvaluationRow],
    ) -> StoreResult<()> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let base = row * 6;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${})",
                        base + 1,
                        base + 2,
                        base + 3,
                        base + 4,
                        base + 5,
                        base + 6
                    )
                })
                .collect();
            let statement = self.sql(&format!(
                "INSERT INTO evaluations (instance_id, report_id, rule_id, resource_id, status, body) VALUES {} \
                 ON CONFLICT (instance_id, report_id, rule_id, resource_id) DO NOTHING",
                values.join(", ")
            ));
            let mut query = sqlx::query(statement);
            for row in chunk {
                query = query
                    .bind(instance_id)
                    .bind(report_id)
                    .bind(row.rule_id.clone())
                    .bind(row.resource_id.clone())
                    .bind(row.status.clone())
                    .bind(row.body.to_string());
            }
            query.execute(&mut *connection).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ReportStore for SqlStore {
    async fn put_report(&self, instance_id: &str, report: &StoredReport) -> StoreResult<()> {
        let mut connection = self.pool().acquire().await?;
        self.write_report(&mut connection, instance_id, report)
            .await
    }

    async fn get_report(
        &self,
        instance_id: &str,
        report_id: &str,
    ) -> StoreResult<Option<StoredReport>> {
        sqlx::query(self.sql(&format!(
            "SELECT {REPORT_COLUMNS} FROM reports WHERE instance_id = $1 AND id = $2"
        )))
        .bind(instance_id)
        .bind(report_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(report_from_row)
        .transpose()
    }

    async fn list_reports(
        &self,
        instance_id: &str,
        attachment_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<StoredReport>> {
        let rows = self
            .newest_reports(REPORT_COLUMNS, instance_id, attachment_id, limit)
            .await?;
        rows.iter().map(report_from_row).collect()
    }

    async fn list_report_summaries(
        &self,
        instance_id: &str,
        attachment_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ReportSummary>> {
        // The same order and index as `list_reports`, without reading the roll-ups.
        let rows = self
            .newest_reports(SUMMARY_COLUMNS, instance_id, attachment_id, limit)
            .await?;
        rows.iter().map(summary_from_row).collect()
    }

    async fn insert_evaluations(
        &self,
        instance_id: &str,
        report_id: &str,
        rows: &[EvaluationRow],
    ) -> StoreResult<()> {
        let mut transaction = self.pool().begin().await?;
        self.write_evaluations(&mut transaction, instance_id, report_id, rows)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn list_evaluations(
        &self,
        instance_id: &str,
        report_id: &str,
        filter: &EvaluationFilter,
    ) -> StoreResult<Vec<EvaluationRow>> {
        let (conditions, binds) = filter_sql(filter, true);
        let limit = i64::from(filter.limit.unwrap_or(100).min(100_000));
        let statement = self.sql(&format!(
            "SELECT rule_id, resource_id, status, body FROM evaluations WHERE instance_id = $1 AND report_id = $2{conditions} \
             ORDER BY rule_id, resource_id LIMIT ${}",
            binds.len() + 3
        ));
        let mut query = sqlx::query(statement).bind(instance_id).bind(report_id);
        for value in &binds {
            query = query.bind(value.clone());
        }
        query
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok(EvaluationRow {
                    rule_id: row.try_get("rule_id").map_err(corrupt)?,
                    resource_id: row.try_get("resource_id").map_err(corrupt)?,
                    status: row.try_get("status").map_err(corrupt)?,
                    body: json_of(&row.try_get::<String, _>("body").map_err(corrupt)?)?,
                })
            })
            .collect()
    }

    async fn count_evaluations(
        &self,
        instance_id: &str,
        report_id: &str,
        filter: &EvaluationFilter,
    ) -> StoreResult<u64> {
        let (conditions, binds) = filter_sql(filter, false);
        let statement = self.sql(&format!(
            "SELECT COUNT(*) FROM evaluations WHERE instance_id = $1 AND report_id = $2{conditions}"
        ));
        let mut query = sqlx::query(statement).bind(instance_id).bind(report_id);
        for value in &binds {
            query = query.bind(value.clone());
        }
        let count: i64 = query
            .fetch_one(self.pool())
            .await?
            .try_get(0)
            .map_err(corrupt)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
