//! Integrations: `/v3/provider_types[/{id}[/provider_type_instances[/{instance id}]]]`.
//!
//! Provider types are built in (what Palisade can exchange results with); their instances are
//! an instance's configured connections. Attributes of type `secret` or `masked` are stored but
//! never echoed back.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_model::error::ErrorCode;
use serde_json::{Map, Value, json};

use super::PROVIDER_TYPE_INSTANCE;
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::documents::{self, BodyErrors, body_object, new_id, timestamp};
use crate::state::AppState;

/// The built-in provider types.
fn provider_types() -> Vec<Value> {
    let created = "2026-01-01T00:00:00Z";
    vec![
        json!({
            "id": "7588190cce3c05ac8f7942ea597dafce", "type": "workload-protection", "name": "workload-protection",
            "description": "Security and Compliance Center Workload Protection results pulled into reports",
            "s2s_enabled": true, "instance_limit": 1, "mode": "PULL", "data_type": "com.sysdig.secure.results",
            "icon": "", "label": {"text": "1 per instance", "tip": "Only one Workload Protection instance per Palisade instance"},
            "attributes": {"wp_crn": {"type": "text", "display_name": "Workload Protection instance CRN"}},
            "created_at": created, "updated_at": created,
        }),
        json!({
            "id": "afa2476ecfa5f09af248492fe991b4d1", "type": "caveonix", "name": "Caveonix",
            "description": "Caveonix pushes its evaluation results into Palisade reports",
            "s2s_enabled": false, "instance_limit": 1, "mode": "PUSH", "data_type": "com.caveonix.results",
            "icon": "", "label": {"text": "1 per instance", "tip": "Only one Caveonix instance per Palisade instance"},
            "attributes": {}, "created_at": created, "updated_at": created,
        }),
        json!({
            "id": "3d4b0ccbad4c2c63ba0a93e7bd7fa9a4", "type": "palisade-collector", "name": "Palisade collector",
            "description": "A Palisade collector agent pushing resource configurations",
            "s2s_enabled": false, "instance_limit": 100, "mode": "PUSH", "data_type": "com.palisade.inventory",
            "icon": "", "label": {"text": "up to 100 per instance", "tip": "One per collector deployment"},
            "attributes": {"endpoint": {"type": "url", "display_name": "Collector endpoint"}, "token": {"type": "secret", "display_name": "Token"}},
            "created_at": created, "updated_at": created,
        }),
    ]
}

fn provider_type(id: &str) -> ApiResult<Value> {
    provider_types()
        .into_iter()
        .find(|provider| provider["id"] == id)
        .ok_or_else(|| ApiError::not_found("provider type", id))
}

/// Hides attribute values whose type is `secret` or `masked`.
fn masked(instance: &Value, provider: &Value) -> Value {
    let mut view = instance.clone();
    if let Some(attributes) = view.get_mut("attributes").and_then(Value::as_object_mut) {
        for (name, value) in attributes.iter_mut() {
            let kind = provider["attributes"][name]["type"]
                .as_str()
                .unwrap_or("text");
            if kind == "secret" || kind == "masked" {
                *value = json!("********");
            }
        }
    }
    if let Some(object) = view.as_object_mut() {
        object.remove("provider_type_id");
    }
    view
}

fn check_attributes(errors: &mut BodyErrors, request: &Map<String, Value>, provider: &Value) {
    if let Some(attributes) = request.get("attributes") {
        match attributes.as_object() {
            Some(attributes) => {
                for name in attributes.keys() {
                    if provider["attributes"].get(name).is_none() {
                        errors.push(
                            ErrorCode::UnknownField,
                            &format!("/attributes/{name}"),
                            format!(
                                "provider type `{}` has no attribute `{name}`",
                                provider["type"].as_str().unwrap_or_default()
                            ),
                        );
                    }
                }
            }
            None => errors.push(ErrorCode::InvalidField, "/attributes", "must be an object"),
        }
    }
}

/// Lists the provider types.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/provider_types", tag = "v3 integrations", security(("bearer" = [])),
    params(("instance_id" = String, Path)), responses((status = 200, body = serde_json::Value)))]
pub async fn list_provider_types(
    _auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
) -> ApiJson<Value> {
    ApiJson(json!({"provider_types": provider_types()}))
}

/// Returns one provider type.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/provider_types/{provider_type_id}", tag = "v3 integrations", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("provider_type_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_provider_type_by_id(
    _auth: Authorized<ReadAccess>,
    Path((_instance_id, provider_type_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(provider_type(&provider_type_id)?))
}

async fn instances_of(
    state: &AppState,
    instance_id: &str,
    provider_type_id: &str,
) -> ApiResult<Vec<palisade_store::Document>> {
    Ok(documents::all(state, instance_id, PROVIDER_TYPE_INSTANCE)
        .await?
        .into_iter()
        .filter(|document| document.body["provider_type_id"] == provider_type_id)
        .collect())
}

/// Connects an instance of a provider type.
#[utoipa::path(post, path = "/instances/{instance_id}/v3/provider_types/{provider_type_id}/provider_type_instances", tag = "v3 integrations", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("provider_type_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn create_provider_type_instance(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, provider_type_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let provider = provider_type(&provider_type_id)?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &[], &["name", "attributes"]);
    errors.check_string(&request, "", "name", true);
    check_attributes(&mut errors, &request, &provider);
    errors.finish(())?;
    let limit = provider["instance_limit"].as_u64().unwrap_or(1);
    if instances_of(&state, auth.instance_id(), &provider_type_id)
        .await?
        .len() as u64
        >= limit
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "provider type `{}` allows {limit} instance(s)",
                provider["type"].as_str().unwrap_or_default()
            ),
        ));
    }
    let id = new_id();
    let now = timestamp(chrono::Utc::now());
    let stored = json!({
        "id": id, "type": provider["type"], "provider_type_id": provider_type_id,
        "name": request.get("name").cloned().unwrap_or_else(|| provider["name"].clone()),
        "attributes": request.get("attributes").cloned().unwrap_or(json!({})),
        "created_at": now, "updated_at": now,
    });
    documents::insert(
        &state,
        auth.instance_id(),
        PROVIDER_TYPE_INSTANCE,
        &id,
        &stored,
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(masked(&stored, &provider))))
}

/// Lists the connected instances of a provider type.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/provider_types/{provider_type_id}/provider_type_instances", tag = "v3 integrations", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("provider_type_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn list_provider_type_instances(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, provider_type_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let provider = provider_type(&provider_type_id)?;
    let instances: Vec<Value> = instances_of(&state, auth.instance_id(), &provider_type_id)
        .await?
        .iter()
        .map(|document| masked(&document.body, &provider))
        .collect();
    Ok(ApiJson(json!({"provider_type_instances": instances})))
}

async fn get_instance_of(
    state: &AppState,
    instance_id: &str,
    provider_type_id: &str,
    id: &str,
) -> ApiResult<palisade_store::Document> {
    let document = documents::get(state, instance_id, PROVIDER_TYPE_INSTANCE, id).await?;
    if document.body["provider_type_id"] != provider_type_id {
        return Err(ApiError::not_found("provider type instance", id));
    }
    Ok(document)
}

/// Returns one provider type instance.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/provider_types/{provider_type_id}/provider_type_instances/{provider_type_instance_id}", tag = "v3 integrations", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("provider_type_id" = String, Path), ("provider_type_instance_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_provider_type_instance(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, provider_type_id, id)): Path<(String, String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let provider = provider_type(&provider_type_id)?;
    Ok(ApiJson(masked(
        &get_instance_of(&state, auth.instance_id(), &provider_type_id, &id)
            .await?
            .body,
        &provider,
    )))
}

/// Renames a provider type instance or changes its attributes.
#[utoipa::path(patch, path = "/instances/{instance_id}/v3/provider_types/{provider_type_id}/provider_type_instances/{provider_type_instance_id}", tag = "v3 integrations", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("provider_type_id" = String, Path), ("provider_type_instance_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn update_provider_type_instance(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, provider_type_id, id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    let provider = provider_type(&provider_type_id)?;
    let previous = get_instance_of(&state, auth.instance_id(), &provider_type_id, &id).await?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &[], &["name", "attributes"]);
    errors.check_string(&request, "", "name", true);
    check_attributes(&mut errors, &request, &provider);
    errors.finish(())?;
    let mut stored = previous.body.clone();
    if let Some(name) = request.get("name") {
        stored["name"] = name.clone();
    }
    if let Some(Value::Object(attributes)) = request.get("attributes") {
        for (name, value) in attributes {
            stored["attributes"][name] = value.clone();
        }
    }
    stored["updated_at"] = json!(timestamp(chrono::Utc::now()));
    documents::replace(
        &state,
        auth.instance_id(),
        PROVIDER_TYPE_INSTANCE,
        &id,
        &stored,
        Some(previous.version),
    )
    .await?;
    Ok(ApiJson(masked(&stored, &provider)))
}

/// Disconnects a provider type instance.
#[utoipa::path(delete, path = "/instances/{instance_id}/v3/provider_types/{provider_type_id}/provider_type_instances/{provider_type_instance_id}", tag = "v3 integrations", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("provider_type_id" = String, Path), ("provider_type_instance_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_provider_type_instance(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, provider_type_id, id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    get_instance_of(&state, auth.instance_id(), &provider_type_id, &id).await?;
    documents::delete(&state, auth.instance_id(), PROVIDER_TYPE_INSTANCE, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
