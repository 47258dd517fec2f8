//! Data exfiltration: an internal host uploading far more than usual to one external peer.
//!
//! Per (internal source, external destination) and window, the detector adds up the bytes of
//! connections the internal host initiated (replies, e.g. a web server answering downloads, do
//! not count). At the window's close a pair is reported when its bytes reach `min_bytes` and
//! `baseline_multiplier` times the pair's baseline: the mean bytes of the earlier windows in which
//! the pair was active (zero for a pair never seen: a large upload to a new peer is the classic
//! signal). The window then joins the baseline (when it reaches `min_bytes / baseline_multiplier`,
//! or the pair already has one: smaller windows cannot hide a `min_bytes` upload, and skipping them
//! keeps the baseline map to the pairs that move real volume). Baselines of pairs not seen for
//! `baseline_retention_seconds` are dropped, which bounds memory by the pairs active in that period.

use palisade_model::finding::Severity;
use palisade_model::flow::FlowDirection;
use serde::{Deserialize, Serialize};

use super::compact::{EvidenceArena, FlowTally, KeyedMap, SavedTally};
use super::finding::{DetectorKind, Endpoint};
use super::intel::key_address;
use super::state::{FastMap, Recycle, WindowSet, new_map, pairs};
use super::{
    Emitter, FlowContext, NetworkConfigError, SuppressionKey, WindowClock, build_finding,
    config_error, require_positive,
};

/// Exfiltration detector settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExfiltrationConfig {
    /// Default `true`.
    pub enabled: bool,
    /// Window length, seconds. Default 3600.
    pub window_seconds: u64,
    /// Bytes uploaded to one peer in one window below which nothing is reported. Default 512 MiB.
    pub min_bytes: u64,
    /// How many times its baseline a window must reach. Default 10.
    pub baseline_multiplier: f64,
    /// How long a pair's baseline is kept after its last active window, seconds. Default 7 days.
    pub baseline_retention_seconds: u64,
}

impl Default for ExfiltrationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: 3600,
            min_bytes: 512 * 1024 * 1024,
            baseline_multiplier: 10.0,
            baseline_retention_seconds: 7 * 24 * 3600,
        }
    }
}

impl ExfiltrationConfig {
    pub(crate) fn validate(&self) -> Result<(), NetworkConfigError> {
        require_positive("exfiltration.window_seconds", self.window_seconds)?;
        require_positive("exfiltration.min_bytes", self.min_bytes)?;
        if !(self.baseline_multiplier.is_finite() && self.baseline_multiplier >= 1.0) {
            return Err(config_error(
                "exfiltration.baseline_multiplier",
                "must be a number of at least 1",
            ));
        }
        Ok(())
    }
}

/// One window: the uploads per pair and their evidence. Saved as `{"uploads": [[key, tally]…]}`
/// with the evidence inline (see `compact`).
#[derive(Debug, Default)]
pub(crate) struct UploadWindow {
    /// (internal source, external destination) → uploads.
    uploads: KeyedMap<(u128, u128), FlowTally>,
    evidence: EvidenceArena,
}

impl Recycle for UploadWindow {
    fn clear_for_reuse(&mut self) {
        self.uploads.clear();
        self.evidence.clear();
    }
}

#[derive(Serialize, Deserialize)]
struct SavedUploadWindow {
    uploads: Vec<((u128, u128), SavedTally)>,
}

impl Serialize for UploadWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SavedUploadWindow {
            uploads: self
                .uploads
                .sorted()
                .into_iter()
                .map(|(key, tally)| (key, tally.saved(&self.evidence)))
                .collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for UploadWindow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = SavedUploadWindow::deserialize(deserializer)?;
        let mut window = Self::default();
        for (key, tally) in saved.uploads {
            let tally = FlowTally::restored(tally, &mut window.evidence);
            window.uploads.insert(key, tally);
        }
        Ok(window)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Baseline {
    active_windows: u64,
    total_bytes: u128,
    last_window_end: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ExfiltrationState {
    pub(crate) windows: WindowSet<UploadWindow>,
    #[serde(with = "pairs")]
    baselines: FastMap<(u128, u128), Baseline>,
}

impl ExfiltrationState {
    pub(crate) fn new(config: &ExfiltrationConfig) -> Self {
        Self {
            windows: WindowSet::new(config.window_seconds),
            baselines: new_map(),
        }
    }

    pub(crate) fn open_keys(&self) -> usize {
        self.windows
            .open_windows()
            .map(|window| window.uploads.len())
            .sum()
    }

    pub(crate) fn baseline_len(&self) -> usize {
        self.baselines.len()
    }

    #[inline]
    pub(crate) fn observe(
        &mut self,
        flow: &FlowContext,
        evidence: usize,
        clock: WindowClock,
    ) -> (bool, i64) {
        if !flow.src_internal || flow.dst_internal || flow.reply {
            return (false, i64::MAX);
        }
        let record = &flow.record;
        let Some((index, window, opened)) =
            self.windows
                .window_for(record.start, clock.watermark, clock.lateness, true)
        else {
            return (false, i64::MAX);
        };
        window
            .uploads
            .get_or_insert_with((record.src, record.dst), || FlowTally::new(flow))
            .add(flow, false, evidence, &mut window.evidence);
        (
            true,
            if opened {
                self.windows.window_end(index)
            } else {
                i64::MAX
            },
        )
    }

    pub(crate) fn close(
        &mut self,
        config: &ExfiltrationConfig,
        watermark: i64,
        lateness: i64,
        emitter: &mut Emitter<'_>,
    ) {
        let retention = i64::try_from(config.baseline_retention_seconds).unwrap_or(i64::MAX);
        while let Some((index, mut window)) = self.windows.pop_closable(watermark, lateness) {
            let bounds = (
                self.windows.window_start(index),
                self.windows.window_end(index),
            );
            // A baseline whose pair was last active before the horizon has expired, whether or
            // not it was dropped yet (dropping is only housekeeping, and a shard that saw no
            // upload in an earlier window dropped nothing then).
            let horizon = bounds.1.saturating_sub(retention);
            for ((source, destination), tally) in window.uploads.drain() {
                let bytes = tally.client_bytes;
                let existing = self
                    .baselines
                    .get(&(source, destination))
                    .copied()
                    .filter(|baseline| baseline.last_window_end >= horizon);
                let mean_bytes = existing.map_or(0, |baseline| {
                    let mean = baseline.total_bytes / u128::from(baseline.active_windows.max(1));
                    u64::try_from(mean).unwrap_or(u64::MAX)
                });
                let far_above = (bytes as f64) >= config.baseline_multiplier * mean_bytes as f64;
                // Only windows that could matter join the baseline: below min_bytes / multiplier a
                // window cannot lift the mean enough to hide a min_bytes upload, and keeping every
                // small pair would make the baseline map as large as the set of peers.
                let matters = bytes as f64 >= config.min_bytes as f64 / config.baseline_multiplier;
                if existing.is_some() || matters {
                    let mut baseline = existing.unwrap_or(Baseline {
                        active_windows: 0,
                        total_bytes: 0,
                        last_window_end: bounds.1,
                    });
                    baseline.active_windows += 1;
                    baseline.total_bytes += u128::from(bytes);
                    baseline.last_window_end = bounds.1;
                    self.baselines.insert((source, destination), baseline);
                }
                if bytes < config.min_bytes || !far_above {
                    continue;
                }
                let (source_address, destination_address) =
                    (key_address(source), key_address(destination));
                let summary = format!(
                    "{source_address} uploaded {bytes} bytes to {destination_address} in {} flows; its usual is {mean_bytes} bytes per window",
                    tally.flows
                );
                let mut finding = build_finding(
                    "exfiltration".to_owned(),
                    DetectorKind::Exfiltration,
                    Severity::High,
                    summary,
                    FlowDirection::Outbound,
                    Endpoint {
                        address: source_address,
                        port: None,
                    },
                    Endpoint {
                        address: destination_address,
                        port: None,
                    },
                    &tally,
                    tally.evidence(&window.evidence),
                    bounds,
                );
                let mut ports: Vec<u16> = tally.evidence_ports(&window.evidence);
                ports.sort_unstable();
                ports.dedup();
                finding.dst_ports = ports;
                finding.baseline_bytes = Some(mean_bytes);
                emitter.emit(
                    finding,
                    SuppressionKey {
                        client: source,
                        server: destination,
                        port: None,
                    },
                    (source, destination, 0),
                );
            }
            self.windows.recycle(window);
            self.baselines
                .retain(|_, baseline| baseline.last_window_end >= horizon);
        }
    }
}
