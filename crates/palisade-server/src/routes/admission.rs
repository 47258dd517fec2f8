//! Admission: provisioning decisions from configuration governance, at
//! `/instances/{instance_id}/v1/admission…`:
//!
//! - `POST …/admission`: a provisioning request in, `{allowed, violations, patch, resource}`
//!   out (see [`crate::service::governance::admission`]);
//! - `GET …/admission/decisions[/{decision_id}]`: the decision log, newest first, filtered;
//! - `POST …/admission/kubernetes/validate` and `…/mutate`: Kubernetes `ValidatingAdmission
//!   Webhook` and `MutatingAdmissionWebhook` endpoints speaking `admission.k8s.io/v1`
//!   `AdmissionReview`. Objects become resources by [`palisade_model::kubernetes`] (the same
//!   mapping as the Kubernetes importer), with the cluster named by the `cluster` query
//!   parameter (default `kubernetes`) as the account and the namespace as the resource group.
//!   The mutating webhook returns the templates' defaults as a base64 JSONPatch and never
//!   denies; the validating one decides (and logs) — Kubernetes calls it after mutation, so it
//!   sees the defaults. DELETE and CONNECT are allowed without a decision.
//!
//! Asking for a decision needs a reading role: it changes no configuration (the log records
//! the asking key).

use axum::extract::{Path, Query, State};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_model::kubernetes::{KubernetesResource, resource_from_object};
use palisade_store::DecisionFilter;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::governance::admission::{
    AdmissionDecision, AdmissionRequest, decide, decision_view, parse_request, template_patch,
};
use crate::service::governance::scope::RequestScope;
use crate::state::AppState;

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1000;

/// The routes of this module, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(admit))
        .routes(routes!(list_decisions))
        .routes(routes!(get_decision))
        .routes(routes!(kubernetes_validate))
        .routes(routes!(kubernetes_mutate))
}

fn parameter_error(name: &str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameter, format!("`{name}` {message}"))
        .with_target(ErrorTarget::parameter(name))
}

/// Decides a provisioning request: templates fill unset properties, then attached rules judge.
#[utoipa::path(post, path = "/instances/{instance_id}/v1/admission", tag = "admission", security(("bearer" = [])),
    params(("instance_id" = String, Path)),
    request_body(content = serde_json::Value, description = "`{\"operation\": \"create\"|\"update\", \"resource\": {…}}`, optionally `enterprise_id`, `account_group_id`, `source`"),
    responses((status = 200, body = AdmissionDecision), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn admit(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<AdmissionDecision>> {
    let request = parse_request(body)?;
    let decision = decide(&state, auth.instance_id(), &auth.key.id, request).await?;
    Ok(ApiJson(decision))
}

/// Filters of the decision log.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DecisionQuery {
    /// `true` (allowed) or `false` (denied).
    pub allowed: Option<String>,
    /// `create` or `update`.
    pub operation: Option<String>,
    /// `api`, `kubernetes`, `terraform` …
    pub source: Option<String>,
    /// The key that asked.
    pub key_id: Option<String>,
    pub account_id: Option<String>,
    pub service_name: Option<String>,
    pub resource_kind: Option<String>,
    pub resource_id: Option<String>,
    /// Decisions in which this rule was violated.
    pub rule_id: Option<String>,
    /// Decided at or after (RFC 3339).
    pub since: Option<String>,
    /// Decided before (RFC 3339).
    pub until: Option<String>,
    /// 1–1000, default 100.
    pub page_size: Option<String>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

fn parse_time(name: &str, text: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    text.map(|text| {
        DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| parameter_error(name, "must be an RFC 3339 timestamp"))
    })
    .transpose()
}

/// Lists admission decisions, newest first.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/admission/decisions", tag = "admission", security(("bearer" = [])),
    params(("instance_id" = String, Path), DecisionQuery),
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_decisions(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(query): Query<DecisionQuery>,
) -> ApiResult<ApiJson<Value>> {
    let allowed = match query.allowed.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(parameter_error("allowed", "must be true or false")),
    };
    let page_size = match query.page_size.as_deref() {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
            .ok_or_else(|| parameter_error("page_size", "must be a whole number from 1 to 1000"))?,
    };
    let before = match query
        .page_token
        .as_deref()
        .filter(|token| !token.is_empty())
    {
        None => None,
        Some(token) => Some(
            URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| parameter_error("page_token", "is not a token this API returned"))?,
        ),
    };
    let filter = DecisionFilter {
        allowed,
        operation: query.operation,
        source: query.source,
        key_id: query.key_id,
        account_id: query.account_id,
        service_name: query.service_name,
        resource_kind: query.resource_kind,
        resource_id: query.resource_id,
        rule_id: query.rule_id,
        since: parse_time("since", query.since.as_deref())?,
        until: parse_time("until", query.until.as_deref())?,
        before,
        limit: Some(page_size),
    };
    // Read your own writes: decisions still queued for the log are committed first.
    state.governance.decision_log.flush().await;
    let decisions = state
        .store
        .list_decisions(auth.instance_id(), &filter)
        .await?;
    let next_page_token = if decisions.len() == page_size as usize {
        decisions
            .last()
            .map(|last| URL_SAFE_NO_PAD.encode(&last.id))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let views: Vec<Value> = decisions.iter().map(decision_view).collect();
    Ok(ApiJson(
        json!({"decisions": views, "page_size": page_size, "next_page_token": next_page_token}),
    ))
}

/// Returns one decision of the log.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/admission/decisions/{decision_id}", tag = "admission", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("decision_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_decision(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, decision_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    state.governance.decision_log.flush().await;
    let decision = state
        .store
        .get_decision(auth.instance_id(), &decision_id)
        .await?
        .ok_or_else(|| ApiError::not_found("decision", &decision_id))?;
    Ok(ApiJson(decision_view(&decision)))
}

/// `cluster` of the Kubernetes webhooks.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClusterParam {
    /// The cluster's name: the account of its resources (default `kubernetes`).
    pub cluster: Option<String>,
}

/// A parsed `AdmissionReview` request.
struct Review {
    uid: Value,
    operation: String,
    mapped: Option<KubernetesResource>,
}

fn review_error(pointer: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidField,
        format!("`{pointer}`: {}", message.into()),
    )
    .with_target(ErrorTarget::field(pointer))
}

/// Reads an `admission.k8s.io/v1` `AdmissionReview`; the object is mapped for CREATE and UPDATE.
fn parse_review(body: &Value, cluster: &str) -> ApiResult<Review> {
    if body.get("kind").and_then(Value::as_str) != Some("AdmissionReview") {
        return Err(review_error("/kind", "must be AdmissionReview"));
    }
    let Some(request) = body.get("request").filter(|request| request.is_object()) else {
        return Err(review_error("/request", "missing request (an object)"));
    };
    let uid = request.get("uid").cloned().unwrap_or(Value::Null);
    if uid.as_str().is_none_or(str::is_empty) {
        return Err(review_error(
            "/request/uid",
            "missing uid (a non-empty string)",
        ));
    }
    let Some(operation) = request.get("operation").and_then(Value::as_str) else {
        return Err(review_error("/request/operation", "missing operation"));
    };
    let operation = operation.to_ascii_lowercase();
    if !matches!(operation.as_str(), "create" | "update") {
        return Ok(Review {
            uid,
            operation,
            mapped: None,
        });
    }
    let Some(object) = request.get("object").filter(|object| object.is_object()) else {
        return Err(review_error(
            "/request/object",
            "missing object (an object)",
        ));
    };
    // On CREATE the object often has no namespace yet: the request carries it.
    let mut object = object.clone();
    if let Some(namespace) = request.get("namespace").and_then(Value::as_str)
        && object.pointer("/metadata/namespace").is_none()
        && let Some(metadata) = object
            .as_object_mut()
            .map(|fields| fields.entry("metadata").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
    {
        metadata.insert("namespace".into(), json!(namespace));
    }
    let mapped = resource_from_object(&object, cluster, Utc::now()).map_err(|error| {
        review_error(&format!("/request/object{}", error.pointer), error.message)
    })?;
    Ok(Review {
        uid,
        operation,
        mapped: Some(mapped),
    })
}

fn review_answer(response: Value) -> ApiJson<Value> {
    ApiJson(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }))
}

fn cluster_of(param: &ClusterParam) -> ApiResult<String> {
    match param.cluster.as_deref() {
        None => Ok("kubernetes".to_owned()),
        Some(cluster) if !cluster.is_empty() && cluster.len() <= 253 => Ok(cluster.to_owned()),
        Some(_) => Err(parameter_error("cluster", "must be 1 to 253 characters")),
    }
}

/// Kubernetes validating admission webhook: decides (and logs) CREATE and UPDATE requests.
#[utoipa::path(post, path = "/instances/{instance_id}/v1/admission/kubernetes/validate", tag = "admission", security(("bearer" = [])),
    params(("instance_id" = String, Path), ClusterParam),
    request_body(content = serde_json::Value, description = "An admission.k8s.io/v1 AdmissionReview"),
    responses((status = 200, body = serde_json::Value, description = "The AdmissionReview with its response"),
        (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn kubernetes_validate(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(param): Query<ClusterParam>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    let cluster = cluster_of(&param)?;
    let review = parse_review(&body, &cluster)?;
    let Some(mapped) = review.mapped else {
        return Ok(review_answer(json!({"uid": review.uid, "allowed": true})));
    };
    let request = AdmissionRequest {
        operation: review.operation,
        scope: RequestScope {
            account_id: mapped.resource.account_id.clone(),
            resource_group: mapped.resource.resource_group.clone(),
            enterprise_id: None,
            account_group_id: None,
        },
        source: "kubernetes".to_owned(),
        resource: mapped.resource,
    };
    let decision = decide(&state, auth.instance_id(), &auth.key.id, request).await?;
    let mut response = json!({"uid": review.uid, "allowed": decision.allowed});
    let describe = |violation: &crate::service::governance::admission::Violation| {
        let properties: Vec<&str> = violation
            .details
            .iter()
            .map(|detail| detail.property.as_str())
            .collect();
        format!(
            "{} ({}): {}",
            violation.rule_id,
            violation.rule_name,
            if properties.is_empty() {
                violation.status.clone()
            } else {
                properties.join(", ")
            }
        )
    };
    if !decision.allowed {
        let denied: Vec<String> = decision
            .violations
            .iter()
            .filter(|violation| violation.action == "disallow")
            .map(describe)
            .collect();
        response["status"] = json!({
            "code": 403,
            "reason": "Forbidden",
            "message": format!("denied by Palisade (decision {}): {}", decision.decision_id, denied.join("; ")),
        });
    }
    let warnings: Vec<String> = decision
        .violations
        .iter()
        .filter(|violation| violation.action != "disallow")
        .map(|violation| format!("palisade {}: {}", violation.action, describe(violation)))
        .collect();
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    Ok(review_answer(response))
}

/// Kubernetes mutating admission webhook: the attached templates' defaults as a JSONPatch.
#[utoipa::path(post, path = "/instances/{instance_id}/v1/admission/kubernetes/mutate", tag = "admission", security(("bearer" = [])),
    params(("instance_id" = String, Path), ClusterParam),
    request_body(content = serde_json::Value, description = "An admission.k8s.io/v1 AdmissionReview"),
    responses((status = 200, body = serde_json::Value, description = "The AdmissionReview with its response"),
        (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn kubernetes_mutate(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(param): Query<ClusterParam>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    let cluster = cluster_of(&param)?;
    let review = parse_review(&body, &cluster)?;
    let Some(mapped) = review.mapped else {
        return Ok(review_answer(json!({"uid": review.uid, "allowed": true})));
    };
    let scope = RequestScope {
        account_id: mapped.resource.account_id.clone(),
        resource_group: mapped.resource.resource_group.clone(),
        enterprise_id: None,
        account_group_id: None,
    };
    let operations = template_patch(&state, auth.instance_id(), &scope, &mapped.resource).await?;
    let patch: Vec<Value> = operations
        .into_iter()
        .filter_map(|operation| {
            let object_pointer = mapped.object_pointer(&operation.path)?;
            Some(json!({"op": operation.op, "path": object_pointer, "value": operation.value}))
        })
        .collect();
    let mut response = json!({"uid": review.uid, "allowed": true});
    if !patch.is_empty() {
        let encoded = serde_json::to_vec(&patch)
            .map_err(|error| ApiError::internal(format!("encoding a patch: {error}")))?;
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(STANDARD.encode(encoded));
    }
    Ok(review_answer(response))
}
