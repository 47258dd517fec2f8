//! The ingest bus: how an accepted batch of records travels from the route that accepted it to
//! the worker that turns it into results.
//!
//! The contract ([`IngestBus`], [`Consumer`], [`Delivery`]):
//! - [`IngestBus::publish`] returns only once the batch is durable (the caller answers 2xx after
//!   it, never before);
//! - batches are split into [`IngestBus::partitions`] partitions by an entity key
//!   ([`partition_of`]); a [`Consumer`] reads one partition, in order, one batch at a time;
//! - a delivery is acknowledged ([`Delivery::ack`]) only after its results are committed; one
//!   that is not (the process died, or [`Delivery::retry`]) is delivered again;
//! - deliveries are therefore *at least once*: the results' transaction claims the batch id
//!   (`palisade-store`'s `InsightsStore::complete_batch`), so a redelivered batch applies nothing.
//!
//! Two implementations:
//! - [`journal::JournalBus`], the embedded default: the SQL ingest journal (`ingest_batches`).
//!   Publishing writes the batch row with its records; the "ack" is the completion transaction
//!   itself (it flips the row from pending), so acknowledging does nothing more. One partition.
//! - [`nats::NatsBus`], scaled mode: a NATS JetStream work-queue stream, one durable pull
//!   consumer per partition, publish de-duplicated by the batch id (`Nats-Msg-Id`), explicit
//!   acks, redelivery after the ack wait.
//!
//! Which process reads which partition is not the bus's business: the server takes a lock per
//! partition (`palisade-store::locks`) before it opens the partition's consumer.

pub mod journal;
pub mod nats;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_store::insights::{BatchStatus, IngestBatch};
use serde::{Deserialize, Serialize};

/// What can go wrong on the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The store behind the journal (or holding a large batch's records) failed.
    #[error(transparent)]
    Store(#[from] palisade_store::StoreError),
    /// The message broker failed or refused.
    #[error("message bus: {0}")]
    Broker(String),
    /// A message on the bus cannot be read (not written by this version of Palisade?).
    #[error("unreadable bus message: {0}")]
    Unreadable(String),
    /// A setting is wrong (a bad URL or prefix, a partition count that differs from the
    /// stream's).
    #[error("bus configuration: {0}")]
    Config(String),
}

/// Result of bus calls.
pub type BusResult<T> = Result<T, BusError>;

/// The partition of an entity key among `partitions`: a stable hash, the same in every process
/// and version.
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    let hash = palisade_store::locks::stable_hash32(key).unsigned_abs();
    hash % partitions.max(1)
}

/// A durable queue of ingest batches.
#[async_trait]
pub trait IngestBus: Send + Sync + std::fmt::Debug {
    /// `journal` or `nats`, for logs and metrics.
    fn kind(&self) -> &'static str;
    /// How many partitions batches are spread over.
    fn partitions(&self) -> u32;
    /// Makes a batch durable; returns once it is. `key` chooses the partition (the entity whose
    /// detector state the batch changes). `payload` is the batch's records (JSON Lines).
    async fn publish(&self, key: &str, batch: &IngestBatch, payload: &str) -> BusResult<()>;
    /// Opens the consumer of one partition. The caller makes sure one process at a time reads
    /// a partition.
    async fn consumer(&self, partition: u32) -> BusResult<Box<dyn Consumer>>;
    /// The longest a delivery may stay unacknowledged before it is delivered again (`None`:
    /// never, until the process restarts). Long work sends [`Delivery::in_progress`] before.
    fn ack_wait(&self) -> Option<Duration>;
}

/// Reads one partition in order.
#[async_trait]
pub trait Consumer: Send {
    /// The next batch, waiting up to `wait` for one (`Duration::ZERO`: only what is there).
    async fn next(&mut self, wait: Duration) -> BusResult<Option<Delivery>>;
}

/// How a delivery is settled with the bus it came from.
#[async_trait]
pub trait Settle: Send + Sync {
    /// The results are committed: never deliver it again.
    async fn ack(&self) -> BusResult<()>;
    /// Not processed now (storage trouble): deliver it again after `delay`.
    async fn retry(&self, delay: Duration) -> BusResult<()>;
    /// Still working: extend the ack wait.
    async fn in_progress(&self) -> BusResult<()>;
}

/// A batch handed to a worker.
pub struct Delivery {
    pub batch: IngestBatch,
    /// The records, JSON Lines.
    pub payload: String,
    /// Delivered before (and not acknowledged): the process that had it may have died.
    pub redelivered: bool,
    settle: Box<dyn Settle>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Delivery")
            .field("batch", &self.batch.id)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    pub fn new(
        batch: IngestBatch,
        payload: String,
        redelivered: bool,
        settle: Box<dyn Settle>,
    ) -> Self {
        Self {
            batch,
            payload,
            redelivered,
            settle,
        }
    }

    /// Call after the results are committed.
    pub async fn ack(&self) -> BusResult<()> {
        self.settle.ack().await
    }

    /// Leaves the batch for a later delivery.
    pub async fn retry(&self, delay: Duration) -> BusResult<()> {
        self.settle.retry(delay).await
    }

    /// Tells the bus the batch is still being worked on.
    pub async fn in_progress(&self) -> BusResult<()> {
        self.settle.in_progress().await
    }
}

/// A batch header as it travels in a bus message (the store's `IngestBatch` without its
/// processing outcome).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WireBatch {
    pub instance_id: String,
    pub id: String,
    pub stream: String,
    pub source: String,
    pub submitted_by: String,
    pub received_at: DateTime<Utc>,
    pub records: i64,
    pub rejected: i64,
    pub options: serde_json::Value,
    /// The records are in the SQL journal, not in the message (too large for the broker).
    #[serde(default)]
    pub in_journal: bool,
}

impl WireBatch {
    pub(crate) fn of(batch: &IngestBatch, in_journal: bool) -> Self {
        Self {
            instance_id: batch.instance_id.clone(),
            id: batch.id.clone(),
            stream: batch.stream.clone(),
            source: batch.source.clone(),
            submitted_by: batch.submitted_by.clone(),
            received_at: batch.received_at,
            records: batch.records,
            rejected: batch.rejected,
            options: batch.options.clone(),
            in_journal,
        }
    }

    pub(crate) fn batch(&self) -> IngestBatch {
        IngestBatch {
            instance_id: self.instance_id.clone(),
            id: self.id.clone(),
            stream: self.stream.clone(),
            source: self.source.clone(),
            submitted_by: self.submitted_by.clone(),
            received_at: self.received_at,
            status: BatchStatus::Pending,
            records: self.records,
            rejected: self.rejected,
            options: self.options.clone(),
            findings: 0,
            error: None,
            processed_at: None,
        }
    }

    /// A message body: the header as one JSON line, then the records.
    pub(crate) fn encode(&self, payload: &str) -> BusResult<Vec<u8>> {
        let mut body = serde_json::to_vec(self)
            .map_err(|error| BusError::Unreadable(format!("batch header: {error}")))?;
        body.push(b'\n');
        if !self.in_journal {
            body.extend_from_slice(payload.as_bytes());
        }
        Ok(body)
    }

    /// Reads a message body back.
    pub(crate) fn decode(body: &[u8]) -> BusResult<(Self, String)> {
        let split = body
            .iter()
            .position(|byte| *byte == b'\n')
            .ok_or_else(|| BusError::Unreadable("no batch header line".into()))?;
        let header: Self = serde_json::from_slice(&body[..split])
            .map_err(|error| BusError::Unreadable(format!("batch header: {error}")))?;
        let payload = std::str::from_utf8(&body[split + 1..])
            .map_err(|error| BusError::Unreadable(format!("records: {error}")))?
            .to_owned();
        Ok((header, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> IngestBatch {
        IngestBatch {
            instance_id: "i".into(),
            id: "b".into(),
            stream: "activity".into(),
            source: "day.json".into(),
            submitted_by: "key".into(),
            received_at: Utc::now(),
            status: BatchStatus::Pending,
            records: 2,
            rejected: 1,
            options: serde_json::json!({"flush": true}),
            findings: 0,
            error: None,
            processed_at: None,
        }
    }

    #[test]
    fn messages_round_trip() {
        let original = batch();
        let wire = WireBatch::of(&original, false);
        let body = wire.encode("{\"a\":1}\n{\"b\":2}\n").expect("encode");
        let (back, payload) = WireBatch::decode(&body).expect("decode");
        assert_eq!(back, wire);
        assert_eq!(back.batch(), original);
        assert_eq!(payload, "{\"a\":1}\n{\"b\":2}\n");
        // A batch whose records stay in the journal carries only its header.
        let body = WireBatch::of(&batch(), true).encode("big").expect("encode");
        assert_eq!(WireBatch::decode(&body).expect("decode").1, "");
        assert!(matches!(
            WireBatch::decode(b"not a header"),
            Err(BusError::Unreadable(_))
        ));
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        for key in ["a", "instance-1", "0195f0a3-7b7c-7000-8000-000000000000"] {
            assert!(partition_of(key, 8) < 8);
            assert_eq!(partition_of(key, 8), partition_of(key, 8));
        }
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(partition_of("anything", 0), 0);
        let spread: std::collections::HashSet<u32> = (0..200)
            .map(|n| partition_of(&format!("instance-{n}"), 8))
            .collect();
        assert_eq!(spread.len(), 8, "keys spread over every partition");
    }
}
