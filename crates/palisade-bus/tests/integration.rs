//! The bus contract against real backends: the SQL journal (SQLite) and NATS JetStream (the
//! server at `PALISADE_TEST_NATS_URL`; skipped, saying so, when it is unset). Every NATS test uses
//! its own stream prefix, so parallel runs never share a stream.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use palisade_bus::journal::JournalBus;
use palisade_bus::nats::{NatsBus, NatsSettings};
use palisade_bus::{BusError, IngestBus, partition_of};
use palisade_model::tenancy::Instance;
use palisade_store::Store;
use palisade_store::insights::{BatchCompletion, BatchStatus, IngestBatch};

async fn store(directory: &std::path::Path) -> Arc<dyn Store> {
    let store = palisade_store::connect(&palisade_store::testsuite::fresh_sqlite_url(directory))
        .await
        .expect("store");
    store
        .create_instance(&Instance {
            id: "inst".into(),
            name: "inst".into(),
            created_at: Utc::now(),
        })
        .await
        .expect("instance");
    store
}

fn batch(id: &str, stream: &str) -> IngestBatch {
    IngestBatch {
        instance_id: "inst".into(),
        id: id.into(),
        stream: stream.into(),
        source: "test".into(),
        submitted_by: "key".into(),
        received_at: Utc::now(),
        status: BatchStatus::Pending,
        records: 1,
        rejected: 0,
        options: serde_json::json!({}),
        findings: 0,
        error: None,
        processed_at: None,
    }
}

fn nats_url(test: &str) -> Option<String> {
    match std::env::var("PALISADE_TEST_NATS_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            eprintln!(
                "SKIPPED {test}: set PALISADE_TEST_NATS_URL to run it against NATS JetStream"
            );
            None
        }
    }
}

fn settings(url: &str, partitions: u32) -> NatsSettings {
    NatsSettings {
        prefix: format!("t{}", uuid::Uuid::new_v4().simple()),
        partitions,
        ack_wait: Duration::from_secs(1),
        ..NatsSettings::new(url)
    }
}

#[tokio::test]
async fn the_journal_delivers_pending_batches_until_completed() {
    let directory = tempfile::tempdir().expect("tempdir");
    let store = store(directory.path()).await;
    let bus = JournalBus::new(store.clone(), &["activity", "network"]);
    assert_eq!(bus.partitions(), 1);
    bus.publish("inst", &batch("b1", "activity"), "{\"n\":1}\n")
        .await
        .expect("publish");
    bus.publish("inst", &batch("b2", "network"), "{\"n\":2}\n")
        .await
        .expect("publish");
    let mut consumer = bus.consumer(0).await.expect("consumer");
    let first = consumer
        .next(Duration::ZERO)
        .await
        .expect("next")
        .expect("b1");
    assert_eq!(
        (first.batch.id.as_str(), first.payload.as_str()),
        ("b1", "{\"n\":1}\n")
    );
    // Not completed and retried: it comes back before the batches listed after it.
    first.retry(Duration::ZERO).await.expect("retry");
    let again = consumer
        .next(Duration::ZERO)
        .await
        .expect("next")
        .expect("b1 again");
    assert_eq!(again.batch.id, "b1");
    store
        .complete_batch(&again.batch, BatchCompletion::default(), Utc::now())
        .await
        .expect("complete")
        .expect("claimed");
    again.ack().await.expect("ack");
    let second = consumer
        .next(Duration::ZERO)
        .await
        .expect("next")
        .expect("b2");
    assert_eq!(second.batch.id, "b2");
    store
        .complete_batch(&second.batch, BatchCompletion::default(), Utc::now())
        .await
        .expect("complete");
    assert!(consumer.next(Duration::ZERO).await.expect("next").is_none());
    // A consumer waiting is woken by a publish.
    let waiting = tokio::spawn(async move { consumer.next(Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.publish("inst", &batch("b3", "activity"), "{}\n")
        .await
        .expect("publish");
    let woken = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("woken before the wait ran out")
        .expect("join")
        .expect("next")
        .expect("b3");
    assert_eq!(woken.batch.id, "b3");
}

#[tokio::test]
async fn jetstream_acks_redelivers_and_deduplicates_issue_11() {
    let Some(url) = nats_url("jetstream_acks_redelivers_and_deduplicates_issue_11") else {
        return;
    };
    let directory = tempfile::tempdir().expect("tempdir");
    let store = store(directory.path()).await;
    let settings = settings(&url, 4);
    let bus = NatsBus::connect(settings.clone(), store.clone())
        .await
        .expect("connect");
    // Creating the stream again (another process starting) is fine; another partition count
    // is refused.
    NatsBus::connect(settings.clone(), store.clone())
        .await
        .expect("idempotent");
    let other = NatsBus::connect(
        NatsSettings {
            partitions: 5,
            ..settings.clone()
        },
        store.clone(),
    )
    .await;
    assert!(matches!(other, Err(BusError::Config(_))), "{other:?}");

    let partition = partition_of("inst", 4);
    let first = batch("b1", "activity");
    bus.publish("inst", &first, "{\"n\":1}\n")
        .await
        .expect("publish");
    // The same batch id again (a retried publish): stored once.
    bus.publish("inst", &first, "{\"n\":1}\n")
        .await
        .expect("publish again");
    bus.publish("inst", &batch("b2", "network"), "{\"n\":2}\n")
        .await
        .expect("publish b2");
    // The route's header makes the batch visible as pending.
    assert_eq!(
        store
            .get_batch("inst", "b1")
            .await
            .expect("get")
            .expect("noted")
            .status,
        BatchStatus::Pending
    );
    // Another partition's consumer sees nothing.
    let mut elsewhere = bus.consumer((partition + 1) % 4).await.expect("consumer");
    assert!(
        elsewhere
            .next(Duration::ZERO)
            .await
            .expect("next")
            .is_none()
    );

    let mut consumer = bus.consumer(partition).await.expect("consumer");
    let delivery = consumer
        .next(Duration::from_secs(5))
        .await
        .expect("next")
        .expect("b1");
    assert_eq!(delivery.batch.id, "b1");
    assert_eq!(delivery.payload, "{\"n\":1}\n");
    assert!(!delivery.redelivered);
    // Unacknowledged (the worker "died"): one batch at a time per partition, so b2 waits, and
    // b1 is delivered again once the ack wait ran out.
    drop(delivery);
    let redelivered = consumer
        .next(Duration::from_secs(10))
        .await
        .expect("next")
        .expect("b1 redelivered");
    assert_eq!(redelivered.batch.id, "b1");
    assert!(redelivered.redelivered);
    redelivered.ack().await.expect("ack");
    let second = consumer
        .next(Duration::from_secs(5))
        .await
        .expect("next")
        .expect("b2");
    assert_eq!(second.batch.id, "b2");
    second.ack().await.expect("ack");
    // Acknowledged batches are gone, and the duplicate publish never made a third message.
    let mut fresh = bus.consumer(partition).await.expect("consumer");
    assert!(
        fresh
            .next(Duration::from_secs(2))
            .await
            .expect("next")
            .is_none()
    );
    bus.delete_stream().await.expect("clean up");
}

#[tokio::test]
async fn batches_too_large_for_a_message_wait_in_the_journal_issue_11() {
    let Some(url) = nats_url("batches_too_large_for_a_message_wait_in_the_journal_issue_11") else {
        return;
    };
    let directory = tempfile::tempdir().expect("tempdir");
    let store = store(directory.path()).await;
    let bus = NatsBus::connect(settings(&url, 1), store.clone())
        .await
        .expect("connect");
    // Larger than any default NATS message limit (1 MiB).
    let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(1000));
    let payload = line.repeat(3000);
    let big = batch("big", "activity");
    bus.publish("inst", &big, &payload).await.expect("publish");
    assert!(
        store
            .batch_payload("inst", "big")
            .await
            .expect("payload")
            .is_some()
    );
    let mut consumer = bus.consumer(0).await.expect("consumer");
    let delivery = consumer
        .next(Duration::from_secs(5))
        .await
        .expect("next")
        .expect("big");
    assert_eq!(delivery.payload.len(), payload.len());
    store
        .complete_batch(&delivery.batch, BatchCompletion::default(), Utc::now())
        .await
        .expect("complete")
        .expect("claimed");
    delivery.ack().await.expect("ack");
    assert_eq!(
        store.batch_payload("inst", "big").await.expect("payload"),
        None
    );
    bus.delete_stream().await.expect("clean up");
}
