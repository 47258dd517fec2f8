//! Rules: `/v3/rules[/{rule_id}]`, with `ETag` / `If-Match` on updates.
//!
//! Bodies are checked by the rule engine's own validator (`palisade_rules::parse_rule`), so the
//! API accepts exactly the rules scans can evaluate, and every mistake comes back at once with
//! its JSON pointer.

use axum::extract::{Path, Query, State};
use axum::http::header::{ETAG, IF_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_model::error::{ErrorCode, ErrorItem, ErrorTarget};
use palisade_model::tenancy::ApiKey;
use serde_json::{Map, Value, json};

use super::{CONTROL_LIBRARY, RULE, stamp_created, stamp_updated, strip_server_fields};
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::documents::{self, BodyErrors, PageParams, body_object, new_id, page, pairs};
use crate::state::AppState;

const RULE_REQUIRED: &[&str] = &["description", "target", "required_config"];
const RULE_OPTIONAL: &[&str] = &["version", "import", "labels", "type"];

/// Validates a rule body with the engine's validator and returns the stored fields.
fn normalise(request: &Map<String, Value>, id: &str) -> ApiResult<Map<String, Value>> {
    let mut errors = BodyErrors::default();
    errors.check_keys(request, "", RULE_REQUIRED, RULE_OPTIONAL);
    errors.check_string(request, "", "description", false);
    errors.check_string(request, "", "version", false);
    errors.check_enum(request, "", "type", &["user_defined"]);
    errors.finish(())?;
    let mut candidate = request.clone();
    candidate.insert("id".into(), json!(id));
    candidate.remove("type");
    if let Err(problems) = palisade_rules::parse_rule(&Value::Object(candidate)) {
        return Err(ApiError::many(
            problems
                .into_iter()
                .map(|problem| ErrorItem {
                    code: ErrorCode::InvalidField,
                    message: format!(
                        "`{}`: {}",
                        if problem.pointer.is_empty() {
                            "/"
                        } else {
                            &problem.pointer
                        },
                        problem.message
                    ),
                    target: Some(ErrorTarget::field(problem.pointer)),
                })
                .collect(),
        ));
    }
    let mut rule = Map::new();
    for key in ["description", "target", "required_config", "import"] {
        if let Some(value) = request.get(key) {
            rule.insert(key.into(), value.clone());
        }
    }
    rule.insert(
        "version".into(),
        request.get("version").cloned().unwrap_or(json!("1.0.0")),
    );
    rule.insert(
        "labels".into(),
        request.get("labels").cloned().unwrap_or(json!([])),
    );
    rule.insert("type".into(), json!("user_defined"));
    Ok(rule)
}

/// A rule answer with its ETag.
fn with_etag(status: StatusCode, body: Value, version: i64) -> Response {
    let mut response = (status, ApiJson(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(ETAG, value);
    }
    response
}

/// The ETag of a stored version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Reads `If-Match` into the version it names: 428 when absent, 412 when it names none.
pub fn required_if_match(headers: &HeaderMap, current_version: i64) -> ApiResult<i64> {
    let Some(value) = headers.get(IF_MATCH).and_then(|value| value.to_str().ok()) else {
        return Err(ApiError::new(
            ErrorCode::PreconditionRequired,
            "send `If-Match` with the ETag of the rule you read",
        )
        .with_target(ErrorTarget::header("If-Match")));
    };
    let value = value.trim();
    if value == "*" {
        return Ok(current_version);
    }
    let version = value
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .ok();
    match version {
        Some(version) if version == current_version => Ok(version),
        _ => Err(ApiError::new(
            ErrorCode::PreconditionFailed,
            "the rule changed since you read it; get it again and retry with its new ETag",
        )
        .with_target(ErrorTarget::header("If-Match"))),
    }
}

/// Creates a custom rule.
#[utoipa::path(post, path = "/instances/{instance_id}/v3/rules", tag = "v3 rules", security(("bearer" = [])),
    params(("instance_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn create_rule(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let (body, version) = create(&state, &auth.key, body).await?;
    Ok(with_etag(StatusCode::CREATED, body, version))
}

/// Validates (with the rule engine's validator) and stores a new custom rule of `by`'s instance
/// (the API route and the dashboard's form); answers the rule and its version.
pub(crate) async fn create(state: &AppState, by: &ApiKey, body: Value) -> ApiResult<(Value, i64)> {
    let instance_id = by.instance_id.as_str();
    let request = body_object(body)?;
    let id = format!("rule-{}", new_id());
    let mut rule = normalise(&request, &id)?;
    rule.insert("id".into(), json!(id));
    rule.insert("account_id".into(), json!(instance_id));
    stamp_created(&mut rule, by);
    let body = Value::Object(rule);
    let stored = documents::insert(state, instance_id, RULE, &id, &body).await?;
    Ok((body, stored.version))
}

/// Lists rules, filtered by `type`, `search` (in id, description and labels) and `service_name`.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/rules", tag = "v3 rules", security(("bearer" = [])),
    params(("instance_id" = String, Path), PageParams, ("type" = Option<String>, Query), ("search" = Option<String>, Query), ("service_name" = Option<String>, Query), ("sort" = Option<String>, Query)),
    responses((status = 200, body = serde_json::Value)))]
pub async fn list_rules(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(instance_id): Path<String>,
    Query(params): Query<PageParams>,
    Query(filter): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    if let Some(kind) = filter.get("type")
        && !["user_defined", "system_defined"].contains(&kind.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`type` must be user_defined or system_defined",
        )
        .with_target(ErrorTarget::parameter("type")));
    }
    let search = filter.get("search").map(|text| text.to_lowercase());
    let matches = |rule: &Value| {
        filter
            .get("type")
            .is_none_or(|kind| rule["type"] == kind.as_str())
            && filter
                .get("service_name")
                .is_none_or(|service| rule["target"]["service_name"] == service.as_str())
            && search.as_ref().is_none_or(|needle| {
                let haystack = format!("{} {} {}", rule["id"], rule["description"], rule["labels"])
                    .to_lowercase();
                haystack.contains(needle.as_str())
            })
    };
    let items = pairs(
        documents::all(&state, auth.instance_id(), RULE).await?,
        matches,
    );
    Ok(ApiJson(page(
        &format!("/instances/{instance_id}/v3/rules"),
        "rules",
        &params,
        items,
    )?))
}

/// Returns one rule with its ETag.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/rules/{rule_id}", tag = "v3 rules", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_rule(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, rule_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let stored = documents::get(&state, auth.instance_id(), RULE, &rule_id).await?;
    Ok(with_etag(StatusCode::OK, stored.body, stored.version))
}

/// Replaces a custom rule; needs `If-Match`.
#[utoipa::path(put, path = "/instances/{instance_id}/v3/rules/{rule_id}", tag = "v3 rules", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path), ("If-Match" = String, Header, description = "The rule's ETag")),
    request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody),
        (status = 412, body = palisade_model::error::ErrorBody), (status = 428, body = palisade_model::error::ErrorBody)))]
pub async fn replace_rule(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, rule_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let (body, version) = replace(
        &state,
        &auth.key,
        &rule_id,
        |current| required_if_match(&headers, current),
        body,
    )
    .await?;
    Ok(with_etag(StatusCode::OK, body, version))
}

/// Validates and replaces a custom rule of `by`'s instance (the API route and the dashboard's
/// form). `expected` turns the stored version into the one the caller read (`If-Match` for the
/// API, a hidden field for the form) or refuses; the write happens only at that version.
pub(crate) async fn replace(
    state: &AppState,
    by: &ApiKey,
    rule_id: &str,
    expected: impl FnOnce(i64) -> ApiResult<i64>,
    body: Value,
) -> ApiResult<(Value, i64)> {
    let instance_id = by.instance_id.as_str();
    let previous = documents::get(state, instance_id, RULE, rule_id).await?;
    if previous.body["type"] == "system_defined" {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a system-defined rule cannot be changed",
        ));
    }
    let expected = expected(previous.version)?;
    let mut request = body_object(body)?;
    strip_server_fields(&mut request);
    let mut rule = normalise(&request, rule_id)?;
    stamp_updated(&mut rule, &previous.body, by);
    let body = Value::Object(rule);
    let stored =
        documents::replace(state, instance_id, RULE, rule_id, &body, Some(expected)).await?;
    Ok((body, stored.version))
}

/// Deletes a custom rule that no control library uses.
#[utoipa::path(delete, path = "/instances/{instance_id}/v3/rules/{rule_id}", tag = "v3 rules", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("rule_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, rule_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let previous = documents::get(&state, auth.instance_id(), RULE, &rule_id).await?;
    if previous.body["type"] == "system_defined" {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a system-defined rule cannot be deleted",
        ));
    }
    let libraries = documents::all(&state, auth.instance_id(), CONTROL_LIBRARY).await?;
    let used = libraries.iter().find(|library| {
        library.body["controls"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|control| {
                control["control_specifications"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|specification| {
                        specification["assessments"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|assessment| assessment["assessment_id"] == rule_id.as_str())
                    })
            })
    });
    if let Some(library) = used {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "control library `{}` assesses with this rule; change it first",
                library.id
            ),
        ));
    }
    documents::delete(&state, auth.instance_id(), RULE, &rule_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
