//! Dashboard sessions and report summaries (store migration 8), run on both backends by the
//! conformance suite.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use palisade_store::{Store, StoreError, StoredReport, StoredSession};
use serde_json::json;

use crate::two_instances;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

fn session(instance_id: &str, key_id: &str, expires_in: i64) -> StoredSession {
    StoredSession {
        instance_id: instance_id.into(),
        key_id: key_id.into(),
        csrf: format!("csrf-{key_id}-{expires_in}"),
        created_at: at(0),
        expires_at: at(expires_in),
    }
}

pub async fn sessions_expire_sign_out_and_end_with_their_key(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let alice = session("a", "key-alice", 3600);
    store
        .create_session("hash-1", &alice)
        .await
        .expect("create");
    assert!(matches!(
        store.create_session("hash-1", &alice).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .create_session("hash-x", &session("nowhere", "k", 60))
            .await
            .is_err(),
        "a session of an instance that does not exist is refused"
    );
    assert_eq!(
        store.find_session("hash-1", at(10)).await.expect("find"),
        Some(alice.clone())
    );
    // Expired at its expiry instant, and purged from then on.
    assert_eq!(
        store.find_session("hash-1", at(3600)).await.expect("find"),
        None
    );
    assert_eq!(
        store.find_session("unknown", at(10)).await.expect("find"),
        None
    );

    // Sign-out removes one session.
    store
        .create_session("hash-2", &session("a", "key-alice", 7200))
        .await
        .expect("create");
    assert!(store.delete_session("hash-2").await.expect("delete"));
    assert!(!store.delete_session("hash-2").await.expect("delete again"));
    assert_eq!(
        store.find_session("hash-2", at(10)).await.expect("find"),
        None
    );

    // Revoking a key ends all of its sessions, in its instance only.
    for (hash, instance, key) in [
        ("hash-3", "a", "key-bob"),
        ("hash-4", "a", "key-bob"),
        ("hash-5", "b", "key-bob"),
    ] {
        store
            .create_session(hash, &session(instance, key, 7200))
            .await
            .expect("create");
    }
    assert_eq!(
        store
            .delete_key_sessions("a", "key-bob")
            .await
            .expect("delete"),
        2
    );
    assert_eq!(
        store.find_session("hash-3", at(10)).await.expect("find"),
        None
    );
    assert!(
        store
            .find_session("hash-5", at(10))
            .await
            .expect("find")
            .is_some()
    );
    assert!(
        store
            .find_session("hash-1", at(10))
            .await
            .expect("find")
            .is_some()
    );

    // Purging drops what expired and keeps the rest.
    assert_eq!(
        store.purge_expired_sessions(at(3600)).await.expect("purge"),
        1
    );
    assert!(
        store
            .find_session("hash-5", at(10))
            .await
            .expect("find")
            .is_some()
    );
}

pub async fn report_summaries_list_without_rollups(store: Arc<dyn Store>) {
    two_instances(&store).await;
    for (id, attachment, seconds, passed) in [
        ("r1", "att", 10, 3),
        ("r2", "att", 20, 4),
        ("r3", "other", 30, 1),
    ] {
        store
            .put_report(
                "a",
                &StoredReport {
                    id: id.into(),
                    attachment_id: attachment.into(),
                    profile_id: "p".into(),
                    scan_type: "scheduled".into(),
                    created_on: at(seconds),
                    body: json!({"rollup": {
                        "score": {"passed": passed, "total_count": 4, "percent": 75},
                        "controls_summary": {"stats": {"not_compliant_count": 4 - passed}},
                        "evaluations_summary": {"total_count": 5},
                        "controls": [],
                    }}),
                },
            )
            .await
            .expect("report");
    }
    let listed = store
        .list_report_summaries("a", Some("att"), 10)
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r2", "r1"],
        "newest first, one attachment"
    );
    assert_eq!(listed[0].passed, 4);
    assert_eq!(listed[0].scored, 4);
    assert_eq!(listed[0].controls_failing, 0);
    assert_eq!(listed[0].evaluations, 5);
    assert_eq!(listed[0].score_percent(), Some(100.0));
    assert_eq!(listed[1].score_percent(), Some(75.0));
    assert_eq!(listed[1].created_on, at(10));
    assert_eq!(listed[1].scan_type, "scheduled");
    let all = store
        .list_report_summaries("a", None, 2)
        .await
        .expect("list");
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r3", "r2"]
    );
    // Replacing a report replaces its summary too.
    let mut replaced = store.get_report("a", "r1").await.expect("get").expect("r1");
    replaced.body["rollup"]["score"]["passed"] = json!(0);
    store.put_report("a", &replaced).await.expect("replace");
    let listed = store
        .list_report_summaries("a", Some("att"), 10)
        .await
        .expect("list");
    assert_eq!(listed[1].passed, 0);
    // A roll-up without counts (an old or foreign body) lists as zeros, never as an error.
    store
        .put_report(
            "a",
            &StoredReport {
                id: "bare".into(),
                attachment_id: "bare".into(),
                profile_id: "p".into(),
                scan_type: "ondemand".into(),
                created_on: at(40),
                body: json!({}),
            },
        )
        .await
        .expect("bare report");
    let bare = store
        .list_report_summaries("a", Some("bare"), 10)
        .await
        .expect("list");
    assert_eq!(bare[0].score_percent(), None);
    assert!(
        store
            .list_report_summaries("b", None, 10)
            .await
            .expect("list b")
            .is_empty(),
        "another instance sees none"
    );
}
