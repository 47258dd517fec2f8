//! Security insights in the server: ingest of audit events and flow logs, the worker that runs
//! the detectors over them, and the findings they become.
//!
//! **Ingest is durable before 2xx.** A route decodes the posted batch (bad records are answered
//! with their position and skipped), writes the good records to the ingest journal
//! (`palisade-store::insights`) and only then answers `202 Accepted` with the batch id. The
//! worker ([`spawn_worker`], one per process) takes pending batches in arrival order, runs the
//! detectors ([`activity`], [`network`]) and completes each batch in one transaction with its
//! findings (occurrences under `activity-insights` / `network-insights`) and the stream's
//! detector state. A crash before that commit leaves the batch pending and it is processed
//! again; a completed batch is never applied twice, so every accepted record counts once.
//!
//! **Through the ingest bus** (`palisade-bus`). `enqueue` publishes the batch on the process's
//! bus and answers only once the bus has it. Embedded, the bus is the journal itself and the
//! worker drains it ([`process_pending`]); in scaled mode (`serve --bus nats://…`) batches go to
//! JetStream, partitioned by instance, and each process reads the partitions it owns
//! ([`partition_worker`], started by `service::cluster`). Both paths settle a delivery the same
//! way ([`handle_delivery`]): acknowledged after the completion transaction committed, left for
//! redelivery on storage trouble, marked failed (and acknowledged) when it can never succeed.
//!
//! Detector configuration (Sigma packs and per-rule settings, network detector settings, threat
//! intelligence feeds) lives in the store; the compiled forms are cached per instance under a
//! key built from the stored versions, so a change made through any process is picked up by
//! every process at its next batch.

pub mod activity;
pub mod network;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use palisade_store::insights::{BatchStatus, IngestBatch};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::service::documents::{new_id, timestamp};
use crate::state::AppState;

/// The stream of audit events.
pub const ACTIVITY: &str = "activity";
/// The stream of network flows.
pub const NETWORK: &str = "network";
/// Inventory pushes (through the bus in scaled mode only; embedded pushes are stored at once).
pub const INVENTORY: &str = "inventory";
/// Occurrences reported by partner tools (through the bus in scaled mode only).
pub const OCCURRENCES: &str = "occurrences";

/// How long the worker sleeps when nothing wakes it.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Per-process insights runtime: compiled detector caches, in-memory network state, and the
/// worker's wake-up signal.
#[derive(Default)]
pub struct InsightsRuntime {
    activity_engines: Mutex<HashMap<String, Arc<activity::ActivityEngine>>>,
    network: tokio::sync::Mutex<HashMap<String, network::NetworkRuntime>>,
    /// One batch at a time per process keeps each instance's batches in arrival order.
    processing: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for InsightsRuntime {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("InsightsRuntime")
            .finish_non_exhaustive()
    }
}

impl InsightsRuntime {
    fn cached_activity_engine(
        &self,
        instance_id: &str,
        key: &str,
    ) -> Option<Arc<activity::ActivityEngine>> {
        self.activity_engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(instance_id)
            .filter(|engine| engine.cache_key == key)
            .cloned()
    }

    fn cache_activity_engine(&self, instance_id: &str, engine: Arc<activity::ActivityEngine>) {
        self.activity_engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(instance_id.to_owned(), engine);
    }
}

/// A batch as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchView {
    pub id: String,
    /// `activity` or `network`.
    pub stream: String,
    /// The name the sender gave the batch.
    pub source: String,
    /// `pending`, `processed` or `failed`.
    pub status: String,
    pub received_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<String>,
    /// Records accepted.
    pub records: i64,
    /// Records rejected at decoding.
    pub rejected: i64,
    /// Findings the batch produced (new or repeated), once processed.
    pub findings: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where to follow the batch.
    pub href: String,
}

impl BatchView {
    /// The view of a stored batch.
    pub fn of(batch: &IngestBatch) -> Self {
        // Streams without routes of their own are followed at the generic batch route.
        let href = if batch.stream == INVENTORY || batch.stream == OCCURRENCES {
            format!("/instances/{}/v1/batches/{}", batch.instance_id, batch.id)
        } else {
            format!(
                "/instances/{}/v1/{}/batches/{}",
                batch.instance_id, batch.stream, batch.id
            )
        };
        Self {
            href,
            id: batch.id.clone(),
            stream: batch.stream.clone(),
            source: batch.source.clone(),
            status: batch.status.as_str().to_owned(),
            received_at: timestamp(batch.received_at),
            processed_at: batch.processed_at.map(timestamp),
            records: batch.records,
            rejected: batch.rejected,
            findings: batch.findings,
            error: batch.error.clone(),
        }
    }
}

/// A record an ingest route could not decode: where it is and what is wrong.
// Documented as `IngestRejection`: the inventory's `RejectedRecord` (index, id, errors) has the
// same Rust name, and the OpenAPI document kept only one of the two schemas.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = IngestRejection)]
pub struct RejectedRecord {
    /// 1-based line of the record's start in the posted body.
    pub line: u64,
    /// JSON pointer inside the record or the body, when the format has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    pub message: String,
}

/// The answer to an ingest: the batch and the records that were rejected.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IngestAnswer {
    pub batch: BatchView,
    /// Rejected records (at most the first 1,000; `batch.rejected` counts all).
    pub rejected: Vec<RejectedRecord>,
}

impl IngestAnswer {
    /// `202 Accepted` while the batch waits for the worker, `200` once it was processed
    /// (`?wait=true`).
    pub fn status_code(&self) -> axum::http::StatusCode {
        if self.batch.status == BatchStatus::Pending.as_str() {
            axum::http::StatusCode::ACCEPTED
        } else {
            axum::http::StatusCode::OK
        }
    }
}

/// Longest list of rejected records an answer carries.
pub const MAX_REPORTED_REJECTIONS: usize = 1000;

/// Writes an accepted batch to the journal and wakes the worker. `payload` is the decoded
/// records as JSON Lines.
#[allow(clippy::too_many_arguments)]
pub async fn enqueue(
    state: &AppState,
    instance_id: &str,
    stream: &str,
    source: &str,
    submitted_by: &str,
    payload: &str,
    records: u64,
    rejected: u64,
    options: Value,
) -> ApiResult<IngestBatch> {
    let batch = IngestBatch {
        instance_id: instance_id.to_owned(),
        id: new_id(),
        stream: stream.to_owned(),
        source: source.to_owned(),
        submitted_by: submitted_by.to_owned(),
        received_at: Utc::now(),
        status: BatchStatus::Pending,
        records: i64::try_from(records).unwrap_or(i64::MAX),
        rejected: i64::try_from(rejected).unwrap_or(i64::MAX),
        options,
        findings: 0,
        error: None,
        processed_at: None,
    };
    state
        .bus
        .publish(instance_id, &batch, payload)
        .await
        .map_err(bus_error)?;
    state.insights.wake.notify_one();
    Ok(batch)
}

/// Returns a batch of an instance's stream, or 404.
pub async fn batch(
    state: &AppState,
    instance_id: &str,
    stream: &str,
    batch_id: &str,
) -> ApiResult<IngestBatch> {
    state
        .store
        .get_batch(instance_id, batch_id)
        .await?
        .filter(|batch| batch.stream == stream)
        .ok_or_else(|| ApiError::not_found("batch", batch_id))
}

/// Processes every pending batch of the embedded journal now; returns how many were completed.
/// The worker calls this each round; in-process tests and `?wait=true` ingests call it directly.
/// In scaled mode batches are read by the partitions' owners instead, and this does nothing.
pub async fn process_pending(state: &AppState) -> usize {
    if state.cluster.scaled() {
        return 0;
    }
    let _one_at_a_time = state.insights.processing.lock().await;
    let mut consumer = match state.bus.consumer(0).await {
        Ok(consumer) => consumer,
        Err(error) => {
            tracing::warn!(error = %error, "cannot read the ingest journal");
            return 0;
        }
    };
    let mut completed = 0;
    loop {
        match consumer.next(Duration::ZERO).await {
            Ok(Some(delivery)) => match handle_delivery(state, &delivery).await {
                Settled::Done => completed += 1,
                // Left pending (and the batches after it, to keep their order); the next
                // round tries again.
                Settled::Retry => break,
            },
            Ok(None) => break,
            Err(error) => {
                tracing::warn!(error = %error, "cannot list pending batches");
                break;
            }
        }
    }
    completed
}

/// How a delivery ended.
pub(crate) enum Settled {
    /// Completed, failed for good, or found completed before: acknowledged.
    Done,
    /// Not processed (storage trouble): it will be delivered again.
    Retry,
}

/// Wait before a batch that met storage trouble is delivered again.
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// Processes one delivered batch and settles it with the bus: acknowledged only after its
/// results committed (or it was found completed: a redelivery after a crash between the commit
/// and the ack), marked failed and acknowledged when it can never succeed, left for redelivery
/// otherwise.
pub(crate) async fn handle_delivery(
    state: &AppState,
    delivery: &palisade_bus::Delivery,
) -> Settled {
    let batch = &delivery.batch;
    match state.store.get_batch(&batch.instance_id, &batch.id).await {
        Ok(Some(stored)) if stored.status != BatchStatus::Pending => {
            tracing::info!(batch = %batch.id, "batch completed before; acknowledging the redelivery");
            return acknowledge(delivery).await;
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(batch = %batch.id, error = %error, "ingest batch will be retried");
            let _ = delivery.retry(RETRY_DELAY).await;
            return Settled::Retry;
        }
    }
    let work = process_one(state, batch, &delivery.payload);
    tokio::pin!(work);
    // Long batches tell the bus they are alive, so it does not deliver them to someone else.
    let beat = state
        .bus
        .ack_wait()
        .map_or(Duration::from_secs(3600), |wait| {
            (wait / 3).max(Duration::from_millis(500))
        });
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = ticker.tick() => {
                if let Err(error) = delivery.in_progress().await {
                    tracing::warn!(batch = %batch.id, error = %error, "cannot extend the ack wait");
                }
            }
        }
    };
    match outcome {
        Ok(()) => acknowledge(delivery).await,
        Err(Failure::Permanent(reason)) => {
            tracing::warn!(batch = %batch.id, reason = %reason, "ingest batch failed");
            match state.store.fail_batch(batch, &reason, Utc::now()).await {
                Ok(()) => acknowledge(delivery).await,
                Err(error) => {
                    tracing::warn!(batch = %batch.id, error = %error, "cannot mark batch failed");
                    let _ = delivery.retry(RETRY_DELAY).await;
                    Settled::Retry
                }
            }
        }
        Err(Failure::Transient(error)) => {
            tracing::warn!(batch = %batch.id, error = %error, detail = ?error.internal_detail, "ingest batch will be retried");
            let _ = delivery.retry(RETRY_DELAY).await;
            Settled::Retry
        }
    }
}

async fn acknowledge(delivery: &palisade_bus::Delivery) -> Settled {
    if let Err(error) = delivery.ack().await {
        // The results are committed; the batch comes back and is recognised as completed.
        tracing::warn!(batch = %delivery.batch.id, error = %error, "ack failed; the batch will be redelivered and skipped");
    }
    Settled::Done
}

/// Reads one partition of the bus until `stop` (scaled mode; started by `service::cluster`
/// for each partition this process owns).
pub async fn partition_worker(
    state: AppState,
    partition: u32,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut consumer = loop {
        match state.bus.consumer(partition).await {
            Ok(consumer) => break consumer,
            Err(error) => {
                tracing::warn!(partition, error = %error, "cannot open the partition's consumer");
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if *stop.borrow() {
                    return;
                }
            }
        }
    };
    while !*stop.borrow() {
        match consumer.next(Duration::from_secs(1)).await {
            Ok(Some(delivery)) => {
                if let Settled::Retry = handle_delivery(&state, &delivery).await {
                    // The bus redelivers it after the delay; meanwhile the partition waits.
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(partition, error = %error, "cannot read the partition");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// A bus failure as an API error: the batch was not accepted, retry later.
fn bus_error(error: palisade_bus::BusError) -> ApiError {
    match error {
        palisade_bus::BusError::Store(error) => error.into(),
        other => ApiError::new(
            palisade_model::error::ErrorCode::ServiceUnavailable,
            format!("the ingest queue did not accept the batch; retry: {other}"),
        ),
    }
}

/// Why a batch could not be completed.
pub(crate) enum Failure {
    /// Retrying cannot help (the stored payload does not decode): the batch is marked failed.
    Permanent(String),
    /// Storage trouble: the batch stays pending.
    Transient(ApiError),
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self::Transient(error)
    }
}

impl From<palisade_store::StoreError> for Failure {
    fn from(error: palisade_store::StoreError) -> Self {
        Self::Transient(error.into())
    }
}

async fn process_one(state: &AppState, batch: &IngestBatch, payload: &str) -> Result<(), Failure> {
    match batch.stream.as_str() {
        ACTIVITY => activity::process_batch(state, batch, payload).await,
        NETWORK => network::process_batch(state, batch, payload).await,
        INVENTORY => store_inventory(state, batch, payload).await,
        OCCURRENCES => store_occurrences(state, batch, payload).await,
        other => Err(Failure::Permanent(format!("unknown stream `{other}`"))),
    }
}

/// Stores a queued inventory push. Its time is the batch's arrival, not the processing's, and
/// versions are idempotent on (id, `collected_at`): a redelivery stores nothing twice.
async fn store_inventory(
    state: &AppState,
    batch: &IngestBatch,
    payload: &str,
) -> Result<(), Failure> {
    let resources: Vec<palisade_model::resource::Resource> = parse_json_lines(payload)?;
    // An agent's batch id is recorded with its resources (as an embedded push does), so a
    // batch the agent resent after the bus's de-duplication window is still applied once.
    let no_rejections = Value::Array(Vec::new());
    let pushed = palisade_store::InventoryBatch {
        batch_id: batch.options.get("batch_id").and_then(Value::as_str),
        key_id: &batch.submitted_by,
        resources: &resources,
        quarantined: &[],
        rejected: &no_rejections,
    };
    let outcome = match state
        .store
        .push_batch(&batch.instance_id, &pushed, batch.received_at)
        .await?
    {
        palisade_store::BatchOutcome::Applied(outcome) => outcome,
        palisade_store::BatchOutcome::Replayed(_) => palisade_store::PushOutcome::default(),
    };
    metrics::counter!("palisade_inventory_records_total", "outcome" => "stored")
        .increment(outcome.stored);
    state
        .store
        .complete_batch(
            batch,
            palisade_store::insights::BatchCompletion::default(),
            Utc::now(),
        )
        .await?;
    Ok(())
}

/// Records queued occurrences, in one transaction with the batch's completion: a redelivered
/// batch records nothing twice.
async fn store_occurrences(
    state: &AppState,
    batch: &IngestBatch,
    payload: &str,
) -> Result<(), Failure> {
    let records: Vec<palisade_store::findings::OccurrenceRecord> = parse_json_lines(payload)?;
    let completion = palisade_store::insights::BatchCompletion {
        occurrences: &records,
        state_snapshot: None,
        findings: i64::try_from(records.len()).unwrap_or(i64::MAX),
    };
    state
        .store
        .complete_batch(batch, completion, Utc::now())
        .await?;
    Ok(())
}

/// Starts the worker: embedded, a round over the journal whenever a batch arrives and at least
/// every few seconds; scaled, the partition owner loop (`service::cluster`).
pub fn spawn_worker(
    state: AppState,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    if state.cluster.scaled() {
        return tokio::spawn(crate::service::cluster::run_partitions(state, shutdown));
    }
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            process_pending(&state).await;
            network::close_idle_windows(&state, Utc::now()).await;
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = state.insights.wake.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    })
}

/// An account id usable in a note name: the source's own account when it is one, else
/// `default`. (Account ids may not hold `/` or whitespace; IBM CRN-style accounts are cut to
/// their last segment.)
pub fn account_of(account: Option<&str>) -> String {
    account
        .map(|account| account.rsplit('/').next().unwrap_or(account).trim())
        .filter(|account| {
            !account.is_empty()
                && account.len() <= 256
                && !account
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        })
        .unwrap_or("default")
        .to_owned()
}

/// Serialises records as JSON Lines (the journal's payload format).
pub fn json_lines<T: Serialize>(records: &[T]) -> ApiResult<String> {
    let mut payload = String::new();
    for record in records {
        let line = serde_json::to_string(record)
            .map_err(|error| ApiError::internal(format!("record to JSON: {error}")))?;
        payload.push_str(&line);
        payload.push('\n');
    }
    Ok(payload)
}

/// Reads a JSON Lines payload back.
pub(crate) fn parse_json_lines<T: serde::de::DeserializeOwned>(
    payload: &str,
) -> Result<Vec<T>, Failure> {
    payload
        .lines()
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|error| {
                Failure::Permanent(format!("stored record {} unreadable: {error}", index + 1))
            })
        })
        .collect()
}

/// The `source` and `wait` parameters every ingest route has.
#[derive(Debug, Clone, Default)]
pub struct IngestParams {
    /// A name for the batch (a file name), shown in errors and listings. Default `upload`.
    pub source: Option<String>,
    /// Process the batch before answering (the answer then carries its findings count).
    pub wait: bool,
}

impl IngestParams {
    /// The batch's source name.
    pub fn source_name(&self) -> String {
        self.source
            .as_deref()
            .map(str::trim)
            .filter(|source| !source.is_empty())
            .unwrap_or("upload")
            .chars()
            .take(256)
            .collect()
    }
}

/// After an ingest: processes now when asked (`?wait=true`), then answers with the batch.
pub async fn answer(
    state: &AppState,
    batch: IngestBatch,
    wait: bool,
    rejected: Vec<RejectedRecord>,
) -> ApiResult<IngestAnswer> {
    let batch = if !wait {
        batch
    } else if state.cluster.scaled() {
        wait_for_owner(state, batch).await?
    } else {
        process_pending(state).await;
        state
            .store
            .get_batch(&batch.instance_id, &batch.id)
            .await?
            .unwrap_or(batch)
    };
    Ok(IngestAnswer {
        batch: BatchView::of(&batch),
        rejected,
    })
}

/// Scaled mode's `?wait=true`: the batch is processed by its partition's owner, maybe another
/// process; wait for its row to leave `pending`, within the request's time.
pub(crate) async fn wait_for_owner(state: &AppState, batch: IngestBatch) -> ApiResult<IngestBatch> {
    let deadline = tokio::time::Instant::now() + state.config.request_timeout.mul_f32(0.8);
    loop {
        if let Some(stored) = state
            .store
            .get_batch(&batch.instance_id, &batch.id)
            .await?
            .filter(|stored| stored.status != BatchStatus::Pending)
        {
            return Ok(stored);
        }
        if tokio::time::Instant::now() >= deadline {
            // Still queued: answered as accepted (202), to be followed at its `href`.
            return Ok(batch);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads an ingest body up to the ingest limit (larger than the JSON routes' limit: a day of
/// flow logs is big). Raw `Body` is not limited by the router's default limit, so this is it.
pub async fn read_body(state: &AppState, body: axum::body::Body) -> ApiResult<axum::body::Bytes> {
    axum::body::to_bytes(body, state.config.ingest_body_limit_bytes)
        .await
        .map_err(|error| {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::new(
                    palisade_model::error::ErrorCode::PayloadTooLarge,
                    format!(
                        "the body is larger than {} bytes; split it into several batches",
                        state.config.ingest_body_limit_bytes
                    ),
                )
            } else {
                ApiError::new(
                    palisade_model::error::ErrorCode::BadRequest,
                    format!("cannot read the body: {error}"),
                )
            }
        })
}

/// `?limit=` of batch listings.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchListParams {
    /// At most this many batches, newest first (default 50, at most 500).
    pub limit: Option<u32>,
}

/// Lists an instance's batches of a stream, newest first.
pub async fn list_batches(
    state: &AppState,
    instance_id: &str,
    stream: &str,
    params: &BatchListParams,
) -> ApiResult<Vec<BatchView>> {
    let limit = params.limit.unwrap_or(50).clamp(1, 500);
    Ok(state
        .store
        .list_batches(instance_id, stream, limit)
        .await?
        .iter()
        .map(BatchView::of)
        .collect())
}

/// Seconds since the epoch, for fingerprints.
pub(crate) fn epoch(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(String::new, |time| time.timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_made_safe_for_note_names() {
        assert_eq!(account_of(Some("123456789012")), "123456789012");
        assert_eq!(account_of(Some("a/0123abcd")), "0123abcd");
        assert_eq!(account_of(Some("has space")), "default");
        assert_eq!(account_of(Some("")), "default");
        assert_eq!(account_of(None), "default");
    }

    #[test]
    fn source_names_default_and_are_bounded() {
        let params = IngestParams::default();
        assert_eq!(params.source_name(), "upload");
        let long = IngestParams {
            source: Some("x".repeat(1000)),
            wait: false,
        };
        assert_eq!(long.source_name().len(), 256);
    }
}
