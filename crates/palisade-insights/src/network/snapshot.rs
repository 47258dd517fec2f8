//! Saving and restoring a [`NetworkDetectorState`]: the open windows, exfiltration baselines,
//! remembered detections and counters, so a server can keep detecting across restarts.
//!
//! # Format
//! `pns1:` followed by the base64 (standard alphabet) of the deflate-compressed JSON of the
//! state and the configuration it was built with. The prefix names the version: a text with
//! another prefix is refused ([`NetworkStateError::Version`]) and the caller starts afresh. Maps
//! are written as sorted `[key, value]` lists with addresses as their 128-bit keys, so the same
//! state always gives the same text; JSON field names repeat for every key, which is what the
//! compression takes away (about a hundred bytes per open key, evidence flows included).
//!
//! # Size
//! Only what the running state holds is written: the windows still open, the baselines of pairs
//! active within their retention and the detections remembered for suppression. All three expire
//! as flow time passes, so the saved state is bounded by the active (source, target) pairs, like
//! the state in memory, not by how much was ever processed.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::state::Suppression;
use super::{
    DetectorStats, NetworkDetectorConfig, NetworkDetectorState, NetworkDetectors, Shard, beaconing,
    brute_force, exfiltration, intel_traffic, port_scan,
};

/// The prefix of the current format.
const PREFIX: &str = "pns1:";

/// Why a saved state was not restored. The caller then starts from an empty state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkStateError {
    /// The text is not of a format version this build reads.
    #[error("saved network detector state: unknown format `{0}`")]
    Version(String),
    /// The state was built with another detector configuration (window lengths, thresholds…
    /// differ), so its windows do not fit these detectors.
    #[error("saved network detector state belongs to another detector configuration")]
    OtherConfiguration,
    /// The text is damaged.
    #[error("saved network detector state is unreadable: {0}")]
    Damaged(String),
}

#[derive(Serialize)]
struct SavedState<'state> {
    config: &'state NetworkDetectorConfig,
    shard: Shard,
    watermark: i64,
    next_close_at: i64,
    flows_seen: u64,
    stats: [DetectorStats; 5],
    suppression: &'state Suppression,
    intel_traffic: &'state intel_traffic::IntelTrafficState,
    port_scan: &'state port_scan::PortScanState,
    brute_force: &'state brute_force::BruteForceState,
    exfiltration: &'state exfiltration::ExfiltrationState,
    beaconing: &'state beaconing::BeaconingState,
}

#[derive(Deserialize)]
struct LoadedState {
    config: NetworkDetectorConfig,
    shard: Shard,
    watermark: i64,
    next_close_at: i64,
    flows_seen: u64,
    stats: [DetectorStats; 5],
    suppression: Suppression,
    intel_traffic: intel_traffic::IntelTrafficState,
    port_scan: port_scan::PortScanState,
    brute_force: brute_force::BruteForceState,
    exfiltration: exfiltration::ExfiltrationState,
    beaconing: beaconing::BeaconingState,
}

impl NetworkDetectors {
    /// Writes `state` in the saved format (see the module documentation).
    pub fn save_state(&self, state: &NetworkDetectorState) -> String {
        let saved = SavedState {
            config: &self.config,
            shard: state.shard,
            watermark: state.watermark,
            next_close_at: state.next_close_at,
            flows_seen: state.flows_seen,
            stats: state.stats,
            suppression: &state.suppression,
            intel_traffic: &state.intel_traffic,
            port_scan: &state.port_scan,
            brute_force: &state.brute_force,
            exfiltration: &state.exfiltration,
            beaconing: &state.beaconing,
        };
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing JSON of plain numbers, strings and lists into memory cannot fail.
        let written = serde_json::to_writer(&mut encoder, &saved);
        debug_assert!(written.is_ok(), "{written:?}");
        let compressed = encoder.finish().unwrap_or_default();
        let mut text = String::with_capacity(PREFIX.len() + compressed.len() * 4 / 3 + 4);
        text.push_str(PREFIX);
        STANDARD.encode_string(&compressed, &mut text);
        text
    }

    /// Reads a state written by [`NetworkDetectors::save_state`] with the same configuration.
    ///
    /// # Errors
    /// [`NetworkStateError`] when the text is of another format version, was saved with another
    /// configuration, or is damaged.
    pub fn restore_state(&self, text: &str) -> Result<NetworkDetectorState, NetworkStateError> {
        let Some(encoded) = text.strip_prefix(PREFIX) else {
            let shown: String = text.chars().take_while(|c| *c != ':').take(16).collect();
            return Err(NetworkStateError::Version(shown));
        };
        let compressed = STANDARD
            .decode(encoded.trim_end())
            .map_err(|error| NetworkStateError::Damaged(format!("base64: {error}")))?;
        let mut json = Vec::new();
        flate2::read::DeflateDecoder::new(&compressed[..])
            .read_to_end(&mut json)
            .map_err(|error| NetworkStateError::Damaged(format!("deflate: {error}")))?;
        let loaded: LoadedState = serde_json::from_slice(&json)
            .map_err(|error| NetworkStateError::Damaged(error.to_string()))?;
        if loaded.config != self.config {
            return Err(NetworkStateError::OtherConfiguration);
        }
        Ok(NetworkDetectorState {
            shard: loaded.shard,
            watermark: loaded.watermark,
            next_close_at: loaded.next_close_at,
            flows_seen: loaded.flows_seen,
            suppression: loaded.suppression,
            stats: loaded.stats,
            intel_traffic: loaded.intel_traffic,
            port_scan: loaded.port_scan,
            brute_force: loaded.brute_force,
            exfiltration: loaded.exfiltration,
            beaconing: loaded.beaconing,
        })
    }
}

#[cfg(test)]
mod tests {
    use palisade_model::flow::FlowRecord;

    use super::*;
    use crate::network::generator::{self, GeneratorConfig};
    use crate::network::{NetworkFinding, ThreatIntel};

    fn traffic() -> (Vec<FlowRecord>, ThreatIntel) {
        let config = GeneratorConfig {
            seed: 3,
            background_records: 20_000,
            ..GeneratorConfig::default()
        };
        let mut records = Vec::new();
        let generated = generator::generate(&config, |record| records.push(record.clone()));
        let intel = ThreatIntel::build([("generated", &generated.intel[..])]);
        (records, intel)
    }

    /// A small state touching every detector and both address families, saved by the build
    /// before the compact layout (`tests/data/network-state-pns1.txt`): earlier saved states
    /// must still load and go on to the same findings.
    fn compatibility_flows() -> (Vec<FlowRecord>, Vec<FlowRecord>, ThreatIntel) {
        use palisade_model::flow::FlowAction;
        let base = 1_767_225_600i64;
        let flow = |offset: i64,
                    src: &str,
                    dst: &str,
                    ports: (u16, u16),
                    packets: u64,
                    bytes: u64,
                    action: FlowAction| FlowRecord {
            start: chrono::DateTime::from_timestamp(base + offset, 0).expect("valid"),
            end: chrono::DateTime::from_timestamp(base + offset + 5, 0).expect("valid"),
            src_addr: src.parse().expect("valid"),
            dst_addr: dst.parse().expect("valid"),
            src_port: ports.0,
            dst_port: ports.1,
            protocol: 6,
            packets,
            bytes,
            action,
            ..FlowRecord::default()
        };
        let mut before = Vec::new();
        let mut after = Vec::new();
        for port in 1..=24u16 {
            let part = if port <= 12 { &mut before } else { &mut after };
            part.push(flow(
                i64::from(port),
                "198.51.100.10",
                "10.0.0.5",
                (40_000, port),
                1,
                44,
                FlowAction::Reject,
            ));
            part.push(flow(
                i64::from(port),
                "2001:db8::66",
                "fd00::5",
                (40_001, port),
                1,
                60,
                FlowAction::Reject,
            ));
        }
        for attempt in 0..30i64 {
            let part = if attempt < 15 {
                &mut before
            } else {
                &mut after
            };
            part.push(flow(
                30 + attempt,
                "203.0.113.50",
                "10.0.0.6",
                (50_000 + attempt as u16, 22),
                12,
                3_000,
                FlowAction::Accept,
            ));
        }
        for beat in 0..12i64 {
            let part = if beat < 3 { &mut before } else { &mut after };
            part.push(flow(
                60 + beat * 300,
                "10.0.4.6",
                "203.0.113.90",
                (41_000 + beat as u16, 443),
                8,
                900,
                FlowAction::Accept,
            ));
            part.push(flow(
                61 + beat * 300,
                "fd00::6",
                "2001:db8::90",
                (42_000 + beat as u16, 8443),
                8,
                900,
                FlowAction::Accept,
            ));
            part.push(flow(
                62 + beat * 300,
                "10.0.4.5",
                "203.0.113.80",
                (43_000 + beat as u16, 443),
                400,
                200_000_000,
                FlowAction::Accept,
            ));
        }
        before.push(flow(
            100,
            "10.0.4.7",
            "192.0.2.66",
            (44_000, 443),
            10,
            5_000,
            FlowAction::Accept,
        ));
        after.push(flow(
            200,
            "10.0.4.7",
            "192.0.2.66",
            (44_001, 443),
            10,
            5_000,
            FlowAction::Accept,
        ));
        before.sort_by_key(|record| record.start);
        after.sort_by_key(|record| record.start);
        let listed = [crate::network::IntelIndicator {
            network: "192.0.2.66/32".parse().expect("valid"),
            category: "malware".into(),
            confidence: 90,
        }];
        (
            before,
            after,
            ThreatIntel::build([("fixture", &listed[..])]),
        )
    }

    #[test]
    fn a_state_saved_by_the_earlier_layout_loads_and_goes_on_alike() {
        let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");
        let (before, after, intel) = compatibility_flows();
        let saved = include_str!("../../tests/data/network-state-pns1.txt");
        let mut restored = detectors.restore_state(saved).expect("restores");
        assert_eq!(
            detectors.save_state(&restored),
            saved,
            "same state, same text"
        );
        let mut original = detectors.new_state();
        let mut findings = Vec::new();
        for record in &before {
            detectors.process(&mut original, &intel, record, &mut findings);
        }
        assert_eq!(detectors.save_state(&original), saved);
        assert_eq!(restored.stats(), original.stats());
        let run = |state: &mut NetworkDetectorState| {
            let mut findings: Vec<NetworkFinding> = Vec::new();
            for record in &after {
                detectors.process(state, &intel, record, &mut findings);
            }
            detectors.flush(state, &mut findings);
            findings
        };
        let expected = run(&mut original);
        let types: std::collections::BTreeSet<&str> = expected
            .iter()
            .map(|finding| finding.finding_type.as_str())
            .collect();
        // Every detector, and IPv6 keys as well as IPv4 ones.
        for wanted in [
            "port_scan_vertical",
            "brute_force",
            "beaconing",
            "exfiltration",
        ] {
            assert!(types.contains(wanted), "{wanted} missing from {types:?}");
        }
        assert!(
            types.iter().any(|kind| kind.starts_with("xforce-")),
            "{types:?}"
        );
        assert!(
            expected
                .iter()
                .any(|finding| finding.src_addresses[0].is_ipv6())
        );
        assert!(expected.iter().all(|finding| !finding.evidence.is_empty()));
        assert!(run(&mut restored) == expected);
        assert_eq!(restored.stats(), original.stats());
    }

    #[test]
    fn a_restored_state_goes_on_exactly_like_the_original() {
        let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");
        let (records, intel) = traffic();
        let mut original = detectors.new_state();
        let mut before = Vec::new();
        let (head, tail) = records.split_at(records.len() / 2);
        for record in head {
            detectors.process(&mut original, &intel, record, &mut before);
        }
        let saved = detectors.save_state(&original);
        assert!(saved.starts_with(PREFIX));
        let mut restored = detectors.restore_state(&saved).expect("restores");
        assert_eq!(
            detectors.save_state(&restored),
            saved,
            "same state, same text"
        );
        assert_eq!(restored.stats(), original.stats());
        assert!(
            original
                .stats()
                .iter()
                .any(|(_, stats)| stats.open_keys > 0)
        );

        let run = |state: &mut NetworkDetectorState| {
            let mut findings: Vec<NetworkFinding> = Vec::new();
            for record in tail {
                detectors.process(state, &intel, record, &mut findings);
            }
            detectors.flush(state, &mut findings);
            findings
        };
        let expected = run(&mut original);
        assert!(!expected.is_empty());
        assert!(run(&mut restored) == expected);
        assert_eq!(restored.stats(), original.stats());
    }

    #[test]
    fn other_versions_configurations_and_damage_are_refused() {
        let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");
        let saved = detectors.save_state(&detectors.new_state());
        let mut config = NetworkDetectorConfig::default();
        config.port_scan.window_seconds = 600;
        let other = NetworkDetectors::new(config).expect("valid");
        assert_eq!(
            other
                .restore_state(&saved)
                .expect_err("other configuration"),
            NetworkStateError::OtherConfiguration
        );
        assert_eq!(
            detectors.restore_state("pns9:AAAA").expect_err("version"),
            NetworkStateError::Version("pns9".into())
        );
        assert!(matches!(
            detectors.restore_state("pns1:not base64!"),
            Err(NetworkStateError::Damaged(_))
        ));
        let truncated = &saved[..saved.len() / 2];
        assert!(matches!(
            detectors.restore_state(truncated),
            Err(NetworkStateError::Damaged(_))
        ));
    }

    #[test]
    fn the_saved_state_shrinks_back_when_windows_expire() {
        let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");
        let (records, intel) = traffic();
        let mut state = detectors.new_state();
        let mut findings = Vec::new();
        for record in &records {
            detectors.process(&mut state, &intel, record, &mut findings);
        }
        let busy = detectors.save_state(&state).len();
        let busy_keys: u64 = state.stats().iter().map(|(_, stats)| stats.open_keys).sum();
        eprintln!("saved state while busy: {busy} bytes for {busy_keys} open keys");
        // Eight days of quiet in flow time: windows close, detections and baselines expire
        // (baselines when the next upload window closes, hence one more, small, upload).
        let later = state.watermark().expect("flows seen") + chrono::Duration::days(8);
        let mut upload = records
            .iter()
            .find(|record| {
                record.dst_port == 443
                    && record.bytes < 1_000_000
                    && record.src_addr.to_string().starts_with("10.")
            })
            .expect("an upload")
            .clone();
        upload.start = later;
        upload.end = later;
        detectors.process(&mut state, &intel, &upload, &mut findings);
        detectors.close_windows_until(&mut state, later + chrono::Duration::days(1), &mut findings);
        let quiet = detectors.save_state(&state);
        assert!(
            state.stats().iter().all(|(_, stats)| stats.open_keys == 0),
            "{:?}",
            state.stats()
        );
        assert_eq!(state.baseline_pairs(), 0);
        assert_eq!(state.suppression_entries(), 0);
        assert!(
            quiet.len() < 2_000 && quiet.len() * 20 < busy,
            "{} bytes quiet, {busy} busy",
            quiet.len()
        );
    }
}
