//! The inventory: the latest configuration of every resource, every version ever pushed, and a
//! quarantine for records that failed validation.
//!
//! Pushes are idempotent on (resource id, `collected_at`): a collector that retries a batch adds
//! nothing. A version older than the stored one is kept in the history but does not replace the
//! latest configuration, so batches arriving out of order cannot roll a resource back.

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
    /// Lists the latest version of matching resources in id order.
    async fn list_resources(
        &self,
        instance_id: &str,
        filter: &ResourceFilter,
    ) -> StoreResult<Vec<Resource>>;
    /// Counts matching resources (ignoring `after` and `limit`).
    async fn count_resources(&self, instance_id: &str, filter: &ResourceFilter)
    -> StoreResult<u64>;
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
