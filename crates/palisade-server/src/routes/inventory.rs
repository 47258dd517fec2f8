//! Inventory: `POST|GET /instances/{instance_id}/v1/inventory`, a resource's history, and the
//! quarantine of rejected records.
//!
//! A push is a batch; each record is checked on its own. Good records are stored (idempotently
//! on id + `collected_at`) and bad ones are answered with their JSON pointers and kept in the
//! quarantine, so one broken record never costs the rest of the batch.
//!
//! A push may carry a `batch_id` (collector agents always send one): the batch is recorded in
//! the transaction that writes it, and a retry of the same id is answered with the first answer
//! (`replayed: true`) without writing anything, so a batch is applied exactly once however often
//! the agent had to resend it. Recorded batches are listed at `…/v1/inventory-batches`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use palisade_model::error::{ErrorCode, ErrorItem, ErrorTarget};
use palisade_model::resource::Resource;
use palisade_store::{
    BatchOutcome, BatchRecord, InventoryBatch, QuarantinedRecord, ResourceFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::{Authorized, DataPush, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::documents::new_id;
use crate::state::AppState;

/// Body of a push.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryPush {
    /// Resources in the normalised shape.
    #[schema(value_type = Vec<Object>)]
    pub resources: Vec<Value>,
    /// Idempotency key of the batch: 1–128 letters, digits, `.`, `_`, `:` or `-`, unique in the
    /// instance. A batch id seen before is not applied again.
    #[serde(default)]
    pub batch_id: Option<String>,
}

/// One rejected record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RejectedRecord {
    /// Position in `resources`.
    pub index: usize,
    /// The record's `id`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub errors: Vec<ErrorItem>,
}

/// What a push did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushResult {
    /// Records stored as new versions (0 when the push was queued: see `batch`).
    pub stored: u64,
    /// Records already stored (same id and `collected_at`): retries.
    pub duplicates: u64,
    /// Records that failed validation; they are in the quarantine.
    pub rejected: Vec<RejectedRecord>,
    /// The batch id the push carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// True when the batch id was already recorded: nothing was written now, and the counts
    /// are those of the first push.
    #[serde(default)]
    pub replayed: bool,
    /// Scaled mode (`serve --bus`): the good records were queued as this batch (answer `202`),
    /// stored by a worker once it is `processed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<crate::service::insights::BatchView>,
}

/// Checks a batch id's shape.
fn check_batch_id(batch_id: &str) -> ApiResult<()> {
    let valid = (1..=128).contains(&batch_id.len())
        && batch_id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidField,
            "`/batch_id`: 1–128 letters, digits, `.`, `_`, `:` or `-`",
        )
        .with_target(ErrorTarget::field("/batch_id")))
    }
}

/// Checks one record, returning the resource or its mistakes (pointers under `/resources/{index}`).
fn check_record(index: usize, record: &Value) -> Result<Resource, Vec<ErrorItem>> {
    let base = format!("/resources/{index}");
    let item = |code, pointer: String, message: String| ErrorItem {
        code,
        message: format!("`{pointer}`: {message}"),
        target: Some(ErrorTarget::field(pointer)),
    };
    if !record.is_object() {
        return Err(vec![item(
            ErrorCode::InvalidField,
            base,
            "a resource must be a JSON object".into(),
        )]);
    }
    let mut errors = Vec::new();
    for key in ["id", "service_name", "resource_kind"] {
        if record
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(|text| text.trim().is_empty())
        {
            errors.push(item(
                ErrorCode::MissingField,
                format!("{base}/{key}"),
                "is required and must be a non-empty string".into(),
            ));
        }
    }
    if record
        .get("config")
        .is_some_and(|config| !config.is_object())
    {
        errors.push(item(
            ErrorCode::InvalidField,
            format!("{base}/config"),
            "must be an object".into(),
        ));
    }
    if record.get("tags").is_some_and(|tags| !tags.is_object()) {
        errors.push(item(
            ErrorCode::InvalidField,
            format!("{base}/tags"),
            "must be an object".into(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    serde_path_to_error::deserialize::<_, Resource>(record).map_err(|error| {
        let pointer = error
            .path()
            .to_string()
            .split('.')
            .filter(|segment| !segment.is_empty() && *segment != "?")
            .fold(base.clone(), |mut pointer, segment| {
                pointer.push('/');
                pointer.push_str(segment.trim_start_matches('[').trim_end_matches(']'));
                pointer
            });
        vec![item(
            ErrorCode::InvalidField,
            pointer,
            error.inner().to_string(),
        )]
    })
}

/// Stores a batch of resources; bad records are reported and quarantined, good ones kept.
#[utoipa::path(post, path = "/instances/{instance_id}/v1/inventory", tag = "inventory", security(("bearer" = [])),
    params(("instance_id" = String, Path)), request_body = InventoryPush,
    responses((status = 200, body = PushResult), (status = 202, body = PushResult, description = "Scaled mode: queued as a batch"),
        (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn push_inventory(
    State(state): State<AppState>,
    auth: Authorized<DataPush>,
    Path(_instance_id): Path<String>,
    ApiJson(push): ApiJson<InventoryPush>,
) -> ApiResult<(StatusCode, ApiJson<PushResult>)> {
    let now = Utc::now();
    if let Some(batch_id) = &push.batch_id {
        check_batch_id(batch_id)?;
    }
    let mut resources = Vec::with_capacity(push.resources.len());
    let mut rejected = Vec::new();
    let mut quarantined = Vec::new();
    for (index, record) in push.resources.iter().enumerate() {
        match check_record(index, record) {
            Ok(resource) => resources.push(resource),
            Err(errors) => {
                let reason = errors
                    .iter()
                    .map(|error| error.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                quarantined.push(QuarantinedRecord {
                    id: new_id(),
                    source: "inventory".into(),
                    received_at: now,
                    reason,
                    record: record.clone(),
                });
                rejected.push(RejectedRecord {
                    index,
                    id: record.get("id").and_then(Value::as_str).map(str::to_owned),
                    errors,
                });
            }
        }
    }
    metrics::counter!("palisade_inventory_records_total", "outcome" => "rejected")
        .increment(rejected.len() as u64);
    if state.cluster.scaled() {
        // Through the bus like every ingest: answered once the bus holds the batch; a worker
        // stores it (idempotently, so a redelivery adds nothing; an agent's batch id is
        // recorded with the resources, so a resend after the bus forgot its message id adds
        // nothing either).
        if !quarantined.is_empty() {
            state
                .store
                .quarantine(auth.instance_id(), &quarantined)
                .await?;
        }
        let payload = crate::service::insights::json_lines(&resources)?;
        let options = match &push.batch_id {
            Some(batch_id) => json!({ "batch_id": batch_id }),
            None => Value::Null,
        };
        let batch = crate::service::insights::enqueue(
            &state,
            auth.instance_id(),
            crate::service::insights::INVENTORY,
            "inventory",
            &auth.key.id,
            &payload,
            resources.len() as u64,
            rejected.len() as u64,
            options,
        )
        .await?;
        return Ok((
            StatusCode::ACCEPTED,
            ApiJson(PushResult {
                stored: 0,
                duplicates: 0,
                rejected,
                batch_id: push.batch_id,
                replayed: false,
                batch: Some(crate::service::insights::BatchView::of(&batch)),
            }),
        ));
    }
    let rejected_json = serde_json::to_value(&rejected)
        .map_err(|error| ApiError::internal(format!("rejected records: {error}")))?;
    let batch = InventoryBatch {
        batch_id: push.batch_id.as_deref(),
        key_id: &auth.key.id,
        resources: &resources,
        quarantined: &quarantined,
        rejected: &rejected_json,
    };
    let outcome = match state
        .store
        .push_batch(auth.instance_id(), &batch, now)
        .await?
    {
        BatchOutcome::Applied(outcome) => outcome,
        BatchOutcome::Replayed(record) => {
            metrics::counter!("palisade_inventory_batches_replayed_total").increment(1);
            return Ok((
                StatusCode::OK,
                ApiJson(PushResult {
                    stored: record.outcome.stored,
                    duplicates: record.outcome.duplicates,
                    rejected: serde_json::from_value(record.rejected).unwrap_or_default(),
                    batch_id: Some(record.batch_id),
                    replayed: true,
                    batch: None,
                }),
            ));
        }
    };
    metrics::counter!("palisade_inventory_records_total", "outcome" => "stored")
        .increment(outcome.stored);
    Ok((
        StatusCode::OK,
        ApiJson(PushResult {
            stored: outcome.stored,
            duplicates: outcome.duplicates,
            rejected,
            batch_id: push.batch_id,
            replayed: false,
            batch: None,
        }),
    ))
}

/// Returns one ingest batch of any stream (`activity`, `network`, or `inventory`, which is
/// queued as a batch in scaled mode): its status, records and, once processed, its outcome.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/batches/{batch_id}", tag = "inventory", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("batch_id" = String, Path)),
    responses((status = 200, body = crate::service::insights::BatchView), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_batch(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, batch_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<crate::service::insights::BatchView>> {
    let batch = state
        .store
        .get_batch(auth.instance_id(), &batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found("batch", &batch_id))?;
    Ok(ApiJson(crate::service::insights::BatchView::of(&batch)))
}

fn batch_view(record: &BatchRecord) -> Value {
    json!({
        "batch_id": record.batch_id,
        "key_id": record.key_id,
        "received_at": record.received_at,
        "stored": record.outcome.stored,
        "duplicates": record.outcome.duplicates,
        "rejected": record.rejected.as_array().map_or(0, Vec::len),
    })
}

/// Lists the inventory batches recorded by their `batch_id`, in batch-id order, paged by
/// `limit` (1–1000, default 100) and `start` (the last id of the previous page).
#[utoipa::path(get, path = "/instances/{instance_id}/v1/inventory-batches", tag = "inventory", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("limit" = Option<u32>, Query), ("start" = Option<String>, Query)),
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_inventory_batches(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    let limit = match query.get("limit") {
        None => 100,
        Some(text) => text
            .parse()
            .ok()
            .filter(|limit| (1..=1000).contains(limit))
            .ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidParameter, "`limit` must be 1–1000")
                    .with_target(ErrorTarget::parameter("limit"))
            })?,
    };
    let mut records = state
        .store
        .list_inventory_batches(
            auth.instance_id(),
            query.get("start").map(String::as_str),
            limit + 1,
        )
        .await?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let mut answer =
        json!({"limit": limit, "batches": records.iter().map(batch_view).collect::<Vec<_>>()});
    if more && let Some(last) = records.last() {
        answer["next"] = json!({"start": last.batch_id});
    }
    Ok(ApiJson(answer))
}

/// Returns one recorded inventory batch.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/inventory-batches/{batch_id}", tag = "inventory", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("batch_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_inventory_batch(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, batch_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let record = state
        .store
        .get_inventory_batch(auth.instance_id(), &batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found("inventory batch", &batch_id))?;
    Ok(ApiJson(batch_view(&record)))
}

/// Lists the latest configuration of resources, filtered by `environment`, `account_id`,
/// `service_name`, `resource_kind`, `region`, `resource_group` and `tag=key:value` (repeatable),
/// paged by `limit` and `start`.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/inventory", tag = "inventory", security(("bearer" = [])),
    params(("instance_id" = String, Path),
        ("environment" = Option<String>, Query), ("account_id" = Option<String>, Query), ("service_name" = Option<String>, Query),
        ("resource_kind" = Option<String>, Query), ("region" = Option<String>, Query), ("resource_group" = Option<String>, Query),
        ("tag" = Option<String>, Query, description = "key:value; repeat for several"),
        ("limit" = Option<u32>, Query), ("start" = Option<String>, Query)),
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody)))]
pub async fn list_inventory(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<ApiJson<Value>> {
    let mut filter = ResourceFilter::default();
    let mut limit = 100_u32;
    for (name, value) in query {
        let parameter_error = |message: &str| {
            ApiError::new(ErrorCode::InvalidParameter, message)
                .with_target(ErrorTarget::parameter(name.clone()))
        };
        match name.as_str() {
            "environment" => filter.environment = Some(value),
            "account_id" => filter.account_id = Some(value),
            "service_name" => filter.service_name = Some(value),
            "resource_kind" => filter.resource_kind = Some(value),
            "region" => filter.region = Some(value),
            "resource_group" => filter.resource_group = Some(value),
            "start" => filter.after = Some(value),
            "tag" => {
                let (key, tag_value) = value
                    .split_once(':')
                    .ok_or_else(|| parameter_error("`tag` is key:value"))?;
                filter.tags.push((key.to_owned(), tag_value.to_owned()));
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|limit| (1..=1000).contains(limit))
                    .ok_or_else(|| parameter_error("`limit` must be 1–1000"))?;
            }
            _ => return Err(parameter_error("unknown query parameter")),
        }
    }
    let total_count = state
        .store
        .count_resources(auth.instance_id(), &filter)
        .await?;
    // One extra row tells whether there is a next page.
    filter.limit = Some(limit + 1);
    let mut resources = state
        .store
        .list_resources(auth.instance_id(), &filter)
        .await?;
    let more = resources.len() > limit as usize;
    resources.truncate(limit as usize);
    let mut answer = json!({"limit": limit, "total_count": total_count, "resources": resources});
    if more && let Some(last) = resources.last() {
        answer["next"] = json!({"start": last.id});
    }
    Ok(ApiJson(answer))
}

/// Returns every stored version of a resource, oldest first.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/inventory/{resource_id}/history", tag = "inventory", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("resource_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn resource_history(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, resource_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let versions = state
        .store
        .resource_history(auth.instance_id(), &resource_id)
        .await?;
    if versions.is_empty() {
        return Err(ApiError::not_found("resource", &resource_id));
    }
    Ok(ApiJson(json!({"id": resource_id, "versions": versions})))
}

/// Lists quarantined records of a source (`inventory` by default), newest first.
#[utoipa::path(get, path = "/instances/{instance_id}/v1/quarantine", tag = "inventory", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("source" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = serde_json::Value)))]
pub async fn list_quarantine(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    let source = query.get("source").map_or("inventory", String::as_str);
    let limit = query
        .get("limit")
        .and_then(|limit| limit.parse().ok())
        .unwrap_or(100_u32)
        .min(1000);
    let records = state
        .store
        .list_quarantine(auth.instance_id(), source, limit)
        .await?;
    let records: Vec<Value> = records
        .into_iter()
        .map(|record| json!({"id": record.id, "source": record.source, "received_at": record.received_at, "reason": record.reason, "record": record.record}))
        .collect();
    Ok(ApiJson(json!({"records": records})))
}
