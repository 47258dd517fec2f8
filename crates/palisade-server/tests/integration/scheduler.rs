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
