//! Storage for Palisade's domain objects, behind traits, with two backends.
//!
//! - **SQLite** (the embedded default): one file under the data directory, WAL journal with
//!   `synchronous=FULL`, so a committed write — and therefore a 2xx answer — is on disk.
//! - **PostgreSQL**: for several server processes sharing one database.
//!
//! Both are one implementation, [`SqlStore`], over `sqlx`'s `Any` driver: the schema is portable
//! SQL (TEXT, BIGINT; JSON bodies as TEXT; timestamps as fixed-width RFC 3339 text that sorts
//! chronologically), so the same statements serve both and cannot drift apart. The few dialect
//! differences live in [`migrations`] and in [`SqlStore::dialect`]. The backend is chosen by URL:
//! `sqlite://path` or `postgres://…` (see [`connect`]).
//!
//! The traits ([`InstanceStore`], [`KeyStore`], [`DocumentStore`], and one per data family:
//! inventory, reports and scan shards, findings, notifications, admission decisions,
//! collectors, dashboard sessions) are what the server sees; every query that reads tenant data takes the instance id,
//! so no code path can reach another instance's objects by forgetting a filter. The conformance
//! suite in `tests/` runs against both
//! backends.

pub mod collectors;
pub mod decisions;
mod error;
pub mod findings;
pub mod insights;
pub mod inventory;
pub mod locks;
pub mod migrations;
pub mod notifications;
pub mod reports;
pub mod scans;
pub mod sessions;
mod sql;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod time;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_model::tenancy::{ApiKey, Instance, Role};

pub use collectors::{CollectorStore, Heartbeat, StoredCollector};
pub use decisions::{DecisionFilter, DecisionStore, StoredDecision};
pub use error::StoreError;
pub use findings::FindingsStore;
pub use insights::InsightsStore;
pub use inventory::{
    BatchOutcome, BatchRecord, InventoryBatch, InventoryStore, PushOutcome, QuarantinedRecord,
    ResourceFilter,
};
pub use notifications::NotificationStore;
pub use reports::{EvaluationFilter, EvaluationRow, ReportStore, ReportSummary, StoredReport};
pub use scans::{ScanRun, ScanShard, ScanStore, ShardRef};
pub use sessions::{SessionStore, StoredSession};
pub use sql::{Dialect, SqlStore};
pub use time::{format_timestamp, parse_timestamp};

/// Result type of every store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the store a URL names and brings its schema up to date.
///
/// `sqlite://PATH` (created if missing) or `postgres://USER@HOST:PORT/DB`.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(SqlStore::connect(url).await?))
}

/// Everything the server needs from storage.
pub trait Store:
    InstanceStore
    + KeyStore
    + DocumentStore
    + InventoryStore
    + ReportStore
    + ScanStore
    + FindingsStore
    + NotificationStore
    + InsightsStore
    + DecisionStore
    + CollectorStore
    + SessionStore
    + Send
    + Sync
    + 'static
{
}

impl<
    T: InstanceStore
        + KeyStore
        + DocumentStore
        + InventoryStore
        + ReportStore
        + ScanStore
        + FindingsStore
        + NotificationStore
        + InsightsStore
        + DecisionStore
        + CollectorStore
        + SessionStore
        + Send
        + Sync
        + 'static,
> Store for T
{
}

/// Instances (tenants).
#[async_trait]
pub trait InstanceStore {
    /// Checks that the backend answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;
    /// Creates an instance; `Conflict` if the id exists.
    async fn create_instance(&self, instance: &Instance) -> StoreResult<()>;
    /// Returns the instance, if it exists.
    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<Instance>>;
    /// Lists every instance, oldest first.
    async fn list_instances(&self) -> StoreResult<Vec<Instance>>;
}

/// An API key as stored: the public part plus the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key: ApiKey,
    /// PHC string of the secret's hash (argon2id); the secret itself is never stored.
    pub secret_hash: String,
}

/// API keys.
#[async_trait]
pub trait KeyStore {
    /// Stores a new key; `NotFound` if its instance does not exist.
    async fn create_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Looks a key up by id across instances: authentication starts from the key, not the
    /// instance. Callers must then check the key's instance against the request's.
    async fn find_key(&self, key_id: &str) -> StoreResult<Option<StoredKey>>;
    /// Lists the keys of one instance (revoked ones included), oldest first.
    async fn list_keys(&self, instance_id: &str) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key of this instance; returns false if the instance has no such active key.
    async fn revoke_key(
        &self,
        instance_id: &str,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Counts the active keys of an instance that have `role`.
    async fn count_active_keys(&self, instance_id: &str, role: Role) -> StoreResult<u64>;
}

/// A stored JSON document of some kind (profile, scope, rule …) in an instance.
///
/// Configuration objects of the SCC-compatible APIs are documents: the API layer owns their
/// shape and validation; the store owns identity, versions (for `If-Match`) and tenancy.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub kind: String,
    pub id: String,
    /// Starts at 1 and grows by one on every update; the API's ETag.
    pub version: i64,
    pub body: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which page of documents to list: ids greater than `after`, at most `limit`, in id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentQuery {
    pub after: Option<String>,
    pub limit: Option<u32>,
}

impl DocumentQuery {
    /// Starts after this id.
    pub fn with_after(mut self, after: impl Into<String>) -> Self {
        self.after = Some(after.into());
        self
    }

    /// Returns at most this many documents.
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// Versioned JSON documents, scoped by instance and kind.
#[async_trait]
pub trait DocumentStore {
    /// Inserts a new document at version 1; `Conflict` if the id is taken.
    async fn insert_document(
        &self,
        instance_id: &str,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<Document>;
    /// Returns one document.
    async fn get_document(
        &self,
        instance_id: &str,
        kind: &str,
        id: &str,
    ) -> StoreResult<Option<Document>>;
    /// Replaces a document's body. With `expected_version`, fails with `VersionMismatch` unless
    /// it is the current version (optimistic concurrency for `If-Match`).
    async fn update_document(
        &self,
        instance_id: &str,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
        expected_version: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<Document>;
    /// Deletes a document; returns false if it did not exist.
    async fn delete_document(&self, instance_id: &str, kind: &str, id: &str) -> StoreResult<bool>;
    /// Lists documents of a kind in id order.
    async fn list_documents(
        &self,
        instance_id: &str,
        kind: &str,
        query: &DocumentQuery,
    ) -> StoreResult<Vec<Document>>;
    /// Counts documents of a kind.
    async fn count_documents(&self, instance_id: &str, kind: &str) -> StoreResult<u64>;
}
