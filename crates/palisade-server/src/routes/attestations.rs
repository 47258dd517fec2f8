//! Attestations of manual controls: `PUT|GET|DELETE
//! /instances/{instance_id}/v1/attachments/{attachment_id}/attestations[/{assessment_id}]`.
//!
//! A manual assessment (a CIS recommendation no rule can check, say) is decided by a person: the
//! attestation says pass or failure, why, with what evidence, and until when. Scans of the
//! attachment use attestations in force; without one (or after its expiry) the control stays
//! `user_evaluation_required`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use palisade_posture::Attestation;
use palisade_posture::model::AttestedStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::routes::v3::ATTACHMENT;
use crate::service::documents;
use crate::service::scans::{ATTESTATION, attestation_id, attestations_of};
use crate::state::AppState;

/// Body of an attestation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationRequest {
    /// `pass` or `failure`.
    pub status: String,
    /// Why: what was checked and how.
    pub note: String,
    /// Links or document ids backing the verdict.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// After this instant the control needs a new attestation (RFC 3339).
    #[serde(default)]
    pub expires_on: Option<DateTime<Utc>>,
}

/// An attestation as stored and shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttestationView {
    pub assessment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_id: Option<String>,
    pub status: String,
    pub note: String,
    pub evidence: Vec<String>,
    /// The key that attested.
    pub attested_by: String,
    pub attested_on: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<String>,
    /// Whether it is in force now.
    pub in_force: bool,
}

fn view(attestation: &Attestation, now: DateTime<Utc>) -> AttestationView {
    AttestationView {
        assessment_id: attestation.assessment_id.clone(),
        control_id: attestation.control_id.clone(),
        status: match attestation.status {
            AttestedStatus::Pass => "pass",
            AttestedStatus::Failure => "failure",
        }
        .to_owned(),
        note: attestation.note.clone(),
        evidence: attestation.evidence.clone(),
        attested_by: attestation.attested_by.clone(),
        attested_on: documents::timestamp(attestation.attested_on),
        expires_on: attestation.expires_on.map(documents::timestamp),
        in_force: attestation.is_valid_at(now),
    }
}

/// `?control_id=` restricting an attestation to one control.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ControlParam {
    /// The control the attestation is about; unset: every control using the assessment.
    pub control_id: Option<String>,
}

/// Attests a manual assessment of an attachment (replacing an earlier attestation of it).
#[utoipa::path(put, path = "/instances/{instance_id}/v1/attachments/{attachment_id}/attestations/{assessment_id}", tag = "v3 attachments", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("attachment_id" = String, Path), ("assessment_id" = String, Path), ControlParam),
    request_body = AttestationRequest,
    responses((status = 200, body = AttestationView), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn put_attestation(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, attachment_id, assessment_id)): Path<(String, String, String)>,
    Query(params): Query<ControlParam>,
    ApiJson(request): ApiJson<AttestationRequest>,
) -> ApiResult<ApiJson<AttestationView>> {
    attest(
        &state,
        &auth.key,
        &attachment_id,
        &assessment_id,
        params.control_id,
        request,
    )
    .await
    .map(ApiJson)
}

/// Validates and stores an attestation by `key` (the API route and the dashboard's form).
pub(crate) async fn attest(
    state: &AppState,
    key: &palisade_model::tenancy::ApiKey,
    attachment_id: &str,
    assessment_id: &str,
    control_id: Option<String>,
    request: AttestationRequest,
) -> ApiResult<AttestationView> {
    let instance_id = key.instance_id.clone();
    documents::get(state, &instance_id, ATTACHMENT, attachment_id).await?;
    let mut errors = documents::BodyErrors::default();
    let status = match request.status.as_str() {
        "pass" => Some(AttestedStatus::Pass),
        "failure" => Some(AttestedStatus::Failure),
        _ => {
            errors.push(
                palisade_model::error::ErrorCode::InvalidField,
                "/status",
                "must be `pass` or `failure`",
            );
            None
        }
    };
    if request.note.trim().is_empty() {
        errors.push(
            palisade_model::error::ErrorCode::InvalidField,
            "/note",
            "must say what was checked",
        );
    }
    let now = Utc::now();
    if request.expires_on.is_some_and(|expiry| expiry <= now) {
        errors.push(
            palisade_model::error::ErrorCode::InvalidField,
            "/expires_on",
            "must be in the future",
        );
    }
    errors.finish(())?;
    let status = status.ok_or_else(|| ApiError::internal("status checked above"))?;
    let attestation = Attestation {
        assessment_id: assessment_id.to_owned(),
        control_id: control_id.clone(),
        status,
        note: request.note,
        evidence: request.evidence,
        attested_by: key.id.clone(),
        attested_on: now,
        expires_on: request.expires_on,
    };
    let id = attestation_id(attachment_id, assessment_id, control_id.as_deref());
    let body = serde_json::to_value(&attestation)
        .map_err(|error| ApiError::internal(format!("attestation: {error}")))?;
    documents::upsert(state, &instance_id, ATTESTATION, &id, &body).await?;
    Ok(view(&attestation, now))
}

/// Lists an attachment's attestations.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/attachments/{attachment_id}/attestations", tag = "v3 attachments", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("attachment_id" = String, Path)),
    responses((status = 200, body = Vec<AttestationView>), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn list_attestations(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, attachment_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Vec<AttestationView>>> {
    documents::get(&state, auth.instance_id(), ATTACHMENT, &attachment_id).await?;
    let now = Utc::now();
    Ok(ApiJson(
        attestations_of(&state, auth.instance_id(), &attachment_id)
            .await?
            .iter()
            .map(|attestation| view(attestation, now))
            .collect(),
    ))
}

/// Withdraws an attestation; the control needs a person again at the next scan.
#[utoipa::path(delete, path = "/instances/{instance_id}/v1/attachments/{attachment_id}/attestations/{assessment_id}", tag = "v3 attachments", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("attachment_id" = String, Path), ("assessment_id" = String, Path), ControlParam),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_attestation(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, attachment_id, assessment_id)): Path<(String, String, String)>,
    Query(params): Query<ControlParam>,
) -> ApiResult<StatusCode> {
    let id = attestation_id(&attachment_id, &assessment_id, params.control_id.as_deref());
    documents::delete(&state, auth.instance_id(), ATTESTATION, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
