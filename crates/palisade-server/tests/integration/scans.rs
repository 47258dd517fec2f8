//! Issue 11: a scan is split into shards that any process evaluates; a worker or coordinator
//! that dies is replaced; the assembled report equals the report of a one-pass scan, and every
//! shard counts exactly once.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use palisade_server::service::scans;
use palisade_server::{AppState, ServerConfig};
use palisade_store::locks::{ClusterLocks, LockPurpose};
use palisade_store::{EvaluationFilter, Store};
use serde_json::{Value, json};

use crate::common::{TestServer, test_config};

const BUCKETS: usize = 60;

fn config(shard_size: u32) -> ServerConfig {
    ServerConfig {
        scan_shard_size: shard_size,
        ..test_config()
    }
}

/// Buckets (a third without versioning, a fifth public) and an attachment of the built-in CIS
/// AWS profile over them; returns the attachment id.
async fn attach_cis_over_buckets(server: &TestServer) -> String {
    let resources: Vec<Value> = (0..BUCKETS)
        .map(|number| {
            json!({
                "id": format!("arn:aws:s3:::bucket-{number:03}"), "environment": "aws",
                "account_id": "111122223333", "service_name": "s3", "resource_kind": "bucket",
                "region": "eu-west-1",
                "config": {
                    "versioning": {"status": if number % 3 == 0 { "Suspended" } else { "Enabled" }},
                    "public_access_block": {"block_public_acls": number % 5 != 0, "block_public_policy": true,
                        "ignore_public_acls": true, "restrict_public_buckets": true},
                },
            })
        })
        .collect();
    let pushed = server
        .call(
            Method::POST,
            &format!("/instances/{}/v1/inventory", server.instance_id),
            Some(&server.admin_key),
            Some(json!({"resources": resources})),
        )
        .await;
    assert_eq!(pushed.body["stored"], BUCKETS, "{}", pushed.text);
    let v3 = format!("/instances/{}/v3", server.instance_id);
    let scope = server
        .call(
            Method::POST,
            &format!("{v3}/scopes"),
            Some(&server.admin_key),
            Some(json!({"name": "All AWS", "environment": "aws", "properties": []})),
        )
        .await;
    assert_eq!(scope.status, StatusCode::CREATED, "{}", scope.text);
    let attached = server
        .call(
            Method::POST,
            &format!("{v3}/profiles/cis-aws-foundations/attachments"),
            Some(&server.admin_key),
            Some(json!({"attachments": [{
                "name": "CIS", "description": "issue 11", "scope": [{"id": scope.body["id"]}],
                "schedule": "daily", "status": "enabled", "notifications": {"enabled": false},
                "attachment_parameters": [],
            }]})),
        )
        .await;
    assert_eq!(attached.status, StatusCode::CREATED, "{}", attached.text);
    attached.body["attachments"][0]["id"]
        .as_str()
        .expect("attachment id")
        .to_owned()
}

/// What a scan found (ids and times differ between scans), and how many evaluations it stored.
async fn findings_of(store: &Arc<dyn Store>, instance_id: &str, report_id: &str) -> Value {
    let report = store
        .get_report(instance_id, report_id)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("report {report_id} is stored"));
    let stored = store
        .count_evaluations(instance_id, report_id, &EvaluationFilter::default())
        .await
        .expect("count");
    json!({
        "controls_summary": report.body["controls_summary"],
        "evaluations_summary": report.body["evaluations_summary"],
        "rollup": report.body["rollup"],
        "stored_evaluations": stored,
    })
}

async fn scan(state: &AppState, instance_id: &str, attachment_id: &str) -> String {
    let answer = scans::run_scan(state, instance_id, attachment_id, "ondemand", Utc::now())
        .await
        .expect("scan");
    answer["report_id"].as_str().expect("report id").to_owned()
}

#[tokio::test]
async fn many_shards_give_the_report_of_one_issue_11() {
    let server = TestServer::sqlite_with(config(7)).await;
    let attachment_id = attach_cis_over_buckets(&server).await;
    let one_shard = AppState::new(server.state.store.clone(), config(100_000));
    let whole = scan(&one_shard, &server.instance_id, &attachment_id).await;
    let sharded = scan(&server.state, &server.instance_id, &attachment_id).await;
    let store = &server.state.store;
    let expected = findings_of(store, &server.instance_id, &whole).await;
    assert!(
        expected["evaluations_summary"]["failure_count"]
            .as_u64()
            .unwrap_or_default()
            > 0
            && expected["evaluations_summary"]["pass_count"]
                .as_u64()
                .unwrap_or_default()
                > 0,
        "the buckets pass some rules and fail others: {expected}"
    );
    assert_eq!(
        findings_of(store, &server.instance_id, &sharded).await,
        expected
    );
    // 60 buckets in shards of 7 are 9 shards, plus one per other (service, kind) the profile
    // targets.
    let report = store
        .get_report(&server.instance_id, &sharded)
        .await
        .expect("read")
        .expect("stored");
    let shards = report.body["additional_details"]["shards"]
        .as_u64()
        .unwrap_or_default();
    assert!(shards >= 9, "{shards} shards");
    assert_eq!(server.state.scans.shards_evaluated(), shards);
}

#[tokio::test]
async fn a_scan_interrupted_by_a_crash_is_finished_after_the_restart_issue_11() {
    let server = TestServer::sqlite_with(config(10)).await;
    let attachment_id = attach_cis_over_buckets(&server).await;
    let baseline = scan(&server.state, &server.instance_id, &attachment_id).await;
    let store = server.state.store.clone();
    // Recorded, then the process "dies" before evaluating any shard: nothing is visible.
    let started = scans::start_scan(
        &server.state,
        &server.instance_id,
        &attachment_id,
        "ondemand",
        Utc::now(),
    )
    .await
    .expect("start");
    assert_eq!(
        store
            .get_report(&server.instance_id, &started)
            .await
            .expect("read"),
        None
    );
    // The restarted process (a new state over the same database) finishes it.
    let restarted = AppState::new(store.clone(), config(10));
    assert_eq!(scans::sweep(&restarted).await.expect("sweep"), 1);
    assert_eq!(
        findings_of(&store, &server.instance_id, &started).await,
        findings_of(&store, &server.instance_id, &baseline).await
    );
    assert_eq!(
        store
            .get_scan_run(&server.instance_id, &started)
            .await
            .expect("run")
            .expect("recorded")
            .status,
        "assembled"
    );
    assert_eq!(
        scans::sweep(&restarted).await.expect("sweep"),
        0,
        "nothing left"
    );
    // The attachment records the adopted scan.
    let attachment = store
        .get_document(&server.instance_id, "v3.attachment", &attachment_id)
        .await
        .expect("read")
        .expect("attachment");
    assert_eq!(attachment.body["last_scan"]["id"], started.as_str());
}

/// Two "processes" (states with their own lock connections) over one PostgreSQL store, and a
/// third connection standing for a worker that dies holding a shard.
#[tokio::test]
async fn shards_spread_over_processes_and_outlive_their_workers_issue_11() {
    let test = "shards_spread_over_processes_and_outlive_their_workers_issue_11";
    let Some(url) = palisade_store::testsuite::fresh_postgres_url(test).await else {
        return;
    };
    let store = palisade_store::connect(&url).await.expect("store");
    let process = |store: &Arc<dyn Store>| {
        let store = store.clone();
        let url = url.clone();
        async move {
            let locks = ClusterLocks::connect(&url).await.expect("locks");
            AppState::new(store, config(8)).with_cluster(None, locks)
        }
    };
    let first = process(&store).await;
    let second = process(&store).await;
    let directory = tempfile::tempdir().expect("tempdir");
    let bootstrap = palisade_server::bootstrap(&first, directory.path())
        .await
        .expect("bootstrap")
        .expect("fresh");
    let instance_id = bootstrap.instance_id.clone();
    let server = TestServer::wrap(first.clone(), bootstrap);
    let attachment_id = attach_cis_over_buckets(&server).await;
    let baseline = scan(&first, &instance_id, &attachment_id).await;
    let expected = findings_of(&store, &instance_id, &baseline).await;
    let shards = first.scans.shards_evaluated();

    // A scan whose coordinator is gone, and a worker holding its first shard.
    let started = scans::start_scan(&first, &instance_id, &attachment_id, "ondemand", Utc::now())
        .await
        .expect("start");
    let dying_worker = palisade_server::service::cluster::Cluster::new(
        ClusterLocks::connect(&url).await.expect("locks"),
        false,
    );
    let held = dying_worker
        .claim(
            LockPurpose::ScanShard,
            &format!("{instance_id}/{started}/0"),
        )
        .await
        .expect("claim")
        .expect("free");
    // The second process evaluates every other shard.
    assert_eq!(
        scans::help_with_shards(&second).await.expect("help"),
        usize::try_from(shards - 1).expect("small")
    );
    // The worker dies without committing; the first process takes its shard over, adopts the
    // scan and assembles it.
    drop(held);
    drop(dying_worker);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if scans::sweep(&first).await.expect("sweep") == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dead worker's shard was never taken over"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(findings_of(&store, &instance_id, &started).await, expected);
    assert_eq!(first.scans.shards_evaluated(), shards + 1);
    assert_eq!(second.scans.shards_evaluated(), shards - 1);

    // Both processes sweeping the same scan at once: each shard is evaluated exactly once.
    let contested = scans::start_scan(&first, &instance_id, &attachment_id, "ondemand", Utc::now())
        .await
        .expect("start");
    let (one, two) = tokio::join!(scans::sweep(&first), scans::sweep(&second));
    assert_eq!(
        one.expect("first") + two.expect("second"),
        1,
        "assembled once"
    );
    assert_eq!(
        first.scans.shards_evaluated() + second.scans.shards_evaluated(),
        3 * shards,
        "every shard of the three scans once"
    );
    assert_eq!(
        findings_of(&store, &instance_id, &contested).await,
        expected
    );
}
