//! [`NotificationStore`] for [`SqlStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, classify, corrupt, optional_timestamp, text};
use crate::notifications::{
    AttemptOutcome, Delivery, DeliveryFilter, DeliveryState, NewDelivery, NotificationStore,
    SigningKey, StoredChannel,
};
use crate::time::{format_timestamp, parse_timestamp};
use crate::{StoreError, StoreResult};

const CHANNEL_COLUMNS: &str = "account_id, id, body, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, instance_id, account_id, channel_id, dedup_key, payload, \
     state, attempts, next_attempt_at, last_attempt_at, last_error, delivered_at, created_at";

fn json(row: &AnyRow, column: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(&text(row, column)?)
        .map_err(|error| StoreError::Corrupt(format!("{column}: {error}")))
}

fn channel_from_row(row: &AnyRow) -> StoreResult<StoredChannel> {
    Ok(StoredChannel {
        account_id: text(row, "account_id")?,
        id: text(row, "id")?,
        body: json(row, "body")?,
        created_at: parse_timestamp(&text(row, "created_at")?)?,
        updated_at: parse_timestamp(&text(row, "updated_at")?)?,
    })
}

fn delivery_from_row(row: &AnyRow) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: text(row, "id")?,
        instance_id: text(row, "instance_id")?,
        account_id: text(row, "account_id")?,
        channel_id: text(row, "channel_id")?,
        dedup_key: text(row, "dedup_key")?,
        payload: json(row, "payload")?,
        state: text(row, "state")?.parse().map_err(StoreError::Corrupt)?,
        attempts: row.try_get("attempts").map_err(corrupt)?,
        next_attempt_at: parse_timestamp(&text(row, "next_attempt_at")?)?,
        last_attempt_at: optional_timestamp(row, "last_attempt_at")?,
        last_error: row.try_get("last_error").map_err(corrupt)?,
        delivered_at: optional_timestamp(row, "delivered_at")?,
        created_at: parse_timestamp(&text(row, "created_at")?)?,
    })
}

#[async_trait]
impl NotificationStore for SqlStore {
    async fn insert_channel(
        &self,
        instance_id: &str,
        account_id: &str,
        channel_id: &str,
        body: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredChannel> {
        let row = sqlx::query(self.sql(&format!(
            "INSERT INTO notification_channels (instance_id, {CHANNEL_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING {CHANNEL_COLUMNS}"
        )))
        .bind(instance_id)
        .bind(account_id)
        .bind(channel_id)
        .bind(body.to_string())
        .bind(format_timestamp(at))
        .fetch_one(&self.pool)
        .await
        .map_err(|error| classify(error, &format!("channel {channel_id}")))?;
        channel_from_row(&row)
    }

    async fn update_channel(
        &self,
        instance_id: &str,
        account_id: &str,
        channel_id: &str,
        body: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredChannel> {
        sqlx::query(self.sql(&format!(
            "UPDATE notification_channels SET body = $1, updated_at = $2 \
             WHERE instance_id = $3 AND account_id = $4 AND id = $5 RETURNING {CHANNEL_COLUMNS}"
        )))
        .bind(body.to_string())
        .bind(format_timestamp(at))
        .bind(instance_id)
        .bind(account_id)
        .bind(channel_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(channel_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("channel {channel_id}")))
    }

    async fn get_channel(
        &self,
        instance_id: &str,
        account_id: &str,
        channel_id: &str,
    ) -> StoreResult<Option<StoredChannel>> {
        sqlx::query(self.sql(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM notification_channels \
             WHERE instance_id = $1 AND account_id = $2 AND id = $3"
        )))
        .bind(instance_id)
        .bind(account_id)
        .bind(channel_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(channel_from_row)
        .transpose()
    }

    async fn list_channels(
        &self,
        instance_id: &str,
        account_id: &str,
    ) -> StoreResult<Vec<StoredChannel>> {
        sqlx::query(self.sql(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM notification_channels \
             WHERE instance_id = $1 AND account_id = $2 ORDER BY created_at, id"
        )))
        .bind(instance_id)
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(channel_from_row)
        .collect()
    }

    async fn delete_channels(
        &self,
        instance_id: &str,
        account_id: &str,
        channel_ids: &[String],
    ) -> StoreResult<Vec<String>> {
        let mut transaction = self.pool.begin().await?;
        let mut deleted = Vec::new();
        for channel_id in channel_ids {
            let result = sqlx::query(self.sql(
                "DELETE FROM notification_channels \
                 WHERE instance_id = $1 AND account_id = $2 AND id = $3",
            ))
            .bind(instance_id)
            .bind(account_id)
            .bind(channel_id)
            .execute(&mut *transaction)
            .await?;
            if result.rows_affected() == 1 {
                deleted.push(channel_id.clone());
            }
        }
        transaction.commit().await?;
        Ok(deleted)
    }

    async fn get_signing_key(&self, instance_id: &str) -> StoreResult<Option<SigningKey>> {
        sqlx::query(self.sql(
            "SELECT private_key_pem, public_key_pem, created_at FROM notification_signing_keys \
             WHERE instance_id = $1",
        ))
        .bind(instance_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| {
            Ok(SigningKey {
                private_key_pem: text(&row, "private_key_pem")?,
                public_key_pem: text(&row, "public_key_pem")?,
                created_at: parse_timestamp(&text(&row, "created_at")?)?,
            })
        })
        .transpose()
    }

    async fn insert_signing_key(&self, instance_id: &str, key: &SigningKey) -> StoreResult<()> {
        sqlx::query(self.sql(
            "INSERT INTO notification_signing_keys \
             (instance_id, private_key_pem, public_key_pem, created_at) VALUES ($1, $2, $3, $4)",
        ))
        .bind(instance_id)
        .bind(&key.private_key_pem)
        .bind(&key.public_key_pem)
        .bind(format_timestamp(key.created_at))
        .execute(&self.pool)
        .await
        .map_err(|error| classify(error, "signing key"))?;
        Ok(())
    }

    async fn enqueue_delivery(
        &self,
        delivery: &NewDelivery,
        at: DateTime<Utc>,
        due_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = sqlx::query(self.sql(
            "INSERT INTO notification_deliveries (id, instance_id, account_id, channel_id, \
             dedup_key, payload, state, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8) \
             ON CONFLICT (instance_id, channel_id, dedup_key) DO NOTHING",
        ))
        .bind(&delivery.id)
        .bind(&delivery.instance_id)
        .bind(&delivery.account_id)
        .bind(&delivery.channel_id)
        .bind(&delivery.dedup_key)
        .bind(delivery.payload.to_string())
        .bind(format_timestamp(due_at))
        .bind(format_timestamp(at))
        .execute(&self.pool)
        .await
        .map_err(|error| classify(error, &format!("delivery {}", delivery.id)))?;
        Ok(result.rows_affected() == 1)
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let now_text = format_timestamp(now);
        let candidates: Vec<(String, String)> = sqlx::query(self.sql(
            "SELECT id, next_attempt_at FROM notification_deliveries \
             WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        ))
        .bind(&now_text)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| Ok((text(row, "id")?, text(row, "next_attempt_at")?)))
        .collect::<StoreResult<_>>()?;
        let mut claimed = Vec::new();
        for (id, seen_next_attempt_at) in candidates {
            // Compare-and-set on the time we read: of two workers, only one moves it.
            let row = sqlx::query(self.sql(&format!(
                "UPDATE notification_deliveries SET next_attempt_at = $1 \
                 WHERE id = $2 AND state = 'pending' AND next_attempt_at = $3 \
                 RETURNING {DELIVERY_COLUMNS}"
            )))
            .bind(format_timestamp(lease_until))
            .bind(&id)
            .bind(&seen_next_attempt_at)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                claimed.push(delivery_from_row(&row)?);
            }
        }
        Ok(claimed)
    }

    async fn record_delivery_attempt(
        &self,
        delivery_id: &str,
        outcome: &AttemptOutcome,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let at_text = format_timestamp(at);
        let (state, next_attempt_at, error, delivered_at) = match outcome {
            AttemptOutcome::Delivered => (
                DeliveryState::Delivered,
                at_text.clone(),
                None,
                Some(at_text.clone()),
            ),
            AttemptOutcome::Retry {
                error,
                next_attempt_at,
            } => (
                DeliveryState::Pending,
                format_timestamp(*next_attempt_at),
                Some(error.clone()),
                None,
            ),
            AttemptOutcome::Failed { error } => (
                DeliveryState::Failed,
                at_text.clone(),
                Some(error.clone()),
                None,
            ),
        };
        let result = sqlx::query(self.sql(
            "UPDATE notification_deliveries SET state = $1, attempts = attempts + 1, \
             next_attempt_at = $2, last_attempt_at = $3, last_error = $4, delivered_at = $5 \
             WHERE id = $6",
        ))
        .bind(state.as_str())
        .bind(next_attempt_at)
        .bind(at_text)
        .bind(error)
        .bind(delivered_at)
        .bind(delivery_id)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("delivery {delivery_id}")));
        }
        Ok(())
    }

    async fn get_delivery(
        &self,
        instance_id: &str,
        delivery_id: &str,
    ) -> StoreResult<Option<Delivery>> {
        sqlx::query(self.sql(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries \
             WHERE instance_id = $1 AND id = $2"
        )))
        .bind(instance_id)
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(delivery_from_row)
        .transpose()
    }

    async fn list_deliveries(
        &self,
        instance_id: &str,
        filter: &DeliveryFilter,
        before: Option<(DateTime<Utc>, String)>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let mut statement = format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries WHERE instance_id = $1"
        );
        let mut binds: Vec<String> = vec![instance_id.to_owned()];
        let mut push = |statement: &mut String, condition: &str, value: String| {
            binds.push(value);
            statement.push_str(&format!(" AND {condition} ${}", binds.len()));
        };
        if let Some(account_id) = &filter.account_id {
            push(&mut statement, "account_id =", account_id.clone());
        }
        if let Some(channel_id) = &filter.channel_id {
            push(&mut statement, "channel_id =", channel_id.clone());
        }
        if let Some(state) = filter.state {
            push(&mut statement, "state =", state.as_str().to_owned());
        }
        if let Some((created_at, id)) = before {
            binds.push(format_timestamp(created_at));
            binds.push(id);
            statement.push_str(&format!(
                " AND (created_at, id) < (${}, ${})",
                binds.len() - 1,
                binds.len()
            ));
        }
        statement.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT ${}",
            binds.len() + 1
        ));
        let mut query = sqlx::query(self.sql(&statement));
        for bind in binds {
            query = query.bind(bind);
        }
        query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(delivery_from_row)
            .collect()
    }
}
