//! Conformance cases of the admission decision log; `conformance_suite!` runs each on SQLite and
//! PostgreSQL.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use palisade_store::{DecisionFilter, Store, StoreError, StoredDecision};
use serde_json::json;

use crate::two_instances;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

fn decision(index: i64, allowed: bool, rules: &[&str]) -> StoredDecision {
    StoredDecision {
        // Zero-padded so that id order is index order, as UUIDv7 ids are time order.
        id: format!("0190-{index:06}"),
        decided_at: at(index),
        key_id: if index % 2 == 0 { "k-even" } else { "k-odd" }.to_owned(),
        source: if index % 3 == 0 { "kubernetes" } else { "api" }.to_owned(),
        operation: "create".to_owned(),
        allowed,
        account_id: "acct".to_owned(),
        service_name: "s3".to_owned(),
        resource_kind: "bucket".to_owned(),
        resource_id: format!("bucket-{}", index % 4),
        violated_rule_ids: rules.iter().map(|rule| (*rule).to_owned()).collect(),
        body: json!({"index": index}),
    }
}

fn ids(decisions: &[StoredDecision]) -> Vec<i64> {
    decisions
        .iter()
        .map(|decision| decision.body["index"].as_i64().expect("index"))
        .collect()
}

pub async fn decisions_are_logged_filtered_paged_and_scoped(store: Arc<dyn Store>) {
    two_instances(&store).await;
    // More than one INSERT statement's worth, in one call.
    let batch: Vec<StoredDecision> = (0..200)
        .map(|index| match index % 5 {
            0 => decision(index, false, &["r-disallow", "r-audit"]),
            1 => decision(index, true, &["r-audit"]),
            _ => decision(index, true, &[]),
        })
        .collect();
    store.record_decisions("a", &batch).await.expect("record");
    store
        .record_decisions("b", &[decision(1000, false, &["r-disallow"])])
        .await
        .expect("record b");

    let newest = store
        .list_decisions(
            "a",
            &DecisionFilter {
                limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(ids(&newest), [199, 198, 197]);
    let next = store
        .list_decisions(
            "a",
            &DecisionFilter {
                limit: Some(3),
                before: Some(newest[2].id.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("next page");
    assert_eq!(ids(&next), [196, 195, 194]);

    let denied = store
        .list_decisions(
            "a",
            &DecisionFilter {
                allowed: Some(false),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .expect("denied");
    assert_eq!(denied.len(), 40);
    assert_eq!(denied[0].violated_rule_ids, ["r-audit", "r-disallow"]);
    assert!(!denied[0].allowed);

    let audited = store
        .list_decisions(
            "a",
            &DecisionFilter {
                rule_id: Some("r-audit".into()),
                allowed: Some(true),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .expect("by rule");
    assert_eq!(audited.len(), 40);
    assert!(ids(&audited).iter().all(|index| index % 5 == 1));

    let narrow = store
        .list_decisions(
            "a",
            &DecisionFilter {
                source: Some("kubernetes".into()),
                key_id: Some("k-even".into()),
                resource_id: Some("bucket-2".into()),
                since: Some(at(100)),
                until: Some(at(150)),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .expect("narrow");
    // index % 3 == 0, even, index % 4 == 2, 100 <= index < 150.
    assert_eq!(ids(&narrow), [138, 126, 114, 102]);

    let one = store
        .get_decision("a", &batch[5].id)
        .await
        .expect("get")
        .expect("exists");
    let mut expected = batch[5].clone();
    // Read back in rule id order.
    expected.violated_rule_ids.sort();
    assert_eq!(one, expected);
    // Another instance's decisions are invisible, by id and by listing.
    assert_eq!(
        store.get_decision("b", &batch[5].id).await.expect("get"),
        None
    );
    let other = store
        .list_decisions("b", &DecisionFilter::default())
        .await
        .expect("list b");
    assert_eq!(ids(&other), [1000]);
    // An id is recorded once.
    assert!(matches!(
        store.record_decisions("a", &[batch[0].clone()]).await,
        Err(StoreError::Conflict(_))
    ));
    // A decision of an instance that does not exist is refused.
    assert!(
        store
            .record_decisions("nowhere", &[decision(1, true, &[])])
            .await
            .is_err()
    );
}
