//! Health, readiness, metrics, the OpenAPI document, bootstrap and restarts.

use axum::http::{Method, StatusCode};

use crate::common::TestServer;

#[tokio::test]
async fn health_and_readiness_answer() {
    let server = TestServer::sqlite().await;
    let health = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let ready = server.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (ready.status, ready.body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let server = TestServer::sqlite().await;
    server.call(Method::GET, "/healthz", None, None).await;
    let metrics = server.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.text.contains("palisade_http_requests_total"),
        "{}",
        metrics.text
    );
    assert!(
        metrics.text.contains("route=\"/healthz\""),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let server = TestServer::sqlite().await;
    let answer = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let paths = answer.body["paths"].as_object().expect("paths");
    let expected = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/v1/whoami", "get"),
        ("/v1/instances", "get"),
        ("/v1/instances", "post"),
        ("/instances/{instance_id}/v1/instance", "get"),
        ("/instances/{instance_id}/v1/keys", "get"),
        ("/instances/{instance_id}/v1/keys", "post"),
        ("/instances/{instance_id}/v1/keys/{key_id}", "delete"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|item| item.get(method)).is_some(),
            "{method} {path} missing from /openapi.json"
        );
    }
    // Every documented operation is served (not 404/405) — the document and router agree.
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let concrete = path
                .replace("{instance_id}", &server.instance_id)
                .replace("{key_id}", "0");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let answer = server
                .call(method.clone(), &concrete, Some(&server.admin_key), None)
                .await;
            assert_ne!(
                answer.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert!(
                answer.status != StatusCode::NOT_FOUND
                    || answer.body["errors"][0]["message"] != "no such route",
                "{method} {path} is documented but not routed"
            );
        }
    }
    assert!(answer.body["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn a_restart_keeps_every_object_and_key() {
    let directory = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/palisade.db", directory.path().display());
    let (instance_id, admin_key, viewer_key) = {
        let store = palisade_store::connect(&url).await.expect("open");
        let state = palisade_server::AppState::new(store, crate::common::test_config());
        let bootstrap = palisade_server::bootstrap(&state, directory.path())
            .await
            .expect("bootstrap")
            .expect("first start");
        let written =
            std::fs::read_to_string(directory.path().join("bootstrap.txt")).expect("bootstrap.txt");
        assert_eq!(written, bootstrap.lines());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(directory.path().join("bootstrap.txt"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let minted = palisade_server::auth::mint_key(
            &bootstrap.instance_id,
            "v",
            palisade_model::tenancy::Role::Viewer,
            false,
        )
        .expect("mint");
        state
            .store
            .create_key(&minted.stored)
            .await
            .expect("store key");
        (bootstrap.instance_id, bootstrap.admin_key, minted.token)
    };
    let store = palisade_store::connect(&url).await.expect("reopen");
    let state = palisade_server::AppState::new(store, crate::common::test_config());
    assert!(
        palisade_server::bootstrap(&state, directory.path())
            .await
            .expect("bootstrap")
            .is_none(),
        "no second bootstrap"
    );
    for key in [&admin_key, &viewer_key] {
        let response = tower::ServiceExt::oneshot(
            palisade_server::app(state.clone()),
            axum::http::Request::builder()
                .uri(format!("/instances/{instance_id}/v1/instance"))
                .header("authorization", format!("Bearer {key}"))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }
}
