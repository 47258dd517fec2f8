//! Profile attachments (profile + scopes + schedule + parameters + notifications):
//! `/v3/profiles/{profile_id}/attachments[/{attachment_id}[/upgrade]]` and `/v3/attachments`.

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use palisade_model::error::ErrorCode;
use palisade_model::tenancy::ApiKey;
use serde_json::{Map, Value, json};

use super::{
    ATTACHMENT, AccountParam, PROFILE, SCOPE, account_of, stamp_created, stamp_updated,
    strip_server_fields,
};
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::documents::{
    self, BodyErrors, PageParams, body_object, new_id, page, pairs, timestamp,
};
use crate::state::AppState;

const ATTACHMENT_REQUIRED: &[&str] = &[
    "attachment_parameters",
    "description",
    "name",
    "notifications",
    "schedule",
    "scope",
    "status",
];
const ATTACHMENT_OPTIONAL: &[&str] = &[
    "data_selection_range",
    "profile_id",
    "last_scan",
    "next_scan_time",
    "id",
    "account_id",
    "instance_id",
    "created_on",
    "created_by",
    "updated_on",
    "updated_by",
];
/// The schedules SCC v3 offers.
pub const SCHEDULES: &[&str] = &["daily", "every_7_days", "every_30_days"];
/// Most scopes one attachment may have (as IBM's Terraform provider documents).
const MAX_SCOPES: usize = 8;

/// Returns how long a schedule waits between scans.
pub fn schedule_period(schedule: &str) -> Option<Duration> {
    match schedule {
        "daily" => Some(Duration::days(1)),
        "every_7_days" => Some(Duration::days(7)),
        "every_30_days" => Some(Duration::days(30)),
        _ => None,
    }
}

/// Returns when an enabled attachment scans next, from its last scan (or from `now`).
pub fn next_scan_time(
    schedule: &str,
    last_scan: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    Some(last_scan.unwrap_or(now) + schedule_period(schedule)?)
}

/// Validates one attachment body at `pointer` and returns it normalised.
fn normalise(
    errors: &mut BodyErrors,
    request: &Map<String, Value>,
    pointer: &str,
    scope_ids: &HashSet<String>,
) -> Map<String, Value> {
    errors.check_keys(request, pointer, ATTACHMENT_REQUIRED, ATTACHMENT_OPTIONAL);
    errors.check_string(request, pointer, "name", true);
    errors.check_string(request, pointer, "description", false);
    errors.check_enum(request, pointer, "schedule", SCHEDULES);
    errors.check_enum(request, pointer, "status", &["enabled", "disabled"]);
    let scopes = errors.objects(request, pointer, "scope");
    if scopes.len() > MAX_SCOPES {
        errors.push(
            ErrorCode::InvalidField,
            &format!("{pointer}/scope"),
            format!("at most {MAX_SCOPES} scopes"),
        );
    }
    for (scope_pointer, scope) in &scopes {
        match scope.get("id").and_then(Value::as_str) {
            Some(id) if !scope_ids.contains(id) => {
                errors.push(
                    ErrorCode::InvalidField,
                    &format!("{scope_pointer}/id"),
                    format!("no scope `{id}` in this instance"),
                );
            }
            Some(_) => {}
            None if scope.get("properties").is_some_and(Value::is_array) => {}
            None => errors.push(
                ErrorCode::MissingField,
                scope_pointer,
                "a scope is `{id}` or `{environment, properties}`",
            ),
        }
    }
    for (parameter_pointer, parameter) in errors.objects(request, pointer, "attachment_parameters")
    {
        errors.check_keys(
            parameter,
            &parameter_pointer,
            &["parameter_name"],
            &[
                "assessment_type",
                "assessment_id",
                "parameter_display_name",
                "parameter_type",
                "parameter_value",
            ],
        );
    }
    match request.get("notifications") {
        Some(Value::Object(notifications)) => {
            errors.check_keys(
                notifications,
                &format!("{pointer}/notifications"),
                &[],
                &["enabled", "controls"],
            );
            errors.check_bool(
                notifications,
                &format!("{pointer}/notifications"),
                "enabled",
            );
        }
        None | Some(Value::Null) => {}
        Some(_) => errors.push(
            ErrorCode::InvalidField,
            &format!("{pointer}/notifications"),
            "must be an object",
        ),
    }
    let mut attachment = Map::new();
    for key in ATTACHMENT_REQUIRED
        .iter()
        .chain(["data_selection_range"].iter())
    {
        if let Some(value) = request.get(*key) {
            attachment.insert((*key).into(), value.clone());
        }
    }
    let notifications = attachment.entry("notifications").or_insert(json!({}));
    if let Some(notifications) = notifications.as_object_mut() {
        notifications.entry("enabled").or_insert(json!(false));
        let controls = notifications.entry("controls").or_insert(json!({}));
        if let Some(controls) = controls.as_object_mut() {
            controls.entry("threshold_limit").or_insert(json!(15));
            controls.entry("failed_control_ids").or_insert(json!([]));
        }
    }
    attachment
}

async fn scope_ids(state: &AppState, instance_id: &str) -> ApiResult<HashSet<String>> {
    Ok(documents::all(state, instance_id, SCOPE)
        .await?
        .into_iter()
        .map(|document| document.id)
        .collect())
}

fn with_schedule(mut attachment: Map<String, Value>) -> Map<String, Value> {
    let enabled = attachment.get("status").and_then(Value::as_str) == Some("enabled");
    let schedule = attachment
        .get("schedule")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let last = attachment
        .get("last_scan")
        .and_then(|scan| scan.get("time"))
        .and_then(Value::as_str)
        .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
        .map(|time| time.with_timezone(&Utc));
    let next = enabled
        .then(|| next_scan_time(&schedule, last, Utc::now()))
        .flatten();
    attachment.insert(
        "next_scan_time".into(),
        next.map_or(Value::Null, |time| json!(timestamp(time))),
    );
    attachment
}

/// Attaches a profile to scopes (batch).
#[utoipa::path(post, path = "/instances/{instance_id}/v3/profiles/{profile_id}/attachments", tag = "v3 attachments", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path), AccountParam), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn create_profile_attachment(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, profile_id)): Path<(String, String)>,
    Query(account): Query<AccountParam>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let answer = create(
        &state,
        &auth.key,
        &profile_id,
        account.account_id.as_deref(),
        body,
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

/// Validates and stores new attachments of a profile in `by`'s instance (the API route and the
/// dashboard's form); answers `{profile_id, attachments}`.
pub(crate) async fn create(
    state: &AppState,
    by: &ApiKey,
    profile_id: &str,
    account_id: Option<&str>,
    body: Value,
) -> ApiResult<Value> {
    let instance_id = by.instance_id.as_str();
    documents::get(state, instance_id, PROFILE, profile_id).await?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &["attachments"], &["profile_id"]);
    let known_scopes = scope_ids(state, instance_id).await?;
    let mut created = Vec::new();
    for (pointer, item) in errors.objects(&request, "", "attachments") {
        created.push(normalise(&mut errors, item, &pointer, &known_scopes));
    }
    if created.is_empty() && errors.is_empty() {
        errors.push(
            ErrorCode::InvalidField,
            "/attachments",
            "must list at least one attachment",
        );
    }
    errors.finish(())?;
    let account_id = account_of(account_id, instance_id);
    let mut answers = Vec::new();
    for mut attachment in created {
        let id = new_id();
        attachment.insert("id".into(), json!(id));
        attachment.insert("profile_id".into(), json!(profile_id));
        attachment.insert("account_id".into(), json!(account_id));
        attachment.insert("instance_id".into(), json!(instance_id));
        attachment.insert("last_scan".into(), json!({}));
        stamp_created(&mut attachment, by);
        let body = Value::Object(with_schedule(attachment));
        documents::insert(state, instance_id, ATTACHMENT, &id, &body).await?;
        answers.push(body);
    }
    Ok(json!({"profile_id": profile_id, "attachments": answers}))
}

/// Lists a profile's attachments.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/profiles/{profile_id}/attachments", tag = "v3 attachments", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path), PageParams), responses((status = 200, body = serde_json::Value)))]
pub async fn list_profile_attachments(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((instance_id, profile_id)): Path<(String, String)>,
    Query(params): Query<PageParams>,
) -> ApiResult<ApiJson<Value>> {
    documents::get(&state, auth.instance_id(), PROFILE, &profile_id).await?;
    let items = pairs(
        documents::all(&state, auth.instance_id(), ATTACHMENT).await?,
        |body| body["profile_id"] == profile_id.as_str(),
    );
    Ok(ApiJson(page(
        &format!("/instances/{instance_id}/v3/profiles/{profile_id}/attachments"),
        "attachments",
        &params,
        items,
    )?))
}

/// Lists every attachment of the instance.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/attachments", tag = "v3 attachments", security(("bearer" = [])),
    params(("instance_id" = String, Path), PageParams), responses((status = 200, body = serde_json::Value)))]
pub async fn list_instance_attachments(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(instance_id): Path<String>,
    Query(params): Query<PageParams>,
) -> ApiResult<ApiJson<Value>> {
    let items = pairs(
        documents::all(&state, auth.instance_id(), ATTACHMENT).await?,
        |_| true,
    );
    Ok(ApiJson(page(
        &format!("/instances/{instance_id}/v3/attachments"),
        "attachments",
        &params,
        items,
    )?))
}

async fn get_attachment_of(
    state: &AppState,
    instance_id: &str,
    profile_id: &str,
    attachment_id: &str,
) -> ApiResult<palisade_store::Document> {
    let attachment = documents::get(state, instance_id, ATTACHMENT, attachment_id).await?;
    if attachment.body["profile_id"] != profile_id {
        return Err(ApiError::not_found("attachment", attachment_id));
    }
    Ok(attachment)
}

/// Returns one attachment.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/profiles/{profile_id}/attachments/{attachment_id}", tag = "v3 attachments", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path), ("attachment_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_profile_attachment(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, profile_id, attachment_id)): Path<(String, String, String)>,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(
        get_attachment_of(&state, auth.instance_id(), &profile_id, &attachment_id)
            .await?
            .body,
    ))
}

/// Replaces an attachment.
#[utoipa::path(put, path = "/instances/{instance_id}/v3/profiles/{profile_id}/attachments/{attachment_id}", tag = "v3 attachments", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path), ("attachment_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn replace_profile_attachment(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, profile_id, attachment_id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(
        replace(&state, &auth.key, &profile_id, &attachment_id, body).await?,
    ))
}

/// Validates and replaces an attachment of `by`'s instance (the API route and the dashboard's
/// form); the profile, the last scan and the creation fields stay.
pub(crate) async fn replace(
    state: &AppState,
    by: &ApiKey,
    profile_id: &str,
    attachment_id: &str,
    body: Value,
) -> ApiResult<Value> {
    let instance_id = by.instance_id.as_str();
    let previous = get_attachment_of(state, instance_id, profile_id, attachment_id).await?;
    let mut request = body_object(body)?;
    strip_server_fields(&mut request);
    let mut errors = BodyErrors::default();
    let known_scopes = scope_ids(state, instance_id).await?;
    let mut attachment = normalise(&mut errors, &request, "", &known_scopes);
    errors.finish(())?;
    stamp_updated(&mut attachment, &previous.body, by);
    attachment.insert("profile_id".into(), json!(profile_id));
    attachment.insert(
        "last_scan".into(),
        previous.body.get("last_scan").cloned().unwrap_or(json!({})),
    );
    let body = Value::Object(with_schedule(attachment));
    documents::replace(
        state,
        instance_id,
        ATTACHMENT,
        attachment_id,
        &body,
        Some(previous.version),
    )
    .await?;
    Ok(body)
}

/// Deletes an attachment; its reports stay.
#[utoipa::path(delete, path = "/instances/{instance_id}/v3/profiles/{profile_id}/attachments/{attachment_id}", tag = "v3 attachments", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path), ("attachment_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_profile_attachment(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, profile_id, attachment_id)): Path<(String, String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let previous =
        get_attachment_of(&state, auth.instance_id(), &profile_id, &attachment_id).await?;
    documents::delete(&state, auth.instance_id(), ATTACHMENT, &attachment_id).await?;
    Ok(ApiJson(previous.body))
}

/// Moves an attachment to the latest version of its profile.
#[utoipa::path(post, path = "/instances/{instance_id}/v3/profiles/{profile_id}/attachments/{attachment_id}/upgrade", tag = "v3 attachments", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path), ("attachment_id" = String, Path)), request_body = Option<serde_json::Value>,
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn upgrade_attachment(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, profile_id, attachment_id)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<ApiJson<Value>> {
    let previous =
        get_attachment_of(&state, auth.instance_id(), &profile_id, &attachment_id).await?;
    // The body (new attachment parameters) is optional; when present it must be valid.
    let parameters = if body.is_empty() {
        None
    } else {
        let request: Value = crate::json::parse_json(&body)?;
        let request = body_object(request)?;
        let mut errors = BodyErrors::default();
        errors.check_keys(&request, "", &[], &["attachment_parameters"]);
        errors.finish(())?;
        request.get("attachment_parameters").cloned()
    };
    let profile = documents::get(&state, auth.instance_id(), PROFILE, &profile_id).await?;
    let latest =
        super::profiles::latest_in_group(&state, auth.instance_id(), &profile.body).await?;
    let mut attachment = previous.body.as_object().cloned().unwrap_or_default();
    attachment.insert("profile_id".into(), latest["id"].clone());
    if let Some(parameters) = parameters {
        attachment.insert("attachment_parameters".into(), parameters);
    }
    stamp_updated(&mut attachment, &previous.body, &auth.key);
    let body = Value::Object(attachment);
    documents::replace(
        &state,
        auth.instance_id(),
        ATTACHMENT,
        &attachment_id,
        &body,
        Some(previous.version),
    )
    .await?;
    Ok(ApiJson(body))
}
