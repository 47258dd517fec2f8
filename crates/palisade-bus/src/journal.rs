//! The embedded bus: the SQL ingest journal (`ingest_batches`), one partition.
//!
//! Publishing writes the batch row with its records (durable once the transaction commits:
//! SQLite runs with `synchronous=FULL`). The consumer lists pending rows in arrival order, stream
//! by stream. Settling is the store's business: the completion transaction flips the row from
//! pending, which *is* the acknowledgement, so [`Delivery::ack`](crate::Delivery::ack) has nothing
//! left to do; a batch that is not completed stays pending and is listed again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use palisade_store::Store;
use palisade_store::insights::IngestBatch;
use tokio::sync::Notify;

use crate::{BusResult, Consumer, Delivery, IngestBus, Settle};

/// Batches listed per stream and refill.
const LISTED: u32 = 16;

/// The journal as a bus.
pub struct JournalBus {
    store: Arc<dyn Store>,
    streams: Vec<String>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for JournalBus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("JournalBus")
            .field("streams", &self.streams)
            .finish_non_exhaustive()
    }
}

impl JournalBus {
    /// A bus over the store's journal; consumers read `streams` in this order.
    pub fn new(store: Arc<dyn Store>, streams: &[&str]) -> Self {
        Self {
            store,
            streams: streams.iter().map(|stream| (*stream).to_owned()).collect(),
            wake: Arc::new(Notify::new()),
        }
    }
}

#[async_trait]
impl IngestBus for JournalBus {
    fn kind(&self) -> &'static str {
        "journal"
    }

    fn partitions(&self) -> u32 {
        1
    }

    async fn publish(&self, _key: &str, batch: &IngestBatch, payload: &str) -> BusResult<()> {
        self.store.enqueue_batch(batch, payload).await?;
        self.wake.notify_one();
        Ok(())
    }

    async fn consumer(&self, _partition: u32) -> BusResult<Box<dyn Consumer>> {
        Ok(Box::new(JournalConsumer {
            store: self.store.clone(),
            streams: self.streams.clone(),
            wake: self.wake.clone(),
            listed: VecDeque::new(),
            reset: Arc::new(AtomicBool::new(false)),
        }))
    }

    fn ack_wait(&self) -> Option<Duration> {
        None
    }
}

struct JournalConsumer {
    store: Arc<dyn Store>,
    streams: Vec<String>,
    wake: Arc<Notify>,
    /// Pending batches listed and not handed out yet.
    listed: VecDeque<IngestBatch>,
    /// Set by a retried delivery: what was listed after it must wait for it, so forget it.
    reset: Arc<AtomicBool>,
}

impl JournalConsumer {
    async fn refill(&mut self) -> BusResult<()> {
        for stream in &self.streams {
            self.listed
                .extend(self.store.pending_batches(stream, LISTED).await?);
        }
        Ok(())
    }
}

#[async_trait]
impl Consumer for JournalConsumer {
    async fn next(&mut self, wait: Duration) -> BusResult<Option<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.reset.swap(false, Ordering::SeqCst) {
                self.listed.clear();
            }
            while let Some(batch) = self.listed.pop_front() {
                // `None`: completed since it was listed (by another process on a shared store).
                if let Some(payload) = self
                    .store
                    .batch_payload(&batch.instance_id, &batch.id)
                    .await?
                {
                    return Ok(Some(Delivery::new(
                        batch,
                        payload,
                        false,
                        Box::new(JournalSettle {
                            reset: self.reset.clone(),
                        }),
                    )));
                }
            }
            self.refill().await?;
            if !self.listed.is_empty() {
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            // A publish in this process wakes the consumer at once (a wake-up left from an
            // earlier publish just costs one more look); other processes' batches (a shared
            // PostgreSQL store) are found when the wait runs out.
            let _ = tokio::time::timeout_at(deadline, self.wake.notified()).await;
        }
    }
}

struct JournalSettle {
    reset: Arc<AtomicBool>,
}

#[async_trait]
impl Settle for JournalSettle {
    async fn ack(&self) -> BusResult<()> {
        // The completion transaction already took the batch out of the pending ones.
        Ok(())
    }

    async fn retry(&self, _delay: Duration) -> BusResult<()> {
        // It stays pending; the batches listed after it wait for it, to keep their order.
        self.reset.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn in_progress(&self) -> BusResult<()> {
        Ok(())
    }
}
