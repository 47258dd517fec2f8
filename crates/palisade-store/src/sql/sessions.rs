//! [`SessionStore`] for [`SqlStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{SqlStore, classify, text};
use crate::StoreResult;
use crate::sessions::{SessionStore, StoredSession};
use crate::time::{format_timestamp, parse_timestamp};

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(&self, id_hash: &str, session: &StoredSession) -> StoreResult<()> {
        sqlx::query(self.sql(
            "INSERT INTO ui_sessions (id_hash, instance_id, key_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(id_hash)
        .bind(&session.instance_id)
        .bind(&session.key_id)
        .bind(&session.csrf)
        .bind(format_timestamp(session.created_at))
        .bind(format_timestamp(session.expires_at))
        .execute(self.pool())
        .await
        .map_err(|error| classify(error, "session"))?;
        Ok(())
    }

    async fn find_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<StoredSession>> {
        let row = sqlx::query(self.sql(
            "SELECT instance_id, key_id, csrf, created_at, expires_at FROM ui_sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        ))
        .bind(id_hash)
        .bind(format_timestamp(now))
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(StoredSession {
                instance_id: text(&row, "instance_id")?,
                key_id: text(&row, "key_id")?,
                csrf: text(&row, "csrf")?,
                created_at: parse_timestamp(&text(&row, "created_at")?)?,
                expires_at: parse_timestamp(&text(&row, "expires_at")?)?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool> {
        let result = sqlx::query(self.sql("DELETE FROM ui_sessions WHERE id_hash = $1"))
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn delete_key_sessions(&self, instance_id: &str, key_id: &str) -> StoreResult<u64> {
        let result =
            sqlx::query(self.sql("DELETE FROM ui_sessions WHERE instance_id = $1 AND key_id = $2"))
                .bind(instance_id)
                .bind(key_id)
                .execute(self.pool())
                .await?;
        Ok(result.rows_affected())
    }

    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let result = sqlx::query(self.sql("DELETE FROM ui_sessions WHERE expires_at <= $1"))
            .bind(format_timestamp(now))
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected())
    }
}
