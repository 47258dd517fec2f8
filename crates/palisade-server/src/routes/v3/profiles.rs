//! Profiles: `/v3/profiles[/{profile_id}[/parameters|/compare]]`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use palisade_model::error::ErrorCode;
use palisade_model::tenancy::ApiKey;
use serde_json::{Map, Value, json};

use super::{
    ATTACHMENT, AccountParam, CONTROL_LIBRARY, PROFILE, account_of, stamp_created, stamp_updated,
    strip_server_fields,
};
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::documents::{self, BodyErrors, PageParams, body_object, new_id, page, pairs};
use crate::state::AppState;

const PARAMETER_FIELDS: &[&str] = &[
    "assessment_type",
    "assessment_id",
    "parameter_name",
    "parameter_default_value",
    "parameter_display_name",
    "parameter_type",
];
const PARAMETER_TYPES: &[&str] = &[
    "string",
    "numeric",
    "general",
    "boolean",
    "string_list",
    "ip_list",
    "timestamp",
];
const PROFILE_OPTIONAL: &[&str] = &[
    "profile_description",
    "latest",
    "version_group_label",
    "profile_type",
    "profile_name",
    "profile_version",
    "hierarchy_enabled",
    "controls_count",
    "control_parents_count",
    "attachments_count",
    "id",
    "instance_id",
    "account_id",
    "created_on",
    "created_by",
    "updated_on",
    "updated_by",
];

/// Checks `default_parameters` and returns them normalised.
pub fn check_parameters(
    errors: &mut BodyErrors,
    request: &Map<String, Value>,
    key: &str,
) -> Vec<Value> {
    let mut parameters = Vec::new();
    for (pointer, parameter) in errors.objects(request, "", key) {
        errors.check_keys(
            parameter,
            &pointer,
            &["assessment_id", "parameter_name"],
            PARAMETER_FIELDS,
        );
        errors.check_enum(parameter, &pointer, "parameter_type", PARAMETER_TYPES);
        let mut normalised = parameter.clone();
        normalised
            .entry("assessment_type")
            .or_insert(json!("automated"));
        parameters.push(Value::Object(normalised));
    }
    parameters
}

/// Validates a profile body and resolves its control references against this instance's
/// libraries, returning the stored shape.
async fn normalise(
    state: &AppState,
    instance_id: &str,
    request: &Map<String, Value>,
    required: &[&str],
) -> ApiResult<Map<String, Value>> {
    let mut errors = BodyErrors::default();
    errors.check_keys(request, "", required, PROFILE_OPTIONAL);
    errors.check_string(request, "", "profile_name", true);
    errors.check_string(request, "", "profile_version", false);
    errors.check_enum(request, "", "profile_type", &["custom", "predefined"]);
    let libraries: HashMap<String, Value> = documents::all(state, instance_id, CONTROL_LIBRARY)
        .await?
        .into_iter()
        .map(|document| (document.id, document.body))
        .collect();
    let mut controls = Vec::new();
    for (pointer, reference) in errors.objects(request, "", "controls") {
        // Replace bodies carry whole controls back; only the two ids matter.
        let library_id = reference
            .get("control_library_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let control_id = reference
            .get("control_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(library) = libraries.get(library_id) else {
            errors.push(
                ErrorCode::InvalidField,
                &format!("{pointer}/control_library_id"),
                format!("no control library `{library_id}` in this instance"),
            );
            continue;
        };
        let Some(control) = library["controls"].as_array().and_then(|all| {
            all.iter()
                .find(|control| control["control_id"] == control_id)
        }) else {
            errors.push(
                ErrorCode::InvalidField,
                &format!("{pointer}/control_id"),
                format!("control library `{library_id}` has no control `{control_id}`"),
            );
            continue;
        };
        let mut profile_control = control.as_object().cloned().unwrap_or_default();
        profile_control.insert("control_library_id".into(), json!(library_id));
        profile_control.insert(
            "control_library_version".into(),
            library["control_library_version"].clone(),
        );
        controls.push(Value::Object(profile_control));
    }
    let default_parameters = check_parameters(&mut errors, request, "default_parameters");
    errors.finish(())?;
    let mut profile = Map::new();
    for key in [
        "profile_name",
        "profile_description",
        "profile_version",
        "version_group_label",
    ] {
        if let Some(value) = request.get(key) {
            profile.insert(key.into(), value.clone());
        }
    }
    profile.entry("profile_description").or_insert(json!(""));
    profile
        .entry("version_group_label")
        .or_insert_with(|| json!(new_id()));
    profile.insert("profile_type".into(), json!("custom"));
    profile.insert(
        "latest".into(),
        request.get("latest").cloned().unwrap_or(json!(true)),
    );
    let parents: std::collections::BTreeSet<&str> = controls
        .iter()
        .filter_map(|control| control["control_parent"].as_str())
        .filter(|parent| !parent.is_empty())
        .collect();
    profile.insert("hierarchy_enabled".into(), json!(!parents.is_empty()));
    profile.insert("control_parents_count".into(), json!(parents.len()));
    profile.insert("controls_count".into(), json!(controls.len()));
    profile.insert("controls".into(), Value::Array(controls));
    profile.insert(
        "default_parameters".into(),
        Value::Array(default_parameters),
    );
    Ok(profile)
}

/// Adds the computed `attachments_count`.
async fn with_counts(state: &AppState, instance_id: &str, mut profile: Value) -> ApiResult<Value> {
    let profile_id = profile["id"].as_str().unwrap_or_default().to_owned();
    let attachments = documents::all(state, instance_id, ATTACHMENT).await?;
    let count = attachments
        .iter()
        .filter(|attachment| attachment.body["profile_id"] == profile_id.as_str())
        .count();
    profile["attachments_count"] = json!(count);
    Ok(profile)
}

/// Creates a custom profile from controls of this instance's libraries.
#[utoipa::path(post, path = "/instances/{instance_id}/v3/profiles", tag = "v3 profiles", security(("bearer" = [])),
    params(("instance_id" = String, Path), AccountParam), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn create_profile(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    Query(account): Query<AccountParam>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let answer = create(&state, &auth.key, account.account_id.as_deref(), body).await?;
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

/// Validates and stores a new custom profile of `by`'s instance (the API route and the
/// dashboard's form).
pub(crate) async fn create(
    state: &AppState,
    by: &ApiKey,
    account_id: Option<&str>,
    body: Value,
) -> ApiResult<Value> {
    let instance_id = by.instance_id.as_str();
    let request = body_object(body)?;
    let mut profile = normalise(
        state,
        instance_id,
        &request,
        &[
            "profile_name",
            "profile_version",
            "controls",
            "default_parameters",
        ],
    )
    .await?;
    let id = new_id();
    profile.insert("id".into(), json!(id));
    profile.insert("instance_id".into(), json!(instance_id));
    profile.insert(
        "account_id".into(),
        json!(account_of(account_id, instance_id)),
    );
    profile.insert("attachments_count".into(), json!(0));
    stamp_created(&mut profile, by);
    let body = Value::Object(profile);
    documents::insert(state, instance_id, PROFILE, &id, &body).await?;
    Ok(body)
}

/// Lists profiles.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/profiles", tag = "v3 profiles", security(("bearer" = [])),
    params(("instance_id" = String, Path), PageParams), responses((status = 200, body = serde_json::Value)))]
pub async fn list_profiles(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(instance_id): Path<String>,
    Query(params): Query<PageParams>,
) -> ApiResult<ApiJson<Value>> {
    let mut items = Vec::new();
    for (id, body) in pairs(
        documents::all(&state, auth.instance_id(), PROFILE).await?,
        |_| true,
    ) {
        items.push((id, with_counts(&state, auth.instance_id(), body).await?));
    }
    Ok(ApiJson(page(
        &format!("/instances/{instance_id}/v3/profiles"),
        "profiles",
        &params,
        items,
    )?))
}

/// Returns one profile.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/profiles/{profile_id}", tag = "v3 profiles", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_profile(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, profile_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let profile = documents::get(&state, auth.instance_id(), PROFILE, &profile_id).await?;
    Ok(ApiJson(
        with_counts(&state, auth.instance_id(), profile.body).await?,
    ))
}

/// Replaces a custom profile.
#[utoipa::path(put, path = "/instances/{instance_id}/v3/profiles/{profile_id}", tag = "v3 profiles", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn replace_profile(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, profile_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(
        replace(&state, &auth.key, &profile_id, body).await?,
    ))
}

/// Validates and replaces a custom profile of `by`'s instance (the API route and the dashboard's
/// form); fields the body leaves out keep their values.
pub(crate) async fn replace(
    state: &AppState,
    by: &ApiKey,
    profile_id: &str,
    body: Value,
) -> ApiResult<Value> {
    let instance_id = by.instance_id.as_str();
    let previous = documents::get(state, instance_id, PROFILE, profile_id).await?;
    if previous.body["profile_type"] == "predefined" {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a predefined profile cannot be changed; copy it into a custom profile",
        ));
    }
    let mut request = body_object(body)?;
    strip_server_fields(&mut request);
    for key in [
        "profile_name",
        "profile_description",
        "profile_version",
        "version_group_label",
    ] {
        if !request.contains_key(key)
            && let Some(value) = previous.body.get(key)
        {
            request.insert(key.into(), value.clone());
        }
    }
    let mut profile = normalise(
        state,
        instance_id,
        &request,
        &["controls", "default_parameters"],
    )
    .await?;
    stamp_updated(&mut profile, &previous.body, by);
    let body = Value::Object(profile);
    documents::replace(
        state,
        instance_id,
        PROFILE,
        profile_id,
        &body,
        Some(previous.version),
    )
    .await?;
    with_counts(state, instance_id, body).await
}

/// Deletes a custom profile that has no attachments.
#[utoipa::path(delete, path = "/instances/{instance_id}/v3/profiles/{profile_id}", tag = "v3 profiles", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn delete_custom_profile(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, profile_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let previous = documents::get(&state, auth.instance_id(), PROFILE, &profile_id).await?;
    if previous.body["profile_type"] == "predefined" {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a predefined profile cannot be deleted",
        ));
    }
    let counted = with_counts(&state, auth.instance_id(), previous.body).await?;
    if counted["attachments_count"].as_u64().unwrap_or(0) > 0 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the profile has attachments; delete them first",
        ));
    }
    documents::delete(&state, auth.instance_id(), PROFILE, &profile_id).await?;
    Ok(ApiJson(counted))
}

/// Returns a profile's default parameters.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/profiles/{profile_id}/parameters", tag = "v3 profiles", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn list_profile_parameters(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, profile_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let profile = documents::get(&state, auth.instance_id(), PROFILE, &profile_id).await?;
    Ok(ApiJson(
        json!({"id": profile_id, "default_parameters": profile.body["default_parameters"]}),
    ))
}

/// Replaces a profile's default parameters.
#[utoipa::path(put, path = "/instances/{instance_id}/v3/profiles/{profile_id}/parameters", tag = "v3 profiles", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn replace_profile_parameters(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, profile_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    let previous = documents::get(&state, auth.instance_id(), PROFILE, &profile_id).await?;
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &["default_parameters"], &["id"]);
    let parameters = check_parameters(&mut errors, &request, "default_parameters");
    errors.finish(())?;
    let mut profile = previous.body.clone();
    profile["default_parameters"] = Value::Array(parameters);
    if let Some(object) = profile.as_object_mut() {
        stamp_updated(object, &previous.body, &auth.key);
    }
    documents::replace(
        &state,
        auth.instance_id(),
        PROFILE,
        &profile_id,
        &profile,
        Some(previous.version),
    )
    .await?;
    Ok(ApiJson(
        json!({"id": profile_id, "default_parameters": profile["default_parameters"]}),
    ))
}

/// Compares a profile with the latest version in its version group.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/profiles/{profile_id}/compare", tag = "v3 profiles", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("profile_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn compare_profiles(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, profile_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let current = documents::get(&state, auth.instance_id(), PROFILE, &profile_id)
        .await?
        .body;
    let latest = latest_in_group(&state, auth.instance_id(), &current).await?;
    let controls_changes = diff_by(&current["controls"], &latest["controls"], |control| {
        control["control_id"].as_str().map(str::to_owned)
    });
    let parameter_key = |parameter: &Value| {
        Some(format!(
            "{}/{}",
            parameter["assessment_id"].as_str()?,
            parameter["parameter_name"].as_str()?
        ))
    };
    let default_parameters_changes = diff_by(
        &current["default_parameters"],
        &latest["default_parameters"],
        parameter_key,
    );
    let mut answer = current.clone();
    answer["current_predefined_version"] = current["profile_version"].clone();
    answer["latest_predefined_version"] = latest["profile_version"].clone();
    answer["controls_changes"] = controls_changes;
    answer["default_parameters_changes"] = default_parameters_changes;
    Ok(ApiJson(answer))
}

/// Returns the profile marked `latest` in `profile`'s version group (the profile itself when
/// none is).
pub async fn latest_in_group(
    state: &AppState,
    instance_id: &str,
    profile: &Value,
) -> ApiResult<Value> {
    let group = profile["version_group_label"].clone();
    let latest = documents::all(state, instance_id, PROFILE)
        .await?
        .into_iter()
        .map(|document| document.body)
        .filter(|candidate| {
            candidate["version_group_label"] == group && candidate["latest"] == true
        })
        .max_by_key(|candidate| {
            candidate["updated_on"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        });
    Ok(latest.unwrap_or_else(|| profile.clone()))
}

/// Lists what was added, removed and changed between two arrays, matched by key.
fn diff_by(current: &Value, latest: &Value, key: impl Fn(&Value) -> Option<String>) -> Value {
    let index = |items: &Value| -> HashMap<String, Value> {
        items
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| Some((key(item)?, item.clone())))
            .collect()
    };
    let (current_items, latest_items) = (index(current), index(latest));
    let mut added: Vec<Value> = latest_items
        .iter()
        .filter(|(id, _)| !current_items.contains_key(*id))
        .map(|(_, item)| item.clone())
        .collect();
    let mut removed: Vec<Value> = current_items
        .iter()
        .filter(|(id, _)| !latest_items.contains_key(*id))
        .map(|(_, item)| item.clone())
        .collect();
    let mut updated: Vec<Value> = latest_items
        .iter()
        .filter(|(id, item)| current_items.get(*id).is_some_and(|old| old != *item))
        .map(|(_, item)| item.clone())
        .collect();
    for list in [&mut added, &mut removed, &mut updated] {
        list.sort_by_key(|item| key(item).unwrap_or_default());
    }
    json!({
        "total_added": added.len(), "total_removed": removed.len(), "total_updated": updated.len(),
        "added": added, "removed": removed, "updated": updated,
    })
}
