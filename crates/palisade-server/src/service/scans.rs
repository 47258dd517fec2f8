//! Posture scans: attachment → scope → resources → evaluations → report, split into shards
//! that any server process may evaluate.
//!
//! The engine (`palisade-posture`) plans and evaluates; this module feeds it from the store:
//!
//! 1. **Start** ([`run_scan`]). The coordinator claims the attachment (in this process and,
//!    sharing a PostgreSQL store, across processes: `service::cluster`), reads what the scan
//!    evaluates — the attachment, its profile, the libraries and custom rules the profile uses,
//!    its scopes and attestations — and checks that it plans. It cuts each (service, kind) the
//!    plan targets into shards of `scan_shard_size` resources by id (boundaries read from the
//!    index, not the resources) and records the run, with that snapshot of its inputs, and its
//!    shards in one transaction (`palisade_store::scans`).
//! 2. **Shards.** Any process evaluates a pending shard under the shard's lock: it plans from the
//!    run's snapshot (so every worker evaluates the same plan, however the documents change
//!    meanwhile), reads the shard's resources page by page, keeps those in the attachment's
//!    scope, evaluates them, and stores the evaluations and the shard's roll-up counters
//!    ([`palisade_posture::PartialRollup`]) with its `done` mark in one transaction. The
//!    coordinator works through the shards itself; the other processes' [`spawn_worker`] loops
//!    join in when the store is shared.
//! 3. **Assembly.** Once every shard is done, the counters are merged in shard order — which is
//!    the order one pass would read the resources in, so the report equals a one-pass scan's —
//!    and the report is stored in one transaction with the run's end. Then the threshold
//!    finding and the attachment's `last_scan`.
//!
//! A process that dies mid-shard leaves the shard pending (its transaction never committed) and
//! its lock free; one that dies while coordinating frees the attachment's lock, and the worker
//! loop of any process adopts the run: it finishes the shards and assembles the report. In
//! embedded mode the worker loop adopts the runs a crash interrupted when the server restarts.
//! Memory stays bounded by the shard size; only the roll-up counters live for the whole scan.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use palisade_model::error::{ErrorCode, ErrorItem, ErrorTarget};
use palisade_posture::{
    Attachment, ControlLibrary, PartialRollup, Profile, RollupBuilder, ScanInput, ScanPlan, Scope,
    ScopeSelector,
};
use palisade_store::locks::LockPurpose;
use palisade_store::{EvaluationRow, ResourceFilter, ScanRun, ScanShard, ShardRef, StoredReport};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};
use crate::routes::v3::{ATTACHMENT, CONTROL_LIBRARY, PROFILE, RULE, SCOPE};
use crate::service::documents::{self, new_id, timestamp};
use crate::state::AppState;

/// Resources per shard unless configured (`ServerConfig::scan_shard_size`).
pub const SHARD_SIZE: u32 = 2_000;
/// How often the worker loop looks for pending shards when processes share the store.
const SHARED_SWEEP: Duration = Duration::from_millis(500);
/// How often it looks for interrupted runs in embedded mode (one process: only after a crash).
const EMBEDDED_SWEEP: Duration = Duration::from_secs(10);
/// Plans a process keeps (each holds a scan's rules and controls, a few MB at most).
const PLANS_KEPT: usize = 8;
/// How long the coordinator waits before looking again at shards other processes hold.
const WAIT_FOR_OTHERS: Duration = Duration::from_millis(100);

/// A run: its instance and report ids.
type RunKey = (String, String);

/// This process's scan bookkeeping.
#[derive(Default)]
pub struct ScanRuntime {
    /// Attachments being scanned here: a second request for the same attachment is refused
    /// instead of running the same scan twice at once.
    running: Mutex<HashSet<(String, String)>>,
    /// Shards being evaluated here (advisory locks stack within a session, so they cannot tell
    /// two tasks of one process apart).
    in_hand: Mutex<HashSet<ShardRef>>,
    /// Plans of the runs this process works on, built once per run; the oldest are dropped
    /// beyond [`PLANS_KEPT`] (a helper never learns when another process's scan ends).
    plans: Mutex<HashMap<RunKey, (u64, Arc<Prepared>)>>,
    /// Counts plans built, to find the oldest.
    plans_built: AtomicU64,
    /// Shards this process evaluated and committed.
    shards_evaluated: AtomicU64,
}

impl ScanRuntime {
    /// How many shards this process evaluated and committed since it started.
    pub fn shards_evaluated(&self) -> u64 {
        self.shards_evaluated.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for ScanRuntime {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ScanRuntime")
            .finish_non_exhaustive()
    }
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes the attachment from [`ScanRuntime::running`] when the scan ends, however it ends.
struct RunningGuard {
    runtime: Arc<ScanRuntime>,
    key: (String, String),
}

impl RunningGuard {
    fn take(runtime: &Arc<ScanRuntime>, instance_id: &str, attachment_id: &str) -> Option<Self> {
        let key = (instance_id.to_owned(), attachment_id.to_owned());
        locked(&runtime.running).insert(key.clone()).then(|| Self {
            runtime: runtime.clone(),
            key,
        })
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        locked(&self.runtime.running).remove(&self.key);
    }
}

/// A shard this process evaluates (removed from [`ScanRuntime::in_hand`] when dropped).
struct ShardGuard<'r> {
    runtime: &'r ScanRuntime,
    shard: ShardRef,
    _claim: crate::service::cluster::Claim,
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        locked(&self.runtime.in_hand).remove(&self.shard);
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> ApiResult<T> {
    serde_json::from_value(value)
        .map_err(|error| ApiError::internal(format!("stored {what} does not parse: {error}")))
}

/// What a scan evaluates, as the coordinator read it: every worker plans from this snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScanInputs {
    attachment: Value,
    profile: Value,
    /// The libraries the profile's controls come from.
    libraries: Vec<Value>,
    /// The instance's custom rules (the built-in ones come with the binary).
    rules: Vec<Value>,
    /// The scopes the attachment names.
    scopes: Vec<Value>,
    attestations: Vec<Value>,
    /// The scan's time: time-based operators and attestation expiry are judged against it.
    now: DateTime<Utc>,
}

/// A scan ready to evaluate.
struct Prepared {
    plan: ScanPlan,
    selector: ScopeSelector,
    now: DateTime<Utc>,
}

/// Reads what a scan of the attachment evaluates.
async fn read_inputs(
    state: &AppState,
    instance_id: &str,
    attachment_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<ScanInputs> {
    let attachment = documents::get(state, instance_id, ATTACHMENT, attachment_id)
        .await?
        .body;
    let profile_id = attachment["profile_id"].as_str().unwrap_or_default();
    let profile = documents::get(state, instance_id, PROFILE, profile_id)
        .await?
        .body;
    let library_ids: HashSet<&str> = profile["controls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|control| control["control_library_id"].as_str())
        .collect();
    // The built-in libraries are among the documents (see `documents::builtin`).
    let libraries = documents::all(state, instance_id, CONTROL_LIBRARY)
        .await?
        .into_iter()
        .filter(|document| library_ids.contains(document.id.as_str()))
        .map(|document| document.body)
        .collect();
    let rules = documents::all(state, instance_id, RULE)
        .await?
        .into_iter()
        .map(|document| document.body)
        .collect();
    let scope_ids: HashSet<&str> = attachment["scope"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|scope| scope["id"].as_str())
        .collect();
    let scopes = documents::all(state, instance_id, SCOPE)
        .await?
        .into_iter()
        .filter(|document| scope_ids.contains(document.id.as_str()))
        .map(|document| document.body)
        .collect();
    let attestations = attestation_bodies(state, instance_id, attachment_id).await?;
    Ok(ScanInputs {
        attachment,
        profile,
        libraries,
        rules,
        scopes,
        attestations,
        now,
    })
}

/// Plans a scan from its inputs; the errors are the user's (a profile naming unknown controls,
/// an attachment naming unknown scopes).
fn prepare(inputs: &ScanInputs) -> ApiResult<Prepared> {
    let attachment: Attachment = parse(inputs.attachment.clone(), "attachment")?;
    let profile: Profile = parse(inputs.profile.clone(), "profile")?;
    let libraries: Vec<ControlLibrary> = inputs
        .libraries
        .iter()
        .map(|library| parse(library.clone(), "control library"))
        .collect::<ApiResult<_>>()?;
    let builtin = palisade_posture::content::builtin()
        .map_err(|error| ApiError::internal(format!("built-in content: {error:?}")))?;
    let mut rules = builtin.rules.clone();
    for body in &inputs.rules {
        let rule = palisade_rules::parse_rule(body).map_err(|errors| {
            ApiError::internal(format!(
                "stored rule {} does not parse: {errors:?}",
                body["id"].as_str().unwrap_or_default()
            ))
        })?;
        rules.push(rule);
    }
    let scopes: Vec<Scope> = inputs
        .scopes
        .iter()
        .map(|scope| parse(scope.clone(), "scope"))
        .collect::<ApiResult<_>>()?;
    let selector = palisade_posture::resolve_attachment_scopes(&attachment.scope, |id| {
        scopes.iter().find(|scope| scope.id == id)
    })
    .map_err(|errors| {
        ApiError::many(
            errors
                .into_iter()
                .map(|error| ErrorItem {
                    code: ErrorCode::InvalidField,
                    message: format!("attachment `{}`: {}", error.pointer, error.message),
                    target: Some(ErrorTarget::field(error.pointer)),
                })
                .collect(),
        )
    })?;
    let attestations: Vec<palisade_posture::Attestation> = inputs
        .attestations
        .iter()
        .map(|attestation| parse(attestation.clone(), "attestation"))
        .collect::<ApiResult<_>>()?;
    let plan = ScanPlan::new(ScanInput {
        profile: &profile,
        libraries: &libraries,
        rules: &rules,
        attachment_parameters: &attachment.attachment_parameters,
        attestations: &attestations,
        now: inputs.now,
    })
    .map_err(|error| {
        ApiError::new(
            ErrorCode::InvalidField,
            format!("the attachment's profile cannot be scanned: {error}"),
        )
    })?;
    Ok(Prepared {
        plan,
        selector,
        now: inputs.now,
    })
}

/// The plan of a run, built once per process from the run's snapshot (read from the store
/// when `run` is not at hand).
async fn plan_of(
    state: &AppState,
    instance_id: &str,
    report_id: &str,
    run: Option<&ScanRun>,
) -> ApiResult<Arc<Prepared>> {
    let key = (instance_id.to_owned(), report_id.to_owned());
    if let Some((_, prepared)) = locked(&state.scans.plans).get(&key) {
        return Ok(prepared.clone());
    }
    let read;
    let run = match run {
        Some(run) => run,
        None => {
            read = state
                .store
                .get_scan_run(instance_id, report_id)
                .await?
                .ok_or_else(|| ApiError::not_found("scan run", report_id))?;
            &read
        }
    };
    let inputs: ScanInputs = parse(run.input.clone(), "scan run input")?;
    let prepared = Arc::new(prepare(&inputs)?);
    keep_plan(state, key, prepared.clone());
    Ok(prepared)
}

fn keep_plan(state: &AppState, key: RunKey, prepared: Arc<Prepared>) {
    let built = state.scans.plans_built.fetch_add(1, Ordering::Relaxed);
    let mut plans = locked(&state.scans.plans);
    plans.insert(key, (built, prepared));
    while plans.len() > PLANS_KEPT {
        let Some(oldest) = plans
            .iter()
            .min_by_key(|(_, (built, _))| *built)
            .map(|(key, _)| key.clone())
        else {
            break;
        };
        plans.remove(&oldest);
    }
}

fn forget_plan(state: &AppState, instance_id: &str, report_id: &str) {
    locked(&state.scans.plans).remove(&(instance_id.to_owned(), report_id.to_owned()));
}

/// Cuts each target of the plan into ranges of `size` resources by id.
async fn cut_into_shards(
    state: &AppState,
    instance_id: &str,
    plan: &ScanPlan,
    size: u32,
) -> ApiResult<Vec<ScanShard>> {
    let mut shards = Vec::new();
    for (service_name, resource_kind) in plan.targets() {
        let filter = ResourceFilter {
            service_name: Some(service_name.clone()),
            resource_kind: Some(resource_kind.clone()),
            ..ResourceFilter::default()
        };
        let boundaries = state
            .store
            .resource_id_boundaries(instance_id, &filter, size)
            .await?;
        let mut after = None;
        for until in boundaries.into_iter().map(Some).chain([None]) {
            shards.push(ScanShard {
                shard: u32::try_from(shards.len()).unwrap_or(u32::MAX),
                service_name: service_name.clone(),
                resource_kind: resource_kind.clone(),
                after_id: after.take(),
                until_id: until.clone(),
            });
            after = until;
        }
    }
    Ok(shards)
}

/// Runs a scan of an attachment as of `now` (time-based operators, attestation expiry and the
/// next scheduled time are judged against it) and returns the SCC `Scan` answer once its
/// report is stored.
///
/// The scan runs in a task of its own: a request that is dropped (timed out, its client gone)
/// must not cancel it between the statements of a store transaction, which could leave the
/// transaction open and its rows locked; the scan finishes and its report appears.
pub async fn run_scan(
    state: &AppState,
    instance_id: &str,
    attachment_id: &str,
    scan_type: &str,
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    let order = ScanOrder::new(state, instance_id, attachment_id, scan_type, now);
    detached(async move {
        let (_running, _claim, run) = order.begin().await?;
        let outcome = drive_run(&order.state, &run).await;
        forget_plan(&order.state, &run.instance_id, &run.report_id);
        outcome
    })
    .await
}

/// Starts a scan and leaves it to the scan workers (see [`sweep`]), which evaluate its shards
/// and assemble its report; returns the report id it will have. The same checks as
/// [`run_scan`] apply before anything is recorded.
pub async fn start_scan(
    state: &AppState,
    instance_id: &str,
    attachment_id: &str,
    scan_type: &str,
    now: DateTime<Utc>,
) -> ApiResult<String> {
    let order = ScanOrder::new(state, instance_id, attachment_id, scan_type, now);
    detached(async move {
        let (_running, _claim, run) = order.begin().await?;
        forget_plan(&order.state, &run.instance_id, &run.report_id);
        Ok(run.report_id)
    })
    .await
}

/// A scan asked for, owned so that it can move into the scan's task.
struct ScanOrder {
    state: AppState,
    instance_id: String,
    attachment_id: String,
    scan_type: String,
    now: DateTime<Utc>,
}

impl ScanOrder {
    fn new(
        state: &AppState,
        instance_id: &str,
        attachment_id: &str,
        scan_type: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            state: state.clone(),
            instance_id: instance_id.to_owned(),
            attachment_id: attachment_id.to_owned(),
            scan_type: scan_type.to_owned(),
            now,
        }
    }

    /// Claims the attachment (in this process, then across the processes sharing the store)
    /// and records the run; the claims last as long as the guards.
    async fn begin(&self) -> ApiResult<(RunningGuard, crate::service::cluster::Claim, ScanRun)> {
        let state = &self.state;
        let Some(running) =
            RunningGuard::take(&state.scans, &self.instance_id, &self.attachment_id)
        else {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "attachment `{}` is being scanned already",
                    self.attachment_id
                ),
            ));
        };
        let claim = state
            .cluster
            .lock_scan(&self.instance_id, &self.attachment_id)
            .await?;
        let run = create_run(
            state,
            &self.instance_id,
            &self.attachment_id,
            &self.scan_type,
            self.now,
        )
        .await?;
        Ok((running, claim, run))
    }
}

/// Runs store work to its end even when the caller is dropped.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = ApiResult<T>> + Send + 'static,
) -> ApiResult<T> {
    tokio::spawn(work)
        .await
        .map_err(|error| ApiError::internal(format!("scan task failed: {error}")))?
}

/// Reads and checks the scan's inputs, cuts it into shards and records the run (its plan kept
/// for this process). The caller holds the attachment's claims.
async fn create_run(
    state: &AppState,
    instance_id: &str,
    attachment_id: &str,
    scan_type: &str,
    now: DateTime<Utc>,
) -> ApiResult<ScanRun> {
    let inputs = read_inputs(state, instance_id, attachment_id, now).await?;
    let prepared = Arc::new(prepare(&inputs)?);
    let shard_size = state.config.scan_shard_size.max(1);
    let shards = cut_into_shards(state, instance_id, &prepared.plan, shard_size).await?;
    let run = ScanRun {
        instance_id: instance_id.to_owned(),
        report_id: new_id(),
        attachment_id: attachment_id.to_owned(),
        scan_type: scan_type.to_owned(),
        started_at: now,
        status: "running".into(),
        shards: u32::try_from(shards.len()).unwrap_or(u32::MAX),
        input: serde_json::to_value(&inputs)
            .map_err(|error| ApiError::internal(format!("scan inputs: {error}")))?,
        reason: None,
    };
    state.store.create_scan_run(&run, &shards).await?;
    keep_plan(
        state,
        (run.instance_id.clone(), run.report_id.clone()),
        prepared,
    );
    Ok(run)
}

/// Evaluates the run's pending shards (waiting for those other processes hold) and assembles
/// the report; returns the SCC `Scan` answer.
async fn drive_run(state: &AppState, run: &ScanRun) -> ApiResult<Value> {
    loop {
        let pending = state
            .store
            .pending_shards_of_run(&run.instance_id, &run.report_id)
            .await?;
        if pending.is_empty() {
            break;
        }
        let mut evaluated = false;
        for shard in pending {
            let shard = ShardRef {
                instance_id: run.instance_id.clone(),
                report_id: run.report_id.clone(),
                shard,
            };
            evaluated |= evaluate_shard(state, &shard, Some(run)).await?;
        }
        if !evaluated {
            // Every pending shard is in another worker's hands; if that worker dies, its lock
            // goes and the shard is ours at the next look.
            tokio::time::sleep(WAIT_FOR_OTHERS).await;
        }
    }
    assemble(state, run).await
}

/// Claims a shard for this process: `None` when another task or process has it.
async fn claim_shard<'s>(
    state: &'s AppState,
    shard: &ShardRef,
) -> ApiResult<Option<ShardGuard<'s>>> {
    if !locked(&state.scans.in_hand).insert(shard.clone()) {
        return Ok(None);
    }
    let name = format!("{}/{}/{}", shard.instance_id, shard.report_id, shard.shard);
    match state.cluster.claim(LockPurpose::ScanShard, &name).await {
        Ok(Some(claim)) => Ok(Some(ShardGuard {
            runtime: &state.scans,
            shard: shard.clone(),
            _claim: claim,
        })),
        outcome => {
            locked(&state.scans.in_hand).remove(shard);
            outcome.map(|_| None)
        }
    }
}

/// Evaluates one shard if no one else is: true when this call did the work. `run` is the
/// shard's run when the caller has it.
async fn evaluate_shard(
    state: &AppState,
    shard: &ShardRef,
    run: Option<&ScanRun>,
) -> ApiResult<bool> {
    let Some(_guard) = claim_shard(state, shard).await? else {
        return Ok(false);
    };
    let Some((range, done)) = state
        .store
        .get_scan_shard(&shard.instance_id, &shard.report_id, shard.shard)
        .await?
    else {
        return Ok(false);
    };
    if done {
        return Ok(false);
    }
    let prepared = plan_of(state, &shard.instance_id, &shard.report_id, run).await?;
    let page_size = state.config.scan_shard_size.max(1);
    let mut filter = ResourceFilter {
        service_name: Some(range.service_name),
        resource_kind: Some(range.resource_kind),
        after: range.after_id,
        until: range.until_id,
        limit: Some(page_size),
        ..ResourceFilter::default()
    };
    let mut builder_input = Vec::new();
    // Usually one page: a shard holds `scan_shard_size` resources unless more were pushed into
    // its range since it was cut.
    loop {
        let page = state
            .store
            .list_resources(&shard.instance_id, &filter)
            .await?;
        let full = page.len() >= page_size as usize;
        filter.after = page.last().map(|resource| resource.id.clone());
        builder_input.extend(
            page.into_iter()
                .filter(|resource| prepared.selector.matches(resource)),
        );
        if !full {
            break;
        }
    }
    // Evaluation is CPU work (parallel inside the engine): off the async threads.
    let (rows, partial) = tokio::task::spawn_blocking(move || {
        let evaluations = prepared.plan.evaluate_chunk(&builder_input, prepared.now);
        let rows: Vec<EvaluationRow> = evaluations
            .iter()
            .map(|evaluation| EvaluationRow {
                rule_id: evaluation.rule_id.clone(),
                resource_id: evaluation.resource_id.clone(),
                status: evaluation.status.as_str().to_owned(),
                body: serde_json::to_value(evaluation).unwrap_or(Value::Null),
            })
            .collect();
        let mut builder = RollupBuilder::new(&prepared.plan);
        builder.add_chunk(&builder_input, &evaluations);
        (rows, builder.into_partial())
    })
    .await
    .map_err(|error| ApiError::internal(format!("scan shard task failed: {error}")))?;
    let partial = pack_partial(&partial)?;
    let completed = state
        .store
        .complete_scan_shard(
            &shard.instance_id,
            &shard.report_id,
            shard.shard,
            &rows,
            &partial,
        )
        .await?;
    if completed {
        state.scans.shards_evaluated.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("palisade_scan_shards_evaluated_total").increment(1);
    }
    Ok(completed)
}

/// A shard's roll-up counters as stored: JSON, deflated, in base64. The counters repeat every
/// resource's view (id, name, account, tags: about 500 bytes each); as plain JSON they added
/// about 8 % to the bytes a stored scan writes (BENCHMARKS.md), deflated a fraction of that.
fn pack_partial(partial: &PartialRollup) -> ApiResult<Value> {
    use base64::Engine as _;
    use std::io::Write as _;
    let failed =
        |error: &dyn std::fmt::Display| ApiError::internal(format!("shard roll-up: {error}"));
    let json = serde_json::to_vec(partial).map_err(|error| failed(&error))?;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&json).map_err(|error| failed(&error))?;
    let deflated = encoder.finish().map_err(|error| failed(&error))?;
    Ok(json!({ "deflated": base64::engine::general_purpose::STANDARD.encode(deflated) }))
}

/// Reads stored counters back (plain JSON too, as written before they were deflated).
fn unpack_partial(stored: Value) -> ApiResult<PartialRollup> {
    use base64::Engine as _;
    use std::io::Read as _;
    let Some(text) = stored.get("deflated").and_then(Value::as_str) else {
        return parse(stored, "shard roll-up");
    };
    let failed = |error: &dyn std::fmt::Display| {
        ApiError::internal(format!("stored shard roll-up does not read: {error}"))
    };
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| failed(&error))?;
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .read_to_end(&mut json)
        .map_err(|error| failed(&error))?;
    serde_json::from_slice(&json).map_err(|error| failed(&error))
}

/// Merges the shards' counters into the report, stores it with the run's end, then records the
/// threshold finding and the attachment's last scan. Returns the SCC `Scan` answer.
async fn assemble(state: &AppState, run: &ScanRun) -> ApiResult<Value> {
    let inputs: ScanInputs = parse(run.input.clone(), "scan run input")?;
    let prepared = plan_of(state, &run.instance_id, &run.report_id, Some(run)).await?;
    let partials = state
        .store
        .scan_shard_partials(&run.instance_id, &run.report_id)
        .await?;
    let mut builder = RollupBuilder::new(&prepared.plan);
    for (shard, partial) in partials {
        let Some(partial) = partial else {
            return Err(ApiError::internal(format!(
                "scan {} assembled with shard {shard} pending",
                run.report_id
            )));
        };
        builder.add_partial(&unpack_partial(partial)?);
    }
    let rollup = builder.finish();
    let (instance_id, attachment_id, report_id) =
        (&run.instance_id, &run.attachment_id, &run.report_id);
    let attachment = &inputs.attachment;
    let profile = &inputs.profile;
    let time = timestamp(inputs.now);
    let report = json!({
        "id": report_id,
        "type": run.scan_type,
        "group_id": format!("{}:{}", profile["id"].as_str().unwrap_or_default(), attachment_id),
        "created_on": time,
        "scan_time": time,
        "cos_object": "",
        "instance_id": instance_id,
        "account": {"id": attachment["account_id"], "name": "", "type": "account"},
        "profile": {"id": profile["id"], "name": profile["profile_name"], "version": profile["profile_version"]},
        "scope": {"id": attachment["scope"][0]["id"], "name": "", "href": ""},
        "scopes": [],
        "attachment": {"id": attachment_id, "name": attachment["name"], "description": attachment["description"], "schedule": attachment["schedule"], "scope": attachment["scope"]},
        "controls_summary": rollup.controls_summary,
        "evaluations_summary": rollup.evaluations_summary,
        "tags": {"user": [], "access": [], "service": []},
        "additional_details": {"id": attachment_id, "created_by": "palisade", "shards": run.shards},
        "rollup": rollup,
    });
    let finished = state
        .store
        .finish_scan_run(
            instance_id,
            &StoredReport {
                id: report_id.clone(),
                attachment_id: attachment_id.clone(),
                profile_id: profile["id"].as_str().unwrap_or_default().to_owned(),
                scan_type: run.scan_type.clone(),
                created_on: inputs.now,
                body: report,
            },
        )
        .await?;
    let schedule = attachment["schedule"].as_str().unwrap_or_default();
    let next =
        crate::routes::v3::attachments::next_scan_time(schedule, Some(inputs.now), inputs.now)
            .map_or(Value::Null, |next| json!(timestamp(next)));
    if finished {
        let notifications: palisade_posture::model::AttachmentNotifications = parse(
            attachment["notifications"].clone(),
            "attachment notifications",
        )
        .unwrap_or_default();
        record_threshold_breach(
            state,
            instance_id,
            attachment["account_id"].as_str(),
            (
                attachment_id,
                attachment["name"].as_str().unwrap_or_default(),
                &notifications,
            ),
            report_id,
            &rollup,
            inputs.now,
        )
        .await?;
        record_last_scan(state, run, &time, &next).await?;
    }
    Ok(json!({
        "id": new_id(),
        "account_id": attachment["account_id"],
        "attachment_id": attachment_id,
        "report_id": report_id,
        "status": "completed",
        "last_scan_time": time,
        "next_scan_time": next,
        "scan_type": run.scan_type,
        "occurence": 1,
    }))
}

/// Records the scan on the attachment as it is now (`last_scan`, `next_scan_time`); an
/// attachment deleted meanwhile is left deleted.
async fn record_last_scan(
    state: &AppState,
    run: &ScanRun,
    time: &str,
    next: &Value,
) -> ApiResult<()> {
    let Some(document) = state
        .store
        .get_document(&run.instance_id, ATTACHMENT.store_kind, &run.attachment_id)
        .await?
    else {
        return Ok(());
    };
    let mut body = document.body;
    body["last_scan"] = json!({"id": run.report_id, "status": "completed", "time": time});
    body["next_scan_time"] = next.clone();
    documents::replace(
        state,
        &run.instance_id,
        ATTACHMENT,
        &run.attachment_id,
        &body,
        None,
    )
    .await?;
    Ok(())
}

/// Starts the scan worker loop: evaluates other processes' pending shards when the store is
/// shared, and adopts runs whose coordinator died (or, embedded, that a crash interrupted).
/// Stops when `shutdown` turns true.
pub fn spawn_worker(
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pause = if state.cluster.shared() {
            SHARED_SWEEP
        } else {
            EMBEDDED_SWEEP
        };
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(error) = sweep(&state).await {
                tracing::warn!(error = %error, "scan worker pass failed");
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = tokio::time::sleep(pause) => {}
            }
        }
    })
}

/// One pass of the worker loop: helps with pending shards when the store is shared, then
/// adopts running runs nobody coordinates. Returns how many runs it finished.
pub async fn sweep(state: &AppState) -> ApiResult<usize> {
    if state.cluster.shared() {
        help_with_shards(state).await?;
    }
    adopt_orphans(state).await
}

/// Evaluates the pending shards of running scans that no one else holds; returns how many this
/// call evaluated.
pub async fn help_with_shards(state: &AppState) -> ApiResult<usize> {
    let mut evaluated = 0;
    for shard in state.store.pending_scan_shards(64).await? {
        match evaluate_shard(state, &shard, None).await {
            Ok(true) => evaluated += 1,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(report = %shard.report_id, shard = shard.shard, error = %error, "scan shard failed");
            }
        }
    }
    Ok(evaluated)
}

/// Finishes the running scans whose coordinator is gone (died, or this process restarted);
/// returns how many it finished.
pub async fn adopt_orphans(state: &AppState) -> ApiResult<usize> {
    let mut finished = 0;
    for run in state.store.running_scan_runs(16).await? {
        if adopt(state, &run).await? {
            finished += 1;
        }
    }
    Ok(finished)
}

/// Finishes a run whose coordinator is gone; false when it has one.
async fn adopt(state: &AppState, run: &ScanRun) -> ApiResult<bool> {
    let Some(_running) = RunningGuard::take(&state.scans, &run.instance_id, &run.attachment_id)
    else {
        return Ok(false);
    };
    let Ok(_claim) = state
        .cluster
        .lock_scan(&run.instance_id, &run.attachment_id)
        .await
    else {
        return Ok(false);
    };
    // The coordinator may have finished between the listing and the claim.
    let Some(run) = state
        .store
        .get_scan_run(&run.instance_id, &run.report_id)
        .await?
        .filter(|run| run.status == "running")
    else {
        return Ok(false);
    };
    tracing::info!(instance = %run.instance_id, report = %run.report_id, "adopting a scan whose coordinator is gone");
    let outcome = match plan_of(state, &run.instance_id, &run.report_id, Some(&run)).await {
        Ok(_) => drive_run(state, &run).await.map(|_| true),
        Err(error) => {
            // Its inputs no longer plan (this binary's built-in content changed?): give it up
            // rather than retry forever.
            state
                .store
                .abandon_scan_run(&run.instance_id, &run.report_id, &error.to_string())
                .await?;
            tracing::warn!(report = %run.report_id, error = %error, "scan run abandoned");
            Ok(false)
        }
    };
    forget_plan(state, &run.instance_id, &run.report_id);
    outcome
}

/// The note of threshold-breach findings.
const THRESHOLD_NOTE: &str = "attachment-threshold-breached";

/// Raises a `posture` finding when a scan breaches the attachment's notification thresholds
/// (more than `threshold_limit` controls not compliant, or a watched control failing). One
/// finding per attachment: a breach in a later scan counts again and reopens it if resolved.
async fn record_threshold_breach(
    state: &AppState,
    instance_id: &str,
    account_id: Option<&str>,
    (attachment_id, attachment_name, notifications): (
        &str,
        &str,
        &palisade_posture::model::AttachmentNotifications,
    ),
    report_id: &str,
    rollup: &palisade_posture::Rollup,
    now: chrono::DateTime<Utc>,
) -> ApiResult<()> {
    use crate::service::findings::model::{
        ApiNote, ApiOccurrence, Context, Finding, FindingType, Reporter,
    };
    use crate::service::findings::{
        POSTURE_PROVIDER, SourceOccurrence, ensure_note, record_occurrences,
    };
    let Some(breach) = palisade_posture::notify::check_thresholds(notifications, rollup) else {
        return Ok(());
    };
    let account = crate::service::insights::account_of(account_id);
    let note = ApiNote {
        short_description: "Compliance threshold breached".into(),
        long_description: "A scan found more non-compliant controls than the attachment's \
                           threshold allows, or a control the attachment watches failed."
            .into(),
        kind: "FINDING".into(),
        related_url: None,
        create_time: None,
        update_time: None,
        id: THRESHOLD_NOTE.into(),
        shared: None,
        reported_by: Reporter {
            id: POSTURE_PROVIDER.into(),
            title: "Palisade posture management".into(),
            url: None,
        },
        finding: Some(FindingType {
            severity: "HIGH".into(),
            next_steps: None,
        }),
        kpi: None,
        card: None,
        section: None,
    };
    ensure_note(
        &state.store,
        instance_id,
        &account,
        POSTURE_PROVIDER,
        &note,
        now,
    )
    .await?;
    let summary = breach.summary();
    let occurrence = SourceOccurrence {
        account_id: account,
        note_id: THRESHOLD_NOTE.into(),
        fingerprint: attachment_id.to_owned(),
        body: ApiOccurrence {
            resource_url: Some(format!("/instances/{instance_id}/v3/reports/{report_id}")),
            note_name: String::new(),
            kind: "FINDING".into(),
            short_description: Some(format!(
                "Compliance threshold breached on attachment {}",
                attachment_name
            )),
            long_description: Some(summary.clone()),
            remediation: Some(
                "Open the report, fix the failing controls' resources, and scan again.".into(),
            ),
            create_time: None,
            update_time: None,
            id: String::new(),
            context: Some(Context {
                resource_id: Some(attachment_id.to_owned()),
                resource_name: Some(attachment_name.to_owned()),
                resource_type: Some("profile_attachment".into()),
                ..Context::default()
            }),
            finding: Some(Finding {
                severity: Some("HIGH".into()),
                certainty: Some("HIGH".into()),
                next_steps: None,
                network_connection: None,
                data_transferred: None,
            }),
            kpi: None,
            reference_data: Some(json!({
                "attachment_id": attachment_id,
                "report_id": report_id,
                "breach": breach,
                "summary": summary,
            })),
        },
    };
    let report = record_occurrences(
        &state.store,
        instance_id,
        POSTURE_PROVIDER,
        vec![occurrence],
        now,
    )
    .await?;
    if let Some((_, problems)) = report.rejected.first() {
        return Err(ApiError::internal(format!(
            "threshold finding rejected: {problems:?}"
        )));
    }
    Ok(())
}

/// Attestations of manual assessments, stored per attachment.
pub const ATTESTATION: documents::Kind = documents::Kind {
    store_kind: "attestation",
    label: "attestation",
};

/// The attestation document id of an attachment's assessment (and control, when it is about one).
pub fn attestation_id(
    attachment_id: &str,
    assessment_id: &str,
    control_id: Option<&str>,
) -> String {
    match control_id {
        Some(control_id) => format!("{attachment_id}/{assessment_id}/{control_id}"),
        None => format!("{attachment_id}/{assessment_id}"),
    }
}

/// The attestation documents of an attachment (expired ones included: the engine ignores them).
async fn attestation_bodies(
    state: &AppState,
    instance_id: &str,
    attachment_id: &str,
) -> ApiResult<Vec<Value>> {
    let prefix = format!("{attachment_id}/");
    Ok(documents::all(state, instance_id, ATTESTATION)
        .await?
        .into_iter()
        .filter(|document| document.id.starts_with(&prefix))
        .map(|document| document.body)
        .collect())
}

/// Every attestation of an attachment (expired ones included: the engine ignores them).
pub async fn attestations_of(
    state: &AppState,
    instance_id: &str,
    attachment_id: &str,
) -> ApiResult<Vec<palisade_posture::Attestation>> {
    attestation_bodies(state, instance_id, attachment_id)
        .await?
        .into_iter()
        .map(|body| parse(body, "attestation"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_counters_are_stored_deflated_and_read_back() {
        let partial: PartialRollup = serde_json::from_value(json!({
            "rules": [["rule-1", {"pass": 3, "failure": 1, "error": 0, "skipped": 0}]],
            "resources": [],
            "unknown_rule_evaluations": 0,
        }))
        .expect("a partial");
        let stored = pack_partial(&partial).expect("pack");
        assert!(stored["deflated"].is_string(), "{stored}");
        assert_eq!(unpack_partial(stored).expect("unpack"), partial);
        // Counters stored as plain JSON (by an earlier build) still read.
        let plain = serde_json::to_value(&partial).expect("plain");
        assert_eq!(unpack_partial(plain).expect("plain"), partial);
        // Damaged counters are an error, not a panic.
        assert!(unpack_partial(json!({"deflated": "not base64!"})).is_err());
        assert!(unpack_partial(json!({"deflated": "AAAA"})).is_err());
    }
}
