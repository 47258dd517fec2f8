//! Scopes and subscopes: `/v3/scopes[/{scope_id}[/subscopes[/{subscope_id}]]]`.
//!
//! A scope's `properties` say what it covers: `scope_type` (`account`, `account.resource_group`,
//! `enterprise`, …), `scope_id` (the account or resource group) and `exclusions`
//! (`[{scope_id, scope_type}]`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use palisade_model::error::ErrorCode;
use palisade_model::tenancy::ApiKey;
use serde_json::{Map, Value, json};

use super::{ATTACHMENT, SCOPE, SUBSCOPE, stamp_created, stamp_updated};
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::documents::{self, BodyErrors, PageParams, body_object, new_id, page, pairs};
use crate::state::AppState;

/// The scope types SCC v3 knows.
pub const SCOPE_TYPES: &[&str] = &[
    "enterprise",
    "enterprise.account_group",
    "enterprise.account",
    "account",
    "account.resource_group",
];
/// The environments Palisade collects from.
pub const ENVIRONMENTS: &[&str] = &["ibm-cloud", "aws", "azure", "gcp", "kubernetes", "on-prem"];

/// Checks `properties` of a scope or subscope.
fn check_properties(errors: &mut BodyErrors, request: &Map<String, Value>, pointer: &str) {
    for (property_pointer, property) in errors.objects(request, pointer, "properties") {
        errors.check_keys(property, &property_pointer, &["name", "value"], &[]);
        let value_pointer = format!("{property_pointer}/value");
        match (
            property.get("name").and_then(Value::as_str),
            property.get("value"),
        ) {
            (Some("scope_type"), Some(value))
                if !value
                    .as_str()
                    .is_some_and(|text| SCOPE_TYPES.contains(&text)) =>
            {
                errors.push(
                    ErrorCode::InvalidField,
                    &value_pointer,
                    format!("must be one of {}", SCOPE_TYPES.join(", ")),
                );
            }
            (Some("exclusions"), Some(value)) => match value.as_array() {
                Some(items) => {
                    for (index, item) in items.iter().enumerate() {
                        let valid = item
                            .get("scope_type")
                            .and_then(Value::as_str)
                            .is_some_and(|text| SCOPE_TYPES.contains(&text))
                            && item.get("scope_id").is_some_and(Value::is_string);
                        if !valid {
                            errors.push(
                                ErrorCode::InvalidField,
                                &format!("{value_pointer}/{index}"),
                                "an exclusion is {scope_id, scope_type}",
                            );
                        }
                    }
                }
                None => errors.push(
                    ErrorCode::InvalidField,
                    &value_pointer,
                    "must be an array of {scope_id, scope_type}",
                ),
            },
            (Some(_), _) | (None, _) => {}
        }
    }
}

fn check_scope_body(errors: &mut BodyErrors, request: &Map<String, Value>, pointer: &str) {
    errors.check_keys(
        request,
        pointer,
        &[],
        &["name", "description", "environment", "properties"],
    );
    errors.check_string(request, pointer, "name", true);
    errors.check_string(request, pointer, "description", false);
    errors.check_enum(request, pointer, "environment", ENVIRONMENTS);
    check_properties(errors, request, pointer);
}

async fn with_count(state: &AppState, instance_id: &str, mut scope: Value) -> ApiResult<Value> {
    let scope_id = scope["id"].clone();
    let attachments = documents::all(state, instance_id, ATTACHMENT).await?;
    let count = attachments
        .iter()
        .filter(|attachment| {
            attachment.body["scope"]
                .as_array()
                .is_some_and(|scopes| scopes.iter().any(|entry| entry["id"] == scope_id))
        })
        .count();
    scope["attachment_count"] = json!(count);
    Ok(scope)
}

/// Creates a scope.
#[utoipa::path(post, path = "/instances/{instance_id}/v3/scopes", tag = "v3 scopes", security(("bearer" = [])),
    params(("instance_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn create_scope(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    Ok((
        StatusCode::CREATED,
        ApiJson(create(&state, &auth.key, body).await?),
    ))
}

/// Validates and stores a new scope of `by`'s instance (the API route and the dashboard's form).
pub(crate) async fn create(state: &AppState, by: &ApiKey, body: Value) -> ApiResult<Value> {
    let instance_id = by.instance_id.as_str();
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    check_scope_body(&mut errors, &request, "");
    errors.finish(())?;
    let id = new_id();
    let mut scope = Map::new();
    scope.insert("id".into(), json!(id));
    scope.insert(
        "name".into(),
        request.get("name").cloned().unwrap_or(json!("")),
    );
    scope.insert(
        "description".into(),
        request.get("description").cloned().unwrap_or(json!("")),
    );
    scope.insert(
        "environment".into(),
        request
            .get("environment")
            .cloned()
            .unwrap_or(json!("ibm-cloud")),
    );
    scope.insert(
        "properties".into(),
        request.get("properties").cloned().unwrap_or(json!([])),
    );
    scope.insert("account_id".into(), json!(instance_id));
    scope.insert("instance_id".into(), json!(instance_id));
    scope.insert("attachment_count".into(), json!(0));
    stamp_created(&mut scope, by);
    let body = Value::Object(scope);
    documents::insert(state, instance_id, SCOPE, &id, &body).await?;
    Ok(body)
}

/// Lists scopes, filtered by `name`, `description`, `environment`.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/scopes", tag = "v3 scopes", security(("bearer" = [])),
    params(("instance_id" = String, Path), PageParams, ("name" = Option<String>, Query), ("description" = Option<String>, Query), ("environment" = Option<String>, Query)),
    responses((status = 200, body = serde_json::Value)))]
pub async fn list_scopes(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(instance_id): Path<String>,
    Query(params): Query<PageParams>,
    Query(filter): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    let matches = |body: &Value| {
        ["name", "description", "environment"].iter().all(|key| {
            filter.get(*key).is_none_or(|wanted| {
                body[*key]
                    .as_str()
                    .is_some_and(|actual| actual.contains(wanted.as_str()))
            })
        })
    };
    let mut items = Vec::new();
    for (id, body) in pairs(
        documents::all(&state, auth.instance_id(), SCOPE).await?,
        matches,
    ) {
        items.push((id, with_count(&state, auth.instance_id(), body).await?));
    }
    Ok(ApiJson(page(
        &format!("/instances/{instance_id}/v3/scopes"),
        "scopes",
        &params,
        items,
    )?))
}

/// Returns one scope.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/scopes/{scope_id}", tag = "v3 scopes", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("scope_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_scope(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, scope_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let scope = documents::get(&state, auth.instance_id(), SCOPE, &scope_id).await?;
    Ok(ApiJson(
        with_count(&state, auth.instance_id(), scope.body).await?,
    ))
}

/// Renames or re-describes a scope.
#[utoipa::path(patch, path = "/instances/{instance_id}/v3/scopes/{scope_id}", tag = "v3 scopes", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("scope_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn update_scope(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, scope_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(update(&state, &auth.key, &scope_id, body).await?))
}

/// Renames or re-describes a scope of `by`'s instance (the API route and the dashboard's form).
pub(crate) async fn update(
    state: &AppState,
    by: &ApiKey,
    scope_id: &str,
    body: Value,
) -> ApiResult<Value> {
    let instance_id = by.instance_id.as_str();
    let previous = documents::get(state, instance_id, SCOPE, scope_id).await?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &[], &["name", "description"]);
    errors.check_string(&request, "", "name", true);
    errors.check_string(&request, "", "description", false);
    errors.finish(())?;
    let mut scope = previous.body.as_object().cloned().unwrap_or_default();
    for (key, value) in request {
        scope.insert(key, value);
    }
    stamp_updated(&mut scope, &previous.body, by);
    let body = Value::Object(scope);
    documents::replace(
        state,
        instance_id,
        SCOPE,
        scope_id,
        &body,
        Some(previous.version),
    )
    .await?;
    with_count(state, instance_id, body).await
}

/// Deletes a scope no attachment uses, with its subscopes.
#[utoipa::path(delete, path = "/instances/{instance_id}/v3/scopes/{scope_id}", tag = "v3 scopes", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("scope_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn delete_scope(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, scope_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let scope = documents::get(&state, auth.instance_id(), SCOPE, &scope_id).await?;
    if with_count(&state, auth.instance_id(), scope.body).await?["attachment_count"]
        .as_u64()
        .unwrap_or(0)
        > 0
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "attachments use this scope; change them first",
        ));
    }
    for subscope in documents::all(&state, auth.instance_id(), SUBSCOPE).await? {
        if subscope.body["scope_id"] == scope_id.as_str() {
            documents::delete(&state, auth.instance_id(), SUBSCOPE, &subscope.id).await?;
        }
    }
    documents::delete(&state, auth.instance_id(), SCOPE, &scope_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The public shape of a stored subscope (without its parent link).
fn subscope_view(stored: &Value) -> Value {
    let mut view = stored.clone();
    if let Some(object) = view.as_object_mut() {
        object.remove("scope_id");
    }
    view
}

async fn get_subscope_of(
    state: &AppState,
    instance_id: &str,
    scope_id: &str,
    subscope_id: &str,
) -> ApiResult<palisade_store::Document> {
    documents::get(state, instance_id, SCOPE, scope_id).await?;
    let subscope = documents::get(state, instance_id, SUBSCOPE, subscope_id).await?;
    if subscope.body["scope_id"] != scope_id {
        return Err(ApiError::not_found("subscope", subscope_id));
    }
    Ok(subscope)
}

/// Creates subscopes of a scope (batch).
#[utoipa::path(post, path = "/instances/{instance_id}/v3/scopes/{scope_id}/subscopes", tag = "v3 scopes", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("scope_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn create_subscope(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, scope_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    documents::get(&state, auth.instance_id(), SCOPE, &scope_id).await?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &["subscopes"], &[]);
    let mut created = Vec::new();
    for (pointer, item) in errors.objects(&request, "", "subscopes") {
        check_scope_body(&mut errors, item, &pointer);
        created.push(item.clone());
    }
    errors.finish(())?;
    let mut answers = Vec::new();
    for item in created {
        let id = new_id();
        let stored = json!({
            "id": id,
            "scope_id": scope_id,
            "name": item.get("name").cloned().unwrap_or(json!("")),
            "description": item.get("description").cloned().unwrap_or(json!("")),
            "environment": item.get("environment").cloned().unwrap_or(json!("ibm-cloud")),
            "properties": item.get("properties").cloned().unwrap_or(json!([])),
        });
        documents::insert(&state, auth.instance_id(), SUBSCOPE, &id, &stored).await?;
        answers.push(subscope_view(&stored));
    }
    Ok((StatusCode::CREATED, ApiJson(json!({"subscopes": answers}))))
}

/// Lists a scope's subscopes.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/scopes/{scope_id}/subscopes", tag = "v3 scopes", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("scope_id" = String, Path), PageParams),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn list_subscopes(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((instance_id, scope_id)): Path<(String, String)>,
    Query(params): Query<PageParams>,
) -> ApiResult<ApiJson<Value>> {
    documents::get(&state, auth.instance_id(), SCOPE, &scope_id).await?;
    let items = pairs(
        documents::all(&state, auth.instance_id(), SUBSCOPE).await?,
        |body| body["scope_id"] == scope_id.as_str(),
    )
    .into_iter()
    .map(|(id, body)| (id, subscope_view(&body)))
    .collect();
    Ok(ApiJson(page(
        &format!("/instances/{instance_id}/v3/scopes/{scope_id}/subscopes"),
        "subscopes",
        &params,
        items,
    )?))
}

/// Returns one subscope.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/scopes/{scope_id}/subscopes/{subscope_id}", tag = "v3 scopes", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("scope_id" = String, Path), ("subscope_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_subscope(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, scope_id, subscope_id)): Path<(String, String, String)>,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(subscope_view(
        &get_subscope_of(&state, auth.instance_id(), &scope_id, &subscope_id)
            .await?
            .body,
    )))
}

/// Renames or re-describes a subscope.
#[utoipa::path(patch, path = "/instances/{instance_id}/v3/scopes/{scope_id}/subscopes/{subscope_id}", tag = "v3 scopes", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("scope_id" = String, Path), ("subscope_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn update_subscope(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, scope_id, subscope_id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    let previous = get_subscope_of(&state, auth.instance_id(), &scope_id, &subscope_id).await?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &[], &["name", "description"]);
    errors.check_string(&request, "", "name", true);
    errors.check_string(&request, "", "description", false);
    errors.finish(())?;
    let mut subscope = previous.body.clone();
    for (key, value) in request {
        subscope[key] = value;
    }
    documents::replace(
        &state,
        auth.instance_id(),
        SUBSCOPE,
        &subscope_id,
        &subscope,
        Some(previous.version),
    )
    .await?;
    Ok(ApiJson(subscope_view(&subscope)))
}

/// Deletes a subscope.
#[utoipa::path(delete, path = "/instances/{instance_id}/v3/scopes/{scope_id}/subscopes/{subscope_id}", tag = "v3 scopes", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("scope_id" = String, Path), ("subscope_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_subscope(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, scope_id, subscope_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    get_subscope_of(&state, auth.instance_id(), &scope_id, &subscope_id).await?;
    documents::delete(&state, auth.instance_id(), SUBSCOPE, &subscope_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
