//! Issue 11: nothing acknowledged is lost or counted twice when a server process is killed.
//!
//! - Scaled mode: three real `palisade serve` processes on loopback share a PostgreSQL schema and
//!   a JetStream stream (both unique to the run). Inventory goes through the bus; audit events
//!   are ingested by three concurrent senders; the process owning the instance's partition is
//!   killed with SIGKILL mid-ingest, right after it was asked to scan. Every acknowledged record
//!   must be in the findings exactly once (each event has its own target, so each is its own
//!   finding with an occurrence count), no record counts twice; the scan the victim was
//!   coordinating (in shards of 50 resources that every process helps with) is adopted and
//!   finished by a survivor, a new scan on a survivor finishes too, and every report equals the
//!   undisturbed scan's.
//! - Embedded mode: one process on SQLite killed with SIGKILL mid-ingest and restarted on the
//!   same data directory: every acknowledged event and inventory push is there once, and every
//!   push is there whole or not at all.
//!
//! Needs `PALISADE_TEST_POSTGRES_URL` and `PALISADE_TEST_NATS_URL` for the scaled case (skipped,
//! saying so, without them; CI sets both and `PALISADE_REQUIRE_POSTGRES=1`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use palisade_client::{Client, Method};
use serde_json::{Value, json};

use crate::support::ServerProcess;

/// The built-in Sigma rule StopLogging events trip (one finding per initiator and target).
const LOGGING_DISABLED_RULE: &str = "3ca5b840-6c4d-4024-96a2-1f998f845eb4";
const PARTITIONS: u32 = 4;

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// A batch of StopLogging events, each on its own trail (its finding's target).
fn events(targets: &[String]) -> Vec<u8> {
    let mut body = String::new();
    for (index, target) in targets.iter().enumerate() {
        body.push_str(
            &json!({
                "eventVersion": "1.08",
                "eventSource": "cloudtrail.amazonaws.com",
                "eventName": "StopLogging",
                "eventTime": format!("2026-03-01T10:{:02}:{:02}Z", (index / 60) % 60, index % 60),
                "recipientAccountId": "123456789012",
                "awsRegion": "eu-west-1",
                "sourceIPAddress": "198.51.100.7",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/mallory"},
                "requestParameters": {"name": target},
            })
            .to_string(),
        );
        body.push('\n');
    }
    body.into_bytes()
}

/// S3 buckets, some failing the CIS checks (logging, MFA delete, TLS), tagged with their push.
fn buckets(push: usize, count: usize) -> Vec<Value> {
    (0..count)
        .map(|index| {
            let n = push * 10_000 + index;
            json!({
                "id": format!("arn:aws:s3:::bucket-{n}"),
                "environment": "aws",
                "account_id": "111122223333",
                "service_name": "s3",
                "resource_kind": "bucket",
                "name": format!("bucket-{n}"),
                "region": "us-east-1",
                "collected_at": "2026-03-01T00:00:00Z",
                "tags": {"push": push.to_string()},
                "config": {
                    "name": format!("bucket-{n}"),
                    "creation_date": "2025-01-10T12:00:00Z",
                    "public_access_block": {"block_public_acls": true, "ignore_public_acls": true, "block_public_policy": true, "restrict_public_buckets": !n.is_multiple_of(11)},
                    "policy_status": {"is_public": false},
                    "versioning": {"status": "Enabled", "mfa_delete": if n.is_multiple_of(5) { "Disabled" } else { "Enabled" }},
                    "encryption": {"rules": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": "arn:aws:kms:us-east-1:111122223333:key/1"}, "bucket_key_enabled": true}]},
                    "logging": {"target_bucket": if n.is_multiple_of(3) { Value::Null } else { json!("access-logs") }, "target_prefix": "logs/"},
                    "secure_transport_required": !n.is_multiple_of(7),
                    "object_logging": {"read": true, "write": true},
                },
            })
        })
        .collect()
}

/// Every activity finding of the logging rule: target → occurrence count.
async fn logging_findings(client: &Client, instance_id: &str) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = client
            .json(
                Method::GET,
                &format!(
                    "/instances/{instance_id}/v1/findings?provider_id=activity-insights&page_size=1000&page_token={token}"
                ),
                None,
            )
            .await
            .expect("findings");
        for finding in page["findings"].as_array().into_iter().flatten() {
            if finding["reference_data"]["rule_id"] != LOGGING_DISABLED_RULE {
                continue;
            }
            let target = finding["reference_data"]["target"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let count = finding["occurrence_count"].as_i64().expect("count");
            *counts.entry(target).or_insert(0) += count;
        }
        token = page["next_page_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            return counts;
        }
    }
}

/// Waits until every batch is out of `pending` (as seen through `client`); panics with the ones
/// left after `limit`.
async fn wait_processed(client: &Client, instance_id: &str, batches: &[String], limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut left: BTreeSet<String> = batches.iter().cloned().collect();
    while !left.is_empty() {
        let mut still = BTreeSet::new();
        for batch in &left {
            let view = client
                .json(
                    Method::GET,
                    &format!("/instances/{instance_id}/v1/batches/{batch}"),
                    None,
                )
                .await
                .expect("batch");
            match view["status"].as_str() {
                Some("processed") => {}
                Some("pending") => {
                    still.insert(batch.clone());
                }
                other => panic!("batch {batch} ended {other:?}: {view}"),
            }
        }
        left = still;
        assert!(
            left.is_empty() || Instant::now() < deadline,
            "batches still pending after {limit:?}: {left:?}"
        );
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Which partitions a process owns, from its `/metrics`.
async fn owned_partitions(url: &str) -> Option<BTreeSet<u32>> {
    let text = http_get(&format!("{url}/metrics")).await?;
    Some(
        text.lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("palisade_bus_partition_owned{partition=\"")?;
                let (partition, value) = rest.split_once("\"} ")?;
                (value.trim() == "1").then(|| partition.parse().ok())?
            })
            .collect(),
    )
}

/// Partner findings travel through the bus too: a reported occurrence is answered as stored
/// (the writer waits for the partition's worker, maybe another process), is visible from every
/// process, a second report of the same id is refused, and the note's provider is recorded.
async fn partner_occurrences_go_through_the_bus(
    writer: &Client,
    reader: &Client,
    instance_id: &str,
) {
    let base = format!("/instances/{instance_id}/findings/v1/acme/providers/partner");
    writer
        .json(
            Method::POST,
            &format!("{base}/notes"),
            Some(&json!({
                "kind": "FINDING", "id": "open-port", "short_description": "Open port",
                "long_description": "A port is open to the world",
                "reported_by": {"id": "partner", "title": "Partner scanner"},
                "finding": {"severity": "HIGH"},
            })),
        )
        .await
        .expect("note");
    for number in 0..3 {
        let id = format!("port-{number}");
        let created = writer
            .json(
                Method::POST,
                &format!("{base}/occurrences"),
                Some(&json!({
                    "id": id, "kind": "FINDING",
                    "note_name": "acme/providers/partner/notes/open-port",
                    "context": {"resource_crn": format!("crn:v1:vm-{number}")},
                    "finding": {"certainty": "HIGH"},
                })),
            )
            .await
            .expect("occurrence");
        assert_eq!(created["id"], id.as_str(), "{created}");
        let read = reader
            .json(Method::GET, &format!("{base}/occurrences/{id}"), None)
            .await
            .expect("visible from another process");
        assert_eq!(read["id"], id.as_str());
    }
    match writer
        .json(
            Method::POST,
            &format!("{base}/occurrences"),
            Some(&json!({
                "id": "port-0", "kind": "FINDING",
                "note_name": "acme/providers/partner/notes/open-port",
            })),
        )
        .await
    {
        Err(palisade_client::ClientError::Api { status: 409, .. }) => {}
        other => panic!("a second report of port-0 without Replace-If-Exists: {other:?}"),
    }
    let listed = reader
        .json(Method::GET, &format!("{base}/occurrences"), None)
        .await
        .expect("list");
    assert_eq!(
        listed["occurrences"].as_array().map(Vec::len),
        Some(3),
        "{listed}"
    );
}

/// Scan shards a process evaluated, from its `/metrics` (0 before its first).
async fn shards_evaluated(url: &str) -> u64 {
    let text = http_get(&format!("{url}/metrics"))
        .await
        .unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("palisade_scan_shards_evaluated_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

/// A plain HTTP/1.0 GET (the metrics route needs no key and answers text, not JSON).
async fn http_get(url: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://")?;
    let (address, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(address, path)| {
            (address, format!("/{path}"))
        });
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(address),
    )
    .await
    .ok()?
    .ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")).then(|| body.to_owned())
}

async fn report_of(client: &Client, instance_id: &str, report_id: &str) -> Value {
    let report = client
        .json(
            Method::GET,
            &format!("/instances/{instance_id}/v3/reports/{report_id}"),
            None,
        )
        .await
        .expect("report");
    // What the scan found; ids and times differ between scans.
    json!({
        "controls_summary": report["controls_summary"],
        "evaluations_summary": report["evaluations_summary"],
        "rollup": report["rollup"],
    })
}

/// Scans, retrying while a dead process's claim on the attachment has not been dropped yet.
async fn scan(client: &Client, instance_id: &str, attachment_id: &str) -> String {
    for _ in 0..50 {
        match client
            .json(
                Method::POST,
                &format!("/instances/{instance_id}/v3/scans"),
                Some(&json!({"attachment_id": attachment_id})),
            )
            .await
        {
            Ok(scan) => return scan["report_id"].as_str().expect("report id").to_owned(),
            Err(palisade_client::ClientError::Api { status: 409, .. }) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("scan failed: {error}"),
        }
    }
    panic!("the attachment stayed locked");
}

async fn attach_cis(client: &Client, instance_id: &str) -> String {
    let v3 = format!("/instances/{instance_id}/v3");
    let scope = client
        .json(
            Method::POST,
            &format!("{v3}/scopes"),
            Some(&json!({"name": "All AWS", "description": "issue 11", "environment": "aws", "properties": []})),
        )
        .await
        .expect("scope");
    let created = client
        .json(
            Method::POST,
            &format!("{v3}/profiles/cis-aws-foundations/attachments"),
            Some(&json!({"attachments": [{
                "name": "CIS on everything", "description": "issue 11",
                "scope": [{"id": scope["id"]}], "schedule": "daily", "status": "enabled",
                "notifications": {"enabled": false, "controls": {"threshold_limit": 10, "failed_control_ids": []}},
                "attachment_parameters": [],
            }]})),
        )
        .await
        .expect("attachment");
    created["attachments"][0]["id"]
        .as_str()
        .expect("attachment id")
        .to_owned()
}

/// What one sender got: the batches and targets the server acknowledged, and the targets of
/// batches whose answer never came.
#[derive(Default)]
struct Sent {
    acked_batches: Vec<String>,
    acked_targets: Vec<String>,
    unacked_targets: Vec<String>,
}

async fn send_events(
    client: &Client,
    instance_id: &str,
    name: &str,
    batch: usize,
    per_batch: usize,
    sent: &mut Sent,
) -> bool {
    let targets: Vec<String> = (0..per_batch)
        .map(|index| format!("trail-{name}-{batch}-{index}"))
        .collect();
    match client
        .upload(
            Method::POST,
            &format!("/instances/{instance_id}/v1/activity/events?source={name}-{batch}.jsonl"),
            "application/x-ndjson",
            events(&targets),
        )
        .await
    {
        Ok(answer) => {
            assert_eq!(answer["batch"]["records"], per_batch, "{answer}");
            sent.acked_batches
                .push(answer["batch"]["id"].as_str().expect("batch id").to_owned());
            sent.acked_targets.extend(targets);
            true
        }
        Err(_) => {
            sent.unacked_targets.extend(targets);
            false
        }
    }
}

fn check_exactly_once(found: &BTreeMap<String, i64>, sent: &Sent) {
    for target in &sent.acked_targets {
        assert_eq!(
            found.get(target),
            Some(&1),
            "acknowledged record {target} must be in the results exactly once"
        );
    }
    for target in &sent.unacked_targets {
        assert!(
            found.get(target).is_none_or(|count| *count == 1),
            "unacknowledged record {target} counted {:?} times",
            found.get(target)
        );
    }
    let expected: BTreeSet<&String> = sent
        .acked_targets
        .iter()
        .chain(&sent.unacked_targets)
        .collect();
    for target in found.keys() {
        assert!(
            expected.contains(target),
            "finding for unknown target {target}"
        );
    }
}

fn scaled_args(store_url: &str, nats_url: &str, prefix: &str) -> Vec<String> {
    [
        "--store",
        store_url,
        "--bus",
        nats_url,
        "--bus-prefix",
        prefix,
        "--bus-partitions",
        &PARTITIONS.to_string(),
        "--bus-ack-wait",
        "2",
        // 1,200 buckets in shards of 50: every process can take part in a scan.
        "--scan-shard-size",
        "50",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect()
}

fn start(data_dir: &Path, args: &[String]) -> ServerProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServerProcess::start_with_args(data_dir, &args)
}

#[test]
fn issue_11_three_processes_lose_nothing_when_one_is_killed() {
    let test = "issue_11_three_processes_lose_nothing_when_one_is_killed";
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let Some(store_url) = runtime.block_on(palisade_store::testsuite::fresh_postgres_url(test))
    else {
        return;
    };
    let Ok(nats_url) = std::env::var("PALISADE_TEST_NATS_URL") else {
        assert!(
            std::env::var("PALISADE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "CI runs the scaled test: set PALISADE_TEST_NATS_URL"
        );
        eprintln!("SKIPPED {test}: set PALISADE_TEST_NATS_URL to run it against NATS JetStream");
        return;
    };
    let prefix = unique("t");
    let args = scaled_args(&store_url, &nats_url, &prefix);
    let directories: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    // The first process creates the instance; the others join the same store.
    let first = start(directories[0].path(), &args);
    let (key, instance_id) = first.bootstrap();
    let mut processes: Vec<Option<ServerProcess>> = vec![Some(first)];
    for directory in &directories[1..] {
        processes.push(Some(start(directory.path(), &args)));
    }
    let urls: Vec<String> = processes
        .iter()
        .map(|process| process.as_ref().expect("running").url.clone())
        .collect();
    let clients: Vec<Client> = urls
        .iter()
        .map(|url| Client::new(url, &key).expect("client"))
        .collect();

    runtime.block_on(async {
        // The partitions are spread over the three processes.
        let deadline = Instant::now() + Duration::from_secs(30);
        let owners = loop {
            let mut owned = Vec::new();
            for url in &urls {
                owned.push(owned_partitions(url).await.unwrap_or_default());
            }
            let total: usize = owned.iter().map(BTreeSet::len).sum();
            if total == PARTITIONS as usize && owned.iter().all(|set| !set.is_empty()) {
                break owned;
            }
            assert!(
                Instant::now() < deadline,
                "partitions not spread: {owned:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let partition = palisade_bus::partition_of(&instance_id, PARTITIONS);
        let victim = owners
            .iter()
            .position(|owned| owned.contains(&partition))
            .expect("an owner");

        // Inventory through the bus: 202 at once, stored by the partition's owner.
        let mut inventory_batches = Vec::new();
        for (push, client) in clients.iter().enumerate() {
            let answer = client
                .json(
                    Method::POST,
                    &format!("/instances/{instance_id}/v1/inventory"),
                    Some(&json!({"resources": buckets(push, 400)})),
                )
                .await
                .expect("push");
            assert!(
                answer["rejected"].as_array().is_some_and(Vec::is_empty),
                "{answer}"
            );
            inventory_batches.push(answer["batch"]["id"].as_str().expect("queued").to_owned());
        }
        wait_processed(
            &clients[0],
            &instance_id,
            &inventory_batches,
            Duration::from_secs(60),
        )
        .await;
        let listed = clients[1]
            .json(
                Method::GET,
                &format!("/instances/{instance_id}/v1/inventory?limit=1"),
                None,
            )
            .await
            .expect("inventory");
        assert_eq!(listed["total_count"], 1200);

        // The undisturbed scan.
        let attachment_id = attach_cis(&clients[0], &instance_id).await;
        let survivor = (victim + 1) % 3;
        let baseline_id = scan(&clients[survivor], &instance_id, &attachment_id).await;
        let baseline = report_of(&clients[survivor], &instance_id, &baseline_id).await;
        assert!(
            baseline["evaluations_summary"]["failure_count"]
                .as_i64()
                .unwrap_or_default()
                > 0,
            "the inventory has failures to find: {baseline}"
        );

        // Ingest from three senders at once; the partition owner dies in the middle.
        let senders: Vec<_> = (0..3)
            .map(|home| {
                let clients = clients.clone();
                let instance_id = instance_id.clone();
                tokio::spawn(async move {
                    let mut sent = Sent::default();
                    let mut target = home;
                    for batch in 0..14 {
                        // Paced, so the kill falls in the middle of the sending.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        // After a failure, another process takes this sender's batches.
                        if !send_events(
                            &clients[target],
                            &instance_id,
                            &format!("s{home}"),
                            batch,
                            20,
                            &mut sent,
                        )
                        .await
                        {
                            target = (target + 1) % 3;
                        }
                    }
                    sent
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(700)).await;
        // A scan asked of the victim just before it dies.
        let victim_scan = {
            let client = clients[victim].clone();
            let instance_id = instance_id.clone();
            let attachment_id = attachment_id.clone();
            tokio::spawn(async move {
                client
                    .json(
                        Method::POST,
                        &format!("/instances/{instance_id}/v3/scans"),
                        Some(&json!({"attachment_id": attachment_id})),
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        processes[victim].take().expect("victim").kill();
        let _ = victim_scan.await;

        let mut sent = Sent::default();
        for sender in senders {
            let part = sender.await.expect("sender");
            sent.acked_batches.extend(part.acked_batches);
            sent.acked_targets.extend(part.acked_targets);
            sent.unacked_targets.extend(part.unacked_targets);
        }
        eprintln!(
            "issue 11 scaled: partition {partition} owner (process {victim}) killed; {} batches acknowledged, {} records unacknowledged",
            sent.acked_batches.len(),
            sent.unacked_targets.len()
        );
        assert!(
            sent.acked_batches.len() >= 20,
            "most batches were acknowledged: {}",
            sent.acked_batches.len()
        );

        // The survivors take the dead process's partitions and finish every batch.
        let alive: Vec<usize> = (0..3).filter(|index| *index != victim).collect();
        wait_processed(
            &clients[alive[0]],
            &instance_id,
            &sent.acked_batches,
            Duration::from_secs(90),
        )
        .await;
        let found = logging_findings(&clients[alive[1]], &instance_id).await;
        check_exactly_once(&found, &sent);
        let mut owned_after = BTreeSet::new();
        for index in &alive {
            owned_after.extend(owned_partitions(&urls[*index]).await.unwrap_or_default());
        }
        assert!(
            owned_after.contains(&partition),
            "the instance's partition moved to a survivor"
        );

        partner_occurrences_go_through_the_bus(&clients[alive[0]], &clients[alive[1]], &instance_id)
            .await;

        let store = palisade_store::connect(&store_url).await.expect("store");
        let occurrence_batches = store
            .list_batches(&instance_id, "occurrences", 100)
            .await
            .expect("batches");
        assert_eq!(
            occurrence_batches
                .iter()
                .map(|batch| batch.status.as_str())
                .collect::<Vec<_>>(),
            ["processed"; 3],
            "each reported occurrence was one batch on the bus"
        );

        // The scan the victim coordinated is adopted by a survivor and finished (if it had not
        // finished before the kill): no run stays running.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !store
            .running_scan_runs(10)
            .await
            .expect("runs")
            .is_empty()
        {
            assert!(
                Instant::now() < deadline,
                "the dead coordinator's scan was never finished"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The scan finishes on a survivor with the undisturbed scan's report, and no report of
        // the attachment differs from it (the dead process's scan left nothing visible).
        let after_id = scan(&clients[alive[1]], &instance_id, &attachment_id).await;
        assert_eq!(
            report_of(&clients[alive[0]], &instance_id, &after_id).await,
            baseline
        );
        let reports = clients[alive[0]]
            .json(
                Method::GET,
                &format!("/instances/{instance_id}/v3/reports"),
                None,
            )
            .await
            .expect("reports");
        let reports = reports["reports"].as_array().expect("reports").clone();
        assert!(reports.len() >= 2);
        let mut shards = Vec::new();
        for index in &alive {
            shards.push(shards_evaluated(&urls[*index]).await);
        }
        eprintln!(
            "issue 11 scaled: {} reports, shards evaluated by the survivors: {shards:?}",
            reports.len()
        );
        for report in reports {
            let id = report["id"].as_str().expect("id");
            assert_eq!(
                report_of(&clients[alive[0]], &instance_id, id).await,
                baseline,
                "report {id}"
            );
        }
    });
    for process in processes.into_iter().flatten() {
        assert!(process.terminate(), "graceful shutdown");
    }
    runtime.block_on(async {
        // Leave nothing behind on the shared NATS server.
        let store = palisade_store::connect(&store_url).await.expect("store");
        let bus = palisade_bus::nats::NatsBus::connect(
            palisade_bus::nats::NatsSettings {
                prefix: prefix.clone(),
                partitions: PARTITIONS,
                ..palisade_bus::nats::NatsSettings::new(&nats_url)
            },
            store,
        )
        .await
        .expect("bus");
        bus.delete_stream().await.expect("delete the test stream");
    });
}

#[test]
fn issue_11_embedded_sigkill_during_ingest_keeps_every_acknowledged_record() {
    let directory = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = ServerProcess::start(directory.path());
    let (key, instance_id) = server.bootstrap();
    let client = Client::new(&server.url, &key).expect("client");

    let (sent, pushes) = runtime.block_on(async {
        let mut pushes: Vec<(usize, bool)> = Vec::new();
        // Events and inventory in parallel until the process dies under them.
        let acked_pushes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let inventory = {
            let client = client.clone();
            let instance_id = instance_id.clone();
            let acked_pushes = acked_pushes.clone();
            tokio::spawn(async move {
                let mut pushes = Vec::new();
                for push in 0..200 {
                    let answer = client
                        .json(
                            Method::POST,
                            &format!("/instances/{instance_id}/v1/inventory"),
                            Some(&json!({"resources": buckets(push, 50)})),
                        )
                        .await;
                    let acked = answer.is_ok();
                    pushes.push((push, acked));
                    if !acked {
                        break;
                    }
                    acked_pushes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                pushes
            })
        };
        let events = {
            let client = client.clone();
            let instance_id = instance_id.clone();
            tokio::spawn(async move {
                let mut sent = Sent::default();
                for batch in 0..200 {
                    if !send_events(&client, &instance_id, "e", batch, 20, &mut sent).await {
                        break;
                    }
                }
                sent
            })
        };
        // Let both run, then kill the process with work on the way in and in the worker.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let batches = client
                .json(
                    Method::GET,
                    &format!("/instances/{instance_id}/v1/activity/batches?limit=500"),
                    None,
                )
                .await
                .map(|list| list.as_array().map_or(0, Vec::len))
                .unwrap_or(0);
            // Both kinds of work must have been acknowledged at least once before the kill
            // (on a loaded machine the first inventory push can take longer than 8 batches).
            let pushed = acked_pushes.load(std::sync::atomic::Ordering::SeqCst);
            if (batches >= 8 && pushed >= 1) || Instant::now() > deadline {
                break;
            }
        }
        tokio::task::block_in_place(|| server.kill());
        pushes.extend(inventory.await.expect("inventory sender"));
        let sent = events.await.expect("event sender");
        (sent, pushes)
    });
    eprintln!(
        "issue 11 embedded: killed after {} acknowledged event batches and {} inventory pushes",
        sent.acked_batches.len(),
        pushes.iter().filter(|(_, acked)| *acked).count()
    );
    assert!(!sent.acked_batches.is_empty() && pushes.iter().any(|(_, acked)| *acked));

    // Restart on the same data directory: the journal's pending batches are finished.
    let restarted = ServerProcess::start(directory.path());
    let client = Client::new(&restarted.url, &key).expect("client");
    runtime.block_on(async {
        wait_processed(
            &client,
            &instance_id,
            &sent.acked_batches,
            Duration::from_secs(60),
        )
        .await;
        let found = logging_findings(&client, &instance_id).await;
        check_exactly_once(&found, &sent);
        // Every batch the journal shows is whole: processed with all its records.
        let batches = client
            .json(
                Method::GET,
                &format!("/instances/{instance_id}/v1/activity/batches?limit=500"),
                None,
            )
            .await
            .expect("batches");
        for batch in batches.as_array().expect("batches") {
            assert_eq!(batch["records"], 20, "{batch}");
            assert_eq!(batch["status"], "processed", "{batch}");
            // A processed batch has all its findings, acknowledged or not.
            let source = batch["source"].as_str().expect("source");
            let index = source
                .strip_prefix("e-")
                .and_then(|rest| rest.strip_suffix(".jsonl"))
                .expect("a batch of the sender");
            for record in 0..20 {
                let target = format!("trail-e-{index}-{record}");
                assert_eq!(found.get(&target), Some(&1), "{target} of {batch}");
            }
        }
        // An inventory push is all there or not at all; acknowledged ones are there.
        for (push, acked) in &pushes {
            let listed = client
                .json(
                    Method::GET,
                    &format!("/instances/{instance_id}/v1/inventory?limit=1&tag=push:{push}"),
                    None,
                )
                .await
                .expect("inventory");
            let count = listed["total_count"].as_i64().expect("count");
            if *acked {
                assert_eq!(count, 50, "acknowledged push {push}");
            } else {
                assert!(
                    count == 0 || count == 50,
                    "push {push} half-written: {count}"
                );
            }
        }
    });
    assert!(restarted.terminate(), "graceful shutdown");
}
