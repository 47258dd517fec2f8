//! [`InsightsStore`] for [`SqlStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, classify, corrupt, optional_timestamp, text};
use crate::findings::RecordOutcome;
use crate::insights::{BatchCompletion, BatchStatus, IngestBatch, InsightsStore, StoredFeed};
use crate::time::{format_timestamp, parse_timestamp};
use crate::{StoreError, StoreResult};

const BATCH_COLUMNS: &str = "instance_id, id, stream, source, submitted_by, received_at, status, \
     records, rejected, options, findings, error, processed_at";
const FEED_COLUMNS: &str = "name, spec, entries, rejected, updated_at";

fn json_column(row: &AnyRow, column: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(&text(row, column)?)
        .map_err(|error| StoreError::Corrupt(format!("{column}: {error}")))
}

fn batch_from_row(row: &AnyRow) -> StoreResult<IngestBatch> {
    Ok(IngestBatch {
        instance_id: text(row, "instance_id")?,
        id: text(row, "id")?,
        stream: text(row, "stream")?,
        source: text(row, "source")?,
        submitted_by: text(row, "submitted_by")?,
        received_at: parse_timestamp(&text(row, "received_at")?)?,
        status: text(row, "status")?.parse().map_err(StoreError::Corrupt)?,
        records: row.try_get("records").map_err(corrupt)?,
        rejected: row.try_get("rejected").map_err(corrupt)?,
        options: json_column(row, "options")?,
        findings: row.try_get("findings").map_err(corrupt)?,
        error: row.try_get("error").map_err(corrupt)?,
        processed_at: optional_timestamp(row, "processed_at")?,
    })
}

fn feed_from_row(row: &AnyRow) -> StoreResult<StoredFeed> {
    Ok(StoredFeed {
        name: text(row, "name")?,
        spec: json_column(row, "spec")?,
        entries: row.try_get("entries").map_err(corrupt)?,
        rejected: row.try_get("rejected").map_err(corrupt)?,
        updated_at: parse_timestamp(&text(row, "updated_at")?)?,
    })
}

#[async_trait]
impl InsightsStore for SqlStore {
    async fn enqueue_batch(&self, batch: &IngestBatch, payload: &str) -> StoreResult<()> {
        sqlx::query(self.sql(&format!(
            "INSERT INTO ingest_batches ({BATCH_COLUMNS}, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(&batch.instance_id)
        .bind(&batch.id)
        .bind(&batch.stream)
        .bind(&batch.source)
        .bind(&batch.submitted_by)
        .bind(format_timestamp(batch.received_at))
        .bind(batch.status.as_str())
        .bind(batch.records)
        .bind(batch.rejected)
        .bind(batch.options.to_string())
        .bind(batch.findings)
        .bind(batch.error.clone())
        .bind(batch.processed_at.map(format_timestamp))
        .bind(payload)
        .execute(self.pool())
        .await
        .map_err(|error| classify(error, &format!("batch {}", batch.id)))?;
        Ok(())
    }

    async fn get_batch(
        &self,
        instance_id: &str,
        batch_id: &str,
    ) -> StoreResult<Option<IngestBatch>> {
        sqlx::query(self.sql(&format!(
            "SELECT {BATCH_COLUMNS} FROM ingest_batches WHERE instance_id = $1 AND id = $2"
        )))
        .bind(instance_id)
        .bind(batch_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(batch_from_row)
        .transpose()
    }

    async fn list_batches(
        &self,
        instance_id: &str,
        stream: &str,
        limit: u32,
    ) -> StoreResult<Vec<IngestBatch>> {
        sqlx::query(self.sql(&format!(
            "SELECT {BATCH_COLUMNS} FROM ingest_batches WHERE instance_id = $1 AND stream = $2 \
             ORDER BY received_at DESC, id DESC LIMIT $3"
        )))
        .bind(instance_id)
        .bind(stream)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(batch_from_row)
        .collect()
    }

    async fn pending_batches(&self, stream: &str, limit: u32) -> StoreResult<Vec<IngestBatch>> {
        sqlx::query(self.sql(&format!(
            "SELECT {BATCH_COLUMNS} FROM ingest_batches WHERE status = 'pending' AND stream = $1 \
             AND payload IS NOT NULL ORDER BY received_at, id LIMIT $2"
        )))
        .bind(stream)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(batch_from_row)
        .collect()
    }

    async fn batch_payload(
        &self,
        instance_id: &str,
        batch_id: &str,
    ) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            self.sql("SELECT payload FROM ingest_batches WHERE instance_id = $1 AND id = $2"),
        )
        .bind(instance_id)
        .bind(batch_id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => row.try_get::<Option<String>, _>("payload").map_err(corrupt),
            None => Ok(None),
        }
    }

    async fn note_batch(&self, batch: &IngestBatch) -> StoreResult<()> {
        sqlx::query(self.sql(&format!(
            "INSERT INTO ingest_batches ({BATCH_COLUMNS}, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL) \
             ON CONFLICT (instance_id, id) DO NOTHING"
        )))
        .bind(&batch.instance_id)
        .bind(&batch.id)
        .bind(&batch.stream)
        .bind(&batch.source)
        .bind(&batch.submitted_by)
        .bind(format_timestamp(batch.received_at))
        .bind(BatchStatus::Pending.as_str())
        .bind(batch.records)
        .bind(batch.rejected)
        .bind(batch.options.to_string())
        .bind(0_i64)
        .bind(None::<String>)
        .bind(None::<String>)
        .execute(self.pool())
        .await
        .map_err(|error| classify(error, &format!("batch {}", batch.id)))?;
        Ok(())
    }

    async fn complete_batch(
        &self,
        batch: &IngestBatch,
        completion: BatchCompletion<'_>,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<RecordOutcome>>> {
        let mut transaction = self.pool.begin().await?;
        // Claiming the batch id is one statement: it inserts the row as processed (a batch that
        // came over the bus) or flips a pending one, and returns nothing when the batch was
        // completed before. Of two workers completing the same batch exactly one sees a row;
        // the other writes nothing.
        let claimed = sqlx::query(self.sql(&format!(
            "INSERT INTO ingest_batches ({BATCH_COLUMNS}, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, 'processed', $7, $8, $9, $10, NULL, $11, NULL) \
             ON CONFLICT (instance_id, id) DO UPDATE SET status = 'processed', payload = NULL, \
             findings = excluded.findings, processed_at = excluded.processed_at \
             WHERE ingest_batches.status = 'pending' RETURNING stream"
        )))
        .bind(&batch.instance_id)
        .bind(&batch.id)
        .bind(&batch.stream)
        .bind(&batch.source)
        .bind(&batch.submitted_by)
        .bind(format_timestamp(batch.received_at))
        .bind(batch.records)
        .bind(batch.rejected)
        .bind(batch.options.to_string())
        .bind(completion.findings)
        .bind(format_timestamp(at))
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(claimed) = claimed else {
            transaction.rollback().await?;
            return Ok(None);
        };
        let stream = text(&claimed, "stream")?;
        let outcomes = if completion.occurrences.is_empty() {
            Vec::new()
        } else {
            self.record_occurrences_in(
                &mut transaction,
                &batch.instance_id,
                completion.occurrences,
                at,
            )
            .await?
        };
        if let Some(snapshot) = completion.state_snapshot {
            sqlx::query(self.sql(
                "INSERT INTO insight_state (instance_id, stream, snapshot, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (instance_id, stream) DO UPDATE SET \
                 snapshot = excluded.snapshot, updated_at = excluded.updated_at",
            ))
            .bind(&batch.instance_id)
            .bind(&stream)
            .bind(snapshot)
            .bind(format_timestamp(at))
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(Some(outcomes))
    }

    async fn fail_batch(
        &self,
        batch: &IngestBatch,
        error: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(&format!(
            "INSERT INTO ingest_batches ({BATCH_COLUMNS}, payload) \
             VALUES ($1, $2, $3, $4, $5, $6, 'failed', $7, $8, $9, 0, $10, $11, NULL) \
             ON CONFLICT (instance_id, id) DO UPDATE SET status = 'failed', \
             error = excluded.error, processed_at = excluded.processed_at \
             WHERE ingest_batches.status = 'pending'"
        )))
        .bind(&batch.instance_id)
        .bind(&batch.id)
        .bind(&batch.stream)
        .bind(&batch.source)
        .bind(&batch.submitted_by)
        .bind(format_timestamp(batch.received_at))
        .bind(batch.records)
        .bind(batch.rejected)
        .bind(batch.options.to_string())
        .bind(error)
        .bind(format_timestamp(at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn stream_state(&self, instance_id: &str, stream: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            self.sql("SELECT snapshot FROM insight_state WHERE instance_id = $1 AND stream = $2"),
        )
        .bind(instance_id)
        .bind(stream)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| text(&row, "snapshot")).transpose()
    }

    async fn clear_stream_state(&self, instance_id: &str, stream: &str) -> StoreResult<()> {
        sqlx::query(self.sql("DELETE FROM insight_state WHERE instance_id = $1 AND stream = $2"))
            .bind(instance_id)
            .bind(stream)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn put_feed(
        &self,
        instance_id: &str,
        feed: &StoredFeed,
        content: &str,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(&format!(
            "INSERT INTO intel_feeds (instance_id, {FEED_COLUMNS}, content) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (instance_id, name) DO UPDATE SET \
             spec = excluded.spec, entries = excluded.entries, rejected = excluded.rejected, \
             updated_at = excluded.updated_at, content = excluded.content"
        )))
        .bind(instance_id)
        .bind(&feed.name)
        .bind(feed.spec.to_string())
        .bind(feed.entries)
        .bind(feed.rejected)
        .bind(format_timestamp(feed.updated_at))
        .bind(content)
        .execute(self.pool())
        .await
        .map_err(|error| classify(error, &format!("feed {}", feed.name)))?;
        Ok(())
    }

    async fn list_feeds(&self, instance_id: &str) -> StoreResult<Vec<StoredFeed>> {
        sqlx::query(self.sql(&format!(
            "SELECT {FEED_COLUMNS} FROM intel_feeds WHERE instance_id = $1 ORDER BY name"
        )))
        .bind(instance_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(feed_from_row)
        .collect()
    }

    async fn get_feed(
        &self,
        instance_id: &str,
        name: &str,
    ) -> StoreResult<Option<(StoredFeed, String)>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {FEED_COLUMNS}, content FROM intel_feeds WHERE instance_id = $1 AND name = $2"
        )))
        .bind(instance_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| Ok((feed_from_row(&row)?, text(&row, "content")?)))
            .transpose()
    }

    async fn delete_feed(&self, instance_id: &str, name: &str) -> StoreResult<bool> {
        let result =
            sqlx::query(self.sql("DELETE FROM intel_feeds WHERE instance_id = $1 AND name = $2"))
                .bind(instance_id)
                .bind(name)
                .execute(self.pool())
                .await?;
        Ok(result.rows_affected() > 0)
    }
}
