//! Port scans: vertical (one source, many ports of one target), horizontal (one source, one port
//! on many targets) and distributed (many sources, many ports of one target).
//!
//! Only probe-like flows count: rejected ones, or ones of at most `probe_max_packets` packets
//! (a SYN and maybe a retry or an RST), so real sessions never add up to a scan, while mostly
//! rejected attempts do. Reply flows (see the module docs of `network`) never count. ICMP counts
//! with port 0, so a ping sweep is a horizontal scan.
//!
//! At a window's close, vertical scans are decided first; a source found scanning a target
//! vertically is then left out of that target's distributed count, so one scanner is not reported
//! twice. Severity: LOW when every probe was rejected, MEDIUM when something answered; HIGH for
//! distributed scans that something answered (MEDIUM otherwise).

use palisade_model::finding::Severity;
use palisade_model::flow::{FlowAction, FlowDirection};
use serde::{Deserialize, Serialize};

use super::compact::{EvidenceArena, FlowTally, KeyedMap, SavedTally};
use super::finding::{DetectorKind, Endpoint, MAX_LISTED};
use super::intel::key_address;
use super::state::{DistinctSet, Recycle, WindowSet, addresses};
use super::{
    Emitter, FlowContext, NetworkConfigError, SuppressionKey, WindowClock, build_finding,
    require_positive,
};

/// Port-scan detector settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortScanConfig {
    /// Default `true`.
    pub enabled: bool,
    /// Window length, seconds. Default 300.
    pub window_seconds: u64,
    /// An accepted flow of at most this many packets counts as a probe. Default 3.
    pub probe_max_packets: u64,
    /// Distinct ports one source probes on one target for a vertical scan. Default 20.
    pub vertical_min_ports: u64,
    /// Distinct targets one source probes on one port for a horizontal scan. Default 20.
    pub horizontal_min_targets: u64,
    /// Distinct sources probing one target for a distributed scan. Default 10.
    pub distributed_min_sources: u64,
    /// Distinct ports those sources probe on the target. Default 10.
    pub distributed_min_ports: u64,
    /// Cap on each distinct-value set (memory bound per key). Default 4096.
    pub max_tracked_values: usize,
}

impl Default for PortScanConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: 300,
            probe_max_packets: 3,
            vertical_min_ports: 20,
            horizontal_min_targets: 20,
            distributed_min_sources: 10,
            distributed_min_ports: 10,
            max_tracked_values: 4096,
        }
    }
}

impl PortScanConfig {
    pub(crate) fn validate(&self) -> Result<(), NetworkConfigError> {
        require_positive("port_scan.window_seconds", self.window_seconds)?;
        require_positive("port_scan.vertical_min_ports", self.vertical_min_ports)?;
        require_positive(
            "port_scan.horizontal_min_targets",
            self.horizontal_min_targets,
        )?;
        require_positive(
            "port_scan.distributed_min_sources",
            self.distributed_min_sources,
        )?;
        require_positive(
            "port_scan.distributed_min_ports",
            self.distributed_min_ports,
        )?;
        require_positive(
            "port_scan.max_tracked_values",
            self.max_tracked_values as u64,
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Probes<T: Copy + Eq + std::hash::Hash + Ord> {
    tally: FlowTally,
    accepted: u64,
    values: DistinctSet<T>,
}

#[derive(Debug, Clone, PartialEq)]
struct DistributedProbes {
    tally: FlowTally,
    accepted: u64,
    sources: DistinctSet<u128>,
    ports: DistinctSet<u16>,
}

/// One window: the three kinds of keys and the evidence they keep (one probe is usually evidence
/// of a vertical, a horizontal and a distributed key at once, stored once; see `compact`).
#[derive(Debug, Default)]
pub(crate) struct ScanWindow {
    /// (source, target) → ports. Sharded by target.
    vertical: KeyedMap<(u128, u128), Probes<u16>>,
    /// (source, port, protocol) → targets. Sharded by source.
    horizontal: KeyedMap<(u128, u16, u8), Probes<u128>>,
    /// target → sources and ports. Sharded by target.
    distributed: KeyedMap<u128, DistributedProbes>,
    evidence: EvidenceArena,
}

impl Recycle for ScanWindow {
    fn clear_for_reuse(&mut self) {
        self.vertical.clear();
        self.horizontal.clear();
        self.distributed.clear();
        self.evidence.clear();
    }
}

/// [`Probes`] as the saved state writes it (the layout of earlier builds).
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
struct SavedProbes<T: Copy + Eq + std::hash::Hash + Ord> {
    tally: SavedTally,
    accepted: u64,
    values: DistinctSet<T>,
}

/// [`DistributedProbes`] as the saved state writes it.
#[derive(Serialize, Deserialize)]
struct SavedDistributedProbes {
    tally: SavedTally,
    accepted: u64,
    sources: DistinctSet<u128>,
    ports: DistinctSet<u16>,
}

/// Saved as `{"vertical": [[key, probes]…], "horizontal": […], "distributed": […]}`.
#[derive(Serialize, Deserialize)]
struct SavedScanWindow {
    vertical: Vec<((u128, u128), SavedProbes<u16>)>,
    horizontal: Vec<((u128, u16, u8), SavedProbes<u128>)>,
    distributed: Vec<(u128, SavedDistributedProbes)>,
}

impl<T: Copy + Eq + std::hash::Hash + Ord> Probes<T> {
    fn saved(&self, arena: &EvidenceArena) -> SavedProbes<T> {
        SavedProbes {
            tally: self.tally.saved(arena),
            accepted: self.accepted,
            values: self.values.clone(),
        }
    }

    fn restored(saved: SavedProbes<T>, arena: &mut EvidenceArena) -> Self {
        Self {
            tally: FlowTally::restored(saved.tally, arena),
            accepted: saved.accepted,
            values: saved.values,
        }
    }
}

impl Serialize for ScanWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let arena = &self.evidence;
        SavedScanWindow {
            vertical: self
                .vertical
                .sorted()
                .into_iter()
                .map(|(key, probes)| (key, probes.saved(arena)))
                .collect(),
            horizontal: self
                .horizontal
                .sorted()
                .into_iter()
                .map(|(key, probes)| (key, probes.saved(arena)))
                .collect(),
            distributed: self
                .distributed
                .sorted()
                .into_iter()
                .map(|(key, probes)| {
                    let saved = SavedDistributedProbes {
                        tally: probes.tally.saved(arena),
                        accepted: probes.accepted,
                        sources: probes.sources.clone(),
                        ports: probes.ports.clone(),
                    };
                    (key, saved)
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ScanWindow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = SavedScanWindow::deserialize(deserializer)?;
        let mut window = Self::default();
        for (key, probes) in saved.vertical {
            let probes = Probes::restored(probes, &mut window.evidence);
            window.vertical.insert(key, probes);
        }
        for (key, probes) in saved.horizontal {
            let probes = Probes::restored(probes, &mut window.evidence);
            window.horizontal.insert(key, probes);
        }
        for (key, probes) in saved.distributed {
            let probes = DistributedProbes {
                tally: FlowTally::restored(probes.tally, &mut window.evidence),
                accepted: probes.accepted,
                sources: probes.sources,
                ports: probes.ports,
            };
            window.distributed.insert(key, probes);
        }
        Ok(window)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PortScanState {
    pub(crate) windows: WindowSet<ScanWindow>,
}

impl PortScanState {
    pub(crate) fn new(config: &PortScanConfig) -> Self {
        Self {
            windows: WindowSet::new(config.window_seconds),
        }
    }

    pub(crate) fn open_keys(&self) -> usize {
        self.windows
            .open_windows()
            .map(|window| {
                window.vertical.len() + window.horizontal.len() + window.distributed.len()
            })
            .sum()
    }

    /// Counts a probe-like flow: the horizontal key when this shard owns the source, the
    /// vertical and distributed keys when it owns the target (the flow is counted there).
    #[inline]
    pub(crate) fn observe(
        &mut self,
        config: &PortScanConfig,
        flow: &FlowContext,
        evidence: usize,
        clock: WindowClock,
        owns_source: bool,
        owns_target: bool,
    ) -> (bool, i64) {
        let record = &flow.record;
        let rejected = record.action == FlowAction::Reject;
        if flow.reply || !(rejected || record.packets <= config.probe_max_packets) {
            return (false, i64::MAX);
        }
        let Some((index, window, opened)) =
            self.windows
                .window_for(record.start, clock.watermark, clock.lateness, owns_target)
        else {
            return (false, i64::MAX);
        };
        let cap = config.max_tracked_values;
        let accepted = u64::from(record.action == FlowAction::Accept);
        if owns_source {
            let horizontal = window.horizontal.get_or_insert_with(
                (record.src, record.dst_port, record.protocol),
                || Probes {
                    tally: FlowTally::new(flow),
                    accepted: 0,
                    values: DistinctSet::new(),
                },
            );
            horizontal
                .tally
                .add(flow, false, evidence, &mut window.evidence);
            horizontal.accepted += accepted;
            horizontal.values.insert(record.dst, cap);
        }
        if owns_target {
            let vertical = window
                .vertical
                .get_or_insert_with((record.src, record.dst), || Probes {
                    tally: FlowTally::new(flow),
                    accepted: 0,
                    values: DistinctSet::new(),
                });
            vertical
                .tally
                .add(flow, false, evidence, &mut window.evidence);
            vertical.accepted += accepted;
            vertical.values.insert(record.dst_port, cap);
            let distributed =
                window
                    .distributed
                    .get_or_insert_with(record.dst, || DistributedProbes {
                        tally: FlowTally::new(flow),
                        accepted: 0,
                        sources: DistinctSet::new(),
                        ports: DistinctSet::new(),
                    });
            distributed
                .tally
                .add(flow, false, evidence, &mut window.evidence);
            distributed.accepted += accepted;
            distributed.sources.insert(record.src, cap);
            distributed.ports.insert(record.dst_port, cap);
        }
        (
            owns_target,
            if opened {
                self.windows.window_end(index)
            } else {
                i64::MAX
            },
        )
    }

    pub(crate) fn close(
        &mut self,
        config: &PortScanConfig,
        watermark: i64,
        lateness: i64,
        emitter: &mut Emitter<'_>,
    ) {
        while let Some((index, mut window)) = self.windows.pop_closable(watermark, lateness) {
            let bounds = (
                self.windows.window_start(index),
                self.windows.window_end(index),
            );
            close_window(config, &mut window, bounds, emitter);
            self.windows.recycle(window);
        }
    }
}

fn severity(accepted: u64, base: Severity, answered: Severity) -> Severity {
    if accepted > 0 { answered } else { base }
}

fn close_window(
    config: &PortScanConfig,
    window: &mut ScanWindow,
    bounds: (i64, i64),
    emitter: &mut Emitter<'_>,
) {
    let mut vertical_scanners: Vec<(u128, u128)> = Vec::new();
    for ((source, target), probes) in window.vertical.drain() {
        let ports = probes.values.len() as u64;
        if ports < config.vertical_min_ports {
            continue;
        }
        vertical_scanners.push((source, target));
        let (source_address, target_address) = (key_address(source), key_address(target));
        let summary = format!(
            "{source_address} probed {ports} ports of {target_address} in {} flows ({} rejected)",
            probes.tally.flows, probes.tally.rejected
        );
        let mut finding = build_finding(
            "port_scan_vertical".to_owned(),
            DetectorKind::PortScan,
            severity(probes.accepted, Severity::Low, Severity::Medium),
            summary,
            FlowDirection::Inbound,
            Endpoint {
                address: source_address,
                port: None,
            },
            Endpoint {
                address: target_address,
                port: None,
            },
            &probes.tally,
            probes.tally.evidence(&window.evidence),
            bounds,
        );
        finding.dst_ports = probes.values.sorted(MAX_LISTED);
        finding.distinct_count = Some(ports);
        emitter.emit(
            finding,
            SuppressionKey {
                client: source,
                server: target,
                port: None,
            },
            (source, target, 0),
        );
    }
    for ((source, port, protocol), probes) in window.horizontal.drain() {
        let targets = probes.values.len() as u64;
        if targets < config.horizontal_min_targets {
            continue;
        }
        let listed = probes.values.sorted(MAX_LISTED);
        let source_address = key_address(source);
        let summary = format!(
            "{source_address} probed port {port} on {targets} addresses in {} flows ({} rejected)",
            probes.tally.flows, probes.tally.rejected
        );
        let first_target = listed
            .first()
            .map_or(source_address, |target| key_address(*target));
        let mut finding = build_finding(
            "port_scan_horizontal".to_owned(),
            DetectorKind::PortScan,
            severity(probes.accepted, Severity::Low, Severity::Medium),
            summary,
            FlowDirection::Inbound,
            Endpoint {
                address: source_address,
                port: None,
            },
            Endpoint {
                address: first_target,
                port: Some(port),
            },
            &probes.tally,
            probes.tally.evidence(&window.evidence),
            bounds,
        );
        finding.dst_addresses = addresses(&listed);
        finding.distinct_count = Some(targets);
        emitter.emit(
            finding,
            SuppressionKey {
                client: source,
                server: 0,
                port: Some(port),
            },
            (source, 0, u32::from(port) << 8 | u32::from(protocol)),
        );
    }
    for (source, target) in &vertical_scanners {
        if let Some(distributed) = window.distributed.get_mut(target) {
            distributed.sources.remove(source);
        }
    }
    for (target, probes) in window.distributed.drain() {
        let sources = probes.sources.len() as u64;
        let ports = probes.ports.len() as u64;
        if sources < config.distributed_min_sources || ports < config.distributed_min_ports {
            continue;
        }
        let listed_sources = probes.sources.sorted(MAX_LISTED);
        let target_address = key_address(target);
        let summary = format!(
            "{sources} sources probed {ports} ports of {target_address} in {} flows ({} rejected)",
            probes.tally.flows, probes.tally.rejected
        );
        let first_source = listed_sources
            .first()
            .map_or(target_address, |source| key_address(*source));
        let mut finding = build_finding(
            "port_scan_distributed".to_owned(),
            DetectorKind::PortScan,
            severity(probes.accepted, Severity::Medium, Severity::High),
            summary,
            FlowDirection::Inbound,
            Endpoint {
                address: first_source,
                port: None,
            },
            Endpoint {
                address: target_address,
                port: None,
            },
            &probes.tally,
            probes.tally.evidence(&window.evidence),
            bounds,
        );
        finding.src_addresses = addresses(&listed_sources);
        finding.dst_ports = probes.ports.sorted(MAX_LISTED);
        finding.distinct_count = Some(sources);
        // Suppressed by target alone: the representative source changes from window to window.
        emitter.emit(
            finding,
            SuppressionKey {
                client: 0,
                server: target,
                port: None,
            },
            (target, 0, 1),
        );
    }
}
