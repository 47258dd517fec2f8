//! The error contract: shapes, codes, positions, limits.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::common::{TestServer, assert_error_shape};

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let server = TestServer::sqlite().await;
    let answer = server
        .call(Method::GET, "/no/such/route", Some(&server.admin_key), None)
        .await;
    assert_eq!(
        assert_error_shape(&answer, StatusCode::NOT_FOUND),
        "not_found"
    );
    let answer = server.call(Method::PATCH, "/healthz", None, None).await;
    assert_eq!(
        assert_error_shape(&answer, StatusCode::METHOD_NOT_ALLOWED),
        "method_not_allowed"
    );
}

#[tokio::test]
async fn missing_and_bad_keys_answer_401() {
    let server = TestServer::sqlite().await;
    let path = format!("/instances/{}/v1/keys", server.instance_id);
    for key in [
        None,
        Some("nonsense"),
        Some("pal_0123456789abcdef0123456789abcdef_wrong"),
    ] {
        let answer = server.call(Method::GET, &path, key, None).await;
        assert_eq!(
            assert_error_shape(&answer, StatusCode::UNAUTHORIZED),
            "unauthorized"
        );
        assert_eq!(answer.body["errors"][0]["target"]["name"], "Authorization");
    }
    // A real key id with a wrong secret.
    let (key_id, _) = server.key_with_role("viewer").await;
    let forged = format!("pal_{key_id}_forgedsecret");
    let answer = server
        .call(
            Method::GET,
            &format!("/instances/{}/v1/instance", server.instance_id),
            Some(&forged),
            None,
        )
        .await;
    assert_eq!(
        assert_error_shape(&answer, StatusCode::UNAUTHORIZED),
        "unauthorized"
    );
}

#[tokio::test]
async fn malformed_json_answers_400_with_its_position() {
    let server = TestServer::sqlite().await;
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/instances/{}/v1/keys", server.instance_id))
        .header("authorization", format!("Bearer {}", server.admin_key))
        .header("content-type", "application/json")
        .body(Body::from("{\n  \"name\": \"x\",\n  \"role\": viewer\n}"))
        .expect("request");
    let answer = server.send(request).await;
    assert_eq!(
        assert_error_shape(&answer, StatusCode::BAD_REQUEST),
        "invalid_json"
    );
    let message = answer.body["errors"][0]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("line 3 column"), "{message}");
}

#[tokio::test]
async fn unknown_missing_and_invalid_fields_are_named() {
    let server = TestServer::sqlite().await;
    let path = format!("/instances/{}/v1/keys", server.instance_id);
    let cases = [
        (
            json!({"name": "x", "role": "viewer", "colour": "red"}),
            "unknown_field",
            "/colour",
        ),
        (json!({"name": "x"}), "missing_field", "/role"),
        (
            json!({"name": "x", "role": "superuser"}),
            "invalid_field",
            "/role",
        ),
        (
            json!({"name": "", "role": "viewer"}),
            "invalid_field",
            "/name",
        ),
        (
            json!({"name": 5, "role": "viewer"}),
            "invalid_field",
            "/name",
        ),
    ];
    for (body, code, pointer) in cases {
        let answer = server
            .call(
                Method::POST,
                &path,
                Some(&server.admin_key),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            assert_error_shape(&answer, StatusCode::BAD_REQUEST),
            code,
            "{body}"
        );
        assert_eq!(
            answer.body["errors"][0]["target"]["type"], "field",
            "{body}"
        );
        assert_eq!(
            answer.body["errors"][0]["target"]["name"], pointer,
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_answers_415() {
    let server = TestServer::sqlite().await;
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/instances/{}/v1/keys", server.instance_id))
        .header("authorization", format!("Bearer {}", server.admin_key))
        .header("content-type", "text/plain")
        .body(Body::from("name=x"))
        .expect("request");
    assert_eq!(
        assert_error_shape(
            &server.send(request).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        ),
        "unsupported_media_type"
    );
}

#[tokio::test]
async fn oversize_bodies_answer_413() {
    let server = TestServer::sqlite().await; // 64 KiB limit in tests
    let huge_name = "x".repeat(100 * 1024);
    let answer = server
        .call(
            Method::POST,
            &format!("/instances/{}/v1/keys", server.instance_id),
            Some(&server.admin_key),
            Some(json!({"name": huge_name, "role": "viewer"})),
        )
        .await;
    assert_eq!(
        assert_error_shape(&answer, StatusCode::PAYLOAD_TOO_LARGE),
        "payload_too_large"
    );
}

#[tokio::test]
async fn client_trace_ids_are_kept() {
    let server = TestServer::sqlite().await;
    let request = Request::builder()
        .uri("/no/such/route")
        .header("x-correlation-id", "corr-123")
        .body(Body::empty())
        .expect("request");
    let answer = server.send(request).await;
    assert_eq!(answer.body["trace"], "corr-123");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let mut config = crate::common::test_config();
    config.rate_limit_per_second = std::num::NonZeroU32::new(1).expect("non-zero");
    config.rate_limit_burst = std::num::NonZeroU32::new(3).expect("non-zero");
    let server = TestServer::sqlite_with(config).await;
    let path = format!("/instances/{}/v1/instance", server.instance_id);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            server
                .call(Method::GET, &path, Some(&server.admin_key), None)
                .await,
        );
    }
    let limited = statuses
        .iter()
        .find(|answer| answer.status == StatusCode::TOO_MANY_REQUESTS)
        .expect("a 429 within 5 requests");
    assert_eq!(
        assert_error_shape(limited, StatusCode::TOO_MANY_REQUESTS),
        "rate_limited"
    );
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    assert_eq!(statuses[0].status, StatusCode::OK);
}
