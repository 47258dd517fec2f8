//! Collector agents (issue 5), in-process: creation with a one-time code, the exchange for a
//! `collector` key, heartbeats and status, jobs with opened credentials for the collector's own
//! key only, deletion revoking the key, and idempotent inventory batches. The agent process
//! itself, with a server killed in the middle, is tested in `palisade-cli`.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use palisade_server::ServerConfig;
use palisade_server::service::credentials::MasterKey;
use serde_json::{Value, json};

use crate::common::{TestServer, assert_error_shape, test_config};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

async fn server() -> TestServer {
    TestServer::sqlite_with(ServerConfig {
        master_key: Some(Arc::new(
            MasterKey::from_bytes(&[9u8; 32]).expect("master key"),
        )),
        ..test_config()
    })
    .await
}

async fn credential(server: &TestServer) -> String {
    let created = server
        .call(
            Method::POST,
            &format!("/instances/{}/v1/credentials", server.instance_id),
            Some(&server.admin_key),
            Some(json!({"name": "prod", "type": "aws_cloud", "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                "secret_access_key": SECRET, "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:5000"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.body["id"].as_str().expect("id").to_owned()
}

fn resource(id: &str) -> Value {
    json!({"id": id, "environment": "linux", "account_id": "site", "service_name": "linux",
        "resource_kind": "host", "config": {}, "collected_at": "2026-05-01T00:00:00Z"})
}

#[tokio::test]
async fn collectors_register_once_heartbeat_and_get_their_jobs_issue_5() {
    let server = server().await;
    let credential_id = credential(&server).await;
    let base = format!("/instances/{}/v1/collectors", server.instance_id);

    // Bad targets are answered with every mistake at its pointer.
    let refused = server
        .call(
            Method::POST,
            &base,
            Some(&server.admin_key),
            Some(json!({"name": "edge", "targets": [
                {"kind": "aws", "credential_id": "missing"},
                {"kind": "import", "import_kind": "oracle", "paths": []},
                {"kind": "host", "root": "relative", "interval_seconds": 0, "colour": "red"},
                {"kind": "ftp"}
            ]})),
        )
        .await;
    assert_eq!(
        assert_error_shape(&refused, StatusCode::BAD_REQUEST),
        "invalid_field"
    );
    for pointer in [
        "/targets/0/credential_id",
        "/targets/1/import_kind",
        "/targets/1/paths",
        "/targets/2/root",
        "/targets/2/interval_seconds",
        "/targets/2/colour",
        "/targets/3/kind",
    ] {
        assert!(
            refused.text.contains(pointer),
            "{pointer}: {}",
            refused.text
        );
    }

    let created = server
        .call(
            Method::POST,
            &base,
            Some(&server.admin_key),
            Some(json!({"name": "edge", "targets": [
                {"id": "aws-prod", "kind": "aws", "credential_id": credential_id, "regions": ["eu-west-1"], "interval_seconds": 600},
                {"kind": "host"}
            ]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["status"], "pending");
    assert_eq!(created.body["targets"][1]["interval_seconds"], 3600);
    let code = created.body["registration_code"]
        .as_str()
        .expect("code")
        .to_owned();
    let collector_id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("{base}/{collector_id}");

    // Readers see the collector, never the code.
    let (_, viewer) = server.key_with_role("viewer").await;
    let listed = server.call(Method::GET, &base, Some(&viewer), None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["collectors"][0]["status"], "pending");
    assert!(!listed.text.contains(&code));

    // The exchange: no key needed; a wrong code is refused; the right one works once.
    let wrong = server
        .call(
            Method::POST,
            "/v1/collectors/register",
            None,
            Some(json!({"registration_code": "palreg_nope"})),
        )
        .await;
    assert_eq!(
        assert_error_shape(&wrong, StatusCode::UNAUTHORIZED),
        "unauthorized"
    );
    let registered = server
        .call(
            Method::POST,
            "/v1/collectors/register",
            None,
            Some(json!({"registration_code": code})),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    assert_eq!(registered.body["collector_id"], collector_id.as_str());
    assert_eq!(registered.body["instance_id"], server.instance_id.as_str());
    let agent_key = registered.body["api_key"].as_str().expect("key").to_owned();
    let again = server
        .call(
            Method::POST,
            "/v1/collectors/register",
            None,
            Some(json!({"registration_code": code})),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "a code works once");
    let whoami = server
        .call(Method::GET, "/v1/whoami", Some(&agent_key), None)
        .await;
    assert_eq!(whoami.body["role"], "collector");
    let status = server.call(Method::GET, &path, Some(&viewer), None).await;
    assert_eq!(status.body["status"], "registered");
    let renewed = server
        .call(
            Method::POST,
            &format!("{path}/registration_code"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(renewed.status, StatusCode::CONFLICT, "{}", renewed.text);

    // Heartbeats and jobs: the collector's own key only.
    let beat = json!({"version": "1.2.3", "host_name": "edge-1",
        "last_job": {"target_id": "aws-prod", "status": "succeeded", "resources": 3}});
    let answer = server
        .call(
            Method::POST,
            &format!("{path}/heartbeat"),
            Some(&agent_key),
            Some(beat.clone()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let by_admin = server
        .call(
            Method::POST,
            &format!("{path}/heartbeat"),
            Some(&server.admin_key),
            Some(beat.clone()),
        )
        .await;
    assert_eq!(by_admin.status, StatusCode::NOT_FOUND, "{}", by_admin.text);
    let by_viewer = server
        .call(Method::GET, &format!("{path}/jobs"), Some(&viewer), None)
        .await;
    assert_eq!(by_viewer.status, StatusCode::FORBIDDEN);
    let by_admin = server
        .call(
            Method::GET,
            &format!("{path}/jobs"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(
        by_admin.status,
        StatusCode::NOT_FOUND,
        "only the collector's key gets the opened credentials"
    );
    let jobs = server
        .call(Method::GET, &format!("{path}/jobs"), Some(&agent_key), None)
        .await;
    assert_eq!(jobs.status, StatusCode::OK, "{}", jobs.text);
    assert_eq!(jobs.body["jobs"][0]["id"], "aws-prod");
    assert_eq!(
        jobs.body["jobs"][0]["credential"]["secret_access_key"],
        SECRET
    );
    assert_eq!(jobs.body["jobs"][1]["kind"], "host");

    let shown = server.call(Method::GET, &path, Some(&viewer), None).await;
    assert_eq!(shown.body["status"], "active");
    assert_eq!(shown.body["version"], "1.2.3");
    assert_eq!(shown.body["host_name"], "edge-1");
    assert_eq!(shown.body["last_job"]["resources"], 3);
    assert!(shown.body["last_heartbeat_at"].is_string());
    assert!(!shown.text.contains(SECRET));

    // Another instance cannot see or drive it.
    let (other_instance, other_admin) = server.second_instance().await;
    let foreign = server
        .call(
            Method::GET,
            &format!("/instances/{other_instance}/v1/collectors/{collector_id}"),
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    // Deleting the collector revokes its key at once.
    let deleted = server
        .call(Method::DELETE, &path, Some(&server.admin_key), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let after = server
        .call(
            Method::POST,
            &format!("{path}/heartbeat"),
            Some(&agent_key),
            Some(beat),
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_retried_inventory_batch_is_answered_not_applied_again_issue_5() {
    let server = server().await;
    let path = format!("/instances/{}/v1/inventory", server.instance_id);
    let push = json!({"batch_id": "agent-1.0000000000001.000001",
        "resources": [resource("host-1"), {"service_name": "linux"}]});
    let first = server
        .call(
            Method::POST,
            &path,
            Some(&server.admin_key),
            Some(push.clone()),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["stored"], 1);
    assert_eq!(first.body["replayed"], false);
    assert_eq!(first.body["rejected"][0]["index"], 1);
    let retry = server
        .call(Method::POST, &path, Some(&server.admin_key), Some(push))
        .await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    assert_eq!(retry.body["replayed"], true);
    assert_eq!(retry.body["stored"], 1, "the first answer's counts");
    assert_eq!(retry.body["rejected"][0]["index"], 1);
    let quarantine = server
        .call(
            Method::GET,
            &format!("/instances/{}/v1/quarantine", server.instance_id),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(
        quarantine.body["records"].as_array().map(Vec::len),
        Some(1),
        "the retry quarantined nothing more: {}",
        quarantine.text
    );
    let batches = server
        .call(
            Method::GET,
            &format!("/instances/{}/v1/inventory-batches", server.instance_id),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(batches.status, StatusCode::OK, "{}", batches.text);
    assert_eq!(batches.body["batches"][0]["stored"], 1);
    assert_eq!(batches.body["batches"][0]["rejected"], 1);
    assert_eq!(batches.body["batches"].as_array().map(Vec::len), Some(1));

    let bad_id = server
        .call(
            Method::POST,
            &path,
            Some(&server.admin_key),
            Some(json!({"batch_id": "no spaces/allowed", "resources": []})),
        )
        .await;
    assert_eq!(
        assert_error_shape(&bad_id, StatusCode::BAD_REQUEST),
        "invalid_field"
    );
    assert!(bad_id.text.contains("/batch_id"));
}
