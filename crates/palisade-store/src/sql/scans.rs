//! [`ScanStore`] for [`SqlStore`].

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, classify, corrupt, text};
use crate::reports::{EvaluationRow, StoredReport};
use crate::scans::{ScanRun, ScanShard, ScanStore, ShardRef};
use crate::time::{format_timestamp, parse_timestamp};
use crate::{StoreError, StoreResult};

const RUN_COLUMNS: &str =
    "instance_id, report_id, attachment_id, scan_type, started_at, status, shards, input, reason";

fn json_of(text: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn number(row: &AnyRow, column: &str) -> StoreResult<u32> {
    let value: i64 = row.try_get(column).map_err(corrupt)?;
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} out of range: {value}")))
}

fn run_from_row(row: &AnyRow) -> StoreResult<ScanRun> {
    Ok(ScanRun {
        instance_id: text(row, "instance_id")?,
        report_id: text(row, "report_id")?,
        attachment_id: text(row, "attachment_id")?,
        scan_type: text(row, "scan_type")?,
        started_at: parse_timestamp(&text(row, "started_at")?)?,
        status: text(row, "status")?,
        shards: number(row, "shards")?,
        input: json_of(&text(row, "input")?)?,
        reason: row.try_get("reason").map_err(corrupt)?,
    })
}

#[async_trait]
impl ScanStore for SqlStore {
    async fn create_scan_run(&self, run: &ScanRun, shards: &[ScanShard]) -> StoreResult<()> {
        let mut transaction = self.pool().begin().await?;
        sqlx::query(self.sql(&format!(
            "INSERT INTO scan_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(&run.instance_id)
        .bind(&run.report_id)
        .bind(&run.attachment_id)
        .bind(&run.scan_type)
        .bind(format_timestamp(run.started_at))
        .bind(&run.status)
        .bind(i64::from(run.shards))
        .bind(run.input.to_string())
        .bind(run.reason.clone())
        .execute(&mut *transaction)
        .await
        .map_err(|error| classify(error, &format!("scan run {}", run.report_id)))?;
        for shard in shards {
            sqlx::query(self.sql(
                "INSERT INTO scan_shards (instance_id, report_id, shard, service_name, resource_kind, \
                 after_id, until_id, status, partial) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', NULL)",
            ))
            .bind(&run.instance_id)
            .bind(&run.report_id)
            .bind(i64::from(shard.shard))
            .bind(&shard.service_name)
            .bind(&shard.resource_kind)
            .bind(shard.after_id.clone())
            .bind(shard.until_id.clone())
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn get_scan_run(
        &self,
        instance_id: &str,
        report_id: &str,
    ) -> StoreResult<Option<ScanRun>> {
        sqlx::query(self.sql(&format!(
            "SELECT {RUN_COLUMNS} FROM scan_runs WHERE instance_id = $1 AND report_id = $2"
        )))
        .bind(instance_id)
        .bind(report_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(run_from_row)
        .transpose()
    }

    async fn running_scan_runs(&self, limit: u32) -> StoreResult<Vec<ScanRun>> {
        sqlx::query(self.sql(&format!(
            "SELECT {RUN_COLUMNS} FROM scan_runs WHERE status = 'running' \
             ORDER BY started_at, instance_id, report_id LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(run_from_row)
        .collect()
    }

    async fn pending_scan_shards(&self, limit: u32) -> StoreResult<Vec<ShardRef>> {
        sqlx::query(self.sql(
            "SELECT s.instance_id, s.report_id, s.shard FROM scan_shards s \
             JOIN scan_runs r ON r.instance_id = s.instance_id AND r.report_id = s.report_id \
             WHERE s.status = 'pending' AND r.status = 'running' \
             ORDER BY r.started_at, s.instance_id, s.report_id, s.shard LIMIT $1",
        ))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(ShardRef {
                instance_id: text(row, "instance_id")?,
                report_id: text(row, "report_id")?,
                shard: number(row, "shard")?,
            })
        })
        .collect()
    }

    async fn pending_shards_of_run(
        &self,
        instance_id: &str,
        report_id: &str,
    ) -> StoreResult<Vec<u32>> {
        sqlx::query(self.sql(
            "SELECT shard FROM scan_shards WHERE instance_id = $1 AND report_id = $2 \
             AND status = 'pending' ORDER BY shard",
        ))
        .bind(instance_id)
        .bind(report_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| number(row, "shard"))
        .collect()
    }

    async fn get_scan_shard(
        &self,
        instance_id: &str,
        report_id: &str,
        shard: u32,
    ) -> StoreResult<Option<(ScanShard, bool)>> {
        sqlx::query(self.sql(
            "SELECT shard, service_name, resource_kind, after_id, until_id, status FROM scan_shards \
             WHERE instance_id = $1 AND report_id = $2 AND shard = $3",
        ))
        .bind(instance_id)
        .bind(report_id)
        .bind(i64::from(shard))
        .fetch_optional(self.pool())
        .await?
        .map(|row| {
            Ok((
                ScanShard {
                    shard: number(&row, "shard")?,
                    service_name: text(&row, "service_name")?,
                    resource_kind: text(&row, "resource_kind")?,
                    after_id: row.try_get("after_id").map_err(corrupt)?,
                    until_id: row.try_get("until_id").map_err(corrupt)?,
                },
                text(&row, "status")? == "done",
            ))
        })
        .transpose()
    }

    async fn complete_scan_shard(
        &self,
        instance_id: &str,
        report_id: &str,
        shard: u32,
        evaluations: &[EvaluationRow],
        partial: &serde_json::Value,
    ) -> StoreResult<bool> {
        let mut transaction = self.pool().begin().await?;
        // The mark first: a second worker finishing the same shard blocks here until the first
        // commits, then updates nothing and writes nothing.
        let marked = sqlx::query(self.sql(
            "UPDATE scan_shards SET status = 'done', partial = $4 \
             WHERE instance_id = $1 AND report_id = $2 AND shard = $3 AND status = 'pending'",
        ))
        .bind(instance_id)
        .bind(report_id)
        .bind(i64::from(shard))
        .bind(partial.to_string())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if marked == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        self.write_evaluations(&mut transaction, instance_id, report_id, evaluations)
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn scan_shard_partials(
        &self,
        instance_id: &str,
        report_id: &str,
    ) -> StoreResult<Vec<(u32, Option<serde_json::Value>)>> {
        sqlx::query(self.sql(
            "SELECT shard, status, partial FROM scan_shards WHERE instance_id = $1 AND report_id = $2 \
             ORDER BY shard",
        ))
        .bind(instance_id)
        .bind(report_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            let partial = if text(row, "status")? == "done" {
                let partial: Option<String> = row.try_get("partial").map_err(corrupt)?;
                Some(json_of(partial.as_deref().unwrap_or("null"))?)
            } else {
                None
            };
            Ok((number(row, "shard")?, partial))
        })
        .collect()
    }

    async fn finish_scan_run(&self, instance_id: &str, report: &StoredReport) -> StoreResult<bool> {
        let mut transaction = self.pool().begin().await?;
        let marked = sqlx::query(self.sql(
            "UPDATE scan_runs SET status = 'assembled', input = '{}' \
             WHERE instance_id = $1 AND report_id = $2 AND status = 'running'",
        ))
        .bind(instance_id)
        .bind(&report.id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if marked == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        self.write_report(&mut transaction, instance_id, report)
            .await?;
        sqlx::query(self.sql("DELETE FROM scan_shards WHERE instance_id = $1 AND report_id = $2"))
            .bind(instance_id)
            .bind(&report.id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn abandon_scan_run(
        &self,
        instance_id: &str,
        report_id: &str,
        reason: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.pool().begin().await?;
        sqlx::query(self.sql(
            "UPDATE scan_runs SET status = 'abandoned', input = '{}', reason = $3 \
             WHERE instance_id = $1 AND report_id = $2 AND status = 'running'",
        ))
        .bind(instance_id)
        .bind(report_id)
        .bind(reason)
        .execute(&mut *transaction)
        .await?;
        for table in ["scan_shards", "evaluations"] {
            sqlx::query(self.sql(&format!(
                "DELETE FROM {table} WHERE instance_id = $1 AND report_id = $2"
            )))
            .bind(instance_id)
            .bind(report_id)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}
