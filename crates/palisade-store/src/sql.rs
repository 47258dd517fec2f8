//! [`SqlStore`]: the one implementation of the store traits, for SQLite and PostgreSQL.

mod collectors;
mod decisions;
mod inventory;
mod reports;
mod scans;

mod findings;
mod insights;
mod notifications;
mod sessions;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_model::tenancy::{ApiKey, Instance, Role};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::error::ErrorKind;
use sqlx::{AnyPool, AssertSqlSafe, Connection, Executor, Row};

use crate::migrations::{MIGRATIONS, checksum};
use crate::time::{format_timestamp, parse_timestamp};
use crate::{
    Document, DocumentQuery, DocumentStore, InstanceStore, KeyStore, StoreError, StoreResult,
    StoredKey,
};

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A store over a `sqlx` `Any` pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
}

/// Any number that fits PostgreSQL's advisory-lock key and is unlikely to clash with other users
/// of the same database.
const MIGRATION_LOCK_KEY: i64 = 0x5041_4c49_5341_4445; // "PALISADE"

impl SqlStore {
    /// Connects to `sqlite://PATH` or `postgres://…` and applies pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            (Dialect::Sqlite, sqlite_url(path)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool_options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match dialect {
            Dialect::Sqlite => {
                pool_options
                    .max_connections(8)
                    .after_connect(|connection, _meta| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; FULL makes every commit
                            // durable before it returns, which the API's 2xx promises.
                            // A 32 MiB page cache and 32 MiB between checkpoints keep batch
                            // ingest into large indexed tables (findings) from re-reading and
                            // re-writing the same index pages on every commit.
                            connection
                                .execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                     PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 8192;",
                                )
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Dialect::Postgres => {
                pool_options
                    .max_connections(16)
                    .connect_with(options)
                    .await?
            }
        };
        let store = Self { pool, dialect };
        store.migrate().await?;
        Ok(store)
    }

    /// Returns the backend's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Returns the pool, for crates that add their own tables through migrations here.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Writes a statement in this backend's placeholder style. Statements are written with
    /// PostgreSQL's `$N`; SQLite spells the same numbered parameter `?N`.
    ///
    /// Statements are assembled only from constants in this file, never from input, which is
    /// what makes the `AssertSqlSafe` true.
    fn sql(&self, statement: &str) -> AssertSqlSafe<String> {
        AssertSqlSafe(match self.dialect {
            Dialect::Postgres => statement.to_owned(),
            Dialect::Sqlite => statement.replace('$', "?"),
        })
    }

    /// Inserts a key on a connection (or inside a transaction, as a collector's registration
    /// does).
    async fn insert_key(
        &self,
        connection: &mut sqlx::AnyConnection,
        stored: &StoredKey,
    ) -> StoreResult<()> {
        let key = &stored.key;
        sqlx::query(self.sql(&format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )))
        .bind(&key.id)
        .bind(&key.instance_id)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(i64::from(key.operator))
        .bind(&stored.secret_hash)
        .bind(format_timestamp(key.created_at))
        .bind(key.revoked_at.map(format_timestamp))
        .execute(&mut *connection)
        .await
        .map_err(|error| classify(error, &format!("key {}", key.id)))?;
        Ok(())
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut connection = self.pool.acquire().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut *connection)
                .await?;
        }
        let outcome = self.apply_pending(&mut connection).await;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut *connection)
                .await?;
        }
        outcome
    }

    async fn apply_pending(&self, connection: &mut sqlx::AnyConnection) -> StoreResult<()> {
        connection
            .execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
                 name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
            )
            .await?;
        let applied: Vec<(i64, String)> =
            sqlx::query("SELECT version, checksum FROM schema_migrations")
                .fetch_all(&mut *connection)
                .await?
                .iter()
                .map(|row| Ok((row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?)))
                .collect::<Result<_, sqlx::Error>>()?;
        for migration in MIGRATIONS {
            let text = match self.dialect {
                Dialect::Sqlite => migration.sqlite,
                Dialect::Postgres => migration.postgres,
            };
            let sum = checksum(text);
            if let Some((_, stored_sum)) = applied
                .iter()
                .find(|(version, _)| *version == migration.version)
            {
                if *stored_sum != sum {
                    return Err(StoreError::Corrupt(format!(
                        "migration {} ({}) was changed after it was applied; migrations are append-only",
                        migration.version, migration.name
                    )));
                }
                continue;
            }
            let mut transaction = connection.begin().await?;
            sqlx::raw_sql(text).execute(&mut *transaction).await?;
            sqlx::query(self.sql(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
            ))
            .bind(migration.version)
            .bind(migration.name)
            .bind(sum)
            .bind(format_timestamp(Utc::now()))
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied migration"
            );
        }
        Ok(())
    }
}

/// Turns the path of `sqlite://PATH` into a URL sqlx accepts, creating the parent directory and
/// asking for the file to be created if missing.
fn sqlite_url(path: &str) -> StoreResult<String> {
    let (file, query) = path.split_once('?').unwrap_or((path, ""));
    if let Some(parent) = Path::new(file)
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|error| StoreError::Database(sqlx::Error::Io(error)))?;
    }
    let query = if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        query.to_owned()
    };
    Ok(format!("sqlite://{file}?{query}"))
}

/// Maps a unique or foreign-key violation to the store's own error, naming what clashed.
fn classify(error: sqlx::Error, what: &str) -> StoreError {
    if let sqlx::Error::Database(database_error) = &error {
        match database_error.kind() {
            ErrorKind::UniqueViolation => return StoreError::Conflict(what.to_owned()),
            ErrorKind::ForeignKeyViolation => return StoreError::NotFound("instance".to_owned()),
            _ => {}
        }
    }
    StoreError::Database(error)
}

fn corrupt(error: sqlx::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

/// Reads a text column.
fn text(row: &AnyRow, column: &str) -> StoreResult<String> {
    row.try_get::<String, _>(column).map_err(corrupt)
}

/// Reads a nullable timestamp column.
fn optional_timestamp(row: &AnyRow, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    row.try_get::<Option<String>, _>(column)
        .map_err(corrupt)?
        .as_deref()
        .map(parse_timestamp)
        .transpose()
}

fn instance_from_row(row: &AnyRow) -> StoreResult<Instance> {
    Ok(Instance {
        id: row.try_get("id").map_err(corrupt)?,
        name: row.try_get("name").map_err(corrupt)?,
        created_at: parse_timestamp(&row.try_get::<String, _>("created_at").map_err(corrupt)?)?,
    })
}

fn key_from_row(row: &AnyRow) -> StoreResult<ApiKey> {
    let role_text: String = row.try_get("role").map_err(corrupt)?;
    let revoked_at: Option<String> = row.try_get("revoked_at").map_err(corrupt)?;
    Ok(ApiKey {
        id: row.try_get("id").map_err(corrupt)?,
        instance_id: row.try_get("instance_id").map_err(corrupt)?,
        name: row.try_get("name").map_err(corrupt)?,
        role: role_text.parse::<Role>().map_err(StoreError::Corrupt)?,
        operator: row.try_get::<i64, _>("operator").map_err(corrupt)? != 0,
        created_at: parse_timestamp(&row.try_get::<String, _>("created_at").map_err(corrupt)?)?,
        revoked_at: revoked_at.as_deref().map(parse_timestamp).transpose()?,
    })
}

fn document_from_row(row: &AnyRow) -> StoreResult<Document> {
    let body_text: String = row.try_get("body").map_err(corrupt)?;
    Ok(Document {
        kind: row.try_get("kind").map_err(corrupt)?,
        id: row.try_get("id").map_err(corrupt)?,
        version: row.try_get("version").map_err(corrupt)?,
        body: serde_json::from_str(&body_text)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?,
        created_at: parse_timestamp(&row.try_get::<String, _>("created_at").map_err(corrupt)?)?,
        updated_at: parse_timestamp(&row.try_get::<String, _>("updated_at").map_err(corrupt)?)?,
    })
}

const KEY_COLUMNS: &str =
    "id, instance_id, name, role, operator, secret_hash, created_at, revoked_at";
const DOCUMENT_COLUMNS: &str = "kind, id, version, body, created_at, updated_at";

#[async_trait]
impl InstanceStore for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_instance(&self, instance: &Instance) -> StoreResult<()> {
        sqlx::query(self.sql("INSERT INTO instances (id, name, created_at) VALUES ($1, $2, $3)"))
            .bind(&instance.id)
            .bind(&instance.name)
            .bind(format_timestamp(instance.created_at))
            .execute(&self.pool)
            .await
            .map_err(|error| classify(error, &format!("instance {}", instance.id)))?;
        Ok(())
    }

    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<Instance>> {
        sqlx::query(self.sql("SELECT id, name, created_at FROM instances WHERE id = $1"))
            .bind(instance_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(instance_from_row)
            .transpose()
    }

    async fn list_instances(&self) -> StoreResult<Vec<Instance>> {
        sqlx::query("SELECT id, name, created_at FROM instances ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(instance_from_row)
            .collect()
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn create_key(&self, stored: &StoredKey) -> StoreResult<()> {
        let mut connection = self.pool.acquire().await?;
        self.insert_key(&mut connection, stored).await
    }

    async fn find_key(&self, key_id: &str) -> StoreResult<Option<StoredKey>> {
        let row =
            sqlx::query(self.sql(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1")))
                .bind(key_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(StoredKey {
                key: key_from_row(&row)?,
                secret_hash: row.try_get("secret_hash").map_err(corrupt)?,
            })
        })
        .transpose()
    }

    async fn list_keys(&self, instance_id: &str) -> StoreResult<Vec<ApiKey>> {
        sqlx::query(self.sql(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE instance_id = $1 ORDER BY created_at, id"
        )))
        .bind(instance_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn revoke_key(
        &self,
        instance_id: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = sqlx::query(self.sql(
            "UPDATE api_keys SET revoked_at = $1 WHERE instance_id = $2 AND id = $3 AND revoked_at IS NULL",
        ))
        .bind(format_timestamp(at))
        .bind(instance_id)
        .bind(key_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn count_active_keys(&self, instance_id: &str, role: Role) -> StoreResult<u64> {
        let count: i64 = sqlx::query(self.sql(
            "SELECT COUNT(*) FROM api_keys WHERE instance_id = $1 AND role = $2 AND revoked_at IS NULL",
        ))
        .bind(instance_id)
        .bind(role.as_str())
        .fetch_one(&self.pool)
        .await?
        .try_get(0)
        .map_err(corrupt)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

#[async_trait]
impl DocumentStore for SqlStore {
    async fn insert_document(
        &self,
        instance_id: &str,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<Document> {
        let at_text = format_timestamp(at);
        sqlx::query(self.sql(&format!(
            "INSERT INTO documents (instance_id, {DOCUMENT_COLUMNS}) VALUES ($1, $2, $3, 1, $4, $5, $5)"
        )))
        .bind(instance_id)
        .bind(kind)
        .bind(id)
        .bind(body.to_string())
        .bind(at_text)
        .execute(&self.pool)
        .await
        .map_err(|error| classify(error, &format!("{kind} {id}")))?;
        Ok(Document {
            kind: kind.to_owned(),
            id: id.to_owned(),
            version: 1,
            body: body.clone(),
            created_at: at,
            updated_at: at,
        })
    }

    async fn get_document(
        &self,
        instance_id: &str,
        kind: &str,
        id: &str,
    ) -> StoreResult<Option<Document>> {
        sqlx::query(self.sql(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE instance_id = $1 AND kind = $2 AND id = $3"
        )))
        .bind(instance_id)
        .bind(kind)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(document_from_row)
        .transpose()
    }

    async fn update_document(
        &self,
        instance_id: &str,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
        expected_version: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<Document> {
        // One statement decides and writes, so two concurrent updates with the same
        // `expected_version` cannot both win.
        let updated = sqlx::query(self.sql(&format!(
            "UPDATE documents SET body = $1, version = version + 1, updated_at = $2 \
             WHERE instance_id = $3 AND kind = $4 AND id = $5 AND ($6 < 0 OR version = $6) \
             RETURNING {DOCUMENT_COLUMNS}"
        )))
        .bind(body.to_string())
        .bind(format_timestamp(at))
        .bind(instance_id)
        .bind(kind)
        .bind(id)
        .bind(expected_version.unwrap_or(-1))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = updated {
            return document_from_row(&row);
        }
        match self.get_document(instance_id, kind, id).await? {
            None => Err(StoreError::NotFound(format!("{kind} {id}"))),
            Some(current) => Err(StoreError::VersionMismatch {
                expected: expected_version.unwrap_or(-1),
                current: current.version,
            }),
        }
    }

    async fn delete_document(&self, instance_id: &str, kind: &str, id: &str) -> StoreResult<bool> {
        let result = sqlx::query(
            self.sql("DELETE FROM documents WHERE instance_id = $1 AND kind = $2 AND id = $3"),
        )
        .bind(instance_id)
        .bind(kind)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn list_documents(
        &self,
        instance_id: &str,
        kind: &str,
        query: &DocumentQuery,
    ) -> StoreResult<Vec<Document>> {
        let limit = i64::from(query.limit.unwrap_or(u32::MAX).min(10_000));
        sqlx::query(self.sql(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE instance_id = $1 AND kind = $2 AND id > $3 \
             ORDER BY id LIMIT $4"
        )))
        .bind(instance_id)
        .bind(kind)
        .bind(query.after.clone().unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(document_from_row)
        .collect()
    }

    async fn count_documents(&self, instance_id: &str, kind: &str) -> StoreResult<u64> {
        let count: i64 = sqlx::query(
            self.sql("SELECT COUNT(*) FROM documents WHERE instance_id = $1 AND kind = $2"),
        )
        .bind(instance_id)
        .bind(kind)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)
        .map_err(corrupt)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
