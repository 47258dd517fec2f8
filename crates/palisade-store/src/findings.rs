//! Findings in the Grafeas model of IBM's Findings v1: providers, notes and occurrences, plus the
//! lifecycle a security team works with (status, deduplication, first/last seen).
//!
//! The API layer validates and shapes the JSON bodies; the store keeps them and the columns that
//! listings filter on (provider, note, severity, status, resource, times), each with an index so a
//! filtered page stays fast with millions of occurrences.
//!
//! **Deduplication**: an occurrence is identified by (account, provider, occurrence id). Reporting
//! the same identity again through [`FindingsStore::record_occurrences`] does not add a row: it
//! raises `occurrence_count`, moves `last_seen`, replaces the body, and reopens a finding that was
//! resolved or whose suppression has expired. Sources that want repeated detections merged derive
//! the id from what makes two detections "the same" (the server's `service::findings` does).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// Where a finding stands in a security team's workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    /// New or reopened; needs attention.
    Open,
    /// Someone has seen it and owns it.
    Acknowledged,
    /// Fixed; reopens if it is reported again.
    Resolved,
    /// Accepted or a false positive, with a reason; reopens when `suppressed_until` passes.
    Suppressed,
}

impl FindingStatus {
    /// Every status, for tables and validation messages.
    pub const ALL: [FindingStatus; 4] = [
        FindingStatus::Open,
        FindingStatus::Acknowledged,
        FindingStatus::Resolved,
        FindingStatus::Suppressed,
    ];

    /// Returns the status's wire and column name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::Acknowledged => "acknowledged",
            FindingStatus::Resolved => "resolved",
            FindingStatus::Suppressed => "suppressed",
        }
    }
}

impl std::fmt::Display for FindingStatus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl std::str::FromStr for FindingStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        FindingStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown status `{text}`; expected one of open, acknowledged, resolved, suppressed"
                )
            })
    }
}

/// A provider as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProvider {
    pub account_id: String,
    pub id: String,
    pub created_at: DateTime<Utc>,
}

/// Which page of providers to list (IBM's `skip` / `limit` / `start_provider_id` / `end_provider_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderQuery {
    pub skip: u64,
    pub limit: u32,
    /// First provider id included, in id order.
    pub start_provider_id: Option<String>,
    /// Last provider id included, in id order.
    pub end_provider_id: Option<String>,
}

/// A note to store: identity, kind and the validated JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteRecord {
    pub account_id: String,
    pub provider_id: String,
    pub id: String,
    /// `FINDING`, `KPI`, `CARD`, `CARD_CONFIGURED` or `SECTION`.
    pub kind: String,
    pub body: serde_json::Value,
}

/// A stored note.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNote {
    pub record: NoteRecord,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An occurrence to store: identity, the columns listings filter on, and the JSON body.
/// Serialisable: in scaled mode it travels on the ingest bus before it is stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OccurrenceRecord {
    pub account_id: String,
    pub provider_id: String,
    pub id: String,
    /// The provider of the note this occurrence is of (usually, not always, `provider_id`).
    pub note_provider_id: String,
    pub note_id: String,
    /// `FINDING` or `KPI`.
    pub kind: String,
    /// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`; `None` for KPIs.
    pub severity: Option<String>,
    pub certainty: Option<String>,
    /// The resource it is about (CRN, id or URL), for filtering.
    pub resource: Option<String>,
    pub body: serde_json::Value,
}

/// A stored occurrence with its lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOccurrence {
    pub record: OccurrenceRecord,
    /// Insertion order, unique; the tie-break of time-ordered listings.
    pub seq: i64,
    pub status: FindingStatus,
    pub status_reason: Option<String>,
    pub suppressed_until: Option<DateTime<Utc>>,
    /// How many times this finding was reported.
    pub occurrence_count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// When the finding was last created or reopened: notifications are per (finding, opening).
    pub opened_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StoredOccurrence {
    /// Returns the status as a reader should see it at `now`: a suppression that has expired
    /// reads as open even before the sweep rewrites it.
    pub fn effective_status(&self, now: DateTime<Utc>) -> FindingStatus {
        match (self.status, self.suppressed_until) {
            (FindingStatus::Suppressed, Some(until)) if until <= now => FindingStatus::Open,
            (status, _) => status,
        }
    }
}

/// What [`FindingsStore::record_occurrences`] did with one occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOutcome {
    pub account_id: String,
    pub provider_id: String,
    pub id: String,
    /// The count after this report.
    pub occurrence_count: i64,
    pub status: FindingStatus,
    /// True when the row was created by this call.
    pub created: bool,
}

/// Identifies one occurrence in an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OccurrenceKey {
    pub account_id: String,
    pub provider_id: String,
    pub id: String,
}

/// A lifecycle change applied to occurrences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub status: FindingStatus,
    /// Required by the API for `suppressed`; kept for any status as the last word on it.
    pub reason: Option<String>,
    /// Only for `suppressed`: when the suppression ends.
    pub suppressed_until: Option<DateTime<Utc>>,
}

/// Filters of the lifecycle listing and the exports; empty vectors mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OccurrenceFilter {
    pub account_id: Option<String>,
    pub provider_ids: Vec<String>,
    /// With `note_id`: the provider of the note (occurrences may be of another provider's note).
    pub note_provider_id: Option<String>,
    pub note_id: Option<String>,
    pub kinds: Vec<String>,
    pub severities: Vec<String>,
    pub statuses: Vec<FindingStatus>,
    pub resource: Option<String>,
    /// `last_seen >= since`.
    pub since: Option<DateTime<Utc>>,
    /// `last_seen < until`.
    pub until: Option<DateTime<Utc>>,
}

/// Position in a time-ordered listing (newest `last_seen` first): the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceCursor {
    pub last_seen: DateTime<Utc>,
    pub seq: i64,
}

/// An occurrence whose notification is pending, with the instance it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingNotification {
    pub instance_id: String,
    pub occurrence: StoredOccurrence,
}

/// Providers, notes and occurrences.
#[async_trait]
pub trait FindingsStore {
    /// Registers a provider if it is not registered yet.
    async fn register_provider(
        &self,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Lists an account's providers in id order, with the total count the filter matches.
    async fn list_providers(
        &self,
        instance_id: &str,
        account_id: &str,
        query: &ProviderQuery,
    ) -> StoreResult<(Vec<StoredProvider>, u64)>;

    /// Stores a new note (registering its provider); `Conflict` if the id is taken.
    async fn insert_note(
        &self,
        instance_id: &str,
        note: &NoteRecord,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredNote>;
    /// Replaces an existing note's kind and body; `NotFound` if absent.
    async fn update_note(
        &self,
        instance_id: &str,
        note: &NoteRecord,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredNote>;
    /// Returns one note.
    async fn get_note(
        &self,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        note_id: &str,
    ) -> StoreResult<Option<StoredNote>>;
    /// Deletes a note; false if absent. Its occurrences stay (as in Grafeas).
    async fn delete_note(
        &self,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        note_id: &str,
    ) -> StoreResult<bool>;
    /// Lists a provider's notes with ids greater than `after`, in id order.
    async fn list_notes(
        &self,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<StoredNote>>;

    /// Stores a new occurrence (count 1, open); `Conflict` if its id is taken.
    async fn insert_occurrence(
        &self,
        instance_id: &str,
        occurrence: &OccurrenceRecord,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredOccurrence>;
    /// Records a batch of occurrences in one transaction, deduplicating by identity: new ones
    /// are created, known ones counted again (see the module docs). Returns one outcome per
    /// distinct identity, in first-appearance order.
    async fn record_occurrences(
        &self,
        instance_id: &str,
        occurrences: &[OccurrenceRecord],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<RecordOutcome>>;
    /// Replaces an existing occurrence's note, kind, columns and body without counting a new
    /// report; `NotFound` if absent.
    async fn update_occurrence(
        &self,
        instance_id: &str,
        occurrence: &OccurrenceRecord,
        at: DateTime<Utc>,
    ) -> StoreResult<StoredOccurrence>;
    /// Returns one occurrence.
    async fn get_occurrence(
        &self,
        instance_id: &str,
        key: &OccurrenceKey,
    ) -> StoreResult<Option<StoredOccurrence>>;
    /// Deletes an occurrence; false if absent.
    async fn delete_occurrence(&self, instance_id: &str, key: &OccurrenceKey) -> StoreResult<bool>;
    /// Lists a provider's occurrences with ids greater than `after`, in id order.
    async fn list_occurrences(
        &self,
        instance_id: &str,
        account_id: &str,
        provider_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<StoredOccurrence>>;
    /// Lists the occurrences of one note (from any provider of the account) in the order they
    /// were first recorded, after the one whose `seq` is `after_seq`. (Insertion order rather
    /// than id order keeps this index append-only, which ingest speed depends on.)
    async fn list_note_occurrences(
        &self,
        instance_id: &str,
        account_id: &str,
        note_provider_id: &str,
        note_id: &str,
        after_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredOccurrence>>;
    /// Lists occurrences newest `last_seen` first, filtered, after a cursor.
    async fn query_occurrences(
        &self,
        instance_id: &str,
        filter: &OccurrenceFilter,
        after: Option<&OccurrenceCursor>,
        limit: u32,
    ) -> StoreResult<Vec<StoredOccurrence>>;
    /// Counts occurrences matching a filter.
    async fn count_occurrences(
        &self,
        instance_id: &str,
        filter: &OccurrenceFilter,
    ) -> StoreResult<u64>;
    /// Applies a status change to occurrences; returns the keys that exist and were changed.
    async fn set_occurrence_status(
        &self,
        instance_id: &str,
        keys: &[OccurrenceKey],
        change: &StatusChange,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<OccurrenceKey>>;
    /// Reopens suppressed findings (of every instance) whose suppression ended by `now`, marking
    /// them for notification; returns how many.
    async fn expire_suppressions(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Returns up to `limit` occurrences (of every instance) whose notification is pending.
    async fn pending_notifications(&self, limit: u32) -> StoreResult<Vec<PendingNotification>>;
    /// Clears the pending-notification mark of one occurrence once its deliveries are queued,
    /// unless it was reopened again since `opened_at` (then the next pass sees the new opening).
    async fn clear_pending_notification(
        &self,
        instance_id: &str,
        key: &OccurrenceKey,
        opened_at: DateTime<Utc>,
    ) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in FindingStatus::ALL {
            assert_eq!(status.as_str().parse::<FindingStatus>(), Ok(status));
        }
        assert!("closed".parse::<FindingStatus>().is_err());
    }

    #[test]
    fn an_expired_suppression_reads_as_open() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .expect("valid")
                .with_timezone(&Utc)
        };
        let mut occurrence = StoredOccurrence {
            record: OccurrenceRecord {
                account_id: "a".into(),
                provider_id: "p".into(),
                id: "o".into(),
                note_provider_id: "p".into(),
                note_id: "n".into(),
                kind: "FINDING".into(),
                severity: None,
                certainty: None,
                resource: None,
                body: serde_json::json!({}),
            },
            seq: 1,
            status: FindingStatus::Suppressed,
            status_reason: Some("accepted risk".into()),
            suppressed_until: Some(at("2026-02-01T00:00:00Z")),
            occurrence_count: 1,
            first_seen: at("2026-01-01T00:00:00Z"),
            last_seen: at("2026-01-01T00:00:00Z"),
            opened_at: at("2026-01-01T00:00:00Z"),
            created_at: at("2026-01-01T00:00:00Z"),
            updated_at: at("2026-01-01T00:00:00Z"),
        };
        assert_eq!(
            occurrence.effective_status(at("2026-01-15T00:00:00Z")),
            FindingStatus::Suppressed
        );
        assert_eq!(
            occurrence.effective_status(at("2026-02-01T00:00:00Z")),
            FindingStatus::Open
        );
        occurrence.suppressed_until = None;
        assert_eq!(
            occurrence.effective_status(at("2030-01-01T00:00:00Z")),
            FindingStatus::Suppressed
        );
    }
}
