//! The scaled-mode bus: NATS JetStream.
//!
//! - One stream, `<PREFIX>_INGEST`, on subjects `<prefix>.ingest.<partition>.<stream>`, file
//!   storage, **work-queue retention** (a message is gone once acknowledged). It is created if
//!   missing (idempotently: every process may try); its description records the partition count,
//!   and a process configured with another count refuses to start rather than publish to
//!   partitions nobody reads.
//! - Publishing waits for JetStream's acknowledgement (the message is stored) and sets
//!   `Nats-Msg-Id` to the batch id, so a publish retried within the duplicate window is stored
//!   once.
//! - A batch larger than the broker's message limit keeps its records in the SQL journal (claim
//!   check): the message carries the header only and the consumer reads the records from the
//!   store.
//! - One durable pull consumer per partition, `<prefix>-p<N>`, filtered on its partition's
//!   subjects, explicit acks, `max_ack_pending = 1` (a partition's batches are handled in order,
//!   one at a time: its detector state sees them in the order they were accepted), and an ack
//!   wait after which an unacknowledged batch is delivered again — to whichever process owns the
//!   partition by then.
//! - Acks are "double" acks (confirmed by the server), sent only after the results committed.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_trait::async_trait;
use futures_util::StreamExt;
use palisade_store::Store;
use palisade_store::insights::IngestBatch;

use crate::{BusError, BusResult, Consumer, Delivery, IngestBus, Settle, WireBatch};

/// Room left for the header line and NATS headers when deciding whether records fit inline.
const HEADER_ROOM: usize = 16 * 1024;

/// How a [`NatsBus`] is set up.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// `nats://host:port`.
    pub url: String,
    /// Names the stream, subjects and consumers, so deployments (and test runs) sharing one
    /// NATS server stay apart. Letters, digits, `-` and `_`.
    pub prefix: String,
    pub partitions: u32,
    /// How long a delivery may stay unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    /// How long a batch id is remembered for de-duplicating publishes.
    pub duplicate_window: Duration,
}

impl NatsSettings {
    /// Defaults for a URL: prefix `palisade`, 8 partitions, 30 s ack wait, 10 min de-duplication.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            prefix: "palisade".to_owned(),
            partitions: 8,
            ack_wait: Duration::from_secs(30),
            duplicate_window: Duration::from_secs(600),
        }
    }

    fn check(&self) -> BusResult<()> {
        if self.prefix.is_empty()
            || self.prefix.len() > 64
            || !self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(BusError::Config(format!(
                "prefix `{}`: use 1–64 letters, digits, `-` or `_`",
                self.prefix
            )));
        }
        if !(1..=1024).contains(&self.partitions) {
            return Err(BusError::Config(format!(
                "partitions: {} is not between 1 and 1024",
                self.partitions
            )));
        }
        if self.ack_wait < Duration::from_secs(1) {
            return Err(BusError::Config("ack wait: at least 1 second".into()));
        }
        Ok(())
    }

    fn stream_name(&self) -> String {
        format!("{}_INGEST", self.prefix.to_ascii_uppercase())
    }

    fn description(&self) -> String {
        format!("Palisade ingest batches; partitions={}", self.partitions)
    }
}

fn broker(error: impl std::fmt::Display) -> BusError {
    BusError::Broker(error.to_string())
}

/// JetStream as the ingest bus.
pub struct NatsBus {
    settings: NatsSettings,
    jetstream: jetstream::Context,
    max_payload: usize,
    /// Holds the records of batches too large for a message.
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NatsBus")
            .field("settings", &self.settings)
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects and makes sure the stream exists with these settings.
    pub async fn connect(settings: NatsSettings, store: Arc<dyn Store>) -> BusResult<Self> {
        settings.check()?;
        let client = async_nats::ConnectOptions::new()
            .name("palisade")
            .connection_timeout(Duration::from_secs(5))
            .connect(settings.url.as_str())
            .await
            .map_err(|error| {
                BusError::Broker(format!("connecting to {}: {error}", settings.url))
            })?;
        let max_payload = client.server_info().max_payload;
        let jetstream = jetstream::new(client);
        let mut stream = jetstream
            .get_or_create_stream(stream::Config {
                name: settings.stream_name(),
                description: Some(settings.description()),
                subjects: vec![format!("{}.ingest.>", settings.prefix)],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: settings.duplicate_window,
                ..stream::Config::default()
            })
            .await
            .map_err(|error| BusError::Broker(format!("creating the ingest stream: {error}")))?;
        let info = stream.info().await.map_err(broker)?;
        if info.config.description.as_deref() != Some(settings.description().as_str()) {
            return Err(BusError::Config(format!(
                "stream {} was created with `{}`, this process has partitions={}; \
                 every process must use the same partition count",
                settings.stream_name(),
                info.config.description.clone().unwrap_or_default(),
                settings.partitions
            )));
        }
        Ok(Self {
            settings,
            jetstream,
            max_payload,
            store,
        })
    }

    fn subject(&self, partition: u32, stream: &str) -> String {
        // Stream names are Palisade's own (`activity`, `network`, …); keep them one token anyway.
        let token: String = stream
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("{}.ingest.{partition}.{token}", self.settings.prefix)
    }

    /// Deletes the stream and its consumers (tests clean up after themselves with this).
    pub async fn delete_stream(&self) -> BusResult<()> {
        self.jetstream
            .delete_stream(self.settings.stream_name())
            .await
            .map(|_| ())
            .map_err(broker)
    }
}

#[async_trait]
impl IngestBus for NatsBus {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn partitions(&self) -> u32 {
        self.settings.partitions
    }

    async fn publish(&self, key: &str, batch: &IngestBatch, payload: &str) -> BusResult<()> {
        let in_journal = payload.len() + HEADER_ROOM > self.max_payload;
        if in_journal {
            // Claim check: the records wait in the journal as a pending batch row.
            self.store.enqueue_batch(batch, payload).await?;
        }
        let body = WireBatch::of(batch, in_journal).encode(payload)?;
        let subject = self.subject(crate::partition_of(key, self.partitions()), &batch.stream);
        let acknowledged = self
            .jetstream
            .send_publish(
                subject,
                jetstream::message::PublishMessage::build()
                    .payload(body.into())
                    .message_id(&batch.id),
            )
            .await
            .map_err(broker)?
            .await
            .map_err(broker)?;
        if acknowledged.duplicate {
            tracing::debug!(batch = %batch.id, "publish de-duplicated by the bus");
        }
        if !in_journal {
            // The header makes the batch visible (`pending`) in listings before a worker has it;
            // the batch is safe on the bus whether or not this write succeeds, so a failure is
            // not the client's.
            if let Err(error) = self.store.note_batch(batch).await {
                tracing::warn!(batch = %batch.id, error = %error, "cannot record the batch header; it is listed once processed");
            }
        }
        Ok(())
    }

    async fn consumer(&self, partition: u32) -> BusResult<Box<dyn Consumer>> {
        let stream = self
            .jetstream
            .get_stream(self.settings.stream_name())
            .await
            .map_err(broker)?;
        let name = format!("{}-p{partition}", self.settings.prefix);
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    description: Some(format!("Palisade ingest partition {partition}")),
                    filter_subject: format!("{}.ingest.{partition}.*", self.settings.prefix),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
                    max_deliver: -1,
                    max_ack_pending: 1,
                    ..consumer::pull::Config::default()
                },
            )
            .await
            .map_err(|error| BusError::Broker(format!("consumer {name}: {error}")))?;
        Ok(Box::new(NatsConsumer {
            consumer,
            store: self.store.clone(),
        }))
    }

    fn ack_wait(&self) -> Option<Duration> {
        Some(self.settings.ack_wait)
    }
}

struct NatsConsumer {
    consumer: consumer::PullConsumer,
    store: Arc<dyn Store>,
}

#[async_trait]
impl Consumer for NatsConsumer {
    async fn next(&mut self, wait: Duration) -> BusResult<Option<Delivery>> {
        loop {
            let mut messages = if wait.is_zero() {
                self.consumer
                    .fetch()
                    .max_messages(1)
                    .messages()
                    .await
                    .map_err(broker)?
            } else {
                self.consumer
                    .batch()
                    .max_messages(1)
                    .expires(wait)
                    .messages()
                    .await
                    .map_err(broker)?
            };
            let Some(message) = messages.next().await else {
                return Ok(None);
            };
            let message = message.map_err(broker)?;
            let redelivered = message.info().is_ok_and(|info| info.delivered > 1);
            let (header, payload) = match WireBatch::decode(&message.payload) {
                Ok(decoded) => decoded,
                Err(error) => {
                    // Not ours to process, and retrying cannot help: stop its redelivery.
                    tracing::error!(error = %error, "unreadable message on the ingest stream dropped");
                    message.ack_with(AckKind::Term).await.map_err(broker)?;
                    continue;
                }
            };
            let batch = header.batch();
            let payload = if header.in_journal {
                match self
                    .store
                    .batch_payload(&batch.instance_id, &batch.id)
                    .await?
                {
                    Some(payload) => payload,
                    None => {
                        // Completed already (the ack was lost): nothing left to do.
                        message.double_ack().await.map_err(broker)?;
                        continue;
                    }
                }
            } else {
                payload
            };
            return Ok(Some(Delivery::new(
                batch,
                payload,
                redelivered,
                Box::new(NatsSettle { message }),
            )));
        }
    }
}

struct NatsSettle {
    message: jetstream::Message,
}

#[async_trait]
impl Settle for NatsSettle {
    async fn ack(&self) -> BusResult<()> {
        self.message.double_ack().await.map_err(broker)
    }

    async fn retry(&self, delay: Duration) -> BusResult<()> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(broker)
    }

    async fn in_progress(&self) -> BusResult<()> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(broker)
    }
}
