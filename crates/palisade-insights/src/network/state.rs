//! Building blocks shared by the detectors: tumbling windows on flow time, bounded distinct-value
//! sets, evidence buffers, the internal/external address classifier, and the suppression of
//! repeated findings.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use foldhash::fast::FixedState;
use ipnet::IpNet;

use super::FlowContext;
use super::finding::{EvidenceFlow, NetworkFinding};
use super::intel::address_key;

/// Hash maps of detector state. foldhash with a fixed seed: several times faster than SipHash on
/// small keys (addresses, ports), and deterministic so runs over the same input are reproducible.
/// Keys come from flow logs the operator collects, not from a remote party choosing them freely,
/// so HashDoS resistance is not worth SipHash's cost on the hot path.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, FixedState>;
/// Hash sets, as [`FastMap`].
pub(crate) type FastSet<T> = std::collections::HashSet<T, FixedState>;

pub(crate) fn new_map<K, V>() -> FastMap<K, V> {
    FastMap::with_hasher(FixedState::with_seed(0x5ca1ab1e))
}

/// A set of distinct values that stops growing at `cap` (it then only counts that it is full),
/// so one key's state stays bounded whatever the input. Small sets stay in a vector, which is
/// faster than hashing for the one-or-two-values case that dominates.
#[derive(Debug, Clone)]
pub(crate) enum DistinctSet<T> {
    Small(Vec<T>),
    Large(FastSet<T>),
}

const SMALL_SET_LIMIT: usize = 16;

impl<T: Copy + Eq + Hash + Ord> DistinctSet<T> {
    pub(crate) fn new() -> Self {
        Self::Small(Vec::new())
    }

    /// Adds `value` unless the set already holds `cap` values.
    pub(crate) fn insert(&mut self, value: T, cap: usize) {
        match self {
            Self::Small(values) => {
                if values.contains(&value) || values.len() >= cap {
                    return;
                }
                if values.len() < SMALL_SET_LIMIT {
                    values.push(value);
                } else {
                    let mut set = FastSet::with_capacity_and_hasher(
                        SMALL_SET_LIMIT * 2,
                        FixedState::with_seed(7),
                    );
                    set.extend(values.iter().copied());
                    set.insert(value);
                    *self = Self::Large(set);
                }
            }
            Self::Large(set) => {
                if set.len() < cap {
                    set.insert(value);
                }
            }
        }
    }

    pub(crate) fn remove(&mut self, value: &T) {
        match self {
            Self::Small(values) => values.retain(|existing| existing != value),
            Self::Large(set) => {
                set.remove(value);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Small(values) => values.len(),
            Self::Large(set) => set.len(),
        }
    }

    /// The values, ascending, at most `limit` of them.
    pub(crate) fn sorted(&self, limit: usize) -> Vec<T> {
        let mut values: Vec<T> = match self {
            Self::Small(values) => values.clone(),
            Self::Large(set) => set.iter().copied().collect(),
        };
        values.sort_unstable();
        values.truncate(limit);
        values
    }
}

/// Counters every detector keeps per key: flows, rejections, volumes, first and last time, and
/// the first evidence flows.
#[derive(Debug, Clone)]
pub(crate) struct FlowTally {
    pub(crate) flows: u64,
    pub(crate) rejected: u64,
    pub(crate) client_bytes: u64,
    pub(crate) server_bytes: u64,
    pub(crate) client_packets: u64,
    pub(crate) server_packets: u64,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
    pub(crate) protocol: u8,
    /// The first evidence flow, kept inline: most keys only ever see one flow, and an
    /// allocation per key would cost more than the rest of the counting.
    first_evidence: Option<EvidenceFlow>,
    /// The following evidence flows, allocated from the second flow on.
    more_evidence: Vec<EvidenceFlow>,
}

impl FlowTally {
    pub(crate) fn new(flow: &FlowContext<'_>) -> Self {
        Self {
            flows: 0,
            rejected: 0,
            client_bytes: 0,
            server_bytes: 0,
            client_packets: 0,
            server_packets: 0,
            first_seen: flow.start,
            last_seen: flow.end,
            protocol: flow.record.protocol,
            first_evidence: None,
            more_evidence: Vec::new(),
        }
    }

    /// Counts `record`; `reply` says it flows server → client.
    pub(crate) fn add(&mut self, flow: &FlowContext<'_>, reply: bool, evidence_limit: usize) {
        let record = flow.record;
        self.flows += 1;
        if record.action == palisade_model::flow::FlowAction::Reject {
            self.rejected += 1;
        }
        let (forward_bytes, forward_packets) = (record.bytes, record.packets);
        let (backward_bytes, backward_packets) = (
            record.reverse_bytes.unwrap_or(0),
            record.reverse_packets.unwrap_or(0),
        );
        if reply {
            self.server_bytes += forward_bytes;
            self.server_packets += forward_packets;
            self.client_bytes += backward_bytes;
            self.client_packets += backward_packets;
        } else {
            self.client_bytes += forward_bytes;
            self.client_packets += forward_packets;
            self.server_bytes += backward_bytes;
            self.server_packets += backward_packets;
        }
        self.first_seen = self.first_seen.min(flow.start);
        self.last_seen = self.last_seen.max(flow.end);
        if evidence_limit == 0 {
            return;
        }
        if self.first_evidence.is_none() {
            self.first_evidence = Some(EvidenceFlow::from(record));
        } else if self.more_evidence.len() + 1 < evidence_limit {
            if self.more_evidence.is_empty() {
                self.more_evidence.reserve_exact(evidence_limit - 1);
            }
            self.more_evidence.push(EvidenceFlow::from(record));
        }
    }

    /// The evidence flows in arrival order.
    pub(crate) fn evidence(&self) -> Vec<EvidenceFlow> {
        self.first_evidence
            .iter()
            .chain(self.more_evidence.iter())
            .copied()
            .collect()
    }
}

/// Tumbling windows of one detector, keyed by window index (`start / window_seconds`).
///
/// A record lands in the window of its start time. A window closes once the newest flow time seen
/// (the watermark) has passed its end by the allowed lateness; flows for a window that already
/// closed are counted as late and dropped, so state never reopens.
#[derive(Debug)]
pub(crate) struct WindowSet<S> {
    pub(crate) window_seconds: i64,
    open: BTreeMap<i64, S>,
    /// Windows with an index below this have been closed.
    closed_before: i64,
    pub(crate) late_flows: u64,
}

impl<S: Default> WindowSet<S> {
    pub(crate) fn new(window_seconds: u64) -> Self {
        Self {
            window_seconds: i64::try_from(window_seconds.max(1)).unwrap_or(i64::MAX),
            open: BTreeMap::new(),
            closed_before: i64::MIN,
            late_flows: 0,
        }
    }

    /// Returns the state of the window holding `start_seconds`, opening it if needed, or `None`
    /// (and counts a late flow) when that window has closed. The `bool` is `true` when the
    /// window was just opened.
    pub(crate) fn window_for(&mut self, start_seconds: i64) -> Option<(i64, &mut S, bool)> {
        let index = start_seconds.div_euclid(self.window_seconds);
        if index < self.closed_before {
            self.late_flows += 1;
            return None;
        }
        let mut opened = false;
        let state = self.open.entry(index).or_insert_with(|| {
            opened = true;
            S::default()
        });
        Some((index, state, opened))
    }

    /// Removes and returns the oldest window if it may close at `watermark`.
    pub(crate) fn pop_closable(&mut self, watermark: i64, lateness: i64) -> Option<(i64, S)> {
        let (&index, _) = self.open.first_key_value()?;
        if self.window_end(index).saturating_add(lateness) > watermark {
            return None;
        }
        self.pop_oldest()
    }

    /// Removes and returns the oldest window whatever the time (end of input).
    pub(crate) fn pop_oldest(&mut self) -> Option<(i64, S)> {
        let (index, state) = self.open.pop_first()?;
        self.closed_before = self.closed_before.max(index + 1);
        Some((index, state))
    }

    /// When the oldest open window may close, if any is open.
    pub(crate) fn next_close_at(&self, lateness: i64) -> Option<i64> {
        self.open
            .first_key_value()
            .map(|(&index, _)| self.window_end(index).saturating_add(lateness))
    }

    pub(crate) fn window_start(&self, index: i64) -> i64 {
        index.saturating_mul(self.window_seconds)
    }

    pub(crate) fn window_end(&self, index: i64) -> i64 {
        index.saturating_add(1).saturating_mul(self.window_seconds)
    }

    pub(crate) fn open_windows(&self) -> impl Iterator<Item = &S> {
        self.open.values()
    }
}

/// Says whether an address belongs to the monitored (internal) networks.
#[derive(Debug, Clone)]
pub(crate) struct AddressClassifier {
    ranges: Vec<(u128, u128)>,
}

impl AddressClassifier {
    pub(crate) fn new(networks: &[IpNet]) -> Self {
        let ranges = networks
            .iter()
            .map(|network| {
                (
                    address_key(network.network()),
                    address_key(network.broadcast()),
                )
            })
            .collect();
        Self { ranges }
    }

    pub(crate) fn is_internal(&self, key: u128) -> bool {
        self.ranges
            .iter()
            .any(|(start, end)| (*start..=*end).contains(&key))
    }
}

/// `true` when a flow looks like the answer of a server to a client: it leaves a service port
/// (below 1024, or below the destination port when that one is ephemeral, ≥ 32768) towards a
/// higher port. Replies are folded into their connection instead of being counted as
/// connections of their own (else every busy server would "scan" its clients' ephemeral ports).
pub(crate) fn looks_like_reply(src_port: u16, dst_port: u16) -> bool {
    src_port != 0 && src_port < dst_port && (src_port < 1024 || dst_port >= 32_768)
}

/// What makes two detections "the same" for suppression (address keys; 0 for "any").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SuppressionKey {
    pub(crate) client: u128,
    pub(crate) server: u128,
    pub(crate) port: Option<u16>,
}

/// Remembers which (finding type, client, server, port) were reported, so an attack that goes on
/// over several windows is reported once: a repeat within `suppression_seconds` of the previous
/// detection (reported or not) is counted as suppressed instead.
#[derive(Debug, Default)]
pub(crate) struct Suppression {
    last_detected: FastMap<u64, i64>,
}

impl Suppression {
    pub(crate) fn new() -> Self {
        Self {
            last_detected: new_map(),
        }
    }

    /// Returns `true` when the finding should be reported.
    pub(crate) fn admit(
        &mut self,
        finding: &NetworkFinding,
        key: SuppressionKey,
        suppression_seconds: i64,
    ) -> bool {
        let fingerprint = FixedState::with_seed(11).hash_one((
            &finding.finding_type,
            key.client,
            key.server,
            key.port,
        ));
        let window_start = finding.window_start.timestamp();
        let window_end = finding.window_end.timestamp();
        let previous = self.last_detected.insert(fingerprint, window_end);
        !previous.is_some_and(|previous_end| {
            window_start.saturating_sub(previous_end) < suppression_seconds
        })
    }

    /// Forgets detections that ended more than `remembered_for` seconds before `watermark`.
    pub(crate) fn evict(&mut self, watermark: i64, remembered_for: i64) {
        self.last_detected
            .retain(|_, last| watermark.saturating_sub(*last) <= remembered_for);
    }

    pub(crate) fn len(&self) -> usize {
        self.last_detected.len()
    }
}

/// Converts key-space addresses back for findings.
pub(crate) fn addresses(keys: &[u128]) -> Vec<IpAddr> {
    keys.iter()
        .map(|key| super::intel::key_address(*key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_set_grows_into_a_hash_set_and_caps() {
        let mut set = DistinctSet::new();
        for value in 0..100u16 {
            set.insert(value, 50);
            set.insert(value, 50);
        }
        assert_eq!(set.len(), 50);
        set.remove(&3);
        assert_eq!(set.len(), 49);
        assert_eq!(set.sorted(3), [0, 1, 2]);
    }

    #[test]
    fn windows_close_after_lateness_and_drop_late_flows() {
        let mut windows: WindowSet<u32> = WindowSet::new(60);
        *windows.window_for(10).expect("open").1 += 1;
        *windows.window_for(70).expect("open").1 += 1;
        assert_eq!(windows.next_close_at(30), Some(90));
        assert!(windows.pop_closable(89, 30).is_none());
        let (index, count) = windows.pop_closable(90, 30).expect("closable");
        assert_eq!((index, count), (0, 1));
        assert!(windows.window_for(59).is_none());
        assert_eq!(windows.late_flows, 1);
        assert_eq!(windows.pop_oldest().map(|(index, _)| index), Some(1));
    }

    #[test]
    fn reply_heuristic() {
        assert!(looks_like_reply(443, 51_000));
        assert!(looks_like_reply(22, 2000));
        assert!(!looks_like_reply(51_000, 443));
        assert!(!looks_like_reply(40_000, 22));
        assert!(!looks_like_reply(0, 0));
        assert!(!looks_like_reply(5000, 6000));
    }

    #[test]
    fn classifier_covers_both_families() {
        let classifier = AddressClassifier::new(&[
            "10.0.0.0/8".parse().expect("valid"),
            "fd00::/8".parse().expect("valid"),
        ]);
        let key = |text: &str| address_key(text.parse().expect("valid"));
        assert!(classifier.is_internal(key("10.2.3.4")));
        assert!(classifier.is_internal(key("fd00::1")));
        assert!(!classifier.is_internal(key("11.0.0.1")));
        assert!(!classifier.is_internal(key("2001:db8::1")));
    }
}
