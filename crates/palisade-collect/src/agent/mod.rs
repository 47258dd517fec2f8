//! The collector agent (`palisade collector run`): registers once, then heartbeats, pulls its
//! jobs, runs them with this crate's collectors, and pushes the resources in batches.
//!
//! Delivery is at-least-once on the agent's side and exactly-once on the server's:
//!
//! 1. a job's output is cut into batches, each with a new batch id, and written to the
//!    [`spool`] on disk before any push;
//! 2. the oldest spooled batch is pushed with its id; the server records the id in the
//!    transaction that writes the resources and answers a resend from that record;
//! 3. the batch file is deleted only after the server's answer. A push that fails for a
//!    transient reason (no connection, timeout, 408/429/5xx) is retried with exponential
//!    backoff (doubling up to [`AgentOptions::max_backoff`]); the batches behind it wait.
//!
//! So a crash or restart of either side loses nothing and applies nothing twice. While the
//! server is away the agent keeps running the jobs it was last given (credentials stay in
//! memory only) and spools their batches.
//!
//! The identity (`agent.json`: collector id, instance, key) is written with mode 0600 in the
//! state directory at registration, so a restarted agent does not need a new code. Jobs run one
//! at a time on their own task, so heartbeats and pushes go on during a long collection.

pub mod jobs;
pub mod spool;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use palisade_client::{Client, ClientError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use jobs::Job;
use spool::{Spool, SpooledBatch};

/// Settings of [`run`].
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The server's base URL.
    pub server: String,
    /// The one-time code; only needed when the state directory holds no identity yet.
    pub registration_code: Option<String>,
    /// Where the identity and the spool live.
    pub state_dir: PathBuf,
    /// Pause between heartbeats (and job list refreshes).
    pub heartbeat_interval: Duration,
    /// Longest pause between two push attempts while the server is away.
    pub max_backoff: Duration,
    /// Resources per batch.
    pub batch_size: usize,
    /// The agent's version, reported in heartbeats.
    pub version: String,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            server: String::new(),
            registration_code: None,
            state_dir: PathBuf::from("palisade-collector"),
            heartbeat_interval: Duration::from_secs(30),
            max_backoff: Duration::from_secs(60),
            batch_size: 500,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "{0} holds no collector identity: pass --registration-code with the code `POST /instances/{{id}}/v1/collectors` answered"
    )]
    NotRegistered(String),
    #[error("registration refused: {0}")]
    RegistrationRefused(ClientError),
    #[error(
        "the server refuses this collector's key ({0}): the collector was deleted or its key revoked; create a new collector and register again with a new state directory"
    )]
    Revoked(ClientError),
    #[error("state directory {path}: {error}")]
    State { path: String, error: std::io::Error },
    #[error("{0}")]
    Client(#[from] ClientError),
}

/// What the agent keeps about itself (`agent.json`, mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub collector_id: String,
    pub instance_id: String,
    pub name: String,
    pub key_id: String,
    pub api_key: String,
}

impl Identity {
    fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("agent.json")
    }

    /// Reads the identity, if the agent registered before.
    pub fn load(state_dir: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(Self::path(state_dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Writes the identity with mode 0600 (created so, never readable by others even briefly).
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = Self::path(state_dir);
        let temporary = state_dir.join("agent.json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        serde_json::to_writer_pretty(&mut file, self)?;
        file.flush()?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(state_dir)?.sync_all()
    }
}

fn state_error(path: &Path) -> impl Fn(std::io::Error) -> AgentError + '_ {
    move |error| AgentError::State {
        path: path.display().to_string(),
        error,
    }
}

/// Whether an error means this collector's key is no longer accepted.
fn revoked(error: &ClientError) -> bool {
    matches!(error.status(), Some(401))
}

/// The host name reported in heartbeats.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// Returns the identity, registering with the code when there is none yet. A server that is
/// away is waited for (with backoff) until `stop` says to give up.
async fn identity(
    options: &AgentOptions,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Option<Identity>, AgentError> {
    let state_dir = &options.state_dir;
    if let Some(identity) = Identity::load(state_dir).map_err(state_error(state_dir))? {
        if options.registration_code.is_some() {
            tracing::info!(
                collector_id = %identity.collector_id,
                "already registered; the registration code is not needed again and was not used"
            );
        }
        return Ok(Some(identity));
    }
    let code = options
        .registration_code
        .as_deref()
        .ok_or_else(|| AgentError::NotRegistered(state_dir.display().to_string()))?;
    let client = Client::with_timeout(&options.server, "", Duration::from_secs(60))?;
    let mut backoff = Backoff::new(options.max_backoff);
    loop {
        match client.register_collector(code).await {
            Ok(registration) => {
                let identity = Identity {
                    collector_id: registration.collector_id,
                    instance_id: registration.instance_id,
                    name: registration.name,
                    key_id: registration.key_id,
                    api_key: registration.api_key,
                };
                identity.save(state_dir).map_err(state_error(state_dir))?;
                tracing::info!(collector_id = %identity.collector_id, name = %identity.name, "registered");
                return Ok(Some(identity));
            }
            Err(error) if error.is_transient() => {
                let wait = backoff.next();
                tracing::warn!(%error, retry_in = ?wait, "cannot reach the server to register; retrying");
                if sleep_or_stop(wait, stop).await {
                    return Ok(None);
                }
            }
            Err(error) => return Err(AgentError::RegistrationRefused(error)),
        }
    }
}

/// Exponential backoff: 500 ms, doubling, capped.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);

    fn new(max: Duration) -> Self {
        Self {
            next: Self::FIRST.min(max),
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    fn reset(&mut self) {
        self.next = Self::FIRST.min(self.max);
    }
}

/// Sleeps, returning true early if the agent is told to stop.
async fn sleep_or_stop(wait: Duration, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(wait) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// A job on the agent's schedule.
struct Scheduled {
    job: Job,
    next_run: Instant,
}

/// A job running on its own task: its target and what it will report.
type Running = tokio::task::JoinHandle<Value>;

/// Runs the agent until `shutdown` completes; then it stops taking jobs, tries once more to push
/// what is spooled, and returns. Whatever is still spooled is pushed at the next start.
pub async fn run(
    options: AgentOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let (stop_sender, mut stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_sender.send(true);
    });
    std::fs::create_dir_all(&options.state_dir).map_err(state_error(&options.state_dir))?;
    let spool = Spool::open(&options.state_dir).map_err(state_error(&options.state_dir))?;
    let Some(identity) = identity(&options, &mut stop).await? else {
        return Ok(());
    };
    let client =
        Client::with_timeout(&options.server, &identity.api_key, Duration::from_secs(120))?;
    let host = host_name();
    let mut schedule: BTreeMap<String, Scheduled> = BTreeMap::new();
    let mut running: Option<Running> = None;
    let mut last_job: Option<Value> = None;
    let mut next_heartbeat = Instant::now();
    let mut next_push = Instant::now();
    let mut push_backoff = Backoff::new(options.max_backoff);
    let batch_size = options.batch_size.max(1);
    tracing::info!(collector_id = %identity.collector_id, server = %options.server, "collector agent running");

    loop {
        let now = Instant::now();
        // A finished job's result goes out with the next heartbeat.
        if running
            .as_ref()
            .is_some_and(tokio::task::JoinHandle::is_finished)
            && let Some(handle) = running.take()
        {
            match handle.await {
                Ok(result) => {
                    last_job = Some(result);
                    next_heartbeat = now;
                }
                Err(error) => tracing::error!(%error, "a job task failed"),
            }
            next_push = next_push.min(now);
        }

        if now >= next_heartbeat {
            let beat = json!({"version": options.version, "host_name": host, "last_job": last_job});
            match client
                .collector_heartbeat(&identity.instance_id, &identity.collector_id, &beat)
                .await
            {
                Ok(_) => {
                    last_job = None;
                    match client
                        .collector_jobs(&identity.instance_id, &identity.collector_id)
                        .await
                    {
                        Ok(jobs) => {
                            refresh_schedule(&mut schedule, &jobs, &options.state_dir, now);
                        }
                        Err(error) if revoked(&error) => return Err(AgentError::Revoked(error)),
                        Err(error) => {
                            tracing::warn!(%error, "cannot fetch jobs; keeping the last ones")
                        }
                    }
                }
                Err(error) if revoked(&error) => return Err(AgentError::Revoked(error)),
                Err(error) => tracing::warn!(%error, "heartbeat failed; keeping the last jobs"),
            }
            next_heartbeat = now + options.heartbeat_interval;
        }

        if running.is_none()
            && let Some(scheduled) = schedule
                .values_mut()
                .find(|scheduled| scheduled.next_run <= now)
        {
            // The next run counts from this start, so a slow job does not pile runs up.
            scheduled.next_run = now + scheduled.job.interval;
            let job = scheduled.job.clone();
            let spool = spool.clone();
            let collector_id = identity.collector_id.clone();
            running = Some(tokio::spawn(async move {
                run_job(&job, &spool, &collector_id, batch_size).await
            }));
        }

        if now >= next_push {
            match push_spooled(&client, &identity, &spool, &mut stop).await {
                Ok(()) => {
                    push_backoff.reset();
                    next_push = now + Duration::from_secs(1);
                }
                Err(PushStop::Transient(error)) => {
                    let wait = push_backoff.next();
                    tracing::warn!(%error, retry_in = ?wait, "push failed; the batch stays spooled and is retried");
                    next_push = Instant::now() + wait;
                }
                Err(PushStop::Revoked(error)) => return Err(AgentError::Revoked(error)),
                Err(PushStop::Stopped) => {}
            }
        }

        if *stop.borrow() {
            break;
        }
        let mut wake = next_heartbeat.min(next_push);
        if running.is_none()
            && let Some(earliest) = schedule.values().map(|scheduled| scheduled.next_run).min()
        {
            wake = wake.min(earliest);
        }
        if running.is_some() {
            // Poll the running job often enough to report and push its batches promptly.
            wake = wake.min(Instant::now() + Duration::from_millis(200));
        }
        let wait = wake.saturating_duration_since(Instant::now());
        if sleep_or_stop(wait, &mut stop).await {
            break;
        }
    }

    // Shutting down: let a running job finish spooling, then one last push round.
    if let Some(handle) = running.take() {
        let _ = handle.await;
    }
    let (_, mut never) = tokio::sync::watch::channel(false);
    match push_spooled(&client, &identity, &spool, &mut never).await {
        Ok(()) => tracing::info!("collector agent stopped; nothing left in the spool"),
        Err(PushStop::Transient(error)) => {
            let left = spool.pending().map(|pending| pending.len()).unwrap_or(0);
            tracing::warn!(%error, batches = left, "collector agent stopped with batches spooled; they are pushed at the next start");
        }
        Err(PushStop::Revoked(error)) => return Err(AgentError::Revoked(error)),
        Err(PushStop::Stopped) => {}
    }
    Ok(())
}

/// Replaces the schedule with the server's job list: a target whose job is unchanged keeps its
/// next run; a new or changed one runs now; a removed one is dropped.
fn refresh_schedule(
    schedule: &mut BTreeMap<String, Scheduled>,
    jobs: &[Value],
    state_dir: &Path,
    now: Instant,
) {
    let mut fresh = BTreeMap::new();
    for value in jobs {
        match Job::from_json(value, state_dir) {
            Ok(job) => {
                let next_run = schedule
                    .get(&job.target_id)
                    .filter(|scheduled| scheduled.job == job)
                    .map_or(now, |scheduled| scheduled.next_run);
                fresh.insert(job.target_id.clone(), Scheduled { job, next_run });
            }
            Err(error) => tracing::error!(%error, "cannot run a job"),
        }
    }
    *schedule = fresh;
}

/// Runs one job and spools its output in batches; returns the job result for the heartbeat.
async fn run_job(job: &Job, spool: &Spool, collector_id: &str, batch_size: usize) -> Value {
    let started_at = Utc::now();
    tracing::info!(target_id = %job.target_id, kind = job.kind_name(), "job started");
    let output = job.run(started_at).await;
    let mut batches = 0;
    let mut spool_error = None;
    for chunk in output.resources.chunks(batch_size) {
        let batch = SpooledBatch {
            batch_id: Spool::new_batch_id(collector_id),
            target_id: job.target_id.clone(),
            resources: chunk.to_vec(),
        };
        let spool = spool.clone();
        let written = {
            let batch = batch.clone();
            tokio::task::spawn_blocking(move || spool.write(&batch))
                .await
                .map_err(std::io::Error::other)
                .and_then(|written| written)
        };
        match written {
            Ok(()) => {
                batches += 1;
                tracing::info!(batch_id = %batch.batch_id, resources = chunk.len(), target_id = %job.target_id, "spooled batch");
            }
            Err(error) => {
                tracing::error!(%error, "cannot spool a batch; this run's remaining resources are lost");
                spool_error = Some(error.to_string());
                break;
            }
        }
    }
    for error in &output.errors {
        tracing::warn!(target_id = %job.target_id, %error, "collection error");
    }
    tracing::info!(target_id = %job.target_id, resources = output.resources.len(), errors = output.errors.len(), batches, "job finished");
    jobs::job_result(job, started_at, &output, batches, spool_error.as_deref())
}

/// Why a push round stopped before the spool was empty.
enum PushStop {
    Transient(ClientError),
    Revoked(ClientError),
    Stopped,
}

/// Pushes spooled batches oldest first until the spool is empty or a push fails.
async fn push_spooled(
    client: &Client,
    identity: &Identity,
    spool: &Spool,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), PushStop> {
    let pending = match spool.pending() {
        Ok(pending) => pending,
        Err(error) => {
            tracing::error!(%error, "cannot list the spool");
            return Ok(());
        }
    };
    for batch_id in pending {
        if *stop.borrow() {
            return Err(PushStop::Stopped);
        }
        let batch = match spool.read(&batch_id) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%batch_id, %error, "unreadable spooled batch; moving it aside");
                let _ = spool.reject(&batch_id);
                continue;
            }
        };
        match client
            .push_inventory_batch(&identity.instance_id, &batch.batch_id, &batch.resources)
            .await
        {
            Ok(outcome) => {
                tracing::info!(
                    batch_id = %batch.batch_id,
                    stored = outcome.stored,
                    duplicates = outcome.duplicates,
                    rejected = outcome.rejected.len(),
                    replayed = outcome.replayed,
                    "batch acknowledged"
                );
                for rejected in &outcome.rejected {
                    tracing::warn!(batch_id = %batch.batch_id, index = rejected.index, "the server refused a record (it is in the quarantine)");
                }
                if let Err(error) = spool.remove(&batch.batch_id) {
                    tracing::error!(%error, batch_id = %batch.batch_id, "cannot delete an acknowledged batch; it will be resent and replayed");
                }
            }
            Err(error) if revoked(&error) => return Err(PushStop::Revoked(error)),
            Err(error) if error.is_transient() => return Err(PushStop::Transient(error)),
            Err(error) => {
                let moved = spool.reject(&batch.batch_id);
                tracing::error!(%error, batch_id = %batch.batch_id, moved_to = ?moved.ok(), "the server refused a batch for good; moved it aside");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(3));
        let waits: Vec<u128> = (0..5).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(500));
    }

    #[test]
    fn identity_is_private_and_reloads() {
        let directory = tempfile::tempdir().expect("tempdir");
        assert!(Identity::load(directory.path()).expect("load").is_none());
        let identity = Identity {
            collector_id: "c".into(),
            instance_id: "i".into(),
            name: "n".into(),
            key_id: "k".into(),
            api_key: "pal_secret".into(),
        };
        identity.save(directory.path()).expect("save");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(directory.path().join("agent.json"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = Identity::load(directory.path())
            .expect("load")
            .expect("some");
        assert_eq!(loaded.api_key, "pal_secret");
    }

    #[test]
    fn unchanged_jobs_keep_their_schedule() {
        let start = Instant::now();
        let mut schedule = BTreeMap::new();
        let jobs = [json!({"id": "a", "kind": "host", "interval_seconds": 60})];
        refresh_schedule(&mut schedule, &jobs, Path::new("/s"), start);
        assert_eq!(schedule["a"].next_run, start);
        schedule.get_mut("a").expect("a").next_run = start + Duration::from_secs(60);
        let later = start + Duration::from_secs(5);
        refresh_schedule(&mut schedule, &jobs, Path::new("/s"), later);
        assert_eq!(schedule["a"].next_run, start + Duration::from_secs(60));
        let changed = [json!({"id": "a", "kind": "host", "interval_seconds": 30})];
        refresh_schedule(&mut schedule, &changed, Path::new("/s"), later);
        assert_eq!(schedule["a"].next_run, later, "a changed job runs now");
        refresh_schedule(&mut schedule, &[], Path::new("/s"), later);
        assert!(schedule.is_empty());
    }
}
