//! [`CollectorStore`] for [`SqlStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, classify, corrupt, optional_timestamp, text};
use crate::collectors::{CollectorStore, Heartbeat, StoredCollector};
use crate::time::{format_timestamp, parse_timestamp};
use crate::{StoreError, StoreResult, StoredKey};

const COLUMNS: &str = "id, name, description, targets, created_at, code_expires_at, key_id, \
    registered_at, last_heartbeat_at, agent_version, host_name, last_job";

fn json_column(row: &AnyRow, column: &str) -> StoreResult<Option<serde_json::Value>> {
    row.try_get::<Option<String>, _>(column)
        .map_err(corrupt)?
        .map(|body| {
            serde_json::from_str(&body)
                .map_err(|error| StoreError::Corrupt(format!("collectors.{column}: {error}")))
        })
        .transpose()
}

fn collector_from_row(row: &AnyRow) -> StoreResult<StoredCollector> {
    Ok(StoredCollector {
        id: text(row, "id")?,
        name: text(row, "name")?,
        description: text(row, "description")?,
        targets: json_column(row, "targets")?.unwrap_or_default(),
        created_at: parse_timestamp(&text(row, "created_at")?)?,
        code_expires_at: optional_timestamp(row, "code_expires_at")?,
        key_id: row.try_get("key_id").map_err(corrupt)?,
        registered_at: optional_timestamp(row, "registered_at")?,
        last_heartbeat_at: optional_timestamp(row, "last_heartbeat_at")?,
        agent_version: row.try_get("agent_version").map_err(corrupt)?,
        host_name: row.try_get("host_name").map_err(corrupt)?,
        last_job: json_column(row, "last_job")?,
    })
}

#[async_trait]
impl CollectorStore for SqlStore {
    async fn create_collector(
        &self,
        instance_id: &str,
        collector: &StoredCollector,
        code_hash: &str,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(
            "INSERT INTO collectors (instance_id, id, name, description, targets, created_at, code_hash, code_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        ))
        .bind(instance_id)
        .bind(&collector.id)
        .bind(&collector.name)
        .bind(&collector.description)
        .bind(collector.targets.to_string())
        .bind(format_timestamp(collector.created_at))
        .bind(code_hash)
        .bind(collector.code_expires_at.map(format_timestamp))
        .execute(&self.pool)
        .await
        .map_err(|error| classify(error, &format!("collector {}", collector.id)))?;
        Ok(())
    }

    async fn get_collector(
        &self,
        instance_id: &str,
        collector_id: &str,
    ) -> StoreResult<Option<StoredCollector>> {
        sqlx::query(self.sql(&format!(
            "SELECT {COLUMNS} FROM collectors WHERE instance_id = $1 AND id = $2"
        )))
        .bind(instance_id)
        .bind(collector_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(collector_from_row)
        .transpose()
    }

    async fn list_collectors(&self, instance_id: &str) -> StoreResult<Vec<StoredCollector>> {
        sqlx::query(self.sql(&format!(
            "SELECT {COLUMNS} FROM collectors WHERE instance_id = $1 ORDER BY created_at, id"
        )))
        .bind(instance_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(collector_from_row)
        .collect()
    }

    async fn update_collector(
        &self,
        instance_id: &str,
        collector_id: &str,
        name: &str,
        description: &str,
        targets: &serde_json::Value,
    ) -> StoreResult<bool> {
        let updated = sqlx::query(self.sql(
            "UPDATE collectors SET name = $3, description = $4, targets = $5 WHERE instance_id = $1 AND id = $2",
        ))
        .bind(instance_id)
        .bind(collector_id)
        .bind(name)
        .bind(description)
        .bind(targets.to_string())
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn delete_collector(
        &self,
        instance_id: &str,
        collector_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut transaction = self.pool.begin().await?;
        let key_id: Option<Option<String>> = sqlx::query(
            self.sql("SELECT key_id FROM collectors WHERE instance_id = $1 AND id = $2"),
        )
        .bind(instance_id)
        .bind(collector_id)
        .fetch_optional(&mut *transaction)
        .await?
        .map(|row| row.try_get::<Option<String>, _>("key_id"))
        .transpose()
        .map_err(corrupt)?;
        let Some(key_id) = key_id else {
            return Ok(false);
        };
        if let Some(key_id) = key_id {
            sqlx::query(self.sql(
                "UPDATE api_keys SET revoked_at = $1 WHERE instance_id = $2 AND id = $3 AND revoked_at IS NULL",
            ))
            .bind(format_timestamp(at))
            .bind(instance_id)
            .bind(key_id)
            .execute(&mut *transaction)
            .await?;
        }
        sqlx::query(self.sql("DELETE FROM collectors WHERE instance_id = $1 AND id = $2"))
            .bind(instance_id)
            .bind(collector_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn find_registration(
        &self,
        code_hash: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<(String, StoredCollector)>> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT instance_id, {COLUMNS} FROM collectors WHERE code_hash = $1 AND key_id IS NULL AND code_expires_at > $2"
        )))
        .bind(code_hash)
        .bind(format_timestamp(at))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((text(&row, "instance_id")?, collector_from_row(&row)?)))
            .transpose()
    }

    async fn complete_registration(
        &self,
        instance_id: &str,
        collector_id: &str,
        code_hash: &str,
        key: &StoredKey,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut transaction = self.pool.begin().await?;
        // The claim is one conditional statement: of two exchanges of the same code exactly one
        // changes the row; the other stores no key.
        let claimed = sqlx::query(self.sql(
            "UPDATE collectors SET code_hash = NULL, code_expires_at = NULL, key_id = $4, registered_at = $5 \
             WHERE instance_id = $1 AND id = $2 AND code_hash = $3 AND key_id IS NULL AND code_expires_at > $5",
        ))
        .bind(instance_id)
        .bind(collector_id)
        .bind(code_hash)
        .bind(&key.key.id)
        .bind(format_timestamp(at))
        .execute(&mut *transaction)
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(false);
        }
        self.insert_key(&mut transaction, key).await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn renew_registration_code(
        &self,
        instance_id: &str,
        collector_id: &str,
        code_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let updated = sqlx::query(self.sql(
            "UPDATE collectors SET code_hash = $3, code_expires_at = $4 WHERE instance_id = $1 AND id = $2 AND key_id IS NULL",
        ))
        .bind(instance_id)
        .bind(collector_id)
        .bind(code_hash)
        .bind(format_timestamp(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn record_heartbeat(
        &self,
        instance_id: &str,
        collector_id: &str,
        key_id: &str,
        heartbeat: &Heartbeat,
    ) -> StoreResult<bool> {
        // A heartbeat without a job result keeps the last one.
        let updated = sqlx::query(self.sql(
            "UPDATE collectors SET last_heartbeat_at = $4, agent_version = $5, host_name = $6, \
             last_job = COALESCE($7, last_job) WHERE instance_id = $1 AND id = $2 AND key_id = $3",
        ))
        .bind(instance_id)
        .bind(collector_id)
        .bind(key_id)
        .bind(format_timestamp(heartbeat.at))
        .bind(heartbeat.agent_version.clone())
        .bind(heartbeat.host_name.clone())
        .bind(heartbeat.last_job.as_ref().map(ToString::to_string))
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }
}
