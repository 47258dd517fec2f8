//! Conformance cases of the findings and notification stores; `conformance_suite!` runs each on
//! SQLite and PostgreSQL.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use palisade_store::findings::{
    FindingStatus, NoteRecord, OccurrenceCursor, OccurrenceFilter, OccurrenceKey, OccurrenceRecord,
    ProviderQuery, StatusChange,
};
use palisade_store::notifications::{
    AttemptOutcome, DeliveryFilter, DeliveryState, NewDelivery, SigningKey,
};
use palisade_store::{Store, StoreError};
use serde_json::json;

use crate::two_instances;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
        + Duration::seconds(seconds)
}

fn note(account: &str, provider: &str, id: &str, kind: &str) -> NoteRecord {
    NoteRecord {
        account_id: account.to_owned(),
        provider_id: provider.to_owned(),
        id: id.to_owned(),
        kind: kind.to_owned(),
        body: json!({"id": id, "kind": kind, "short_description": "ü"}),
    }
}

fn occurrence(provider: &str, id: &str, severity: &str, resource: &str) -> OccurrenceRecord {
    OccurrenceRecord {
        account_id: "acct".to_owned(),
        provider_id: provider.to_owned(),
        id: id.to_owned(),
        note_provider_id: provider.to_owned(),
        note_id: "n1".to_owned(),
        kind: "FINDING".to_owned(),
        severity: Some(severity.to_owned()),
        certainty: Some("HIGH".to_owned()),
        resource: Some(resource.to_owned()),
        body: json!({"id": id, "finding": {"severity": severity}}),
    }
}

fn key(provider: &str, id: &str) -> OccurrenceKey {
    OccurrenceKey {
        account_id: "acct".to_owned(),
        provider_id: provider.to_owned(),
        id: id.to_owned(),
    }
}

pub async fn notes_and_providers_are_scoped(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let created = store
        .insert_note("a", &note("acct", "p1", "n1", "FINDING"), at(1))
        .await
        .expect("insert");
    assert_eq!((created.created_at, created.updated_at), (at(1), at(1)));
    assert!(matches!(
        store
            .insert_note("a", &note("acct", "p1", "n1", "KPI"), at(2))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Same ids in another account, provider or instance are other notes.
    for (instance, account, provider) in [
        ("a", "other", "p1"),
        ("a", "acct", "p2"),
        ("b", "acct", "p1"),
    ] {
        store
            .insert_note(instance, &note(account, provider, "n1", "FINDING"), at(1))
            .await
            .expect("independent note");
    }
    for id in ["n3", "n2"] {
        store
            .insert_note("a", &note("acct", "p1", id, "SECTION"), at(1))
            .await
            .expect("insert");
    }
    let mut changed = note("acct", "p1", "n1", "KPI");
    changed.body = json!({"changed": true});
    let updated = store
        .update_note("a", &changed, at(5))
        .await
        .expect("update");
    assert_eq!(
        (
            updated.record.kind.as_str(),
            updated.created_at,
            updated.updated_at
        ),
        ("KPI", at(1), at(5))
    );
    assert!(matches!(
        store
            .update_note("a", &note("acct", "p1", "missing", "KPI"), at(5))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let fetched = store
        .get_note("b", "acct", "p1", "n1")
        .await
        .expect("get")
        .expect("b's note");
    assert_eq!(fetched.record.kind, "FINDING", "b's copy is untouched");

    let first = store
        .list_notes("a", "acct", "p1", None, 2)
        .await
        .expect("page 1");
    let ids: Vec<&str> = first.iter().map(|n| n.record.id.as_str()).collect();
    assert_eq!(ids, ["n1", "n2"]);
    let rest = store
        .list_notes("a", "acct", "p1", Some("n2"), 10)
        .await
        .expect("page 2");
    assert_eq!(
        rest.iter()
            .map(|n| n.record.id.as_str())
            .collect::<Vec<_>>(),
        ["n3"]
    );

    // Providers were registered by the notes; paging and ranges are IBM's.
    store
        .register_provider("a", "acct", "p0", at(1))
        .await
        .expect("register");
    store
        .register_provider("a", "acct", "p0", at(2))
        .await
        .expect("registering twice is fine");
    let (all, total) = store
        .list_providers(
            "a",
            "acct",
            &ProviderQuery {
                limit: 10,
                ..ProviderQuery::default()
            },
        )
        .await
        .expect("providers");
    assert_eq!(total, 3);
    assert_eq!(
        all.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["p0", "p1", "p2"]
    );
    let (page, total) = store
        .list_providers(
            "a",
            "acct",
            &ProviderQuery {
                skip: 1,
                limit: 1,
                start_provider_id: Some("p1".into()),
                end_provider_id: Some("p2".into()),
            },
        )
        .await
        .expect("ranged providers");
    assert_eq!((page.len(), page[0].id.as_str(), total), (1, "p2", 2));
    let (b_providers, _) = store
        .list_providers(
            "b",
            "acct",
            &ProviderQuery {
                limit: 10,
                ..ProviderQuery::default()
            },
        )
        .await
        .expect("b providers");
    assert_eq!(b_providers.len(), 1);

    assert!(
        store
            .delete_note("a", "acct", "p1", "n1")
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_note("a", "acct", "p1", "n1")
            .await
            .expect("delete twice")
    );
    assert!(
        store
            .get_note("b", "acct", "p1", "n1")
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        store
            .insert_note("nowhere", &note("acct", "p1", "n1", "FINDING"), at(1))
            .await
            .is_err(),
        "a note of a missing instance"
    );
}

pub async fn occurrences_deduplicate_and_reopen(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let created = store
        .insert_occurrence("a", &occurrence("p", "o1", "HIGH", "r1"), at(1))
        .await
        .expect("insert");
    assert_eq!(
        (created.occurrence_count, created.status, created.first_seen),
        (1, FindingStatus::Open, at(1))
    );
    assert!(matches!(
        store
            .insert_occurrence("a", &occurrence("p", "o1", "HIGH", "r1"), at(2))
            .await,
        Err(StoreError::Conflict(_))
    ));

    // Reported again (twice in one batch, plus a new one): one row, counted, body of the last.
    let mut last = occurrence("p", "o1", "CRITICAL", "r1");
    last.body = json!({"latest": true});
    let outcomes = store
        .record_occurrences(
            "a",
            &[
                occurrence("p", "o1", "HIGH", "r1"),
                occurrence("p", "o2", "LOW", "r2"),
                last,
            ],
            at(10),
        )
        .await
        .expect("record");
    assert_eq!(outcomes.len(), 2);
    assert_eq!(
        (
            outcomes[0].id.as_str(),
            outcomes[0].occurrence_count,
            outcomes[0].created
        ),
        ("o1", 3, false)
    );
    assert_eq!(
        (
            outcomes[1].id.as_str(),
            outcomes[1].occurrence_count,
            outcomes[1].created
        ),
        ("o2", 1, true)
    );
    let merged = store
        .get_occurrence("a", &key("p", "o1"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (merged.first_seen, merged.last_seen, merged.occurrence_count),
        (at(1), at(10), 3)
    );
    assert_eq!(merged.record.severity.as_deref(), Some("CRITICAL"));
    assert_eq!(merged.record.body, json!({"latest": true}));
    assert_eq!(merged.opened_at, at(1), "still the same opening");

    // Resolved, then reported again: reopened, with a new opening.
    store
        .set_occurrence_status(
            "a",
            &[key("p", "o1")],
            &StatusChange {
                status: FindingStatus::Resolved,
                reason: Some("patched".into()),
                suppressed_until: None,
            },
            at(11),
        )
        .await
        .expect("resolve");
    let outcomes = store
        .record_occurrences("a", &[occurrence("p", "o1", "HIGH", "r1")], at(20))
        .await
        .expect("record again");
    assert_eq!(outcomes[0].status, FindingStatus::Open);
    let reopened = store
        .get_occurrence("a", &key("p", "o1"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (
            reopened.status,
            reopened.status_reason.clone(),
            reopened.opened_at
        ),
        (FindingStatus::Open, None, at(20))
    );

    // Suppressed until t=100: a report at t=30 keeps it suppressed, one at t=100 reopens it.
    store
        .set_occurrence_status(
            "a",
            &[key("p", "o2")],
            &StatusChange {
                status: FindingStatus::Suppressed,
                reason: Some("accepted risk".into()),
                suppressed_until: Some(at(100)),
            },
            at(21),
        )
        .await
        .expect("suppress");
    let outcomes = store
        .record_occurrences("a", &[occurrence("p", "o2", "LOW", "r2")], at(30))
        .await
        .expect("record");
    assert_eq!(outcomes[0].status, FindingStatus::Suppressed);
    let outcomes = store
        .record_occurrences("a", &[occurrence("p", "o2", "LOW", "r2")], at(100))
        .await
        .expect("record");
    assert_eq!(
        (outcomes[0].status, outcomes[0].occurrence_count),
        (FindingStatus::Open, 3)
    );

    // An update replaces the body without counting a report.
    let mut edited = occurrence("p", "o2", "MEDIUM", "r9");
    edited.body = json!({"edited": true});
    let updated = store
        .update_occurrence("a", &edited, at(101))
        .await
        .expect("update");
    assert_eq!(
        (updated.occurrence_count, updated.record.resource.as_deref()),
        (3, Some("r9"))
    );
    assert!(matches!(
        store
            .update_occurrence("a", &occurrence("p", "nope", "LOW", "r"), at(1))
            .await,
        Err(StoreError::NotFound(_))
    ));

    // Nothing of this is visible to instance b.
    assert!(
        store
            .get_occurrence("b", &key("p", "o1"))
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        !store
            .delete_occurrence("b", &key("p", "o1"))
            .await
            .expect("delete in b")
    );
    assert!(
        store
            .delete_occurrence("a", &key("p", "o1"))
            .await
            .expect("delete")
    );
    assert!(
        store
            .get_occurrence("a", &key("p", "o1"))
            .await
            .expect("get")
            .is_none()
    );
}

pub async fn large_batches_span_statements(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let batch: Vec<OccurrenceRecord> = (0..600)
        .map(|n| occurrence("bulk", &format!("o{n:04}"), "LOW", &format!("r{}", n % 7)))
        .collect();
    let outcomes = store
        .record_occurrences("a", &batch, at(1))
        .await
        .expect("record 600");
    assert_eq!(outcomes.len(), 600);
    assert!(outcomes.iter().all(|outcome| outcome.created));
    let outcomes = store
        .record_occurrences("a", &batch, at(2))
        .await
        .expect("record again");
    assert!(
        outcomes
            .iter()
            .all(|outcome| !outcome.created && outcome.occurrence_count == 2)
    );
    let filter = OccurrenceFilter {
        provider_ids: vec!["bulk".into()],
        ..OccurrenceFilter::default()
    };
    assert_eq!(
        store.count_occurrences("a", &filter).await.expect("count"),
        600
    );
    assert_eq!(
        store.count_occurrences("b", &filter).await.expect("count"),
        0
    );
}

pub async fn occurrence_listings_filter_and_page(store: Arc<dyn Store>) {
    two_instances(&store).await;
    // 30 occurrences over 3 providers, 3 severities, 5 resources and 30 distinct times.
    let severities = ["LOW", "HIGH", "CRITICAL"];
    for n in 0..30_i64 {
        let provider = ["posture", "network-insights", "partner"][(n % 3) as usize];
        let mut record = occurrence(
            provider,
            &format!("o{n:02}"),
            severities[(n / 3 % 3) as usize],
            &format!("r{}", n % 5),
        );
        if n % 10 == 9 {
            record.kind = "KPI".into();
            record.severity = None;
            record.note_id = "kpi".into();
        }
        store
            .record_occurrences("a", &[record], at(n))
            .await
            .expect("record");
    }
    store
        .record_occurrences("b", &[occurrence("posture", "ob", "HIGH", "r0")], at(5))
        .await
        .expect("record in b");

    // Pages of 7, newest first, cover everything exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<OccurrenceCursor> = None;
    loop {
        let page = store
            .query_occurrences("a", &OccurrenceFilter::default(), cursor.as_ref(), 7)
            .await
            .expect("page");
        if page.is_empty() {
            break;
        }
        let last = page.last().expect("non-empty");
        cursor = Some(OccurrenceCursor {
            last_seen: last.last_seen,
            seq: last.seq,
        });
        seen.extend(page.into_iter().map(|o| o.record.id));
    }
    let expected: Vec<String> = (0..30).rev().map(|n| format!("o{n:02}")).collect();
    assert_eq!(seen, expected);

    let ids = |occurrences: Vec<palisade_store::findings::StoredOccurrence>| -> Vec<String> {
        occurrences.into_iter().map(|o| o.record.id).collect()
    };
    let query = |filter: OccurrenceFilter| {
        let store = store.clone();
        async move {
            store
                .query_occurrences("a", &filter, None, 100)
                .await
                .expect("query")
        }
    };
    let by_provider = ids(query(OccurrenceFilter {
        provider_ids: vec!["posture".into()],
        ..OccurrenceFilter::default()
    })
    .await);
    assert_eq!(by_provider.len(), 10);
    assert!(by_provider.iter().all(|id| {
        let n: i64 = id[1..].parse().expect("number");
        n % 3 == 0
    }));
    let critical_on_r0 = ids(query(OccurrenceFilter {
        severities: vec!["CRITICAL".into()],
        resource: Some("r0".into()),
        ..OccurrenceFilter::default()
    })
    .await);
    // CRITICAL: n/3 % 3 == 2 → n in 6..9, 15..18, 24..27; r0: n % 5 == 0 → 15 and 25.
    assert_eq!(critical_on_r0, ["o25", "o15"]);
    let window = ids(query(OccurrenceFilter {
        since: Some(at(10)),
        until: Some(at(13)),
        ..OccurrenceFilter::default()
    })
    .await);
    assert_eq!(window, ["o12", "o11", "o10"]);
    let kpis = ids(query(OccurrenceFilter {
        kinds: vec!["KPI".into()],
        ..OccurrenceFilter::default()
    })
    .await);
    assert_eq!(kpis, ["o29", "o19", "o09"]);
    store
        .set_occurrence_status(
            "a",
            &[
                key("partner", "o02"),
                key("partner", "o05"),
                key("partner", "missing"),
            ],
            &StatusChange {
                status: FindingStatus::Acknowledged,
                reason: None,
                suppressed_until: None,
            },
            at(40),
        )
        .await
        .expect("acknowledge");
    let acknowledged = ids(query(OccurrenceFilter {
        statuses: vec![FindingStatus::Acknowledged],
        account_id: Some("acct".into()),
        ..OccurrenceFilter::default()
    })
    .await);
    assert_eq!(acknowledged, ["o05", "o02"]);

    // Per-provider and per-note listings page by id.
    let first = store
        .list_occurrences("a", "acct", "posture", None, 4)
        .await
        .expect("by provider");
    assert_eq!(ids(first), ["o00", "o03", "o06", "o09"]);
    let next = store
        .list_occurrences("a", "acct", "posture", Some("o09"), 2)
        .await
        .expect("next");
    assert_eq!(ids(next), ["o12", "o15"]);
    let kpi_note = store
        .list_note_occurrences("a", "acct", "posture", "kpi", None, 10)
        .await
        .expect("by note");
    assert_eq!(ids(kpi_note), ["o09"]);
    let o05 = store
        .get_occurrence("a", &key("partner", "o05"))
        .await
        .expect("get")
        .expect("exists");
    let note_page = store
        .list_note_occurrences("a", "acct", "partner", "n1", Some(o05.seq), 2)
        .await
        .expect("note page");
    assert_eq!(ids(note_page), ["o08", "o11"]);
}

pub async fn suppressions_expire_and_notifications_are_pending_once(store: Arc<dyn Store>) {
    two_instances(&store).await;
    let mut kpi = occurrence("p", "k1", "LOW", "r");
    kpi.kind = "KPI".into();
    store
        .record_occurrences("a", &[occurrence("p", "o1", "HIGH", "r1"), kpi], at(1))
        .await
        .expect("record");
    let pending = store.pending_notifications(10).await.expect("pending");
    assert_eq!(pending.len(), 1, "KPIs do not notify");
    assert_eq!(
        (
            pending[0].instance_id.as_str(),
            pending[0].occurrence.record.id.as_str()
        ),
        ("a", "o1")
    );
    // Clearing with a stale opening time leaves the mark; with the right one clears it.
    store
        .clear_pending_notification("a", &key("p", "o1"), at(0))
        .await
        .expect("stale clear");
    assert_eq!(
        store
            .pending_notifications(10)
            .await
            .expect("pending")
            .len(),
        1
    );
    store
        .clear_pending_notification("a", &key("p", "o1"), pending[0].occurrence.opened_at)
        .await
        .expect("clear");
    assert!(
        store
            .pending_notifications(10)
            .await
            .expect("pending")
            .is_empty()
    );
    // A repeat report does not notify again.
    store
        .record_occurrences("a", &[occurrence("p", "o1", "HIGH", "r1")], at(2))
        .await
        .expect("repeat");
    assert!(
        store
            .pending_notifications(10)
            .await
            .expect("pending")
            .is_empty()
    );

    store
        .set_occurrence_status(
            "a",
            &[key("p", "o1")],
            &StatusChange {
                status: FindingStatus::Suppressed,
                reason: Some("false positive".into()),
                suppressed_until: Some(at(50)),
            },
            at(3),
        )
        .await
        .expect("suppress");
    assert_eq!(store.expire_suppressions(at(49)).await.expect("sweep"), 0);
    assert_eq!(store.expire_suppressions(at(50)).await.expect("sweep"), 1);
    let reopened = store
        .get_occurrence("a", &key("p", "o1"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (
            reopened.status,
            reopened.suppressed_until,
            reopened.opened_at
        ),
        (FindingStatus::Open, None, at(50))
    );
    let pending = store.pending_notifications(10).await.expect("pending");
    assert_eq!(pending.len(), 1, "a reopening notifies");
}

pub async fn channels_and_signing_keys_are_scoped(store: Arc<dyn Store>) {
    two_instances(&store).await;
    for id in ["c1", "c2", "c3"] {
        store
            .insert_channel("a", "acct", id, &json!({"name": id}), at(1))
            .await
            .expect("insert");
    }
    assert!(matches!(
        store
            .insert_channel("a", "acct", "c1", &json!({}), at(1))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .insert_channel("b", "acct", "c1", &json!({"name": "b's"}), at(1))
        .await
        .expect("b's c1");
    let updated = store
        .update_channel("a", "acct", "c1", &json!({"name": "renamed"}), at(2))
        .await
        .expect("update");
    assert_eq!(
        (updated.body["name"].as_str(), updated.updated_at),
        (Some("renamed"), at(2))
    );
    assert!(matches!(
        store
            .update_channel("a", "acct", "missing", &json!({}), at(2))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .get_channel("b", "acct", "c1")
            .await
            .expect("get")
            .expect("exists")
            .body["name"],
        "b's"
    );
    let deleted = store
        .delete_channels("a", "acct", &["c1".into(), "c3".into(), "zz".into()])
        .await
        .expect("bulk delete");
    assert_eq!(deleted, ["c1", "c3"]);
    let left: Vec<String> = store
        .list_channels("a", "acct")
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, ["c2"]);
    assert_eq!(
        store.list_channels("b", "acct").await.expect("list").len(),
        1
    );

    assert!(store.get_signing_key("a").await.expect("get").is_none());
    let signing_key = SigningKey {
        private_key_pem: "private".into(),
        public_key_pem: "public".into(),
        created_at: at(1),
    };
    store
        .insert_signing_key("a", &signing_key)
        .await
        .expect("insert key");
    assert!(matches!(
        store.insert_signing_key("a", &signing_key).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.get_signing_key("a").await.expect("get"),
        Some(signing_key)
    );
    assert!(store.get_signing_key("b").await.expect("get").is_none());
}

fn delivery(id: &str, instance: &str, channel: &str, dedup: &str) -> NewDelivery {
    NewDelivery {
        id: id.to_owned(),
        instance_id: instance.to_owned(),
        account_id: "acct".to_owned(),
        channel_id: channel.to_owned(),
        dedup_key: dedup.to_owned(),
        payload: json!({"finding": dedup}),
    }
}

pub async fn deliveries_queue_lease_retry_and_log(store: Arc<dyn Store>) {
    two_instances(&store).await;
    assert!(
        store
            .enqueue_delivery(&delivery("d1", "a", "c1", "o1@t1"), at(1), at(1))
            .await
            .expect("enqueue")
    );
    assert!(
        !store
            .enqueue_delivery(&delivery("d1-again", "a", "c1", "o1@t1"), at(2), at(2))
            .await
            .expect("enqueue duplicate"),
        "the same alert to the same channel is queued once"
    );
    assert!(
        store
            .enqueue_delivery(&delivery("d2", "a", "c2", "o1@t1"), at(2), at(2))
            .await
            .expect("other channel")
    );
    assert!(
        store
            .enqueue_delivery(&delivery("d3", "b", "c1", "o1@t1"), at(3), at(3))
            .await
            .expect("other instance")
    );

    // Only due deliveries are claimed, and a claimed one is leased.
    let claimed = store
        .claim_due_deliveries(at(2), at(62), 10)
        .await
        .expect("claim");
    let claimed_ids: Vec<&str> = claimed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(claimed_ids, ["d1", "d2"]);
    assert!(
        store
            .claim_due_deliveries(at(2), at(62), 10)
            .await
            .expect("claim again")
            .is_empty(),
        "leased deliveries are not claimed twice"
    );

    store
        .record_delivery_attempt(
            "d1",
            &AttemptOutcome::Retry {
                error: "HTTP 503".into(),
                next_attempt_at: at(30),
            },
            at(5),
        )
        .await
        .expect("retry");
    store
        .record_delivery_attempt("d2", &AttemptOutcome::Delivered, at(5))
        .await
        .expect("delivered");
    let retried = store
        .claim_due_deliveries(at(30), at(90), 10)
        .await
        .expect("claim at 30");
    let retried_ids: Vec<&str> = retried.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(retried_ids, ["d3", "d1"], "due order");
    assert_eq!(
        (retried[1].attempts, retried[1].last_error.as_deref()),
        (1, Some("HTTP 503"))
    );
    store
        .record_delivery_attempt(
            "d1",
            &AttemptOutcome::Failed {
                error: "gave up".into(),
            },
            at(31),
        )
        .await
        .expect("failed");
    assert!(matches!(
        store
            .record_delivery_attempt("missing", &AttemptOutcome::Delivered, at(31))
            .await,
        Err(StoreError::NotFound(_))
    ));

    let log = store
        .list_deliveries("a", &DeliveryFilter::default(), None, 10)
        .await
        .expect("log");
    let states: Vec<(&str, DeliveryState, i64)> = log
        .iter()
        .map(|d| (d.id.as_str(), d.state, d.attempts))
        .collect();
    assert_eq!(
        states,
        [
            ("d2", DeliveryState::Delivered, 1),
            ("d1", DeliveryState::Failed, 2)
        ]
    );
    assert_eq!(log[0].delivered_at, Some(at(5)));
    let failed = store
        .list_deliveries(
            "a",
            &DeliveryFilter {
                state: Some(DeliveryState::Failed),
                channel_id: Some("c1".into()),
                ..DeliveryFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("failed only");
    assert_eq!(failed.len(), 1);
    let second_page = store
        .list_deliveries(
            "a",
            &DeliveryFilter::default(),
            Some((log[0].created_at, log[0].id.clone())),
            10,
        )
        .await
        .expect("page 2");
    assert_eq!(
        second_page
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>(),
        ["d1"]
    );
    assert!(store.get_delivery("b", "d1").await.expect("get").is_none());
    assert_eq!(
        store
            .get_delivery("a", "d1")
            .await
            .expect("get")
            .map(|d| d.payload),
        Some(json!({"finding": "o1@t1"}))
    );
}
