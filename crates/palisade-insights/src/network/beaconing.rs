//! Beaconing: an internal host opening connections to the same external peer and port at regular
//! intervals (malware checking in with its command-and-control server).
//!
//! Per (internal source, external destination, destination port) and window, the detector keeps
//! the start time and source port of each new connection (a record with a source port already
//! seen is the same connection continuing across aggregation intervals, not a new contact). At the
//! window's close, with at least `min_connections` connections, it takes the gaps between them:
//! when the median gap lies between `min_interval_seconds` and `max_interval_seconds` and at least
//! `min_regular_fraction` of the gaps are within `tolerance_ratio` of the median (or 2 s,
//! whichever is larger), the pair is reported. Random (human or Poisson-like) traffic has about
//! 7 % of its gaps that close to the median, so it never qualifies.

use palisade_model::finding::Severity;
use palisade_model::flow::FlowDirection;
use serde::{Deserialize, Serialize};

use super::finding::{DetectorKind, Endpoint};
use super::intel::key_address;
use super::state::{FastMap, FlowTally, Recycle, WindowSet, new_map, pairs};
use super::{
    Emitter, FlowContext, NetworkConfigError, SuppressionKey, WindowClock, build_finding,
    config_error, require_positive,
};

/// Beaconing detector settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeaconingConfig {
    /// Default `true`.
    pub enabled: bool,
    /// Window length, seconds. Default 10800 (3 h), long enough for 8 beacons 20 min apart.
    pub window_seconds: u64,
    /// Connections in a window needed to judge regularity. Default 8.
    pub min_connections: u64,
    /// Shortest median gap reported, seconds (faster is polling, not beaconing). Default 20.
    pub min_interval_seconds: u64,
    /// Longest median gap reported, seconds. Default 3600.
    pub max_interval_seconds: u64,
    /// How close to the median a gap must be, as a fraction of it. Default 0.1.
    pub tolerance_ratio: f64,
    /// Share of gaps that must be that close. Default 0.8.
    pub min_regular_fraction: f64,
    /// Destination ports never considered (DNS and NTP are periodic by design). Default [53, 123].
    pub ignored_ports: Vec<u16>,
    /// Connections remembered per pair and window (memory bound). Default 1024.
    pub max_tracked_connections: usize,
}

impl Default for BeaconingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: 3 * 3600,
            min_connections: 8,
            min_interval_seconds: 20,
            max_interval_seconds: 3600,
            tolerance_ratio: 0.1,
            min_regular_fraction: 0.8,
            ignored_ports: vec![53, 123],
            max_tracked_connections: 1024,
        }
    }
}

impl BeaconingConfig {
    pub(crate) fn validate(&self) -> Result<(), NetworkConfigError> {
        require_positive("beaconing.window_seconds", self.window_seconds)?;
        if self.min_connections < 3 {
            return Err(config_error(
                "beaconing.min_connections",
                "must be at least 3",
            ));
        }
        if !(0.0..=1.0).contains(&self.tolerance_ratio) {
            return Err(config_error(
                "beaconing.tolerance_ratio",
                "must be between 0 and 1",
            ));
        }
        if !(0.0..=1.0).contains(&self.min_regular_fraction) {
            return Err(config_error(
                "beaconing.min_regular_fraction",
                "must be between 0 and 1",
            ));
        }
        if self.max_interval_seconds < self.min_interval_seconds {
            return Err(config_error(
                "beaconing.max_interval_seconds",
                "must be at least min_interval_seconds",
            ));
        }
        require_positive(
            "beaconing.max_tracked_connections",
            self.max_tracked_connections as u64,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Contacts {
    tally: FlowTally,
    /// (start time, source port) of the first connection, inline (most pairs see one).
    first_connection: (i64, u16),
    /// (start time, source port) of the following connections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    more_connections: Vec<(i64, u16)>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BeaconWindow {
    /// (internal source, external destination, port) → connections.
    #[serde(with = "pairs")]
    contacts: FastMap<(u128, u128, u16), Contacts>,
}

impl Default for BeaconWindow {
    fn default() -> Self {
        Self {
            contacts: new_map(),
        }
    }
}

impl Recycle for BeaconWindow {
    fn clear_for_reuse(&mut self) {
        self.contacts.clear();
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BeaconingState {
    pub(crate) windows: WindowSet<BeaconWindow>,
}

impl BeaconingState {
    pub(crate) fn new(config: &BeaconingConfig) -> Self {
        Self {
            windows: WindowSet::new(config.window_seconds),
        }
    }

    pub(crate) fn open_keys(&self) -> usize {
        self.windows
            .open_windows()
            .map(|window| window.contacts.len())
            .sum()
    }

    #[inline]
    pub(crate) fn observe(
        &mut self,
        config: &BeaconingConfig,
        flow: &FlowContext,
        evidence: usize,
        clock: WindowClock,
    ) -> (bool, i64) {
        let record = &flow.record;
        if !flow.src_internal
            || flow.dst_internal
            || flow.reply
            || config.ignored_ports.contains(&record.dst_port)
        {
            return (false, i64::MAX);
        }
        let Some((index, window, opened)) =
            self.windows
                .window_for(record.start, clock.watermark, clock.lateness, true)
        else {
            return (false, i64::MAX);
        };
        let contacts = window
            .contacts
            .entry((record.src, record.dst, record.dst_port))
            .or_insert_with(|| Contacts {
                tally: FlowTally::new(flow),
                first_connection: (record.start, record.src_port),
                more_connections: Vec::new(),
            });
        if contacts.tally.flows > 0
            && contacts.more_connections.len() + 1 < config.max_tracked_connections
        {
            contacts
                .more_connections
                .push((record.start, record.src_port));
        }
        contacts.tally.add(flow, false, evidence);
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
        config: &BeaconingConfig,
        watermark: i64,
        lateness: i64,
        emitter: &mut Emitter<'_>,
    ) {
        while let Some((index, mut window)) = self.windows.pop_closable(watermark, lateness) {
            let bounds = (
                self.windows.window_start(index),
                self.windows.window_end(index),
            );
            for ((source, destination, port), contacts) in window.contacts.drain() {
                if (contacts.more_connections.len() as u64 + 1) < config.min_connections {
                    continue;
                }
                let mut connections = contacts.more_connections;
                connections.push(contacts.first_connection);
                let Some(regularity) = regularity(config, connections) else {
                    continue;
                };
                let (source_address, destination_address) =
                    (key_address(source), key_address(destination));
                let summary = format!(
                    "{source_address} contacted {destination_address} port {port} {} times about every {} s ({:.0} % of gaps within tolerance)",
                    regularity.connections,
                    regularity.median_gap,
                    regularity.regular_fraction * 100.0
                );
                let mut finding = build_finding(
                    "beaconing".to_owned(),
                    DetectorKind::Beaconing,
                    Severity::Medium,
                    summary,
                    FlowDirection::Outbound,
                    Endpoint {
                        address: source_address,
                        port: None,
                    },
                    Endpoint {
                        address: destination_address,
                        port: Some(port),
                    },
                    &contacts.tally,
                    bounds,
                );
                finding.distinct_count = Some(regularity.connections);
                finding.interval_seconds = Some(regularity.median_gap);
                emitter.emit(
                    finding,
                    SuppressionKey {
                        client: source,
                        server: destination,
                        port: Some(port),
                    },
                    (source, destination, u32::from(port)),
                );
            }
            self.windows.recycle(window);
        }
    }
}

struct Regularity {
    connections: u64,
    median_gap: u64,
    regular_fraction: f64,
}

/// Decides whether connection times are regular; `None` when they are not (or too few).
fn regularity(config: &BeaconingConfig, mut connections: Vec<(i64, u16)>) -> Option<Regularity> {
    // One entry per connection (first record of each source port), in time order.
    connections.sort_unstable_by_key(|(start, port)| (*port, *start));
    connections.dedup_by_key(|(_, port)| *port);
    let mut starts: Vec<i64> = connections.iter().map(|(start, _)| *start).collect();
    starts.sort_unstable();
    starts.dedup();
    if (starts.len() as u64) < config.min_connections {
        return None;
    }
    let mut gaps: Vec<i64> = starts.windows(2).map(|pair| pair[1] - pair[0]).collect();
    gaps.sort_unstable();
    let median_gap = gaps[gaps.len() / 2];
    let median = u64::try_from(median_gap).ok()?;
    if median < config.min_interval_seconds || median > config.max_interval_seconds {
        return None;
    }
    let tolerance = (config.tolerance_ratio * median as f64).max(2.0);
    let regular = gaps
        .iter()
        .filter(|gap| ((**gap - median_gap) as f64).abs() <= tolerance)
        .count();
    let regular_fraction = regular as f64 / gaps.len() as f64;
    (regular_fraction >= config.min_regular_fraction).then_some(Regularity {
        connections: starts.len() as u64,
        median_gap: median,
        regular_fraction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(starts: &[i64]) -> Vec<(i64, u16)> {
        starts
            .iter()
            .enumerate()
            .map(|(index, start)| (*start, 40_000 + index as u16))
            .collect()
    }

    #[test]
    fn regular_gaps_qualify_and_random_ones_do_not() {
        let config = BeaconingConfig::default();
        let regular: Vec<i64> = (0..12).map(|step| step * 300 + (step % 3) - 1).collect();
        let found = regularity(&config, times(&regular)).expect("regular");
        assert_eq!(found.connections, 12);
        assert!(
            (298..=302).contains(&found.median_gap),
            "{}",
            found.median_gap
        );
        let irregular = [0, 40, 400, 460, 1500, 1620, 2600, 2610, 4000, 4700];
        assert!(regularity(&config, times(&irregular)).is_none());
    }

    #[test]
    fn one_long_connection_is_not_a_beacon() {
        let config = BeaconingConfig::default();
        let same_port: Vec<(i64, u16)> = (0..20).map(|step| (step * 60, 50_000)).collect();
        assert!(regularity(&config, same_port).is_none());
    }

    #[test]
    fn too_fast_is_polling() {
        let config = BeaconingConfig::default();
        let fast: Vec<i64> = (0..30).map(|step| step * 5).collect();
        assert!(regularity(&config, times(&fast)).is_none());
    }
}
