//! Cross-account targets: `/v3/targets[/{target_id}]`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{TARGET, stamp_created, stamp_updated, strip_server_fields};
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::service::documents::{self, BodyErrors, PageParams, body_object, new_id, page, pairs};
use crate::state::AppState;

/// Validates a target body (`account_id`, `trusted_profile_id`, `name`, `credentials`).
fn normalise(request: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let mut errors = BodyErrors::default();
    errors.check_keys(
        request,
        "",
        &["account_id", "trusted_profile_id", "name"],
        &["credentials"],
    );
    for key in ["account_id", "trusted_profile_id", "name"] {
        errors.check_string(request, "", key, true);
    }
    let mut credentials = Vec::new();
    for (pointer, credential) in errors.objects(request, "", "credentials") {
        errors.check_keys(
            credential,
            &pointer,
            &["secret_crn", "resources"],
            &["type", "secret_name"],
        );
        errors.check_string(credential, &pointer, "secret_crn", true);
        for (resource_pointer, resource) in errors.objects(credential, &pointer, "resources") {
            errors.check_keys(resource, &resource_pointer, &[], &["name", "value"]);
        }
        let mut stored = credential.clone();
        stored.entry("type").or_insert(json!("trusted_profile"));
        credentials.push(Value::Object(stored));
    }
    errors.finish(())?;
    let mut target = Map::new();
    for key in ["account_id", "trusted_profile_id", "name"] {
        target.insert(key.into(), request.get(key).cloned().unwrap_or(json!("")));
    }
    target.insert("credentials".into(), Value::Array(credentials));
    Ok(target)
}

/// Creates a target account.
#[utoipa::path(post, path = "/instances/{instance_id}/v3/targets", tag = "v3 targets", security(("bearer" = [])),
    params(("instance_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn create_target(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let mut target = normalise(&body_object(body)?)?;
    let id = new_id();
    target.insert("id".into(), json!(id));
    stamp_created(&mut target, &auth.key);
    let body = Value::Object(target);
    documents::insert(&state, auth.instance_id(), TARGET, &id, &body).await?;
    Ok((StatusCode::CREATED, ApiJson(body)))
}

/// Lists targets.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/targets", tag = "v3 targets", security(("bearer" = [])),
    params(("instance_id" = String, Path), PageParams), responses((status = 200, body = serde_json::Value)))]
pub async fn list_targets(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(instance_id): Path<String>,
    Query(params): Query<PageParams>,
) -> ApiResult<ApiJson<Value>> {
    let items = pairs(
        documents::all(&state, auth.instance_id(), TARGET).await?,
        |_| true,
    );
    Ok(ApiJson(page(
        &format!("/instances/{instance_id}/v3/targets"),
        "targets",
        &params,
        items,
    )?))
}

/// Returns one target.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/targets/{target_id}", tag = "v3 targets", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("target_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_target(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, target_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(
        documents::get(&state, auth.instance_id(), TARGET, &target_id)
            .await?
            .body,
    ))
}

/// Replaces a target.
#[utoipa::path(put, path = "/instances/{instance_id}/v3/targets/{target_id}", tag = "v3 targets", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("target_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn replace_target(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, target_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    let previous = documents::get(&state, auth.instance_id(), TARGET, &target_id).await?;
    let mut request = body_object(body)?;
    // `account_id` is a field of a target (the target account), not a server field here.
    let account = request.remove("account_id");
    strip_server_fields(&mut request);
    if let Some(account) = account {
        request.insert("account_id".into(), account);
    }
    let mut target = normalise(&request)?;
    let target_account = target.get("account_id").cloned();
    stamp_updated(&mut target, &previous.body, &auth.key);
    if let Some(account) = target_account {
        target.insert("account_id".into(), account);
    }
    let body = Value::Object(target);
    documents::replace(
        &state,
        auth.instance_id(),
        TARGET,
        &target_id,
        &body,
        Some(previous.version),
    )
    .await?;
    Ok(ApiJson(body))
}

/// Deletes a target.
#[utoipa::path(delete, path = "/instances/{instance_id}/v3/targets/{target_id}", tag = "v3 targets", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("target_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_target(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, target_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    documents::delete(&state, auth.instance_id(), TARGET, &target_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
