//! [`InventoryStore`] for [`SqlStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_model::resource::Resource;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, classify, corrupt};
use crate::inventory::{
    BatchOutcome, BatchRecord, InventoryBatch, InventoryStore, PushOutcome, QuarantinedRecord,
    ResourceFilter,
};
use crate::time::{format_timestamp, parse_timestamp};
use crate::{StoreError, StoreResult};

fn resource_from_row(row: &AnyRow) -> StoreResult<Resource> {
    let body: String = row.try_get("body").map_err(corrupt)?;
    serde_json::from_str(&body)
        .map_err(|error| StoreError::Corrupt(format!("stored resource: {error}")))
}

/// Appends the filter's conditions (after `instance_id = $1`) and returns their bind values in
/// order. Conditions are fixed strings; only the values travel as binds.
fn filter_sql(filter: &ResourceFilter, with_page: bool) -> (String, Vec<String>) {
    let mut conditions = String::new();
    let mut binds = Vec::new();
    let columns = [
        ("environment", &filter.environment),
        ("account_id", &filter.account_id),
        ("service_name", &filter.service_name),
        ("resource_kind", &filter.resource_kind),
        ("region", &filter.region),
        ("resource_group", &filter.resource_group),
    ];
    for (column, value) in columns {
        if let Some(value) = value {
            binds.push(value.clone());
            conditions.push_str(&format!(" AND r.{column} = ${}", binds.len() + 1));
        }
    }
    for (key, value) in &filter.tags {
        binds.push(key.clone());
        binds.push(value.clone());
        conditions.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM resource_tags t WHERE t.instance_id = r.instance_id AND t.resource_id = r.id \
             AND t.tag_key = ${} AND t.tag_value = ${})",
            binds.len(),
            binds.len() + 1
        ));
    }
    if with_page && let Some(after) = &filter.after {
        binds.push(after.clone());
        conditions.push_str(&format!(" AND r.id > ${}", binds.len() + 1));
    }
    if with_page && let Some(until) = &filter.until {
        binds.push(until.clone());
        conditions.push_str(&format!(" AND r.id <= ${}", binds.len() + 1));
    }
    (conditions, binds)
}

/// A tag value as text: strings as they are, anything else as JSON.
fn tag_text(value: &serde_json::Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

impl SqlStore {
    /// Writes resources inside the caller's transaction (see [`InventoryStore::push_resources`]).
    async fn write_resources(
        &self,
        transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
        instance_id: &str,
        resources: &[Resource],
        at: DateTime<Utc>,
    ) -> StoreResult<PushOutcome> {
        let received_at = format_timestamp(at);
        let mut outcome = PushOutcome::default();
        for resource in resources {
            let body = serde_json::to_string(resource)
                .map_err(|error| StoreError::Corrupt(error.to_string()))?;
            let collected_at = format_timestamp(resource.collected_at);
            let inserted = sqlx::query(self.sql(
                "INSERT INTO resource_versions (instance_id, id, collected_at, body, received_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (instance_id, id, collected_at) DO NOTHING",
            ))
            .bind(instance_id)
            .bind(&resource.id)
            .bind(&collected_at)
            .bind(&body)
            .bind(&received_at)
            .execute(&mut **transaction)
            .await
            .map_err(|error| classify(error, &format!("resource {}", resource.id)))?;
            if inserted.rows_affected() == 0 {
                outcome.duplicates += 1;
                continue;
            }
            outcome.stored += 1;
            // Only a version at least as recent as the stored one becomes the latest.
            let latest = sqlx::query(self.sql(
                "INSERT INTO resources (instance_id, id, environment, account_id, service_name, resource_kind, region, \
                 resource_group, name, body, collected_at, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (instance_id, id) DO UPDATE SET environment = excluded.environment, account_id = excluded.account_id, \
                 service_name = excluded.service_name, resource_kind = excluded.resource_kind, region = excluded.region, \
                 resource_group = excluded.resource_group, name = excluded.name, body = excluded.body, \
                 collected_at = excluded.collected_at, received_at = excluded.received_at \
                 WHERE resources.collected_at <= excluded.collected_at",
            ))
            .bind(instance_id)
            .bind(&resource.id)
            .bind(&resource.environment)
            .bind(&resource.account_id)
            .bind(&resource.service_name)
            .bind(&resource.resource_kind)
            .bind(resource.region.clone())
            .bind(resource.resource_group.clone())
            .bind(resource.name.clone())
            .bind(&body)
            .bind(&collected_at)
            .bind(&received_at)
            .execute(&mut **transaction)
            .await?;
            if latest.rows_affected() == 1 {
                sqlx::query(
                    self.sql(
                        "DELETE FROM resource_tags WHERE instance_id = $1 AND resource_id = $2",
                    ),
                )
                .bind(instance_id)
                .bind(&resource.id)
                .execute(&mut **transaction)
                .await?;
                for (key, value) in &resource.tags {
                    sqlx::query(self.sql(
                        "INSERT INTO resource_tags (instance_id, resource_id, tag_key, tag_value) VALUES ($1, $2, $3, $4)",
                    ))
                    .bind(instance_id)
                    .bind(&resource.id)
                    .bind(key)
                    .bind(tag_text(value))
                    .execute(&mut **transaction)
                    .await?;
                }
            }
        }
        Ok(outcome)
    }
}

/// Writes one quarantined record inside the caller's transaction.
async fn insert_quarantined(
    store: &SqlStore,
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    instance_id: &str,
    record: &QuarantinedRecord,
) -> StoreResult<()> {
    sqlx::query(store.sql(
        "INSERT INTO quarantine (instance_id, id, source, received_at, reason, record) VALUES ($1, $2, $3, $4, $5, $6)",
    ))
    .bind(instance_id)
    .bind(&record.id)
    .bind(&record.source)
    .bind(format_timestamp(record.received_at))
    .bind(&record.reason)
    .bind(record.record.to_string())
    .execute(&mut **transaction)
    .await
    .map_err(|error| classify(error, &format!("quarantined record {}", record.id)))?;
    Ok(())
}

const BATCH_COLUMNS: &str = "batch_id, key_id, received_at, stored, duplicates, rejected";

fn batch_from_row(row: &AnyRow) -> StoreResult<BatchRecord> {
    let count = |column: &str| -> StoreResult<u64> {
        Ok(u64::try_from(row.try_get::<i64, _>(column).map_err(corrupt)?).unwrap_or(0))
    };
    let rejected: String = row.try_get("rejected").map_err(corrupt)?;
    Ok(BatchRecord {
        batch_id: row.try_get("batch_id").map_err(corrupt)?,
        key_id: row.try_get("key_id").map_err(corrupt)?,
        received_at: parse_timestamp(&row.try_get::<String, _>("received_at").map_err(corrupt)?)?,
        outcome: PushOutcome {
            stored: count("stored")?,
            duplicates: count("duplicates")?,
        },
        rejected: serde_json::from_str(&rejected)
            .map_err(|error| StoreError::Corrupt(format!("inventory batch rejected: {error}")))?,
    })
}

#[async_trait]
impl InventoryStore for SqlStore {
    async fn push_resources(
        &self,
        instance_id: &str,
        resources: &[Resource],
        at: DateTime<Utc>,
    ) -> StoreResult<PushOutcome> {
        let mut transaction = self.pool().begin().await?;
        let outcome = self
            .write_resources(&mut transaction, instance_id, resources, at)
            .await?;
        transaction.commit().await?;
        Ok(outcome)
    }

    async fn push_batch(
        &self,
        instance_id: &str,
        batch: &InventoryBatch<'_>,
        at: DateTime<Utc>,
    ) -> StoreResult<BatchOutcome> {
        let mut transaction = self.pool().begin().await?;
        if let Some(batch_id) = batch.batch_id {
            // The record goes first: on PostgreSQL a concurrent retry of the same batch waits on
            // this row's unique key until this transaction ends, then finds it and replays.
            let claimed = sqlx::query(self.sql(
                "INSERT INTO inventory_batches (instance_id, batch_id, key_id, received_at, stored, duplicates, rejected) \
                 VALUES ($1, $2, $3, $4, 0, 0, $5) ON CONFLICT (instance_id, batch_id) DO NOTHING",
            ))
            .bind(instance_id)
            .bind(batch_id)
            .bind(batch.key_id)
            .bind(format_timestamp(at))
            .bind(batch.rejected.to_string())
            .execute(&mut *transaction)
            .await
            .map_err(|error| classify(error, &format!("inventory batch {batch_id}")))?;
            if claimed.rows_affected() == 0 {
                transaction.rollback().await?;
                return match self.get_inventory_batch(instance_id, batch_id).await? {
                    Some(record) => Ok(BatchOutcome::Replayed(record)),
                    None => Err(StoreError::Corrupt(format!(
                        "inventory batch {batch_id} conflicted but is not recorded"
                    ))),
                };
            }
        }
        for record in batch.quarantined {
            insert_quarantined(self, &mut transaction, instance_id, record).await?;
        }
        let outcome = self
            .write_resources(&mut transaction, instance_id, batch.resources, at)
            .await?;
        if let Some(batch_id) = batch.batch_id {
            sqlx::query(self.sql(
                "UPDATE inventory_batches SET stored = $3, duplicates = $4 WHERE instance_id = $1 AND batch_id = $2",
            ))
            .bind(instance_id)
            .bind(batch_id)
            .bind(i64::try_from(outcome.stored).unwrap_or(i64::MAX))
            .bind(i64::try_from(outcome.duplicates).unwrap_or(i64::MAX))
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(BatchOutcome::Applied(outcome))
    }

    async fn get_inventory_batch(
        &self,
        instance_id: &str,
        batch_id: &str,
    ) -> StoreResult<Option<BatchRecord>> {
        sqlx::query(self.sql(&format!(
            "SELECT {BATCH_COLUMNS} FROM inventory_batches WHERE instance_id = $1 AND batch_id = $2"
        )))
        .bind(instance_id)
        .bind(batch_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(batch_from_row)
        .transpose()
    }

    async fn list_inventory_batches(
        &self,
        instance_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<BatchRecord>> {
        sqlx::query(self.sql(&format!(
            "SELECT {BATCH_COLUMNS} FROM inventory_batches WHERE instance_id = $1 AND batch_id > $2 \
             ORDER BY batch_id LIMIT $3"
        )))
        .bind(instance_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(batch_from_row)
        .collect()
    }

    async fn list_resources(
        &self,
        instance_id: &str,
        filter: &ResourceFilter,
    ) -> StoreResult<Vec<Resource>> {
        let (conditions, binds) = filter_sql(filter, true);
        let limit = i64::from(filter.limit.unwrap_or(u32::MAX).min(100_000));
        let statement = format!(
            "SELECT r.body FROM resources r WHERE r.instance_id = $1{conditions} ORDER BY r.id LIMIT ${}",
            binds.len() + 2
        );
        let statement = self.sql(&statement);
        let mut query = sqlx::query(statement).bind(instance_id);
        for value in &binds {
            query = query.bind(value.clone());
        }
        query
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(resource_from_row)
            .collect()
    }

    async fn count_resources(
        &self,
        instance_id: &str,
        filter: &ResourceFilter,
    ) -> StoreResult<u64> {
        let (conditions, binds) = filter_sql(filter, false);
        let statement = self.sql(&format!(
            "SELECT COUNT(*) FROM resources r WHERE r.instance_id = $1{conditions}"
        ));
        let mut query = sqlx::query(statement).bind(instance_id);
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

    async fn resource_id_boundaries(
        &self,
        instance_id: &str,
        filter: &ResourceFilter,
        every: u32,
    ) -> StoreResult<Vec<String>> {
        let (conditions, binds) = filter_sql(filter, false);
        let statement = self.sql(&format!(
            "SELECT id FROM (SELECT r.id, ROW_NUMBER() OVER (ORDER BY r.id) AS position \
             FROM resources r WHERE r.instance_id = $1{conditions}) numbered \
             WHERE position % ${} = 0 ORDER BY id",
            binds.len() + 2
        ));
        let mut query = sqlx::query(statement).bind(instance_id);
        for value in &binds {
            query = query.bind(value.clone());
        }
        query
            .bind(i64::from(every.max(1)))
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>(0).map_err(corrupt))
            .collect()
    }

    async fn resource_history(
        &self,
        instance_id: &str,
        resource_id: &str,
    ) -> StoreResult<Vec<Resource>> {
        sqlx::query(self.sql("SELECT body FROM resource_versions WHERE instance_id = $1 AND id = $2 ORDER BY collected_at"))
            .bind(instance_id)
            .bind(resource_id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(resource_from_row)
            .collect()
    }

    async fn quarantine(
        &self,
        instance_id: &str,
        records: &[QuarantinedRecord],
    ) -> StoreResult<()> {
        let mut transaction = self.pool().begin().await?;
        for record in records {
            insert_quarantined(self, &mut transaction, instance_id, record).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn list_quarantine(
        &self,
        instance_id: &str,
        source: &str,
        limit: u32,
    ) -> StoreResult<Vec<QuarantinedRecord>> {
        sqlx::query(self.sql(
            "SELECT id, source, received_at, reason, record FROM quarantine WHERE instance_id = $1 AND source = $2 \
             ORDER BY received_at DESC, id LIMIT $3",
        ))
        .bind(instance_id)
        .bind(source)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            let record: String = row.try_get("record").map_err(corrupt)?;
            Ok(QuarantinedRecord {
                id: row.try_get("id").map_err(corrupt)?,
                source: row.try_get("source").map_err(corrupt)?,
                received_at: parse_timestamp(&row.try_get::<String, _>("received_at").map_err(corrupt)?)?,
                reason: row.try_get("reason").map_err(corrupt)?,
                record: serde_json::from_str(&record).map_err(|error| StoreError::Corrupt(error.to_string()))?,
            })
        })
        .collect()
    }
}
