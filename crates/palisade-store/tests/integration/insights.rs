//! Insights ingest conformance cases (run on both backends by `conformance_suite!`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use palisade_store::Store;
use palisade_store::findings::{OccurrenceKey, OccurrenceRecord};
use palisade_store::insights::{BatchCompletion, BatchStatus, IngestBatch, StoredFeed};
use serde_json::json;

use crate::two_instances;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

fn batch(instance_id: &str, id: &str, stream: &str, received: i64) -> IngestBatch {
    IngestBatch {
        instance_id: instance_id.to_owned(),
        id: id.to_owned(),
        stream: stream.to_owned(),
        source: format!("{id}.json"),
        submitted_by: "key-1".to_owned(),
        received_at: at(received),
        status: BatchStatus::Pending,
        records: 2,
        rejected: 1,
        options: json!({"flush": false}),
        findings: 0,
        error: None,
        processed_at: None,
    }
}

fn occurrence(id: &str) -> OccurrenceRecord {
    OccurrenceRecord {
        account_id: "acct".to_owned(),
        provider_id: "activity-insights".to_owned(),
        id: id.to_owned(),
        note_provider_id: "activity-insights".to_owned(),
        note_id: "rule-1".to_owned(),
        kind: "FINDING".to_owned(),
        severity: Some("HIGH".to_owned()),
        certainty: None,
        resource: None,
        body: json!({"id": id}),
    }
}

/// A batch is applied once: a second completion (a replay after a crash, or a racing worker)
/// writes nothing, so occurrence counts never double.
pub async fn ingest_batches_complete_exactly_once(store: Arc<dyn Store>) {
    two_instances(&store).await;
    store
        .enqueue_batch(&batch("a", "b2", "activity", 20), "{\"n\":2}\n")
        .await
        .expect("enqueue b2");
    store
        .enqueue_batch(&batch("a", "b1", "activity", 10), "{\"n\":1}\n")
        .await
        .expect("enqueue b1");
    store
        .enqueue_batch(&batch("b", "b3", "network", 5), "{}\n")
        .await
        .expect("enqueue b3");
    // Arrival order, one stream, across instances.
    let pending: Vec<String> = store
        .pending_batches("activity", 10)
        .await
        .expect("pending")
        .into_iter()
        .map(|batch| batch.id)
        .collect();
    assert_eq!(pending, ["b1", "b2"]);
    assert_eq!(
        store.batch_payload("a", "b1").await.expect("payload"),
        Some("{\"n\":1}\n".to_owned())
    );
    // Another instance cannot see the batch.
    assert_eq!(store.get_batch("b", "b1").await.expect("get"), None);
    assert_eq!(store.batch_payload("b", "b1").await.expect("payload"), None);

    let occurrences = [occurrence("o1"), occurrence("o1"), occurrence("o2")];
    let outcomes = store
        .complete_batch(
            &batch("a", "b1", "activity", 10),
            BatchCompletion {
                occurrences: &occurrences,
                state_snapshot: Some("{\"windows\":1}"),
                findings: 3,
            },
            at(30),
        )
        .await
        .expect("complete")
        .expect("first completion applies");
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|outcome| outcome.created));
    let again = store
        .complete_batch(
            &batch("a", "b1", "activity", 10),
            BatchCompletion {
                occurrences: &occurrences,
                state_snapshot: Some("{\"windows\":99}"),
                findings: 3,
            },
            at(40),
        )
        .await
        .expect("complete again");
    assert_eq!(again, None);
    let stored = store
        .get_occurrence(
            "a",
            &OccurrenceKey {
                account_id: "acct".to_owned(),
                provider_id: "activity-insights".to_owned(),
                id: "o1".to_owned(),
            },
        )
        .await
        .expect("get occurrence")
        .expect("recorded");
    assert_eq!(stored.occurrence_count, 2);
    assert_eq!(
        store.stream_state("a", "activity").await.expect("state"),
        Some("{\"windows\":1}".to_owned())
    );
    assert_eq!(
        store.stream_state("b", "activity").await.expect("state"),
        None
    );

    let processed = store.get_batch("a", "b1").await.expect("get").expect("b1");
    assert_eq!(processed.status, BatchStatus::Processed);
    assert_eq!(processed.findings, 3);
    assert_eq!(processed.processed_at, Some(at(30)));
    assert_eq!((processed.records, processed.rejected), (2, 1));
    assert_eq!(processed.options, json!({"flush": false}));
    // The payload is dropped once processed.
    assert_eq!(store.batch_payload("a", "b1").await.expect("payload"), None);

    store
        .fail_batch(
            &batch("a", "b2", "activity", 20),
            "undecodable payload",
            at(50),
        )
        .await
        .expect("fail");
    let failed = store.get_batch("a", "b2").await.expect("get").expect("b2");
    assert_eq!(failed.status, BatchStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("undecodable payload"));
    assert!(
        store
            .pending_batches("activity", 10)
            .await
            .expect("pending")
            .is_empty()
    );
    let listed: Vec<String> = store
        .list_batches("a", "activity", 10)
        .await
        .expect("list")
        .into_iter()
        .map(|batch| batch.id)
        .collect();
    assert_eq!(listed, ["b2", "b1"]);

    store
        .clear_stream_state("a", "activity")
        .await
        .expect("clear");
    assert_eq!(
        store.stream_state("a", "activity").await.expect("state"),
        None
    );
}

/// Issue 11: a batch that came over the bus is not in the journal; completing it inserts its row
/// as processed, and a redelivery (or a second worker) applies nothing. A header noted by the
/// route before or after the completion never undoes it.
pub async fn bus_batches_are_claimed_exactly_once_issue_11(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let occurrences = [occurrence("o1")];
    let completion = || BatchCompletion {
        occurrences: &occurrences,
        state_snapshot: Some("{\"after\":\"bus-1\"}"),
        findings: 1,
    };
    // Completed before the route noted its header (the worker was faster).
    let first = batch("a", "bus-1", "activity", 10);
    assert!(
        store
            .complete_batch(&first, completion(), at(20))
            .await
            .expect("complete")
            .is_some()
    );
    store.note_batch(&first).await.expect("note after");
    assert_eq!(
        store
            .complete_batch(&first, completion(), at(30))
            .await
            .expect("redelivery"),
        None
    );
    let stored = store
        .get_batch("a", "bus-1")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(stored.status, BatchStatus::Processed);
    assert_eq!(
        (stored.records, stored.rejected, stored.findings),
        (2, 1, 1)
    );
    assert_eq!(stored.processed_at, Some(at(20)));
    assert_eq!(
        store.batch_payload("a", "bus-1").await.expect("payload"),
        None
    );
    let count = store
        .get_occurrence(
            "a",
            &OccurrenceKey {
                account_id: "acct".to_owned(),
                provider_id: "activity-insights".to_owned(),
                id: "o1".to_owned(),
            },
        )
        .await
        .expect("occurrence")
        .expect("recorded")
        .occurrence_count;
    assert_eq!(count, 1, "the redelivered batch counted once");

    // Noted first (pending, no payload), then completed; the worker's listing of journal work
    // ignores it only once completed.
    let second = batch("a", "bus-2", "activity", 40);
    store.note_batch(&second).await.expect("note");
    store
        .note_batch(&second)
        .await
        .expect("noting twice is harmless");
    let noted = store
        .get_batch("a", "bus-2")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(noted.status, BatchStatus::Pending);
    // Its records are on the bus, not in the journal: the journal's worker does not list it.
    assert!(
        store
            .pending_batches("activity", 10)
            .await
            .expect("pending")
            .is_empty()
    );
    assert!(
        store
            .complete_batch(&second, completion(), at(50))
            .await
            .expect("complete")
            .is_some()
    );
    assert_eq!(
        store
            .get_batch("a", "bus-2")
            .await
            .expect("get")
            .expect("row")
            .status,
        BatchStatus::Processed
    );

    // A failure is recorded the same way, and a failed batch is not completed later.
    let third = batch("b", "bus-3", "network", 60);
    store
        .fail_batch(&third, "unreadable", at(70))
        .await
        .expect("fail");
    assert_eq!(
        store
            .complete_batch(&third, completion(), at(80))
            .await
            .expect("complete"),
        None
    );
    let failed = store
        .get_batch("b", "bus-3")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(failed.status, BatchStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("unreadable"));
    // Scoped to the instance.
    assert_eq!(store.get_batch("a", "bus-3").await.expect("get"), None);
}

pub async fn intel_feeds_are_replaced_and_scoped(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let feed = |entries: i64, updated: i64| StoredFeed {
        name: "scanners".to_owned(),
        spec: json!({"format": "text", "default_category": "scanner"}),
        entries,
        rejected: 0,
        updated_at: at(updated),
    };
    store
        .put_feed("a", &feed(2, 1), "198.51.100.7\n203.0.113.0/24\n")
        .await
        .expect("put");
    store
        .put_feed("a", &feed(1, 2), "198.51.100.8\n")
        .await
        .expect("replace");
    let listed = store.list_feeds("a").await.expect("list");
    assert_eq!(listed, vec![feed(1, 2)]);
    assert!(store.list_feeds("b").await.expect("list b").is_empty());
    let (stored, content) = store
        .get_feed("a", "scanners")
        .await
        .expect("get")
        .expect("present");
    assert_eq!((stored, content.as_str()), (feed(1, 2), "198.51.100.8\n"));
    assert_eq!(store.get_feed("b", "scanners").await.expect("get b"), None);
    assert!(!store.delete_feed("b", "scanners").await.expect("delete b"));
    assert!(store.delete_feed("a", "scanners").await.expect("delete"));
    assert!(store.list_feeds("a").await.expect("list").is_empty());
}
