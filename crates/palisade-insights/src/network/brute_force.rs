//! Brute force: many short connections from one source to one remote-access or database port of
//! one target in a window (password guessing against SSH, RDP, VNC, databases…).
//!
//! A connection counts as an attempt when it goes to one of `ports`, is not a reply, and carries
//! at most `max_packets_per_attempt` packets (a login exchange, not a working session). By default
//! only sources outside the internal networks count: application servers open many short
//! connections to their own databases all day. Severity: HIGH when some attempts were accepted
//! (the service answered), MEDIUM when the firewall rejected them all.

use palisade_model::finding::Severity;
use palisade_model::flow::{FlowAction, FlowDirection};
use serde::{Deserialize, Serialize};

use super::compact::{EvidenceArena, FlowTally, KeyedMap, SavedTally};
use super::finding::{DetectorKind, Endpoint};
use super::intel::key_address;
use super::state::{Recycle, WindowSet};
use super::{
    Emitter, FlowContext, NetworkConfigError, SuppressionKey, WindowClock, build_finding,
    require_positive,
};

/// Brute-force detector settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForceConfig {
    /// Default `true`.
    pub enabled: bool,
    /// Window length, seconds. Default 300.
    pub window_seconds: u64,
    /// Watched ports. Default: 21 (FTP), 22 (SSH), 23 (Telnet), 445 (SMB), 1433 (SQL Server),
    /// 1521 (Oracle), 3306 (MySQL), 3389 (RDP), 5432 (PostgreSQL), 5900 (VNC), 5985/5986 (WinRM),
    /// 6379 (Redis), 9200 (Elasticsearch), 27017 (MongoDB).
    pub ports: Vec<u16>,
    /// Attempts from one source to one target port in a window to report. Default 20.
    pub min_attempts: u64,
    /// A connection with more packets than this is a session, not an attempt. Default 40.
    pub max_packets_per_attempt: u64,
    /// Count sources inside the internal networks too (lateral movement). Default `false`.
    pub include_internal_sources: bool,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: 300,
            ports: vec![
                21, 22, 23, 445, 1433, 1521, 3306, 3389, 5432, 5900, 5985, 5986, 6379, 9200, 27017,
            ],
            min_attempts: 20,
            max_packets_per_attempt: 40,
            include_internal_sources: false,
        }
    }
}

impl BruteForceConfig {
    pub(crate) fn validate(&self) -> Result<(), NetworkConfigError> {
        require_positive("brute_force.window_seconds", self.window_seconds)?;
        require_positive("brute_force.min_attempts", self.min_attempts)?;
        require_positive(
            "brute_force.max_packets_per_attempt",
            self.max_packets_per_attempt,
        )
    }
}

/// One bit per port: a watched-port test is a shift and a mask.
#[derive(Debug, Clone)]
pub(crate) struct PortBitmap {
    bits: Vec<u64>,
}

impl PortBitmap {
    pub(crate) fn new(ports: &[u16]) -> Self {
        let mut bits = vec![0u64; 1024];
        for port in ports {
            bits[usize::from(*port) / 64] |= 1 << (port % 64);
        }
        Self { bits }
    }

    pub(crate) fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port) / 64] & (1 << (port % 64)) != 0
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Attempts {
    tally: FlowTally,
    accepted: u64,
}

/// One window: the attempts per (source, target, port) and their evidence (see `compact`).
#[derive(Debug, Default)]
pub(crate) struct BruteForceWindow {
    attempts: KeyedMap<(u128, u128, u16), Attempts>,
    evidence: EvidenceArena,
}

impl Recycle for BruteForceWindow {
    fn clear_for_reuse(&mut self) {
        self.attempts.clear();
        self.evidence.clear();
    }
}

/// [`Attempts`] as the saved state writes it (the layout of earlier builds).
#[derive(Serialize, Deserialize)]
struct SavedAttempts {
    tally: SavedTally,
    accepted: u64,
}

/// Saved as `{"attempts": [[key, attempts]…]}`.
#[derive(Serialize, Deserialize)]
struct SavedBruteForceWindow {
    attempts: Vec<((u128, u128, u16), SavedAttempts)>,
}

impl Serialize for BruteForceWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let attempts = self
            .attempts
            .sorted()
            .into_iter()
            .map(|(key, attempts)| {
                let saved = SavedAttempts {
                    tally: attempts.tally.saved(&self.evidence),
                    accepted: attempts.accepted,
                };
                (key, saved)
            })
            .collect();
        SavedBruteForceWindow { attempts }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for BruteForceWindow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = SavedBruteForceWindow::deserialize(deserializer)?;
        let mut window = Self::default();
        for (key, attempts) in saved.attempts {
            let tally = FlowTally::restored(attempts.tally, &mut window.evidence);
            window.attempts.insert(
                key,
                Attempts {
                    tally,
                    accepted: attempts.accepted,
                },
            );
        }
        Ok(window)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BruteForceState {
    pub(crate) windows: WindowSet<BruteForceWindow>,
    min_attempts: u64,
}

impl BruteForceState {
    pub(crate) fn new(config: &BruteForceConfig) -> Self {
        Self {
            windows: WindowSet::new(config.window_seconds),
            min_attempts: config.min_attempts,
        }
    }

    pub(crate) fn open_keys(&self) -> usize {
        self.windows
            .open_windows()
            .map(|window| window.attempts.len())
            .sum()
    }

    #[inline]
    pub(crate) fn observe(
        &mut self,
        config: &BruteForceConfig,
        ports: &PortBitmap,
        flow: &FlowContext,
        evidence: usize,
        clock: WindowClock,
    ) -> (bool, i64) {
        let record = &flow.record;
        if !ports.contains(record.dst_port)
            || flow.reply
            || record.packets > config.max_packets_per_attempt
            || (flow.src_internal && !config.include_internal_sources)
        {
            return (false, i64::MAX);
        }
        let Some((index, window, opened)) =
            self.windows
                .window_for(record.start, clock.watermark, clock.lateness, true)
        else {
            return (false, i64::MAX);
        };
        let attempts =
            window
                .attempts
                .get_or_insert_with((record.src, record.dst, record.dst_port), || Attempts {
                    tally: FlowTally::new(flow),
                    accepted: 0,
                });
        attempts
            .tally
            .add(flow, false, evidence, &mut window.evidence);
        attempts.accepted += u64::from(record.action == FlowAction::Accept);
        (
            true,
            if opened {
                self.windows.window_end(index)
            } else {
                i64::MAX
            },
        )
    }

    pub(crate) fn close(&mut self, watermark: i64, lateness: i64, emitter: &mut Emitter<'_>) {
        while let Some((index, mut window)) = self.windows.pop_closable(watermark, lateness) {
            let bounds = (
                self.windows.window_start(index),
                self.windows.window_end(index),
            );
            for ((source, target, port), attempts) in window.attempts.drain() {
                if attempts.tally.flows < self.min_attempts {
                    continue;
                }
                let (source_address, target_address) = (key_address(source), key_address(target));
                let summary = format!(
                    "{source_address} made {} short connections to {target_address} port {port} ({} rejected)",
                    attempts.tally.flows, attempts.tally.rejected
                );
                let severity = if attempts.accepted > 0 {
                    Severity::High
                } else {
                    Severity::Medium
                };
                let mut finding = build_finding(
                    "brute_force".to_owned(),
                    DetectorKind::BruteForce,
                    severity,
                    summary,
                    FlowDirection::Inbound,
                    Endpoint {
                        address: source_address,
                        port: None,
                    },
                    Endpoint {
                        address: target_address,
                        port: Some(port),
                    },
                    &attempts.tally,
                    attempts.tally.evidence(&window.evidence),
                    bounds,
                );
                finding.distinct_count = Some(attempts.tally.flows);
                emitter.emit(
                    finding,
                    SuppressionKey {
                        client: source,
                        server: target,
                        port: Some(port),
                    },
                    (source, target, u32::from(port)),
                );
            }
            self.windows.recycle(window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_holds_exactly_its_ports() {
        let bitmap = PortBitmap::new(&[0, 22, 65_535]);
        assert!(bitmap.contains(22) && bitmap.contains(0) && bitmap.contains(65_535));
        assert!(!bitmap.contains(23) && !bitmap.contains(21));
    }
}
