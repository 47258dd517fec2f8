//! Credentials for collectors: `POST|GET /instances/{instance_id}/v1/credentials`,
//! `GET|PUT|DELETE …/credentials/{credential_id}`. Secrets are sealed at rest and never
//! returned (see `service::credentials`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::service::credentials::{CREDENTIAL, masked, seal_body};
use crate::service::documents::{self, body_object, new_id};
use crate::state::AppState;

/// Stores a credential: `type` is `aws_cloud` (`access_key_id`, `secret_access_key`, `region`,
/// optional `session_token`, `endpoint_url`, `role_arn`), `username_password`, `user_name_pem`
/// (`username`, `pem`, optional `host`, `port`, `passphrase`) or `ibm_cloud` (`api_key`).
/// The answer shows the secrets masked.
#[utoipa::path(post, path = "/instances/{instance_id}/v1/credentials", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 503, body = palisade_model::error::ErrorBody)))]
pub async fn create_credential(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let request = body_object(body)?;
    let id = new_id();
    let stored = seal_body(&state, auth.instance_id(), &id, &request)?;
    documents::insert(&state, auth.instance_id(), CREDENTIAL, &id, &stored).await?;
    Ok((StatusCode::CREATED, ApiJson(masked(&stored))))
}

/// Lists credentials, secrets masked.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/credentials", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path)), responses((status = 200, body = serde_json::Value)))]
pub async fn list_credentials(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
) -> ApiResult<ApiJson<Value>> {
    let credentials: Vec<Value> = documents::all(&state, auth.instance_id(), CREDENTIAL)
        .await?
        .iter()
        .map(|document| masked(&document.body))
        .collect();
    Ok(ApiJson(serde_json::json!({"credentials": credentials})))
}

/// Returns a credential, secrets masked.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/credentials/{credential_id}", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("credential_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_credential(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, credential_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let document = documents::get(&state, auth.instance_id(), CREDENTIAL, &credential_id).await?;
    Ok(ApiJson(masked(&document.body)))
}

/// Replaces a credential (all of it: secrets are never read back, so they are sent again).
#[utoipa::path(put, path = "/instances/{instance_id}/v1/credentials/{credential_id}", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("credential_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn replace_credential(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, credential_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    documents::get(&state, auth.instance_id(), CREDENTIAL, &credential_id).await?;
    let request = body_object(body)?;
    let stored = seal_body(&state, auth.instance_id(), &credential_id, &request)?;
    documents::replace(
        &state,
        auth.instance_id(),
        CREDENTIAL,
        &credential_id,
        &stored,
        None,
    )
    .await?;
    Ok(ApiJson(masked(&stored)))
}

/// Deletes a credential.
#[utoipa::path(delete, path = "/instances/{instance_id}/v1/credentials/{credential_id}", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("credential_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_credential(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, credential_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    documents::delete(&state, auth.instance_id(), CREDENTIAL, &credential_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
