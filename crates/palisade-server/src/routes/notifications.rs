//! Notifications: IBM's Notifications v1 at `/instances/{instance_id}/notifications/v1/{account_id}/…`
//! (IBM's SDK works with the service URL `<palisade>/instances/{instance_id}/notifications`), and
//! Palisade's delivery log at `/instances/{instance_id}/v1/notifications/deliveries`.

use axum::extract::{Path, Query, State};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_model::tenancy::ApiKey;
use palisade_store::notifications::{
    AttemptOutcome, Delivery, DeliveryFilter, DeliveryState, NewDelivery,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::findings::{check_path_id, wire_time};
use crate::service::notifications::signing::signing_key;
use crate::service::notifications::{
    Channel, ChannelRequest, MAX_CHANNELS_PER_ACCOUNT, channel_from_request, delivery, test_payload,
};
use crate::state::AppState;

/// The routes of this module, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            list_all_channels,
            create_notification_channel,
            delete_notification_channels
        ))
        .routes(routes!(
            get_notification_channel,
            update_notification_channel,
            delete_notification_channel
        ))
        .routes(routes!(test_notification_channel))
        .routes(routes!(get_public_key))
        .routes(routes!(list_deliveries))
}

/// Path of account-level routes.
#[derive(Debug, Deserialize)]
pub struct AccountPath {
    pub instance_id: String,
    pub account_id: String,
}

/// Path of one channel.
#[derive(Debug, Deserialize)]
pub struct ChannelPath {
    pub instance_id: String,
    pub account_id: String,
    pub channel_id: String,
}

/// Reads a stored channel as the API shows it (the dashboard's pages too).
pub(crate) fn stored_channel(
    stored: palisade_store::notifications::StoredChannel,
) -> ApiResult<Channel> {
    let mut channel: Channel = serde_json::from_value(stored.body)
        .map_err(|error| ApiError::internal(format!("stored channel does not parse: {error}")))?;
    channel.created_at = Some(wire_time(stored.created_at));
    channel.updated_at = Some(wire_time(stored.updated_at));
    Ok(channel)
}

fn channel_body(channel: &Channel) -> ApiResult<serde_json::Value> {
    serde_json::to_value(channel).map_err(|error| ApiError::internal(error.to_string()))
}

/// Query of the channel list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChannelListQuery {
    pub limit: Option<u32>,
    pub skip: Option<u32>,
}

/// IBM's `ChannelsList`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelList {
    pub channels: Vec<Channel>,
}

/// Lists the account's channels.
#[utoipa::path(get, path = "/instances/{instance_id}/notifications/v1/{account_id}/notifications/channels", tag = "notifications",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ChannelListQuery),
    responses((status = 200, body = ChannelList), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_all_channels(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<AccountPath>,
    Query(query): Query<ChannelListQuery>,
) -> ApiResult<ApiJson<ChannelList>> {
    check_path_id("account_id", &path.account_id)?;
    let channels = state
        .store
        .list_channels(auth.instance_id(), &path.account_id)
        .await?
        .into_iter()
        .skip(query.skip.unwrap_or(0) as usize)
        .take(query.limit.unwrap_or(u32::MAX) as usize)
        .map(stored_channel)
        .collect::<ApiResult<_>>()?;
    Ok(ApiJson(ChannelList { channels }))
}

/// IBM's `ChannelInfo`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelInfo {
    pub channel_id: String,
    pub status_code: u16,
}

/// Creates a channel (at most 15 per account).
#[utoipa::path(post, path = "/instances/{instance_id}/notifications/v1/{account_id}/notifications/channels", tag = "notifications",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path)),
    request_body = ChannelRequest,
    responses((status = 200, body = ChannelInfo), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn create_notification_channel(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(path): Path<AccountPath>,
    ApiJson(request): ApiJson<ChannelRequest>,
) -> ApiResult<ApiJson<ChannelInfo>> {
    check_path_id("account_id", &path.account_id)?;
    let channel_id = create_channel(&state, &auth.key, &path.account_id, &request).await?;
    Ok(ApiJson(ChannelInfo {
        channel_id,
        status_code: 200,
    }))
}

/// Validates and stores a new channel of an account of `by`'s instance (the API route and the
/// dashboard's form); answers its id.
pub(crate) async fn create_channel(
    state: &AppState,
    by: &ApiKey,
    account_id: &str,
    request: &ChannelRequest,
) -> ApiResult<String> {
    let channel_id = uuid::Uuid::new_v4().to_string();
    let channel = channel_from_request(&channel_id, request, &state.config)?;
    let existing = state
        .store
        .list_channels(&by.instance_id, account_id)
        .await?;
    if existing.len() >= MAX_CHANNELS_PER_ACCOUNT {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("an account has at most {MAX_CHANNELS_PER_ACCOUNT} channels; delete one first"),
        ));
    }
    state
        .store
        .insert_channel(
            &by.instance_id,
            account_id,
            &channel_id,
            &channel_body(&channel)?,
            Utc::now(),
        )
        .await?;
    tracing::info!(channel = %channel_id, kind = %channel.channel_type, by = %by.id, "notification channel created");
    Ok(channel_id)
}

/// IBM's `ChannelsDelete`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelsDeleted {
    pub message: String,
    /// The ids that existed and were deleted.
    pub deleted: Vec<String>,
}

/// Deletes several channels by id (the body is a JSON array of ids).
#[utoipa::path(delete, path = "/instances/{instance_id}/notifications/v1/{account_id}/notifications/channels", tag = "notifications",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path)),
    request_body = Vec<String>,
    responses((status = 200, body = ChannelsDeleted), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn delete_notification_channels(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(path): Path<AccountPath>,
    ApiJson(channel_ids): ApiJson<Vec<String>>,
) -> ApiResult<ApiJson<ChannelsDeleted>> {
    check_path_id("account_id", &path.account_id)?;
    if channel_ids.is_empty() || channel_ids.len() > 100 {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "the body must name between 1 and 100 channel ids",
        )
        .with_target(ErrorTarget::field("")));
    }
    let deleted = state
        .store
        .delete_channels(auth.instance_id(), &path.account_id, &channel_ids)
        .await?;
    Ok(ApiJson(ChannelsDeleted {
        message: "Success".into(),
        deleted,
    }))
}

/// IBM's `ChannelGet`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelGet {
    pub channel: Channel,
}

/// Returns one channel.
#[utoipa::path(get, path = "/instances/{instance_id}/notifications/v1/{account_id}/notifications/channels/{channel_id}", tag = "notifications",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("channel_id" = String, Path)),
    responses((status = 200, body = ChannelGet), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_notification_channel(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<ChannelPath>,
) -> ApiResult<ApiJson<ChannelGet>> {
    let stored = state
        .store
        .get_channel(auth.instance_id(), &path.account_id, &path.channel_id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel", &path.channel_id))?;
    Ok(ApiJson(ChannelGet {
        channel: stored_channel(stored)?,
    }))
}

/// Replaces a channel's settings.
#[utoipa::path(put, path = "/instances/{instance_id}/notifications/v1/{account_id}/notifications/channels/{channel_id}", tag = "notifications",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("channel_id" = String, Path)),
    request_body = ChannelRequest,
    responses((status = 200, body = ChannelInfo), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn update_notification_channel(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(path): Path<ChannelPath>,
    ApiJson(request): ApiJson<ChannelRequest>,
) -> ApiResult<ApiJson<ChannelInfo>> {
    update_channel(
        &state,
        &auth.key,
        &path.account_id,
        &path.channel_id,
        &request,
    )
    .await?;
    Ok(ApiJson(ChannelInfo {
        channel_id: path.channel_id,
        status_code: 200,
    }))
}

/// Validates and replaces a channel's settings (the API route and the dashboard's form).
pub(crate) async fn update_channel(
    state: &AppState,
    by: &ApiKey,
    account_id: &str,
    channel_id: &str,
    request: &ChannelRequest,
) -> ApiResult<()> {
    let channel = channel_from_request(channel_id, request, &state.config)?;
    state
        .store
        .update_channel(
            &by.instance_id,
            account_id,
            channel_id,
            &channel_body(&channel)?,
            Utc::now(),
        )
        .await
        .map_err(|error| match error {
            palisade_store::StoreError::NotFound(_) => ApiError::not_found("channel", channel_id),
            other => other.into(),
        })?;
    Ok(())
}

/// IBM's `ChannelDelete`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelDeleted {
    pub channel_id: String,
    pub message: String,
}

/// Deletes one channel; its queued deliveries end as failed.
#[utoipa::path(delete, path = "/instances/{instance_id}/notifications/v1/{account_id}/notifications/channels/{channel_id}", tag = "notifications",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("channel_id" = String, Path)),
    responses((status = 200, body = ChannelDeleted), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_notification_channel(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(path): Path<ChannelPath>,
) -> ApiResult<ApiJson<ChannelDeleted>> {
    let deleted = state
        .store
        .delete_channels(
            auth.instance_id(),
            &path.account_id,
            std::slice::from_ref(&path.channel_id),
        )
        .await?;
    if deleted.is_empty() {
        return Err(ApiError::not_found("channel", &path.channel_id));
    }
    Ok(ApiJson(ChannelDeleted {
        channel_id: path.channel_id,
        message: "Success".into(),
    }))
}

/// IBM's `TestChannel`, plus what happened.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestResult {
    /// `success` or `failed`.
    pub test: String,
    /// The delivery in the log.
    pub delivery_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Sends a test notification through the channel now (enabled or not) and says how it went; the
/// attempt is in the delivery log, and a transient failure is retried like any delivery.
#[utoipa::path(get, path = "/instances/{instance_id}/notifications/v1/{account_id}/notifications/channels/{channel_id}/test", tag = "notifications",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path), ("channel_id" = String, Path)),
    responses((status = 200, body = TestResult), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn test_notification_channel(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(path): Path<ChannelPath>,
) -> ApiResult<ApiJson<TestResult>> {
    let stored = state
        .store
        .get_channel(auth.instance_id(), &path.account_id, &path.channel_id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel", &path.channel_id))?;
    let channel = stored_channel(stored)?;
    let now = Utc::now();
    let delivery_id = uuid::Uuid::now_v7().to_string();
    let new = NewDelivery {
        id: delivery_id.clone(),
        instance_id: auth.instance_id().to_owned(),
        account_id: path.account_id.clone(),
        channel_id: path.channel_id.clone(),
        dedup_key: format!("test:{delivery_id}"),
        payload: test_payload(&channel, now),
    };
    // Queued first (so the attempt is logged and, if it fails transiently, retried), due only
    // after a lease so the worker does not send it while this request does.
    state
        .store
        .enqueue_delivery(&new, now, now + chrono::Duration::minutes(2))
        .await?;
    let queued = state
        .store
        .get_delivery(auth.instance_id(), &delivery_id)
        .await?
        .ok_or_else(|| ApiError::internal("test delivery missing right after it was queued"))?;
    let outcome = delivery::attempt(&state, &queued, now).await?;
    let (test, error) = match outcome {
        AttemptOutcome::Delivered => ("success", None),
        AttemptOutcome::Retry { error, .. } | AttemptOutcome::Failed { error } => {
            ("failed", Some(error))
        }
    };
    Ok(ApiJson(TestResult {
        test: test.into(),
        delivery_id,
        error,
    }))
}

/// IBM's `PublicKeyGet`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicKey {
    /// PEM (`-----BEGIN PUBLIC KEY-----`) of the RS256 key that signs webhook bodies.
    pub public_key: String,
    /// The `kid` of JWT headers signed with it.
    pub key_id: String,
}

/// Returns the public key receivers verify webhook JWTs with (made on first use).
#[utoipa::path(get, path = "/instances/{instance_id}/notifications/v1/{account_id}/notifications/public_key", tag = "notifications",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), ("account_id" = String, Path)),
    responses((status = 200, body = PublicKey), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_public_key(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(path): Path<AccountPath>,
) -> ApiResult<ApiJson<PublicKey>> {
    check_path_id("account_id", &path.account_id)?;
    let key = signing_key(&state.store, auth.instance_id()).await?;
    Ok(ApiJson(PublicKey {
        key_id: crate::service::notifications::signing::key_id(&key),
        public_key: key.public_key_pem,
    }))
}

/// Query of the delivery log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    pub account_id: Option<String>,
    pub channel_id: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub state: Option<String>,
    /// Items per page (default 100, at most 1000).
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

/// One delivery as the log shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub account_id: String,
    pub channel_id: String,
    pub dedup_key: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
}

impl From<&Delivery> for DeliveryView {
    fn from(delivery: &Delivery) -> Self {
        Self {
            id: delivery.id.clone(),
            account_id: delivery.account_id.clone(),
            channel_id: delivery.channel_id.clone(),
            dedup_key: delivery.dedup_key.clone(),
            state: delivery.state.as_str().to_owned(),
            attempts: delivery.attempts,
            created_at: wire_time(delivery.created_at),
            next_attempt_at: (delivery.state == DeliveryState::Pending)
                .then(|| wire_time(delivery.next_attempt_at)),
            last_attempt_at: delivery.last_attempt_at.map(wire_time),
            last_error: delivery.last_error.clone(),
            delivered_at: delivery.delivered_at.map(wire_time),
        }
    }
}

/// A page of the delivery log.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
    /// Empty when there are no more deliveries.
    pub next_page_token: String,
}

fn bad_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidParameter,
        "`page_token`: is not a token this API returned",
    )
    .with_target(ErrorTarget::parameter("page_token"))
}

/// Lists the instance's deliveries, newest first: what was sent where, how many attempts it
/// took, and how it ended.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/notifications/deliveries", tag = "notifications",
    security(("bearer" = [])),
    params(("instance_id" = String, Path), DeliveryQuery),
    responses((status = 200, body = DeliveryList), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(query): Query<DeliveryQuery>,
) -> ApiResult<ApiJson<DeliveryList>> {
    let size = match query.page_size {
        None => 100,
        Some(size) if (1..=1000).contains(&size) => size,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                "`page_size`: must be between 1 and 1000",
            )
            .with_target(ErrorTarget::parameter("page_size")));
        }
    };
    let delivery_state = query
        .state
        .as_deref()
        .map(|text| {
            text.parse::<DeliveryState>().map_err(|message| {
                ApiError::new(ErrorCode::InvalidParameter, format!("`state`: {message}"))
                    .with_target(ErrorTarget::parameter("state"))
            })
        })
        .transpose()?;
    let before = match query
        .page_token
        .as_deref()
        .filter(|token| !token.is_empty())
    {
        None => None,
        Some(token) => {
            let text = URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(bad_token)?;
            let (time, id) = text.split_once('|').ok_or_else(bad_token)?;
            let time: DateTime<Utc> = DateTime::parse_from_rfc3339(time)
                .map_err(|_| bad_token())?
                .with_timezone(&Utc);
            Some((time, id.to_owned()))
        }
    };
    let deliveries = state
        .store
        .list_deliveries(
            auth.instance_id(),
            &DeliveryFilter {
                account_id: query.account_id,
                channel_id: query.channel_id,
                state: delivery_state,
            },
            before,
            size,
        )
        .await?;
    let next_page_token = if deliveries.len() == size as usize {
        deliveries
            .last()
            .map(|last| {
                URL_SAFE_NO_PAD.encode(format!(
                    "{}|{}",
                    palisade_store::format_timestamp(last.created_at),
                    last.id
                ))
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(ApiJson(DeliveryList {
        deliveries: deliveries.iter().map(DeliveryView::from).collect(),
        next_page_token,
    }))
}
