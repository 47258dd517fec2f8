//! [`AppState`]: what every handler can reach, and [`ServerConfig`], the process knobs.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::PrometheusHandle;
use palisade_model::error::ErrorCode;
use palisade_store::Store;

use crate::auth::KeyVerifier;
use crate::error::ApiError;

/// Process knobs of the server; the CLI fills them from flags.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body, in bytes, on ordinary routes.
    pub body_limit_bytes: usize,
    /// Longest time a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Sustained requests per second allowed to one key.
    pub rate_limit_per_second: NonZeroU32,
    /// Requests one key may send in a burst above the sustained rate.
    pub rate_limit_burst: NonZeroU32,
    /// Lets notification endpoints use plain `http://` and loopback or private addresses. A
    /// development and test setting: in production a webhook must not reach internal services.
    pub allow_insecure_webhooks: bool,
    /// Pause between two rounds of the notification worker.
    pub notification_poll_interval: Duration,
    /// Wait before the first retry of a failed notification; doubles per attempt (capped at 1 h).
    pub notification_retry_base: Duration,
    /// Attempts before a notification is given up.
    pub notification_max_attempts: u32,
    /// The SMTP relay of e-mail channels; without one, e-mail channels are refused.
    pub smtp: Option<crate::service::notifications::SmtpSettings>,
    /// The key that seals credentials at rest; without one, credentials cannot be stored.
    pub master_key: Option<Arc<crate::service::credentials::MasterKey>>,
    /// Largest body of an ingest route (audit events, flow logs, intel feeds, rule packs).
    pub ingest_body_limit_bytes: usize,
    /// How often the scheduler looks for due scans (and, sharing a store, whether it may).
    pub scheduler_tick: Duration,
    /// Resources per scan shard: the unit of a scan any process may evaluate, and the most
    /// resources (with their evaluations) a worker holds in memory at once.
    pub scan_shard_size: u32,
    /// Quiet time (wall clock) after which a flow stream's open windows are closed and reported.
    pub network_idle_flush: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 10 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            rate_limit_per_second: NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN),
            rate_limit_burst: NonZeroU32::new(400).unwrap_or(NonZeroU32::MIN),
            allow_insecure_webhooks: false,
            notification_poll_interval: Duration::from_secs(2),
            notification_retry_base: Duration::from_secs(30),
            notification_max_attempts: 8,
            smtp: None,
            ingest_body_limit_bytes: 256 * 1024 * 1024,
            master_key: None,
            scheduler_tick: crate::service::scheduler::TICK,
            scan_shard_size: crate::service::scans::SHARD_SIZE,
            network_idle_flush: crate::service::insights::network::IDLE_FLUSH,
        }
    }
}

/// Shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<ServerConfig>,
    pub verifier: Arc<KeyVerifier>,
    pub limiter: Arc<DefaultKeyedRateLimiter<String>>,
    pub metrics: PrometheusHandle,
    /// Compiled detectors, network windows and the ingest worker's wake-up signal.
    pub insights: Arc<crate::service::insights::InsightsRuntime>,
    /// Compiled configuration governance policies and the decision log writer.
    pub governance: Arc<crate::service::governance::Governance>,
    /// Where accepted ingest batches go: the embedded journal, or NATS JetStream when scaled.
    pub bus: Arc<dyn palisade_bus::IngestBus>,
    /// Locks and partitions shared with the other processes of the same store.
    pub cluster: Arc<crate::service::cluster::Cluster>,
    /// Scans running here, shards in hand and their plans.
    pub scans: Arc<crate::service::scans::ScanRuntime>,
}

impl AppState {
    /// Builds the state over a store.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        let quota =
            Quota::per_second(config.rate_limit_per_second).allow_burst(config.rate_limit_burst);
        let bus: Arc<dyn palisade_bus::IngestBus> =
            Arc::new(palisade_bus::journal::JournalBus::new(
                store.clone(),
                &[
                    crate::service::insights::ACTIVITY,
                    crate::service::insights::NETWORK,
                ],
            ));
        Self {
            store,
            bus,
            cluster: Arc::default(),
            scans: Arc::default(),
            limiter: Arc::new(RateLimiter::keyed(quota)),
            config: Arc::new(config),
            verifier: Arc::new(KeyVerifier::default()),
            metrics: crate::middleware::metrics_handle(),
            insights: Arc::default(),
            governance: Arc::default(),
        }
    }

    /// Scaled mode and shared stores: ingest goes through `bus` (unless it is the embedded
    /// journal) and work is divided with the other processes through `locks` (PostgreSQL).
    pub fn with_cluster(
        mut self,
        bus: Option<Arc<dyn palisade_bus::IngestBus>>,
        locks: Option<palisade_store::locks::ClusterLocks>,
    ) -> Self {
        let scaled = bus.is_some();
        if let Some(bus) = bus {
            self.bus = bus;
        }
        self.cluster = Arc::new(crate::service::cluster::Cluster::new(locks, scaled));
        self
    }

    /// Spends one request of a key's rate; `RateLimited` with `Retry-After` when it has none left.
    pub fn check_rate(&self, key_id: &str) -> Result<(), ApiError> {
        match self.limiter.check_key(&key_id.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let mut error = ApiError::new(
                    ErrorCode::RateLimited,
                    "too many requests with this key; slow down",
                );
                error.retry_after = Some(wait.as_secs().max(1));
                Err(error)
            }
        }
    }
}
