//! Credentials (issue 5): secrets are sealed at rest, never answered, opened only by the server
//! for a collector job, and scoped to their instance.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use palisade_server::ServerConfig;
use palisade_server::service::credentials::{MASK, MasterKey, reveal};
use serde_json::json;

use crate::common::{TestServer, assert_error_shape, test_config};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

async fn server_with_master_key() -> TestServer {
    TestServer::sqlite_with(ServerConfig {
        master_key: Some(Arc::new(
            MasterKey::from_bytes(&[42u8; 32]).expect("master key"),
        )),
        ..test_config()
    })
    .await
}

#[tokio::test]
async fn secrets_are_sealed_masked_and_scoped_issue_5() {
    let server = server_with_master_key().await;
    let path = format!("/instances/{}/v1/credentials", server.instance_id);
    let created = server
        .call(
            Method::POST,
            &path,
            Some(&server.admin_key),
            Some(json!({"name": "prod read-only", "type": "aws_cloud", "access_key_id": "AKIAIOSFODNN7EXAMPLE",
                "secret_access_key": SECRET, "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:5000"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(!created.text.contains(SECRET));
    assert_eq!(created.body["secret_access_key"], MASK);
    assert_eq!(created.body["access_key_id"], format!("{MASK}MPLE"));
    let id = created.body["id"].as_str().expect("id").to_owned();

    // Not in any answer, and not in the store in the clear.
    let listed = server
        .call(Method::GET, &path, Some(&server.admin_key), None)
        .await;
    assert!(!listed.text.contains(SECRET) && listed.text.contains("prod read-only"));
    let stored = server
        .state
        .store
        .get_document(&server.instance_id, "credential", &id)
        .await
        .expect("store")
        .expect("stored");
    assert!(!stored.body.to_string().contains(SECRET));
    // The server can open it for a collector job.
    let revealed = reveal(&server.state, &server.instance_id, &id)
        .await
        .expect("reveal");
    assert_eq!(revealed["secret_access_key"], SECRET);

    // Bad bodies name their fields; another instance sees nothing.
    let bad = server
        .call(
            Method::POST,
            &path,
            Some(&server.admin_key),
            Some(json!({"name": "x", "type": "aws_cloud", "access_key_id": "A", "color": "red"})),
        )
        .await;
    assert_error_shape(&bad, StatusCode::BAD_REQUEST);
    for pointer in ["/secret_access_key", "/region", "/color"] {
        assert!(bad.text.contains(pointer), "{pointer}: {}", bad.text);
    }
    let unknown_type = server
        .call(
            Method::POST,
            &path,
            Some(&server.admin_key),
            Some(json!({"name": "x", "type": "ftp"})),
        )
        .await;
    assert_error_shape(&unknown_type, StatusCode::BAD_REQUEST);
    let (other_instance, other_key) = server.second_instance().await;
    let foreign = server
        .call(
            Method::GET,
            &format!("/instances/{other_instance}/v1/credentials/{id}"),
            Some(&other_key),
            None,
        )
        .await;
    assert_error_shape(&foreign, StatusCode::NOT_FOUND);
    assert!(reveal(&server.state, &other_instance, &id).await.is_err());

    // A viewer reads masked values but cannot write; deletion works.
    let (_, viewer) = server.key_with_role("viewer").await;
    let read = server
        .call(Method::GET, &format!("{path}/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(!read.text.contains(SECRET));
    let denied = server
        .call(Method::DELETE, &format!("{path}/{id}"), Some(&viewer), None)
        .await;
    assert_error_shape(&denied, StatusCode::FORBIDDEN);
    let deleted = server
        .call(
            Method::DELETE,
            &format!("{path}/{id}"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn without_a_master_key_no_secret_is_stored_issue_5() {
    let server = TestServer::sqlite().await;
    let refused = server
        .call(
            Method::POST,
            &format!("/instances/{}/v1/credentials", server.instance_id),
            Some(&server.admin_key),
            Some(json!({"name": "n", "type": "ibm_cloud", "api_key": SECRET})),
        )
        .await;
    assert_error_shape(&refused, StatusCode::SERVICE_UNAVAILABLE);
}
