//! [`FindingsStore`] for [`SqlStore`].
//!
//! Batches are written as multi-row `INSERT … ON CONFLICT DO UPDATE … RETURNING` statements in one
//! transaction: with `synchronous=FULL` every commit is an fsync, so the ingest rate is set by how
//! many rows share a commit, not by the per-row cost.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use super::{Dialect, SqlStore, classify, corrupt, text};
use crate::findings::{
    FindingStatus, FindingsStore, NoteRecord, OccurrenceCursor, OccurrenceFilter, OccurrenceKey,
    OccurrenceRecord, PendingNotification, ProviderQuery, RecordOutcome, StatusChange, StoredNote,
    StoredOccurrence, StoredProvider,
};
use crate::time::{format_timestamp, parse_timestamp};
use crate::{StoreError, StoreResult};

const NOTE_COLUMNS: &str = "account_id, provider_id, id, kind, body, created_at, updated_at";
const OCCURRENCE_COLUMNS: &str = "seq, account_id, provider_id, id, note_provider_id, note_id, \
     kind, severity, certainty, resource, status, status_reason, suppressed_until, \
     occurrence_count, first_seen, last_seen, opened_at, created_at, updated_at, body";
/// Columns written by an insert, in bind order (14 binds per row, see [`occurrence_values`]).
const OCCURRENCE_INSERT_COLUMNS: &str = "instance_id, account_id, provider_id, id, \
     note_provider_id, note_id, kind, severity, certainty, resource, occurrence_count, \
     notify_pending, body, first_seen, last_seen, opened_at, created_at, updated_at, status";
const BINDS_PER_OCCURRENCE: usize = 14;
/// The same row with anonymous parameters (SQLite; see `record_occurrences`): the time is bound
/// once per column it fills, 18 binds in all.
const ANONYMOUS_OCCURRENCE_VALUES: &str =
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')";
/// Rows per statement: 250 × 14 binds stays far below SQLite's 32 766 and PostgreSQL's 65 535.
const OCCURRENCES_PER_STATEMENT: usize = 250;

/// What a re-reported finding does to a resolved or expired-suppressed one: it reopens.
const REOPENS: &str = "(finding_occurrences.status = 'resolved' OR \
     (finding_occurrences.status = 'suppressed' AND finding_occurrences.suppressed_until IS NOT NULL \
      AND finding_occurrences.suppressed_until <= excluded.last_seen))";

/// A value bound to a statement assembled at run time.
enum Bind {
    Text(String),
    Int(i64),
}

/// The `VALUES` tuple of one occurrence row whose first bind is `$first`.
fn occurrence_values(first: usize) -> String {
    let n = |offset: usize| format!("${}", first + offset);
    // instance, account, provider, id, note provider, note, kind, severity, certainty,
    // resource, count, notify, body, at (first_seen = last_seen = opened = created = updated).
    format!(
        "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 'open')",
        n(0),
        n(1),
        n(2),
        n(3),
        n(4),
        n(5),
        n(6),
        n(7),
        n(8),
        n(9),
        n(10),
        n(11),
        n(12),
        n(13),
        n(13),
        n(13),
        n(13),
        n(13)
    )
}

fn notifies(kind: &str) -> i64 {
    i64::from(kind == "FINDING")
}

fn optional_text(row: &AnyRow, column: &str) -> StoreResult<Option<String>> {
    row.try_get::<Option<String>, _>(column).map_err(corrupt)
}

fn timestamp(row: &AnyRow, column: &str) -> StoreResult<DateTime<Utc>> {
    parse_timestamp(&text(row, column)?)
}

fn json(row: &AnyRow, column: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(&text(row, column)?)
        .map_err(|error| StoreError::Corrupt(format!("{column}: {error}")))
}

fn note_from_row(row: &AnyRow) -> StoreResult<StoredNote> {
    Ok(StoredNote {
        record: NoteRecord {
            account_id: text(row, "account_id")?,
            provider_id: text(row, "provider_id")?,
            id: text(row, "id")?,
            kind: text(row, "kind")?,
            body: json(row, "body")?,
        },
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

fn occurrence_from_row(row: &AnyRow) -> StoreResult<StoredOccurrence> {
    Ok(StoredOccurrence {
        record: OccurrenceRecord {
            account_id: text(row, "account_id")?,
            provider_id: text(row, "provider_id")?,
            id: text(row, "id")?,
            note_provider_id: text(row, "note_provider_id")?,
            note_id: text(row, "note_id")?,
            kind: text(row, "kind")?,
            severity: optional_text(row, "severity")?,
            certainty: optional_text(row, "certainty")?,
            resource: optional_text(row, "resource")?,
            body: json(row, "body")?,
        },
        seq: row.try_get("seq").map_err(corrupt)?,
        status: text(row, "status")?.parse().map_err(StoreError::Corrupt)?,
        status_reason: optional_text(row, "status_reason")?,
        suppressed_until: optional_text(row, "suppressed_until")?
            .as_deref()
            .map(parse_timestamp)
            .transpose()?,
        occurrence_count: row.try_get("occurrence_count").map_err(corrupt)?,
        first_seen: timestamp(row, "first_seen")?,
        last_seen: timestamp(row, "last_seen")?,
        opened_at: timestamp(row, "opened_at")?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

/// Appends `column IN ($a, $b, …)` for the values, numbering from `binds.len() + 1`.
fn push_in(sql: &mut String, binds: &mut Vec<Bind>, column: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    let placeholders: Vec<String> = values
        .iter()
        .map(|value| {
            binds.push(Bind::Text(value.clone()));
            format!("${}", binds.len())
        })
        .collect();
    sql.push_str(&format!(" AND {column} IN ({})", placeholders.join(", ")));
}

fn push_equals(sql: &mut String, binds: &mut Vec<Bind>, condition: &str, value: String) {
    binds.push(Bind::Text(value));
    sql.push_str(&format!(" AND {condition} ${}", binds.len()));
}

/// The `WHERE` clause (after `instance_id = $1`) of a filtered listing.
fn filter_clause(filter: &OccurrenceFilter, binds: &mut Vec<Bind>) -> String {
    let mut sql = String::new();
    if let Some(account_id) = &filter.account_id {
        push_equals(&mut sql, binds, "account_id =", account_id.clone());
    }
    push_in(&mut sql, binds, "provider_id", &filter.provider_ids);
    if let Some(note_provider_id) = &filter.note_provider_id {
        push_equals(
            &mut sql,
            binds,
            "note_provider_id =",
            note_provider_id.clone(),
        );
    }
    if let Some(note_id) = &filter.note_id {
        push_equals(&mut sql, binds, "note_id =", note_id.clone());
    }
    push_in(&mut sql, binds, "kind", &filter.kinds);
    push_in(&mut sql, binds, "severity", &filter.severities);
    let statuses: Vec<String> = filter
        .statuses
        .iter()
        .map(|status| status.as_str().to_owned())
        .collect();
    push_in(&mut sql, binds, "status", &statuses);
    if let Some(resource) = &filter.resource {
        push_equals(&mut sql, binds, "resource =", resource.clone());
    }
    if let Some(since) = filter.since {
        push_equals(&mut sql, binds, "last_seen >=", format_timestamp(since));
    }
    if let Some(until) = filter.until {
        push_equals(&mut sql, binds, "last_seen <", format_timestamp(until));
    }
    sql
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(value) => query.bind(value),
            Bind::Int(value) => query.bind(value),
        };
    }
    query
}

impl SqlStore {
    /// Records occurrences on an open transaction (see `FindingsStore::record_occurrences`), so
    /// that other writes can commit atomically with them (the insights ingest journal).
    pub(crate) async fn record_occurrences_in(
        &self,
        transaction: &mut sqlx::AnyConnection,
        instance_id: &str,
        occurrences: &[OccurrenceRecord],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<RecordOutcome>> {
        // One row per identity: a statement may not update the same row twice (PostgreSQL
        // refuses), so repeats inside the batch are folded into a count here. The last report's
        // body wins, as it would if they had been sent one by one.
        let mut order: Vec<(&OccurrenceRecord, i64)> = Vec::new();
        let mut index_of: HashMap<(&str, &str, &str), usize> = HashMap::new();
        for occurrence in occurrences {
            let key = (
                occurrence.account_id.as_str(),
                occurrence.provider_id.as_str(),
                occurrence.id.as_str(),
            );
            match index_of.get(&key) {
                Some(&index) => {
                    order[index].0 = occurrence;
                    order[index].1 += 1;
                }
                None => {
                    index_of.insert(key, order.len());
                    order.push((occurrence, 1));
                }
            }
        }
        let at_text = format_timestamp(at);
        let mut providers: Vec<(&str, &str)> = order
            .iter()
            .map(|(occurrence, _)| {
                (
                    occurrence.account_id.as_str(),
                    occurrence.provider_id.as_str(),
                )
            })
            .collect();
        providers.sort_unstable();
        providers.dedup();
        for (account_id, provider_id) in providers {
            self.register_provider_in(transaction, instance_id, account_id, provider_id, at)
                .await?;
        }
        let mut returned: HashMap<(String, String, String), (i64, FindingStatus)> =
            HashMap::with_capacity(order.len());
        for chunk in order.chunks(OCCURRENCES_PER_STATEMENT) {
            // SQLite gets anonymous `?` parameters: sqlx looks every parameter's name up, and
            // SQLite finds a name by scanning all named ones, which made numbered parameters
            // quadratic in the batch size (most of the ingest time, measured).
            let anonymous = self.dialect() == Dialect::Sqlite;
            let values: Vec<String> = (0..chunk.len())
                .map(|row| {
                    if anonymous {
                        ANONYMOUS_OCCURRENCE_VALUES.to_owned()
                    } else {
                        occurrence_values(row * BINDS_PER_OCCURRENCE + 1)
                    }
                })
                .collect();
            let statement = format!(
                "INSERT INTO finding_occurrences ({OCCURRENCE_INSERT_COLUMNS}) VALUES {} \
                 ON CONFLICT (instance_id, account_id, provider_id, id) DO UPDATE SET \
                 note_provider_id = excluded.note_provider_id, note_id = excluded.note_id, \
                 kind = excluded.kind, severity = excluded.severity, \
                 certainty = excluded.certainty, resource = excluded.resource, \
                 body = excluded.body, updated_at = excluded.updated_at, \
                 last_seen = excluded.last_seen, \
                 occurrence_count = finding_occurrences.occurrence_count + excluded.occurrence_count, \
                 status = CASE WHEN {REOPENS} THEN 'open' ELSE finding_occurrences.status END, \
                 status_reason = CASE WHEN {REOPENS} THEN NULL ELSE finding_occurrences.status_reason END, \
                 suppressed_until = CASE WHEN {REOPENS} THEN NULL ELSE finding_occurrences.suppressed_until END, \
                 opened_at = CASE WHEN {REOPENS} THEN excluded.opened_at ELSE finding_occurrences.opened_at END, \
                 notify_pending = CASE WHEN {REOPENS} THEN excluded.notify_pending ELSE finding_occurrences.notify_pending END \
                 RETURNING account_id, provider_id, id, occurrence_count, status",
                values.join(", ")
            );
            let mut query = sqlx::query(self.sql(&statement));
            for (occurrence, count) in chunk {
                query = query
                    .bind(instance_id)
                    .bind(&occurrence.account_id)
                    .bind(&occurrence.provider_id)
                    .bind(&occurrence.id)
                    .bind(&occurrence.note_provider_id)
                    .bind(&occurrence.note_id)
                    .bind(&occurrence.kind)
                    .bind(occurrence.severity.clone())
                    .bind(occurrence.certainty.clone())
                    .bind(occurrence.resource.clone())
                    .bind(*count)
                    .bind(notifies(&occurrence.kind))
                    .bind(occurrence.body.to_string())
                    .bind(at_text.clone());
                if anonymous {
                    // `?` cannot be reused: the time fills five columns, so it is bound five times.
                    for _ in 0..4 {
                        query = query.bind(at_text.clone());
                    }
                }
            }
            for row in query
                .fetch_all(&mut *transaction)
                .await
                .map_err(|error| classify(error, "occurrence"))?
            {
                returned.insert(
                    (
                        text(&row, "account_id")?,
                        text(&row, "provider_id")?,
                        text(&row, "id")?,
                    ),
                    (
                        row.try_get("occurrence_count").map_err(corrupt)?,
                        text(&row, "status")?.parse().map_err(StoreError::Corrupt)?,
                    ),
                );
            }
        }
        order
            .iter()
            .map(|(occurrence, count)| {
                let key = (
                    occurrence.account_id.clone(),
                    occurrence.provider_id.clone(),
                    occurrence.id.clone(),
                );
                let (occurrence_count, status) = returned.get(&key).copied().ok_or_else(|| {
                    StoreError::Corrupt(format!("no row returned for occurrence {}", key.2))
                })?;
                Ok(RecordOutcome {
                    account_id: key.0,
                    provider_id: key.1,
                    id: key.2,
                    occurrence_count,
                    status,
                    // An existing row returns its old count plus this batch's, so only a new
                    // row returns exactly this batch's count.
                    created: occurrence_count == *count,
                })
            })
            .collect()
    }

    async fn register_provider_in(
        &self,
        executor: &mut sqlx::AnyConnection,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(
            "INSERT INTO finding_providers (instance_id, account_id, id, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (instance_id, account_id, id) DO NOTHING",
        ))
        .bind(instance_id)
        .bind(account_id)
        .bind(provider_id)
        .bind(format_timestamp(at))
        .execute(&mut *executor)
        .await
        .map_err(|error| classify(error, &format!("provider {provider_id}")))?;
        Ok(())
    }
}

#[async_trait]
impl FindingsStore for SqlStore {
    async fn register_provider(
        &self,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut connection = self.pool.acquire().await?;
        self.register_provider_in(&mut connection, instance_id, account_id, provider_id, at)
            .await
    }

    async fn list_providers(
        &self,
        instance_id: &str,
        account_id: &str,
        query: &ProviderQuery,
    ) -> StoreResult<(Vec<StoredProvider>, u64)> {
        let mut binds = vec![
            Bind::Text(instance_id.to_owned()),
            Bind::Text(account_id.to_owned()),
        ];
        let mut condition = String::from("instance_id = $1 AND account_id = $2");
        if let Some(start) = &query.start_provider_id {
            push_equals(&mut condition, &mut binds, "id >=", start.clone());
        }
        if let Some(end) = &query.end_provider_id {
            push_equals(&mut condition, &mut binds, "id <=", end.clone());
        }
        let count_binds: Vec<Bind> = binds
            .iter()
            .map(|bind| match bind {
                Bind::Text(value) => Bind::Text(value.clone()),
                Bind::Int(value) => Bind::Int(*value),
            })
            .collect();
        let total: i64 = bind_all(
            sqlx::query(self.sql(&format!(
                "SELECT COUNT(*) FROM finding_providers WHERE {condition}"
            ))),
            count_binds,
        )
        .fetch_one(&self.pool)
        .await?
        .try_get(0)
        .map_err(corrupt)?;
        binds.push(Bind::Int(i64::from(query.limit)));
        binds.push(Bind::Int(i64::try_from(query.skip).unwrap_or(i64::MAX)));
        let page_sql = format!(
            "SELECT account_id, id, created_at FROM finding_providers WHERE {condition} \
             ORDER BY id LIMIT ${} OFFSET ${}",
            binds.len() - 1,
            binds.len()
        );
        let providers = bind_all(sqlx::query(self.sql(&page_sql)), binds)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(StoredProvider {
                    account_id: text(row, "account_id")?,
                    id: text(row, "id")?,
                    created_at: timestamp(row, "created_at")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((providers, u64::try_from(total).unwrap_or(0)))
    }

    async fn insert_note(
        &self,
        instance_id: &str,
        note: &NoteRecord,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredNote> {
        let mut transaction = self.pool.begin().await?;
        self.register_provider_in(
            &mut transaction,
            instance_id,
            &note.account_id,
            &note.provider_id,
            at,
        )
        .await?;
        let row = sqlx::query(self.sql(&format!(
            "INSERT INTO finding_notes (instance_id, {NOTE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {NOTE_COLUMNS}"
        )))
        .bind(instance_id)
        .bind(&note.account_id)
        .bind(&note.provider_id)
        .bind(&note.id)
        .bind(&note.kind)
        .bind(note.body.to_string())
        .bind(format_timestamp(at))
        .fetch_one(&mut *transaction)
        .await
        .map_err(|error| classify(error, &format!("note {}", note.id)))?;
        let stored = note_from_row(&row)?;
        transaction.commit().await?;
        Ok(stored)
    }

    async fn update_note(
        &self,
        instance_id: &str,
        note: &NoteRecord,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredNote> {
        sqlx::query(self.sql(&format!(
            "UPDATE finding_notes SET kind = $1, body = $2, updated_at = $3 \
             WHERE instance_id = $4 AND account_id = $5 AND provider_id = $6 AND id = $7 \
             RETURNING {NOTE_COLUMNS}"
        )))
        .bind(&note.kind)
        .bind(note.body.to_string())
        .bind(format_timestamp(at))
        .bind(instance_id)
        .bind(&note.account_id)
        .bind(&note.provider_id)
        .bind(&note.id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(note_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("note {}", note.id)))
    }

    async fn get_note(
        &self,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        note_id: &str,
    ) -> StoreResult<Option<StoredNote>> {
        sqlx::query(self.sql(&format!(
            "SELECT {NOTE_COLUMNS} FROM finding_notes \
             WHERE instance_id = $1 AND account_id = $2 AND provider_id = $3 AND id = $4"
        )))
        .bind(instance_id)
        .bind(account_id)
        .bind(provider_id)
        .bind(note_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(note_from_row)
        .transpose()
    }

    async fn delete_note(
        &self,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        note_id: &str,
    ) -> StoreResult<bool> {
        let result = sqlx::query(self.sql(
            "DELETE FROM finding_notes \
             WHERE instance_id = $1 AND account_id = $2 AND provider_id = $3 AND id = $4",
        ))
        .bind(instance_id)
        .bind(account_id)
        .bind(provider_id)
        .bind(note_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn list_notes(
        &self,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<StoredNote>> {
        sqlx::query(self.sql(&format!(
            "SELECT {NOTE_COLUMNS} FROM finding_notes \
             WHERE instance_id = $1 AND account_id = $2 AND provider_id = $3 AND id > $4 \
             ORDER BY id LIMIT $5"
        )))
        .bind(instance_id)
        .bind(account_id)
        .bind(provider_id)
        .bind(after.unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(note_from_row)
        .collect()
    }

    async fn insert_occurrence(
        &self,
        instance_id: &str,
        occurrence: &OccurrenceRecord,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredOccurrence> {
        let mut transaction = self.pool.begin().await?;
        self.register_provider_in(
            &mut transaction,
            instance_id,
            &occurrence.account_id,
            &occurrence.provider_id,
            at,
        )
        .await?;
        let row = sqlx::query(self.sql(&format!(
            "INSERT INTO finding_occurrences ({OCCURRENCE_INSERT_COLUMNS}) VALUES {} \
             RETURNING {OCCURRENCE_COLUMNS}",
            occurrence_values(1)
        )))
        .bind(instance_id)
        .bind(&occurrence.account_id)
        .bind(&occurrence.provider_id)
        .bind(&occurrence.id)
        .bind(&occurrence.note_provider_id)
        .bind(&occurrence.note_id)
        .bind(&occurrence.kind)
        .bind(occurrence.severity.clone())
        .bind(occurrence.certainty.clone())
        .bind(occurrence.resource.clone())
        .bind(1_i64)
        .bind(notifies(&occurrence.kind))
        .bind(occurrence.body.to_string())
        .bind(format_timestamp(at))
        .fetch_one(&mut *transaction)
        .await
        .map_err(|error| classify(error, &format!("occurrence {}", occurrence.id)))?;
        let stored = occurrence_from_row(&row)?;
        transaction.commit().await?;
        Ok(stored)
    }

    async fn record_occurrences(
        &self,
        instance_id: &str,
        occurrences: &[OccurrenceRecord],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<RecordOutcome>> {
        let mut transaction = self.pool.begin().await?;
        let outcomes = self
            .record_occurrences_in(&mut transaction, instance_id, occurrences, at)
            .await?;
        transaction.commit().await?;
        Ok(outcomes)
    }

    async fn update_occurrence(
        &self,
        instance_id: &str,
        occurrence: &OccurrenceRecord,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredOccurrence> {
        sqlx::query(self.sql(&format!(
            "UPDATE finding_occurrences SET note_provider_id = $1, note_id = $2, kind = $3, \
             severity = $4, certainty = $5, resource = $6, body = $7, updated_at = $8 \
             WHERE instance_id = $9 AND account_id = $10 AND provider_id = $11 AND id = $12 \
             RETURNING {OCCURRENCE_COLUMNS}"
        )))
        .bind(&occurrence.note_provider_id)
        .bind(&occurrence.note_id)
        .bind(&occurrence.kind)
        .bind(occurrence.severity.clone())
        .bind(occurrence.certainty.clone())
        .bind(occurrence.resource.clone())
        .bind(occurrence.body.to_string())
        .bind(format_timestamp(at))
        .bind(instance_id)
        .bind(&occurrence.account_id)
        .bind(&occurrence.provider_id)
        .bind(&occurrence.id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(occurrence_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("occurrence {}", occurrence.id)))
    }

    async fn get_occurrence(
        &self,
        instance_id: &str,
        key: &OccurrenceKey,
    ) -> StoreResult<Option<StoredOccurrence>> {
        sqlx::query(self.sql(&format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM finding_occurrences \
             WHERE instance_id = $1 AND account_id = $2 AND provider_id = $3 AND id = $4"
        )))
        .bind(instance_id)
        .bind(&key.account_id)
        .bind(&key.provider_id)
        .bind(&key.id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(occurrence_from_row)
        .transpose()
    }

    async fn delete_occurrence(&self, instance_id: &str, key: &OccurrenceKey) -> StoreResult<bool> {
        let result = sqlx::query(self.sql(
            "DELETE FROM finding_occurrences \
             WHERE instance_id = $1 AND account_id = $2 AND provider_id = $3 AND id = $4",
        ))
        .bind(instance_id)
        .bind(&key.account_id)
        .bind(&key.provider_id)
        .bind(&key.id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn list_occurrences(
        &self,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<StoredOccurrence>> {
        sqlx::query(self.sql(&format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM finding_occurrences \
             WHERE instance_id = $1 AND account_id = $2 AND provider_id = $3 AND id > $4 \
             ORDER BY id LIMIT $5"
        )))
        .bind(instance_id)
        .bind(account_id)
        .bind(provider_id)
        .bind(after.unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(occurrence_from_row)
        .collect()
    }

    async fn list_note_occurrences(
        &self,
        instance_id: &str,
        account_id: &str,
        note_provider_id: &str,
        note_id: &str,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredOccurrence>> {
        sqlx::query(self.sql(&format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM finding_occurrences \
             WHERE instance_id = $1 AND account_id = $2 AND note_provider_id = $3 AND note_id = $4 \
             AND seq > $5 ORDER BY seq LIMIT $6"
        )))
        .bind(instance_id)
        .bind(account_id)
        .bind(note_provider_id)
        .bind(note_id)
        .bind(after_seq.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(occurrence_from_row)
        .collect()
    }

    async fn query_occurrences(
        &self,
        instance_id: &str,
        filter: &OccurrenceFilter,
        after: Option<&OccurrenceCursor>,
        limit: u32,
    ) -> StoreResult<Vec<StoredOccurrence>> {
        let mut binds = vec![Bind::Text(instance_id.to_owned())];
        let mut statement = format!(
            "SELECT {OCCURRENCE_COLUMNS} FROM finding_occurrences WHERE instance_id = $1{}",
            filter_clause(filter, &mut binds)
        );
        if let Some(cursor) = after {
            binds.push(Bind::Text(format_timestamp(cursor.last_seen)));
            binds.push(Bind::Int(cursor.seq));
            statement.push_str(&format!(
                " AND (last_seen, seq) < (${}, ${})",
                binds.len() - 1,
                binds.len()
            ));
        }
        binds.push(Bind::Int(i64::from(limit)));
        statement.push_str(&format!(
            " ORDER BY last_seen DESC, seq DESC LIMIT ${}",
            binds.len()
        ));
        bind_all(sqlx::query(self.sql(&statement)), binds)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(occurrence_from_row)
            .collect()
    }

    async fn count_occurrences(
        &self,
        instance_id: &str,
        filter: &OccurrenceFilter,
    ) -> StoreResult<u64> {
        let mut binds = vec![Bind::Text(instance_id.to_owned())];
        let statement = format!(
            "SELECT COUNT(*) FROM finding_occurrences WHERE instance_id = $1{}",
            filter_clause(filter, &mut binds)
        );
        let count: i64 = bind_all(sqlx::query(self.sql(&statement)), binds)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)
            .map_err(corrupt)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn set_occurrence_status(
        &self,
        instance_id: &str,
        keys: &[OccurrenceKey],
        change: &StatusChange,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<OccurrenceKey>> {
        let mut transaction = self.pool.begin().await?;
        let mut changed = Vec::new();
        for key in keys {
            let result = sqlx::query(self.sql(
                "UPDATE finding_occurrences SET status = $1, status_reason = $2, \
                 suppressed_until = $3, updated_at = $4 \
                 WHERE instance_id = $5 AND account_id = $6 AND provider_id = $7 AND id = $8",
            ))
            .bind(change.status.as_str())
            .bind(change.reason.clone())
            .bind(change.suppressed_until.map(format_timestamp))
            .bind(format_timestamp(at))
            .bind(instance_id)
            .bind(&key.account_id)
            .bind(&key.provider_id)
            .bind(&key.id)
            .execute(&mut *transaction)
            .await?;
            if result.rows_affected() == 1 {
                changed.push(key.clone());
            }
        }
        transaction.commit().await?;
        Ok(changed)
    }

    async fn expire_suppressions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let result = sqlx::query(self.sql(
            "UPDATE finding_occurrences SET status = 'open', status_reason = NULL, \
             suppressed_until = NULL, opened_at = $1, updated_at = $1, \
             notify_pending = CASE WHEN kind = 'FINDING' THEN 1 ELSE 0 END \
             WHERE status = 'suppressed' AND suppressed_until IS NOT NULL AND suppressed_until <= $1",
        ))
        .bind(format_timestamp(now))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn pending_notifications(&self, limit: u32) -> StoreResult<Vec<PendingNotification>> {
        sqlx::query(self.sql(&format!(
            "SELECT instance_id, {OCCURRENCE_COLUMNS} FROM finding_occurrences \
             WHERE notify_pending = 1 ORDER BY seq LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(PendingNotification {
                instance_id: text(row, "instance_id")?,
                occurrence: occurrence_from_row(row)?,
            })
        })
        .collect()
    }

    async fn clear_pending_notification(
        &self,
        instance_id: &str,
        key: &OccurrenceKey,
        opened_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(self.sql(
            "UPDATE finding_occurrences SET notify_pending = 0 \
             WHERE instance_id = $1 AND account_id = $2 AND provider_id = $3 AND id = $4 \
             AND opened_at = $5",
        ))
        .bind(instance_id)
        .bind(&key.account_id)
        .bind(&key.provider_id)
        .bind(&key.id)
        .bind(format_timestamp(opened_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_a_batch_numbers_its_own_binds() {
        assert!(occurrence_values(1).starts_with("($1, $2,"));
        let second = occurrence_values(BINDS_PER_OCCURRENCE + 1);
        assert!(second.starts_with("($15, $16,"), "{second}");
        assert!(
            second.ends_with("$28, $28, $28, $28, $28, 'open')"),
            "{second}"
        );
        let columns = OCCURRENCE_INSERT_COLUMNS.split(',').count();
        let values = occurrence_values(1).split(',').count();
        assert_eq!(columns, values, "one value per inserted column");
        assert_eq!(ANONYMOUS_OCCURRENCE_VALUES.split(',').count(), columns);
    }

    #[test]
    fn filters_number_placeholders_after_the_instance() {
        let mut binds = vec![Bind::Text("i".into())];
        let clause = filter_clause(
            &OccurrenceFilter {
                severities: vec!["HIGH".into(), "CRITICAL".into()],
                resource: Some("crn:x".into()),
                ..OccurrenceFilter::default()
            },
            &mut binds,
        );
        assert_eq!(clause, " AND severity IN ($2, $3) AND resource = $4");
        assert_eq!(binds.len(), 4);
    }
}
