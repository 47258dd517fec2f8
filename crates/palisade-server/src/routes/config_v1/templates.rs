//! Templates: `/config/v1/templates[/{template_id}]`, IBM's `Template` shape (the Python SDK has
//! no template calls; paths and bodies follow IBM's Go SDK).
//!
//! A template has a `target` without operators (`service_name`, `resource_kind`,
//! `additional_target_attributes[{name, value}]`) and `customized_defaults[{property, value}]`:
//! values the admission endpoint fills into requests that leave the property unset.

use std::collections::HashSet;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_model::error::ErrorCode;
use palisade_model::tenancy::ApiKey;
use serde_json::{Map, Value, json};

use super::attachments::check_template_clashes;
use super::{
    AUDIT_FIELDS, AccountFilter, OffsetParams, bulk_status, bulk_trace, encode_query_value,
    failed_entry, offset_page, required_if_match, with_etag,
};
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::middleware::TraceId;
use crate::routes::v3::account_of;
use crate::service::documents::{self, BodyErrors, body_object, new_id, timestamp};
use crate::service::governance::{self, TEMPLATE, TEMPLATE_ATTACHMENT};
use crate::state::AppState;

const REQUIRED: &[&str] = &["name", "description", "target", "customized_defaults"];

/// Validates a template body at `pointer` and returns the stored fields (without audit fields).
fn normalise(
    errors: &mut BodyErrors,
    request: &Map<String, Value>,
    pointer: &str,
) -> Map<String, Value> {
    let mut allowed = vec!["account_id", "template_id"];
    allowed.extend_from_slice(AUDIT_FIELDS);
    errors.check_keys(request, pointer, REQUIRED, &allowed);
    errors.check_string(request, pointer, "name", true);
    errors.check_string(request, pointer, "description", false);
    errors.check_string(request, pointer, "account_id", true);
    let target_pointer = format!("{pointer}/target");
    match request.get("target") {
        Some(Value::Object(target)) => {
            errors.check_keys(
                target,
                &target_pointer,
                &["service_name", "resource_kind"],
                &["additional_target_attributes"],
            );
            errors.check_string(target, &target_pointer, "service_name", true);
            errors.check_string(target, &target_pointer, "resource_kind", true);
            for (attribute_pointer, attribute) in
                errors.objects(target, &target_pointer, "additional_target_attributes")
            {
                errors.check_keys(attribute, &attribute_pointer, &["name", "value"], &[]);
                errors.check_string(attribute, &attribute_pointer, "name", true);
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => errors.push(
            ErrorCode::InvalidField,
            &target_pointer,
            "must be an object",
        ),
    }
    let defaults = errors.objects(request, pointer, "customized_defaults");
    if request
        .get("customized_defaults")
        .is_some_and(Value::is_array)
        && defaults.is_empty()
    {
        errors.push(
            ErrorCode::InvalidField,
            &format!("{pointer}/customized_defaults"),
            "must list at least one default",
        );
    }
    let mut seen = HashSet::new();
    for (default_pointer, default) in defaults {
        errors.check_keys(default, &default_pointer, &["property", "value"], &[]);
        errors.check_string(default, &default_pointer, "property", true);
        if let Some(property) = default.get("property").and_then(Value::as_str) {
            if property.split('.').any(str::is_empty) {
                errors.push(
                    ErrorCode::InvalidField,
                    &format!("{default_pointer}/property"),
                    format!("bad property path `{property}`: empty segment"),
                );
            }
            if !seen.insert(property.to_owned()) {
                errors.push(
                    ErrorCode::InvalidField,
                    &format!("{default_pointer}/property"),
                    format!("`{property}` is defaulted twice in this template"),
                );
            }
        }
    }
    let mut template = Map::new();
    for key in ["name", "description", "target", "customized_defaults"] {
        if let Some(value) = request.get(key) {
            template.insert(key.into(), value.clone());
        }
    }
    template
}

/// Creates templates in bulk; each entry answers on its own (201 all created, 207 otherwise).
#[utoipa::path(post, path = "/instances/{instance_id}/config/v1/templates", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("Transaction-Id" = Option<String>, Header)),
    request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 207, body = serde_json::Value),
        (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn create_templates(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    Extension(trace): Extension<TraceId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &["templates"], &[]);
    let entries = errors.objects(&request, "", "templates");
    if request.get("templates").is_some_and(Value::is_array) && entries.is_empty() {
        errors.push(
            ErrorCode::InvalidField,
            "/templates",
            "must list at least one template",
        );
    }
    errors.finish(())?;
    let trace = bulk_trace(&headers, Some(&trace));
    let instance_id = auth.instance_id().to_owned();
    let mut answers = Vec::with_capacity(entries.len());
    let mut created = 0;
    for (index, (pointer, entry)) in entries.iter().enumerate() {
        // IBM numbers the entries a client left without a `request_id` from 1.
        let request_id = entry
            .get("request_id")
            .filter(|value| !value.is_null())
            .cloned()
            .unwrap_or_else(|| json!((index + 1).to_string()));
        match create_one(&state, &auth.key, &instance_id, entry, pointer).await {
            Ok(template) => {
                created += 1;
                answers.push(
                    json!({"request_id": request_id, "status_code": 201, "template": template}),
                );
            }
            Err(error) => answers.push(failed_entry(&request_id, &error, &trace)),
        }
    }
    if created > 0 {
        governance::changed(&state, &instance_id).await?;
    }
    Ok((
        bulk_status(created, entries.len()),
        ApiJson(json!({"templates": answers})),
    )
        .into_response())
}

/// Creates one template in `by`'s instance from the dashboard's form: the same checks as an
/// entry of the API's bulk create (error pointers under `/template`), then the governance
/// policies are rebuilt.
pub(crate) async fn create_template(
    state: &AppState,
    by: &ApiKey,
    template: Value,
) -> ApiResult<Value> {
    let instance_id = by.instance_id.as_str();
    let mut entry = Map::new();
    entry.insert("template".into(), template);
    let created = create_one(state, by, instance_id, &entry, "").await?;
    governance::changed(state, instance_id).await?;
    Ok(created)
}

async fn create_one(
    state: &AppState,
    by: &ApiKey,
    instance_id: &str,
    entry: &Map<String, Value>,
    pointer: &str,
) -> ApiResult<Value> {
    let mut errors = BodyErrors::default();
    errors.check_keys(entry, pointer, &["template"], &["request_id"]);
    errors.check_string(entry, pointer, "request_id", false);
    let template_pointer = format!("{pointer}/template");
    let mut template = match entry.get("template") {
        Some(Value::Object(request)) => normalise(&mut errors, request, &template_pointer),
        None | Some(Value::Null) => Map::new(),
        Some(_) => {
            errors.push(
                ErrorCode::InvalidField,
                &template_pointer,
                "must be an object",
            );
            Map::new()
        }
    };
    errors.finish(())?;
    let template_id = format!("template-{}", new_id());
    let account = account_of(
        entry
            .get("template")
            .and_then(|template| template.get("account_id"))
            .and_then(Value::as_str),
        instance_id,
    );
    let now = timestamp(chrono::Utc::now());
    template.insert("template_id".into(), json!(template_id));
    template.insert("account_id".into(), json!(account));
    template.insert("creation_date".into(), json!(now));
    template.insert("created_by".into(), json!(by.id));
    template.insert("modification_date".into(), json!(now));
    template.insert("modified_by".into(), json!(by.id));
    let body = Value::Object(template);
    documents::insert(state, instance_id, TEMPLATE, &template_id, &body).await?;
    Ok(body)
}

/// Lists templates, optionally of one account.
#[utoipa::path(get, path = "/instances/{instance_id}/config/v1/templates", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), AccountFilter, OffsetParams),
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_templates(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(instance_id): Path<String>,
    Query(filter): Query<AccountFilter>,
    Query(paging): Query<OffsetParams>,
) -> ApiResult<ApiJson<Value>> {
    let page = paging.parse()?;
    let items: Vec<Value> = documents::all(&state, auth.instance_id(), TEMPLATE)
        .await?
        .into_iter()
        .filter(|template| {
            filter
                .account_id
                .as_deref()
                .is_none_or(|account| template.body["account_id"] == account)
        })
        .map(|template| template.body)
        .collect();
    let query = filter
        .account_id
        .as_deref()
        .map(|account| format!("account_id={}&", encode_query_value(account)))
        .unwrap_or_default();
    Ok(ApiJson(offset_page(
        &format!("/instances/{instance_id}/config/v1/templates"),
        &query,
        "templates",
        page,
        items,
    )))
}

/// Returns one template with its ETag.
#[utoipa::path(get, path = "/instances/{instance_id}/config/v1/templates/{template_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("template_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_template(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, template_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let stored = documents::get(&state, auth.instance_id(), TEMPLATE, &template_id).await?;
    Ok(with_etag(StatusCode::OK, stored.body, stored.version))
}

/// Replaces a template; needs `If-Match`. Refused (409) when the new defaults would clash with
/// another template attached to one of this template's scopes.
#[utoipa::path(put, path = "/instances/{instance_id}/config/v1/templates/{template_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("template_id" = String, Path), ("If-Match" = String, Header, description = "The template's ETag")),
    request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody),
        (status = 412, body = palisade_model::error::ErrorBody), (status = 428, body = palisade_model::error::ErrorBody)))]
pub async fn update_template(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, template_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let (body, version) = replace_template(
        &state,
        &auth.key,
        &template_id,
        |current| required_if_match(&headers, current, "template"),
        body,
    )
    .await?;
    Ok(with_etag(StatusCode::OK, body, version))
}

/// Validates and replaces a template of `by`'s instance (the API route and the dashboard's
/// form). `expected` turns the stored version into the one the caller read (`If-Match`, or the
/// form's hidden field) or refuses.
pub(crate) async fn replace_template(
    state: &AppState,
    by: &ApiKey,
    template_id: &str,
    expected: impl FnOnce(i64) -> ApiResult<i64>,
    body: Value,
) -> ApiResult<(Value, i64)> {
    let instance_id = by.instance_id.clone();
    let previous = documents::get(state, &instance_id, TEMPLATE, template_id).await?;
    let expected = expected(previous.version)?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    let mut template = normalise(&mut errors, &request, "");
    errors.finish(())?;
    template.insert("template_id".into(), json!(template_id));
    template.insert(
        "account_id".into(),
        json!(account_of(
            request.get("account_id").and_then(Value::as_str),
            previous.body["account_id"].as_str().unwrap_or(&instance_id),
        )),
    );
    for field in ["creation_date", "created_by"] {
        template.insert(field.into(), previous.body[field].clone());
    }
    template.insert(
        "modification_date".into(),
        json!(timestamp(chrono::Utc::now())),
    );
    template.insert("modified_by".into(), json!(by.id));
    let body = Value::Object(template);
    // The template's own attachments, checked with its new defaults against everyone else's.
    let attachments = documents::all(state, &instance_id, TEMPLATE_ATTACHMENT).await?;
    for attachment in attachments
        .iter()
        .filter(|attachment| attachment.body["template_id"] == template_id)
    {
        check_template_clashes(
            state,
            &instance_id,
            template_id,
            &body,
            &attachment.body,
            Some(&attachment.id),
            "",
        )
        .await?;
    }
    let stored = documents::replace(
        state,
        &instance_id,
        TEMPLATE,
        template_id,
        &body,
        Some(expected),
    )
    .await?;
    governance::changed(state, &instance_id).await?;
    Ok((body, stored.version))
}

/// Deletes a template and its attachments.
#[utoipa::path(delete, path = "/instances/{instance_id}/config/v1/templates/{template_id}", tag = "config governance", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("template_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_template(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, template_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let instance_id = auth.instance_id().to_owned();
    documents::get(&state, &instance_id, TEMPLATE, &template_id).await?;
    for attachment in documents::all(&state, &instance_id, TEMPLATE_ATTACHMENT).await? {
        if attachment.body["template_id"] == template_id.as_str() {
            state
                .store
                .delete_document(&instance_id, TEMPLATE_ATTACHMENT.store_kind, &attachment.id)
                .await?;
        }
    }
    documents::delete(&state, &instance_id, TEMPLATE, &template_id).await?;
    governance::changed(&state, &instance_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
