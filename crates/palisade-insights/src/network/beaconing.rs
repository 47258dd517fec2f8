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

use super::compact::{EvidenceArena, FlowTally, KeyedMap, NO_LINK, SavedTally};
use super::finding::{DetectorKind, Endpoint};
use super::intel::key_address;
use super::state::{Recycle, WindowSet};
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

/// One pair's connections in a window: 80 bytes, the connection times in the window's arena.
#[derive(Debug, Clone, PartialEq)]
struct Contacts {
    tally: FlowTally,
    /// The newest entry of `BeaconWindow::connections` of this pair, or [`NO_LINK`].
    last_connection: u32,
    /// Connections remembered (at most `max_tracked_connections`).
    connections: u32,
}

/// One window: the connections per (internal source, external destination, port), their
/// evidence, and the (start time, source port, previous entry of the same pair) of every
/// remembered connection, appended in arrival order like the evidence (see `compact`).
#[derive(Debug, Default)]
pub(crate) struct BeaconWindow {
    contacts: KeyedMap<(u128, u128, u16), Contacts>,
    connections: Vec<(i64, u16, u32)>,
    evidence: EvidenceArena,
}

impl BeaconWindow {
    /// Remembers a connection of the pair `key` (restoring a saved state).
    fn remember(&mut self, key: (u128, u128, u16), start: i64, source_port: u16) {
        if self.connections.len() >= NO_LINK as usize {
            return;
        }
        if let Some(contacts) = self.contacts.get_mut(&key) {
            self.connections
                .push((start, source_port, contacts.last_connection));
            contacts.last_connection = (self.connections.len() - 1) as u32;
            contacts.connections += 1;
        }
    }
}

/// The (start, source port) of the connections of the chain ending at `last`, newest first.
fn connections_of(connections: &[(i64, u16, u32)], mut last: u32) -> Vec<(i64, u16)> {
    let mut chain = Vec::new();
    while let Some((start, port, previous)) = connections.get(last as usize) {
        chain.push((*start, *port));
        last = *previous;
    }
    chain
}

impl Recycle for BeaconWindow {
    fn clear_for_reuse(&mut self) {
        self.contacts.clear();
        self.connections.clear();
        self.evidence.clear();
    }
}

/// [`Contacts`] as the saved state writes it (the layout of earlier builds).
#[derive(Serialize, Deserialize)]
struct SavedContacts {
    tally: SavedTally,
    /// (start time, source port) of the first connection.
    first_connection: (i64, u16),
    /// (start time, source port) of the following connections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    more_connections: Vec<(i64, u16)>,
}

/// Saved as `{"contacts": [[key, contacts]…]}`.
#[derive(Serialize, Deserialize)]
struct SavedBeaconWindow {
    contacts: Vec<((u128, u128, u16), SavedContacts)>,
}

impl Serialize for BeaconWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let contacts = self
            .contacts
            .sorted()
            .into_iter()
            .map(|(key, contacts)| {
                let mut connections = connections_of(&self.connections, contacts.last_connection);
                connections.reverse();
                let mut connections = connections.into_iter();
                let first_connection = connections.next().unwrap_or_default();
                let saved = SavedContacts {
                    tally: contacts.tally.saved(&self.evidence),
                    first_connection,
                    more_connections: connections.collect(),
                };
                (key, saved)
            })
            .collect();
        SavedBeaconWindow { contacts }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for BeaconWindow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = SavedBeaconWindow::deserialize(deserializer)?;
        let mut window = Self::default();
        for (key, contacts) in saved.contacts {
            let tally = FlowTally::restored(contacts.tally, &mut window.evidence);
            window.contacts.insert(
                key,
                Contacts {
                    tally,
                    last_connection: NO_LINK,
                    connections: 0,
                },
            );
            for (start, port) in
                std::iter::once(contacts.first_connection).chain(contacts.more_connections)
            {
                window.remember(key, start, port);
            }
        }
        Ok(window)
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
        let key = (record.src, record.dst, record.dst_port);
        let contacts = window.contacts.get_or_insert_with(key, || Contacts {
            tally: FlowTally::new(flow),
            last_connection: NO_LINK,
            connections: 0,
        });
        contacts
            .tally
            .add(flow, false, evidence, &mut window.evidence);
        // The arena holds fewer than 2³² connections: more than a window's flows could ever be
        // held in memory.
        if (contacts.connections as usize) < config.max_tracked_connections
            && window.connections.len() < NO_LINK as usize
        {
            window
                .connections
                .push((record.start, record.src_port, contacts.last_connection));
            contacts.last_connection = (window.connections.len() - 1) as u32;
            contacts.connections += 1;
        }
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
                if u64::from(contacts.connections) < config.min_connections {
                    continue;
                }
                let connections = connections_of(&window.connections, contacts.last_connection);
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
                    contacts.tally.evidence(&window.evidence),
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

    /// A map entry (packed key and contacts) stays at 96 bytes (see `compact`).
    #[test]
    fn contact_entries_stay_small() {
        assert!(std::mem::size_of::<(u128, Contacts)>() <= 96);
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
