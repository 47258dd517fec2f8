//! Network insights: flow-log detectors with threat intelligence, per instance.
//!
//! Each instance has its detector configuration (a document; defaults until a user sets one)
//! and its intel feeds (uploaded text, CSV or STIX 2.1, stored as sent). The process keeps the
//! compiled detectors and the intel index in memory, rebuilding them when the stored
//! configuration or feeds change: a feed replaced while the server runs applies from the next
//! batch on, without losing the windows. Windows close in flow time as later flows arrive, when a
//! batch asks for it (`?flush=true`, end of an input), or after the stream has been idle for
//! [`IDLE_FLUSH`] (`ServerConfig::network_idle_flush`; the worker then queues an empty flushing batch, [`IDLE_FLUSH_SOURCE`], so
//! those findings are recorded like any batch's).
//!
//! **The detector state survives restarts.** Each completed batch saves the state after it
//! (`NetworkDetectors::save_state`: open windows, baselines, remembered detections) in the same
//! transaction as its findings, as the stream state of `network`, headed by the id of the batch
//! that saved it. A process keeps the state in memory between batches and uses it only while the
//! stored state is the one it saved itself; otherwise (a restart, another process completed
//! batches, a batch failed half-way) it restores the stored state first. A batch therefore always
//! starts from exactly the state its predecessors left in the store, and a retried batch never
//! counts twice. A state saved under another detector configuration is not restored: changing
//! the configuration restarts the windows.

use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use palisade_insights::network::{
    FeedFormat, FeedSpec, NetworkDetectorConfig, NetworkDetectorState, NetworkDetectors,
    NetworkFinding, ThreatIntel, parse_feed,
};
use palisade_logs::flow::{FlowFormat, decode_flows, decompress_if_gzipped};
use palisade_model::error::ErrorCode;
use palisade_model::flow::FlowRecord;
use palisade_store::insights::{BatchCompletion, IngestBatch, StoredFeed};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{Failure, MAX_REPORTED_REJECTIONS, NETWORK, RejectedRecord, account_of};
use crate::error::{ApiError, ApiResult};
use crate::service::documents::{self, Kind, timestamp};
use crate::service::findings::model::{
    ApiNote, ApiOccurrence, Context, DataTransferred, Finding, FindingType, NetworkConnection,
    Reporter, SocketAddress,
};
use crate::service::findings::{
    NETWORK_INSIGHTS_PROVIDER, SourceOccurrence, ensure_note, prepare_occurrences,
};
use crate::state::AppState;

/// The detector configuration document (one per instance).
pub const DETECTORS: Kind = Kind {
    store_kind: "network_detectors",
    label: "network detector configuration",
};
const DETECTORS_ID: &str = "config";

/// Default wall-clock quiet time after which a stream's open windows are closed and reported.
pub const IDLE_FLUSH: Duration = Duration::from_secs(300);

/// The `source` of the empty batches the worker queues to flush idle streams.
pub const IDLE_FLUSH_SOURCE: &str = "idle-flush";

/// Longest list of bad feed lines an answer carries.
const MAX_REPORTED_FEED_ERRORS: usize = 100;

/// The live detectors of one instance.
pub struct NetworkRuntime {
    config_version: i64,
    feeds_key: String,
    detectors: NetworkDetectors,
    intel: Arc<ThreatIntel>,
    state: NetworkDetectorState,
    /// The batch whose completion stored the state held here; `None` when the stored state must
    /// be read first (fresh runtime, or the last completion was not ours).
    saved_by: Option<String>,
    /// The account of the flows seen last, for findings closed later.
    account: String,
    last_batch: Instant,
    /// Whether windows hold flows not reported yet.
    open: bool,
}

/// Reads the detector configuration (defaults when none was set) and its version.
pub async fn config(
    state: &AppState,
    instance_id: &str,
) -> ApiResult<(NetworkDetectorConfig, i64)> {
    match state
        .store
        .get_document(instance_id, DETECTORS.store_kind, DETECTORS_ID)
        .await?
    {
        Some(document) => Ok((
            serde_json::from_value(document.body).map_err(|error| {
                ApiError::internal(format!("network detector configuration: {error}"))
            })?,
            document.version,
        )),
        None => Ok((NetworkDetectorConfig::default(), 0)),
    }
}

/// Validates and stores a detector configuration; its windows restart with it.
pub async fn save_config(
    state: &AppState,
    instance_id: &str,
    config: &NetworkDetectorConfig,
) -> ApiResult<()> {
    NetworkDetectors::new(config.clone()).map_err(|error| {
        ApiError::new(ErrorCode::InvalidField, error.to_string()).with_target(
            palisade_model::error::ErrorTarget::field(format!(
                "/{}",
                error.field.replace('.', "/")
            )),
        )
    })?;
    let body = serde_json::to_value(config)
        .map_err(|error| ApiError::internal(format!("detector configuration: {error}")))?;
    documents::upsert(state, instance_id, DETECTORS, DETECTORS_ID, &body).await?;
    Ok(())
}

/// A feed as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedView {
    pub name: String,
    /// `text`, `csv` or `stix`.
    pub format: String,
    pub default_category: String,
    pub default_confidence: u8,
    /// Indicators read.
    pub entries: i64,
    /// Lines that could not be read (skipped).
    pub rejected: i64,
    pub updated_at: String,
    /// The first bad lines, on upload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RejectedRecord>,
}

impl FeedView {
    /// The view of a stored feed.
    pub fn of(feed: &StoredFeed) -> ApiResult<Self> {
        let spec: FeedSpec = serde_json::from_value(feed.spec.clone())
            .map_err(|error| ApiError::internal(format!("feed spec: {error}")))?;
        Ok(Self {
            name: feed.name.clone(),
            format: format_name(spec.format).to_owned(),
            default_category: spec.default_category,
            default_confidence: spec.default_confidence,
            entries: feed.entries,
            rejected: feed.rejected,
            updated_at: timestamp(feed.updated_at),
            errors: Vec::new(),
        })
    }
}

fn format_name(format: FeedFormat) -> &'static str {
    match format {
        FeedFormat::Text => "text",
        FeedFormat::Csv => "csv",
        FeedFormat::Stix => "stix",
    }
}

/// How an uploaded feed is to be read.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// `text`, `csv` or `stix`; guessed from the content when absent.
    pub format: Option<String>,
    /// Category of entries that name none (`scanner`, `malware`, `bot`, `miner`, `anonymizer`
    /// or any label). Default `malware`.
    pub category: Option<String>,
    /// Confidence (0–100) of entries that give none. Default 80.
    pub confidence: Option<u8>,
}

/// Parses and stores a feed (replacing one of the same name). Bad lines are reported and
/// skipped; a feed with no usable line at all is refused.
pub async fn put_feed(
    state: &AppState,
    instance_id: &str,
    name: &str,
    params: &FeedParams,
    body: &[u8],
) -> ApiResult<FeedView> {
    let mut reader: Box<dyn BufRead + Send + '_> =
        decompress_if_gzipped(body).map_err(|error| {
            ApiError::new(ErrorCode::InvalidField, format!("unreadable body: {error}"))
        })?;
    let mut content = String::new();
    reader.read_to_string(&mut content).map_err(|error| {
        ApiError::new(
            ErrorCode::InvalidField,
            format!("a feed must be UTF-8 text: {error}"),
        )
    })?;
    let format = match params.format.as_deref() {
        None => FeedFormat::guess(name, content.as_bytes()),
        Some("text") => FeedFormat::Text,
        Some("csv") => FeedFormat::Csv,
        Some("stix") => FeedFormat::Stix,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("`format`: `{other}` is not one of text, csv, stix"),
            )
            .with_target(palisade_model::error::ErrorTarget::parameter("format")));
        }
    };
    if params.confidence.is_some_and(|confidence| confidence > 100) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`confidence`: must be between 0 and 100",
        )
        .with_target(palisade_model::error::ErrorTarget::parameter("confidence")));
    }
    let spec = FeedSpec {
        name: name.to_owned(),
        format,
        default_category: params
            .category
            .as_deref()
            .map(palisade_insights::network::normalise_category)
            .unwrap_or_else(|| "malware".to_owned()),
        default_confidence: params.confidence.unwrap_or(80),
    };
    let parsed = parse_feed(content.as_bytes(), &spec);
    let errors: Vec<RejectedRecord> = parsed
        .errors
        .iter()
        .take(MAX_REPORTED_FEED_ERRORS)
        .map(|error| RejectedRecord {
            line: error.line,
            pointer: None,
            message: error.message.clone(),
        })
        .collect();
    if parsed.indicators.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!(
                "feed `{name}` has no usable indicator ({} bad lines; first: {})",
                parsed.errors.len(),
                errors
                    .first()
                    .map_or("the body is empty".to_owned(), |error| format!(
                        "line {}: {}",
                        error.line, error.message
                    ))
            ),
        ));
    }
    let stored = StoredFeed {
        name: name.to_owned(),
        spec: serde_json::to_value(&spec)
            .map_err(|error| ApiError::internal(format!("feed spec: {error}")))?,
        entries: i64::try_from(parsed.indicators.len()).unwrap_or(i64::MAX),
        rejected: i64::try_from(parsed.errors.len()).unwrap_or(i64::MAX),
        updated_at: Utc::now(),
    };
    state.store.put_feed(instance_id, &stored, &content).await?;
    let mut view = FeedView::of(&stored)?;
    view.errors = errors;
    Ok(view)
}

/// Builds the intel index of an instance from its stored feeds.
async fn build_intel(state: &AppState, instance_id: &str) -> ApiResult<ThreatIntel> {
    let mut parsed = Vec::new();
    for feed in state.store.list_feeds(instance_id).await? {
        let Some((feed, content)) = state.store.get_feed(instance_id, &feed.name).await? else {
            continue;
        };
        let spec: FeedSpec = serde_json::from_value(feed.spec)
            .map_err(|error| ApiError::internal(format!("feed spec: {error}")))?;
        parsed.push((spec.name.clone(), content, spec));
    }
    tokio::task::spawn_blocking(move || {
        let feeds: Vec<(String, Vec<_>)> = parsed
            .into_iter()
            .map(|(name, content, spec)| (name, parse_feed(content.as_bytes(), &spec).indicators))
            .collect();
        ThreatIntel::build(
            feeds
                .iter()
                .map(|(name, indicators)| (name.as_str(), indicators.as_slice())),
        )
    })
    .await
    .map_err(|error| ApiError::internal(format!("building the intel index: {error}")))
}

/// Brings an instance's runtime up to date with its stored configuration and feeds, creating it
/// if needed. A changed configuration restarts the windows; changed feeds only swap the index.
async fn refresh_runtime(
    state: &AppState,
    instance_id: &str,
    runtime: Option<NetworkRuntime>,
) -> ApiResult<NetworkRuntime> {
    let (config, config_version) = config(state, instance_id).await?;
    let feeds_key = state
        .store
        .list_feeds(instance_id)
        .await?
        .iter()
        .map(|feed| format!("{}@{}", feed.name, timestamp(feed.updated_at)))
        .collect::<Vec<_>>()
        .join(";");
    let mut runtime = match runtime {
        Some(runtime) if runtime.config_version == config_version => runtime,
        _ => {
            let detectors = NetworkDetectors::new(config).map_err(|error| {
                ApiError::internal(format!("stored detector configuration: {error}"))
            })?;
            NetworkRuntime {
                config_version,
                feeds_key: String::from("\u{0}unbuilt"),
                state: detectors.new_state(),
                detectors,
                intel: Arc::new(ThreatIntel::default()),
                saved_by: None,
                account: "default".to_owned(),
                last_batch: Instant::now(),
                open: false,
            }
        }
    };
    if runtime.feeds_key != feeds_key {
        runtime.intel = Arc::new(build_intel(state, instance_id).await?);
        runtime.feeds_key = feeds_key;
    }
    Ok(runtime)
}

/// What decoding an uploaded body gave.
pub struct DecodedFlows {
    pub flows: Vec<FlowRecord>,
    pub rejected: u64,
    pub rejections: Vec<RejectedRecord>,
}

/// Decodes a posted body of flow logs (AWS VPC text with or without a header line, IBM VPC, Azure
/// NSG or GCP JSON; gzipped or not). Bad lines are reported and skipped.
pub fn decode_flow_body(body: &[u8], source: &str, format: FlowFormat) -> ApiResult<DecodedFlows> {
    let reader = decompress_if_gzipped(body).map_err(|error| {
        ApiError::new(ErrorCode::InvalidField, format!("unreadable body: {error}"))
    })?;
    let mut flows = Vec::new();
    let summary = decode_flows(reader, source, format, |record| flows.push(record.clone()));
    Ok(DecodedFlows {
        flows,
        rejected: summary.bad_records,
        rejections: summary
            .errors
            .into_iter()
            .take(MAX_REPORTED_REJECTIONS)
            .map(|error| RejectedRecord {
                line: error.line,
                pointer: error.pointer,
                message: error.message,
            })
            .collect(),
    })
}

/// The stream state as stored: `<batch id> <account>` on the first line (neither holds
/// whitespace), then the detectors' saved state.
fn stored_state(batch_id: &str, account: &str, saved: &str) -> String {
    format!("{batch_id} {account}\n{saved}")
}

/// Splits a stored stream state into (batch id, account, detectors' saved state).
fn parse_stored_state(text: &str) -> Option<(&str, &str, &str)> {
    let (head, saved) = text.split_once('\n')?;
    let (batch_id, account) = head.split_once(' ')?;
    Some((batch_id, account, saved))
}

fn has_open_windows(state: &NetworkDetectorState) -> bool {
    state.stats().iter().any(|(_, stats)| stats.open_keys > 0)
}

/// Runs one pending batch through the instance's detectors and completes it, saving the
/// detector state with its findings.
pub(super) async fn process_batch(
    state: &AppState,
    batch: &IngestBatch,
    payload: &str,
) -> Result<(), Failure> {
    let flows: Vec<FlowRecord> = super::parse_json_lines(payload)?;
    let flush = batch.options["flush"].as_bool().unwrap_or(false);
    let instance_id = batch.instance_id.as_str();
    let mut runtimes = state.insights.network.lock().await;
    let runtime = refresh_runtime(state, instance_id, runtimes.remove(instance_id)).await?;
    let stored = match state.store.stream_state(instance_id, NETWORK).await {
        Ok(stored) => stored,
        Err(error) => {
            runtimes.insert(instance_id.to_owned(), runtime);
            return Err(error.into());
        }
    };
    let batch_id = batch.id.clone();
    let (mut runtime, findings, saved) = tokio::task::spawn_blocking(move || {
        let mut runtime = runtime;
        match stored
            .as_deref()
            .map(|text| (text, parse_stored_state(text)))
        {
            Some((_, Some((saved_by, account, saved))))
                if runtime.saved_by.as_deref() != Some(saved_by) =>
            {
                runtime.account = account.to_owned();
                runtime.state = match runtime.detectors.restore_state(saved) {
                    Ok(restored) => restored,
                    Err(error) => {
                        tracing::info!(error = %error, "network detector state starts afresh");
                        runtime.detectors.new_state()
                    }
                };
                runtime.open = has_open_windows(&runtime.state);
            }
            Some((_, Some(_))) => {}
            Some((text, None)) => {
                tracing::warn!(
                    length = text.len(),
                    "stored network state unreadable; starting afresh"
                );
                runtime.state = runtime.detectors.new_state();
            }
            None if runtime.saved_by.is_some() => {
                // The stored state was cleared since we saved it.
                runtime.state = runtime.detectors.new_state();
                runtime.open = false;
            }
            None => {}
        }
        if let Some(account) = flows.iter().find_map(|flow| flow.account_id.as_deref()) {
            runtime.account = account_of(Some(account));
        }
        let mut findings =
            runtime
                .detectors
                .process_batch(&mut runtime.state, &runtime.intel, &flows);
        if flush {
            runtime.detectors.flush(&mut runtime.state, &mut findings);
        }
        runtime.open = !flush && (runtime.open || !flows.is_empty());
        let saved = stored_state(
            &batch_id,
            &runtime.account,
            &runtime.detectors.save_state(&runtime.state),
        );
        // Until this batch's completion commits, the state in memory is not the stored one.
        runtime.saved_by = None;
        (runtime, findings, saved)
    })
    .await
    .map_err(|error| ApiError::internal(format!("network detection: {error}")))?;
    let account = runtime.account.clone();
    let count = i64::try_from(findings.len()).unwrap_or(i64::MAX);
    let records = match occurrence_records(state, instance_id, &account, &findings).await {
        Ok(records) => records,
        Err(error) => {
            // The batch stays pending; the next attempt restores the stored state, so the
            // flows this attempt counted are not counted twice.
            runtimes.insert(instance_id.to_owned(), runtime);
            return Err(error.into());
        }
    };
    let completed = state
        .store
        .complete_batch(
            batch,
            BatchCompletion {
                occurrences: &records,
                state_snapshot: Some(&saved),
                findings: count,
            },
            Utc::now(),
        )
        .await;
    runtime.last_batch = Instant::now();
    let outcome = match completed {
        Ok(Some(_)) => {
            runtime.saved_by = Some(batch.id.clone());
            Ok(())
        }
        // Another process completed the batch: its state is in the store, ours is not.
        Ok(None) => Ok(()),
        Err(error) => Err(error.into()),
    };
    runtimes.insert(instance_id.to_owned(), runtime);
    outcome
}

/// Drops the in-memory detectors of the instances `leaving` picks (their partition moved to
/// another process, which will build its own from the store).
pub async fn forget(state: &AppState, leaving: impl Fn(&str) -> bool) {
    state
        .insights
        .network
        .lock()
        .await
        .retain(|instance_id, _| !leaving(instance_id));
}

/// Queues a flushing batch for every stream idle for `network_idle_flush` with windows open, so
/// their findings are recorded, and the state saved, in one transaction as for any batch.
pub async fn close_idle_windows(state: &AppState, _now: DateTime<Utc>) {
    let idle: Vec<String> = {
        let mut runtimes = state.insights.network.lock().await;
        runtimes
            .iter_mut()
            .filter(|(_, runtime)| {
                runtime.open && runtime.last_batch.elapsed() >= state.config.network_idle_flush
            })
            .map(|(instance_id, runtime)| {
                runtime.open = false;
                instance_id.clone()
            })
            .collect()
    };
    for instance_id in idle {
        if let Err(error) = super::enqueue(
            state,
            &instance_id,
            NETWORK,
            IDLE_FLUSH_SOURCE,
            "palisade-worker",
            "",
            0,
            0,
            json!({ "flush": true }),
        )
        .await
        {
            tracing::warn!(instance = %instance_id, error = %error, "cannot queue the idle flush");
            if let Some(runtime) = state.insights.network.lock().await.get_mut(&instance_id) {
                runtime.open = true;
            }
        }
    }
}

async fn notes_and_sources(
    state: &AppState,
    instance_id: &str,
    account: &str,
    findings: &[NetworkFinding],
) -> ApiResult<Vec<SourceOccurrence>> {
    let now = Utc::now();
    let mut noted = std::collections::HashSet::new();
    for finding in findings {
        if noted.insert(finding.finding_type.clone()) {
            ensure_note(
                &state.store,
                instance_id,
                account,
                NETWORK_INSIGHTS_PROVIDER,
                &note_of(finding),
                now,
            )
            .await?;
        }
    }
    Ok(findings
        .iter()
        .map(|finding| occurrence_of(account, finding))
        .collect())
}

async fn occurrence_records(
    state: &AppState,
    instance_id: &str,
    account: &str,
    findings: &[NetworkFinding],
) -> ApiResult<Vec<palisade_store::findings::OccurrenceRecord>> {
    let sources = notes_and_sources(state, instance_id, account, findings).await?;
    let (records, report) = prepare_occurrences(
        &state.store,
        instance_id,
        NETWORK_INSIGHTS_PROVIDER,
        sources,
    )
    .await?;
    for (index, problems) in &report.rejected {
        tracing::warn!(instance = instance_id, index, problems = ?problems, "network finding not recorded");
    }
    Ok(records)
}

/// What each finding type is, for its note.
fn describe(finding_type: &str) -> &'static str {
    match finding_type {
        "port_scan_vertical" => "One source probed many ports of one target.",
        "port_scan_horizontal" => "One source probed one port on many targets.",
        "port_scan_distributed" => "Many sources probed the same ports of one target.",
        "brute_force" => {
            "Many short connections from one source to a remote-access or database port."
        }
        "exfiltration" => "An internal host sent far more data to an external peer than usual.",
        "beaconing" => "An internal host contacted the same external peer at regular intervals.",
        _ => "Traffic to or from an address listed by threat intelligence.",
    }
}

fn note_of(finding: &NetworkFinding) -> ApiNote {
    ApiNote {
        short_description: finding.finding_type.clone(),
        long_description: describe(&finding.finding_type).to_owned(),
        kind: "FINDING".into(),
        related_url: None,
        create_time: None,
        update_time: None,
        id: finding.finding_type.clone(),
        shared: None,
        reported_by: Reporter {
            id: NETWORK_INSIGHTS_PROVIDER.into(),
            title: "Palisade network insights".into(),
            url: None,
        },
        finding: Some(FindingType {
            severity: finding.severity.as_str().to_owned(),
            next_steps: None,
        }),
        kpi: None,
        card: None,
        section: None,
    }
}

fn saturating(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The finding as an occurrence. Repeats of the same type between the same client, server and
/// port merge into one finding with a count.
fn occurrence_of(account: &str, finding: &NetworkFinding) -> SourceOccurrence {
    let connection = &finding.network_connection;
    let server = connection.server.address.to_string();
    let fingerprint = format!(
        "{}|{}|{}|{}",
        finding.finding_type,
        connection.client.address,
        server,
        connection
            .server
            .port
            .map_or_else(String::new, |port| port.to_string())
    );
    let direction = serde_json::to_value(connection.direction)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned));
    SourceOccurrence {
        account_id: account.to_owned(),
        note_id: finding.finding_type.clone(),
        fingerprint,
        body: ApiOccurrence {
            resource_url: None,
            note_name: String::new(),
            kind: "FINDING".into(),
            short_description: Some(finding.summary.chars().take(200).collect()),
            long_description: Some(finding.summary.clone()),
            remediation: None,
            create_time: None,
            update_time: None,
            id: String::new(),
            context: Some(Context {
                resource_name: Some(server.clone()),
                resource_id: Some(server),
                ..Context::default()
            }),
            finding: Some(Finding {
                severity: Some(finding.severity.as_str().to_owned()),
                certainty: Some("MEDIUM".into()),
                next_steps: None,
                network_connection: Some(NetworkConnection {
                    direction,
                    protocol: Some(connection.protocol.clone()),
                    client: Some(SocketAddress {
                        address: connection.client.address.to_string(),
                        port: connection.client.port.map(i64::from),
                    }),
                    server: Some(SocketAddress {
                        address: connection.server.address.to_string(),
                        port: connection.server.port.map(i64::from),
                    }),
                }),
                data_transferred: Some(DataTransferred {
                    client_bytes: Some(saturating(finding.data_transferred.client_bytes)),
                    server_bytes: Some(saturating(finding.data_transferred.server_bytes)),
                    client_packets: Some(saturating(finding.data_transferred.client_packets)),
                    server_packets: Some(saturating(finding.data_transferred.server_packets)),
                }),
            }),
            kpi: None,
            reference_data: Some(json!(finding)),
        },
    }
}
