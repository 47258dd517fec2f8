//! `GET|PATCH /v3/settings` and `POST /v3/test_event`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_model::error::ErrorCode;
use serde_json::{Map, Value, json};

use super::SETTINGS;
use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::service::documents::{self, BodyErrors, body_object, timestamp};
use crate::state::AppState;

const SETTINGS_ID: &str = "settings";

async fn current(
    state: &AppState,
    instance_id: &str,
) -> ApiResult<Option<palisade_store::Document>> {
    Ok(state
        .store
        .get_document(instance_id, SETTINGS.store_kind, SETTINGS_ID)
        .await?)
}

/// Returns the instance's settings (Event Notifications and Object Storage connections).
#[utoipa::path(get, path = "/instances/{instance_id}/v3/settings", tag = "v3 settings", security(("bearer" = [])),
    params(("instance_id" = String, Path)), responses((status = 200, body = serde_json::Value)))]
pub async fn get_settings(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
) -> ApiResult<ApiJson<Value>> {
    let body = current(&state, auth.instance_id()).await?.map_or_else(
        || json!({"event_notifications": {}, "object_storage": {}}),
        |document| document.body,
    );
    Ok(ApiJson(body))
}

/// Updates the settings; fields not sent are kept.
#[utoipa::path(patch, path = "/instances/{instance_id}/v3/settings", tag = "v3 settings", security(("bearer" = [])),
    params(("instance_id" = String, Path)), request_body = serde_json::Value, responses((status = 200, body = serde_json::Value)))]
pub async fn update_settings(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(
        &request,
        "",
        &[],
        &["event_notifications", "object_storage"],
    );
    let sections: [(&str, &[&str]); 2] = [
        (
            "event_notifications",
            &[
                "instance_crn",
                "source_description",
                "source_name",
                "source_id",
                "updated_on",
            ],
        ),
        (
            "object_storage",
            &[
                "instance_crn",
                "bucket",
                "bucket_location",
                "bucket_endpoint",
                "updated_on",
            ],
        ),
    ];
    for (section, allowed) in sections {
        match request.get(section) {
            None | Some(Value::Null) => {}
            Some(Value::Object(fields)) => {
                errors.check_keys(fields, &format!("/{section}"), &[], allowed);
                for key in allowed.iter() {
                    errors.check_string(fields, &format!("/{section}"), key, false);
                }
            }
            Some(_) => errors.push(
                ErrorCode::InvalidField,
                &format!("/{section}"),
                "must be an object",
            ),
        }
    }
    errors.finish(())?;
    let existing = current(&state, auth.instance_id()).await?;
    let mut merged = existing.as_ref().map_or_else(
        || json!({"event_notifications": {}, "object_storage": {}}),
        |document| document.body.clone(),
    );
    let now = timestamp(chrono::Utc::now());
    for (section, _) in sections {
        if let Some(Value::Object(fields)) = request.get(section) {
            let mut target: Map<String, Value> = merged
                .get(section)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (key, value) in fields {
                target.insert(key.clone(), value.clone());
            }
            target.insert("updated_on".into(), json!(now));
            if section == "event_notifications" {
                target.entry("source_id").or_insert_with(|| {
                    json!(format!("crn:v1:palisade:scc:{}", auth.instance_id()))
                });
            }
            merged[section] = Value::Object(target);
        }
    }
    match existing {
        Some(document) => {
            documents::replace(
                &state,
                auth.instance_id(),
                SETTINGS,
                SETTINGS_ID,
                &merged,
                Some(document.version),
            )
            .await?
        }
        None => {
            documents::insert(&state, auth.instance_id(), SETTINGS, SETTINGS_ID, &merged).await?
        }
    };
    Ok(ApiJson(merged))
}

/// Sends a test event to the connected Event Notifications destination.
#[utoipa::path(post, path = "/instances/{instance_id}/v3/test_event", tag = "v3 settings", security(("bearer" = [])),
    params(("instance_id" = String, Path)), responses((status = 202, body = serde_json::Value)))]
pub async fn post_test_event(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let configured = current(&state, auth.instance_id())
        .await?
        .is_some_and(|document| {
            document.body["event_notifications"]
                .get("instance_crn")
                .and_then(Value::as_str)
                .is_some_and(|crn| !crn.is_empty())
        });
    tracing::info!(instance = %auth.instance_id(), configured, "test event requested");
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(json!({"success": configured})),
    ))
}
