//! Instances and the caller's identity: `/v1/whoami`, `/v1/instances`,
//! `/instances/{instance_id}/v1/instance`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_model::tenancy::{Instance, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Authenticated, Authorized, Operator, ReadAccess, mint_key};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;

/// Who the caller is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub key_id: String,
    pub key_name: String,
    pub instance_id: String,
    pub role: Role,
    pub operator: bool,
}

/// Tells the caller which key, instance and role its key has.
#[utoipa::path(get, path = "/v1/whoami", tag = "instances", security(("bearer" = [])), responses(
    (status = 200, body = WhoAmI),
    (status = 401, body = palisade_model::error::ErrorBody),
))]
pub async fn whoami(Authenticated(key): Authenticated) -> ApiJson<WhoAmI> {
    ApiJson(WhoAmI {
        key_id: key.id,
        key_name: key.name,
        instance_id: key.instance_id,
        role: key.role,
        operator: key.operator,
    })
}

/// Instances, as listed to the operator.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstanceList {
    pub instances: Vec<Instance>,
}

/// Lists every instance (operator key only).
#[utoipa::path(get, path = "/v1/instances", tag = "instances", security(("bearer" = [])), responses(
    (status = 200, body = InstanceList),
    (status = 403, body = palisade_model::error::ErrorBody),
))]
pub async fn list_instances(
    State(state): State<AppState>,
    _operator: Operator,
) -> ApiResult<ApiJson<InstanceList>> {
    Ok(ApiJson(InstanceList {
        instances: state.store.list_instances().await?,
    }))
}

/// Body of `POST /v1/instances`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstanceRequest {
    /// A display name, 1–128 characters.
    pub name: String,
}

/// A new instance and the secret of its first admin key, shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedInstance {
    pub instance: Instance,
    pub admin_key_id: String,
    /// The admin key's secret: shown only in this answer.
    pub admin_key: String,
}

/// Creates an instance with one admin key (operator key only).
#[utoipa::path(post, path = "/v1/instances", tag = "instances", security(("bearer" = [])),
    request_body = CreateInstanceRequest,
    responses(
        (status = 201, body = CreatedInstance),
        (status = 400, body = palisade_model::error::ErrorBody),
        (status = 403, body = palisade_model::error::ErrorBody),
    ))]
pub async fn create_instance(
    State(state): State<AppState>,
    _operator: Operator,
    ApiJson(request): ApiJson<CreateInstanceRequest>,
) -> ApiResult<(StatusCode, ApiJson<CreatedInstance>)> {
    validate_name(&request.name, "/name")?;
    let created = create_instance_with_admin(&state, &request.name, false).await?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

/// Creates an instance and its first admin key; used by the API and by first-start bootstrap.
pub async fn create_instance_with_admin(
    state: &AppState,
    name: &str,
    operator: bool,
) -> ApiResult<CreatedInstance> {
    let instance = Instance {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        created_at: chrono::Utc::now(),
    };
    state.store.create_instance(&instance).await?;
    let minted = tokio::task::spawn_blocking(move || {
        mint_key(&instance.id, "admin", Role::Admin, operator).map(|m| (m, instance))
    })
    .await
    .map_err(|error| ApiError::internal(format!("key minting task failed: {error}")))??;
    let (minted, instance) = minted;
    state.store.create_key(&minted.stored).await?;
    Ok(CreatedInstance {
        instance,
        admin_key_id: minted.stored.key.id,
        admin_key: minted.token,
    })
}

/// Returns the caller's instance.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/instance", tag = "instances", security(("bearer" = [])),
    params(("instance_id" = String, Path, description = "The instance id")),
    responses(
        (status = 200, body = Instance),
        (status = 404, body = palisade_model::error::ErrorBody),
    ))]
pub async fn get_instance(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(instance_id): Path<String>,
) -> ApiResult<ApiJson<Instance>> {
    debug_assert_eq!(auth.instance_id(), instance_id);
    let instance = state
        .store
        .get_instance(auth.instance_id())
        .await?
        .ok_or_else(|| ApiError::not_found("instance", &instance_id))?;
    Ok(ApiJson(instance))
}

/// Checks a display name: 1–128 characters, no control characters.
pub fn validate_name(name: &str, pointer: &str) -> ApiResult<()> {
    let length = name.chars().count();
    if length == 0 || length > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`{pointer}` must be 1–128 characters without control characters"),
        )
        .with_target(ErrorTarget::field(pointer)));
    }
    Ok(())
}
