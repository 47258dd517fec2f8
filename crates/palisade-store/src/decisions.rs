//! The admission decision log of configuration governance: who asked to create or change what,
//! which rules it violated, and whether it was allowed.
//!
//! Decisions are append-only rows, listed newest first with filters. Their ids are UUIDv7, so
//! id order is time order and a page token is simply the last id of the previous page.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreResult;

/// One decision as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDecision {
    /// UUIDv7 (time ordered).
    pub id: String,
    pub decided_at: DateTime<Utc>,
    /// The API key that asked.
    pub key_id: String,
    /// Where the request came from: `api`, `kubernetes`, `terraform`, …
    pub source: String,
    /// `create` or `update`.
    pub operation: String,
    pub allowed: bool,
    pub account_id: String,
    pub service_name: String,
    pub resource_kind: String,
    pub resource_id: String,
    /// Rules the request violated (any action); read back in rule id order.
    pub violated_rule_ids: Vec<String>,
    /// The whole decision, as the API shows it.
    pub body: serde_json::Value,
}

/// Which decisions to list. Every set field must match; `before` is the last id of the previous
/// page (results are newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionFilter {
    pub allowed: Option<bool>,
    pub operation: Option<String>,
    pub source: Option<String>,
    pub key_id: Option<String>,
    pub account_id: Option<String>,
    pub service_name: Option<String>,
    pub resource_kind: Option<String>,
    pub resource_id: Option<String>,
    /// Decisions in which this rule was violated.
    pub rule_id: Option<String>,
    /// Decided at or after.
    pub since: Option<DateTime<Utc>>,
    /// Decided before.
    pub until: Option<DateTime<Utc>>,
    pub before: Option<String>,
    pub limit: Option<u32>,
}

/// The decision log of each instance.
#[async_trait]
pub trait DecisionStore {
    /// Appends decisions in one transaction (a batch so that a busy admission endpoint pays
    /// one commit for many decisions).
    async fn record_decisions(
        &self,
        instance_id: &str,
        decisions: &[StoredDecision],
    ) -> StoreResult<()>;
    /// Lists decisions, newest first.
    async fn list_decisions(
        &self,
        instance_id: &str,
        filter: &DecisionFilter,
    ) -> StoreResult<Vec<StoredDecision>>;
    /// Returns one decision.
    async fn get_decision(
        &self,
        instance_id: &str,
        decision_id: &str,
    ) -> StoreResult<Option<StoredDecision>>;
}
