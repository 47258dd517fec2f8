//! Keys, roles and tenancy: the role matrix, cross-instance isolation and revocation.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, assert_error_shape};

/// Every instance-scoped route with what it needs, as (method, path with `{i}` for the instance
/// and `{k}` for a key id of that instance, body, allowed roles).
fn instance_routes() -> Vec<(Method, &'static str, Option<Value>, &'static [&'static str])> {
    vec![
        (
            Method::GET,
            "/instances/{i}/v1/inventory",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::POST,
            "/instances/{i}/v1/inventory",
            Some(json!({"resources": []})),
            &["admin", "editor", "collector", "ingest"],
        ),
        (
            Method::GET,
            "/instances/{i}/v1/quarantine",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::GET,
            "/instances/{i}/v3/settings",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::GET,
            "/instances/{i}/v3/rules",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::POST,
            "/instances/{i}/v3/scopes",
            Some(json!({"name": "s", "environment": "aws"})),
            &["admin", "editor"],
        ),
        (
            Method::GET,
            "/instances/{i}/v3/control_libraries",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::GET,
            "/instances/{i}/v3/profiles",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::GET,
            "/instances/{i}/v3/attachments",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::GET,
            "/instances/{i}/v3/targets",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::GET,
            "/instances/{i}/v3/provider_types",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::GET,
            "/instances/{i}/config/v1/rules",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::POST,
            "/instances/{i}/config/v1/rules",
            Some(json!({"rules": [{"rule": {"name": "n", "description": "d",
                "target": {"service_name": "s", "resource_kind": "k"},
                "required_config": {"property": "p", "operator": "is_true"},
                "enforcement_actions": []}}]})),
            &["admin", "editor"],
        ),
        (
            Method::GET,
            "/instances/{i}/config/v1/templates",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::POST,
            "/instances/{i}/v1/admission",
            Some(json!({"operation": "create",
                "resource": {"id": "r", "service_name": "s", "resource_kind": "k"}})),
            &["admin", "editor", "viewer"],
        ),
        (
            Method::GET,
            "/instances/{i}/v1/admission/decisions",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::GET,
            "/instances/{i}/v1/instance",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::POST,
            "/instances/{i}/v1/activity/events",
            Some(json!({"Records": []})),
            &["admin", "editor", "collector", "ingest"],
        ),
        (
            Method::GET,
            "/instances/{i}/v1/activity/packs",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::PUT,
            "/instances/{i}/v1/activity/parameters",
            Some(json!({})),
            &["admin", "editor"],
        ),
        (
            Method::POST,
            "/instances/{i}/v1/network/flows",
            Some(json!([])),
            &["admin", "editor", "collector", "ingest"],
        ),
        (
            Method::GET,
            "/instances/{i}/v1/network/detectors",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::PUT,
            "/instances/{i}/v1/network/detectors",
            Some(json!({})),
            &["admin", "editor"],
        ),
        (
            Method::GET,
            "/instances/{i}/v1/network/intel/feeds",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::GET,
            "/instances/{i}/v1/collectors",
            None,
            &["admin", "editor", "viewer"],
        ),
        (
            Method::POST,
            "/instances/{i}/v1/collectors",
            Some(json!({"name": "edge", "targets": [{"kind": "host"}]})),
            &["admin", "editor"],
        ),
        (
            Method::GET,
            "/instances/{i}/v1/inventory-batches",
            None,
            &["admin", "editor", "viewer"],
        ),
        (Method::GET, "/instances/{i}/v1/keys", None, &["admin"]),
        (
            Method::POST,
            "/instances/{i}/v1/keys",
            Some(json!({"name": "n", "role": "viewer"})),
            &["admin"],
        ),
        (
            Method::DELETE,
            "/instances/{i}/v1/keys/{k}",
            None,
            &["admin"],
        ),
    ]
}

#[tokio::test]
async fn role_matrix_is_enforced_on_every_route() {
    let server = TestServer::sqlite().await;
    for role in ["admin", "editor", "viewer", "collector", "ingest"] {
        let (_, key) = server.key_with_role(role).await;
        for (method, template, body, allowed) in instance_routes() {
            // A fresh victim key per call, so DELETE always has something to revoke.
            let (victim_id, _) = server.key_with_role("viewer").await;
            let path = template
                .replace("{i}", &server.instance_id)
                .replace("{k}", &victim_id);
            let answer = server.call(method.clone(), &path, Some(&key), body).await;
            if allowed.contains(&role) {
                assert!(
                    answer.status.is_success(),
                    "{role} {method} {template}: {}",
                    answer.text
                );
            } else {
                assert_eq!(
                    assert_error_shape(&answer, StatusCode::FORBIDDEN),
                    "forbidden",
                    "{role} {method} {template}"
                );
            }
        }
        // Instance management is for the operator key only, whatever the role.
        let answer = server
            .call(Method::GET, "/v1/instances", Some(&key), None)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{role} must not list instances"
        );
    }
    let answer = server
        .call(Method::GET, "/v1/instances", Some(&server.admin_key), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

async fn keys_never_reach_another_instance(server: TestServer) {
    let (other_instance, other_admin) = server.second_instance().await;
    let (victim_id, victim_key) = server.key_with_role("viewer").await;
    for (method, template, body, _) in instance_routes() {
        // The other instance's admin key on this instance's paths: 404, as if nothing existed.
        let path = template
            .replace("{i}", &server.instance_id)
            .replace("{k}", &victim_id);
        let answer = server
            .call(method.clone(), &path, Some(&other_admin), body.clone())
            .await;
        assert_eq!(
            assert_error_shape(&answer, StatusCode::NOT_FOUND),
            "not_found",
            "{method} {template}"
        );
        // And this instance's admin key on the other instance's paths.
        let path = template
            .replace("{i}", &other_instance)
            .replace("{k}", &victim_id);
        let answer = server
            .call(method.clone(), &path, Some(&server.admin_key), body)
            .await;
        assert_eq!(
            assert_error_shape(&answer, StatusCode::NOT_FOUND),
            "not_found",
            "{method} {template}"
        );
    }
    // Through its own instance's path, the other admin cannot revoke (or see) our key either.
    let answer = server
        .call(
            Method::DELETE,
            &format!("/instances/{other_instance}/v1/keys/{victim_id}"),
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(
        assert_error_shape(&answer, StatusCode::NOT_FOUND),
        "not_found"
    );
    let listed = server
        .call(
            Method::GET,
            &format!("/instances/{other_instance}/v1/keys"),
            Some(&other_admin),
            None,
        )
        .await;
    assert!(
        !listed.text.contains(&victim_id),
        "other instance lists our key: {}",
        listed.text
    );
    // The victim key still works, in its own instance only.
    let own = server
        .call(
            Method::GET,
            &format!("/instances/{}/v1/instance", server.instance_id),
            Some(&victim_key),
            None,
        )
        .await;
    assert_eq!(own.status, StatusCode::OK);
    // An instance that does not exist answers the same 404 as one that does.
    let missing = server
        .call(
            Method::GET,
            "/instances/00000000-0000-0000-0000-000000000000/v1/instance",
            Some(&victim_key),
            None,
        )
        .await;
    assert_eq!(
        assert_error_shape(&missing, StatusCode::NOT_FOUND),
        "not_found"
    );
}

#[tokio::test]
async fn keys_never_reach_another_instance_on_sqlite() {
    keys_never_reach_another_instance(TestServer::sqlite().await).await;
}

#[tokio::test]
async fn keys_never_reach_another_instance_on_postgres() {
    let Some(server) = TestServer::postgres("keys_never_reach_another_instance_on_postgres").await
    else {
        return;
    };
    keys_never_reach_another_instance(server).await;
}

#[tokio::test]
async fn revocation_takes_effect_at_once() {
    let server = TestServer::sqlite().await;
    let (key_id, key) = server.key_with_role("editor").await;
    let path = format!("/instances/{}/v1/instance", server.instance_id);
    // The first call verifies (and caches) the key; revocation must still win immediately.
    assert_eq!(
        server
            .call(Method::GET, &path, Some(&key), None)
            .await
            .status,
        StatusCode::OK
    );
    let revoke = server
        .call(
            Method::DELETE,
            &format!("/instances/{}/v1/keys/{key_id}", server.instance_id),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{}", revoke.text);
    let after = server.call(Method::GET, &path, Some(&key), None).await;
    assert_eq!(
        assert_error_shape(&after, StatusCode::UNAUTHORIZED),
        "unauthorized"
    );
    let again = server
        .call(
            Method::DELETE,
            &format!("/instances/{}/v1/keys/{key_id}", server.instance_id),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(
        assert_error_shape(&again, StatusCode::NOT_FOUND),
        "not_found"
    );
}

#[tokio::test]
async fn key_listing_never_shows_secrets_and_the_last_admin_stays() {
    let server = TestServer::sqlite().await;
    let (second_admin_id, second_admin) = server.key_with_role("admin").await;
    let listed = server
        .call(
            Method::GET,
            &format!("/instances/{}/v1/keys", server.instance_id),
            Some(&second_admin),
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(
        !listed.text.contains(&second_admin),
        "a secret leaked into the list"
    );
    assert!(
        !listed.text.contains("argon2"),
        "a hash leaked into the list"
    );
    let keys = listed.body["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|key| key.get("secret").is_none()));

    let bootstrap_id = keys
        .iter()
        .find(|key| key["id"] != second_admin_id.as_str())
        .expect("bootstrap key")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = |id: &str| format!("/instances/{}/v1/keys/{id}", server.instance_id);
    assert_eq!(
        server
            .call(
                Method::DELETE,
                &path(&bootstrap_id),
                Some(&second_admin),
                None
            )
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let last = server
        .call(
            Method::DELETE,
            &path(&second_admin_id),
            Some(&second_admin),
            None,
        )
        .await;
    assert_eq!(assert_error_shape(&last, StatusCode::CONFLICT), "conflict");
}

#[tokio::test]
async fn whoami_tells_the_key_its_instance_and_role() {
    let server = TestServer::sqlite().await;
    let (key_id, key) = server.key_with_role("ingest").await;
    let answer = server
        .call(Method::GET, "/v1/whoami", Some(&key), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["key_id"], key_id.as_str());
    assert_eq!(answer.body["instance_id"], server.instance_id.as_str());
    assert_eq!(answer.body["role"], "ingest");
    assert_eq!(answer.body["operator"], false);
}
