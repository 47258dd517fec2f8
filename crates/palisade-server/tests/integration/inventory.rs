//! Inventory pushes and queries through the API.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestServer, assert_error_shape};

fn bucket(id: &str, account: &str, env_tag: &str, collected_at: &str) -> serde_json::Value {
    json!({
        "id": id, "environment": "aws", "account_id": account, "service_name": "s3", "resource_kind": "bucket",
        "region": "us-east-1", "tags": {"env": env_tag}, "config": {"versioning": {"status": "Enabled"}},
        "collected_at": collected_at,
    })
}

#[tokio::test]
async fn a_batch_keeps_good_records_and_quarantines_bad_ones() {
    let server = TestServer::sqlite().await;
    let (_, ingest_key) = server.key_with_role("ingest").await;
    let path = format!("/instances/{}/v1/inventory", server.instance_id);
    let batch = json!({"resources": [
        bucket("b1", "111", "prod", "2026-05-01T00:00:00Z"),
        {"id": "broken", "service_name": "s3"},
        bucket("b2", "222", "dev", "2026-05-01T00:00:00Z"),
        {"id": "bad-config", "service_name": "s3", "resource_kind": "bucket", "config": 7},
        bucket("b3", "111", "dev", "2026-05-01T00:00:00Z"),
        {"id": "bad-time", "service_name": "s3", "resource_kind": "bucket", "collected_at": "yesterday"},
    ]});
    let answer = server
        .call(Method::POST, &path, Some(&ingest_key), Some(batch.clone()))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["stored"], 3);
    let rejected = answer.body["rejected"].as_array().expect("rejected");
    let positions: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap_or(99),
                r["errors"][0]["target"]["name"]
                    .as_str()
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        positions,
        [
            (1, "/resources/1/resource_kind"),
            (3, "/resources/3/config"),
            (5, "/resources/5/collected_at")
        ]
    );

    // A retry of the same batch stores nothing new.
    let retried = server
        .call(Method::POST, &path, Some(&ingest_key), Some(batch))
        .await;
    assert_eq!(
        (
            retried.body["stored"].as_u64(),
            retried.body["duplicates"].as_u64()
        ),
        (Some(0), Some(3))
    );

    // The ingest key pushes but cannot read; a viewer reads but cannot push.
    assert_eq!(
        server
            .call(Method::GET, &path, Some(&ingest_key), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let (_, viewer) = server.key_with_role("viewer").await;
    let denied = server
        .call(
            Method::POST,
            &path,
            Some(&viewer),
            Some(json!({"resources": []})),
        )
        .await;
    assert_eq!(
        assert_error_shape(&denied, StatusCode::FORBIDDEN),
        "forbidden"
    );

    let quarantine = server
        .call(
            Method::GET,
            &format!("/instances/{}/v1/quarantine", server.instance_id),
            Some(&viewer),
            None,
        )
        .await;
    let records = quarantine.body["records"].as_array().expect("records");
    assert_eq!(
        records.len(),
        6,
        "both pushes' bad records are kept: {}",
        quarantine.text
    );
    assert!(
        records
            .iter()
            .any(|record| record["record"]["id"] == "bad-config")
    );

    let listed = server
        .call(
            Method::GET,
            &format!("{path}?account_id=111&tag=env:prod"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let ids: Vec<&str> = listed.body["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["b1"]);
    let page = server
        .call(Method::GET, &format!("{path}?limit=2"), Some(&viewer), None)
        .await;
    assert_eq!(
        (
            page.body["total_count"].as_u64(),
            page.body["next"]["start"].as_str()
        ),
        (Some(3), Some("b2"))
    );
    let rest = server
        .call(
            Method::GET,
            &format!("{path}?limit=2&start=b2"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(rest.body["resources"][0]["id"], "b3");
    assert!(rest.body.get("next").is_none());
    let unknown = server
        .call(
            Method::GET,
            &format!("{path}?colour=red"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        assert_error_shape(&unknown, StatusCode::BAD_REQUEST),
        "invalid_parameter"
    );
}

#[tokio::test]
async fn history_keeps_every_version() {
    let server = TestServer::sqlite().await;
    let path = format!("/instances/{}/v1/inventory", server.instance_id);
    for time in ["2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z"] {
        let answer = server
            .call(
                Method::POST,
                &path,
                Some(&server.admin_key),
                Some(json!({"resources": [bucket("b1", "111", "prod", time)]})),
            )
            .await;
        assert_eq!(answer.body["stored"], 1);
    }
    let history = server
        .call(
            Method::GET,
            &format!("{path}/b1/history"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(history.body["versions"].as_array().map(Vec::len), Some(2));
    let missing = server
        .call(
            Method::GET,
            &format!("{path}/nope/history"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(
        assert_error_shape(&missing, StatusCode::NOT_FOUND),
        "not_found"
    );
}

#[tokio::test]
async fn a_body_without_resources_is_rejected_whole() {
    let server = TestServer::sqlite().await;
    let path = format!("/instances/{}/v1/inventory", server.instance_id);
    let answer = server
        .call(
            Method::POST,
            &path,
            Some(&server.admin_key),
            Some(json!({"items": []})),
        )
        .await;
    assert_eq!(
        assert_error_shape(&answer, StatusCode::BAD_REQUEST),
        "unknown_field"
    );
}
