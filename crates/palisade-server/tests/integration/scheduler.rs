//! Scheduled scans: an attachment whose time has come is scanned once, and its next time moves.

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::common::TestServer;

async fn create(server: &TestServer, path: &str, body: Value) -> Value {
    let answer = server
        .call(
            Method::POST,
            &format!("/instances/{}/v3/{path}", server.instance_id),
            Some(&server.admin_key),
            Some(body),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{path}: {}",
        answer.text
    );
    answer.body
}

#[tokio::test]
async fn due_attachments_are_scanned_once_and_rescheduled() {
    let server = TestServer::sqlite().await;
    let rule = create(&server, "rules", json!({
        "description": "versioned", "target": {"service_name": "s3", "resource_kind": "bucket"},
        "required_config": {"property": "versioning.status", "operator": "string_equals", "value": "Enabled"},
    }))
    .await;
    let library = create(&server, "control_libraries", json!({
        "control_library_name": "l", "control_library_description": "", "control_library_type": "custom", "control_library_version": "1",
        "controls": [{"control_name": "CP-9", "control_description": "", "control_category": "", "control_requirement": true,
            "control_specifications": [{"component_id": "s3", "assessments": [{"assessment_id": rule["id"]}]}]}],
    }))
    .await;
    let profile = create(&server, "profiles", json!({
        "profile_name": "p", "profile_version": "1", "default_parameters": [],
        "controls": [{"control_library_id": library["id"], "control_id": library["controls"][0]["control_id"]}],
    }))
    .await;
    let scope = create(
        &server,
        "scopes",
        json!({"name": "all aws", "environment": "aws", "properties": []}),
    )
    .await;
    let attachments = create(&server, &format!("profiles/{}/attachments", profile["id"].as_str().unwrap_or_default()), json!({"attachments": [{
        "name": "daily", "description": "", "scope": [{"id": scope["id"]}], "schedule": "daily", "status": "enabled",
        "notifications": {"enabled": false}, "attachment_parameters": [],
    }]}))
    .await;
    let attachment_id = attachments["attachments"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pushed = server
        .call(Method::POST, &format!("/instances/{}/v1/inventory", server.instance_id), Some(&server.admin_key), Some(json!({"resources": [
            {"id": "b1", "environment": "aws", "service_name": "s3", "resource_kind": "bucket", "config": {"versioning": {"status": "Enabled"}}},
        ]})))
        .await;
    assert_eq!(pushed.body["stored"], 1);

    // Not due yet: the first scan is a day after creation.
    assert_eq!(
        palisade_server::service::scheduler::run_due(&server.state, Utc::now()).await,
        0
    );
    // A day and a minute later it is due, once.
    let later = Utc::now() + Duration::days(1) + Duration::minutes(1);
    assert_eq!(
        palisade_server::service::scheduler::run_due(&server.state, later).await,
        1
    );
    assert_eq!(
        palisade_server::service::scheduler::run_due(&server.state, later).await,
        0,
        "rescheduled after the scan"
    );

    let reports = server
        .call(
            Method::GET,
            &format!(
                "/instances/{}/v3/reports?report_attachment_id={attachment_id}",
                server.instance_id
            ),
            Some(&server.admin_key),
            None,
        )
        .await;
    let listed = reports.body["reports"].as_array().expect("reports");
    assert_eq!(listed.len(), 1, "{}", reports.text);
    assert_eq!(listed[0]["type"], "scheduled");
    let attachment = server
        .call(
            Method::GET,
            &format!(
                "/instances/{}/v3/profiles/{}/attachments/{attachment_id}",
                server.instance_id,
                profile["id"].as_str().unwrap_or_default()
            ),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(attachment.body["last_scan"]["status"], "completed");
}

/// Issue 4: a scan that breaches the attachment's notification threshold raises one `posture`
/// finding per attachment, counted again at the next breach; a scan within it raises none.
#[tokio::test]
async fn threshold_breaches_raise_a_posture_finding_issue_4() {
    let server = TestServer::sqlite().await;
    let rule = create(&server, "rules", json!({
        "description": "versioned", "target": {"service_name": "s3", "resource_kind": "bucket"},
        "required_config": {"property": "versioning.status", "operator": "string_equals", "value": "Enabled"},
    }))
    .await;
    let library = create(&server, "control_libraries", json!({
        "control_library_name": "l", "control_library_description": "", "control_library_type": "custom", "control_library_version": "1",
        "controls": [{"control_name": "CP-9", "control_description": "", "control_category": "", "control_requirement": true,
            "control_specifications": [{"component_id": "s3", "assessments": [{"assessment_id": rule["id"]}]}]}],
    }))
    .await;
    let profile = create(&server, "profiles", json!({
        "profile_name": "p", "profile_version": "1", "default_parameters": [],
        "controls": [{"control_library_id": library["id"], "control_id": library["controls"][0]["control_id"]}],
    }))
    .await;
    let scope = create(
        &server,
        "scopes",
        json!({"name": "all aws", "environment": "aws", "properties": []}),
    )
    .await;
    let attachments = create(&server, &format!("profiles/{}/attachments", profile["id"].as_str().unwrap_or_default()), json!({"attachments": [{
        "name": "watched", "description": "", "scope": [{"id": scope["id"]}], "schedule": "daily", "status": "enabled",
        "notifications": {"enabled": true, "controls": {"threshold_limit": 0, "failed_control_ids": []}}, "attachment_parameters": [],
    }]}))
    .await;
    let attachment_id = attachments["attachments"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let push = |versioning: &'static str| {
        let server = &server;
        async move {
            server
                .call(Method::POST, &format!("/instances/{}/v1/inventory", server.instance_id), Some(&server.admin_key), Some(json!({"resources": [
                    {"id": "b1", "environment": "aws", "service_name": "s3", "resource_kind": "bucket", "config": {"versioning": {"status": versioning}},
                     "collected_at": Utc::now()},
                ]})))
                .await
        }
    };
    let scan = || async {
        palisade_server::service::scans::run_scan(
            &server.state,
            &server.instance_id,
            &attachment_id,
            "ondemand",
            Utc::now(),
        )
        .await
        .expect("scan")
    };
    let posture_findings = || async {
        server
            .call(
                Method::GET,
                &format!(
                    "/instances/{}/v1/findings?provider_id=posture",
                    server.instance_id
                ),
                Some(&server.admin_key),
                None,
            )
            .await
            .body["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };

    push("Enabled").await;
    scan().await;
    assert!(posture_findings().await.is_empty());

    push("Suspended").await;
    scan().await;
    scan().await;
    let findings = posture_findings().await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["occurrence_count"], 2);
    assert_eq!(
        findings[0]["context"]["resource_id"],
        attachment_id.as_str()
    );
    assert!(
        findings[0]["long_description"]
            .as_str()
            .is_some_and(|text| text.contains("threshold 0")),
        "{findings:#?}"
    );
}

/// Issue 4: a manual control is `user_evaluation_required` until someone attests it; an
/// attestation decides it at the next scan, and withdrawing it brings the question back.
#[tokio::test]
async fn attestations_decide_manual_controls_issue_4() {
    let server = TestServer::sqlite().await;
    let library = create(&server, "control_libraries", json!({
        "control_library_name": "l", "control_library_description": "", "control_library_type": "custom", "control_library_version": "1",
        "controls": [{"control_name": "PE-3", "control_description": "Physical access", "control_category": "", "control_requirement": true,
            "control_specifications": [{"component_id": "datacenter", "environment": "on-prem",
                "assessments": [{"assessment_id": "badge-review", "assessment_type": "manual", "assessment_description": "Badge logs reviewed"}]}]}],
    }))
    .await;
    let profile = create(&server, "profiles", json!({
        "profile_name": "p", "profile_version": "1", "default_parameters": [],
        "controls": [{"control_library_id": library["id"], "control_id": library["controls"][0]["control_id"]}],
    }))
    .await;
    let scope = create(
        &server,
        "scopes",
        json!({"name": "dc", "environment": "on-prem", "properties": []}),
    )
    .await;
    let attachments = create(&server, &format!("profiles/{}/attachments", profile["id"].as_str().unwrap_or_default()), json!({"attachments": [{
        "name": "dc", "description": "", "scope": [{"id": scope["id"]}], "schedule": "daily", "status": "enabled",
        "notifications": {"enabled": false}, "attachment_parameters": [],
    }]}))
    .await;
    let attachment_id = attachments["attachments"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let control_status = || async {
        let scan = palisade_server::service::scans::run_scan(
            &server.state,
            &server.instance_id,
            &attachment_id,
            "ondemand",
            Utc::now(),
        )
        .await
        .expect("scan");
        let report_id = scan["report_id"].as_str().expect("report").to_owned();
        let controls = server
            .call(
                Method::GET,
                &format!(
                    "/instances/{}/v3/reports/{report_id}/controls",
                    server.instance_id
                ),
                Some(&server.admin_key),
                None,
            )
            .await;
        controls.body["controls"][0]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(control_status().await, "user_evaluation_required");

    let path = format!(
        "/instances/{}/v1/attachments/{attachment_id}/attestations/badge-review",
        server.instance_id
    );
    let (_, viewer) = server.key_with_role("viewer").await;
    let denied = server
        .call(
            Method::PUT,
            &path,
            Some(&viewer),
            Some(json!({"status": "pass", "note": "n"})),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let bad = server
        .call(
            Method::PUT,
            &path,
            Some(&server.admin_key),
            Some(json!({"status": "maybe", "note": " ", "expires_on": "2000-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    for pointer in ["/status", "/note", "/expires_on"] {
        assert!(bad.text.contains(pointer), "{pointer} in {}", bad.text);
    }
    let attested = server
        .call(
            Method::PUT,
            &path,
            Some(&server.admin_key),
            Some(json!({"status": "pass", "note": "Q3 badge logs reviewed by security", "evidence": ["https://wiki.example/q3-badges"],
                "expires_on": (Utc::now() + Duration::days(90)).to_rfc3339()})),
        )
        .await;
    assert_eq!(attested.status, StatusCode::OK, "{}", attested.text);
    assert_eq!(attested.body["in_force"], true);
    assert_eq!(control_status().await, "compliant");

    let listed = server
        .call(
            Method::GET,
            &path.replace("/badge-review", ""),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        listed.body[0]["evidence"][0],
        "https://wiki.example/q3-badges"
    );

    let failed = server
        .call(
            Method::PUT,
            &path,
            Some(&server.admin_key),
            Some(json!({"status": "failure", "note": "badge logs missing for August"})),
        )
        .await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.text);
    assert_eq!(control_status().await, "not_compliant");

    let withdrawn = server
        .call(Method::DELETE, &path, Some(&server.admin_key), None)
        .await;
    assert_eq!(withdrawn.status, StatusCode::NO_CONTENT);
    assert_eq!(control_status().await, "user_evaluation_required");
}

/// Issue 4: the built-in libraries and profiles are in every instance, read-only, and a built-in
/// profile can be attached and scanned like a custom one.
#[tokio::test]
async fn builtin_content_is_listed_attachable_and_read_only_issue_4() {
    let server = TestServer::sqlite().await;
    let get = |path: String| {
        let server = &server;
        async move {
            server
                .call(Method::GET, &path, Some(&server.admin_key), None)
                .await
        }
    };
    let base = format!("/instances/{}/v3", server.instance_id);
    let libraries = get(format!("{base}/control_libraries?limit=50")).await;
    assert_eq!(libraries.status, StatusCode::OK, "{}", libraries.text);
    let library_ids: Vec<&str> = libraries.body["control_libraries"]
        .as_array()
        .expect("libraries")
        .iter()
        .filter_map(|library| library["id"].as_str())
        .collect();
    assert!(library_ids.contains(&"nist-800-53-r5"), "{library_ids:?}");
    let nist = get(format!("{base}/control_libraries/nist-800-53-r5")).await;
    assert_eq!(nist.body["control_library_type"], "predefined");
    assert_eq!(nist.body["controls_count"], 370);
    let profile = get(format!("{base}/profiles/cis-aws-foundations")).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
    assert_eq!(profile.body["profile_type"], "predefined");
    let profiles = get(format!("{base}/profiles")).await;
    assert!(
        profiles.body["profiles"]
            .as_array()
            .expect("profiles")
            .iter()
            .any(|profile| profile["id"] == "cis-aws-foundations"),
        "{}",
        profiles.text
    );

    let deleted = server
        .call(
            Method::DELETE,
            &format!("{base}/profiles/cis-aws-foundations"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert!(deleted.status.is_client_error(), "{}", deleted.text);
    let deleted_library = server
        .call(
            Method::DELETE,
            &format!("{base}/control_libraries/nist-800-53-r5"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert!(
        deleted_library.status.is_client_error(),
        "{}",
        deleted_library.text
    );

    let scope = create(
        &server,
        "scopes",
        json!({"name": "aws", "environment": "aws", "properties": []}),
    )
    .await;
    let attachments = create(&server, "profiles/cis-aws-foundations/attachments", json!({"attachments": [{
        "name": "cis", "description": "", "scope": [{"id": scope["id"]}], "schedule": "daily", "status": "enabled",
        "notifications": {"enabled": false}, "attachment_parameters": [],
    }]}))
    .await;
    let attachment_id = attachments["attachments"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    server
        .call(Method::POST, &format!("/instances/{}/v1/inventory", server.instance_id), Some(&server.admin_key), Some(json!({"resources": [
            {"id": "arn:aws:s3:::site", "environment": "aws", "account_id": "111", "service_name": "s3", "resource_kind": "bucket",
             "config": {"versioning": {"status": "Suspended"}}},
        ]})))
        .await;
    let scan = palisade_server::service::scans::run_scan(
        &server.state,
        &server.instance_id,
        &attachment_id,
        "ondemand",
        Utc::now(),
    )
    .await
    .expect("scan of a built-in profile");
    let report_id = scan["report_id"].as_str().expect("report");
    let summary = get(format!("{base}/reports/{report_id}/summary")).await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.text);
    assert!(
        summary.body["controls"]["total_count"]
            .as_i64()
            .unwrap_or_default()
            > 50,
        "{}",
        summary.text
    );
}
