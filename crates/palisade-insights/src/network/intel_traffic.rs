//! Traffic to or from threat-intelligence addresses, reported under SCC Network Insights' names.
//!
//! Per (our address, listed address, direction) and window, the detector counts flows, volumes
//! and the ports used, and reports at the window's close:
//!
//! | direction | condition | type | severity |
//! |---|---|---|---|
//! | outbound (our host contacted the listed one) | bytes sent ≥ `data_extrusion_bytes` | `xforce-data_extrusion` | HIGH |
//! | outbound | otherwise | `xforce-<category>_server` (`anonym`, `malware`, `bot`, `miner`, or the feed's label) | MEDIUM |
//! | inbound (the listed host contacted ours) | ≥ `vulnerability_scan_min_ports` distinct ports | `xforce-vulnerability_scan` | MEDIUM |
//! | inbound | every flow rejected | `xforce-reconnaissance` | LOW |
//! | inbound, accepted | category `scanner` or `anonymizer` | `xforce-client_response` | LOW |
//! | inbound, accepted | any other category | `xforce-client_weaponized` | MEDIUM |
//!
//! SCC did not publish its exact conditions; these follow the names' meaning and its severities.
//! Direction comes from which side is listed (reply flows are folded into their connection), so
//! it works without knowing the internal networks.

use palisade_model::finding::Severity;
use palisade_model::flow::{FlowAction, FlowDirection};
use serde::{Deserialize, Serialize};

use super::compact::{EvidenceArena, FlowTally, KeyedMap, SavedTally};
use super::finding::{DetectorKind, Endpoint, EvidenceFlow, MAX_LISTED};
use super::intel::{IntelMatch, ThreatIntel, key_address};
use super::state::{DistinctSet, Recycle, WindowSet};
use super::{
    Emitter, FlowContext, NetworkConfigError, Shard, SuppressionKey, WindowClock, build_finding,
    config_error, require_positive,
};

/// Threat-intelligence traffic detector settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThreatIntelConfig {
    /// Default `true`.
    pub enabled: bool,
    /// Window length, seconds. Default 3600.
    pub window_seconds: u64,
    /// Entries below this confidence (0–100) are ignored. Default 0 (all).
    pub min_confidence: u8,
    /// Bytes sent to a listed host in one window that make the finding `xforce-data_extrusion`.
    /// Default 10 MiB.
    pub data_extrusion_bytes: u64,
    /// Distinct ports a listed host must touch on one of ours in one window for
    /// `xforce-vulnerability_scan`. Default 10.
    pub vulnerability_scan_min_ports: u64,
}

impl Default for ThreatIntelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: 3600,
            min_confidence: 0,
            data_extrusion_bytes: 10 * 1024 * 1024,
            vulnerability_scan_min_ports: 10,
        }
    }
}

impl ThreatIntelConfig {
    pub(crate) fn validate(&self) -> Result<(), NetworkConfigError> {
        require_positive("threat_intel.window_seconds", self.window_seconds)?;
        require_positive(
            "threat_intel.vulnerability_scan_min_ports",
            self.vulnerability_scan_min_ports,
        )?;
        if self.min_confidence > 100 {
            return Err(config_error(
                "threat_intel.min_confidence",
                "must be at most 100",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
struct IntelPair {
    matched: IntelMatch,
    tally: FlowTally,
    accepted: u64,
    ports: DistinctSet<u16>,
}

/// Key: (our address, listed address, outbound?).
type IntelKey = (u128, u128, bool);

/// One window: the pairs and their evidence (see `compact`).
#[derive(Debug, Default)]
pub(crate) struct IntelWindow {
    pairs: KeyedMap<IntelKey, IntelPair>,
    evidence: EvidenceArena,
}

impl Recycle for IntelWindow {
    fn clear_for_reuse(&mut self) {
        self.pairs.clear();
        self.evidence.clear();
    }
}

/// [`IntelPair`] as the saved state writes it (the layout of earlier builds).
#[derive(Serialize, Deserialize)]
struct SavedIntelPair {
    matched: IntelMatch,
    tally: SavedTally,
    accepted: u64,
    ports: DistinctSet<u16>,
}

/// Saved as `{"pairs": [[key, pair]…]}`.
#[derive(Serialize, Deserialize)]
struct SavedIntelWindow {
    pairs: Vec<(IntelKey, SavedIntelPair)>,
}

impl Serialize for IntelWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pairs = self
            .pairs
            .sorted()
            .into_iter()
            .map(|(key, pair)| {
                let saved = SavedIntelPair {
                    matched: pair.matched.clone(),
                    tally: pair.tally.saved(&self.evidence),
                    accepted: pair.accepted,
                    ports: pair.ports.clone(),
                };
                (key, saved)
            })
            .collect();
        SavedIntelWindow { pairs }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IntelWindow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = SavedIntelWindow::deserialize(deserializer)?;
        let mut window = Self::default();
        for (key, pair) in saved.pairs {
            let tally = FlowTally::restored(pair.tally, &mut window.evidence);
            window.pairs.insert(
                key,
                IntelPair {
                    matched: pair.matched,
                    tally,
                    accepted: pair.accepted,
                    ports: pair.ports,
                },
            );
        }
        Ok(window)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IntelTrafficState {
    pub(crate) windows: WindowSet<IntelWindow>,
}

impl IntelTrafficState {
    pub(crate) fn new(config: &ThreatIntelConfig) -> Self {
        Self {
            windows: WindowSet::new(config.window_seconds),
        }
    }

    pub(crate) fn open_keys(&self) -> usize {
        self.windows
            .open_windows()
            .map(|window| window.pairs.len())
            .sum()
    }

    /// Returns (counted?, end of a window this flow opened or `i64::MAX`). The pair belongs to
    /// the shard of our address.
    pub(crate) fn observe(
        &mut self,
        intel: &ThreatIntel,
        flow: &FlowContext,
        evidence: usize,
        clock: WindowClock,
        shard: Shard,
    ) -> (bool, i64) {
        let record = &flow.record;
        // Orient the flow as client → server (a reply runs server → client).
        let (client, server, client_listed, server_listed) = if flow.reply {
            (record.dst, record.src, flow.dst_intel, flow.src_intel)
        } else {
            (record.src, record.dst, flow.src_intel, flow.dst_intel)
        };
        let (key, entry) = match (client_listed, server_listed) {
            (None, Some(entry)) => ((client, server, true), entry),
            (Some(entry), None) => ((server, client, false), entry),
            _ => return (false, i64::MAX),
        };
        if !shard.owns(key.0) {
            return (false, i64::MAX);
        }
        let Some((index, window, opened)) =
            self.windows
                .window_for(record.start, clock.watermark, clock.lateness, true)
        else {
            return (false, i64::MAX);
        };
        let pair = window.pairs.get_or_insert_with(key, || IntelPair {
            matched: intel.match_at(entry),
            tally: FlowTally::new(flow),
            accepted: 0,
            ports: DistinctSet::new(),
        });
        pair.tally
            .add(flow, flow.reply, evidence, &mut window.evidence);
        if record.action == FlowAction::Accept {
            pair.accepted += 1;
        }
        let server_port = if flow.reply {
            record.src_port
        } else {
            record.dst_port
        };
        pair.ports.insert(server_port, 4096);
        let opened_end = if opened {
            self.windows.window_end(index)
        } else {
            i64::MAX
        };
        (true, opened_end)
    }

    pub(crate) fn close(
        &mut self,
        config: &ThreatIntelConfig,
        watermark: i64,
        lateness: i64,
        emitter: &mut Emitter<'_>,
    ) {
        while let Some((index, mut window)) = self.windows.pop_closable(watermark, lateness) {
            let bounds = (
                self.windows.window_start(index),
                self.windows.window_end(index),
            );
            for ((ours, theirs, outbound), pair) in window.pairs.drain() {
                let evidence = pair.tally.evidence(&window.evidence);
                report(
                    config,
                    (ours, theirs, outbound),
                    pair,
                    evidence,
                    bounds,
                    emitter,
                );
            }
            self.windows.recycle(window);
        }
    }
}

fn report(
    config: &ThreatIntelConfig,
    (ours, theirs, outbound): IntelKey,
    pair: IntelPair,
    evidence: Vec<EvidenceFlow>,
    bounds: (i64, i64),
    emitter: &mut Emitter<'_>,
) {
    let category = pair.matched.category.to_string();
    let distinct_ports = pair.ports.len() as u64;
    let (finding_type, severity) = if outbound {
        if pair.tally.client_bytes >= config.data_extrusion_bytes {
            ("xforce-data_extrusion".to_owned(), Severity::High)
        } else {
            (
                format!("xforce-{}_server", scc_label(&category)),
                Severity::Medium,
            )
        }
    } else if distinct_ports >= config.vulnerability_scan_min_ports {
        ("xforce-vulnerability_scan".to_owned(), Severity::Medium)
    } else if pair.accepted == 0 {
        ("xforce-reconnaissance".to_owned(), Severity::Low)
    } else if matches!(category.as_str(), "scanner" | "anonymizer") {
        ("xforce-client_response".to_owned(), Severity::Low)
    } else {
        ("xforce-client_weaponized".to_owned(), Severity::Medium)
    };
    let ports = pair.ports.sorted(MAX_LISTED);
    let single_port = (ports.len() == 1).then(|| ports[0]);
    let ours_address = key_address(ours);
    let theirs_address = key_address(theirs);
    let (client, server, direction) = if outbound {
        (
            Endpoint {
                address: ours_address,
                port: None,
            },
            Endpoint {
                address: theirs_address,
                port: single_port,
            },
            FlowDirection::Outbound,
        )
    } else {
        (
            Endpoint {
                address: theirs_address,
                port: None,
            },
            Endpoint {
                address: ours_address,
                port: single_port,
            },
            FlowDirection::Inbound,
        )
    };
    let summary = if outbound {
        format!(
            "{ours_address} sent {} bytes in {} flows to {theirs_address}, listed as {category} by {}",
            pair.tally.client_bytes, pair.tally.flows, pair.matched.feed
        )
    } else {
        format!(
            "{theirs_address}, listed as {category} by {}, reached {ours_address} in {} flows ({} rejected) on {distinct_ports} ports",
            pair.matched.feed, pair.tally.flows, pair.tally.rejected
        )
    };
    let mut finding = build_finding(
        finding_type,
        DetectorKind::ThreatIntel,
        severity,
        summary,
        direction,
        client,
        server,
        &pair.tally,
        evidence,
        bounds,
    );
    finding.dst_ports = ports;
    finding.distinct_count = Some(distinct_ports);
    finding.threat_intel = Some(pair.matched);
    emitter.emit(
        finding,
        SuppressionKey {
            client: ours,
            server: theirs,
            port: single_port,
        },
        (ours, theirs, u32::from(outbound)),
    );
}

/// SCC spells the anonymiser category `anonym`; other labels keep letters, digits and `_`.
fn scc_label(category: &str) -> String {
    match category {
        "anonymizer" => "anonym".to_owned(),
        other => other
            .chars()
            .map(|character| {
                if character.is_ascii_alphanumeric() {
                    character
                } else {
                    '_'
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_scc_spelling() {
        assert_eq!(scc_label("anonymizer"), "anonym");
        assert_eq!(scc_label("bot"), "bot");
        assert_eq!(scc_label("apt 28/x"), "apt_28_x");
    }
}
