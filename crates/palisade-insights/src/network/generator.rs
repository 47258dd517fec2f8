//! A seeded generator of realistic background flow traffic with planted attacks of every kind
//! the detectors know, for tests, benchmarks and demos (`palisade netscan --generate`).
//!
//! No public flow logs with labelled attacks exist, so detection quality is tested against this:
//! the same seed always gives the same records, [`GeneratedTraffic::planted`] says which findings
//! must come out (and nothing else may), and [`GeneratedTraffic::intel`] is the feed that lists
//! the planted threat-intelligence hosts.
//!
//! # Background
//! Internal hosts (`10.0.0.0/16`, as AWS ENIs of one account) browse and call APIs on external
//! peers (popular ones far more often), resolve names at an internal DNS server, query an
//! internal database through many short connections, serve HTTPS to external clients, receive a
//! little internet noise (single rejected probes) and run a nightly-style backup upload that
//! stays below the exfiltration threshold. Replies are written as their own records, as AWS does.
//! External peers come from `20.0.0.0`–`99.255.255.255`; planted attackers from the
//! documentation ranges (`192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`) and
//! `198.18.0.0/15`; decoy intel entries from `150.0.0.0`–`168.255.255.255`, so background never
//! touches a listed address.
//!
//! # Planted attacks (offsets from the start; the duration must be at least 6 h)
//! vertical scan (+30 min), horizontal scan (+40 min), distributed scan (+50 min), SSH brute force
//! (+60 min), exfiltration of 2 GiB (+70 min), beaconing every 5 min for 4 h (+20 min), outbound
//! traffic to a listed malware server (+100 min), inbound probes from a listed scanner (+110 min).

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Duration, Utc};
use palisade_model::flow::{
    FlowAction, FlowDirection, FlowRecord, FlowSourceFormat, PROTOCOL_TCP, PROTOCOL_UDP,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::intel::IntelIndicator;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// Seed of the random generator: same seed, same records.
    pub seed: u64,
    /// Flow time of the first record.
    pub start: DateTime<Utc>,
    /// Length of the generated period, seconds.
    pub duration_seconds: u64,
    /// Background records to generate (attack records come on top).
    pub background_records: u64,
    /// Internal hosts.
    pub internal_hosts: u32,
    /// Distinct external peers the hosts talk to.
    pub external_peers: u32,
    /// Plant the attacks (needs `duration_seconds` ≥ 6 h).
    pub plant_attacks: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            start: DateTime::from_timestamp(1_767_225_600, 0)
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH), // 2026-01-01
            duration_seconds: 6 * 3600,
            background_records: 50_000,
            internal_hosts: 60,
            external_peers: 3_000,
            plant_attacks: true,
        }
    }
}

/// One planted attack and the finding that must report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlantedAttack {
    /// The finding type expected.
    pub finding_type: String,
    /// The expected `network_connection.client.address` (for distributed scans: `None`, any of
    /// the sources).
    pub client: Option<IpAddr>,
    /// The expected `network_connection.server.address` (for horizontal scans: `None`, the
    /// targets vary).
    pub server: Option<IpAddr>,
    /// The expected port, where the finding is about one.
    pub port: Option<u16>,
}

/// What [`generate`] returns besides the records it streamed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratedTraffic {
    /// Records emitted (background and attacks).
    pub records: u64,
    /// The planted attacks, one finding each.
    pub planted: Vec<PlantedAttack>,
    /// The intel feed listing the planted intel hosts (category `malware` and `scanner`).
    pub intel: Vec<IntelIndicator>,
}

const ACCOUNT: &str = "123456789012";
const SLOT_SECONDS: i64 = 60;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// Addresses of the planted actors.
mod actors {
    use super::*;
    pub(super) fn vertical_scanner() -> IpAddr {
        v4(198, 51, 100, 10)
    }
    pub(super) fn horizontal_scanner() -> IpAddr {
        v4(198, 51, 100, 20)
    }
    pub(super) fn distributed_source(index: u8) -> IpAddr {
        v4(198, 18, 5, index)
    }
    pub(super) fn brute_forcer() -> IpAddr {
        v4(203, 0, 113, 50)
    }
    pub(super) fn exfil_host() -> IpAddr {
        v4(10, 0, 4, 5)
    }
    pub(super) fn exfil_drop() -> IpAddr {
        v4(203, 0, 113, 80)
    }
    pub(super) fn beacon_host() -> IpAddr {
        v4(10, 0, 4, 6)
    }
    pub(super) fn beacon_server() -> IpAddr {
        v4(203, 0, 113, 90)
    }
    pub(super) fn infected_host() -> IpAddr {
        v4(10, 0, 4, 7)
    }
    pub(super) fn malware_server() -> IpAddr {
        v4(192, 0, 2, 66)
    }
    pub(super) fn listed_scanner() -> IpAddr {
        v4(192, 0, 2, 77)
    }
    pub(super) fn web_server(index: u8) -> IpAddr {
        v4(10, 0, 2, 10 + index)
    }
}

struct Builder<'rng> {
    rng: &'rng mut StdRng,
    start: i64,
}

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn flow(
        &mut self,
        at: i64,
        src: IpAddr,
        dst: IpAddr,
        src_port: u16,
        dst_port: u16,
        protocol: u8,
        packets: u64,
        bytes: u64,
        action: FlowAction,
    ) -> FlowRecord {
        let duration = if packets <= 2 {
            0
        } else {
            self.rng.gen_range(0..50)
        };
        let time = |seconds: i64| {
            DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        };
        FlowRecord {
            start: time(self.start + at),
            end: time(self.start + at + duration),
            direction: FlowDirection::Unknown,
            action,
            src_addr: src,
            dst_addr: dst,
            src_port,
            dst_port,
            protocol,
            packets,
            bytes,
            reverse_packets: None,
            reverse_bytes: None,
            interface_id: None,
            instance_id: None,
            account_id: Some(ACCOUNT.to_owned()),
            source_format: FlowSourceFormat::AwsVpc,
        }
    }

    fn ephemeral(&mut self) -> u16 {
        self.rng.gen_range(32_768..=60_999)
    }
}

fn planted_flows(
    rng: &mut StdRng,
    start: i64,
) -> (Vec<FlowRecord>, Vec<PlantedAttack>, Vec<IntelIndicator>) {
    let mut flows = Vec::new();
    let mut builder = Builder { rng, start };
    let tcp = PROTOCOL_TCP;
    // Vertical: 100 ports of one web server in 90 s, 90 % rejected.
    let scanner_port = builder.ephemeral();
    for port in 1..=100u16 {
        let at = 30 * 60 + i64::from(port) * 9 / 10;
        let action = if port % 10 == 0 {
            FlowAction::Accept
        } else {
            FlowAction::Reject
        };
        flows.push(builder.flow(
            at,
            actors::vertical_scanner(),
            actors::web_server(0),
            scanner_port,
            port,
            tcp,
            1,
            44,
            action,
        ));
    }
    // Horizontal: port 8080 on 40 hosts in 40 s, all rejected.
    for host in 1..=40u8 {
        let at = 40 * 60 + i64::from(host);
        let source_port = builder.ephemeral();
        flows.push(builder.flow(
            at,
            actors::horizontal_scanner(),
            v4(10, 0, 3, host),
            source_port,
            8080,
            tcp,
            1,
            40,
            FlowAction::Reject,
        ));
    }
    // Distributed: 16 sources, the same 12 ports of one web server, within 3 min.
    let ports = [
        21u16, 23, 25, 110, 135, 139, 143, 1723, 5060, 8000, 8081, 9090,
    ];
    for source in 1..=16u8 {
        for (index, port) in ports.iter().enumerate() {
            let at = 50 * 60 + i64::from(source) * 10 + index as i64;
            let source_port = builder.ephemeral();
            flows.push(builder.flow(
                at,
                actors::distributed_source(source),
                actors::web_server(1),
                source_port,
                *port,
                tcp,
                1,
                44,
                FlowAction::Reject,
            ));
        }
    }
    // Brute force: 60 SSH logins in 4 min, accepted, each a short exchange, with server replies.
    for attempt in 0..60i64 {
        let at = 60 * 60 + attempt * 4;
        let source_port = builder.ephemeral();
        let packets = builder.rng.gen_range(12..=20);
        flows.push(builder.flow(
            at,
            actors::brute_forcer(),
            actors::web_server(2),
            source_port,
            22,
            tcp,
            packets,
            packets * 90,
            FlowAction::Accept,
        ));
        flows.push(builder.flow(
            at,
            actors::web_server(2),
            actors::brute_forcer(),
            22,
            source_port,
            tcp,
            packets,
            packets * 120,
            FlowAction::Accept,
        ));
    }
    // Exfiltration: 2 GiB in 40 uploads at irregular times over 20 min.
    for _ in 0..40 {
        let at = 70 * 60 + builder.rng.gen_range(0..1200);
        let source_port = builder.ephemeral();
        let bytes = 2 * 1024 * 1024 * 1024 / 40;
        flows.push(builder.flow(
            at,
            actors::exfil_host(),
            actors::exfil_drop(),
            source_port,
            443,
            tcp,
            bytes / 1400,
            bytes,
            FlowAction::Accept,
        ));
        flows.push(builder.flow(
            at,
            actors::exfil_drop(),
            actors::exfil_host(),
            443,
            source_port,
            tcp,
            bytes / 14_000,
            bytes / 100,
            FlowAction::Accept,
        ));
    }
    // Beaconing: every 300 s ± 3 s for 4 h, small exchanges.
    for beat in 0..48i64 {
        let at = 20 * 60 + beat * 300 + builder.rng.gen_range(-3..=3);
        let source_port = builder.ephemeral();
        flows.push(builder.flow(
            at,
            actors::beacon_host(),
            actors::beacon_server(),
            source_port,
            8443,
            tcp,
            6,
            700,
            FlowAction::Accept,
        ));
        flows.push(builder.flow(
            at,
            actors::beacon_server(),
            actors::beacon_host(),
            8443,
            source_port,
            tcp,
            5,
            1_900,
            FlowAction::Accept,
        ));
    }
    // Listed malware server: five irregular outbound HTTPS connections.
    for at in [
        100 * 60,
        100 * 60 + 130,
        100 * 60 + 170,
        100 * 60 + 640,
        100 * 60 + 1100,
    ] {
        let source_port = builder.ephemeral();
        flows.push(builder.flow(
            at,
            actors::infected_host(),
            actors::malware_server(),
            source_port,
            443,
            tcp,
            14,
            3_000,
            FlowAction::Accept,
        ));
        flows.push(builder.flow(
            at,
            actors::malware_server(),
            actors::infected_host(),
            443,
            source_port,
            tcp,
            12,
            9_000,
            FlowAction::Accept,
        ));
    }
    // Listed scanner: three rejected SSH probes.
    for at in [110 * 60, 110 * 60 + 7, 110 * 60 + 21] {
        let source_port = builder.ephemeral();
        flows.push(builder.flow(
            at,
            actors::listed_scanner(),
            actors::web_server(0),
            source_port,
            22,
            tcp,
            1,
            60,
            FlowAction::Reject,
        ));
    }
    let attack = |finding_type: &str,
                  client: Option<IpAddr>,
                  server: Option<IpAddr>,
                  port: Option<u16>| PlantedAttack {
        finding_type: finding_type.to_owned(),
        client,
        server,
        port,
    };
    let planted = vec![
        attack(
            "port_scan_vertical",
            Some(actors::vertical_scanner()),
            Some(actors::web_server(0)),
            None,
        ),
        attack(
            "port_scan_horizontal",
            Some(actors::horizontal_scanner()),
            None,
            Some(8080),
        ),
        attack(
            "port_scan_distributed",
            None,
            Some(actors::web_server(1)),
            None,
        ),
        attack(
            "brute_force",
            Some(actors::brute_forcer()),
            Some(actors::web_server(2)),
            Some(22),
        ),
        attack(
            "exfiltration",
            Some(actors::exfil_host()),
            Some(actors::exfil_drop()),
            None,
        ),
        attack(
            "beaconing",
            Some(actors::beacon_host()),
            Some(actors::beacon_server()),
            Some(8443),
        ),
        attack(
            "xforce-malware_server",
            Some(actors::infected_host()),
            Some(actors::malware_server()),
            Some(443),
        ),
        attack(
            "xforce-reconnaissance",
            Some(actors::listed_scanner()),
            Some(actors::web_server(0)),
            Some(22),
        ),
    ];
    let intel = vec![
        IntelIndicator {
            network: actors::malware_server().into(),
            category: "malware".into(),
            confidence: 90,
        },
        IntelIndicator {
            network: actors::listed_scanner().into(),
            category: "scanner".into(),
            confidence: 70,
        },
    ];
    (flows, planted, intel)
}

/// A random external peer address in 20.0.0.0–99.255.255.255 (never private, never listed).
fn external_peer(rng: &mut StdRng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(rng.gen_range(0x1400_0000u32..0x6400_0000)))
}

/// Random decoy intel entries (150.0.0.0–168.255.255.255, which no generated traffic uses).
pub fn decoy_intel(seed: u64, count: usize) -> Vec<IntelIndicator> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xdec0);
    let categories = ["scanner", "malware", "bot", "miner", "anonymizer"];
    (0..count)
        .map(|index| {
            let address = IpAddr::V4(Ipv4Addr::from(rng.gen_range(0x9600_0000u32..0xa900_0000)));
            IntelIndicator {
                network: address.into(),
                category: categories[index % categories.len()].to_owned(),
                confidence: rng.gen_range(30..=100),
            }
        })
        .collect()
}

/// Generates the traffic, calling `on_record` for every record in start-time order (within a
/// minute; records of one minute come sorted).
pub fn generate<F: FnMut(&FlowRecord)>(
    config: &GeneratorConfig,
    mut on_record: F,
) -> GeneratedTraffic {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let start = config.start.timestamp();
    let duration = i64::try_from(config.duration_seconds.max(60)).unwrap_or(i64::MAX / 2);
    let hosts = config.internal_hosts.clamp(8, 60_000);
    let (mut attack_flows, planted, intel) = if config.plant_attacks {
        planted_flows(&mut rng, start)
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    attack_flows.retain(|flow| flow.start.timestamp() < start + duration);
    attack_flows.sort_by_key(|flow| flow.start);
    let peers: Vec<IpAddr> = (0..config.external_peers.max(10))
        .map(|_| external_peer(&mut rng))
        .collect();
    let interface_ids: Vec<String> = (0..hosts)
        .map(|host| format!("eni-{:017x}", 0x0a0b_0000u64 + u64::from(host)))
        .collect();
    let host_address = |host: u32| v4(10, 0, 10 + (host / 250) as u8, (host % 250) as u8 + 1);
    let dns_server = v4(10, 0, 0, 2);
    let database = v4(10, 0, 1, 10);
    let backup_target = v4(52, 95, 110, 1);
    let slots = (duration / SLOT_SECONDS).max(1);
    let per_slot = config.background_records / slots as u64;
    let mut remainder = config.background_records % slots as u64;
    let mut slot_records: Vec<FlowRecord> = Vec::new();
    let mut attack_index = 0usize;
    let mut emitted = 0u64;
    for slot in 0..slots {
        let slot_start = slot * SLOT_SECONDS;
        let mut budget = per_slot + u64::from(remainder > 0);
        remainder = remainder.saturating_sub(1);
        slot_records.clear();
        let mut builder = Builder {
            rng: &mut rng,
            start,
        };
        // A backup upload at the top of every hour: 60 MiB, below the exfiltration threshold.
        if slot_start % 3600 == 0 && budget > 0 {
            let host = host_address(hosts - 1);
            let source_port = builder.ephemeral();
            let bytes = 60 * 1024 * 1024;
            slot_records.push(builder.flow(
                slot_start + 5,
                host,
                backup_target,
                source_port,
                443,
                PROTOCOL_TCP,
                bytes / 1400,
                bytes,
                FlowAction::Accept,
            ));
            budget -= 1;
        }
        while budget > 0 {
            let at = slot_start + builder.rng.gen_range(0..SLOT_SECONDS);
            let host_index = builder.rng.gen_range(0..hosts - 1);
            let host = host_address(host_index);
            let kind = builder.rng.gen_range(0..100u32);
            let mut records = [None, None];
            match kind {
                // Outbound web / API call with its reply; popular peers far more often.
                0..=54 => {
                    let popular = builder.rng.gen_bool(0.7);
                    let peer_index = if popular {
                        builder.rng.gen_range(0..peers.len().min(40))
                    } else {
                        builder.rng.gen_range(0..peers.len())
                    };
                    let peer = peers[peer_index];
                    let port = if builder.rng.gen_bool(0.85) { 443 } else { 80 };
                    let source_port = builder.ephemeral();
                    let packets = builder.rng.gen_range(6..=200);
                    let bytes = packets * builder.rng.gen_range(60..=900);
                    records[0] = Some(builder.flow(
                        at,
                        host,
                        peer,
                        source_port,
                        port,
                        PROTOCOL_TCP,
                        packets,
                        bytes,
                        FlowAction::Accept,
                    ));
                    let reply_packets = packets + builder.rng.gen_range(0..=packets);
                    records[1] = Some(builder.flow(
                        at,
                        peer,
                        host,
                        port,
                        source_port,
                        PROTOCOL_TCP,
                        reply_packets,
                        reply_packets * 1200,
                        FlowAction::Accept,
                    ));
                }
                // DNS to the internal resolver.
                55..=69 => {
                    let source_port = builder.ephemeral();
                    records[0] = Some(builder.flow(
                        at,
                        host,
                        dns_server,
                        source_port,
                        53,
                        PROTOCOL_UDP,
                        1,
                        74,
                        FlowAction::Accept,
                    ));
                    records[1] = Some(builder.flow(
                        at,
                        dns_server,
                        host,
                        53,
                        source_port,
                        PROTOCOL_UDP,
                        1,
                        130,
                        FlowAction::Accept,
                    ));
                }
                // Short queries to the internal database.
                70..=84 => {
                    let source_port = builder.ephemeral();
                    let packets = builder.rng.gen_range(8..=30);
                    records[0] = Some(builder.flow(
                        at,
                        host,
                        database,
                        source_port,
                        5432,
                        PROTOCOL_TCP,
                        packets,
                        packets * 150,
                        FlowAction::Accept,
                    ));
                    records[1] = Some(builder.flow(
                        at,
                        database,
                        host,
                        5432,
                        source_port,
                        PROTOCOL_TCP,
                        packets,
                        packets * 700,
                        FlowAction::Accept,
                    ));
                }
                // External clients of the public web servers.
                85..=98 => {
                    let client = external_peer(builder.rng);
                    let server = actors::web_server(builder.rng.gen_range(0..4));
                    let source_port = builder.ephemeral();
                    let packets = builder.rng.gen_range(5..=60);
                    records[0] = Some(builder.flow(
                        at,
                        client,
                        server,
                        source_port,
                        443,
                        PROTOCOL_TCP,
                        packets,
                        packets * 100,
                        FlowAction::Accept,
                    ));
                    records[1] = Some(builder.flow(
                        at,
                        server,
                        client,
                        443,
                        source_port,
                        PROTOCOL_TCP,
                        packets,
                        packets * 1100,
                        FlowAction::Accept,
                    ));
                }
                // Internet noise: a single rejected probe of a random port.
                _ => {
                    let source = external_peer(builder.rng);
                    let target = actors::web_server(builder.rng.gen_range(0..4));
                    let source_port = builder.ephemeral();
                    let port = builder.rng.gen_range(1..=10_000);
                    records[0] = Some(builder.flow(
                        at,
                        source,
                        target,
                        source_port,
                        port,
                        PROTOCOL_TCP,
                        1,
                        40,
                        FlowAction::Reject,
                    ));
                }
            }
            for record in records.into_iter().flatten() {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                slot_records.push(record);
            }
            let _ = host_index;
        }
        // Interfaces: the internal side of each record.
        for record in &mut slot_records {
            let internal = [record.src_addr, record.dst_addr]
                .into_iter()
                .find(|address| matches!(address, IpAddr::V4(v4) if v4.octets()[0] == 10));
            if let Some(IpAddr::V4(address)) = internal {
                let [_, _, third, fourth] = address.octets();
                let index = (usize::from(third) * 251 + usize::from(fourth)) % interface_ids.len();
                FlowRecord::set_text(&mut record.interface_id, Some(&interface_ids[index]));
            }
        }
        let slot_end = start + slot_start + SLOT_SECONDS;
        while attack_index < attack_flows.len()
            && attack_flows[attack_index].start.timestamp() < slot_end
        {
            slot_records.push(attack_flows[attack_index].clone());
            attack_index += 1;
        }
        slot_records.sort_by_key(|record| record.start);
        for record in &slot_records {
            on_record(record);
        }
        emitted += slot_records.len() as u64;
    }
    let _ = Duration::zero();
    GeneratedTraffic {
        records: emitted,
        planted,
        intel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_records_and_time_order() {
        let config = GeneratorConfig {
            background_records: 3_000,
            ..GeneratorConfig::default()
        };
        let mut first = Vec::new();
        let traffic = generate(&config, |record| first.push(record.clone()));
        let mut second = Vec::new();
        generate(&config, |record| second.push(record.clone()));
        assert_eq!(first, second);
        assert_eq!(traffic.records as usize, first.len());
        assert!(
            first
                .windows(2)
                .all(|pair| pair[0].start.timestamp() / 60 <= pair[1].start.timestamp() / 60)
        );
        assert_eq!(traffic.planted.len(), 8);
        let other = generate(&GeneratorConfig { seed: 2, ..config }, |_| {});
        assert_eq!(other.records, traffic.records);
    }

    #[test]
    fn background_never_touches_planted_or_listed_ranges() {
        let config = GeneratorConfig {
            background_records: 20_000,
            plant_attacks: false,
            ..GeneratorConfig::default()
        };
        let mut count = 0u64;
        generate(&config, |record| {
            count += 1;
            for address in [record.src_addr, record.dst_addr] {
                let IpAddr::V4(v4) = address else {
                    panic!("background is IPv4")
                };
                let first = v4.octets()[0];
                assert!(first == 10 || (20..100).contains(&first), "{address}");
            }
        });
        assert_eq!(count, 20_000);
    }
}
