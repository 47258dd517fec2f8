//! Findings v1 (IBM-compatible) and Palisade's finding lifecycle: validation per note kind,
//! Replace-If-Exists and deduplication, pagination, filters, exports, imports, cards, GraphQL,
//! roles, and isolation between instances.

use axum::http::{Method, StatusCode};
use chrono::Utc;
use palisade_server::service::findings::model::{ApiOccurrence, Context, Finding};
use palisade_server::service::findings::{SourceOccurrence, record_occurrences};
use serde_json::{Value, json};

use crate::common::{TestServer, assert_error_shape};

const ACCOUNT: &str = "acct-1";

fn base(server: &TestServer) -> String {
    format!("/instances/{}/findings/v1/{ACCOUNT}", server.instance_id)
}

fn finding_note(id: &str, severity: &str) -> Value {
    json!({
        "kind": "FINDING", "id": id,
        "short_description": format!("{id} short"), "long_description": format!("{id} long"),
        "reported_by": {"id": "scanner", "title": "Scanner"},
        "related_url": [{"label": "docs", "url": "https://example.com/docs"}],
        "finding": {"severity": severity, "next_steps": [{"title": "fix it", "url": "https://example.com/fix"}]}
    })
}

fn occurrence(id: &str, note: &str, resource: &str) -> Value {
    json!({
        "id": id, "kind": "FINDING",
        "note_name": format!("{ACCOUNT}/providers/partner/notes/{note}"),
        "context": {"resource_crn": resource, "region": "us-south"},
        "finding": {"certainty": "HIGH"}
    })
}

async fn post(server: &TestServer, path: &str, body: Value) -> crate::common::Answer {
    server
        .call(Method::POST, path, Some(&server.admin_key), Some(body))
        .await
}

async fn get(server: &TestServer, path: &str) -> crate::common::Answer {
    server
        .call(Method::GET, path, Some(&server.admin_key), None)
        .await
}

#[tokio::test]
async fn notes_are_validated_per_kind() {
    let server = TestServer::sqlite().await;
    let notes = format!("{}/providers/partner/notes", base(&server));
    let reporter = json!({"id": "r", "title": "R"});
    let valid = [
        finding_note("f1", "HIGH"),
        json!({"kind": "KPI", "id": "k1", "short_description": "s", "long_description": "l",
               "reported_by": reporter, "kpi": {"aggregation_type": "SUM"}}),
        json!({"kind": "SECTION", "id": "s1", "short_description": "s", "long_description": "l",
               "reported_by": reporter, "section": {"title": "Network", "image": "net.svg"}}),
        json!({"kind": "CARD", "id": "c1", "short_description": "s", "long_description": "l",
               "reported_by": reporter, "card": {"section": "Network", "title": "T", "subtitle": "S", "order": 1,
               "finding_note_names": [format!("{ACCOUNT}/providers/partner/notes/f1")],
               "elements": [{"kind": "NUMERIC", "text": "findings", "default_time_range": "2d",
                             "value_type": {"kind": "FINDING_COUNT", "text": "n",
                                            "finding_note_names": [format!("{ACCOUNT}/providers/partner/notes/f1")]}}]}}),
        json!({"kind": "CARD_CONFIGURED", "id": "c2", "short_description": "s", "long_description": "l",
               "reported_by": reporter, "card": {"section": "Network", "title": "T", "subtitle": "S",
               "finding_note_names": [],
               "elements": [{"kind": "TIME_SERIES", "text": "kpi", "value_types": [
                   {"kind": "KPI", "text": "k", "kpi_note_name": format!("{ACCOUNT}/providers/partner/notes/k1")}]}]}}),
    ];
    for note in valid {
        let answer = post(&server, &notes, note.clone()).await;
        assert_eq!(answer.status, StatusCode::OK, "{note}: {}", answer.text);
        assert_eq!(answer.body["id"], note["id"]);
        assert!(answer.body["create_time"].as_str().is_some());
    }
    let duplicate = post(&server, &notes, finding_note("f1", "LOW")).await;
    assert_eq!(
        assert_error_shape(&duplicate, StatusCode::CONFLICT),
        "conflict"
    );

    // Each bad body answers 400 naming the field.
    let cases = [
        (
            json!({"kind": "FINDING", "id": "x", "short_description": "s", "long_description": "l",
                "reported_by": reporter, "finding": {"severity": "HIGH"},
                "card": {"section": "a", "title": "b", "subtitle": "c", "finding_note_names": [], "elements": []}}),
            "invalid_field",
            "/card",
        ),
        (
            json!({"kind": "FINDING", "id": "x", "short_description": "s", "long_description": "l", "reported_by": reporter}),
            "missing_field",
            "/finding",
        ),
        (
            json!({"kind": "FINDING", "id": "x", "short_description": "s", "long_description": "l",
                "reported_by": reporter, "finding": {"severity": "SEVERE"}}),
            "invalid_field",
            "/finding/severity",
        ),
        (
            json!({"kind": "KPI", "id": "x", "short_description": "s", "long_description": "l",
                "reported_by": reporter, "kpi": {"aggregation_type": "MAX"}}),
            "invalid_field",
            "/kpi/aggregation_type",
        ),
        (
            json!({"kind": "SECTION", "id": "x", "short_description": "s", "long_description": "l",
                "reported_by": reporter, "section": {"title": "t"}}),
            "missing_field",
            "/section/image",
        ),
        (
            json!({"kind": "CARD", "id": "x", "short_description": "s", "long_description": "l",
                "reported_by": reporter, "card": {"section": "a", "title": "b", "subtitle": "c",
                "finding_note_names": [], "elements": [{"kind": "BREAKDOWN", "text": "t"}]}}),
            "missing_field",
            "/card/elements/0/value_types",
        ),
        (
            json!({"kind": "NOTE", "id": "x", "short_description": "s", "long_description": "l", "reported_by": reporter}),
            "invalid_field",
            "/kind",
        ),
        (
            json!({"kind": "FINDING", "id": "a/b", "short_description": "s", "long_description": "l",
                "reported_by": reporter, "finding": {"severity": "LOW"}}),
            "invalid_field",
            "/id",
        ),
        (
            json!({"kind": "FINDING", "id": "x", "short_description": "s", "long_description": "l",
                "reported_by": reporter, "finding": {"severity": "LOW"}, "colour": "red"}),
            "unknown_field",
            "/colour",
        ),
    ];
    for (body, code, pointer) in cases {
        let answer = post(&server, &notes, body.clone()).await;
        assert_eq!(
            assert_error_shape(&answer, StatusCode::BAD_REQUEST),
            code,
            "{body}: {}",
            answer.text
        );
        let targets: Vec<&str> = answer.body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|error| error["target"]["name"].as_str())
            .collect();
        assert!(targets.contains(&pointer), "{pointer} in {targets:?}");
    }

    // Read, page, replace, delete.
    let page = get(&server, &format!("{notes}?page_size=2")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let ids: Vec<&str> = page.body["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|note| note["id"].as_str())
        .collect();
    assert_eq!(ids, ["c1", "c2"]);
    let token = page.body["next_page_token"].as_str().expect("token");
    let rest = get(&server, &format!("{notes}?page_size=10&page_token={token}")).await;
    let rest_ids: Vec<&str> = rest.body["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|note| note["id"].as_str())
        .collect();
    assert_eq!(rest_ids, ["f1", "k1", "s1"]);
    assert_eq!(rest.body["next_page_token"], "");
    let bad_token = get(&server, &format!("{notes}?page_token=%25%25")).await;
    assert_eq!(
        assert_error_shape(&bad_token, StatusCode::BAD_REQUEST),
        "invalid_parameter"
    );

    let mut changed = finding_note("f1", "CRITICAL");
    let replaced = server
        .call(
            Method::PUT,
            &format!("{notes}/f1"),
            Some(&server.admin_key),
            Some(changed.clone()),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(replaced.body["finding"]["severity"], "CRITICAL");
    changed["id"] = json!("other");
    let mismatch = server
        .call(
            Method::PUT,
            &format!("{notes}/f1"),
            Some(&server.admin_key),
            Some(changed),
        )
        .await;
    assert_eq!(
        assert_error_shape(&mismatch, StatusCode::BAD_REQUEST),
        "invalid_field"
    );
    let missing = server
        .call(
            Method::PUT,
            &format!("{notes}/nope"),
            Some(&server.admin_key),
            Some(finding_note("nope", "LOW")),
        )
        .await;
    assert_eq!(
        assert_error_shape(&missing, StatusCode::NOT_FOUND),
        "not_found"
    );
    let deleted = server
        .call(
            Method::DELETE,
            &format!("{notes}/s1"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = get(&server, &format!("{notes}/s1")).await;
    assert_eq!(
        assert_error_shape(&gone, StatusCode::NOT_FOUND),
        "not_found"
    );

    let providers = get(&server, &format!("{}/providers", base(&server))).await;
    assert_eq!(providers.body["total_count"], 1);
    assert_eq!(
        providers.body["providers"][0]["name"],
        format!("{ACCOUNT}/providers/partner")
    );
}

#[tokio::test]
async fn occurrences_replace_if_exists_and_link_to_notes() {
    let server = TestServer::sqlite().await;
    let provider = format!("{}/providers/partner", base(&server));
    assert_eq!(
        post(
            &server,
            &format!("{provider}/notes"),
            finding_note("n1", "HIGH")
        )
        .await
        .status,
        StatusCode::OK
    );
    let occurrences = format!("{provider}/occurrences");
    let created = post(&server, &occurrences, occurrence("o1", "n1", "crn:vm-1")).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(
        (
            created.body["occurrence_count"].as_i64(),
            created.body["status"].as_str()
        ),
        (Some(1), Some("open"))
    );
    assert_eq!(created.body["provider_id"], "partner");
    let first_seen = created.body["first_seen"].clone();

    let again = post(&server, &occurrences, occurrence("o1", "n1", "crn:vm-1")).await;
    assert_eq!(assert_error_shape(&again, StatusCode::CONFLICT), "conflict");

    let mut request = axum::http::Request::builder()
        .method(Method::POST)
        .uri(&occurrences)
        .header("authorization", format!("Bearer {}", server.admin_key))
        .header("content-type", "application/json")
        .header("Replace-If-Exists", "true");
    let replaced = server
        .send(
            request
                .body(axum::body::Body::from(
                    occurrence("o1", "n1", "crn:vm-2").to_string(),
                ))
                .expect("request"),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(
        replaced.body["occurrence_count"], 2,
        "counted, not duplicated"
    );
    assert_eq!(replaced.body["first_seen"], first_seen);
    assert_eq!(replaced.body["context"]["resource_crn"], "crn:vm-2");
    request = axum::http::Request::builder()
        .method(Method::POST)
        .uri(&occurrences)
        .header("authorization", format!("Bearer {}", server.admin_key))
        .header("content-type", "application/json")
        .header("Replace-If-Exists", "maybe");
    let bad_header = server
        .send(
            request
                .body(axum::body::Body::from(
                    occurrence("o1", "n1", "x").to_string(),
                ))
                .expect("request"),
        )
        .await;
    assert_eq!(
        assert_error_shape(&bad_header, StatusCode::BAD_REQUEST),
        "bad_request"
    );

    // The note decides: it must exist, in this account, with the same kind.
    let mut unknown_note = occurrence("o2", "missing", "r");
    let answer = post(&server, &occurrences, unknown_note.clone()).await;
    assert_eq!(
        assert_error_shape(&answer, StatusCode::BAD_REQUEST),
        "invalid_field"
    );
    assert_eq!(answer.body["errors"][0]["target"]["name"], "/note_name");
    unknown_note["note_name"] = json!("other-account/providers/partner/notes/n1");
    let answer = post(&server, &occurrences, unknown_note).await;
    assert_eq!(answer.body["errors"][0]["target"]["name"], "/note_name");
    let mut kpi = occurrence("o3", "n1", "r");
    kpi["kind"] = json!("KPI");
    kpi["kpi"] = json!({"value": 3});
    kpi.as_object_mut().expect("object").remove("finding");
    let answer = post(&server, &occurrences, kpi).await;
    assert_eq!(answer.body["errors"][0]["target"]["name"], "/kind");

    // Severity comes from the note unless the occurrence says otherwise.
    for n in 2..=5 {
        let answer = post(
            &server,
            &occurrences,
            occurrence(&format!("o{n}"), "n1", "crn:vm-1"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    let listed = get(
        &server,
        &format!(
            "/instances/{}/v1/findings?severity=HIGH&provider_id=partner",
            server.instance_id
        ),
    )
    .await;
    assert_eq!(listed.body["findings"].as_array().map(Vec::len), Some(5));

    // Pages of occurrences by provider and by note.
    let page = get(&server, &format!("{occurrences}?page_size=3")).await;
    let ids: Vec<&str> = page.body["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(ids, ["o1", "o2", "o3"]);
    let token = page.body["next_page_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let page = get(
        &server,
        &format!("{occurrences}?page_size=3&page_token={token}"),
    )
    .await;
    assert_eq!(page.body["occurrences"].as_array().map(Vec::len), Some(2));
    assert_eq!(page.body["next_page_token"], "");
    let by_note = get(
        &server,
        &format!("{provider}/notes/n1/occurrences?page_size=4"),
    )
    .await;
    assert_eq!(
        by_note.body["occurrences"].as_array().map(Vec::len),
        Some(4)
    );
    let token = by_note.body["next_page_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let by_note = get(
        &server,
        &format!("{provider}/notes/n1/occurrences?page_token={token}"),
    )
    .await;
    assert_eq!(by_note.body["occurrences"][0]["id"], "o5");
    let no_note = get(&server, &format!("{provider}/notes/zz/occurrences")).await;
    assert_eq!(
        assert_error_shape(&no_note, StatusCode::NOT_FOUND),
        "not_found"
    );

    let note = get(&server, &format!("{occurrences}/o1/note")).await;
    assert_eq!(
        (note.status, note.body["id"].as_str()),
        (StatusCode::OK, Some("n1"))
    );

    // PUT replaces without counting; the body must name the path's occurrence.
    let mut edited = occurrence("o1", "n1", "crn:vm-9");
    edited["remediation"] = json!("patch");
    let updated = server
        .call(
            Method::PUT,
            &format!("{occurrences}/o1"),
            Some(&server.admin_key),
            Some(edited.clone()),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(
        (
            updated.body["occurrence_count"].as_i64(),
            updated.body["remediation"].as_str()
        ),
        (Some(2), Some("patch"))
    );
    let wrong = server
        .call(
            Method::PUT,
            &format!("{occurrences}/o2"),
            Some(&server.admin_key),
            Some(edited),
        )
        .await;
    assert_eq!(
        assert_error_shape(&wrong, StatusCode::BAD_REQUEST),
        "invalid_field"
    );
    let deleted = server
        .call(
            Method::DELETE,
            &format!("{occurrences}/o1"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = get(&server, &format!("{occurrences}/o1")).await;
    assert_eq!(
        assert_error_shape(&gone, StatusCode::NOT_FOUND),
        "not_found"
    );
}

fn source(note: &str, resource: &str, severity: &str) -> SourceOccurrence {
    SourceOccurrence {
        account_id: ACCOUNT.to_owned(),
        note_id: note.to_owned(),
        fingerprint: String::new(),
        body: ApiOccurrence {
            resource_url: None,
            note_name: String::new(),
            kind: "FINDING".into(),
            short_description: Some(format!("{note} on {resource}")),
            long_description: None,
            remediation: None,
            create_time: None,
            update_time: None,
            id: String::new(),
            context: Some(Context {
                resource_crn: Some(resource.to_owned()),
                ..Context::default()
            }),
            finding: Some(Finding {
                severity: Some(severity.to_owned()),
                ..Finding::default()
            }),
            kpi: None,
            reference_data: None,
        },
    }
}

#[tokio::test]
async fn palisade_sources_deduplicate_and_the_lifecycle_filters() {
    let server = TestServer::sqlite().await;
    let store = &server.state.store;
    let now = Utc::now();
    let mut bad = source("n", "r", "HIGH");
    bad.body.finding = Some(Finding {
        severity: Some("SEVERE".into()),
        ..Finding::default()
    });
    let report = record_occurrences(
        store,
        &server.instance_id,
        "posture",
        vec![
            source("mfa-off", "crn:account", "CRITICAL"),
            bad,
            source("open-port", "crn:vm-1", "LOW"),
        ],
        now,
    )
    .await
    .expect("record");
    assert_eq!(report.outcomes.len(), 2, "good records go through");
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].0, 1);
    record_occurrences(
        store,
        &server.instance_id,
        "network-insights",
        vec![
            source("xforce-bot_server", "crn:vm-1", "HIGH"),
            source("xforce-bot_server", "crn:vm-2", "HIGH"),
        ],
        now,
    )
    .await
    .expect("record");
    // The same detection again is counted into the same finding.
    let again = record_occurrences(
        store,
        &server.instance_id,
        "network-insights",
        vec![source("xforce-bot_server", "crn:vm-1", "HIGH")],
        now + chrono::Duration::seconds(5),
    )
    .await
    .expect("record again");
    assert_eq!(
        (
            again.outcomes[0].created,
            again.outcomes[0].occurrence_count
        ),
        (false, 2)
    );

    let findings = format!("/instances/{}/v1/findings", server.instance_id);
    let all = get(&server, &findings).await;
    assert_eq!(
        all.body["findings"].as_array().map(Vec::len),
        Some(4),
        "{}",
        all.text
    );
    assert_eq!(
        all.body["findings"][0]["occurrence_count"], 2,
        "newest first"
    );
    let count =
        |answer: &crate::common::Answer| answer.body["findings"].as_array().map_or(0, Vec::len);
    assert_eq!(
        count(&get(&server, &format!("{findings}?resource=crn:vm-1")).await),
        2
    );
    assert_eq!(
        count(&get(&server, &format!("{findings}?severity=high,critical")).await),
        3
    );
    assert_eq!(
        count(&get(&server, &format!("{findings}?provider_id=posture")).await),
        2
    );
    let future =
        (now + chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert_eq!(
        count(
            &get(
                &server,
                &format!("{findings}?since={}", future.replace('+', "%2B"))
            )
            .await
        ),
        1
    );
    let bad_severity = get(&server, &format!("{findings}?severity=SEVERE")).await;
    assert_eq!(
        assert_error_shape(&bad_severity, StatusCode::BAD_REQUEST),
        "invalid_parameter"
    );
    let page = get(&server, &format!("{findings}?page_size=3")).await;
    let token = page.body["next_page_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let next = get(
        &server,
        &format!("{findings}?page_size=3&page_token={token}"),
    )
    .await;
    assert_eq!(count(&next), 1);

    // Lifecycle: suppress needs a reason; status filters follow.
    let target = all.body["findings"][3].clone();
    let reference = json!({"account_id": target["account_id"], "provider_id": target["provider_id"], "id": target["id"]});
    let status = format!("{findings}/status");
    let no_reason = post(
        &server,
        &status,
        json!({"findings": [reference], "status": "suppressed"}),
    )
    .await;
    assert_eq!(
        assert_error_shape(&no_reason, StatusCode::BAD_REQUEST),
        "missing_field"
    );
    let until = (now + chrono::Duration::days(7)).to_rfc3339();
    let suppressed = post(
        &server,
        &status,
        json!({"findings": [reference, {"account_id": ACCOUNT, "provider_id": "x", "id": "missing"}],
               "status": "suppressed", "reason": "accepted risk", "suppressed_until": until}),
    )
    .await;
    assert_eq!(suppressed.status, StatusCode::OK, "{}", suppressed.text);
    assert_eq!(suppressed.body["updated"].as_array().map(Vec::len), Some(1));
    assert_eq!(suppressed.body["not_found"][0]["id"], "missing");
    let listed = get(&server, &format!("{findings}?status=suppressed")).await;
    assert_eq!(count(&listed), 1);
    assert_eq!(listed.body["findings"][0]["status_reason"], "accepted risk");
    assert_eq!(
        count(&get(&server, &format!("{findings}?status=open")).await),
        3
    );

    // Resolved, then detected again: reopened.
    let vm1 = all.body["findings"][0].clone();
    let resolved = post(
        &server,
        &status,
        json!({"findings": [{"account_id": vm1["account_id"], "provider_id": vm1["provider_id"], "id": vm1["id"]}],
               "status": "resolved"}),
    )
    .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.text);
    assert_eq!(
        count(&get(&server, &format!("{findings}?status=resolved")).await),
        1
    );
    record_occurrences(
        store,
        &server.instance_id,
        "network-insights",
        vec![source("xforce-bot_server", "crn:vm-1", "HIGH")],
        now + chrono::Duration::seconds(10),
    )
    .await
    .expect("record once more");
    assert_eq!(
        count(&get(&server, &format!("{findings}?status=resolved")).await),
        0
    );
    let reopened = get(
        &server,
        &format!("{findings}?status=open&resource=crn:vm-1&provider_id=network-insights"),
    )
    .await;
    assert_eq!(reopened.body["findings"][0]["occurrence_count"], 3);

    // A viewer may read but not change the status; an editor may.
    let (_, viewer) = server.key_with_role("viewer").await;
    let (_, editor) = server.key_with_role("editor").await;
    let body = json!({"findings": [reference], "status": "acknowledged"});
    let as_viewer = server
        .call(Method::POST, &status, Some(&viewer), Some(body.clone()))
        .await;
    assert_eq!(
        assert_error_shape(&as_viewer, StatusCode::FORBIDDEN),
        "forbidden"
    );
    let as_editor = server
        .call(Method::POST, &status, Some(&editor), Some(body))
        .await;
    assert_eq!(as_editor.status, StatusCode::OK, "{}", as_editor.text);
}

#[tokio::test]
async fn exports_are_ocsf_json_lines() {
    let server = TestServer::sqlite().await;
    let now = Utc::now();
    for (provider, note) in [
        ("posture", "mfa-off"),
        ("activity-insights", "ata-iam-sec-conf"),
    ] {
        record_occurrences(
            &server.state.store,
            &server.instance_id,
            provider,
            vec![
                source(note, "crn:a", "HIGH"),
                source(note, "crn:b", "MEDIUM"),
            ],
            now,
        )
        .await
        .expect("record");
    }
    let export = get(
        &server,
        &format!("/instances/{}/v1/findings/export", server.instance_id),
    )
    .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert_eq!(
        export
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    let events: Vec<Value> = export
        .text
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect();
    assert_eq!(events.len(), 4);
    for event in &events {
        let provider = event["unmapped"]["palisade"]["provider_id"]
            .as_str()
            .expect("provider");
        let class = if provider == "posture" { 2003 } else { 2004 };
        assert_eq!(event["class_uid"], class, "{event}");
        assert_eq!(event["type_uid"], class * 100 + 1);
        assert_eq!(event["metadata"]["version"], "1.1.0");
        assert!(event["finding_info"]["uid"].as_str().is_some());
    }
    let filtered = get(
        &server,
        &format!(
            "/instances/{}/v1/findings/export?severity=MEDIUM&provider_id=posture",
            server.instance_id
        ),
    )
    .await;
    assert_eq!(filtered.text.lines().count(), 1);
    let bad = get(
        &server,
        &format!(
            "/instances/{}/v1/findings/export?format=csv",
            server.instance_id
        ),
    )
    .await;
    assert_eq!(
        assert_error_shape(&bad, StatusCode::BAD_REQUEST),
        "invalid_parameter"
    );
}

#[tokio::test]
async fn security_hub_findings_import_as_occurrences() {
    let server = TestServer::sqlite().await;
    let finding = |id: &str, label: &str| {
        json!({
            "SchemaVersion": "2018-10-08", "Id": id,
            "GeneratorId": "aws-foundational-security-best-practices/v/1.0.0/S3.8",
            "AwsAccountId": "123456789012", "Title": "S3 public access", "Description": "Block it.",
            "Severity": {"Label": label},
            "Resources": [{"Type": "AwsS3Bucket", "Id": format!("arn:aws:s3:::{id}"), "Region": "eu-west-1"}],
            "Workflow": {"Status": "NEW"}
        })
    };
    let mut resolved = finding("bucket-c", "LOW");
    resolved["Workflow"]["Status"] = json!("RESOLVED");
    let body = json!({"Findings": [finding("bucket-a", "HIGH"), {"Id": "broken"}, finding("bucket-b", "CRITICAL"), resolved]});
    let path = format!("/instances/{}/v1/findings/import/asff", server.instance_id);
    let answer = post(&server, &path, body.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        (
            answer.body["imported"].as_i64(),
            answer.body["created"].as_i64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(answer.body["rejected"][0]["index"], 1);
    assert!(
        answer.body["rejected"][0]["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|error| error["target"]["name"] == "/Findings/1/Severity")
    );
    let again = post(&server, &path, body).await;
    assert_eq!(
        again.body["created"], 0,
        "re-importing counts instead of duplicating"
    );
    let listed = get(
        &server,
        &format!(
            "/instances/{}/v1/findings?provider_id=aws-security-hub&account_id=123456789012",
            server.instance_id
        ),
    )
    .await;
    let findings = listed.body["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 3);
    assert!(
        findings
            .iter()
            .all(|finding| finding["occurrence_count"] == 2)
    );
    assert!(
        findings
            .iter()
            .any(|finding| finding["status"] == "resolved")
    );
    let note = get(
        &server,
        &format!(
            "/instances/{}/findings/v1/123456789012/providers/aws-security-hub/occurrences/{}/note",
            server.instance_id,
            findings[0]["id"].as_str().expect("id")
        ),
    )
    .await;
    assert_eq!(note.body["kind"], "FINDING", "{}", note.text);
    let not_asff = post(&server, &path, json!({"findings": []})).await;
    assert_eq!(
        assert_error_shape(&not_asff, StatusCode::BAD_REQUEST),
        "missing_field"
    );
}

#[tokio::test]
async fn cards_count_findings_and_sum_kpis() {
    let server = TestServer::sqlite().await;
    let provider = format!("{}/providers/partner", base(&server));
    let note_name = |id: &str| format!("{ACCOUNT}/providers/partner/notes/{id}");
    post(
        &server,
        &format!("{provider}/notes"),
        finding_note("n1", "HIGH"),
    )
    .await;
    let kpi_note = json!({"kind": "KPI", "id": "k1", "short_description": "s", "long_description": "l",
        "reported_by": {"id": "r", "title": "R"}, "kpi": {"aggregation_type": "SUM"}});
    post(&server, &format!("{provider}/notes"), kpi_note).await;
    let card = json!({"kind": "CARD", "id": "card", "short_description": "s", "long_description": "l",
    "reported_by": {"id": "r", "title": "R"}, "card": {"section": "S", "title": "Open findings", "subtitle": "u",
    "finding_note_names": [note_name("n1")],
    "elements": [
        {"kind": "NUMERIC", "text": "open", "value_type": {"kind": "FINDING_COUNT", "text": "n", "finding_note_names": [note_name("n1")]}},
        {"kind": "TIME_SERIES", "text": "kpi", "default_time_range": "3d", "value_types": [{"kind": "KPI", "text": "k", "kpi_note_name": note_name("k1")}]}
    ]}});
    let created = post(&server, &format!("{provider}/notes"), card).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    for n in 0..3 {
        post(
            &server,
            &format!("{provider}/occurrences"),
            occurrence(&format!("o{n}"), "n1", "r"),
        )
        .await;
    }
    for (n, value) in [(0, 2.5), (1, 4.0)] {
        let kpi = json!({"id": format!("k{n}"), "kind": "KPI", "note_name": note_name("k1"), "kpi": {"value": value}});
        let answer = post(&server, &format!("{provider}/occurrences"), kpi).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    let cards = get(
        &server,
        &format!(
            "/instances/{}/v1/findings/cards?account_id={ACCOUNT}",
            server.instance_id
        ),
    )
    .await;
    assert_eq!(cards.status, StatusCode::OK, "{}", cards.text);
    let card = &cards.body["cards"][0];
    assert_eq!(card["title"], "Open findings");
    assert_eq!(card["elements"][0]["values"][0]["value"], 3.0);
    let series = &card["elements"][1]["values"][0];
    assert_eq!(series["value"], 6.5);
    let points = series["series"].as_array().expect("series");
    assert_eq!(points.len(), 3);
    assert_eq!(points[2]["value"], 6.5, "today's point holds today's KPIs");
}

#[tokio::test]
async fn graph_queries_read_notes_and_occurrences() {
    let server = TestServer::sqlite().await;
    let provider = format!("{}/providers/partner", base(&server));
    post(
        &server,
        &format!("{provider}/notes"),
        finding_note("n1", "HIGH"),
    )
    .await;
    post(
        &server,
        &format!("{provider}/occurrences"),
        occurrence("o1", "n1", "crn:1"),
    )
    .await;
    let graph = format!("{}/graph", base(&server));
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri(&graph)
        .header("authorization", format!("Bearer {}", server.admin_key))
        .header("content-type", "application/graphql")
        .body(axum::body::Body::from("{notes{id kind}}"))
        .expect("request");
    let answer = server.send(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        answer.body,
        json!({"data": {"notes": [{"id": "n1", "kind": "FINDING"}]}})
    );
    let json_query = post(
        &server,
        &graph,
        json!({"query": "{ high: occurrences(severity: HIGH) { id noteName finding { certainty } } }"}),
    )
    .await;
    assert_eq!(
        json_query.body["data"]["high"],
        json!([{"id": "o1", "noteName": format!("{ACCOUNT}/providers/partner/notes/n1"), "finding": {"certainty": "HIGH"}}])
    );
    let bad = post(&server, &graph, json!({"query": "mutation { x }"})).await;
    assert_eq!(
        assert_error_shape(&bad, StatusCode::BAD_REQUEST),
        "bad_request"
    );
}

/// Every route family of this module, as (method, path with `{i}` for the instance, body).
fn finding_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let note = finding_note("n9", "LOW");
    let occurrence_body =
        json!({"id": "o9", "kind": "FINDING", "note_name": "acct-1/providers/partner/notes/n1"});
    vec![
        (
            Method::POST,
            "/instances/{i}/findings/v1/acct-1/graph",
            Some(json!({"query": "{notes{id}}"})),
        ),
        (
            Method::GET,
            "/instances/{i}/findings/v1/acct-1/providers",
            None,
        ),
        (
            Method::GET,
            "/instances/{i}/findings/v1/acct-1/providers/partner/notes",
            None,
        ),
        (
            Method::POST,
            "/instances/{i}/findings/v1/acct-1/providers/partner/notes",
            Some(note.clone()),
        ),
        (
            Method::GET,
            "/instances/{i}/findings/v1/acct-1/providers/partner/notes/n1",
            None,
        ),
        (
            Method::PUT,
            "/instances/{i}/findings/v1/acct-1/providers/partner/notes/n1",
            Some(finding_note("n1", "LOW")),
        ),
        (
            Method::GET,
            "/instances/{i}/findings/v1/acct-1/providers/partner/notes/n1/occurrences",
            None,
        ),
        (
            Method::GET,
            "/instances/{i}/findings/v1/acct-1/providers/partner/occurrences",
            None,
        ),
        (
            Method::POST,
            "/instances/{i}/findings/v1/acct-1/providers/partner/occurrences",
            Some(occurrence_body.clone()),
        ),
        (
            Method::GET,
            "/instances/{i}/findings/v1/acct-1/providers/partner/occurrences/o1",
            None,
        ),
        (
            Method::PUT,
            "/instances/{i}/findings/v1/acct-1/providers/partner/occurrences/o1",
            Some(
                json!({"id": "o1", "kind": "FINDING", "note_name": "acct-1/providers/partner/notes/n1"}),
            ),
        ),
        (
            Method::GET,
            "/instances/{i}/findings/v1/acct-1/providers/partner/occurrences/o1/note",
            None,
        ),
        (
            Method::DELETE,
            "/instances/{i}/findings/v1/acct-1/providers/partner/occurrences/o1",
            None,
        ),
        (
            Method::DELETE,
            "/instances/{i}/findings/v1/acct-1/providers/partner/notes/n1",
            None,
        ),
        (Method::GET, "/instances/{i}/v1/findings", None),
        (
            Method::POST,
            "/instances/{i}/v1/findings/status",
            Some(
                json!({"findings": [{"account_id": "acct-1", "provider_id": "partner", "id": "o1"}], "status": "acknowledged"}),
            ),
        ),
        (Method::GET, "/instances/{i}/v1/findings/export", None),
        (
            Method::POST,
            "/instances/{i}/v1/findings/import/asff",
            Some(json!({"Findings": []})),
        ),
        (
            Method::GET,
            "/instances/{i}/v1/findings/cards?account_id=acct-1",
            None,
        ),
    ]
}

async fn seed(server: &TestServer) {
    let provider = format!(
        "/instances/{}/findings/v1/acct-1/providers/partner",
        server.instance_id
    );
    assert_eq!(
        post(
            server,
            &format!("{provider}/notes"),
            finding_note("n1", "HIGH")
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        post(
            server,
            &format!("{provider}/occurrences"),
            occurrence("o1", "n1", "crn:1")
        )
        .await
        .status,
        StatusCode::OK
    );
}

async fn findings_never_reach_another_instance(server: TestServer) {
    seed(&server).await;
    let (other_instance, other_admin) = server.second_instance().await;
    for (method, template, body) in finding_routes() {
        let path = template.replace("{i}", &server.instance_id);
        let answer = server
            .call(method.clone(), &path, Some(&other_admin), body.clone())
            .await;
        assert_eq!(
            assert_error_shape(&answer, StatusCode::NOT_FOUND),
            "not_found",
            "{method} {template}"
        );
        let path = template.replace("{i}", &other_instance);
        let answer = server
            .call(method.clone(), &path, Some(&server.admin_key), body)
            .await;
        assert_eq!(
            assert_error_shape(&answer, StatusCode::NOT_FOUND),
            "not_found",
            "{method} {template}"
        );
    }
    // Through its own instance the other admin sees none of our findings.
    let listed = server
        .call(
            Method::GET,
            &format!("/instances/{other_instance}/v1/findings"),
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(listed.body["findings"], json!([]));
    let note = server
        .call(
            Method::GET,
            &format!("/instances/{other_instance}/findings/v1/acct-1/providers/partner/notes/n1"),
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(
        assert_error_shape(&note, StatusCode::NOT_FOUND),
        "not_found"
    );
}

#[tokio::test]
async fn findings_never_reach_another_instance_on_sqlite() {
    findings_never_reach_another_instance(TestServer::sqlite().await).await;
}

#[tokio::test]
async fn findings_never_reach_another_instance_on_postgres() {
    let Some(server) =
        TestServer::postgres("findings_never_reach_another_instance_on_postgres").await
    else {
        return;
    };
    findings_never_reach_another_instance(server).await;
}

#[tokio::test]
async fn roles_decide_who_reads_and_who_pushes() {
    let server = TestServer::sqlite().await;
    seed(&server).await;
    for role in ["admin", "editor", "viewer", "collector", "ingest"] {
        let (_, key) = server.key_with_role(role).await;
        let reads = matches!(role, "admin" | "editor" | "viewer");
        let pushes = matches!(role, "admin" | "editor" | "collector" | "ingest");
        let listed = server
            .call(
                Method::GET,
                &format!("{}/providers/partner/occurrences", base(&server)),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(
            listed.status.is_success(),
            reads,
            "{role} reads: {}",
            listed.text
        );
        let pushed = server
            .call(
                Method::POST,
                &format!("{}/providers/partner/occurrences", base(&server)),
                Some(&key),
                Some(occurrence(&format!("by-{role}"), "n1", "crn:1")),
            )
            .await;
        assert_eq!(
            pushed.status.is_success(),
            pushes,
            "{role} pushes: {}",
            pushed.text
        );
        if !pushes {
            assert_eq!(
                assert_error_shape(&pushed, StatusCode::FORBIDDEN),
                "forbidden"
            );
        }
    }
}

#[tokio::test]
async fn the_openapi_document_covers_the_findings_routes() {
    let server = TestServer::sqlite().await;
    let answer = server.call(Method::GET, "/openapi.json", None, None).await;
    let paths = answer.body["paths"].as_object().expect("paths");
    for (method, template, _) in finding_routes() {
        let path = template
            .split('?')
            .next()
            .unwrap_or_default()
            .replace("{i}", "{instance_id}")
            .replace("acct-1", "{account_id}")
            .replace("/partner", "/{provider_id}")
            .replace("notes/n1", "notes/{note_id}")
            .replace("occurrences/o1", "occurrences/{occurrence_id}");
        let method = method.as_str().to_ascii_lowercase();
        assert!(
            paths
                .get(&path)
                .and_then(|item| item.get(&method))
                .is_some(),
            "{method} {path} is not in the OpenAPI document"
        );
    }
}
