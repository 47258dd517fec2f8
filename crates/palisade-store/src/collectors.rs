//! Collector agents: their registration, heartbeats and targets.
//!
//! A collector is created pending, with the SHA-256 of a one-time registration code. The
//! exchange claims the code and stores the agent's API key in **one transaction**, so a code
//! works once even when two agents race with it. Deleting a collector revokes its key in the
//! same transaction, so a deleted collector cannot push another batch.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{StoreResult, StoredKey};

/// A collector as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCollector {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The JSON array of targets (shape owned by the API layer).
    pub targets: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Until when the registration code works; `None` once it was used.
    pub code_expires_at: Option<DateTime<Utc>>,
    /// The collector's API key, once registered.
    pub key_id: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// What the agent reported about itself at its last heartbeat.
    pub agent_version: Option<String>,
    pub host_name: Option<String>,
    /// The latest job result the agent reported (JSON owned by the API layer).
    pub last_job: Option<serde_json::Value>,
}

/// What an agent reports at a heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    pub at: DateTime<Utc>,
    pub agent_version: Option<String>,
    pub host_name: Option<String>,
    /// The latest job result, when a job finished since the last heartbeat.
    pub last_job: Option<serde_json::Value>,
}

/// Collectors of an instance.
#[async_trait]
pub trait CollectorStore {
    /// Stores a new, pending collector whose registration code hashes to `code_hash`.
    async fn create_collector(
        &self,
        instance_id: &str,
        collector: &StoredCollector,
        code_hash: &str,
    ) -> StoreResult<()>;
    /// Returns one collector.
    async fn get_collector(
        &self,
        instance_id: &str,
        collector_id: &str,
    ) -> StoreResult<Option<StoredCollector>>;
    /// Lists the collectors of an instance, oldest first.
    async fn list_collectors(&self, instance_id: &str) -> StoreResult<Vec<StoredCollector>>;
    /// Replaces name, description and targets; false if there is no such collector.
    async fn update_collector(
        &self,
        instance_id: &str,
        collector_id: &str,
        name: &str,
        description: &str,
        targets: &serde_json::Value,
    ) -> StoreResult<bool>;
    /// Deletes a collector and revokes its key in one transaction; false if there was none.
    async fn delete_collector(
        &self,
        instance_id: &str,
        collector_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Finds the pending collector whose unexpired code hashes to `code_hash` (any instance):
    /// `(instance id, collector)`.
    async fn find_registration(
        &self,
        code_hash: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<(String, StoredCollector)>>;
    /// Claims the code and stores `key` as the collector's key, in one transaction. False (and
    /// nothing stored) when the code was used, replaced or expired meanwhile.
    async fn complete_registration(
        &self,
        instance_id: &str,
        collector_id: &str,
        code_hash: &str,
        key: &StoredKey,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Gives a collector that is not registered yet a new code; false if it is registered
    /// (or absent).
    async fn renew_registration_code(
        &self,
        instance_id: &str,
        collector_id: &str,
        code_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Records a heartbeat of the collector whose key is `key_id`; false if that key does not
    /// belong to this collector.
    async fn record_heartbeat(
        &self,
        instance_id: &str,
        collector_id: &str,
        key_id: &str,
        heartbeat: &Heartbeat,
    ) -> StoreResult<bool>;
}
