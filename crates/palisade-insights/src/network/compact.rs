//! The memory layout of the detectors' per-window state, and why it is what it is.
//!
//! # The detectors are memory-bound
//! The long windows (exfiltration 1 h, beaconing 3 h, threat intel 1 h) hold hundreds of
//! thousands of (host, peer) keys each on a busy network, far more than the caches, so nearly
//! every flow costs a miss to DRAM per map it touches, and how many cache lines a map entry
//! spans decides the speed more than the instructions do. Two things made entries large: keys of
//! 128-bit address pairs (32–48 bytes) and the evidence flows kept in the entry (one inline
//! [`CompactFlow`] of 96 bytes plus a vector), together about 250 bytes, four cache lines.
//!
//! # Compact keys: [`KeyedMap`]
//! Almost all traffic is IPv4, so a [`KeyedMap`] keeps two maps: keys whose addresses are all
//! IPv4 packed into one machine word ([`PackedKey::Narrow`]: 8 bytes for a pair, 16 for a pair
//! and a port), and the rest (IPv6) under their full key. Callers see the full key only; the
//! packing is exact and reversible, so closing a window sees the same keys as before.
//!
//! # Evidence out of the entries: [`EvidenceArena`]
//! Each window owns an arena of the flows its keys keep as evidence. A [`FlowTally`] holds only the
//! index of its newest evidence link; links point back to the previous one of the same tally, so
//! storing evidence only ever appends to the arena (sequential writes, no miss on an old
//! link), and the chain is walked, and reversed into arrival order, only for the few keys that
//! become findings (or when the state is saved). One flow that several keys of a window keep
//! (a probe counts towards a vertical, a horizontal and a distributed scan) is stored once. The
//! arena is emptied, keeping its capacity, when its window closes. With these two changes an
//! exfiltration entry is 80 bytes (key and tally) instead of about 240.
//!
//! # Saved state
//! The saved format (`pns1:`, see `snapshot`) predates this layout and is kept: a tally is
//! written as before, with its evidence flows inline ([`SavedTally`]), and read back into an
//! arena, so states saved by earlier builds still load and a state saves to the same text.

use std::hash::Hash;

use chrono::{DateTime, Utc};
use palisade_model::flow::{CompactFlow, FlowAction, key_address};
use serde::{Deserialize, Serialize};

use super::FlowContext;
use super::finding::EvidenceFlow;
use super::state::{FastMap, new_map};

/// "No link": the end of an evidence or connection chain.
pub(crate) const NO_LINK: u32 = u32::MAX;

/// The IPv4 address inside an address key (`::ffff:a.b.c.d`), if it is one.
#[inline]
pub(crate) fn ipv4_of(key: u128) -> Option<u32> {
    (key >> 32 == 0xffff).then_some(key as u32)
}

/// The address key of an IPv4 address.
#[inline]
pub(crate) fn ipv4_key(address: u32) -> u128 {
    0xffff_u128 << 32 | u128::from(address)
}

/// A detector key that packs into a smaller one when its addresses are IPv4.
pub(crate) trait PackedKey: Copy + Eq + Hash + Ord {
    /// The packed form.
    type Narrow: Copy + Eq + Hash;
    /// The packed form of `self`, or `None` when an address is IPv6.
    fn pack(self) -> Option<Self::Narrow>;
    /// The key `narrow` was packed from.
    fn unpack(narrow: Self::Narrow) -> Self;
}

/// One address (a target).
impl PackedKey for u128 {
    type Narrow = u32;
    #[inline]
    fn pack(self) -> Option<u32> {
        ipv4_of(self)
    }
    #[inline]
    fn unpack(narrow: u32) -> Self {
        ipv4_key(narrow)
    }
}

/// (source, destination): 8 bytes.
impl PackedKey for (u128, u128) {
    type Narrow = u64;
    #[inline]
    fn pack(self) -> Option<u64> {
        Some(u64::from(ipv4_of(self.0)?) << 32 | u64::from(ipv4_of(self.1)?))
    }
    #[inline]
    fn unpack(narrow: u64) -> Self {
        (ipv4_key((narrow >> 32) as u32), ipv4_key(narrow as u32))
    }
}

/// (source, destination, port): 16 bytes.
impl PackedKey for (u128, u128, u16) {
    type Narrow = u128;
    #[inline]
    fn pack(self) -> Option<u128> {
        Some(
            u128::from(ipv4_of(self.0)?) << 64
                | u128::from(ipv4_of(self.1)?) << 32
                | u128::from(self.2),
        )
    }
    #[inline]
    fn unpack(narrow: u128) -> Self {
        (
            ipv4_key((narrow >> 64) as u32),
            ipv4_key((narrow >> 32) as u32),
            narrow as u16,
        )
    }
}

/// (source, port, protocol): 8 bytes.
impl PackedKey for (u128, u16, u8) {
    type Narrow = u64;
    #[inline]
    fn pack(self) -> Option<u64> {
        Some(u64::from(ipv4_of(self.0)?) << 32 | u64::from(self.1) << 8 | u64::from(self.2))
    }
    #[inline]
    fn unpack(narrow: u64) -> Self {
        (
            ipv4_key((narrow >> 32) as u32),
            (narrow >> 8) as u16,
            narrow as u8,
        )
    }
}

/// (our address, listed address, outbound?): 16 bytes.
impl PackedKey for (u128, u128, bool) {
    type Narrow = u128;
    #[inline]
    fn pack(self) -> Option<u128> {
        Some(
            u128::from(ipv4_of(self.0)?) << 64
                | u128::from(ipv4_of(self.1)?) << 32
                | u128::from(self.2),
        )
    }
    #[inline]
    fn unpack(narrow: u128) -> Self {
        (
            ipv4_key((narrow >> 64) as u32),
            ipv4_key((narrow >> 32) as u32),
            narrow & 1 == 1,
        )
    }
}

/// A map from detector keys to values, IPv4 keys packed (see the module documentation).
#[derive(Debug)]
pub(crate) struct KeyedMap<K: PackedKey, V> {
    narrow: FastMap<K::Narrow, V>,
    wide: FastMap<K, V>,
}

impl<K: PackedKey, V> Default for KeyedMap<K, V> {
    fn default() -> Self {
        Self {
            narrow: new_map(),
            wide: new_map(),
        }
    }
}

impl<K: PackedKey, V> KeyedMap<K, V> {
    /// The value of `key`, inserted with `make` when absent.
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        match key.pack() {
            Some(narrow) => self.narrow.entry(narrow).or_insert_with(make),
            None => self.wide.entry(key).or_insert_with(make),
        }
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match key.pack() {
            Some(narrow) => self.narrow.get_mut(&narrow),
            None => self.wide.get_mut(key),
        }
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        match key.pack() {
            Some(narrow) => self.narrow.insert(narrow, value),
            None => self.wide.insert(key, value),
        };
    }

    pub(crate) fn len(&self) -> usize {
        self.narrow.len() + self.wide.len()
    }

    /// Empties the map, keeping its capacity.
    pub(crate) fn clear(&mut self) {
        self.narrow.clear();
        self.wide.clear();
    }

    /// Takes every entry out (in no particular order), keeping the capacity.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (K, V)> + '_ {
        self.narrow
            .drain()
            .map(|(narrow, value)| (K::unpack(narrow), value))
            .chain(self.wide.drain())
    }

    /// The entries sorted by key (so a saved state is always the same text).
    pub(crate) fn sorted(&self) -> Vec<(K, &V)> {
        let mut entries: Vec<(K, &V)> = self
            .narrow
            .iter()
            .map(|(narrow, value)| (K::unpack(*narrow), value))
            .chain(self.wide.iter().map(|(key, value)| (*key, value)))
            .collect();
        entries.sort_unstable_by_key(|(key, _)| *key);
        entries
    }
}

/// The evidence flows of one window's tallies (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct EvidenceArena {
    /// Each stored flow once.
    flows: Vec<CompactFlow>,
    /// (index into `flows`, previous link of the same tally or [`NO_LINK`]).
    links: Vec<(u32, u32)>,
}

impl EvidenceArena {
    pub(crate) fn clear(&mut self) {
        self.flows.clear();
        self.links.clear();
    }

    /// Appends a link to `record` after `previous`; returns the new link, or `previous` when the
    /// arena is full (2³² links: more than a window's flows could ever be held in memory).
    #[inline]
    fn push(&mut self, record: &CompactFlow, previous: u32) -> u32 {
        if self.links.len() >= NO_LINK as usize {
            return previous;
        }
        // Consecutive tallies of one flow share its copy; an equal flow is the same evidence.
        if self.flows.last() != Some(record) {
            self.flows.push(*record);
        }
        let link = self.links.len() as u32;
        self.links.push(((self.flows.len() - 1) as u32, previous));
        link
    }

    /// The flows of the chain ending at `last`, oldest first.
    fn chain(&self, mut last: u32) -> Vec<&CompactFlow> {
        let mut flows = Vec::new();
        while let Some((flow, previous)) = self.links.get(last as usize) {
            flows.push(&self.flows[*flow as usize]);
            last = *previous;
        }
        flows.reverse();
        flows
    }
}

/// Counters every detector keeps per key: flows, rejections, volumes, first and last time, and
/// the first evidence flows (in the window's [`EvidenceArena`], turned into [`EvidenceFlow`]s only
/// for a finding). 72 bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FlowTally {
    pub(crate) flows: u64,
    pub(crate) rejected: u64,
    pub(crate) client_bytes: u64,
    pub(crate) server_bytes: u64,
    pub(crate) client_packets: u64,
    pub(crate) server_packets: u64,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
    /// The newest evidence link in the arena, or [`NO_LINK`].
    last_evidence: u32,
    /// Evidence flows kept (at most `evidence_flows`, which is at most 1000).
    evidence_len: u16,
    pub(crate) protocol: u8,
}

impl FlowTally {
    pub(crate) fn new(flow: &FlowContext) -> Self {
        Self {
            flows: 0,
            rejected: 0,
            client_bytes: 0,
            server_bytes: 0,
            client_packets: 0,
            server_packets: 0,
            first_seen: flow.record.start,
            last_seen: flow.record.end,
            last_evidence: NO_LINK,
            evidence_len: 0,
            protocol: flow.record.protocol,
        }
    }

    /// Counts `record`; `reply` says it flows server → client. The first `evidence_limit` flows
    /// go to `arena` as evidence.
    #[inline]
    pub(crate) fn add(
        &mut self,
        flow: &FlowContext,
        reply: bool,
        evidence_limit: usize,
        arena: &mut EvidenceArena,
    ) {
        let record = &flow.record;
        self.flows += 1;
        if record.action == FlowAction::Reject {
            self.rejected += 1;
        }
        if reply {
            self.server_bytes += record.bytes;
            self.server_packets += record.packets;
            self.client_bytes += record.reverse_bytes;
            self.client_packets += record.reverse_packets;
        } else {
            self.client_bytes += record.bytes;
            self.client_packets += record.packets;
            self.server_bytes += record.reverse_bytes;
            self.server_packets += record.reverse_packets;
        }
        self.first_seen = self.first_seen.min(record.start);
        self.last_seen = self.last_seen.max(record.end);
        if usize::from(self.evidence_len) < evidence_limit {
            let link = arena.push(record, self.last_evidence);
            if link != self.last_evidence {
                self.last_evidence = link;
                self.evidence_len += 1;
            }
        }
    }

    fn evidence_flows<'arena>(&self, arena: &'arena EvidenceArena) -> Vec<&'arena CompactFlow> {
        arena.chain(self.last_evidence)
    }

    /// The evidence flows in arrival order.
    pub(crate) fn evidence(&self, arena: &EvidenceArena) -> Vec<EvidenceFlow> {
        self.evidence_flows(arena)
            .into_iter()
            .map(evidence_flow)
            .collect()
    }

    /// Destination ports of the evidence flows.
    pub(crate) fn evidence_ports(&self, arena: &EvidenceArena) -> Vec<u16> {
        self.evidence_flows(arena)
            .into_iter()
            .map(|flow| flow.dst_port)
            .collect()
    }

    /// The tally in the saved format, evidence inline.
    pub(crate) fn saved(&self, arena: &EvidenceArena) -> SavedTally {
        let mut evidence = self.evidence_flows(arena).into_iter().copied();
        SavedTally {
            flows: self.flows,
            rejected: self.rejected,
            client_bytes: self.client_bytes,
            server_bytes: self.server_bytes,
            client_packets: self.client_packets,
            server_packets: self.server_packets,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            protocol: self.protocol,
            first_evidence: evidence.next(),
            more_evidence: evidence.collect(),
        }
    }

    /// A saved tally back, its evidence stored in `arena`.
    pub(crate) fn restored(saved: SavedTally, arena: &mut EvidenceArena) -> Self {
        let mut tally = Self {
            flows: saved.flows,
            rejected: saved.rejected,
            client_bytes: saved.client_bytes,
            server_bytes: saved.server_bytes,
            client_packets: saved.client_packets,
            server_packets: saved.server_packets,
            first_seen: saved.first_seen,
            last_seen: saved.last_seen,
            last_evidence: NO_LINK,
            evidence_len: 0,
            protocol: saved.protocol,
        };
        for flow in saved
            .first_evidence
            .iter()
            .chain(saved.more_evidence.iter())
        {
            // The configuration allows at most 1000; a damaged text may hold more.
            if tally.evidence_len == u16::MAX {
                break;
            }
            let link = arena.push(flow, tally.last_evidence);
            if link == tally.last_evidence {
                break; // the arena is full
            }
            tally.last_evidence = link;
            tally.evidence_len += 1;
        }
        tally
    }
}

/// A [`FlowTally`] as the saved state writes it (the layout of earlier builds, evidence inline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SavedTally {
    flows: u64,
    rejected: u64,
    client_bytes: u64,
    server_bytes: u64,
    client_packets: u64,
    server_packets: u64,
    first_seen: i64,
    last_seen: i64,
    protocol: u8,
    first_evidence: Option<CompactFlow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    more_evidence: Vec<CompactFlow>,
}

fn evidence_flow(flow: &CompactFlow) -> EvidenceFlow {
    let time =
        |seconds: i64| DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    EvidenceFlow {
        start: time(flow.start),
        end: time(flow.end),
        src_addr: key_address(flow.src),
        dst_addr: key_address(flow.dst),
        src_port: flow.src_port,
        dst_port: flow.dst_port,
        protocol: flow.protocol,
        packets: flow.packets,
        bytes: flow.bytes,
        action: flow.action,
        direction: flow.direction,
    }
}

#[cfg(test)]
mod tests {
    use palisade_model::flow::address_key;

    use super::*;

    fn key(text: &str) -> u128 {
        address_key(text.parse().expect("valid"))
    }

    /// The sizes the module documentation and BENCHMARKS.md give (map entries are key and
    /// value side by side).
    #[test]
    fn entries_stay_small() {
        assert!(std::mem::size_of::<FlowTally>() <= 72);
        assert!(std::mem::size_of::<(u64, FlowTally)>() <= 80);
    }

    #[test]
    fn keys_pack_exactly_and_only_for_ipv4() {
        let (a, b, v6) = (key("10.1.2.3"), key("255.255.255.255"), key("2001:db8::1"));
        let pair = (a, b);
        assert_eq!(<(u128, u128)>::unpack(pair.pack().expect("v4")), pair);
        let triple = (b, a, 65_535u16);
        assert_eq!(
            <(u128, u128, u16)>::unpack(triple.pack().expect("v4")),
            triple
        );
        let horizontal = (a, 443u16, 17u8);
        assert_eq!(
            <(u128, u16, u8)>::unpack(horizontal.pack().expect("v4")),
            horizontal
        );
        for outbound in [false, true] {
            let intel = (a, b, outbound);
            assert_eq!(
                <(u128, u128, bool)>::unpack(intel.pack().expect("v4")),
                intel
            );
        }
        assert_eq!(u128::unpack(a.pack().expect("v4")), a);
        assert!((a, v6).pack().is_none());
        assert!((v6, a, 1u16).pack().is_none());
        assert!(v6.pack().is_none());
        // `::a.b.c.d` (IPv4-compatible, not mapped) is IPv6 and must not pack.
        assert!(key("::10.1.2.3").pack().is_none());
    }

    #[test]
    fn keyed_map_holds_both_families_and_sorts_by_full_key() {
        let mut map: KeyedMap<(u128, u128), u32> = KeyedMap::default();
        let (a, b, v6) = (key("10.0.0.1"), key("10.0.0.2"), key("2001:db8::1"));
        *map.get_or_insert_with((b, a), || 0) += 1;
        *map.get_or_insert_with((a, v6), || 0) += 1;
        *map.get_or_insert_with((a, b), || 0) += 1;
        *map.get_or_insert_with((a, b), || 0) += 1;
        assert_eq!(map.len(), 3);
        let sorted: Vec<((u128, u128), u32)> = map
            .sorted()
            .into_iter()
            .map(|(key, value)| (key, *value))
            .collect();
        assert_eq!(sorted, [((a, b), 2), ((a, v6), 1), ((b, a), 1)]);
        *map.get_mut(&(a, v6)).expect("present") += 5;
        let mut drained: Vec<((u128, u128), u32)> = map.drain().collect();
        drained.sort_unstable();
        assert_eq!(drained, [((a, b), 2), ((a, v6), 6), ((b, a), 1)]);
        assert_eq!(map.len(), 0);
    }

    fn context(start: i64, dst_port: u16) -> FlowContext {
        FlowContext {
            record: CompactFlow {
                start,
                end: start + 1,
                src: key("10.0.0.1"),
                dst: key("198.51.100.1"),
                dst_port,
                packets: 1,
                bytes: 40,
                ..CompactFlow::default()
            },
            src_internal: true,
            dst_internal: false,
            reply: false,
            src_intel: None,
            dst_intel: None,
        }
    }

    #[test]
    fn evidence_keeps_the_first_flows_in_order_and_round_trips_the_saved_form() {
        let mut arena = EvidenceArena::default();
        let first = context(100, 1);
        let mut one = FlowTally::new(&first);
        let mut other = FlowTally::new(&first);
        for port in 1..=8u16 {
            let flow = context(100 + i64::from(port), port);
            one.add(&flow, false, 5, &mut arena);
            // A second tally of the same flow shares its stored copy.
            other.add(&flow, false, 3, &mut arena);
        }
        assert_eq!(one.evidence_ports(&arena), [1, 2, 3, 4, 5]);
        assert_eq!(other.evidence_ports(&arena), [1, 2, 3]);
        assert_eq!(arena.flows.len(), 5);
        assert_eq!(one.flows, 8);
        let saved = one.saved(&arena);
        let json = serde_json::to_string(&saved).expect("serialises");
        let back: SavedTally = serde_json::from_str(&json).expect("parses");
        let mut fresh = EvidenceArena::default();
        let restored = FlowTally::restored(back, &mut fresh);
        assert_eq!(restored.saved(&fresh), saved);
        assert_eq!(restored.evidence(&fresh), one.evidence(&arena));
        let mut none = FlowTally::new(&first);
        none.add(&first, false, 0, &mut arena);
        assert!(none.evidence(&arena).is_empty());
        assert_eq!(none.saved(&arena).first_evidence, None);
    }
}
