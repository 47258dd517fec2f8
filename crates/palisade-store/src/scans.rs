//! Scan runs and their shards: how one posture scan is split among server processes.
//!
//! A run is created with all its shards in one transaction; any process evaluates a pending
//! shard and completes it — its evaluation rows, its roll-up counters and its `done` mark in one
//! transaction, refused if the shard is done already, so a shard counts once however many
//! workers tried it. The run ends when the assembled report is stored, again in one
//! transaction with the run's `assembled` mark. A process that dies mid-shard or mid-run leaves
//! nothing half-written: the shard stays pending and the run stays running for another process
//! to take over (the server's `service::scans`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreResult;
use crate::reports::{EvaluationRow, StoredReport};

/// A scan in progress (or ended: `status` is `running`, `assembled` or `abandoned`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRun {
    pub instance_id: String,
    /// The report the run produces (its id is known from the start).
    pub report_id: String,
    pub attachment_id: String,
    /// `ondemand` or `scheduled`.
    pub scan_type: String,
    pub started_at: DateTime<Utc>,
    pub status: String,
    pub shards: u32,
    /// What the scan evaluates (profile, libraries, rules, scopes, attestations), as the
    /// coordinator read it; empty once the run ended.
    pub input: serde_json::Value,
    /// Why an abandoned run was given up.
    pub reason: Option<String>,
}

/// A range of resources of one (service, kind): ids greater than `after_id` up to `until_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanShard {
    pub shard: u32,
    pub service_name: String,
    pub resource_kind: String,
    pub after_id: Option<String>,
    pub until_id: Option<String>,
}

/// A pending shard somewhere in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardRef {
    pub instance_id: String,
    pub report_id: String,
    pub shard: u32,
}

/// Scan runs and shards.
#[async_trait]
pub trait ScanStore {
    /// Records a new run with its shards, all pending.
    async fn create_scan_run(&self, run: &ScanRun, shards: &[ScanShard]) -> StoreResult<()>;
    /// One run.
    async fn get_scan_run(
        &self,
        instance_id: &str,
        report_id: &str,
    ) -> StoreResult<Option<ScanRun>>;
    /// Runs still `running`, in every instance, oldest first (a worker's sweep).
    async fn running_scan_runs(&self, limit: u32) -> StoreResult<Vec<ScanRun>>;
    /// Pending shards of running runs, in every instance (a worker's sweep), oldest run first.
    async fn pending_scan_shards(&self, limit: u32) -> StoreResult<Vec<ShardRef>>;
    /// The pending shards of one run, in shard order.
    async fn pending_shards_of_run(
        &self,
        instance_id: &str,
        report_id: &str,
    ) -> StoreResult<Vec<u32>>;
    /// One shard and whether it is done.
    async fn get_scan_shard(
        &self,
        instance_id: &str,
        report_id: &str,
        shard: u32,
    ) -> StoreResult<Option<(ScanShard, bool)>>;
    /// Stores a shard's evaluations and roll-up counters and marks it done, in one
    /// transaction; `false` (and nothing written) when it was done already.
    async fn complete_scan_shard(
        &self,
        instance_id: &str,
        report_id: &str,
        shard: u32,
        evaluations: &[EvaluationRow],
        partial: &serde_json::Value,
    ) -> StoreResult<bool>;
    /// Every shard of a run in shard order, with its counters when done (`None`: pending).
    async fn scan_shard_partials(
        &self,
        instance_id: &str,
        report_id: &str,
    ) -> StoreResult<Vec<(u32, Option<serde_json::Value>)>>;
    /// Stores the run's report and marks the run assembled, in one transaction, and drops its
    /// shards; `false` (and nothing written) when the run was not running any more.
    async fn finish_scan_run(&self, instance_id: &str, report: &StoredReport) -> StoreResult<bool>;
    /// Gives a run up (its inputs no longer plan): marks it abandoned with the reason and drops
    /// its shards and evaluations, so no partial report is ever visible.
    async fn abandon_scan_run(
        &self,
        instance_id: &str,
        report_id: &str,
        reason: &str,
    ) -> StoreResult<()>;
}
