//! Scan runs and shards (store migration 9, issue 11), run on both backends by the conformance
//! suite.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use palisade_model::resource::Resource;
use palisade_store::{
    EvaluationFilter, EvaluationRow, ResourceFilter, ScanRun, ScanShard, ShardRef, Store,
    StoredReport,
};
use serde_json::json;

use crate::two_instances;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

fn bucket(number: usize) -> Resource {
    serde_json::from_value(json!({
        "id": format!("bucket-{number:03}"), "environment": "aws", "account_id": "111",
        "service_name": "s3", "resource_kind": "bucket", "region": "eu-west-1",
        "config": {}, "collected_at": at(0),
    }))
    .expect("resource")
}

fn run(instance_id: &str, report_id: &str, shards: u32) -> ScanRun {
    ScanRun {
        instance_id: instance_id.into(),
        report_id: report_id.into(),
        attachment_id: "attachment".into(),
        scan_type: "ondemand".into(),
        started_at: at(10),
        status: "running".into(),
        shards,
        input: json!({"profile": {"id": "p"}}),
        reason: None,
    }
}

fn shard(shard: u32, after: Option<&str>, until: Option<&str>) -> ScanShard {
    ScanShard {
        shard,
        service_name: "s3".into(),
        resource_kind: "bucket".into(),
        after_id: after.map(str::to_owned),
        until_id: until.map(str::to_owned),
    }
}

fn evaluation(resource_id: &str) -> EvaluationRow {
    EvaluationRow {
        rule_id: "rule-1".into(),
        resource_id: resource_id.into(),
        status: "pass".into(),
        body: json!({"resource_id": resource_id}),
    }
}

pub async fn scan_shards_complete_once_and_assemble_atomically_issue_11(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let buckets: Vec<Resource> = (1..=10).map(bucket).collect();
    store
        .push_resources("a", &buckets, at(1))
        .await
        .expect("push");

    // Boundaries cut the ids into ranges of `every`, read from the index.
    let filter = ResourceFilter {
        service_name: Some("s3".into()),
        resource_kind: Some("bucket".into()),
        ..ResourceFilter::default()
    };
    let boundaries = store
        .resource_id_boundaries("a", &filter, 4)
        .await
        .expect("boundaries");
    assert_eq!(boundaries, ["bucket-004", "bucket-008"]);
    assert!(
        store
            .resource_id_boundaries("b", &filter, 4)
            .await
            .expect("other instance")
            .is_empty()
    );
    // `after` and `until` bound a range, both ends as the shards use them.
    let range = ResourceFilter {
        after: Some("bucket-004".into()),
        until: Some("bucket-008".into()),
        ..filter.clone()
    };
    let ids: Vec<String> = store
        .list_resources("a", &range)
        .await
        .expect("range")
        .into_iter()
        .map(|resource| resource.id)
        .collect();
    assert_eq!(
        ids,
        ["bucket-005", "bucket-006", "bucket-007", "bucket-008"]
    );

    let shards = [
        shard(0, None, Some("bucket-004")),
        shard(1, Some("bucket-004"), Some("bucket-008")),
        shard(2, Some("bucket-008"), None),
    ];
    store
        .create_scan_run(&run("a", "report-1", 3), &shards)
        .await
        .expect("create");
    assert_eq!(
        store
            .get_scan_run("a", "report-1")
            .await
            .expect("get")
            .expect("there"),
        run("a", "report-1", 3)
    );
    assert_eq!(
        store.get_scan_run("b", "report-1").await.expect("get"),
        None,
        "runs are scoped to their instance"
    );
    assert_eq!(
        store.pending_scan_shards(10).await.expect("pending"),
        (0..3)
            .map(|shard| ShardRef {
                instance_id: "a".into(),
                report_id: "report-1".into(),
                shard,
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(
        store
            .get_scan_shard("a", "report-1", 1)
            .await
            .expect("shard"),
        Some((shards[1].clone(), false))
    );

    // A shard completes once: the second worker's results are refused and not written.
    assert!(
        store
            .complete_scan_shard(
                "a",
                "report-1",
                1,
                &[evaluation("bucket-005")],
                &json!({"n": 1})
            )
            .await
            .expect("complete")
    );
    assert!(
        !store
            .complete_scan_shard(
                "a",
                "report-1",
                1,
                &[evaluation("bucket-006")],
                &json!({"n": 2})
            )
            .await
            .expect("again")
    );
    let written = store
        .list_evaluations("a", "report-1", &EvaluationFilter::default())
        .await
        .expect("evaluations");
    assert_eq!(written, [evaluation("bucket-005")]);
    assert_eq!(
        store
            .scan_shard_partials("a", "report-1")
            .await
            .expect("partials"),
        [(0, None), (1, Some(json!({"n": 1}))), (2, None)]
    );
    assert_eq!(
        store.pending_scan_shards(10).await.expect("pending").len(),
        2
    );

    // The report and the run's end are one write; a second assembly changes nothing.
    let report = StoredReport {
        id: "report-1".into(),
        attachment_id: "attachment".into(),
        profile_id: "p".into(),
        scan_type: "ondemand".into(),
        created_on: at(20),
        body: json!({"rollup": {"score": {"passed": 1, "total_count": 1}}}),
    };
    assert!(store.finish_scan_run("a", &report).await.expect("finish"));
    assert!(!store.finish_scan_run("a", &report).await.expect("again"));
    assert_eq!(
        store.get_report("a", "report-1").await.expect("report"),
        Some(report.clone())
    );
    let finished = store
        .get_scan_run("a", "report-1")
        .await
        .expect("get")
        .expect("there");
    assert_eq!(finished.status, "assembled");
    assert_eq!(finished.input, json!({}));
    assert!(
        store
            .pending_scan_shards(10)
            .await
            .expect("pending")
            .is_empty()
    );
    assert!(
        store
            .running_scan_runs(10)
            .await
            .expect("running")
            .is_empty()
    );

    // An abandoned run leaves no evaluations, no shards and no report.
    store
        .create_scan_run(&run("a", "report-2", 1), &[shard(0, None, None)])
        .await
        .expect("create");
    assert_eq!(store.running_scan_runs(10).await.expect("running").len(), 1);
    assert!(
        store
            .complete_scan_shard("a", "report-2", 0, &[evaluation("bucket-001")], &json!({}))
            .await
            .expect("complete")
    );
    store
        .abandon_scan_run("a", "report-2", "the profile was deleted")
        .await
        .expect("abandon");
    let abandoned = store
        .get_scan_run("a", "report-2")
        .await
        .expect("get")
        .expect("there");
    assert_eq!(
        (abandoned.status.as_str(), abandoned.reason.as_deref()),
        ("abandoned", Some("the profile was deleted"))
    );
    assert_eq!(
        store
            .count_evaluations("a", "report-2", &EvaluationFilter::default())
            .await
            .expect("count"),
        0
    );
    assert!(
        store
            .scan_shard_partials("a", "report-2")
            .await
            .expect("partials")
            .is_empty()
    );
    assert_eq!(
        store.get_report("a", "report-2").await.expect("report"),
        None
    );
}
