//! Security-insights ingest: the durable journal of accepted batches, the detector state of each
//! stream, and threat-intelligence feeds.
//!
//! The API writes an accepted batch with [`InsightsStore::enqueue_batch`] before it answers 2xx.
//! The worker reads [`InsightsStore::pending_batches`] in arrival order, runs the detectors, and
//! calls [`InsightsStore::complete_batch`], which in **one transaction** marks the batch processed
//! (only if it still is pending), records its findings as occurrences and saves the stream's
//! state. A crash anywhere before that commit leaves the batch pending, and processing it again
//! gives the same result; a batch already completed is never applied twice.
//!
//! The table is also the **idempotency record** of batches that travel on a message bus
//! (`palisade-bus`, scaled mode): there the records are not in the journal, only (at most) the
//! batch's header ([`InsightsStore::note_batch`]), and `complete_batch` inserts the row as
//! processed if it is missing. Either way the batch id is claimed in the transaction that writes
//! the results, so a redelivered batch is recognised and applies nothing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::StoreResult;
use crate::findings::{OccurrenceRecord, RecordOutcome};

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Accepted and durable; not processed yet.
    Pending,
    /// Its findings are recorded.
    Processed,
    /// Processing failed for a reason retrying cannot fix (the error says which).
    Failed,
}

impl BatchStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
            Self::Failed => "failed",
        }
    }
}

impl std::str::FromStr for BatchStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(Self::Pending),
            "processed" => Ok(Self::Processed),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown batch status `{other}`")),
        }
    }
}

/// A batch as the journal holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestBatch {
    pub instance_id: String,
    pub id: String,
    /// `activity` or `network`.
    pub stream: String,
    /// The sender's name for it (a file name).
    pub source: String,
    /// The API key that sent it.
    pub submitted_by: String,
    pub received_at: DateTime<Utc>,
    pub status: BatchStatus,
    /// Records accepted.
    pub records: i64,
    /// Records rejected when the batch was decoded.
    pub rejected: i64,
    /// Processing options (JSON object).
    pub options: serde_json::Value,
    /// Findings the batch produced (once processed).
    pub findings: i64,
    pub error: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// What completing a batch writes besides its status.
#[derive(Debug, Clone, Default)]
pub struct BatchCompletion<'a> {
    /// The findings, as occurrences to record (deduplicated as `record_occurrences` does).
    pub occurrences: &'a [OccurrenceRecord],
    /// The stream's detector state after the batch, when it is kept.
    pub state_snapshot: Option<&'a str>,
    /// Findings counted for the batch's summary.
    pub findings: i64,
}

/// A threat-intelligence feed as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeed {
    pub name: String,
    /// The feed spec (format, default category and confidence) as JSON.
    pub spec: serde_json::Value,
    /// Indicators read from it.
    pub entries: i64,
    /// Lines that could not be read.
    pub rejected: i64,
    pub updated_at: DateTime<Utc>,
}

/// The ingest journal, detector state and intel feeds.
#[async_trait]
pub trait InsightsStore {
    /// Writes an accepted batch (status `pending`) with its decoded records as JSON Lines.
    async fn enqueue_batch(&self, batch: &IngestBatch, payload: &str) -> StoreResult<()>;
    /// Returns one batch of an instance.
    async fn get_batch(
        &self,
        instance_id: &str,
        batch_id: &str,
    ) -> StoreResult<Option<IngestBatch>>;
    /// Lists an instance's batches of a stream, newest first, at most `limit`.
    async fn list_batches(
        &self,
        instance_id: &str,
        stream: &str,
        limit: u32,
    ) -> StoreResult<Vec<IngestBatch>>;
    /// The oldest pending batches of a stream across instances whose records the journal holds
    /// (not the headers of batches on the bus), in arrival order.
    async fn pending_batches(&self, stream: &str, limit: u32) -> StoreResult<Vec<IngestBatch>>;
    /// The records of a pending batch (JSON Lines); `None` once it is processed.
    async fn batch_payload(&self, instance_id: &str, batch_id: &str)
    -> StoreResult<Option<String>>;
    /// Records the header of a batch whose records travel elsewhere (on the bus), as pending, if
    /// the batch is not known yet; a batch already recorded (even completed) is left alone.
    async fn note_batch(&self, batch: &IngestBatch) -> StoreResult<()>;
    /// Marks a batch processed, records its occurrences (under their provider) and saves the
    /// stream state, atomically. A batch the journal does not hold yet (it came over the bus) is
    /// inserted as processed. Returns `None`, writing nothing, when the batch is no longer
    /// pending (another worker, or an earlier delivery, completed it).
    async fn complete_batch(
        &self,
        batch: &IngestBatch,
        completion: BatchCompletion<'_>,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<RecordOutcome>>>;
    /// Marks a pending (or not yet recorded) batch failed with a reason; a payload in the journal
    /// is kept for inspection.
    async fn fail_batch(
        &self,
        batch: &IngestBatch,
        error: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The saved detector state of a stream.
    async fn stream_state(&self, instance_id: &str, stream: &str) -> StoreResult<Option<String>>;
    /// Forgets a stream's saved state (its detectors changed in a way the state cannot follow).
    async fn clear_stream_state(&self, instance_id: &str, stream: &str) -> StoreResult<()>;

    /// Creates or replaces a feed.
    async fn put_feed(
        &self,
        instance_id: &str,
        feed: &StoredFeed,
        content: &str,
    ) -> StoreResult<()>;
    /// Lists an instance's feeds by name.
    async fn list_feeds(&self, instance_id: &str) -> StoreResult<Vec<StoredFeed>>;
    /// Returns one feed with its content.
    async fn get_feed(
        &self,
        instance_id: &str,
        name: &str,
    ) -> StoreResult<Option<(StoredFeed, String)>>;
    /// Deletes a feed; false when there was none.
    async fn delete_feed(&self, instance_id: &str, name: &str) -> StoreResult<bool>;
}
