//! Collector agents (see `service::collectors`):
//!
//! - administrators: `POST|GET /instances/{instance_id}/v1/collectors`,
//!   `GET|PUT|DELETE …/collectors/{collector_id}`, `POST …/{collector_id}/registration_code`;
//! - the agent: `POST /v1/collectors/register` (the one-time code is the credential, so the route
//!   takes no key and is rate limited per client address), then with its `collector` key
//!   `POST …/{collector_id}/heartbeat` and `GET …/{collector_id}/jobs`.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_model::tenancy::Role;
use palisade_store::{Heartbeat, StoredCollector};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::{Authorized, CollectorAgent, ConfigWrite, ReadAccess, mint_key};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::collectors::{
    self, REGISTRATION_VALIDITY, check_spec, code_hash, new_registration_code, view,
};
use crate::service::documents::{body_object, new_id, timestamp};
use crate::state::AppState;

/// Creates a collector and returns its one-time `registration_code` (valid 24 hours; only its
/// hash is kept). Body: `name`, optional `description` and `targets` — each target has `kind`
/// `aws` (`credential_id` of an `aws_cloud` credential, optional `regions`), `host` (optional
/// `root` or — for another machine over SSH — `credential_id` of a `user_name_pem` credential
/// with a `host`; optional `account_id`) or `import` (`import_kind`, `paths` on the collector's machine,
/// optional `account_id`), plus optional `id`, `name` and `interval_seconds` (default 3600).
#[utoipa::path(post, path = "/instances/{instance_id}/v1/collectors", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn create_collector(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let spec = check_spec(&state, auth.instance_id(), &body_object(body)?).await?;
    let now = Utc::now();
    let (code, hash) = new_registration_code();
    let collector = StoredCollector {
        id: new_id(),
        name: spec.name,
        description: spec.description,
        targets: spec.targets,
        created_at: now,
        code_expires_at: Some(now + REGISTRATION_VALIDITY),
        key_id: None,
        registered_at: None,
        last_heartbeat_at: None,
        agent_version: None,
        host_name: None,
        last_job: None,
    };
    state
        .store
        .create_collector(auth.instance_id(), &collector, &hash)
        .await?;
    let mut answer = view(&collector, now);
    answer["registration_code"] = json!(code);
    Ok((StatusCode::CREATED, ApiJson(answer)))
}

/// Lists the collectors with their status (`pending`, `expired`, `registered`, `active`,
/// `stale`, `offline`), last heartbeat, version, host name and last job result.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/collectors", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path)), responses((status = 200, body = serde_json::Value)))]
pub async fn list_collectors(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
) -> ApiResult<ApiJson<Value>> {
    let collectors = collectors::overview(&state, auth.instance_id()).await?;
    Ok(ApiJson(json!({"collectors": collectors})))
}

async fn find(
    state: &AppState,
    instance_id: &str,
    collector_id: &str,
) -> ApiResult<StoredCollector> {
    state
        .store
        .get_collector(instance_id, collector_id)
        .await?
        .ok_or_else(|| ApiError::not_found("collector", collector_id))
}

/// Returns a collector with its status.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/collectors/{collector_id}", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("collector_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_collector(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, collector_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let collector = find(&state, auth.instance_id(), &collector_id).await?;
    Ok(ApiJson(view(&collector, Utc::now())))
}

/// Replaces a collector's name, description and targets (the agent picks them up at its next
/// job pull).
#[utoipa::path(put, path = "/instances/{instance_id}/v1/collectors/{collector_id}", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("collector_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn replace_collector(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, collector_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    find(&state, auth.instance_id(), &collector_id).await?;
    let spec = check_spec(&state, auth.instance_id(), &body_object(body)?).await?;
    if !state
        .store
        .update_collector(
            auth.instance_id(),
            &collector_id,
            &spec.name,
            &spec.description,
            &spec.targets,
        )
        .await?
    {
        return Err(ApiError::not_found("collector", &collector_id));
    }
    let collector = find(&state, auth.instance_id(), &collector_id).await?;
    Ok(ApiJson(view(&collector, Utc::now())))
}

/// Deletes a collector and revokes its key at once: the agent's next call is refused.
#[utoipa::path(delete, path = "/instances/{instance_id}/v1/collectors/{collector_id}", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("collector_id" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_collector(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, collector_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if !state
        .store
        .delete_collector(auth.instance_id(), &collector_id, Utc::now())
        .await?
    {
        return Err(ApiError::not_found("collector", &collector_id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new registration code for a collector that has not registered yet (the old code
/// stops working).
#[utoipa::path(post, path = "/instances/{instance_id}/v1/collectors/{collector_id}/registration_code", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("collector_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn renew_registration_code(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, collector_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    find(&state, auth.instance_id(), &collector_id).await?;
    let (code, hash) = new_registration_code();
    let expires = Utc::now() + REGISTRATION_VALIDITY;
    if !state
        .store
        .renew_registration_code(auth.instance_id(), &collector_id, &hash, expires)
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "this collector is registered; delete it and create a new one to register another agent",
        ));
    }
    Ok(ApiJson(
        json!({"registration_code": code, "registration_expires_at": timestamp(expires)}),
    ))
}

/// Body of the registration exchange.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    /// The one-time code `POST …/collectors` answered.
    pub registration_code: String,
}

/// What a registered agent needs; `api_key` is shown only here.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Registration {
    pub collector_id: String,
    pub instance_id: String,
    pub name: String,
    pub key_id: String,
    /// A `collector` key: `pal_<id>_<secret>`. Keep it; it cannot be shown again.
    pub api_key: String,
}

/// Exchanges a registration code for the collector's API key, once. Takes no key (the code is
/// the credential) and is rate limited per client address.
#[utoipa::path(post, path = "/v1/collectors/register", tag = "collectors",
    request_body = RegistrationRequest,
    responses((status = 201, body = Registration), (status = 401, body = palisade_model::error::ErrorBody), (status = 429, body = palisade_model::error::ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    ApiJson(request): ApiJson<RegistrationRequest>,
) -> ApiResult<(StatusCode, ApiJson<Registration>)> {
    // Keyed by the peer's address: a client guessing codes slows itself down, not others.
    let client = peer.map_or_else(|| "local".to_owned(), |peer| peer.0.0.ip().to_string());
    state.check_rate(&format!("collector-registration:{client}"))?;
    let refused = || {
        ApiError::new(
            ErrorCode::Unauthorized,
            "the registration code is unknown, already used or expired; ask for a new one",
        )
        .with_target(ErrorTarget::field("/registration_code"))
    };
    let hash = code_hash(&request.registration_code);
    let now = Utc::now();
    let (instance_id, collector) = state
        .store
        .find_registration(&hash, now)
        .await?
        .ok_or_else(refused)?;
    let key_name = format!("collector {}", collector.name);
    let minting_instance = instance_id.clone();
    let minted = tokio::task::spawn_blocking(move || {
        mint_key(&minting_instance, &key_name, Role::Collector, false)
    })
    .await
    .map_err(|error| ApiError::internal(format!("key minting task failed: {error}")))??;
    if !state
        .store
        .complete_registration(&instance_id, &collector.id, &hash, &minted.stored, now)
        .await?
    {
        return Err(refused());
    }
    tracing::info!(instance_id = %instance_id, collector_id = %collector.id, "collector registered");
    Ok((
        StatusCode::CREATED,
        ApiJson(Registration {
            collector_id: collector.id,
            instance_id,
            name: collector.name,
            key_id: minted.stored.key.id,
            api_key: minted.token,
        }),
    ))
}

/// Body of a heartbeat.
#[derive(Debug, Deserialize, ToSchema)]
pub struct HeartbeatRequest {
    /// The agent's version.
    pub version: Option<String>,
    /// The machine the agent runs on.
    pub host_name: Option<String>,
    /// The result of the latest job that finished since the previous heartbeat.
    #[schema(value_type = Option<Object>)]
    pub last_job: Option<Value>,
}

fn short(text: Option<String>) -> Option<String> {
    text.map(|text| text.chars().take(256).collect())
}

/// Records a heartbeat of the calling collector (its own key only) and answers its status.
#[utoipa::path(post, path = "/instances/{instance_id}/v1/collectors/{collector_id}/heartbeat", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("collector_id" = String, Path)), request_body = HeartbeatRequest,
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    auth: Authorized<CollectorAgent>,
    Path((_instance_id, collector_id)): Path<(String, String)>,
    ApiJson(request): ApiJson<HeartbeatRequest>,
) -> ApiResult<ApiJson<Value>> {
    if let Some(result) = &request.last_job {
        collectors::check_job_result(result)?;
    }
    let now = Utc::now();
    let beat = Heartbeat {
        at: now,
        agent_version: short(request.version),
        host_name: short(request.host_name),
        last_job: request.last_job,
    };
    // Only the collector's own key matches; any other key (even an admin's) sees a 404.
    if !state
        .store
        .record_heartbeat(auth.instance_id(), &collector_id, &auth.key.id, &beat)
        .await?
    {
        return Err(ApiError::not_found("collector", &collector_id));
    }
    Ok(ApiJson(
        json!({"status": "active", "last_heartbeat_at": timestamp(now)}),
    ))
}

/// The calling collector's jobs: its targets, with their credentials opened. Answered only to the
/// collector's own key.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/collectors/{collector_id}/jobs", tag = "collectors", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("collector_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody), (status = 503, body = palisade_model::error::ErrorBody)))]
pub async fn collector_jobs(
    State(state): State<AppState>,
    auth: Authorized<CollectorAgent>,
    Path((_instance_id, collector_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let collector = state
        .store
        .get_collector(auth.instance_id(), &collector_id)
        .await?
        .filter(|collector| collector.key_id.as_deref() == Some(auth.key.id.as_str()))
        .ok_or_else(|| ApiError::not_found("collector", &collector_id))?;
    let jobs = collectors::jobs(&state, auth.instance_id(), &collector).await?;
    Ok(ApiJson(json!({"jobs": jobs})))
}
