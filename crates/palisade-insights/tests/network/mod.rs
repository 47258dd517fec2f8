//! Network insights end to end: generated traffic with planted attacks through the detectors,
//! directly and through AWS flow-log text.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use palisade_insights::network::generator::{
    self, GeneratedTraffic, GeneratorConfig, PlantedAttack,
};
use palisade_insights::network::{
    NetworkDetectorConfig, NetworkDetectors, NetworkFinding, ParallelScan, SharedThreatIntel,
    ThreatIntel,
};
use palisade_model::flow::{FlowAction, FlowRecord};

fn run(config: &GeneratorConfig, decoys: usize) -> (Vec<NetworkFinding>, GeneratedTraffic) {
    let detectors =
        NetworkDetectors::new(NetworkDetectorConfig::default()).expect("default config is valid");
    let mut state = detectors.new_state();
    let mut records = Vec::new();
    let traffic = generator::generate(config, |record| records.push(record.clone()));
    let mut feed = traffic.intel.clone();
    feed.extend(generator::decoy_intel(config.seed, decoys));
    let intel = ThreatIntel::build([("generated", &feed[..])]);
    let mut findings = Vec::new();
    for record in &records {
        detectors.process(&mut state, &intel, record, &mut findings);
    }
    detectors.flush(&mut state, &mut findings);
    (findings, traffic)
}

fn matches(finding: &NetworkFinding, attack: &PlantedAttack) -> bool {
    finding.finding_type == attack.finding_type
        && attack
            .client
            .is_none_or(|client| finding.network_connection.client.address == client)
        && attack
            .server
            .is_none_or(|server| finding.network_connection.server.address == server)
        && attack
            .port
            .is_none_or(|port| finding.network_connection.server.port == Some(port))
}

fn describe(findings: &[NetworkFinding]) -> String {
    findings
        .iter()
        .map(|finding| format!("{} {}\n", finding.finding_type, finding.summary))
        .collect()
}

#[test]
fn each_planted_attack_is_found_once_and_nothing_else() {
    let config = GeneratorConfig::default();
    let (findings, traffic) = run(&config, 5_000);
    assert_eq!(traffic.planted.len(), 8);
    for attack in &traffic.planted {
        let found = findings
            .iter()
            .filter(|finding| matches(finding, attack))
            .count();
        assert_eq!(
            found,
            1,
            "{attack:?} found {found} times in:\n{}",
            describe(&findings)
        );
    }
    assert_eq!(
        findings.len(),
        traffic.planted.len(),
        "unexpected findings:\n{}",
        describe(&findings)
    );
}

#[test]
fn planted_attacks_are_found_with_other_seeds_too() {
    for seed in [2, 3] {
        let config = GeneratorConfig {
            seed,
            background_records: 30_000,
            ..GeneratorConfig::default()
        };
        let (findings, traffic) = run(&config, 1_000);
        for attack in &traffic.planted {
            assert_eq!(
                findings
                    .iter()
                    .filter(|finding| matches(finding, attack))
                    .count(),
                1,
                "seed {seed}: {attack:?}"
            );
        }
        assert_eq!(
            findings.len(),
            traffic.planted.len(),
            "seed {seed}:\n{}",
            describe(&findings)
        );
    }
}

#[test]
fn background_alone_gives_no_finding() {
    for seed in [1, 5, 9] {
        let config = GeneratorConfig {
            seed,
            plant_attacks: false,
            background_records: 60_000,
            ..GeneratorConfig::default()
        };
        let (findings, _) = run(&config, 5_000);
        assert!(findings.is_empty(), "seed {seed}:\n{}", describe(&findings));
    }
}

#[test]
fn findings_carry_addresses_ports_counts_window_and_evidence() {
    let (findings, _) = run(&GeneratorConfig::default(), 0);
    let by_type: BTreeMap<&str, &NetworkFinding> = findings
        .iter()
        .map(|finding| (finding.finding_type.as_str(), finding))
        .collect();
    let vertical = by_type["port_scan_vertical"];
    assert_eq!(vertical.distinct_count, Some(100));
    assert_eq!(vertical.dst_ports.len(), 100);
    assert_eq!(vertical.flow_count, 100);
    assert_eq!(vertical.rejected_flow_count, 90);
    assert_eq!(vertical.evidence.len(), 5);
    assert!(
        vertical.window_start <= vertical.first_seen && vertical.last_seen <= vertical.window_end
    );
    let horizontal = by_type["port_scan_horizontal"];
    assert_eq!(horizontal.dst_addresses.len(), 40);
    assert_eq!(horizontal.dst_ports, [8080]);
    let distributed = by_type["port_scan_distributed"];
    assert_eq!(distributed.src_addresses.len(), 16);
    assert_eq!(distributed.dst_ports.len(), 12);
    let brute = by_type["brute_force"];
    assert_eq!(brute.network_connection.server.port, Some(22));
    assert!(brute.flow_count >= 20);
    let exfiltration = by_type["exfiltration"];
    assert!(exfiltration.data_transferred.client_bytes >= 2 * 1024 * 1024 * 1024 - 40);
    assert_eq!(exfiltration.baseline_bytes, Some(0));
    let beacon = by_type["beaconing"];
    assert!((290..=310).contains(&beacon.interval_seconds.expect("interval")));
    let intel = by_type["xforce-malware_server"];
    let matched = intel.threat_intel.as_ref().expect("intel match");
    assert_eq!(
        (matched.category.as_str(), matched.confidence),
        ("malware", 90)
    );
    assert_eq!(intel.data_transferred.client_bytes, 5 * 3_000);
    assert_eq!(intel.data_transferred.server_bytes, 5 * 9_000);
    let json = serde_json::to_value(intel).expect("serialises");
    assert_eq!(json["type"], "xforce-malware_server");
    assert_eq!(json["severity"], "MEDIUM");
    assert_eq!(json["network_connection"]["direction"], "outbound");
    assert_eq!(json["network_connection"]["protocol"], "tcp");
    assert_eq!(json["data_transferred"]["client_bytes"], 15_000);
    let ids: std::collections::BTreeSet<&str> =
        findings.iter().map(|finding| finding.id.as_str()).collect();
    assert_eq!(ids.len(), findings.len(), "finding ids are unique");
}

#[test]
fn aws_text_round_trip_gives_the_same_findings() {
    let config = GeneratorConfig {
        background_records: 20_000,
        ..GeneratorConfig::default()
    };
    let (direct, traffic) = run(&config, 100);
    let mut text = Vec::new();
    generator::generate(&config, |record| {
        palisade_logs::flow::aws::write_default_format_line(record, &mut text).expect("in memory");
    });
    let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");
    let mut state = detectors.new_state();
    let mut feed = traffic.intel.clone();
    feed.extend(generator::decoy_intel(config.seed, 100));
    let intel = ThreatIntel::build([("generated", &feed[..])]);
    let mut findings = Vec::new();
    let summary = palisade_logs::flow::decode_flows(
        &text[..],
        "generated.log",
        palisade_logs::flow::FlowFormat::Auto,
        |record| {
            detectors.process(&mut state, &intel, record, &mut findings);
        },
    );
    detectors.flush(&mut state, &mut findings);
    assert_eq!(summary.bad_records, 0);
    assert_eq!(summary.records, traffic.records);
    let key = |finding: &NetworkFinding| {
        (
            finding.id.clone(),
            finding.flow_count,
            finding.data_transferred,
        )
    };
    assert_eq!(
        findings.iter().map(key).collect::<Vec<_>>(),
        direct.iter().map(key).collect::<Vec<_>>()
    );
}

#[test]
fn issue_8_parallel_scan_finds_exactly_what_one_state_finds() {
    let config = GeneratorConfig {
        seed: 7,
        background_records: 40_000,
        ..GeneratorConfig::default()
    };
    let mut records = Vec::new();
    let traffic = generator::generate(&config, |record| records.push(record.clone()));
    // Disorder the stream as delivery does: every third run of 700 records (about 6 minutes)
    // backwards, and every 499th record delayed by 3,000 records (about half an hour, past the
    // lateness of the 5-minute windows), so flows arrive late while windows close.
    for (index, run) in records.chunks_mut(700).enumerate() {
        if index % 3 == 0 {
            run.reverse();
        }
    }
    let mut delayed = std::collections::VecDeque::new();
    let mut disordered = Vec::with_capacity(records.len());
    for (index, record) in records.into_iter().enumerate() {
        if index % 499 == 0 {
            delayed.push_back((index + 3_000, record));
        } else {
            disordered.push(record);
        }
        while delayed.front().is_some_and(|(due, _)| *due <= index) {
            disordered.extend(delayed.pop_front().map(|(_, record)| record));
        }
    }
    disordered.extend(delayed.into_iter().map(|(_, record)| record));
    let records = disordered;
    let mut text = Vec::new();
    for record in &records {
        palisade_logs::flow::aws::write_default_format_line(record, &mut text).expect("in memory");
    }
    let mut feed = traffic.intel.clone();
    feed.extend(generator::decoy_intel(config.seed, 1_000));
    let intel = ThreatIntel::build([("generated", &feed[..])]);
    let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");

    let mut state = detectors.new_state();
    let mut expected = Vec::new();
    let expected_summary = palisade_logs::flow::decode_flows_compact(
        &text[..],
        "generated.log",
        palisade_logs::flow::FlowFormat::Auto,
        |flow| detectors.process_compact(&mut state, &intel, flow, &mut expected),
    );
    detectors.flush(&mut state, &mut expected);
    let expected_stats = state.stats();
    let late: u64 = expected_stats
        .iter()
        .map(|(_, stats)| stats.late_flows)
        .sum();
    assert!(late > 0, "the disorder must make late flows");
    assert!(
        expected.len() >= traffic.planted.len(),
        "{}",
        describe(&expected)
    );

    for threads in [1, 2, 3, 5] {
        let mut scan = ParallelScan::new(&detectors, &intel, threads);
        let summary = scan.scan(
            &text[..],
            "generated.log",
            palisade_logs::flow::FlowFormat::Auto,
        );
        assert_eq!(summary, expected_summary, "{threads} threads");
        let (findings, stats) = scan.finish();
        assert!(
            findings == expected,
            "{threads} threads found:\n{}\ninstead of:\n{}",
            describe(&findings),
            describe(&expected)
        );
        assert_eq!(stats, expected_stats, "{threads} threads");
    }

    // Flows handed over already decoded take the same way.
    let flows: Vec<_> = records.iter().map(FlowRecord::compact).collect();
    let mut scan = ParallelScan::new(&detectors, &intel, 2);
    for batch in flows.chunks(5_000) {
        scan.process_flows(batch);
    }
    let (findings, stats) = scan.finish();
    assert!(findings == expected, "{}", describe(&findings));
    assert_eq!(stats, expected_stats);
}

/// A flow time aligned on `window` seconds, so tests know where windows start.
fn aligned(window: i64) -> i64 {
    let some_time = 1_800_000_123;
    some_time - some_time % window
}

fn probe(at: i64, source: &str, target: &str, port: u16) -> FlowRecord {
    let time = DateTime::from_timestamp(at, 0).expect("valid");
    FlowRecord {
        start: time,
        end: time,
        src_addr: source.parse().expect("valid"),
        dst_addr: target.parse().expect("valid"),
        src_port: 50_000,
        dst_port: port,
        protocol: 6,
        packets: 1,
        bytes: 40,
        action: FlowAction::Reject,
        ..FlowRecord::default()
    }
}

#[test]
fn a_scan_lasting_several_windows_is_reported_once_then_again_after_quiet() {
    let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");
    let mut state = detectors.new_state();
    let intel = ThreatIntel::default();
    let mut findings = Vec::new();
    let base = aligned(300);
    // 15 minutes, 30 ports per 5-minute window.
    for window in 0..3i64 {
        for port in 0..30u16 {
            detectors.process(
                &mut state,
                &intel,
                &probe(
                    base + window * 300 + i64::from(port),
                    "2001:db8::66",
                    "fd00::5",
                    1000 + port,
                ),
                &mut findings,
            );
        }
    }
    // Quiet for two hours, then again.
    for port in 0..30u16 {
        detectors.process(
            &mut state,
            &intel,
            &probe(
                base + 9_000 + i64::from(port),
                "2001:db8::66",
                "fd00::5",
                2000 + port,
            ),
            &mut findings,
        );
    }
    detectors.flush(&mut state, &mut findings);
    assert_eq!(findings.len(), 2, "{}", describe(&findings));
    assert!(
        findings
            .iter()
            .all(|finding| finding.finding_type == "port_scan_vertical")
    );
    let scanner: IpAddr = "2001:db8::66".parse().expect("valid");
    assert_eq!(findings[0].network_connection.client.address, scanner);
    let stats: BTreeMap<_, _> = state.stats().into_iter().collect();
    let port_scan = stats[&palisade_insights::network::DetectorKind::PortScan];
    assert_eq!((port_scan.findings, port_scan.suppressed), (2, 2));
    assert_eq!(port_scan.open_keys, 0);
}

#[test]
fn windows_close_as_flow_time_passes_and_late_flows_are_counted() {
    let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");
    let mut state = detectors.new_state();
    let intel = ThreatIntel::default();
    let mut findings = Vec::new();
    let base = aligned(300);
    for port in 0..25u16 {
        detectors.process(
            &mut state,
            &intel,
            &probe(base + i64::from(port), "198.51.100.1", "10.0.0.1", port + 1),
            &mut findings,
        );
    }
    assert!(findings.is_empty(), "the window is still open");
    let window_end_plus_lateness =
        DateTime::<Utc>::from_timestamp(base + 300 + 900, 0).expect("valid");
    detectors.close_windows_until(&mut state, window_end_plus_lateness, &mut findings);
    assert_eq!(findings.len(), 1);
    detectors.process(
        &mut state,
        &intel,
        &probe(base + 30, "198.51.100.1", "10.0.0.1", 99),
        &mut findings,
    );
    let stats: BTreeMap<_, _> = state.stats().into_iter().collect();
    assert_eq!(
        stats[&palisade_insights::network::DetectorKind::PortScan].late_flows,
        1
    );
}

fn upload(at: i64, bytes: u64) -> FlowRecord {
    let time = DateTime::from_timestamp(at, 0).expect("valid");
    FlowRecord {
        start: time,
        end: time,
        src_addr: "10.1.1.1".parse().expect("valid"),
        dst_addr: "52.1.1.1".parse().expect("valid"),
        src_port: 40_000 + (at % 1000) as u16,
        dst_port: 443,
        protocol: 6,
        packets: bytes / 1400,
        bytes,
        action: FlowAction::Accept,
        ..FlowRecord::default()
    }
}

#[test]
fn exfiltration_compares_with_the_pairs_own_baseline() {
    let config = NetworkDetectorConfig {
        suppression_seconds: 0,
        ..NetworkDetectorConfig::default()
    };
    let detectors = NetworkDetectors::new(config).expect("valid");
    let mut state = detectors.new_state();
    let intel = ThreatIntel::default();
    let mut findings = Vec::new();
    let hour = 3_600i64;
    let base = aligned(hour);
    let gib = 1024 * 1024 * 1024u64;
    // A backup of 1 GiB every hour: new pair at first (reported), then its usual.
    for index in 0..5 {
        detectors.process(
            &mut state,
            &intel,
            &upload(base + index * hour + 17, gib),
            &mut findings,
        );
    }
    // Then 20 GiB: far above the usual.
    detectors.process(
        &mut state,
        &intel,
        &upload(base + 5 * hour + 17, 20 * gib),
        &mut findings,
    );
    detectors.flush(&mut state, &mut findings);
    let reported: Vec<(i64, Option<u64>)> = findings
        .iter()
        .map(|finding| {
            (
                (finding.window_start.timestamp() - base) / hour,
                finding.baseline_bytes,
            )
        })
        .collect();
    assert_eq!(reported, [(0, Some(0)), (5, Some(gib))]);
    assert_eq!(state.baseline_pairs(), 1);
}

#[test]
fn threat_intel_can_be_replaced_between_batches() {
    let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");
    let mut state = detectors.new_state();
    let listed = palisade_insights::network::parse_feed(
        "198.51.100.99\n".as_bytes(),
        &palisade_insights::network::FeedSpec {
            name: "bots".into(),
            format: palisade_insights::network::FeedFormat::Text,
            default_category: "botnet".into(),
            default_confidence: 60,
        },
    );
    let shared = SharedThreatIntel::new(Arc::new(ThreatIntel::default()));
    let contact = |at: i64| FlowRecord {
        src_addr: "10.0.0.9".parse().expect("valid"),
        dst_addr: "198.51.100.99".parse().expect("valid"),
        src_port: 45_000,
        dst_port: 6667,
        ..upload(at, 500)
    };
    let base = aligned(3600);
    let first = detectors.process_batch(&mut state, &shared.load(), &[contact(base + 10)]);
    shared.replace(Arc::new(ThreatIntel::build([(
        "bots",
        &listed.indicators[..],
    )])));
    let mut findings = first;
    findings.extend(detectors.process_batch(&mut state, &shared.load(), &[contact(base + 20)]));
    detectors.flush(&mut state, &mut findings);
    assert_eq!(findings.len(), 1, "{}", describe(&findings));
    assert_eq!(findings[0].finding_type, "xforce-bot_server");
    assert_eq!(
        findings[0].flow_count, 1,
        "only the flow after the swap matched"
    );
}

#[test]
fn memory_follows_active_pairs_not_input_length() {
    let detectors = NetworkDetectors::new(NetworkDetectorConfig::default()).expect("valid");
    let mut state = detectors.new_state();
    let intel = ThreatIntel::default();
    let mut findings = Vec::new();
    let config = GeneratorConfig {
        duration_seconds: 24 * 3600,
        background_records: 96_000,
        plant_attacks: false,
        ..GeneratorConfig::default()
    };
    let mut peak_at = BTreeMap::new();
    let mut seen = 0u64;
    generator::generate(&config, |record| {
        detectors.process(&mut state, &intel, record, &mut findings);
        seen += 1;
        if seen.is_multiple_of(8_000) {
            let open: u64 = state.stats().iter().map(|(_, stats)| stats.open_keys).sum();
            peak_at.insert(seen, open);
        }
    });
    // Open keys over the second half of the day stay within the range of the first half.
    let first_half_peak = peak_at
        .range(..=48_000)
        .map(|(_, open)| *open)
        .max()
        .expect("samples");
    let second_half_peak = peak_at
        .range(48_001..)
        .map(|(_, open)| *open)
        .max()
        .expect("samples");
    assert!(second_half_peak <= first_half_peak * 3 / 2, "{peak_at:?}");
    assert!(findings.is_empty());
}
