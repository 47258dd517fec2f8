//! Collector and inventory-batch conformance cases (run on both backends by
//! `conformance_suite!`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use palisade_model::resource::Resource;
use palisade_model::tenancy::{ApiKey, Role};
use palisade_store::{
    BatchOutcome, Heartbeat, InventoryBatch, QuarantinedRecord, Store, StoredCollector, StoredKey,
};
use serde_json::json;

use crate::two_instances;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

fn resource(id: &str, collected: i64) -> Resource {
    serde_json::from_value(json!({
        "id": id, "environment": "linux", "account_id": "site", "service_name": "linux",
        "resource_kind": "host", "config": {"n": collected}, "collected_at": at(collected),
    }))
    .expect("resource")
}

fn quarantined(id: &str) -> QuarantinedRecord {
    QuarantinedRecord {
        id: id.into(),
        source: "inventory".into(),
        received_at: at(5),
        reason: "`/resources/1/id`: is required".into(),
        record: json!({"service_name": "linux"}),
    }
}

/// A batch with an id is applied once: its retry (same id, even with other content) writes
/// nothing — no resource, no quarantined record — and is answered with the first outcome.
pub async fn inventory_batches_apply_exactly_once_issue_5(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let resources = [resource("host-1", 1), resource("host-2", 1)];
    let rejected = json!([{"index": 2, "errors": []}]);
    let batch = InventoryBatch {
        batch_id: Some("0001-job-1"),
        key_id: "key-1",
        resources: &resources,
        quarantined: &[quarantined("q1")],
        rejected: &rejected,
    };
    let first = store.push_batch("a", &batch, at(10)).await.expect("push");
    let BatchOutcome::Applied(outcome) = first else {
        panic!("first push must apply: {first:?}")
    };
    assert_eq!((outcome.stored, outcome.duplicates), (2, 0));

    // The retry, with a different quarantine id (a server would mint a new one) and a newer
    // version of a resource: still nothing is written.
    let newer = [resource("host-1", 2)];
    let retry = InventoryBatch {
        resources: &newer,
        quarantined: &[quarantined("q2")],
        ..batch
    };
    match store.push_batch("a", &retry, at(20)).await.expect("retry") {
        BatchOutcome::Replayed(record) => {
            assert_eq!(record.batch_id, "0001-job-1");
            assert_eq!(record.key_id, "key-1");
            assert_eq!(record.received_at, at(10));
            assert_eq!((record.outcome.stored, record.outcome.duplicates), (2, 0));
            assert_eq!(record.rejected, rejected);
        }
        other => panic!("a retry must replay: {other:?}"),
    }
    assert_eq!(
        store
            .resource_history("a", "host-1")
            .await
            .expect("history")
            .len(),
        1
    );
    let kept = store
        .list_quarantine("a", "inventory", 10)
        .await
        .expect("quarantine");
    assert_eq!(
        kept.iter()
            .map(|record| record.id.as_str())
            .collect::<Vec<_>>(),
        ["q1"]
    );

    // Batch ids are per instance; batches without an id are applied every time.
    let other = InventoryBatch {
        resources: &newer,
        quarantined: &[],
        ..batch
    };
    assert!(matches!(
        store
            .push_batch("b", &other, at(30))
            .await
            .expect("other instance"),
        BatchOutcome::Applied(_)
    ));
    let anonymous = InventoryBatch {
        batch_id: None,
        ..other
    };
    assert!(matches!(
        store.push_batch("a", &anonymous, at(31)).await.expect("no id"),
        BatchOutcome::Applied(outcome) if outcome.stored == 1
    ));
    assert!(matches!(
        store.push_batch("a", &anonymous, at(32)).await.expect("no id again"),
        BatchOutcome::Applied(outcome) if outcome.duplicates == 1
    ));

    // Listing pages in batch-id order and stays in its instance.
    let second = InventoryBatch {
        batch_id: Some("0002-job-1"),
        resources: &[],
        quarantined: &[],
        ..batch
    };
    store
        .push_batch("a", &second, at(40))
        .await
        .expect("second");
    let listed = store
        .list_inventory_batches("a", None, 10)
        .await
        .expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|record| record.batch_id.as_str())
            .collect::<Vec<_>>(),
        ["0001-job-1", "0002-job-1"]
    );
    let page = store
        .list_inventory_batches("a", Some("0001-job-1"), 10)
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(
        store
            .list_inventory_batches("b", None, 10)
            .await
            .expect("b")
            .len(),
        1
    );
    assert!(
        store
            .get_inventory_batch("b", "0002-job-1")
            .await
            .expect("get")
            .is_none()
    );
}

fn collector(id: &str, expires: i64) -> StoredCollector {
    StoredCollector {
        id: id.into(),
        name: format!("{id} name"),
        description: String::new(),
        targets: json!([{"id": "t1", "kind": "host"}]),
        created_at: at(0),
        code_expires_at: Some(at(expires)),
        key_id: None,
        registered_at: None,
        last_heartbeat_at: None,
        agent_version: None,
        host_name: None,
        last_job: None,
    }
}

fn collector_key(id: &str, instance_id: &str) -> StoredKey {
    StoredKey {
        key: ApiKey {
            id: id.into(),
            instance_id: instance_id.into(),
            name: format!("collector {id}"),
            role: Role::Collector,
            operator: false,
            created_at: at(1),
            revoked_at: None,
        },
        secret_hash: format!("$argon2id$fake${id}"),
    }
}

/// A registration code works once and only before it expires; the key is stored with the claim;
/// heartbeats need the collector's own key; deleting a collector revokes its key.
pub async fn collectors_register_once_and_revoke_on_delete_issue_5(store: Arc<dyn Store>) {
    two_instances(&store).await;
    store
        .create_collector("a", &collector("c1", 100), "hash-1")
        .await
        .expect("create");
    store
        .create_collector("a", &collector("c2", 100), "hash-2")
        .await
        .expect("create");
    assert!(
        store
            .create_collector("b", &collector("c3", 100), "hash-1")
            .await
            .is_err(),
        "codes are unique across instances"
    );

    // Lookup by code across instances, only while unexpired.
    let (instance, found) = store
        .find_registration("hash-1", at(50))
        .await
        .expect("find")
        .expect("pending");
    assert_eq!((instance.as_str(), found.id.as_str()), ("a", "c1"));
    assert!(
        store
            .find_registration("hash-1", at(100))
            .await
            .expect("find")
            .is_none(),
        "expired"
    );
    assert!(
        !store
            .complete_registration("a", "c1", "hash-1", &collector_key("k0", "a"), at(150))
            .await
            .expect("late"),
        "an expired code claims nothing"
    );
    assert!(store.find_key("k0").await.expect("find key").is_none());

    // The first exchange wins; the second stores no key.
    assert!(
        store
            .complete_registration("a", "c1", "hash-1", &collector_key("k1", "a"), at(60))
            .await
            .expect("claim")
    );
    assert!(
        !store
            .complete_registration("a", "c1", "hash-1", &collector_key("k2", "a"), at(61))
            .await
            .expect("again")
    );
    assert!(store.find_key("k1").await.expect("k1").is_some());
    assert!(store.find_key("k2").await.expect("k2").is_none());
    assert!(
        store
            .find_registration("hash-1", at(62))
            .await
            .expect("find")
            .is_none(),
        "a used code is gone"
    );
    let registered = store
        .get_collector("a", "c1")
        .await
        .expect("get")
        .expect("c1");
    assert_eq!(registered.key_id.as_deref(), Some("k1"));
    assert_eq!(registered.registered_at, Some(at(60)));
    assert_eq!(registered.code_expires_at, None);
    assert!(
        !store
            .renew_registration_code("a", "c1", "hash-9", at(500))
            .await
            .expect("renew"),
        "a registered collector gets no new code"
    );
    assert!(
        store
            .renew_registration_code("a", "c2", "hash-3", at(500))
            .await
            .expect("renew")
    );
    assert!(
        store
            .find_registration("hash-2", at(70))
            .await
            .expect("old")
            .is_none()
    );

    // Heartbeats: only with the collector's own key; a heartbeat without a job keeps the last.
    let beat = |seconds, job: Option<serde_json::Value>| Heartbeat {
        at: at(seconds),
        agent_version: Some("0.1.0".into()),
        host_name: Some("web-1".into()),
        last_job: job,
    };
    assert!(
        store
            .record_heartbeat("a", "c1", "k1", &beat(70, Some(json!({"target_id": "t1"}))))
            .await
            .expect("beat")
    );
    assert!(
        store
            .record_heartbeat("a", "c1", "k1", &beat(80, None))
            .await
            .expect("beat")
    );
    assert!(
        !store
            .record_heartbeat("a", "c2", "k1", &beat(81, None))
            .await
            .expect("other collector")
    );
    assert!(
        !store
            .record_heartbeat("b", "c1", "k1", &beat(82, None))
            .await
            .expect("other instance")
    );
    let beaten = store
        .get_collector("a", "c1")
        .await
        .expect("get")
        .expect("c1");
    assert_eq!(beaten.last_heartbeat_at, Some(at(80)));
    assert_eq!(beaten.host_name.as_deref(), Some("web-1"));
    assert_eq!(beaten.last_job, Some(json!({"target_id": "t1"})));

    assert!(
        store
            .update_collector("a", "c1", "renamed", "d", &json!([]))
            .await
            .expect("update")
    );
    assert!(
        !store
            .update_collector("b", "c1", "x", "", &json!([]))
            .await
            .expect("other instance")
    );
    let listed = store.list_collectors("a").await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|collector| collector.name.as_str())
            .collect::<Vec<_>>(),
        ["renamed", "c2 name"]
    );
    assert!(store.list_collectors("b").await.expect("b").is_empty());

    // Delete revokes the key in the same transaction.
    assert!(
        !store
            .delete_collector("b", "c1", at(90))
            .await
            .expect("other instance")
    );
    assert!(
        store
            .delete_collector("a", "c1", at(90))
            .await
            .expect("delete")
    );
    let key = store.find_key("k1").await.expect("k1").expect("kept");
    assert_eq!(key.key.revoked_at, Some(at(90)));
    assert!(store.get_collector("a", "c1").await.expect("get").is_none());
    assert!(
        !store
            .delete_collector("a", "c1", at(91))
            .await
            .expect("again")
    );
}
