//! Random records written in every supported format, read back, compared field by field.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, SecondsFormat, Utc};
use palisade_logs::flow::{
    FlowDecodeSummary, FlowFormat, aws, decode_flows, decompress_if_gzipped,
};
use palisade_model::flow::{FlowAction, FlowDirection, FlowRecord, FlowSourceFormat};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

fn random_records(seed: u64, count: usize) -> Vec<FlowRecord> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let address = |rng: &mut StdRng| -> IpAddr {
                if rng.gen_bool(0.8) {
                    IpAddr::V4(Ipv4Addr::from(rng.r#gen::<u32>()))
                } else {
                    IpAddr::V6(Ipv6Addr::from(rng.r#gen::<u128>()))
                }
            };
            let start = rng.gen_range(1_500_000_000i64..1_900_000_000);
            FlowRecord {
                start: DateTime::from_timestamp(start, 0).expect("valid"),
                end: DateTime::from_timestamp(start + rng.gen_range(0..600), 0).expect("valid"),
                direction: FlowDirection::Unknown,
                action: if rng.gen_bool(0.7) {
                    FlowAction::Accept
                } else {
                    FlowAction::Reject
                },
                src_addr: address(&mut rng),
                dst_addr: address(&mut rng),
                src_port: rng.r#gen(),
                dst_port: rng.r#gen(),
                protocol: if rng.gen_bool(0.5) { 6 } else { 17 },
                packets: rng.gen_range(1..100_000),
                bytes: rng.gen_range(40..10_000_000_000),
                account_id: Some(format!("{:012}", rng.gen_range(0..1_000_000_000_000u64))),
                interface_id: Some(format!("eni-{:017x}", rng.r#gen::<u64>() >> 4)),
                ..FlowRecord::default()
            }
        })
        .collect()
}

fn decode_all(input: &[u8]) -> (Vec<FlowRecord>, FlowDecodeSummary) {
    let reader = decompress_if_gzipped(input).expect("in memory");
    let mut records = Vec::new();
    let summary = decode_flows(reader, "generated", FlowFormat::Auto, |record| {
        records.push(record.clone())
    });
    (records, summary)
}

#[test]
fn aws_default_format_plain_and_gzipped() {
    let records = random_records(1, 2_000);
    let mut text = Vec::new();
    for record in &records {
        aws::write_default_format_line(record, &mut text).expect("in memory");
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&text).expect("in memory");
    let gzipped = encoder.finish().expect("in memory");
    for input in [&text, &gzipped] {
        let (decoded, summary) = decode_all(input);
        assert_eq!(summary.bad_records, 0, "{:?}", summary.errors.first());
        assert_eq!(decoded, records);
    }
}

#[test]
fn aws_custom_format_in_shuffled_order_with_absent_fields() {
    use rand::seq::SliceRandom;
    let records = random_records(2, 500);
    let mut rng = StdRng::seed_from_u64(3);
    let mut fields = vec![
        "version",
        "account-id",
        "interface-id",
        "srcaddr",
        "dstaddr",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "action",
        "log-status",
        "flow-direction",
        "instance-id",
        "vpc-id",
        "tcp-flags",
        "reject-reason",
    ];
    fields.shuffle(&mut rng);
    let mut text = fields.join(" ") + "\n";
    for record in &records {
        let values: Vec<String> = fields
            .iter()
            .map(|field| match *field {
                "version" => "8".to_owned(),
                "account-id" => record.account_id.clone().unwrap_or_default(),
                "interface-id" => record.interface_id.clone().unwrap_or_default(),
                "srcaddr" => record.src_addr.to_string(),
                "dstaddr" => record.dst_addr.to_string(),
                "srcport" => record.src_port.to_string(),
                "dstport" => record.dst_port.to_string(),
                "protocol" => record.protocol.to_string(),
                "packets" => record.packets.to_string(),
                "bytes" => record.bytes.to_string(),
                "start" => record.start.timestamp().to_string(),
                "end" => record.end.timestamp().to_string(),
                "action" => if record.action == FlowAction::Accept {
                    "ACCEPT"
                } else {
                    "REJECT"
                }
                .to_owned(),
                "log-status" => "OK".to_owned(),
                "flow-direction" => if record.src_port % 2 == 0 {
                    "ingress"
                } else {
                    "egress"
                }
                .to_owned(),
                _ => "-".to_owned(),
            })
            .collect();
        text.push_str(&values.join(" "));
        text.push('\n');
    }
    let (decoded, summary) = decode_all(text.as_bytes());
    assert_eq!(summary.bad_records, 0, "{:?}", summary.errors.first());
    let expected: Vec<FlowRecord> = records
        .into_iter()
        .map(|record| FlowRecord {
            direction: if record.src_port % 2 == 0 {
                FlowDirection::Inbound
            } else {
                FlowDirection::Outbound
            },
            ..record
        })
        .collect();
    assert_eq!(decoded, expected);
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[test]
fn ibm_objects() {
    let records = random_records(4, 300);
    let flows: Vec<_> = records
        .iter()
        .map(|record| {
            json!({
                "start_time": rfc3339(record.start), "end_time": rfc3339(record.end),
                "direction": if record.src_port % 2 == 0 { "I" } else { "O" },
                "action": if record.action == FlowAction::Accept { "accepted" } else { "rejected" },
                "initiator_ip": record.src_addr, "target_ip": record.dst_addr,
                "initiator_port": record.src_port, "target_port": record.dst_port,
                "transport_protocol": record.protocol,
                "bytes_from_initiator": record.bytes, "packets_from_initiator": record.packets,
                "bytes_from_target": record.bytes / 2, "packets_from_target": record.packets / 2,
            })
        })
        .collect();
    let object = json!({
        "version": "0.0.1",
        "collector_crn": "crn:v1:bluemix:public:is:us-south:a/acct42::flow-log-collector:r006-1",
        "network_interface_id": "0717-nic", "instance_crn": "crn:v1:bluemix:public:is:us-south-1:a/acct42::instance:0717_x",
        "state": "ok", "number_of_flow_logs": flows.len(), "flow_logs": flows,
    });
    // Once pretty-printed (one document over many lines), once compact.
    for text in [
        serde_json::to_string_pretty(&object).expect("serialises"),
        serde_json::to_string(&object).expect("serialises"),
    ] {
        let (decoded, summary) = decode_all(text.as_bytes());
        assert_eq!(summary.bad_records, 0, "{:?}", summary.errors.first());
        let expected: Vec<FlowRecord> = records
            .iter()
            .map(|record| FlowRecord {
                direction: if record.src_port % 2 == 0 {
                    FlowDirection::Inbound
                } else {
                    FlowDirection::Outbound
                },
                reverse_bytes: Some(record.bytes / 2),
                reverse_packets: Some(record.packets / 2),
                account_id: Some("acct42".into()),
                interface_id: Some("0717-nic".into()),
                instance_id: Some(
                    "crn:v1:bluemix:public:is:us-south-1:a/acct42::instance:0717_x".into(),
                ),
                source_format: FlowSourceFormat::IbmVpc,
                ..record.clone()
            })
            .collect();
        assert_eq!(decoded, expected);
    }
}

#[test]
fn azure_nsg_versions_one_and_two() {
    let records = random_records(5, 300);
    for version in [1u8, 2] {
        let tuples: Vec<String> = records
            .iter()
            .map(|record| {
                let base = format!(
                    "{},{},{},{},{},{},{},{}",
                    record.start.timestamp(),
                    record.src_addr,
                    record.dst_addr,
                    record.src_port,
                    record.dst_port,
                    if record.protocol == 6 { "T" } else { "U" },
                    if record.src_port % 2 == 0 { "I" } else { "O" },
                    if record.action == FlowAction::Accept {
                        "A"
                    } else {
                        "D"
                    },
                );
                if version == 1 {
                    base
                } else {
                    format!(
                        "{base},E,{},{},{},{}",
                        record.packets,
                        record.bytes,
                        record.packets / 3,
                        record.bytes / 3
                    )
                }
            })
            .collect();
        let blob = json!({"records": [{
            "time": "2024-01-01T00:00:00Z", "category": "NetworkSecurityGroupFlowEvent",
            "resourceId": "/SUBSCRIPTIONS/SUB-1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/NSG",
            "properties": {"Version": version, "flows": [{"rule": "r", "flows": [{"mac": "000D3A000001", "flowTuples": tuples}]}]}
        }]});
        let (decoded, summary) = decode_all(blob.to_string().as_bytes());
        assert_eq!(summary.bad_records, 0, "{:?}", summary.errors.first());
        let expected: Vec<FlowRecord> = records
            .iter()
            .map(|record| FlowRecord {
                end: record.start,
                direction: if record.src_port % 2 == 0 {
                    FlowDirection::Inbound
                } else {
                    FlowDirection::Outbound
                },
                packets: if version == 1 { 0 } else { record.packets },
                bytes: if version == 1 { 0 } else { record.bytes },
                reverse_packets: (version == 2).then_some(record.packets / 3),
                reverse_bytes: (version == 2).then_some(record.bytes / 3),
                account_id: Some("SUB-1".into()),
                interface_id: Some("000D3A000001".into()),
                source_format: if version == 1 {
                    FlowSourceFormat::AzureNsgV1
                } else {
                    FlowSourceFormat::AzureNsgV2
                },
                ..record.clone()
            })
            .collect();
        assert_eq!(decoded, expected, "version {version}");
    }
}

#[test]
fn gcp_json_lines() {
    let records = random_records(6, 300);
    let mut text = String::new();
    for record in &records {
        let reporter = if record.src_port % 2 == 0 {
            "DEST"
        } else {
            "SRC"
        };
        let side = if reporter == "SRC" {
            "src_instance"
        } else {
            "dest_instance"
        };
        let entry = json!({
            "jsonPayload": {
                "connection": {"src_ip": record.src_addr, "dest_ip": record.dst_addr, "src_port": record.src_port, "dest_port": record.dst_port, "protocol": record.protocol},
                "bytes_sent": record.bytes.to_string(), "packets_sent": record.packets.to_string(),
                "start_time": rfc3339(record.start), "end_time": rfc3339(record.end), "reporter": reporter,
                side: {"project_id": "proj", "vm_name": "vm-1"},
            },
            "logName": "projects/proj/logs/compute.googleapis.com%2Fvpc_flows",
        });
        text.push_str(&entry.to_string());
        text.push('\n');
    }
    let (decoded, summary) = decode_all(text.as_bytes());
    assert_eq!(summary.bad_records, 0, "{:?}", summary.errors.first());
    let expected: Vec<FlowRecord> = records
        .iter()
        .map(|record| FlowRecord {
            direction: if record.src_port % 2 == 0 {
                FlowDirection::Inbound
            } else {
                FlowDirection::Outbound
            },
            action: FlowAction::Unknown,
            account_id: Some("proj".into()),
            instance_id: Some("vm-1".into()),
            interface_id: None,
            source_format: FlowSourceFormat::GcpVpc,
            ..record.clone()
        })
        .collect();
    assert_eq!(decoded, expected);
}

#[test]
fn truncated_gzip_is_reported_not_panicked() {
    let records = random_records(7, 2_000);
    let mut text = Vec::new();
    for record in &records {
        aws::write_default_format_line(record, &mut text).expect("in memory");
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&text).expect("in memory");
    let gzipped = encoder.finish().expect("in memory");
    let truncated = &gzipped[..gzipped.len() / 2];
    let (decoded, summary) = decode_all(truncated);
    assert!(!summary.complete);
    assert!(decoded.len() < records.len());
    assert_eq!(decoded[..], records[..decoded.len()]);
    assert!(
        summary
            .errors
            .last()
            .expect("an error")
            .message
            .contains("read failed")
    );
}
