//! Inventory conformance cases (run on both backends by `conformance_suite!`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use palisade_model::resource::Resource;
use palisade_store::{QuarantinedRecord, ResourceFilter, Store};
use serde_json::json;

use crate::two_instances;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

fn resource(
    id: &str,
    kind: &str,
    account: &str,
    collected: i64,
    config: serde_json::Value,
) -> Resource {
    serde_json::from_value(json!({
        "id": id, "environment": "aws", "account_id": account, "service_name": "s3", "resource_kind": kind,
        "region": "eu-west-1", "name": id, "tags": {"env": if id.ends_with('1') { "prod" } else { "dev" }, "team": "core"},
        "config": config, "collected_at": at(collected),
    }))
    .expect("resource")
}

pub async fn inventory_pushes_are_idempotent_and_never_roll_back(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let first = vec![
        resource("bucket-1", "bucket", "111", 10, json!({"v": 1})),
        resource("bucket-2", "bucket", "111", 10, json!({"v": 1})),
    ];
    let outcome = store
        .push_resources("a", &first, at(11))
        .await
        .expect("push");
    assert_eq!((outcome.stored, outcome.duplicates), (2, 0));
    let retried = store
        .push_resources("a", &first, at(12))
        .await
        .expect("retry");
    assert_eq!(
        (retried.stored, retried.duplicates),
        (0, 2),
        "a retried batch adds nothing"
    );

    store
        .push_resources(
            "a",
            &[resource("bucket-1", "bucket", "111", 20, json!({"v": 2}))],
            at(21),
        )
        .await
        .expect("newer");
    // An older version arriving late goes to the history only.
    store
        .push_resources(
            "a",
            &[resource("bucket-1", "bucket", "111", 15, json!({"v": 15}))],
            at(22),
        )
        .await
        .expect("older");
    let latest = store
        .list_resources("a", &ResourceFilter::default())
        .await
        .expect("list");
    assert_eq!(
        latest
            .iter()
            .map(|r| (r.id.as_str(), r.config["v"].as_i64()))
            .collect::<Vec<_>>(),
        [("bucket-1", Some(2)), ("bucket-2", Some(1))]
    );
    let history = store
        .resource_history("a", "bucket-1")
        .await
        .expect("history");
    assert_eq!(
        history
            .iter()
            .map(|r| r.config["v"].as_i64().unwrap_or(0))
            .collect::<Vec<_>>(),
        [1, 15, 2]
    );
    // Instance b sees none of it.
    assert!(
        store
            .list_resources("b", &ResourceFilter::default())
            .await
            .expect("list b")
            .is_empty()
    );
    assert!(
        store
            .resource_history("b", "bucket-1")
            .await
            .expect("history b")
            .is_empty()
    );
}

pub async fn inventory_filters_by_envelope_and_tags(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let resources = vec![
        resource("r1", "bucket", "111", 1, json!({})),
        resource("r2", "bucket", "222", 1, json!({})),
        resource("r3", "object", "111", 1, json!({})),
        resource("r4", "bucket", "111", 1, json!({})),
    ];
    store
        .push_resources("a", &resources, at(2))
        .await
        .expect("push");
    let ids = |found: Vec<Resource>| found.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let buckets_of_111 = ResourceFilter {
        account_id: Some("111".into()),
        resource_kind: Some("bucket".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(store
            .list_resources("a", &buckets_of_111)
            .await
            .expect("list")),
        ["r1", "r4"]
    );
    assert_eq!(
        store
            .count_resources("a", &buckets_of_111)
            .await
            .expect("count"),
        2
    );
    let prod = ResourceFilter {
        tags: vec![("env".into(), "prod".into())],
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_resources("a", &prod).await.expect("list")),
        ["r1"]
    );
    let both_tags = ResourceFilter {
        tags: vec![("env".into(), "dev".into()), ("team".into(), "core".into())],
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_resources("a", &both_tags).await.expect("list")),
        ["r2", "r3", "r4"]
    );
    let page = ResourceFilter {
        after: Some("r2".into()),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_resources("a", &page).await.expect("page")),
        ["r3"]
    );
    assert_eq!(
        store
            .count_resources("a", &page)
            .await
            .expect("count ignores paging"),
        4
    );
}

pub async fn rejected_records_are_quarantined(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let record = QuarantinedRecord {
        id: "q1".into(),
        source: "inventory".into(),
        received_at: at(5),
        reason: "/config: must be an object".into(),
        record: json!({"id": "x", "config": 5}),
    };
    store
        .quarantine("a", std::slice::from_ref(&record))
        .await
        .expect("quarantine");
    assert_eq!(
        store
            .list_quarantine("a", "inventory", 10)
            .await
            .expect("list"),
        [record]
    );
    assert!(
        store
            .list_quarantine("b", "inventory", 10)
            .await
            .expect("list b")
            .is_empty()
    );
}

pub async fn reports_and_evaluations_page_and_filter(store: Arc<dyn Store>) {
    use palisade_store::{EvaluationFilter, EvaluationRow, StoredReport};
    two_instances(&store).await;
    let report = StoredReport {
        id: "r1".into(),
        attachment_id: "att".into(),
        profile_id: "p".into(),
        scan_type: "ondemand".into(),
        created_on: at(1),
        body: json!({"score": 50}),
    };
    store.put_report("a", &report).await.expect("report");
    let rows: Vec<EvaluationRow> = (0..400)
        .map(|n| EvaluationRow {
            rule_id: format!("rule-{}", n % 2),
            resource_id: format!("res-{n:03}"),
            status: if n % 4 == 0 {
                "failure".into()
            } else {
                "pass".into()
            },
            body: json!({"n": n}),
        })
        .collect();
    // More rows than one multi-row statement holds, inserted twice: the retry adds nothing.
    store
        .insert_evaluations("a", "r1", &rows)
        .await
        .expect("insert");
    store
        .insert_evaluations("a", "r1", &rows)
        .await
        .expect("insert again");
    let all = EvaluationFilter::default();
    assert_eq!(
        store
            .count_evaluations("a", "r1", &all)
            .await
            .expect("count"),
        400
    );
    let failures = EvaluationFilter {
        status: Some("failure".into()),
        ..EvaluationFilter::default()
    };
    assert_eq!(
        store
            .count_evaluations("a", "r1", &failures)
            .await
            .expect("count"),
        100
    );
    let first = store
        .list_evaluations(
            "a",
            "r1",
            &EvaluationFilter {
                limit: Some(3),
                ..EvaluationFilter::default()
            },
        )
        .await
        .expect("page");
    assert_eq!(
        first
            .iter()
            .map(|row| row.resource_id.as_str())
            .collect::<Vec<_>>(),
        ["res-000", "res-002", "res-004"]
    );
    let last = first
        .last()
        .map(|row| (row.rule_id.clone(), row.resource_id.clone()));
    let next = store
        .list_evaluations(
            "a",
            "r1",
            &EvaluationFilter {
                after: last,
                limit: Some(1),
                ..EvaluationFilter::default()
            },
        )
        .await
        .expect("next page");
    assert_eq!(next[0].resource_id, "res-006");
    assert_eq!(
        store
            .list_reports("a", Some("att"), 10)
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(
        store.get_report("b", "r1").await.expect("get b").is_none(),
        "another instance cannot see it"
    );
    assert_eq!(
        store
            .count_evaluations("b", "r1", &all)
            .await
            .expect("count b"),
        0
    );
}
