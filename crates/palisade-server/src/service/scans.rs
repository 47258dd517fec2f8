//! Posture scans: attachment → scope → resources → evaluations → report.
//!
//! The engine (`palisade-posture`) plans and evaluates; this module feeds it from the store in
//! chunks, so memory stays bounded by the chunk size, not the inventory: resources are read page
//! by page for each (service, kind) the profile's rules target, filtered by the attachment's
//! scope, evaluated in parallel, and their evaluations written in batches before the next page.
//! Only the roll-up counters live for the whole scan.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use palisade_model::error::{ErrorCode, ErrorItem, ErrorTarget};
use palisade_posture::{
    Attachment, ControlLibrary, Profile, RollupBuilder, ScanInput, ScanPlan, Scope,
};
use palisade_store::{EvaluationRow, ResourceFilter, Store, StoredReport};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::routes::v3::{ATTACHMENT, CONTROL_LIBRARY, PROFILE, RULE, SCOPE};
use crate::service::documents::{self, new_id, timestamp};
use crate::state::AppState;

/// Resources read and evaluated at a time.
const CHUNK: u32 = 2_000;

/// Attachments being scanned in this process: a second request for the same attachment is
/// refused instead of running the same scan twice at once. Processes sharing a PostgreSQL store
/// also hold the attachment's lock (`service::cluster`), so no two of them scan it at once.
fn running() -> &'static Mutex<HashSet<(String, String)>> {
    static RUNNING: std::sync::OnceLock<Mutex<HashSet<(String, String)>>> =
        std::sync::OnceLock::new();
    RUNNING.get_or_init(Mutex::default)
}

/// Removes the attachment from [`running`] when the scan ends, however it ends.
struct RunningGuard((String, String));

impl Drop for RunningGuard {
    fn drop(&mut self) {
        running()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.0);
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> ApiResult<T> {
    serde_json::from_value(value)
        .map_err(|error| ApiError::internal(format!("stored {what} does not parse: {error}")))
}

/// Runs a scan of an attachment as of `now` (time-based operators, attestation expiry and the
/// next scheduled time are judged against it) and returns the SCC `Scan` answer.
pub async fn run_scan(
    state: &AppState,
    instance_id: &str,
    attachment_id: &str,
    scan_type: &str,
    now: chrono::DateTime<Utc>,
) -> ApiResult<Value> {
    let key = (instance_id.to_owned(), attachment_id.to_owned());
    if !running()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key.clone())
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("attachment `{attachment_id}` is being scanned already"),
        ));
    }
    let _guard = RunningGuard(key);
    // And across the processes sharing the store.
    let _cluster_guard = state.cluster.lock_scan(instance_id, attachment_id).await?;

    let attachment_document = documents::get(state, instance_id, ATTACHMENT, attachment_id).await?;
    let attachment: Attachment = parse(attachment_document.body.clone(), "attachment")?;
    let profile: Profile = parse(
        documents::get(state, instance_id, PROFILE, &attachment.profile_id)
            .await?
            .body,
        "profile",
    )?;
    let builtin = palisade_posture::content::builtin()
        .map_err(|error| ApiError::internal(format!("built-in content: {error:?}")))?;
    // The built-in libraries are among the documents (see `documents::builtin`).
    let mut libraries: Vec<ControlLibrary> = Vec::new();
    for document in documents::all(state, instance_id, CONTROL_LIBRARY).await? {
        libraries.push(parse(document.body, "control library")?);
    }
    let mut rules = builtin.rules.clone();
    for document in documents::all(state, instance_id, RULE).await? {
        let rule = palisade_rules::parse_rule(&document.body).map_err(|errors| {
            ApiError::internal(format!(
                "stored rule {} does not parse: {errors:?}",
                document.id
            ))
        })?;
        rules.push(rule);
    }
    let scopes: Vec<Scope> = documents::all(state, instance_id, SCOPE)
        .await?
        .into_iter()
        .map(|document| parse(document.body, "scope"))
        .collect::<ApiResult<_>>()?;
    let selector = palisade_posture::resolve_attachment_scopes(&attachment.scope, |id| {
        scopes.iter().find(|scope| scope.id == id)
    })
    .map_err(|errors| {
        ApiError::many(
            errors
                .into_iter()
                .map(|error| ErrorItem {
                    code: ErrorCode::InvalidField,
                    message: format!("attachment `{}`: {}", error.pointer, error.message),
                    target: Some(ErrorTarget::field(error.pointer)),
                })
                .collect(),
        )
    })?;

    let attestations = attestations_of(state, instance_id, attachment_id).await?;
    let notifications = attachment.notifications.clone();
    let attachment_name = attachment.name.clone();
    let report_id = new_id();
    let store: Arc<dyn Store> = state.store.clone();
    let instance = instance_id.to_owned();
    let scan_report_id = report_id.clone();
    let handle = tokio::runtime::Handle::current();
    // The scan is CPU work with store reads and writes between chunks: it runs on a blocking
    // thread and drives the async store through the runtime handle.
    let rollup = tokio::task::spawn_blocking(move || -> ApiResult<palisade_posture::Rollup> {
        let plan = ScanPlan::new(ScanInput {
            profile: &profile,
            libraries: &libraries,
            rules: &rules,
            attachment_parameters: &attachment.attachment_parameters,
            attestations: &attestations,
            now,
        })
        .map_err(|error| {
            ApiError::new(
                ErrorCode::InvalidField,
                format!("the attachment's profile cannot be scanned: {error}"),
            )
        })?;
        let mut builder = RollupBuilder::new(&plan);
        for (service_name, resource_kind) in plan.targets() {
            let mut filter = ResourceFilter {
                service_name: Some(service_name),
                resource_kind: Some(resource_kind),
                limit: Some(CHUNK),
                ..ResourceFilter::default()
            };
            loop {
                let page = handle.block_on(store.list_resources(&instance, &filter))?;
                let Some(last) = page.last().map(|resource| resource.id.clone()) else {
                    break;
                };
                let in_scope: Vec<_> = page
                    .into_iter()
                    .filter(|resource| selector.matches(resource))
                    .collect();
                let evaluations = plan.evaluate_chunk(&in_scope, now);
                let rows: Vec<EvaluationRow> = evaluations
                    .iter()
                    .map(|evaluation| EvaluationRow {
                        rule_id: evaluation.rule_id.clone(),
                        resource_id: evaluation.resource_id.clone(),
                        status: evaluation.status.as_str().to_owned(),
                        body: serde_json::to_value(evaluation).unwrap_or(Value::Null),
                    })
                    .collect();
                handle.block_on(store.insert_evaluations(&instance, &scan_report_id, &rows))?;
                builder.add_chunk(&in_scope, &evaluations);
                filter.after = Some(last);
            }
        }
        Ok(builder.finish())
    })
    .await
    .map_err(|error| ApiError::internal(format!("scan task failed: {error}")))??;

    let time = timestamp(now);
    let profile_body = documents::get(
        state,
        instance_id,
        PROFILE,
        attachment_document.body["profile_id"]
            .as_str()
            .unwrap_or_default(),
    )
    .await?
    .body;
    let report = json!({
        "id": report_id,
        "type": scan_type,
        "group_id": format!("{}:{}", profile_body["id"].as_str().unwrap_or_default(), attachment_id),
        "created_on": time,
        "scan_time": time,
        "cos_object": "",
        "instance_id": instance_id,
        "account": {"id": attachment_document.body["account_id"], "name": "", "type": "account"},
        "profile": {"id": profile_body["id"], "name": profile_body["profile_name"], "version": profile_body["profile_version"]},
        "scope": {"id": attachment_document.body["scope"][0]["id"], "name": "", "href": ""},
        "scopes": [],
        "attachment": {"id": attachment_id, "name": attachment_document.body["name"], "description": attachment_document.body["description"], "schedule": attachment_document.body["schedule"], "scope": attachment_document.body["scope"]},
        "controls_summary": rollup.controls_summary,
        "evaluations_summary": rollup.evaluations_summary,
        "tags": {"user": [], "access": [], "service": []},
        "additional_details": {"id": attachment_id, "created_by": "palisade"},
        "rollup": rollup,
    });
    state
        .store
        .put_report(
            instance_id,
            &StoredReport {
                id: report_id.clone(),
                attachment_id: attachment_id.to_owned(),
                profile_id: profile_body["id"].as_str().unwrap_or_default().to_owned(),
                scan_type: scan_type.to_owned(),
                created_on: now,
                body: report,
            },
        )
        .await?;

    record_threshold_breach(
        state,
        instance_id,
        attachment_document.body["account_id"].as_str(),
        (attachment_id, &attachment_name, &notifications),
        &report_id,
        &rollup,
        now,
    )
    .await?;

    // Record the scan on the attachment (last_scan, next_scan_time).
    let mut attachment_body = attachment_document.body.clone();
    attachment_body["last_scan"] = json!({"id": report_id, "status": "completed", "time": time});
    let schedule = attachment_body["schedule"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let next = crate::routes::v3::attachments::next_scan_time(&schedule, Some(now), now);
    attachment_body["next_scan_time"] = next.map_or(Value::Null, |next| json!(timestamp(next)));
    documents::replace(
        state,
        instance_id,
        ATTACHMENT,
        attachment_id,
        &attachment_body,
        None,
    )
    .await?;

    Ok(json!({
        "id": new_id(),
        "account_id": attachment_document.body["account_id"],
        "attachment_id": attachment_id,
        "report_id": report_id,
        "status": "completed",
        "last_scan_time": time,
        "next_scan_time": attachment_body["next_scan_time"],
        "scan_type": scan_type,
        "occurence": 1,
    }))
}

/// The note of threshold-breach findings.
const THRESHOLD_NOTE: &str = "attachment-threshold-breached";

/// Raises a `posture` finding when a scan breaches the attachment's notification thresholds
/// (more than `threshold_limit` controls not compliant, or a watched control failing). One
/// finding per attachment: a breach in a later scan counts again and reopens it if resolved.
async fn record_threshold_breach(
    state: &AppState,
    instance_id: &str,
    account_id: Option<&str>,
    (attachment_id, attachment_name, notifications): (
        &str,
        &str,
        &palisade_posture::model::AttachmentNotifications,
    ),
    report_id: &str,
    rollup: &palisade_posture::Rollup,
    now: chrono::DateTime<Utc>,
) -> ApiResult<()> {
    use crate::service::findings::model::{
        ApiNote, ApiOccurrence, Context, Finding, FindingType, Reporter,
    };
    use crate::service::findings::{
        POSTURE_PROVIDER, SourceOccurrence, ensure_note, record_occurrences,
    };
    let Some(breach) = palisade_posture::notify::check_thresholds(notifications, rollup) else {
        return Ok(());
    };
    let account = crate::service::insights::account_of(account_id);
    let note = ApiNote {
        short_description: "Compliance threshold breached".into(),
        long_description: "A scan found more non-compliant controls than the attachment's \
                           threshold allows, or a control the attachment watches failed."
            .into(),
        kind: "FINDING".into(),
        related_url: None,
        create_time: None,
        update_time: None,
        id: THRESHOLD_NOTE.into(),
        shared: None,
        reported_by: Reporter {
            id: POSTURE_PROVIDER.into(),
            title: "Palisade posture management".into(),
            url: None,
        },
        finding: Some(FindingType {
            severity: "HIGH".into(),
            next_steps: None,
        }),
        kpi: None,
        card: None,
        section: None,
    };
    ensure_note(
        &state.store,
        instance_id,
        &account,
        POSTURE_PROVIDER,
        &note,
        now,
    )
    .await?;
    let summary = breach.summary();
    let occurrence = SourceOccurrence {
        account_id: account,
        note_id: THRESHOLD_NOTE.into(),
        fingerprint: attachment_id.to_owned(),
        body: ApiOccurrence {
            resource_url: Some(format!("/instances/{instance_id}/v3/reports/{report_id}")),
            note_name: String::new(),
            kind: "FINDING".into(),
            short_description: Some(format!(
                "Compliance threshold breached on attachment {}",
                attachment_name
            )),
            long_description: Some(summary.clone()),
            remediation: Some(
                "Open the report, fix the failing controls' resources, and scan again.".into(),
            ),
            create_time: None,
            update_time: None,
            id: String::new(),
            context: Some(Context {
                resource_id: Some(attachment_id.to_owned()),
                resource_name: Some(attachment_name.to_owned()),
                resource_type: Some("profile_attachment".into()),
                ..Context::default()
            }),
            finding: Some(Finding {
                severity: Some("HIGH".into()),
                certainty: Some("HIGH".into()),
                next_steps: None,
                network_connection: None,
                data_transferred: None,
            }),
            kpi: None,
            reference_data: Some(json!({
                "attachment_id": attachment_id,
                "report_id": report_id,
                "breach": breach,
                "summary": summary,
            })),
        },
    };
    let report = record_occurrences(
        &state.store,
        instance_id,
        POSTURE_PROVIDER,
        vec![occurrence],
        now,
    )
    .await?;
    if let Some((_, problems)) = report.rejected.first() {
        return Err(ApiError::internal(format!(
            "threshold finding rejected: {problems:?}"
        )));
    }
    Ok(())
}

/// Attestations of manual assessments, stored per attachment.
pub const ATTESTATION: documents::Kind = documents::Kind {
    store_kind: "attestation",
    label: "attestation",
};

/// The attestation document id of an attachment's assessment (and control, when it is about one).
pub fn attestation_id(
    attachment_id: &str,
    assessment_id: &str,
    control_id: Option<&str>,
) -> String {
    match control_id {
        Some(control_id) => format!("{attachment_id}/{assessment_id}/{control_id}"),
        None => format!("{attachment_id}/{assessment_id}"),
    }
}

/// Every attestation of an attachment (expired ones included: the engine ignores them).
pub async fn attestations_of(
    state: &AppState,
    instance_id: &str,
    attachment_id: &str,
) -> ApiResult<Vec<palisade_posture::Attestation>> {
    let prefix = format!("{attachment_id}/");
    documents::all(state, instance_id, ATTESTATION)
        .await?
        .into_iter()
        .filter(|document| document.id.starts_with(&prefix))
        .map(|document| parse(document.body, "attestation"))
        .collect()
}
