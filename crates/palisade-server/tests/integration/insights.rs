//! Activity and network insights through the API (issues 7 and 8): ingest is durable and
//! reports bad records, the worker turns batches into findings exactly once, and packs, rule
//! settings, detector configuration and intel feeds change what is found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use palisade_insights::activity::{ActivityState, process_batch};
use palisade_insights::network::generator::{self, GeneratorConfig};
use palisade_insights::packs::BUILTIN_PACKS;
use palisade_logs::audit::{AuditReader, FormatHint};
use palisade_server::service::insights::process_pending;
use palisade_sigma::{PackParameters, RuleSource, load_pack};
use serde_json::{Value, json};

use crate::common::{Answer, TestServer, assert_error_shape};

fn cloudtrail_files() -> Vec<PathBuf> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../palisade-logs/tests/data/cloudtrail/invictus-ir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("the invictus-ir CloudTrail sample")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    files.sort();
    assert!(files.len() > 40, "{} files", files.len());
    files
}

async fn post_raw(
    server: &TestServer,
    path: &str,
    key: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Answer {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("request");
    server.send(request).await
}

async fn put_raw(server: &TestServer, path: &str, key: &str, body: Vec<u8>) -> Answer {
    let request = Request::builder()
        .method(Method::PUT)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "text/plain")
        .body(Body::from(body))
        .expect("request");
    server.send(request).await
}

/// Every finding of a provider, all pages.
async fn findings_of(server: &TestServer, provider: &str) -> Vec<Value> {
    let mut findings = Vec::new();
    let mut token = String::new();
    loop {
        let answer = server
            .call(
                Method::GET,
                &format!(
                    "/instances/{}/v1/findings?provider_id={provider}&page_size=200&page_token={token}",
                    server.instance_id
                ),
                Some(&server.admin_key),
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        findings.extend(
            answer.body["findings"]
                .as_array()
                .expect("findings")
                .clone(),
        );
        token = answer.body["next_page_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if token.is_empty() {
            return findings;
        }
    }
}

/// What the offline engine finds in the same files, fed in the same order: rule id → hits.
fn offline_activity_findings(files: &[PathBuf]) -> BTreeMap<String, i64> {
    let sources: Vec<RuleSource> = BUILTIN_PACKS
        .iter()
        .flat_map(|pack| pack.sources())
        .collect();
    let (pack, _) = load_pack(&sources, &PackParameters::default());
    let mut state = ActivityState::new(&pack);
    let mut counts = BTreeMap::new();
    for file in files {
        let bytes = std::fs::read(file).expect("read");
        let events: Vec<_> = AuditReader::new(&bytes[..], "f", FormatHint::Detect)
            .filter_map(Result::ok)
            .collect();
        for finding in process_batch(&pack, &mut state, events) {
            *counts.entry(finding.rule_id).or_insert(0) += 1;
        }
    }
    counts
}

fn server_counts(findings: &[Value]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for finding in findings {
        let rule = finding["reference_data"]["rule_id"]
            .as_str()
            .expect("rule id")
            .to_owned();
        *counts.entry(rule).or_insert(0) += finding["occurrence_count"].as_i64().expect("count");
    }
    counts
}

#[tokio::test]
async fn cloudtrail_attacks_become_activity_findings_exactly_once_issue_7() {
    let server = TestServer::sqlite().await;
    let (_, ingest_key) = server.key_with_role("ingest").await;
    let files = cloudtrail_files();
    let path = format!("/instances/{}/v1/activity/events", server.instance_id);
    let mut batch_ids = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .and_then(|name| name.to_str())
            .expect("name");
        let answer = post_raw(
            &server,
            &format!("{path}?source={name}"),
            &ingest_key,
            "application/json",
            std::fs::read(file).expect("read"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        assert_eq!(answer.body["batch"]["status"], "pending");
        assert_eq!(answer.body["batch"]["rejected"], 0);
        batch_ids.push(answer.body["batch"]["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(process_pending(&server.state).await, files.len());
    // Nothing is left, and a second round does nothing: batches apply once.
    assert_eq!(process_pending(&server.state).await, 0);

    let expected = offline_activity_findings(&files);
    assert!(!expected.is_empty(), "the attack data must trigger rules");
    let findings = findings_of(&server, "activity-insights").await;
    assert_eq!(server_counts(&findings), expected);
    let finding = &findings[0];
    assert_eq!(finding["kind"], "FINDING");
    assert!(finding["finding"]["severity"].is_string());
    assert!(finding["remediation"].is_string());
    assert!(
        finding["reference_data"]["event"].is_object()
            || finding["reference_data"]["events"].is_array()
    );

    let batch = server
        .call(
            Method::GET,
            &format!(
                "/instances/{}/v1/activity/batches/{}",
                server.instance_id, batch_ids[0]
            ),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(batch.status, StatusCode::OK, "{}", batch.text);
    assert_eq!(batch.body["status"], "processed");
    let listed = server
        .call(
            Method::GET,
            &format!(
                "/instances/{}/v1/activity/batches?limit=500",
                server.instance_id
            ),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(files.len()));
    let total: i64 = listed
        .body
        .as_array()
        .expect("batches")
        .iter()
        .map(|batch| batch["findings"].as_i64().expect("findings"))
        .sum();
    assert_eq!(total, expected.values().sum::<i64>());
}

#[tokio::test]
async fn bad_records_are_reported_by_line_and_the_rest_is_kept_issue_7() {
    let server = TestServer::sqlite().await;
    let body = concat!(
        r#"{"eventVersion":"1.08","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","eventTime":"2026-03-01T10:00:00Z","recipientAccountId":"123456789012","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/mallory"},"requestParameters":{"name":"trail"},"awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.7"}"#,
        "\n",
        "this is not json\n",
        "\n",
        r#"{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventTime":"2026-03-01T10:01:00Z","recipientAccountId":"123456789012"}"#,
        "\n"
    );
    let answer = post_raw(
        &server,
        &format!(
            "/instances/{}/v1/activity/events?source=day.jsonl&wait=true",
            server.instance_id
        ),
        &server.admin_key,
        "application/x-ndjson",
        body.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["batch"]["status"], "processed");
    assert_eq!(answer.body["batch"]["records"], 2);
    assert_eq!(answer.body["batch"]["rejected"], 1);
    assert_eq!(answer.body["rejected"][0]["line"], 2);
    assert!(answer.body["batch"]["findings"].as_i64().expect("findings") >= 1);
    let findings = findings_of(&server, "activity-insights").await;
    assert!(
        findings
            .iter()
            .any(|finding| finding["account_id"] == "123456789012"
                && finding["reference_data"]["initiator"]
                    .as_str()
                    .is_some_and(|initiator| initiator.contains("mallory"))),
        "{findings:#?}"
    );
}

const CUSTOM_PACK: &str = r#"
title: Console login from the lab network
id: 7f0c0000-0000-4000-8000-00000000c0de
logsource: {product: aws, service: cloudtrail}
detection:
    selection:
        eventName: ConsoleLogin
        sourceIPAddress|cidr: 198.51.100.0/24
    condition: selection
level: high
"#;

fn console_login(time: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventTime":"{time}","recipientAccountId":"123456789012","sourceIPAddress":"198.51.100.9","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/alice"}},"responseElements":{{"ConsoleLogin":"Success"}}}}"#
    )
}

#[tokio::test]
async fn packs_and_rule_settings_change_what_is_found_issue_7() {
    let server = TestServer::sqlite().await;
    let base = format!("/instances/{}/v1/activity", server.instance_id);
    let (_, viewer) = server.key_with_role("viewer").await;

    // Built-in packs are listed; a viewer may read but not upload.
    let packs = server
        .call(Method::GET, &format!("{base}/packs"), Some(&viewer), None)
        .await;
    assert_eq!(packs.status, StatusCode::OK, "{}", packs.text);
    let ids: Vec<&str> = packs
        .body
        .as_array()
        .expect("packs")
        .iter()
        .filter_map(|pack| pack["id"].as_str())
        .collect();
    assert_eq!(ids, ["sigmahq-cloud", "palisade-correlations"]);
    let denied = put_raw(
        &server,
        &format!("{base}/packs/lab"),
        &viewer,
        CUSTOM_PACK.into(),
    )
    .await;
    assert_error_shape(&denied, StatusCode::FORBIDDEN);

    // A pack where nothing loads is refused with the reason; built-ins cannot be replaced.
    let broken = put_raw(
        &server,
        &format!("{base}/packs/lab"),
        &server.admin_key,
        b"title: [unclosed".to_vec(),
    )
    .await;
    assert_error_shape(&broken, StatusCode::BAD_REQUEST);
    let builtin = put_raw(
        &server,
        &format!("{base}/packs/sigmahq-cloud"),
        &server.admin_key,
        CUSTOM_PACK.into(),
    )
    .await;
    assert_error_shape(&builtin, StatusCode::CONFLICT);

    let uploaded = put_raw(
        &server,
        &format!("{base}/packs/lab?name=Lab%20rules"),
        &server.admin_key,
        CUSTOM_PACK.into(),
    )
    .await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text);
    assert_eq!(uploaded.body["name"], "Lab rules");
    assert_eq!(uploaded.body["enabled"], true);

    let ingest = |time: &'static str| {
        let server = &server;
        let base = base.clone();
        async move {
            post_raw(
                server,
                &format!("{base}/events?wait=true"),
                &server.admin_key,
                "application/json",
                console_login(time).into_bytes(),
            )
            .await
        }
    };
    let custom_rule = "7f0c0000-0000-4000-8000-00000000c0de";
    let count_of = |findings: &[Value]| -> (i64, String) {
        findings
            .iter()
            .find(|finding| finding["reference_data"]["rule_id"] == custom_rule)
            .map_or((0, String::new()), |finding| {
                (
                    finding["occurrence_count"].as_i64().unwrap_or_default(),
                    finding["finding"]["severity"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
    };
    assert_eq!(ingest("2026-03-01T10:00:00Z").await.status, StatusCode::OK);
    let findings = findings_of(&server, "activity-insights").await;
    assert_eq!(count_of(&findings), (1, "HIGH".to_owned()));

    // The rule is listed with its pack; a severity override applies to later findings.
    let rules = server
        .call(
            Method::GET,
            &format!("{base}/rules?pack=lab"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        rules.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        rules.text
    );
    assert_eq!(rules.body[0]["severity"], "HIGH");
    let override_answer = server
        .call(
            Method::PUT,
            &format!("{base}/rules/{custom_rule}"),
            Some(&server.admin_key),
            Some(json!({"severity": "LOW"})),
        )
        .await;
    assert_eq!(
        override_answer.status,
        StatusCode::OK,
        "{}",
        override_answer.text
    );
    assert_eq!(ingest("2026-03-01T11:00:00Z").await.status, StatusCode::OK);
    let findings = findings_of(&server, "activity-insights").await;
    assert_eq!(count_of(&findings), (2, "LOW".to_owned()));

    // Disabled: no more findings of it.
    server
        .call(
            Method::PUT,
            &format!("{base}/rules/{custom_rule}"),
            Some(&server.admin_key),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(ingest("2026-03-01T12:00:00Z").await.status, StatusCode::OK);
    assert_eq!(
        count_of(&findings_of(&server, "activity-insights").await).0,
        2
    );
    let disabled = server
        .call(
            Method::GET,
            &format!("{base}/rules?enabled=false"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(disabled.body[0]["id"], custom_rule);
    let unknown = server
        .call(
            Method::PUT,
            &format!("{base}/rules/no-such-rule"),
            Some(&server.admin_key),
            Some(json!({})),
        )
        .await;
    assert_error_shape(&unknown, StatusCode::NOT_FOUND);

    // Re-enabled, then the whole pack disabled: nothing again.
    server
        .call(
            Method::PUT,
            &format!("{base}/rules/{custom_rule}"),
            Some(&server.admin_key),
            Some(json!({})),
        )
        .await;
    let off = server
        .call(
            Method::PATCH,
            &format!("{base}/packs/lab"),
            Some(&server.admin_key),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_eq!(off.body["enabled"], false);
    assert_eq!(ingest("2026-03-01T13:00:00Z").await.status, StatusCode::OK);
    assert_eq!(
        count_of(&findings_of(&server, "activity-insights").await).0,
        2
    );

    // Built-in packs can be switched off too, and custom ones deleted.
    let builtin_off = server
        .call(
            Method::PATCH,
            &format!("{base}/packs/sigmahq-cloud"),
            Some(&server.admin_key),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(builtin_off.body["enabled"], false, "{}", builtin_off.text);
    let deleted = server
        .call(
            Method::DELETE,
            &format!("{base}/packs/lab"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let no_builtin_delete = server
        .call(
            Method::DELETE,
            &format!("{base}/packs/sigmahq-cloud"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_error_shape(&no_builtin_delete, StatusCode::CONFLICT);
}

/// Generated AWS version 2 flow logs with planted attacks, as text, and the intel feed as CSV.
fn generated_flows() -> (Vec<Vec<u8>>, String, Vec<generator::PlantedAttack>) {
    let config = GeneratorConfig::default();
    let mut text = Vec::new();
    let traffic = generator::generate(&config, |record| {
        palisade_logs::flow::aws::write_default_format_line(record, &mut text).expect("write");
    });
    let lines: Vec<&[u8]> = text.split_inclusive(|byte| *byte == b'\n').collect();
    let chunks = lines
        .chunks(lines.len() / 4 + 1)
        .map(|chunk| chunk.concat())
        .collect();
    let mut feed = String::from("ip,category,confidence\n");
    for indicator in traffic
        .intel
        .iter()
        .chain(generator::decoy_intel(config.seed, 1_000).iter())
    {
        feed.push_str(&format!(
            "{},{},{}\n",
            indicator.network, indicator.category, indicator.confidence
        ));
    }
    (chunks, feed, traffic.planted)
}

fn matches(finding: &Value, attack: &generator::PlantedAttack) -> bool {
    let connection = &finding["finding"]["network_connection"];
    finding["note_name"]
        .as_str()
        .is_some_and(|name| name.ends_with(&format!("/notes/{}", attack.finding_type)))
        && attack.client.is_none_or(|client| {
            connection["client"]["address"] == Value::String(client.to_string())
        })
        && attack.server.is_none_or(|server| {
            connection["server"]["address"] == Value::String(server.to_string())
        })
        && attack
            .port
            .is_none_or(|port| connection["server"]["port"] == json!(port))
}

#[tokio::test]
async fn planted_network_attacks_are_found_once_through_the_api_issue_8() {
    let server = TestServer::sqlite().await;
    let base = format!("/instances/{}/v1/network", server.instance_id);
    let (chunks, feed, planted) = generated_flows();

    // The feed, with one bad line that is reported and skipped.
    let uploaded = put_raw(
        &server,
        &format!("{base}/intel/feeds/generated?format=csv"),
        &server.admin_key,
        format!("{feed}not-an-address,malware,90\n").into_bytes(),
    )
    .await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text);
    assert_eq!(uploaded.body["format"], "csv");
    assert_eq!(uploaded.body["rejected"], 1);
    assert!(uploaded.body["errors"][0]["message"].is_string());
    let feeds = server
        .call(
            Method::GET,
            &format!("{base}/intel/feeds"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(feeds.body[0]["name"], "generated");

    let last = chunks.len() - 1;
    for (index, chunk) in chunks.into_iter().enumerate() {
        let flush = if index == last { "&flush=true" } else { "" };
        let answer = post_raw(
            &server,
            &format!("{base}/flows?source=chunk-{index}.log{flush}"),
            &server.admin_key,
            "text/plain",
            chunk,
        )
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        assert_eq!(answer.body["batch"]["rejected"], 0, "{}", answer.text);
    }
    assert_eq!(process_pending(&server.state).await, last + 1);

    let findings = findings_of(&server, "network-insights").await;
    for attack in &planted {
        let found = findings
            .iter()
            .filter(|finding| matches(finding, attack))
            .count();
        assert_eq!(found, 1, "{attack:?} in {findings:#?}");
    }
    assert_eq!(findings.len(), planted.len(), "{findings:#?}");
    let total: i64 = findings
        .iter()
        .map(|finding| finding["occurrence_count"].as_i64().expect("count"))
        .sum();
    assert_eq!(total, planted.len() as i64);
    let types: BTreeSet<&str> = findings
        .iter()
        .filter_map(|finding| finding["reference_data"]["type"].as_str())
        .collect();
    assert!(
        types.iter().any(|kind| kind.starts_with("xforce-")),
        "{types:?}"
    );
    assert!(
        findings
            .iter()
            .all(|finding| finding["finding"]["data_transferred"].is_object())
    );
}

#[tokio::test]
async fn detector_configuration_and_feeds_are_validated_issue_8() {
    let server = TestServer::sqlite().await;
    let base = format!("/instances/{}/v1/network", server.instance_id);
    let defaults = server
        .call(
            Method::GET,
            &format!("{base}/detectors"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(defaults.status, StatusCode::OK, "{}", defaults.text);
    assert_eq!(defaults.body["suppression_seconds"], 3600);

    let unknown = server
        .call(
            Method::PUT,
            &format!("{base}/detectors"),
            Some(&server.admin_key),
            Some(json!({"port_scan": {"no_such_knob": 1}})),
        )
        .await;
    assert_error_shape(&unknown, StatusCode::BAD_REQUEST);
    assert!(unknown.text.contains("/port_scan"), "{}", unknown.text);
    let impossible = server
        .call(
            Method::PUT,
            &format!("{base}/detectors"),
            Some(&server.admin_key),
            Some(json!({"evidence_flows": 5000})),
        )
        .await;
    assert_error_shape(&impossible, StatusCode::BAD_REQUEST);
    assert!(
        impossible.text.contains("evidence_flows"),
        "{}",
        impossible.text
    );
    let changed = server
        .call(
            Method::PUT,
            &format!("{base}/detectors"),
            Some(&server.admin_key),
            Some(json!({"suppression_seconds": 60})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let read = server
        .call(
            Method::GET,
            &format!("{base}/detectors"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(read.body["suppression_seconds"], 60);
    assert_eq!(read.body["evidence_flows"], 5);

    let empty = put_raw(
        &server,
        &format!("{base}/intel/feeds/empty"),
        &server.admin_key,
        b"# nothing here\nnot-an-address\n".to_vec(),
    )
    .await;
    assert_error_shape(&empty, StatusCode::BAD_REQUEST);
    assert!(empty.text.contains("line 2"), "{}", empty.text);
    let bad_format = put_raw(
        &server,
        &format!("{base}/intel/feeds/x?format=xml"),
        &server.admin_key,
        b"198.51.100.1\n".to_vec(),
    )
    .await;
    assert_error_shape(&bad_format, StatusCode::BAD_REQUEST);
    let stored = put_raw(
        &server,
        &format!("{base}/intel/feeds/scanners?category=scanner&confidence=60"),
        &server.admin_key,
        b"198.51.100.1\n203.0.113.0/24\n".to_vec(),
    )
    .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    assert_eq!(
        (
            &stored.body["format"],
            &stored.body["entries"],
            &stored.body["default_category"]
        ),
        (&json!("text"), &json!(2), &json!("scanner"))
    );
    let got = server
        .call(
            Method::GET,
            &format!("{base}/intel/feeds/scanners"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(got.body["default_confidence"], 60);
    let deleted = server
        .call(
            Method::DELETE,
            &format!("{base}/intel/feeds/scanners"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = server
        .call(
            Method::GET,
            &format!("{base}/intel/feeds/scanners"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_error_shape(&gone, StatusCode::NOT_FOUND);

    let bad_flows = post_raw(
        &server,
        &format!("{base}/flows?wait=true"),
        &server.admin_key,
        "text/plain",
        b"2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1767225600 1767225660 ACCEPT OK\n2 123 eni-1 garbage\n".to_vec(),
    )
    .await;
    assert_eq!(bad_flows.status, StatusCode::OK, "{}", bad_flows.text);
    assert_eq!(bad_flows.body["batch"]["records"], 1);
    assert_eq!(bad_flows.body["rejected"][0]["line"], 2);
}

#[tokio::test]
async fn insights_are_scoped_to_their_instance_issue_7() {
    let server = TestServer::sqlite().await;
    let (other_instance, other_key) = server.second_instance().await;
    let answer = post_raw(
        &server,
        &format!(
            "/instances/{}/v1/activity/events?wait=true",
            server.instance_id
        ),
        &server.admin_key,
        "application/json",
        console_login("2026-03-01T10:00:00Z").into_bytes(),
    )
    .await;
    let batch_id = answer.body["batch"]["id"].as_str().expect("id").to_owned();
    // The other instance's key cannot read this batch, even on its own path.
    let foreign = server
        .call(
            Method::GET,
            &format!("/instances/{other_instance}/v1/activity/batches/{batch_id}"),
            Some(&other_key),
            None,
        )
        .await;
    assert_error_shape(&foreign, StatusCode::NOT_FOUND);
    let put = put_raw(
        &server,
        &format!("/instances/{other_instance}/v1/network/intel/feeds/mine"),
        &other_key,
        b"198.51.100.1\n".to_vec(),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let feeds = server
        .call(
            Method::GET,
            &format!("/instances/{}/v1/network/intel/feeds", server.instance_id),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(feeds.body, json!([]));
}

/// The worker `run` starts processes accepted batches in the background: no `?wait`, no direct
/// call, just a real socket and polling the batch.
#[tokio::test]
async fn the_served_worker_processes_batches_in_the_background_issue_7() {
    let server = TestServer::sqlite().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(palisade_server::run(
        listener,
        server.state.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let base = format!(
        "http://{address}/instances/{}/v1/activity",
        server.instance_id
    );
    let accepted: Value = client
        .post(format!("{base}/events?source=login.json"))
        .bearer_auth(&server.admin_key)
        .body(console_login("2026-03-01T10:00:00Z"))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let batch_id = accepted["batch"]["id"].as_str().expect("id").to_owned();
    let mut status = String::new();
    for _ in 0..100 {
        let batch: Value = client
            .get(format!("{base}/batches/{batch_id}"))
            .bearer_auth(&server.admin_key)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        status = batch["status"].as_str().unwrap_or_default().to_owned();
        if status != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "processed");
    let _ = stop.send(());
    serving.await.expect("join").expect("served");
}

/// `count` short SSH connections from one outside source to one host, a second apart from
/// `first`, as AWS version 2 text.
fn ssh_attempts(first: i64, count: u16) -> Vec<u8> {
    let mut text = Vec::new();
    for index in 0..count {
        let time = chrono::DateTime::from_timestamp(first + i64::from(index), 0).expect("valid");
        let record = palisade_model::flow::FlowRecord {
            start: time,
            end: time,
            src_addr: "203.0.113.77".parse().expect("valid"),
            dst_addr: "10.0.0.5".parse().expect("valid"),
            src_port: 40_000 + index,
            dst_port: 22,
            protocol: 6,
            packets: 12,
            bytes: 2_000,
            action: palisade_model::flow::FlowAction::Reject,
            account_id: Some("123456789012".into()),
            interface_id: Some("eni-1".into()),
            ..palisade_model::flow::FlowRecord::default()
        };
        palisade_logs::flow::aws::write_default_format_line(&record, &mut text).expect("write");
    }
    text
}

/// A server "process" over an existing store: what a restart gives.
async fn reopened(url: &str, instance_id: &str, admin_key: &str) -> TestServer {
    let store = palisade_store::connect(url)
        .await
        .expect("reopen the store");
    let state = palisade_server::AppState::new(store, crate::common::test_config());
    TestServer::wrap(
        state,
        palisade_server::Bootstrap {
            instance_id: instance_id.to_owned(),
            admin_key: admin_key.to_owned(),
        },
    )
}

#[tokio::test]
async fn network_windows_survive_a_restart_issue_8() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut urls = vec![palisade_store::testsuite::fresh_sqlite_url(
        directory.path(),
    )];
    urls.extend(
        palisade_store::testsuite::fresh_postgres_url("network_windows_survive_a_restart_issue_8")
            .await,
    );
    // 2026-01-01T00:00:00Z, the start of a 5-minute brute-force window. Each batch holds 12
    // attempts; the detector reports 20 or more in one window, so only both together are one.
    let window_start = 1_767_225_600;
    for url in &urls {
        let (instance_id, admin_key) = {
            let store = palisade_store::connect(url).await.expect("open the store");
            let state = palisade_server::AppState::new(store, crate::common::test_config());
            let data = tempfile::tempdir().expect("tempdir");
            let bootstrap = palisade_server::bootstrap(&state, data.path())
                .await
                .expect("bootstrap")
                .expect("a fresh store bootstraps");
            let server = TestServer::wrap(state, bootstrap);
            let base = format!("/instances/{}/v1/network", server.instance_id);
            let answer = post_raw(
                &server,
                &format!("{base}/flows?source=first.log"),
                &server.admin_key,
                "text/plain",
                ssh_attempts(window_start, 12),
            )
            .await;
            assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
            assert_eq!(process_pending(&server.state).await, 1);
            assert!(findings_of(&server, "network-insights").await.is_empty());
            let saved = server
                .state
                .store
                .stream_state(&server.instance_id, "network")
                .await
                .expect("read")
                .expect("the batch saved the detector state");
            assert!(saved.contains("pns1:"), "{saved:.80}");
            (server.instance_id.clone(), server.admin_key.clone())
            // The process ends here: its in-memory windows are gone.
        };

        let server = reopened(url, &instance_id, &admin_key).await;
        let base = format!("/instances/{instance_id}/v1/network");
        let answer = post_raw(
            &server,
            &format!("{base}/flows?source=second.log&flush=true"),
            &admin_key,
            "text/plain",
            ssh_attempts(window_start + 60, 12),
        )
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        assert_eq!(process_pending(&server.state).await, 1);
        let findings = findings_of(&server, "network-insights").await;
        assert_eq!(findings.len(), 1, "{url}: {findings:#?}");
        let finding = &findings[0];
        assert_eq!(finding["reference_data"]["type"], "brute_force");
        assert_eq!(
            finding["reference_data"]["flow_count"], 24,
            "both batches count"
        );
        assert_eq!(finding["occurrence_count"], 1);
        assert_eq!(
            finding["finding"]["network_connection"]["client"]["address"],
            "203.0.113.77"
        );

        // Once more after another restart: the flushed windows stay closed, nothing repeats.
        let server = reopened(url, &instance_id, &admin_key).await;
        let answer = post_raw(
            &server,
            &format!("{base}/flows?source=late.log&flush=true"),
            &admin_key,
            "text/plain",
            ssh_attempts(window_start + 120, 12),
        )
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
        assert_eq!(process_pending(&server.state).await, 1);
        let findings = findings_of(&server, "network-insights").await;
        assert_eq!(findings.len(), 1, "{url}: {findings:#?}");
        assert_eq!(findings[0]["occurrence_count"], 1);
    }

    // The second batch alone is no brute force: the finding above needed the saved windows.
    let server = TestServer::sqlite().await;
    let answer = post_raw(
        &server,
        &format!(
            "/instances/{}/v1/network/flows?source=second.log&flush=true",
            server.instance_id
        ),
        &server.admin_key,
        "text/plain",
        ssh_attempts(window_start + 60, 12),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert_eq!(process_pending(&server.state).await, 1);
    assert!(findings_of(&server, "network-insights").await.is_empty());
}

/// Issue 8: a flow stream that goes quiet with windows open is flushed by the worker: it queues
/// an empty flushing batch, whose completion records the findings the open windows held.
#[tokio::test]
async fn idle_streams_are_flushed_by_the_worker_issue_8() {
    let server = TestServer::sqlite_with(palisade_server::ServerConfig {
        network_idle_flush: std::time::Duration::ZERO,
        ..crate::common::test_config()
    })
    .await;
    let base = format!("/instances/{}/v1/network", server.instance_id);
    let answer = post_raw(
        &server,
        &format!("{base}/flows?source=quiet.log"),
        &server.admin_key,
        "text/plain",
        ssh_attempts(1_767_225_600, 24),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    assert_eq!(process_pending(&server.state).await, 1);
    assert!(
        findings_of(&server, "network-insights").await.is_empty(),
        "the brute-force window is still open"
    );

    palisade_server::service::insights::network::close_idle_windows(
        &server.state,
        chrono::Utc::now(),
    )
    .await;
    assert_eq!(
        process_pending(&server.state).await,
        1,
        "one flushing batch"
    );
    let findings = findings_of(&server, "network-insights").await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["reference_data"]["type"], "brute_force");
    let batches = server
        .state
        .store
        .list_batches(&server.instance_id, "network", 10)
        .await
        .expect("batches");
    assert!(
        batches.iter().any(|batch| batch.source
            == palisade_server::service::insights::network::IDLE_FLUSH_SOURCE
            && batch.findings == 1),
        "{batches:?}"
    );
    // Nothing open any more: no second flush.
    palisade_server::service::insights::network::close_idle_windows(
        &server.state,
        chrono::Utc::now(),
    )
    .await;
    assert_eq!(process_pending(&server.state).await, 0);
}
