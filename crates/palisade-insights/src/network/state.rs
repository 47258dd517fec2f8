//! Building blocks shared by the detectors: tumbling windows on flow time, bounded distinct-value
//! sets, the internal/external address classifier, and the suppression of repeated findings.
//! The per-key tallies, their evidence and the packed keys are in `compact`.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use foldhash::fast::FixedState;
use ipnet::IpNet;
use palisade_model::flow::{address_key, key_address};
use serde::{Deserialize, Serialize};

use super::finding::NetworkFinding;

/// Hash maps of detector state. foldhash with a fixed seed: several times faster than SipHash on
/// small keys (addresses, ports), and deterministic so runs over the same input are reproducible.
/// Keys come from flow logs the operator collects, not from a remote party choosing them freely,
/// so HashDoS resistance is not worth SipHash's cost on the hot path.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, MapHasher>;
/// Hash sets, as [`FastMap`].
pub(crate) type FastSet<T> = std::collections::HashSet<T, MapHasher>;

pub(crate) fn new_map<K, V>() -> FastMap<K, V> {
    FastMap::with_hasher(MapHasher)
}

const MAP_SEED: u64 = 0x5ca1ab1e;

/// The hasher of [`FastMap`]s, as a type that `Default` builds (for deserialising maps).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapHasher;

impl BuildHasher for MapHasher {
    type Hasher = <FixedState as BuildHasher>::Hasher;
    fn build_hasher(&self) -> Self::Hasher {
        FixedState::with_seed(MAP_SEED).build_hasher()
    }
}

impl Default for MapHasher {
    fn default() -> Self {
        Self
    }
}

/// A set of distinct values that stops growing at `cap` (it then only counts that it is full),
/// so one key's state stays bounded whatever the input. Most keys only ever see one value (a
/// host's DNS queries: one port on one server), which is kept inline: no allocation when a key
/// is created, no free when its window closes. Small sets stay in a vector, which is faster than
/// hashing for the few-values case.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DistinctSet<T: Copy + Eq + Hash + Ord> {
    Empty,
    One(T),
    Small(Vec<T>),
    Large(FastSet<T>),
}

/// Written as the plain list of values (sorted, so a state always serialises the same way).
impl<T: Copy + Eq + Hash + Ord + Serialize> Serialize for DistinctSet<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.sorted(usize::MAX).serialize(serializer)
    }
}

impl<'de, T: Copy + Eq + Hash + Ord + Deserialize<'de>> Deserialize<'de> for DistinctSet<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let values: Vec<T> = Vec::deserialize(deserializer)?;
        let mut set = Self::new();
        for value in values {
            set.insert(value, usize::MAX);
        }
        Ok(set)
    }
}

const SMALL_SET_LIMIT: usize = 16;

impl<T: Copy + Eq + Hash + Ord> DistinctSet<T> {
    pub(crate) fn new() -> Self {
        Self::Empty
    }

    /// Adds `value` unless the set already holds `cap` values.
    #[inline]
    pub(crate) fn insert(&mut self, value: T, cap: usize) {
        match self {
            Self::Empty => {
                if cap > 0 {
                    *self = Self::One(value);
                }
            }
            Self::One(existing) => {
                if *existing != value && cap > 1 {
                    let mut values = Vec::with_capacity(4);
                    values.push(*existing);
                    values.push(value);
                    *self = Self::Small(values);
                }
            }
            Self::Small(values) => {
                if values.contains(&value) || values.len() >= cap {
                    return;
                }
                if values.len() < SMALL_SET_LIMIT {
                    values.push(value);
                } else {
                    let mut set = FastSet::with_capacity_and_hasher(SMALL_SET_LIMIT * 2, MapHasher);
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
            Self::Empty => {}
            Self::One(existing) => {
                if existing == value {
                    *self = Self::Empty;
                }
            }
            Self::Small(values) => values.retain(|existing| existing != value),
            Self::Large(set) => {
                set.remove(value);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::One(_) => 1,
            Self::Small(values) => values.len(),
            Self::Large(set) => set.len(),
        }
    }

    /// The values, ascending, at most `limit` of them.
    pub(crate) fn sorted(&self, limit: usize) -> Vec<T> {
        let mut values: Vec<T> = match self {
            Self::Empty => Vec::new(),
            Self::One(value) => vec![*value],
            Self::Small(values) => values.clone(),
            Self::Large(set) => set.iter().copied().collect(),
        };
        values.sort_unstable();
        values.truncate(limit);
        values
    }
}

/// What a detector's per-window state does when its window closes and is kept for reuse: it
/// empties its maps but keeps their capacity, so the next window does not grow them again.
pub(crate) trait Recycle {
    fn clear_for_reuse(&mut self);
}

/// Tumbling windows of one detector, keyed by window index (`start / window_seconds`).
///
/// A record lands in the window of its start time. A window closes once the newest flow time seen
/// (the watermark) has passed its end by the allowed lateness. A flow whose window could already
/// close at the watermark before it (or that a flush closed) is late: counted and dropped, so
/// state never reopens. Lateness depends only on the watermark, never on which windows happen to
/// be open, which is what lets several shards of one stream agree on it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "S: Serialize",
    deserialize = "S: Deserialize<'de> + Default"
))]
pub(crate) struct WindowSet<S> {
    pub(crate) window_seconds: i64,
    /// Open windows by ascending index: one or two at a time, so a vector searched from its
    /// end beats a tree.
    open: Vec<(i64, S)>,
    /// Windows with an index below this were closed by a flush.
    closed_before: i64,
    pub(crate) late_flows: u64,
    /// A closed window's emptied state, kept for the next window to open.
    #[serde(skip)]
    spare: Option<S>,
}

impl<S: Default + Recycle> WindowSet<S> {
    pub(crate) fn new(window_seconds: u64) -> Self {
        Self {
            window_seconds: i64::try_from(window_seconds.max(1)).unwrap_or(i64::MAX),
            open: Vec::new(),
            closed_before: i64::MIN,
            late_flows: 0,
            spare: None,
        }
    }

    /// Returns the state of the window holding `start_seconds`, opening it if needed, or `None`
    /// when that window is closed (at `watermark`, the newest start seen before this flow, with
    /// `lateness`); `count_late` says whether this call counts such a flow as late (a flow
    /// visits some detectors twice, for keys of two shards). The `bool` is `true` when the
    /// window was just opened.
    #[inline]
    pub(crate) fn window_for(
        &mut self,
        start_seconds: i64,
        watermark: i64,
        lateness: i64,
        count_late: bool,
    ) -> Option<(i64, &mut S, bool)> {
        let index = start_seconds.div_euclid(self.window_seconds);
        if index < self.closed_before
            || self.window_end(index).saturating_add(lateness) <= watermark
        {
            if count_late {
                self.late_flows += 1;
            }
            return None;
        }
        // Flows come roughly in time order: the window is most likely the newest.
        let mut position = self.open.len();
        while position > 0 && self.open[position - 1].0 > index {
            position -= 1;
        }
        let opened = !(position > 0 && self.open[position - 1].0 == index);
        if opened {
            let state = self.spare.take().unwrap_or_default();
            self.open.insert(position, (index, state));
            position += 1;
        }
        Some((index, &mut self.open[position - 1].1, opened))
    }

    /// Removes and returns the oldest window if it may close at `watermark` (every window when
    /// `watermark` is `i64::MAX`, the end of input).
    pub(crate) fn pop_closable(&mut self, watermark: i64, lateness: i64) -> Option<(i64, S)> {
        let index = self.open.first()?.0;
        if watermark != i64::MAX && self.window_end(index).saturating_add(lateness) > watermark {
            return None;
        }
        Some(self.open.remove(0))
    }

    /// Marks every window up to the one holding `watermark` closed (a flush: no later flow may
    /// reopen them). Every open window lies there, since flows open windows at their start.
    pub(crate) fn close_through(&mut self, watermark: i64) {
        if watermark != i64::MIN {
            let index = watermark.div_euclid(self.window_seconds);
            self.closed_before = self.closed_before.max(index.saturating_add(1));
        }
    }

    /// Takes back a closed window's state, emptied, for the next window to reuse.
    pub(crate) fn recycle(&mut self, mut state: S) {
        if self.spare.is_none() {
            state.clear_for_reuse();
            self.spare = Some(state);
        }
    }

    /// When the oldest open window may close, if any is open.
    pub(crate) fn next_close_at(&self, lateness: i64) -> Option<i64> {
        self.open
            .first()
            .map(|(index, _)| self.window_end(*index).saturating_add(lateness))
    }

    pub(crate) fn window_start(&self, index: i64) -> i64 {
        index.saturating_mul(self.window_seconds)
    }

    pub(crate) fn window_end(&self, index: i64) -> i64 {
        index.saturating_add(1).saturating_mul(self.window_seconds)
    }

    pub(crate) fn open_windows(&self) -> impl Iterator<Item = &S> {
        self.open.iter().map(|(_, state)| state)
    }
}

/// Serialises a map as a sequence of `[key, value]` pairs (JSON object keys must be strings;
/// detector keys are tuples of numbers).
pub(crate) mod pairs {
    use std::hash::{BuildHasher, Hash};

    use serde::de::{Deserialize, Deserializer};
    use serde::ser::{Serialize, SerializeSeq, Serializer};

    /// A map that can be written and read as pairs.
    pub(crate) trait PairMap<K, V>: Default {
        fn pairs(&self) -> Vec<(&K, &V)>;
        fn put(&mut self, key: K, value: V);
    }

    impl<K: Eq + Hash + Ord, V, H: BuildHasher + Default> PairMap<K, V>
        for std::collections::HashMap<K, V, H>
    {
        fn pairs(&self) -> Vec<(&K, &V)> {
            // Sorted, so the same state always serialises to the same bytes.
            let mut pairs: Vec<(&K, &V)> = self.iter().collect();
            pairs.sort_unstable_by(|left, right| left.0.cmp(right.0));
            pairs
        }
        fn put(&mut self, key: K, value: V) {
            self.insert(key, value);
        }
    }

    pub(crate) fn serialize<M, K, V, S>(map: &M, serializer: S) -> Result<S::Ok, S::Error>
    where
        M: PairMap<K, V>,
        K: Serialize,
        V: Serialize,
        S: Serializer,
    {
        let pairs = map.pairs();
        let mut sequence = serializer.serialize_seq(Some(pairs.len()))?;
        for pair in pairs {
            sequence.serialize_element(&pair)?;
        }
        sequence.end()
    }

    pub(crate) fn deserialize<'de, M, K, V, D>(deserializer: D) -> Result<M, D::Error>
    where
        M: PairMap<K, V>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let pairs: Vec<(K, V)> = Vec::deserialize(deserializer)?;
        let mut map = M::default();
        for (key, value) in pairs {
            map.put(key, value);
        }
        Ok(map)
    }
}

/// Says whether an address belongs to the monitored (internal) networks.
///
/// Every flow asks twice, so IPv4 addresses first look at a table by their first octet, which
/// answers alone unless a network boundary falls inside that octet's /8.
#[derive(Debug, Clone)]
pub(crate) struct AddressClassifier {
    ranges: Vec<(u128, u128)>,
    /// Per first octet of an IPv4 address: `OUTSIDE`, `INSIDE` or `MIXED` (look at the ranges).
    by_first_octet: [u8; 256],
}

const OUTSIDE: u8 = 0;
const INSIDE: u8 = 1;
const MIXED: u8 = 2;

impl AddressClassifier {
    pub(crate) fn new(networks: &[IpNet]) -> Self {
        let ranges: Vec<(u128, u128)> = networks
            .iter()
            .map(|network| {
                (
                    address_key(network.network()),
                    address_key(network.broadcast()),
                )
            })
            .collect();
        let mut by_first_octet = [OUTSIDE; 256];
        for (octet, class) in by_first_octet.iter_mut().enumerate() {
            let low = address_key(IpAddr::V4(std::net::Ipv4Addr::new(octet as u8, 0, 0, 0)));
            let high = low | 0x00ff_ffff;
            if ranges
                .iter()
                .any(|(start, end)| *start <= low && high <= *end)
            {
                *class = INSIDE;
            } else if ranges
                .iter()
                .any(|(start, end)| *start <= high && low <= *end)
            {
                *class = MIXED;
            }
        }
        Self {
            ranges,
            by_first_octet,
        }
    }

    #[inline]
    pub(crate) fn is_internal(&self, key: u128) -> bool {
        if key >> 32 == 0xffff {
            match self.by_first_octet[((key >> 24) & 0xff) as usize] {
                OUTSIDE => return false,
                INSIDE => return true,
                _ => {}
            }
        }
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
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Suppression {
    #[serde(with = "pairs")]
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
    keys.iter().map(|key| key_address(*key)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_set_keeps_one_value_inline_and_honours_small_caps() {
        let mut set = DistinctSet::new();
        set.insert(7u16, 5);
        set.insert(7, 5);
        assert_eq!(set, DistinctSet::One(7));
        set.remove(&7);
        assert_eq!(set.len(), 0);
        set.insert(3, 1);
        set.insert(4, 1);
        assert_eq!(set.sorted(10), [3], "a cap of one keeps the first value");
        set.insert(9, 2);
        set.insert(1, 2);
        assert_eq!(set.sorted(10), [3, 9]);
        let mut none = DistinctSet::new();
        none.insert(1u16, 0);
        assert_eq!(none.len(), 0);
    }

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

    impl Recycle for u32 {
        fn clear_for_reuse(&mut self) {
            *self = 0;
        }
    }

    #[test]
    fn windows_close_after_lateness_and_drop_late_flows() {
        let mut windows: WindowSet<u32> = WindowSet::new(60);
        *windows.window_for(10, i64::MIN, 30, true).expect("open").1 += 1;
        *windows.window_for(70, 10, 30, true).expect("open").1 += 1;
        assert_eq!(windows.next_close_at(30), Some(90));
        assert!(windows.pop_closable(89, 30).is_none());
        let (index, count) = windows.pop_closable(90, 30).expect("closable");
        assert_eq!((index, count), (0, 1));
        windows.recycle(count);
        // Late at watermark 90 whether or not its window was ever open.
        assert!(windows.window_for(59, 90, 30, true).is_none());
        assert!(windows.window_for(59, 90, 30, false).is_none());
        assert_eq!(windows.late_flows, 1);
        // The recycled state comes back emptied.
        let (_, reused, opened) = windows.window_for(130, 90, 30, true).expect("open");
        assert_eq!((*reused, opened), (0, true));
        assert_eq!(
            windows.pop_closable(i64::MAX, 30).map(|(index, _)| index),
            Some(1)
        );
        windows.close_through(130);
        assert!(windows.window_for(125, 130, 0, true).is_none());
        assert!(windows.window_for(180, 130, 0, true).is_some());
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
        // Boundaries inside a first octet go to the ranges.
        let classifier = AddressClassifier::new(&[
            "172.16.0.0/12".parse().expect("valid"),
            "0.0.0.0/1".parse().expect("valid"),
        ]);
        assert!(classifier.is_internal(key("172.31.255.255")));
        assert!(!classifier.is_internal(key("172.32.0.0")));
        assert!(!classifier.is_internal(key("172.15.255.255")));
        assert!(classifier.is_internal(key("127.255.255.255")));
        assert!(!classifier.is_internal(key("128.0.0.0")));
    }
}
