//! The inventory: the latest configuration of every resource, every version ever pushed, and a
//! quarantine for records that failed validation.
//!
//! Pushes are idempotent on (resource id, `collected_at`): a collector that retries a batch adds
//! nothing. A version older than the stored one is kept in the history but does not replace the
//! latest configuration, so batches arriving out of order cannot roll a resource back.
//!
//! A batch may carry an idempotency key ([`InventoryBatch::batch_id`]): the batch is recorded in
//! the transaction that writes its resources and quarantined records, so a batch retried after
//! a lost answer (or a server crash after the commit) is answered from its record and never
//! applied twice — its quarantined records included.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_model::resource::Resource;

use crate::StoreResult;

/// What a push did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// New versions stored.
    pub stored: u64,
    /// Versions already stored (same id and `collected_at`): retries.
    pub duplicates: u64,
}

/// Which resources to list. Every field narrows; `tags` are `(key, value)` pairs that must all
/// match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceFilter {
    pub environment: Option<String>,
    pub account_id: Option<String>,
    pub service_name: Option<String>,
    pub resource_kind: Option<String>,
    pub region: Option<String>,
    pub resource_group: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Only ids greater than this (pagination).
    pub after: Option<String>,
    /// Only ids up to this one, included (a scan shard's range).
    pub until: Option<String>,
    pub limit: Option<u32>,
}

/// A rejected record, kept so nothing sent is lost.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantinedRecord {
    pub id: String,
    /// Where it came from (`inventory`, `activity`, …).
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub reason: String,
    pub record: serde_json::Value,
}

/// One pushed batch: good resources, records refused by validation, and the idempotency key.
#[derive(Debug, Clone, Copy)]
pub struct InventoryBatch<'a> {
    /// The agent's batch id; `None` for a push without one (applied every time).
    pub batch_id: Option<&'a str>,
    /// The key that pushed it (recorded with the batch).
    pub key_id: &'a str,
    pub resources: &'a [Resource],
    pub quarantined: &'a [QuarantinedRecord],
    /// What the answer says about the refused records (JSON array), kept for replays.
    pub rejected: &'a serde_json::Value,
}

/// A recorded batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRecord {
    pub batch_id: String,
    pub key_id: String,
    pub received_at: DateTime<Utc>,
    pub outcome: PushOutcome,
    pub rejected: serde_json::Value,
}

/// What [`InventoryStore::push_batch`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOutcome {
    /// The batch was written now.
    Applied(PushOutcome),
    /// The batch id was already recorded: nothing was written; this is the first answer.
    Replayed(BatchRecord),
}

/// Resources of an instance.
#[async_trait]
pub trait InventoryStore {
    /// Stores a batch in one transaction (all or nothing), idempotently.
    async fn push_resources(
        &self,
        instance_id: &str,
        resources: &[Resource],
        at: DateTime<Utc>,
    ) -> StoreResult<PushOutcome>;
    /// Stores a batch — its resources, its quarantined records and, with a batch id, its record —
    /// in one transaction; a batch id already recorded writes nothing and returns the record.
    async fn push_batch(
        &self,
        instance_id: &str,
        batch: &InventoryBatch<'_>,
        at: DateTime<Utc>,
    ) -> StoreResult<BatchOutcome>;
    /// Returns one recorded batch.
    async fn get_inventory_batch(
        &self,
        instance_id: &str,
        batch_id: &str,
    ) -> StoreResult<Option<BatchRecord>>;
    /// Lists recorded batches in batch-id order, after `after`, at most `limit`.
    async fn list_inventory_batches(
        &self,
        instance_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<BatchRecord>>;
    /// Lists the latest version of matching resources in id order.
    async fn list_resources(
        &self,
        instance_id: &str,
        filter: &ResourceFilter,
    ) -> StoreResult<Vec<Resource>>;
    /// Counts matching resources (ignoring `after`, `until` and `limit`).
    async fn count_resources(&self, instance_id: &str, filter: &ResourceFilter)
    -> StoreResult<u64>;
    /// Every `every`-th id of the matching resources in id order (ignoring `after`, `until`
    /// and `limit`): the boundaries that cut them into ranges of `every` resources, read from
    /// the index without the resources' bodies.
    async fn resource_id_boundaries(
        &self,
        instance_id: &str,
        filter: &ResourceFilter,
        every: u32,
    ) -> StoreResult<Vec<String>>;
    /// Returns every stored version of one resource, oldest first.
    async fn resource_history(
        &self,
        instance_id: &str,
        resource_id: &str,
    ) -> StoreResult<Vec<Resource>>;
    /// Keeps rejected records.
    async fn quarantine(&self, instance_id: &str, records: &[QuarantinedRecord])
    -> StoreResult<()>;
    /// Lists quarantined records of a source, newest first.
    async fn list_quarantine(
        &self,
        instance_id: &str,
        source: &str,
        limit: u32,
    ) -> StoreResult<Vec<QuarantinedRecord>>;
}
