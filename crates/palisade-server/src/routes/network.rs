//! Network insights: `POST …/v1/network/flows` (ingest, durable before 2xx), batches, detector
//! configuration and threat-intelligence feeds. Findings are occurrences of provider
//! `network-insights` in the findings API.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use palisade_insights::network::NetworkDetectorConfig;
use palisade_logs::flow::FlowFormat;
use palisade_model::error::{ErrorCode, ErrorTarget};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Authorized, ConfigWrite, DataPush, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::findings::check_path_id;
use crate::service::insights::network::{self, FeedParams, FeedView};
use crate::service::insights::{
    self as insights, BatchListParams, BatchView, IngestAnswer, IngestParams, NETWORK,
};
use crate::state::AppState;

/// Query of a flows ingest.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlowsParams {
    /// A name for the batch (a file name), shown in errors and listings. Default `upload`.
    pub source: Option<String>,
    /// Process the batch before answering (the answer then carries its findings count).
    #[serde(default)]
    pub wait: bool,
    /// `auto` (default: JSON is IBM, Azure or GCP; text is AWS VPC), `aws_vpc_text` or `json`.
    pub format: Option<String>,
    /// The input ends here: close every detector window after this batch and report what they
    /// hold (otherwise windows close as later flows arrive, or after the stream is idle).
    #[serde(default)]
    pub flush: bool,
}

/// Accepts a batch of flow-log records: AWS VPC flow logs (versions 2 to 8, default format or a
/// header line), IBM Cloud VPC flow log objects, Azure NSG flow logs, GCP VPC flow logs; plain
/// or gzipped. Bad lines are answered with their line and skipped; the good records are durable
/// when this answers `202` (`200` with `?wait=true`, once processed).
#[utoipa::path(post, path = "/instances/{instance_id}/v1/network/flows", tag = "network insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), FlowsParams),
    request_body(content = String, description = "Flow-log records", content_type = "application/octet-stream"),
    responses((status = 202, body = IngestAnswer), (status = 200, body = IngestAnswer), (status = 413, body = palisade_model::error::ErrorBody)))]
pub async fn ingest_flows(
    State(state): State<AppState>,
    auth: Authorized<DataPush>,
    Path(_instance_id): Path<String>,
    Query(params): Query<FlowsParams>,
    body: Body,
) -> ApiResult<(StatusCode, ApiJson<IngestAnswer>)> {
    let format = match params.format.as_deref() {
        None | Some("auto") => FlowFormat::Auto,
        Some("aws_vpc_text") => FlowFormat::AwsVpcText,
        Some("json") => FlowFormat::Json,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("`format`: `{other}` is not one of auto, aws_vpc_text, json"),
            )
            .with_target(ErrorTarget::parameter("format")));
        }
    };
    let bytes = insights::read_body(&state, body).await?;
    let ingest = IngestParams {
        source: params.source.clone(),
        wait: params.wait,
    };
    let source = ingest.source_name();
    let decoded = tokio::task::spawn_blocking({
        let source = source.clone();
        move || network::decode_flow_body(&bytes, &source, format)
    })
    .await
    .map_err(|error| ApiError::internal(format!("decoding flows: {error}")))??;
    let payload = insights::json_lines(&decoded.flows)?;
    let batch = insights::enqueue(
        &state,
        auth.instance_id(),
        NETWORK,
        &source,
        &auth.key.id,
        &payload,
        decoded.flows.len() as u64,
        decoded.rejected,
        json!({"flush": params.flush}),
    )
    .await?;
    let answer = insights::answer(&state, batch, ingest.wait, decoded.rejections).await?;
    Ok((answer.status_code(), ApiJson(answer)))
}

/// Lists the instance's flow batches, newest first.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/network/batches", tag = "network insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), BatchListParams), responses((status = 200, body = Vec<BatchView>)))]
pub async fn list_network_batches(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(params): Query<BatchListParams>,
) -> ApiResult<ApiJson<Vec<BatchView>>> {
    insights::list_batches(&state, auth.instance_id(), NETWORK, &params)
        .await
        .map(ApiJson)
}

/// Returns one flow batch.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/network/batches/{batch_id}", tag = "network insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("batch_id" = String, Path)),
    responses((status = 200, body = BatchView), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_network_batch(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, batch_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<BatchView>> {
    let batch = insights::batch(&state, auth.instance_id(), NETWORK, &batch_id).await?;
    Ok(ApiJson(BatchView::of(&batch)))
}

/// Returns the detector configuration in force (every field, defaults included).
#[utoipa::path(get, path = "/instances/{instance_id}/v1/network/detectors", tag = "network insights", security(("bearer" = [])),
    params(("instance_id" = String, Path)), responses((status = 200, body = Object)))]
pub async fn get_detectors(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
) -> ApiResult<ApiJson<NetworkDetectorConfig>> {
    let (config, _) = network::config(&state, auth.instance_id()).await?;
    Ok(ApiJson(config))
}

/// Replaces the detector configuration. Fields left out take their defaults; a value that
/// cannot work is refused with its JSON pointer. Open windows restart with the new settings.
#[utoipa::path(put, path = "/instances/{instance_id}/v1/network/detectors", tag = "network insights", security(("bearer" = [])),
    params(("instance_id" = String, Path)), request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn put_detectors(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    ApiJson(config): ApiJson<NetworkDetectorConfig>,
) -> ApiResult<ApiJson<NetworkDetectorConfig>> {
    network::save_config(&state, auth.instance_id(), &config).await?;
    Ok(ApiJson(config))
}

/// Lists the threat-intelligence feeds.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/network/intel/feeds", tag = "network insights", security(("bearer" = [])),
    params(("instance_id" = String, Path)), responses((status = 200, body = Vec<FeedView>)))]
pub async fn list_feeds(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
) -> ApiResult<ApiJson<Vec<FeedView>>> {
    state
        .store
        .list_feeds(auth.instance_id())
        .await?
        .iter()
        .map(FeedView::of)
        .collect::<ApiResult<Vec<_>>>()
        .map(ApiJson)
}

/// Uploads or replaces a feed: addresses and CIDRs one per line, CSV
/// `indicator,category,confidence`, or a STIX 2.1 bundle of `ipv4-addr` / `ipv6-addr`
/// indicators. It applies from the next flow batch on.
#[utoipa::path(put, path = "/instances/{instance_id}/v1/network/intel/feeds/{name}", tag = "network insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("name" = String, Path), FeedParams),
    request_body(content = String, description = "The feed", content_type = "text/plain"),
    responses((status = 200, body = FeedView), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn put_feed(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, name)): Path<(String, String)>,
    Query(params): Query<FeedParams>,
    body: Body,
) -> ApiResult<ApiJson<FeedView>> {
    check_path_id("name", &name)?;
    let bytes = insights::read_body(&state, body).await?;
    network::put_feed(&state, auth.instance_id(), &name, &params, &bytes)
        .await
        .map(ApiJson)
}

/// Returns a feed's description (not its content).
#[utoipa::path(get, path = "/instances/{instance_id}/v1/network/intel/feeds/{name}", tag = "network insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = FeedView), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_feed(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, name)): Path<(String, String)>,
) -> ApiResult<ApiJson<FeedView>> {
    let feed = state
        .store
        .list_feeds(auth.instance_id())
        .await?
        .into_iter()
        .find(|feed| feed.name == name)
        .ok_or_else(|| ApiError::not_found("feed", &name))?;
    FeedView::of(&feed).map(ApiJson)
}

/// Deletes a feed.
#[utoipa::path(delete, path = "/instances/{instance_id}/v1/network/intel/feeds/{name}", tag = "network insights", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn delete_feed(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path((_instance_id, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if state.store.delete_feed(auth.instance_id(), &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("feed", &name))
    }
}
