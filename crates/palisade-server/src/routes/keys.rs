//! API keys of an instance: `/instances/{instance_id}/v1/keys`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_model::error::ErrorCode;
use palisade_model::tenancy::{ApiKey, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Authorized, KeyManagement, mint_key};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::routes::instances::validate_name;
use crate::state::AppState;

/// The keys of an instance, without secrets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
}

/// Lists the instance's keys, revoked ones included, without their secrets.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/keys", tag = "keys", security(("bearer" = [])),
    params(("instance_id" = String, Path, description = "The instance id")),
    responses(
        (status = 200, body = KeyList),
        (status = 403, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody),
    ))]
pub async fn list_keys(
    State(state): State<AppState>,
    auth: Authorized<KeyManagement>,
    Path(_instance_id): Path<String>,
) -> ApiResult<ApiJson<KeyList>> {
    Ok(ApiJson(KeyList {
        keys: state.store.list_keys(auth.instance_id()).await?,
    }))
}

/// Body of `POST …/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// What the key is for, 1–128 characters.
    pub name: String,
    pub role: Role,
}

/// A new key with its secret, which is shown only in this answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The bearer token: `pal_<id>_<secret>`. Store it now; it cannot be shown again.
    pub secret: String,
}

/// Creates a key and returns its secret once.
#[utoipa::path(post, path = "/instances/{instance_id}/v1/keys", tag = "keys", security(("bearer" = [])),
    params(("instance_id" = String, Path, description = "The instance id")),
    request_body = CreateKeyRequest,
    responses(
        (status = 201, body = CreatedKey),
        (status = 400, body = palisade_model::error::ErrorBody),
        (status = 403, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody),
    ))]
pub async fn create_key(
    State(state): State<AppState>,
    auth: Authorized<KeyManagement>,
    Path(_instance_id): Path<String>,
    ApiJson(request): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, ApiJson<CreatedKey>)> {
    Ok((
        StatusCode::CREATED,
        ApiJson(create(&state, &auth.key, request).await?),
    ))
}

/// Creates a key in `by`'s instance (the API route and the dashboard's form).
pub(crate) async fn create(
    state: &AppState,
    by: &ApiKey,
    request: CreateKeyRequest,
) -> ApiResult<CreatedKey> {
    validate_name(&request.name, "/name")?;
    let instance_id = by.instance_id.clone();
    let minted = tokio::task::spawn_blocking(move || {
        mint_key(&instance_id, &request.name, request.role, false)
    })
    .await
    .map_err(|error| ApiError::internal(format!("key minting task failed: {error}")))??;
    state.store.create_key(&minted.stored).await?;
    tracing::info!(key_id = %minted.stored.key.id, role = %minted.stored.key.role, by = %by.id, "key created");
    Ok(CreatedKey {
        key: minted.stored.key,
        secret: minted.token,
    })
}

/// Revokes a key; it stops working at once. The last active admin key cannot be revoked, so an
/// instance cannot lock itself out.
#[utoipa::path(delete, path = "/instances/{instance_id}/v1/keys/{key_id}", tag = "keys", security(("bearer" = [])),
    params(
        ("instance_id" = String, Path, description = "The instance id"),
        ("key_id" = String, Path, description = "The key id"),
    ),
    responses(
        (status = 204),
        (status = 404, body = palisade_model::error::ErrorBody),
        (status = 409, body = palisade_model::error::ErrorBody),
    ))]
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: Authorized<KeyManagement>,
    Path((_instance_id, key_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    revoke(&state, &auth.key, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a key of `by`'s instance and ends its dashboard sessions (the API route and the
/// dashboard's form).
pub(crate) async fn revoke(state: &AppState, by: &ApiKey, key_id: &str) -> ApiResult<()> {
    let instance_id = by.instance_id.as_str();
    let target = state
        .store
        .find_key(key_id)
        .await?
        .filter(|stored| stored.key.instance_id == instance_id && stored.key.revoked_at.is_none())
        .ok_or_else(|| ApiError::not_found("key", key_id))?;
    if target.key.role == Role::Admin
        && state
            .store
            .count_active_keys(instance_id, Role::Admin)
            .await?
            <= 1
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "this is the instance's last active admin key; create another admin key first",
        ));
    }
    if !state
        .store
        .revoke_key(instance_id, key_id, chrono::Utc::now())
        .await?
    {
        return Err(ApiError::not_found("key", key_id));
    }
    // Each dashboard request re-reads the key, so its sessions already cannot act; deleting them
    // keeps the table to live sessions.
    let ended = state.store.delete_key_sessions(instance_id, key_id).await?;
    tracing::info!(key_id = %key_id, by = %by.id, sessions_ended = ended, "key revoked");
    Ok(())
}
