//! The storage conformance suite. Every case runs against both backends through
//! `conformance_suite!`; a behaviour one backend has and the other lacks fails here.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use palisade_model::tenancy::{ApiKey, Instance, Role};
use palisade_store::{DocumentQuery, Store, StoreError, StoredKey};
use serde_json::json;

use crate::collectors::{
    collectors_register_once_and_revoke_on_delete_issue_5,
    inventory_batches_apply_exactly_once_issue_5,
};
use crate::decisions::decisions_are_logged_filtered_paged_and_scoped;
use crate::findings::{
    channels_and_signing_keys_are_scoped, deliveries_queue_lease_retry_and_log,
    large_batches_span_statements, notes_and_providers_are_scoped,
    occurrence_listings_filter_and_page, occurrences_deduplicate_and_reopen,
    suppressions_expire_and_notifications_are_pending_once,
};
use crate::insights::{
    bus_batches_are_claimed_exactly_once_issue_11, ingest_batches_complete_exactly_once,
    intel_feeds_are_replaced_and_scoped,
};
use crate::scans::scan_shards_complete_once_and_assemble_atomically_issue_11;
use crate::sessions::{
    report_summaries_list_without_rollups, sessions_expire_sign_out_and_end_with_their_key,
};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

fn instance(id: &str) -> Instance {
    Instance {
        id: id.to_owned(),
        name: format!("{id} name"),
        created_at: at(0),
    }
}

fn key(id: &str, instance_id: &str, role: Role) -> StoredKey {
    StoredKey {
        key: ApiKey {
            id: id.to_owned(),
            instance_id: instance_id.to_owned(),
            name: format!("{id} key"),
            role,
            operator: false,
            created_at: at(1),
            revoked_at: None,
        },
        secret_hash: format!("$argon2id$fake${id}"),
    }
}

async fn instances_round_trip(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
    store
        .create_instance(&instance("a"))
        .await
        .expect("create a");
    store
        .create_instance(&instance("b"))
        .await
        .expect("create b");
    assert!(matches!(
        store.create_instance(&instance("a")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.get_instance("a").await.expect("get"),
        Some(instance("a"))
    );
    assert_eq!(store.get_instance("missing").await.expect("get"), None);
    let ids: Vec<String> = store
        .list_instances()
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
}

async fn keys_are_scoped_and_revocable(store: Arc<dyn Store>) {
    store
        .create_instance(&instance("a"))
        .await
        .expect("create a");
    store
        .create_instance(&instance("b"))
        .await
        .expect("create b");
    store
        .create_key(&key("k1", "a", Role::Admin))
        .await
        .expect("k1");
    store
        .create_key(&key("k2", "a", Role::Viewer))
        .await
        .expect("k2");
    store
        .create_key(&key("k3", "b", Role::Admin))
        .await
        .expect("k3");
    assert!(matches!(
        store.create_key(&key("k1", "a", Role::Admin)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .create_key(&key("k4", "nowhere", Role::Admin))
            .await
            .is_err(),
        "key of a missing instance"
    );

    let found = store
        .find_key("k2")
        .await
        .expect("find")
        .expect("k2 exists");
    assert_eq!(found, key("k2", "a", Role::Viewer));
    let listed: Vec<String> = store
        .list_keys("a")
        .await
        .expect("list")
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, ["k1", "k2"]);
    assert_eq!(
        store
            .count_active_keys("a", Role::Admin)
            .await
            .expect("count"),
        1
    );

    assert!(
        !store
            .revoke_key("b", "k1", at(5))
            .await
            .expect("revoke across instances"),
        "b cannot revoke a's key"
    );
    assert!(store.revoke_key("a", "k1", at(5)).await.expect("revoke"));
    assert!(
        !store
            .revoke_key("a", "k1", at(6))
            .await
            .expect("revoke twice"),
        "already revoked"
    );
    let revoked = store.find_key("k1").await.expect("find").expect("k1 kept");
    assert_eq!(revoked.key.revoked_at, Some(at(5)));
    assert_eq!(
        store
            .count_active_keys("a", Role::Admin)
            .await
            .expect("count"),
        0
    );
}

async fn documents_are_versioned_and_scoped(store: Arc<dyn Store>) {
    store
        .create_instance(&instance("a"))
        .await
        .expect("create a");
    store
        .create_instance(&instance("b"))
        .await
        .expect("create b");
    let body = json!({"name": "cis", "controls": [1, 2, {"nested": "ü"}]});
    let created = store
        .insert_document("a", "profile", "p1", &body, at(1))
        .await
        .expect("insert");
    assert_eq!(created.version, 1);
    assert!(matches!(
        store
            .insert_document("a", "profile", "p1", &body, at(1))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Same id in another instance or kind is another object.
    store
        .insert_document("b", "profile", "p1", &json!({"other": true}), at(1))
        .await
        .expect("b/p1");
    store
        .insert_document("a", "scope", "p1", &json!({"scope": true}), at(1))
        .await
        .expect("a/scope/p1");
    assert!(
        store
            .insert_document("nowhere", "profile", "p1", &body, at(1))
            .await
            .is_err()
    );

    let fetched = store
        .get_document("a", "profile", "p1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(fetched.body, body);
    assert_eq!((fetched.created_at, fetched.updated_at), (at(1), at(1)));

    let updated = store
        .update_document(
            "a",
            "profile",
            "p1",
            &json!({"name": "cis v2"}),
            Some(1),
            at(2),
        )
        .await
        .expect("update at version 1");
    assert_eq!(
        (updated.version, updated.created_at, updated.updated_at),
        (2, at(1), at(2))
    );
    match store
        .update_document("a", "profile", "p1", &json!({}), Some(1), at(3))
        .await
    {
        Err(StoreError::VersionMismatch {
            expected: 1,
            current: 2,
        }) => {}
        other => panic!("stale If-Match must fail, got {other:?}"),
    }
    let unconditional = store
        .update_document("a", "profile", "p1", &json!({"n": 3}), None, at(3))
        .await;
    assert_eq!(unconditional.expect("update without If-Match").version, 3);
    assert!(matches!(
        store
            .update_document("a", "profile", "missing", &json!({}), None, at(3))
            .await,
        Err(StoreError::NotFound(_))
    ));
    // b's copy is untouched.
    let other = store
        .get_document("b", "profile", "p1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((other.version, other.body), (1, json!({"other": true})));

    assert!(
        !store
            .delete_document("b", "profile", "missing")
            .await
            .expect("delete missing")
    );
    assert!(
        store
            .delete_document("a", "profile", "p1")
            .await
            .expect("delete")
    );
    assert_eq!(
        store.get_document("a", "profile", "p1").await.expect("get"),
        None
    );
    assert!(
        store
            .get_document("b", "profile", "p1")
            .await
            .expect("get")
            .is_some(),
        "b's p1 survives"
    );
}

async fn documents_page_in_id_order(store: Arc<dyn Store>) {
    store
        .create_instance(&instance("a"))
        .await
        .expect("create a");
    for id in ["d", "b", "e", "a", "c"] {
        store
            .insert_document("a", "rule", id, &json!({"id": id}), at(1))
            .await
            .expect("insert");
    }
    store
        .insert_document("a", "other", "z", &json!({}), at(1))
        .await
        .expect("insert other kind");
    let first = store
        .list_documents("a", "rule", &DocumentQuery::default().with_limit(2))
        .await
        .expect("page 1");
    assert_eq!(
        first.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let rest = store
        .list_documents(
            "a",
            "rule",
            &DocumentQuery::default().with_after("b").with_limit(10),
        )
        .await
        .expect("page 2");
    assert_eq!(
        rest.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["c", "d", "e"]
    );
    assert_eq!(store.count_documents("a", "rule").await.expect("count"), 5);
    assert_eq!(
        store.count_documents("a", "missing").await.expect("count"),
        0
    );
}

async fn reopening_keeps_everything(url: String) {
    {
        let store = palisade_store::connect(&url).await.expect("open");
        store.create_instance(&instance("a")).await.expect("create");
        store
            .create_key(&key("k1", "a", Role::Editor))
            .await
            .expect("key");
        store
            .insert_document("a", "scope", "s1", &json!({"x": 1}), at(1))
            .await
            .expect("doc");
    }
    // A second open applies no migration twice and sees every object.
    let store = palisade_store::connect(&url).await.expect("reopen");
    assert!(store.get_instance("a").await.expect("get").is_some());
    assert_eq!(
        store
            .find_key("k1")
            .await
            .expect("find")
            .map(|k| k.key.role),
        Some(Role::Editor)
    );
    assert!(
        store
            .get_document("a", "scope", "s1")
            .await
            .expect("get")
            .is_some()
    );
}

async fn concurrent_updates_with_the_same_version_have_one_winner(store: Arc<dyn Store>) {
    store
        .create_instance(&instance("a"))
        .await
        .expect("create a");
    store
        .insert_document("a", "profile", "p", &json!({}), at(1))
        .await
        .expect("insert");
    let attempts = (0..8).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .update_document("a", "profile", "p", &json!({"n": n}), Some(1), at(2))
                .await
        })
    });
    let mut winners = 0;
    for attempt in attempts {
        match attempt.await.expect("join") {
            Ok(_) => winners += 1,
            Err(StoreError::VersionMismatch { .. }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners, 1);
}

/// Generates, for each case, one test per backend.
macro_rules! conformance_suite {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let directory = tempfile::tempdir().expect("tempdir");
                    let store = palisade_store::connect(&fresh_sqlite_url(directory.path())).await.expect("open sqlite");
                    super::$case(store).await;
                }
            )+

            #[tokio::test]
            async fn reopening_keeps_everything() {
                let directory = tempfile::tempdir().expect("tempdir");
                super::reopening_keeps_everything(fresh_sqlite_url(directory.path())).await;
            }

            use palisade_store::testsuite::fresh_sqlite_url;
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(url) = fresh_postgres_url(stringify!($case)).await else { return };
                    let store = palisade_store::connect(&url).await.expect("open postgres");
                    super::$case(store).await;
                }
            )+

            #[tokio::test]
            async fn reopening_keeps_everything() {
                let Some(url) = fresh_postgres_url("reopening_keeps_everything").await else { return };
                super::reopening_keeps_everything(url).await;
            }

            use palisade_store::testsuite::fresh_postgres_url;
        }
    };
}

use crate::inventory::{
    inventory_filters_by_envelope_and_tags, inventory_pushes_are_idempotent_and_never_roll_back,
    rejected_records_are_quarantined, reports_and_evaluations_page_and_filter,
};

conformance_suite!(
    inventory_pushes_are_idempotent_and_never_roll_back,
    inventory_filters_by_envelope_and_tags,
    rejected_records_are_quarantined,
    reports_and_evaluations_page_and_filter,
    instances_round_trip,
    keys_are_scoped_and_revocable,
    documents_are_versioned_and_scoped,
    documents_page_in_id_order,
    concurrent_updates_with_the_same_version_have_one_winner,
    notes_and_providers_are_scoped,
    occurrences_deduplicate_and_reopen,
    large_batches_span_statements,
    occurrence_listings_filter_and_page,
    suppressions_expire_and_notifications_are_pending_once,
    channels_and_signing_keys_are_scoped,
    deliveries_queue_lease_retry_and_log,
    ingest_batches_complete_exactly_once,
    bus_batches_are_claimed_exactly_once_issue_11,
    intel_feeds_are_replaced_and_scoped,
    decisions_are_logged_filtered_paged_and_scoped,
    inventory_batches_apply_exactly_once_issue_5,
    collectors_register_once_and_revoke_on_delete_issue_5,
    sessions_expire_sign_out_and_end_with_their_key,
    report_summaries_list_without_rollups,
    scan_shards_complete_once_and_assemble_atomically_issue_11,
);
