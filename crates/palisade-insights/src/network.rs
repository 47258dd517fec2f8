//! Network insights: threat intelligence and detectors over flow records.
//!
//! Five detectors read normalised [`FlowRecord`]s (from `palisade-logs`), each windowed on flow
//! time (not wall time, so replaying old logs gives the same answer as live ones):
//!
//! | detector | finding types | what it looks for (defaults) |
//! |---|---|---|
//! | threat intel ([`ThreatIntelConfig`]) | `xforce-…` | traffic with an address of a loaded feed |
//! | port scan ([`PortScanConfig`]) | `port_scan_vertical`, `port_scan_horizontal`, `port_scan_distributed` | ≥ 20 ports on one target, ≥ 20 targets on one port, ≥ 10 sources on ≥ 10 ports of one target, in 5 min, counting probe-like flows (rejected, or ≤ 3 packets) |
//! | brute force ([`BruteForceConfig`]) | `brute_force` | ≥ 20 short connections from one outside source to one remote-access or database port of one target in 5 min |
//! | exfiltration ([`ExfiltrationConfig`]) | `exfiltration` | ≥ 512 MiB uploaded by an internal host to one external peer in 1 h, and ≥ 10 × that pair's mean of earlier hours |
//! | beaconing ([`BeaconingConfig`]) | `beaconing` | ≥ 8 new connections from an internal host to one external peer and port in 3 h, ≥ 80 % of the gaps within 10 % of the median gap |
//!
//! # Shape: pure, state in and out
//! [`NetworkDetectors`] holds the validated configuration and is immutable; everything that
//! changes lives in a [`NetworkDetectorState`] the caller owns and passes in, together with the
//! [`ThreatIntel`] snapshot to use. The engine does no I/O and reads no clock: a server keeps one
//! state per instance (or per partition), feeds it batches with [`NetworkDetectors::process_batch`],
//! tells it that flow time has moved on with [`NetworkDetectors::close_windows_until`], and swaps
//! feeds through [`SharedThreatIntel`] between batches, and saves the state with each batch
//! ([`NetworkDetectors::save_state`] / [`NetworkDetectors::restore_state`]: a compact, versioned
//! text bounded, like the state, by the active pairs); the offline CLI streams a directory
//! through [`ParallelScan`].
//!
//! # Windows, lateness, memory
//! Each detector counts per key (a pair of addresses, a target, …) in tumbling windows. A window
//! closes, and its findings come out, once the newest flow start seen has passed the window's end
//! by `allowed_lateness_seconds` (flow logs arrive out of order by up to their aggregation interval
//! and delivery delay). A flow whose window could already close is late: counted per detector and
//! dropped. Closing drops the window's state (its emptied maps are reused by the next window), so
//! memory is bounded by the keys active in the open windows, plus the exfiltration baselines of
//! pairs seen within their retention, not by the size of the input. Every distinct-value set is
//! capped (`max_tracked_values`) and every key keeps at most `evidence_flows` evidence flows, kept
//! as [`CompactFlow`]s (no text) in an arena of their window. The long windows' maps do not fit in
//! the caches, so their entries are kept small: IPv4 keys packed into one word, evidence out of
//! the entries (`compact` explains the layout).
//!
//! # Hot path and both cores
//! A flow is looked at once ([`NetworkDetectors::process_compact`] takes the allocation-free
//! [`CompactFlow`] the AWS decoder produces; [`NetworkDetectors::process`] converts a full record):
//! whether each address is internal, whether it is a reply, and which intel entry lists each
//! address are worked out before any detector runs. [`ParallelScan`] runs a whole stream on every
//! core, decoding in parallel pieces and detecting in shards that each own a share of the keys,
//! and gives exactly the findings (and order) of one state.
//!
//! An attack lasting several windows is reported once: the same (type, client, server, port) is
//! suppressed for `suppression_seconds` after its last detection.
//!
//! # Reply flows
//! Flow logs record both directions of a connection. A flow leaving a service port towards a
//! higher, ephemeral port is taken as a reply and folded into its connection (its bytes count as
//! the server's), so a busy server is not mistaken for a scanner of its clients' ports.
//!
//! # Example
//! ```
//! use palisade_insights::network::{NetworkDetectorConfig, NetworkDetectors, ThreatIntel};
//! use palisade_model::flow::{FlowAction, FlowRecord};
//!
//! let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).unwrap();
//! let mut state = detectors.new_state();
//! let intel = ThreatIntel::default();
//! let mut findings = Vec::new();
//! for port in 1..=100u16 {
//!     let probe = FlowRecord {
//!         start: chrono::DateTime::from_timestamp(1_700_000_100 + i64::from(port), 0).unwrap(),
//!         end: chrono::DateTime::from_timestamp(1_700_000_100 + i64::from(port), 0).unwrap(),
//!         src_addr: "198.51.100.7".parse().unwrap(),
//!         dst_addr: "10.0.0.5".parse().unwrap(),
//!         src_port: 54_321,
//!         dst_port: port,
//!         protocol: 6,
//!         packets: 1,
//!         bytes: 44,
//!         action: FlowAction::Reject,
//!         ..FlowRecord::default()
//!     };
//!     detectors.process(&mut state, &intel, &probe, &mut findings);
//! }
//! detectors.flush(&mut state, &mut findings);
//! assert_eq!(findings.len(), 1);
//! assert_eq!(findings[0].finding_type, "port_scan_vertical");
//! assert_eq!(findings[0].distinct_count, Some(100));
//! ```

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use palisade_model::flow::{CompactFlow, FlowRecord};
use serde::{Deserialize, Serialize};

mod beaconing;
mod brute_force;
mod compact;
mod exfiltration;
pub mod finding;
pub mod generator;
pub mod intel;
mod intel_traffic;
mod parallel;
mod port_scan;
mod snapshot;
mod state;

pub use beaconing::BeaconingConfig;
pub use brute_force::BruteForceConfig;
pub use exfiltration::ExfiltrationConfig;
pub use finding::{
    DataTransferred, DetectorKind, Endpoint, EvidenceFlow, NetworkConnection, NetworkFinding,
};
pub use intel::{
    FeedFormat, FeedSpec, IntelIndicator, IntelMatch, SharedThreatIntel, ThreatIntel,
    normalise_category, parse_feed,
};
pub use intel_traffic::ThreatIntelConfig;
pub use parallel::ParallelScan;
pub use port_scan::PortScanConfig;
pub use snapshot::NetworkStateError;

pub(crate) use state::SuppressionKey;
use state::{AddressClassifier, Suppression, looks_like_reply};

/// Configuration of all network detectors. Every field has a default (see each field), so `{}`
/// is a valid configuration and a user only writes what they change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkDetectorConfig {
    /// Networks that are "ours" (sources of uploads and beacons, targets of brute force).
    /// Default: the private ranges 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, the shared
    /// 100.64.0.0/10 and fc00::/7. Add your public ranges here.
    pub internal_networks: Vec<IpNet>,
    /// How long after a window's end (in flow time) its late flows are still counted. Default 900
    /// (15 min: AWS aggregates over up to 10 min and delivers in batches).
    pub allowed_lateness_seconds: u64,
    /// A detection repeating the same type, client, server and port within this many seconds of
    /// the previous one is not reported again. Default 3600.
    pub suppression_seconds: u64,
    /// Evidence flows kept per finding. Default 5.
    pub evidence_flows: usize,
    /// Threat-intelligence traffic (`xforce-…`).
    pub threat_intel: ThreatIntelConfig,
    /// Port scans.
    pub port_scan: PortScanConfig,
    /// Brute force on remote-access and database ports.
    pub brute_force: BruteForceConfig,
    /// Data exfiltration.
    pub exfiltration: ExfiltrationConfig,
    /// Beaconing.
    pub beaconing: BeaconingConfig,
}

impl Default for NetworkDetectorConfig {
    fn default() -> Self {
        let internal_networks = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
        ]
        .iter()
        .filter_map(|text| text.parse().ok())
        .collect();
        Self {
            internal_networks,
            allowed_lateness_seconds: 900,
            suppression_seconds: 3600,
            evidence_flows: 5,
            threat_intel: ThreatIntelConfig::default(),
            port_scan: PortScanConfig::default(),
            brute_force: BruteForceConfig::default(),
            exfiltration: ExfiltrationConfig::default(),
            beaconing: BeaconingConfig::default(),
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network detector configuration: `{field}` {message}")]
pub struct NetworkConfigError {
    /// Dotted path of the field (`port_scan.window_seconds`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

pub(crate) fn config_error(field: &str, message: &str) -> NetworkConfigError {
    NetworkConfigError {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

pub(crate) fn require_positive(field: &str, value: u64) -> Result<(), NetworkConfigError> {
    if value == 0 {
        Err(config_error(field, "must be greater than 0"))
    } else {
        Ok(())
    }
}

/// Counters of one detector, for summaries and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorStats {
    /// Flows the detector counted (after its own filters).
    pub flows_counted: u64,
    /// Findings reported.
    pub findings: u64,
    /// Detections not reported because the same one was reported shortly before.
    pub suppressed: u64,
    /// Flows dropped because their window had already closed.
    pub late_flows: u64,
    /// Keys (pairs, targets…) tracked in open windows right now.
    pub open_keys: u64,
}

/// Which part of a stream's keys a state owns: shard `index` of `count`.
///
/// Every detector key is built around one address (the source for horizontal scans, brute
/// force, exfiltration and beaconing; the target for vertical and distributed scans, which are
/// decided together; our side for threat-intelligence pairs), and a key belongs to the shard of
/// that address's hash. Suppression keys contain the same address, so each shard suppresses
/// alone. Every shard still sees every flow, so all of them keep the same watermark and close the
/// same windows at the same moments: findings do not depend on the number of shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    pub(crate) const WHOLE: Shard = Shard { index: 0, count: 1 };

    #[inline]
    pub(crate) fn owns(self, key: u128) -> bool {
        self.count <= 1 || shard_of(key, self.count) == self.index
    }
}

/// The shard of an address key among `count`.
#[inline]
fn shard_of(key: u128, count: u32) -> u32 {
    let folded = (key as u64) ^ ((key >> 64) as u64);
    let mixed = folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    // Multiply-shift range reduction: a division per flow and shard would cost more.
    ((mixed * u64::from(count)) >> 32) as u32
}

/// Everything that changes while flows go through the detectors. Create it with
/// [`NetworkDetectors::new_state`]; keep one per independent stream of flows. It can be saved
/// and restored ([`NetworkDetectors::save_state`], [`NetworkDetectors::restore_state`]).
#[derive(Debug)]
pub struct NetworkDetectorState {
    shard: Shard,
    watermark: i64,
    next_close_at: i64,
    flows_seen: u64,
    suppression: Suppression,
    stats: [DetectorStats; 5],
    intel_traffic: intel_traffic::IntelTrafficState,
    port_scan: port_scan::PortScanState,
    brute_force: brute_force::BruteForceState,
    exfiltration: exfiltration::ExfiltrationState,
    beaconing: beaconing::BeaconingState,
}

impl NetworkDetectorState {
    /// The newest flow start seen (flow time), if any flow was seen.
    pub fn watermark(&self) -> Option<DateTime<Utc>> {
        (self.flows_seen > 0)
            .then(|| DateTime::from_timestamp(self.watermark, 0))
            .flatten()
    }

    /// Flows seen so far.
    pub fn flows_seen(&self) -> u64 {
        self.flows_seen
    }

    /// Counters per detector, in [`DetectorKind::ALL`] order.
    pub fn stats(&self) -> Vec<(DetectorKind, DetectorStats)> {
        let open_keys = [
            self.intel_traffic.open_keys(),
            self.port_scan.open_keys(),
            self.brute_force.open_keys(),
            self.exfiltration.open_keys(),
            self.beaconing.open_keys(),
        ];
        let late_flows = [
            self.intel_traffic.windows.late_flows,
            self.port_scan.windows.late_flows,
            self.brute_force.windows.late_flows,
            self.exfiltration.windows.late_flows,
            self.beaconing.windows.late_flows,
        ];
        DetectorKind::ALL
            .iter()
            .enumerate()
            .map(|(index, kind)| {
                let mut stats = self.stats[index];
                stats.open_keys = open_keys[index] as u64;
                stats.late_flows = late_flows[index];
                (*kind, stats)
            })
            .collect()
    }

    /// Exfiltration baselines kept (pairs seen within the retention period).
    pub fn baseline_pairs(&self) -> usize {
        self.exfiltration.baseline_len()
    }

    /// Remembered detections (for suppression).
    pub fn suppression_entries(&self) -> usize {
        self.suppression.len()
    }
}

fn detector_index(kind: DetectorKind) -> usize {
    match kind {
        DetectorKind::ThreatIntel => 0,
        DetectorKind::PortScan => 1,
        DetectorKind::BruteForce => 2,
        DetectorKind::Exfiltration => 3,
        DetectorKind::Beaconing => 4,
    }
}

/// One flow with what every detector asks about it computed once: whether each side is
/// internal, whether it is a reply, and which intel entry (if any) lists each side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlowContext {
    pub(crate) record: CompactFlow,
    pub(crate) src_internal: bool,
    pub(crate) dst_internal: bool,
    pub(crate) reply: bool,
    pub(crate) src_intel: Option<u32>,
    pub(crate) dst_intel: Option<u32>,
}

/// Where closing windows put their findings, applying suppression and counting.
///
/// Findings are held until [`Emitter::settle`], which admits them in an order that depends only
/// on their windows and keys (not on hash-map order), so which of two findings with the same
/// suppression key is reported never depends on how the state is laid out or sharded.
pub(crate) struct Emitter<'sink> {
    findings: &'sink mut Vec<NetworkFinding>,
    suppression: &'sink mut Suppression,
    stats: &'sink mut [DetectorStats; 5],
    suppression_seconds: i64,
    pending: Vec<(EmitOrder, NetworkFinding, SuppressionKey)>,
}

/// (detector, window start, the detector's key as numbers): unique per candidate finding.
pub(crate) type EmitOrder = (usize, i64, u128, u128, u32);

impl Emitter<'_> {
    /// Queues a finding; `key` is its detector key in numbers (unique within its window).
    pub(crate) fn emit(
        &mut self,
        finding: NetworkFinding,
        suppression: SuppressionKey,
        key: (u128, u128, u32),
    ) {
        let order = (
            detector_index(finding.detector),
            finding.window_start.timestamp(),
            key.0,
            key.1,
            key.2,
        );
        self.pending.push((order, finding, suppression));
    }

    /// Admits the queued findings through suppression, in key order.
    fn settle(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable_by_key(|(order, _, _)| *order);
        for (_, finding, key) in pending {
            let stats = &mut self.stats[detector_index(finding.detector)];
            if self
                .suppression
                .admit(&finding, key, self.suppression_seconds)
            {
                stats.findings += 1;
                self.findings.push(finding);
            } else {
                stats.suppressed += 1;
            }
        }
    }
}

/// The configured detectors. Immutable and cheap to share; state lives in
/// [`NetworkDetectorState`].
#[derive(Debug, Clone)]
pub struct NetworkDetectors {
    config: NetworkDetectorConfig,
    classifier: AddressClassifier,
    brute_force_ports: brute_force::PortBitmap,
    lateness: i64,
    suppression_seconds: i64,
}

impl NetworkDetectors {
    /// Validates `config` and builds the detectors.
    ///
    /// # Errors
    /// Names the first field whose value cannot work (a zero window, a ratio out of range…).
    pub fn new(config: NetworkDetectorConfig) -> Result<Self, NetworkConfigError> {
        if config.evidence_flows > 1000 {
            return Err(config_error("evidence_flows", "must be at most 1000"));
        }
        config.threat_intel.validate()?;
        config.port_scan.validate()?;
        config.brute_force.validate()?;
        config.exfiltration.validate()?;
        config.beaconing.validate()?;
        let to_seconds = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        Ok(Self {
            classifier: AddressClassifier::new(&config.internal_networks),
            brute_force_ports: brute_force::PortBitmap::new(&config.brute_force.ports),
            lateness: to_seconds(config.allowed_lateness_seconds),
            suppression_seconds: to_seconds(config.suppression_seconds),
            config,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &NetworkDetectorConfig {
        &self.config
    }

    /// Returns a fresh, empty state.
    pub fn new_state(&self) -> NetworkDetectorState {
        self.new_shard_state(Shard::WHOLE)
    }

    /// Returns the fresh states of `count` shards of one stream (see [`Shard`]).
    pub(crate) fn new_shard_states(&self, count: u32) -> Vec<NetworkDetectorState> {
        let count = count.max(1);
        (0..count)
            .map(|index| self.new_shard_state(Shard { index, count }))
            .collect()
    }

    fn new_shard_state(&self, shard: Shard) -> NetworkDetectorState {
        NetworkDetectorState {
            shard,
            watermark: i64::MIN,
            next_close_at: i64::MAX,
            flows_seen: 0,
            suppression: Suppression::new(),
            stats: [DetectorStats::default(); 5],
            intel_traffic: intel_traffic::IntelTrafficState::new(&self.config.threat_intel),
            port_scan: port_scan::PortScanState::new(&self.config.port_scan),
            brute_force: brute_force::BruteForceState::new(&self.config.brute_force),
            exfiltration: exfiltration::ExfiltrationState::new(&self.config.exfiltration),
            beaconing: beaconing::BeaconingState::new(&self.config.beaconing),
        }
    }

    /// Runs every enabled detector over one flow; findings of windows that this flow's time
    /// closes are appended to `findings`.
    pub fn process(
        &self,
        state: &mut NetworkDetectorState,
        intel: &ThreatIntel,
        record: &FlowRecord,
        findings: &mut Vec<NetworkFinding>,
    ) {
        self.process_compact(state, intel, &record.compact(), findings);
    }

    /// As [`NetworkDetectors::process`], for a flow without its text fields (what
    /// `palisade_logs::flow::decode_flows_compact` gives).
    pub fn process_compact(
        &self,
        state: &mut NetworkDetectorState,
        intel: &ThreatIntel,
        record: &CompactFlow,
        findings: &mut Vec<NetworkFinding>,
    ) {
        let flow = self.prepare(intel, record);
        self.process_prepared(state, intel, &flow, findings);
    }

    /// Works out once what every detector asks about a flow (looking each address up in the
    /// intel index once).
    #[inline]
    pub(crate) fn prepare(&self, intel: &ThreatIntel, record: &CompactFlow) -> FlowContext {
        let intel_on = self.config.threat_intel.enabled && !intel.is_empty();
        let min_confidence = self.config.threat_intel.min_confidence;
        let listed = |key: u128| {
            if intel_on {
                intel
                    .lookup_key(key)
                    .filter(|index| intel.confidence_at(*index) >= min_confidence)
            } else {
                None
            }
        };
        FlowContext {
            record: *record,
            src_internal: self.classifier.is_internal(record.src),
            dst_internal: self.classifier.is_internal(record.dst),
            reply: looks_like_reply(record.src_port, record.dst_port),
            src_intel: listed(record.src),
            dst_intel: listed(record.dst),
        }
    }

    /// Runs the detectors over a prepared flow, for the keys `state`'s shard owns.
    #[inline]
    pub(crate) fn process_prepared(
        &self,
        state: &mut NetworkDetectorState,
        intel: &ThreatIntel,
        flow: &FlowContext,
        findings: &mut Vec<NetworkFinding>,
    ) {
        state.flows_seen += 1;
        let evidence = self.config.evidence_flows;
        let clock = WindowClock {
            watermark: state.watermark,
            lateness: self.lateness,
        };
        let owns_src = state.shard.owns(flow.record.src);
        let owns_dst = state.shard.owns(flow.record.dst);
        let mut opened_at = i64::MAX;
        if self.config.threat_intel.enabled
            && (flow.src_intel.is_some() || flow.dst_intel.is_some())
        {
            let (counted, opened) =
                state
                    .intel_traffic
                    .observe(intel, flow, evidence, clock, state.shard);
            state.stats[0].flows_counted += u64::from(counted);
            opened_at = opened_at.min(opened);
        }
        if self.config.port_scan.enabled && (owns_src || owns_dst) {
            let (counted, opened) = state.port_scan.observe(
                &self.config.port_scan,
                flow,
                evidence,
                clock,
                owns_src,
                owns_dst,
            );
            state.stats[1].flows_counted += u64::from(counted);
            opened_at = opened_at.min(opened);
        }
        if owns_src {
            if self.config.brute_force.enabled {
                let (counted, opened) = state.brute_force.observe(
                    &self.config.brute_force,
                    &self.brute_force_ports,
                    flow,
                    evidence,
                    clock,
                );
                state.stats[2].flows_counted += u64::from(counted);
                opened_at = opened_at.min(opened);
            }
            if self.config.exfiltration.enabled {
                let (counted, opened) = state.exfiltration.observe(flow, evidence, clock);
                state.stats[3].flows_counted += u64::from(counted);
                opened_at = opened_at.min(opened);
            }
            if self.config.beaconing.enabled {
                let (counted, opened) =
                    state
                        .beaconing
                        .observe(&self.config.beaconing, flow, evidence, clock);
                state.stats[4].flows_counted += u64::from(counted);
                opened_at = opened_at.min(opened);
            }
        }
        if opened_at != i64::MAX {
            state.next_close_at = state
                .next_close_at
                .min(opened_at.saturating_add(self.lateness));
        }
        if flow.record.start > state.watermark {
            state.watermark = flow.record.start;
            if state.watermark >= state.next_close_at {
                self.close_windows(state, state.watermark, findings);
            }
        }
    }

    /// Runs a batch and returns the findings it produced.
    pub fn process_batch(
        &self,
        state: &mut NetworkDetectorState,
        intel: &ThreatIntel,
        records: &[FlowRecord],
    ) -> Vec<NetworkFinding> {
        let mut findings = Vec::new();
        for record in records {
            self.process(state, intel, record, &mut findings);
        }
        findings
    }

    /// Moves flow time forward to `watermark` without a flow (a server calls this when a source
    /// has gone quiet, e.g. with "now minus delivery delay"), closing the windows it ends.
    pub fn close_windows_until(
        &self,
        state: &mut NetworkDetectorState,
        watermark: DateTime<Utc>,
        findings: &mut Vec<NetworkFinding>,
    ) {
        let watermark = watermark.timestamp();
        if watermark > state.watermark {
            state.watermark = watermark;
        }
        self.close_windows(state, state.watermark, findings);
    }

    /// Closes every open window (end of input) and reports what they hold. Flows of those
    /// windows that arrive later are late.
    pub fn flush(&self, state: &mut NetworkDetectorState, findings: &mut Vec<NetworkFinding>) {
        self.close_windows(state, i64::MAX, findings);
        let watermark = state.watermark;
        state.intel_traffic.windows.close_through(watermark);
        state.port_scan.windows.close_through(watermark);
        state.brute_force.windows.close_through(watermark);
        state.exfiltration.windows.close_through(watermark);
        state.beaconing.windows.close_through(watermark);
    }

    /// Closes the windows that may close at `watermark` (all of them for `i64::MAX`).
    fn close_windows(
        &self,
        state: &mut NetworkDetectorState,
        watermark: i64,
        findings: &mut Vec<NetworkFinding>,
    ) {
        let first_new = findings.len();
        let lateness = self.lateness;
        let mut emitter = Emitter {
            findings,
            suppression: &mut state.suppression,
            stats: &mut state.stats,
            suppression_seconds: self.suppression_seconds,
            pending: Vec::new(),
        };
        state
            .intel_traffic
            .close(&self.config.threat_intel, watermark, lateness, &mut emitter);
        state
            .port_scan
            .close(&self.config.port_scan, watermark, lateness, &mut emitter);
        state.brute_force.close(watermark, lateness, &mut emitter);
        state
            .exfiltration
            .close(&self.config.exfiltration, watermark, lateness, &mut emitter);
        state
            .beaconing
            .close(&self.config.beaconing, watermark, lateness, &mut emitter);
        emitter.settle();
        if watermark != i64::MAX {
            // A detection is compared with windows that start up to `suppression_seconds` after
            // it ends; such a window may still be open for its length plus the lateness.
            let remembered_for = self
                .suppression_seconds
                .saturating_add(self.longest_window())
                .saturating_add(self.lateness);
            state.suppression.evict(watermark, remembered_for);
        }
        state.next_close_at = [
            state.intel_traffic.windows.next_close_at(self.lateness),
            state.port_scan.windows.next_close_at(self.lateness),
            state.brute_force.windows.next_close_at(self.lateness),
            state.exfiltration.windows.next_close_at(self.lateness),
            state.beaconing.windows.next_close_at(self.lateness),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(i64::MAX);
        // Hash-map order is arbitrary; findings come out in a stable order.
        findings[first_new..].sort_by(finding_order);
    }

    fn longest_window(&self) -> i64 {
        [
            self.config.threat_intel.window_seconds,
            self.config.port_scan.window_seconds,
            self.config.brute_force.window_seconds,
            self.config.exfiltration.window_seconds,
            self.config.beaconing.window_seconds,
        ]
        .into_iter()
        .max()
        .map_or(0, |seconds| i64::try_from(seconds).unwrap_or(i64::MAX))
    }
}

/// The order of the findings one closing produces.
pub(crate) fn finding_order(left: &NetworkFinding, right: &NetworkFinding) -> std::cmp::Ordering {
    (left.window_end, &left.finding_type, &left.id).cmp(&(
        right.window_end,
        &right.finding_type,
        &right.id,
    ))
}

/// The watermark before the flow being counted and the allowed lateness: what decides whether
/// the flow's window is still open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowClock {
    pub(crate) watermark: i64,
    pub(crate) lateness: i64,
}

/// Builds a finding's common parts from a tally and its evidence.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_finding(
    finding_type: String,
    detector: DetectorKind,
    severity: palisade_model::finding::Severity,
    summary: String,
    direction: palisade_model::flow::FlowDirection,
    client: Endpoint,
    server: Endpoint,
    tally: &compact::FlowTally,
    evidence: Vec<EvidenceFlow>,
    window: (i64, i64),
) -> NetworkFinding {
    let time =
        |seconds: i64| DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let window_start = time(window.0);
    NetworkFinding {
        id: finding::finding_id(
            &finding_type,
            client.address,
            server.address,
            server.port,
            window_start,
        ),
        finding_type,
        detector,
        severity,
        summary,
        network_connection: NetworkConnection {
            direction,
            protocol: palisade_model::flow::protocol_name(tally.protocol).into_owned(),
            client,
            server,
        },
        data_transferred: DataTransferred {
            client_bytes: tally.client_bytes,
            server_bytes: tally.server_bytes,
            client_packets: tally.client_packets,
            server_packets: tally.server_packets,
        },
        src_addresses: vec![client.address],
        dst_addresses: vec![server.address],
        dst_ports: server.port.into_iter().collect(),
        flow_count: tally.flows,
        rejected_flow_count: tally.rejected,
        distinct_count: None,
        window_start,
        window_end: time(window.1),
        first_seen: time(tally.first_seen),
        last_seen: time(tally.last_seen),
        threat_intel: None,
        baseline_bytes: None,
        interval_seconds: None,
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_configuration_means_the_defaults_and_round_trips() {
        let parsed: NetworkDetectorConfig = serde_json::from_str("{}").expect("valid");
        assert_eq!(parsed, NetworkDetectorConfig::default());
        let json = serde_json::to_string(&parsed).expect("serialises");
        let back: NetworkDetectorConfig = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, parsed);
        let partial: NetworkDetectorConfig =
            serde_json::from_str(r#"{"port_scan":{"vertical_min_ports":50}}"#).expect("valid");
        assert_eq!(partial.port_scan.vertical_min_ports, 50);
        assert_eq!(
            partial.port_scan.window_seconds,
            PortScanConfig::default().window_seconds
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_with_their_name() {
        assert!(serde_json::from_str::<NetworkDetectorConfig>(r#"{"port_scam":{}}"#).is_err());
        let mut config = NetworkDetectorConfig::default();
        config.port_scan.window_seconds = 0;
        let error = NetworkDetectors::new(config).expect_err("zero window");
        assert_eq!(error.field, "port_scan.window_seconds");
        let mut config = NetworkDetectorConfig::default();
        config.beaconing.min_regular_fraction = 1.5;
        assert_eq!(
            NetworkDetectors::new(config).expect_err("ratio").field,
            "beaconing.min_regular_fraction"
        );
    }
}
