//! Findings: validation against notes, recording with deduplication, the lifecycle, and the
//! shapes findings leave in (IBM JSON, OCSF) and arrive in (IBM JSON, AWS Security Hub ASFF).
//!
//! Palisade's own sources are providers like any partner tool: posture scans report under
//! [`POSTURE_PROVIDER`], activity insights under [`ACTIVITY_INSIGHTS_PROVIDER`] and network insights
//! under [`NETWORK_INSIGHTS_PROVIDER`], through [`record_occurrences`], so one query lists
//! everything and one notification pipeline alerts on everything.

pub mod asff;
pub mod cards;
pub mod graph;
pub mod model;
pub mod ocsf;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use palisade_model::error::{ErrorCode, ErrorItem, ErrorTarget};
use palisade_store::Store;
use palisade_store::findings::{
    FindingStatus, NoteRecord, OccurrenceRecord, RecordOutcome, StoredNote, StoredOccurrence,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use self::model::{ApiNote, ApiOccurrence, NoteName, validate_note, validate_occurrence};
use crate::error::{ApiError, ApiResult};

/// The provider of posture scan results (OCSF class Compliance Finding).
pub const POSTURE_PROVIDER: &str = "posture";
/// The provider of activity insights detections (OCSF class Detection Finding).
pub const ACTIVITY_INSIGHTS_PROVIDER: &str = "activity-insights";
/// The provider of network insights detections (OCSF class Detection Finding).
pub const NETWORK_INSIGHTS_PROVIDER: &str = "network-insights";

/// Formats a time as the API shows it (RFC 3339, UTC, milliseconds).
pub fn wire_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Turns validation problems into one 400 answer listing them all.
pub fn problems_error(items: Vec<ErrorItem>) -> ApiError {
    ApiError::many(items)
}

fn field_error(code: ErrorCode, pointer: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(code, format!("`{pointer}`: {}", message.into()))
        .with_target(ErrorTarget::field(pointer))
}

/// Checks a path id (account, provider, note, occurrence, channel).
pub fn check_path_id(name: &str, value: &str) -> ApiResult<()> {
    if model::is_valid_id(value) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("`{name}` must be 1–256 characters without `/`, `?`, `#`, spaces or control characters"),
        )
        .with_target(ErrorTarget::parameter(name)))
    }
}

/// Validates a note for `account/provider` and returns what to store.
pub fn note_record(account_id: &str, provider_id: &str, note: &ApiNote) -> ApiResult<NoteRecord> {
    let problems = validate_note(note);
    if !problems.is_empty() {
        return Err(problems_error(problems.0));
    }
    let mut body = note.clone();
    body.create_time = None;
    body.update_time = None;
    Ok(NoteRecord {
        account_id: account_id.to_owned(),
        provider_id: provider_id.to_owned(),
        id: note.id.clone(),
        kind: note.kind.clone(),
        body: serde_json::to_value(&body)
            .map_err(|error| ApiError::internal(format!("note to JSON: {error}")))?,
    })
}

/// Renders a stored note as the API shows it, with its times.
pub fn note_view(stored: &StoredNote) -> ApiResult<ApiNote> {
    let mut note: ApiNote = serde_json::from_value(stored.record.body.clone())
        .map_err(|error| ApiError::internal(format!("stored note does not parse: {error}")))?;
    note.create_time = Some(wire_time(stored.created_at));
    note.update_time = Some(wire_time(stored.updated_at));
    Ok(note)
}

/// An occurrence as the API shows it: IBM's fields plus the lifecycle.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OccurrenceView {
    #[serde(flatten)]
    pub occurrence: ApiOccurrence,
    pub account_id: String,
    pub provider_id: String,
    /// `open`, `acknowledged`, `resolved` or `suppressed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_until: Option<String>,
    /// How many times this finding was reported (deduplicated into this one).
    pub occurrence_count: i64,
    pub first_seen: String,
    pub last_seen: String,
}

/// Renders a stored occurrence, reading an expired suppression as open.
pub fn occurrence_view(stored: &StoredOccurrence, now: DateTime<Utc>) -> ApiResult<OccurrenceView> {
    let mut occurrence: ApiOccurrence = serde_json::from_value(stored.record.body.clone())
        .map_err(|error| {
            ApiError::internal(format!("stored occurrence does not parse: {error}"))
        })?;
    occurrence.create_time = Some(wire_time(stored.created_at));
    occurrence.update_time = Some(wire_time(stored.updated_at));
    let status = stored.effective_status(now);
    let suppressed = status == FindingStatus::Suppressed;
    Ok(OccurrenceView {
        occurrence,
        account_id: stored.record.account_id.clone(),
        provider_id: stored.record.provider_id.clone(),
        status: status.as_str().to_owned(),
        status_reason: if status == stored.status {
            stored.status_reason.clone()
        } else {
            None
        },
        suppressed_until: stored
            .suppressed_until
            .filter(|_| suppressed)
            .map(wire_time),
        occurrence_count: stored.occurrence_count,
        first_seen: wire_time(stored.first_seen),
        last_seen: wire_time(stored.last_seen),
    })
}

/// Validates an occurrence posted under `account/provider` against its note and returns what to
/// store. `note_lookup` finds the note the occurrence names; a missing note is a 400 on
/// `/note_name` (an occurrence must be of a known kind of finding).
pub async fn occurrence_record(
    store: &Arc<dyn Store>,
    instance_id: &str,
    account_id: &str,
    provider_id: &str,
    occurrence: &ApiOccurrence,
) -> ApiResult<OccurrenceRecord> {
    let problems = validate_occurrence(occurrence);
    if !problems.is_empty() {
        return Err(problems_error(problems.0));
    }
    let name = NoteName::parse(&occurrence.note_name)
        .ok_or_else(|| field_error(ErrorCode::InvalidField, "/note_name", "malformed"))?;
    if name.account_id != account_id {
        return Err(field_error(
            ErrorCode::InvalidField,
            "/note_name",
            format!(
                "names account `{}`, not the path's `{account_id}`",
                name.account_id
            ),
        ));
    }
    let note = store
        .get_note(
            instance_id,
            &name.account_id,
            &name.provider_id,
            &name.note_id,
        )
        .await?
        .ok_or_else(|| {
            field_error(
                ErrorCode::InvalidField,
                "/note_name",
                format!("note `{}` does not exist", occurrence.note_name),
            )
        })?;
    if note.record.kind != occurrence.kind {
        return Err(field_error(
            ErrorCode::InvalidField,
            "/kind",
            format!(
                "is `{}` but note `{}` is a {}",
                occurrence.kind, occurrence.note_name, note.record.kind
            ),
        ));
    }
    build_record(account_id, provider_id, occurrence, &name, Some(&note))
}

/// The severity a note gives its occurrences by default.
fn note_severity(note: Option<&StoredNote>) -> Option<String> {
    let body = &note?.record.body;
    body.pointer("/finding/severity")
        .or_else(|| body.pointer("/kpi/Severity"))
        .and_then(|value| value.as_str())
        .map(str::to_owned)
}

fn build_record(
    account_id: &str,
    provider_id: &str,
    occurrence: &ApiOccurrence,
    name: &NoteName,
    note: Option<&StoredNote>,
) -> ApiResult<OccurrenceRecord> {
    let finding = occurrence.finding.as_ref();
    let severity = if occurrence.kind == "FINDING" {
        finding
            .and_then(|finding| finding.severity.clone())
            .or_else(|| note_severity(note))
    } else {
        None
    };
    let mut body = occurrence.clone();
    body.create_time = None;
    body.update_time = None;
    Ok(OccurrenceRecord {
        account_id: account_id.to_owned(),
        provider_id: provider_id.to_owned(),
        id: occurrence.id.clone(),
        note_provider_id: name.provider_id.clone(),
        note_id: name.note_id.clone(),
        kind: occurrence.kind.clone(),
        severity,
        certainty: finding.and_then(|finding| finding.certainty.clone()),
        resource: model::occurrence_resource(occurrence),
        body: serde_json::to_value(&body)
            .map_err(|error| ApiError::internal(format!("occurrence to JSON: {error}")))?,
    })
}

/// An occurrence reported by one of Palisade's own sources (or an importer).
#[derive(Debug, Clone)]
pub struct SourceOccurrence {
    pub account_id: String,
    /// The note it is an occurrence of, under the same provider.
    pub note_id: String,
    /// What, besides note and resource, makes two detections the same finding (a rule id, a
    /// peer address …); may be empty. The occurrence id is derived from it unless `body.id`
    /// is set, so repeated detections merge into one finding with a count.
    pub fingerprint: String,
    /// The occurrence; `id` and `note_name` may be left empty and are filled in.
    pub body: ApiOccurrence,
}

/// What [`record_occurrences`] did: outcomes of the good records and the problems of the bad.
#[derive(Debug, Clone, Default)]
pub struct RecordReport {
    pub outcomes: Vec<RecordOutcome>,
    /// Index in the input and what is wrong with it.
    pub rejected: Vec<(usize, Vec<ErrorItem>)>,
}

/// Derives a stable occurrence id from what identifies a finding.
pub fn derived_occurrence_id(prefix: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    format!("{prefix}-{}", &hex::encode(digest)[..32])
}

/// Records occurrences of a provider in one transaction, deduplicated: the service function
/// Palisade's own sources (posture, activity insights, network insights) and importers call.
///
/// Bad records are rejected one by one (their index and problems are in the report) and the good
/// ones are recorded. Notes need not exist (sources register theirs with [`ensure_note`]); when
/// they do, their severity is the default of occurrences that carry none. Notifications follow
/// through the delivery worker (new and reopened findings are marked in the same transaction).
pub async fn record_occurrences(
    store: &Arc<dyn Store>,
    instance_id: &str,
    provider_id: &str,
    occurrences: Vec<SourceOccurrence>,
    at: DateTime<Utc>,
) -> ApiResult<RecordReport> {
    let (records, mut report) =
        prepare_occurrences(store, instance_id, provider_id, occurrences).await?;
    if !records.is_empty() {
        report.outcomes = store.record_occurrences(instance_id, &records, at).await?;
    }
    Ok(report)
}

/// Checks and shapes a source's occurrences into store records without writing them, for
/// callers that record them in a transaction of their own (the insights ingest journal). The
/// report holds the rejected ones.
pub async fn prepare_occurrences(
    store: &Arc<dyn Store>,
    instance_id: &str,
    provider_id: &str,
    occurrences: Vec<SourceOccurrence>,
) -> ApiResult<(Vec<OccurrenceRecord>, RecordReport)> {
    check_path_id("provider_id", provider_id)?;
    let mut report = RecordReport::default();
    let mut records = Vec::with_capacity(occurrences.len());
    let mut notes: HashMap<(String, String), Option<StoredNote>> = HashMap::new();
    for (index, source) in occurrences.into_iter().enumerate() {
        let mut body = source.body;
        if !model::is_valid_id(&source.account_id) {
            report.rejected.push((
                index,
                vec![ErrorItem {
                    code: ErrorCode::InvalidField,
                    message: "`/account_id`: not a valid account id".to_owned(),
                    target: Some(ErrorTarget::field("/account_id")),
                }],
            ));
            continue;
        }
        if body.note_name.is_empty() || !body.note_name.contains('/') {
            let note_id = if body.note_name.is_empty() {
                source.note_id.clone()
            } else {
                body.note_name.clone()
            };
            body.note_name = NoteName::format(&source.account_id, provider_id, &note_id);
        }
        if body.id.is_empty() {
            let resource = model::occurrence_resource(&body).unwrap_or_default();
            body.id =
                derived_occurrence_id("pal", &[&body.note_name, &resource, &source.fingerprint]);
        }
        let problems = validate_occurrence(&body);
        if !problems.is_empty() {
            report.rejected.push((index, problems.0));
            continue;
        }
        let Some(name) = NoteName::parse(&body.note_name) else {
            continue;
        };
        let note_key = (name.provider_id.clone(), name.note_id.clone());
        if !notes.contains_key(&note_key) {
            let note = store
                .get_note(
                    instance_id,
                    &source.account_id,
                    &name.provider_id,
                    &name.note_id,
                )
                .await?;
            notes.insert(note_key.clone(), note);
        }
        let note = notes.get(&note_key).and_then(Option::as_ref);
        match build_record(&source.account_id, provider_id, &body, &name, note) {
            Ok(record) => records.push(record),
            Err(error) => report.rejected.push((index, error.items)),
        }
    }
    Ok((records, report))
}

/// Creates a source's note if it does not exist yet (it is left as is when it does, so an
/// operator's edits survive restarts).
pub async fn ensure_note(
    store: &Arc<dyn Store>,
    instance_id: &str,
    account_id: &str,
    provider_id: &str,
    note: &ApiNote,
    at: DateTime<Utc>,
) -> ApiResult<()> {
    if store
        .get_note(instance_id, account_id, provider_id, &note.id)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let record = note_record(account_id, provider_id, note)?;
    match store.insert_note(instance_id, &record, at).await {
        Ok(_) | Err(palisade_store::StoreError::Conflict(_)) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

/// Body of Palisade's lifecycle change.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChangeRequest {
    /// The occurrences to change.
    pub findings: Vec<FindingReference>,
    /// `open`, `acknowledged`, `resolved` or `suppressed`.
    pub status: String,
    /// Why; required for `suppressed`.
    #[serde(default)]
    pub reason: Option<String>,
    /// When a suppression ends (RFC 3339, in the future); only with `suppressed`.
    #[serde(default)]
    pub suppressed_until: Option<DateTime<Utc>>,
}

/// Names one occurrence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingReference {
    pub account_id: String,
    pub provider_id: String,
    pub id: String,
}

/// Validates a lifecycle change.
pub fn status_change(
    request: &StatusChangeRequest,
    now: DateTime<Utc>,
) -> ApiResult<palisade_store::findings::StatusChange> {
    let status: FindingStatus = request
        .status
        .parse()
        .map_err(|message: String| field_error(ErrorCode::InvalidField, "/status", message))?;
    if request.findings.is_empty() || request.findings.len() > 1000 {
        return Err(field_error(
            ErrorCode::InvalidField,
            "/findings",
            "name between 1 and 1000 findings",
        ));
    }
    let reason = request
        .reason
        .as_ref()
        .map(|reason| reason.trim().to_owned())
        .filter(|reason| !reason.is_empty());
    if status == FindingStatus::Suppressed && reason.is_none() {
        return Err(field_error(
            ErrorCode::MissingField,
            "/reason",
            "a suppression needs a reason",
        ));
    }
    match request.suppressed_until {
        Some(_) if status != FindingStatus::Suppressed => {
            return Err(field_error(
                ErrorCode::InvalidField,
                "/suppressed_until",
                "only a suppression has an end",
            ));
        }
        Some(until) if until <= now => {
            return Err(field_error(
                ErrorCode::InvalidField,
                "/suppressed_until",
                "must be in the future",
            ));
        }
        _ => {}
    }
    Ok(palisade_store::findings::StatusChange {
        status,
        reason,
        suppressed_until: request.suppressed_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_separate_their_parts() {
        let first = derived_occurrence_id("pal", &["a/providers/p/notes/n", "crn:1", ""]);
        assert_eq!(
            first,
            derived_occurrence_id("pal", &["a/providers/p/notes/n", "crn:1", ""])
        );
        assert!(first.starts_with("pal-") && first.len() == 36);
        assert_ne!(
            derived_occurrence_id("pal", &["ab", "c"]),
            derived_occurrence_id("pal", &["a", "bc"])
        );
    }

    #[test]
    fn suppressions_need_a_reason_and_a_future_end() {
        let now = Utc::now();
        let request = |status: &str, reason: Option<&str>, until: Option<DateTime<Utc>>| {
            StatusChangeRequest {
                findings: vec![FindingReference {
                    account_id: "a".into(),
                    provider_id: "p".into(),
                    id: "o".into(),
                }],
                status: status.into(),
                reason: reason.map(str::to_owned),
                suppressed_until: until,
            }
        };
        assert!(status_change(&request("suppressed", None, None), now).is_err());
        assert!(status_change(&request("suppressed", Some("  "), None), now).is_err());
        assert!(
            status_change(
                &request(
                    "suppressed",
                    Some("fp"),
                    Some(now - chrono::Duration::hours(1))
                ),
                now
            )
            .is_err()
        );
        assert!(
            status_change(
                &request("resolved", None, Some(now + chrono::Duration::hours(1))),
                now
            )
            .is_err()
        );
        assert!(status_change(&request("closed", None, None), now).is_err());
        let change = status_change(
            &request(
                "suppressed",
                Some("fp"),
                Some(now + chrono::Duration::hours(1)),
            ),
            now,
        )
        .expect("valid");
        assert_eq!(change.status, FindingStatus::Suppressed);
        assert!(status_change(&request("acknowledged", None, None), now).is_ok());
    }
}
