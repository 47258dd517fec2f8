//! The normalised network flow the flow-log decoders produce and the network detectors read.
//!
//! One [`FlowRecord`] is one line of an AWS VPC flow log, one entry of an IBM Cloud VPC flow-log
//! object, one flow tuple of an Azure NSG flow log or one GCP VPC flow-log entry. The shape keeps
//! what every source has (a time window, the 5-tuple, packet and byte counts, what the firewall
//! did) and what a finding needs to point at the culprit (interface, instance, account).
//!
//! Ports are plain `u16` with `0` meaning "none" (ICMP and other port-less protocols, or a source
//! that did not record them), as AWS writes them: an `Option` would cost every detector a branch
//! for no information gain.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which way the traffic went, as seen from the monitored interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowDirection {
    /// Towards the monitored interface (AWS `ingress`, IBM `I`, Azure `I`, GCP reporter `DEST`).
    Inbound,
    /// Away from the monitored interface (AWS `egress`, IBM `O`, Azure `O`, GCP reporter `SRC`).
    Outbound,
    /// The source did not say (AWS versions before 5 without `flow-direction`).
    #[default]
    Unknown,
}

impl FlowDirection {
    /// Returns the wire spelling (`"inbound"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Unknown => "unknown",
        }
    }
}

/// What the security group / ACL / NSG did with the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowAction {
    /// Let through (AWS `ACCEPT`, IBM `accepted`, Azure `A`).
    Accept,
    /// Dropped (AWS `REJECT`, IBM `rejected`, Azure `D`).
    Reject,
    /// The source did not say.
    #[default]
    Unknown,
}

impl FlowAction {
    /// Returns the wire spelling (`"accept"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Unknown => "unknown",
        }
    }
}

/// The log format a record came from; kept so a finding can say where its evidence was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowSourceFormat {
    /// AWS VPC flow logs, text, versions 2 to 8.
    #[default]
    AwsVpc,
    /// IBM Cloud VPC flow-log objects (JSON).
    IbmVpc,
    /// Azure network security group flow logs, version 1.
    AzureNsgV1,
    /// Azure network security group flow logs, version 2.
    AzureNsgV2,
    /// Google Cloud VPC flow logs (Cloud Logging entries as exported).
    GcpVpc,
}

impl FlowSourceFormat {
    /// Returns the wire spelling (`"aws_vpc"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwsVpc => "aws_vpc",
            Self::IbmVpc => "ibm_vpc",
            Self::AzureNsgV1 => "azure_nsg_v1",
            Self::AzureNsgV2 => "azure_nsg_v2",
            Self::GcpVpc => "gcp_vpc",
        }
    }
}

impl fmt::Display for FlowSourceFormat {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// IANA protocol number of TCP.
pub const PROTOCOL_TCP: u8 = 6;
/// IANA protocol number of UDP.
pub const PROTOCOL_UDP: u8 = 17;
/// IANA protocol number of ICMP.
pub const PROTOCOL_ICMP: u8 = 1;

/// Returns the usual name of an IANA protocol number (`"tcp"`), or its number as text.
pub fn protocol_name(protocol: u8) -> std::borrow::Cow<'static, str> {
    match protocol {
        PROTOCOL_ICMP => "icmp".into(),
        PROTOCOL_TCP => "tcp".into(),
        PROTOCOL_UDP => "udp".into(),
        58 => "icmpv6".into(),
        other => other.to_string().into(),
    }
}

/// One normalised flow: traffic from `src_addr:src_port` to `dst_addr:dst_port` during
/// `[start, end]`.
///
/// `packets` and `bytes` count the `src → dst` direction. Formats that record both directions in
/// one entry (IBM VPC, Azure NSG version 2) also fill `reverse_packets` / `reverse_bytes`
/// (`dst → src`); AWS and GCP write one record per direction and leave them `None`.
///
/// Decoders reuse one `FlowRecord` for every line they read (the string fields keep their
/// capacity), so a caller that keeps records clones them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlowRecord {
    /// Start of the capture window (first packet seen in it), UTC.
    pub start: DateTime<Utc>,
    /// End of the capture window (last packet seen in it), UTC.
    pub end: DateTime<Utc>,
    /// Which way the traffic went, as seen from the monitored interface.
    pub direction: FlowDirection,
    /// What the firewall did.
    pub action: FlowAction,
    /// Source (for bidirectional formats: the initiator) address.
    #[schema(value_type = String, example = "10.0.1.5")]
    pub src_addr: IpAddr,
    /// Destination (for bidirectional formats: the target) address.
    #[schema(value_type = String, example = "203.0.113.7")]
    pub dst_addr: IpAddr,
    /// Source port; `0` when the protocol has none or the source did not record it.
    pub src_port: u16,
    /// Destination port; `0` when the protocol has none or the source did not record it.
    pub dst_port: u16,
    /// IANA protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub protocol: u8,
    /// Packets from source to destination.
    pub packets: u64,
    /// Bytes from source to destination.
    pub bytes: u64,
    /// Packets from destination back to source, where the format records them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_packets: Option<u64>,
    /// Bytes from destination back to source, where the format records them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_bytes: Option<u64>,
    /// Network interface the flow was captured on (AWS `eni-…`, IBM vNIC id, Azure MAC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_id: Option<String>,
    /// Instance behind the interface, where the format names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Cloud account / subscription / project the flow belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The log format the record was read from.
    pub source_format: FlowSourceFormat,
}

impl Default for FlowRecord {
    /// Returns an empty record (epoch times, unspecified addresses) for decoders to fill in.
    fn default() -> Self {
        Self {
            start: DateTime::<Utc>::UNIX_EPOCH,
            end: DateTime::<Utc>::UNIX_EPOCH,
            direction: FlowDirection::Unknown,
            action: FlowAction::Unknown,
            src_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            src_port: 0,
            dst_port: 0,
            protocol: 0,
            packets: 0,
            bytes: 0,
            reverse_packets: None,
            reverse_bytes: None,
            interface_id: None,
            instance_id: None,
            account_id: None,
            source_format: FlowSourceFormat::AwsVpc,
        }
    }
}

impl FlowRecord {
    /// Sets an optional text field from a borrowed value, keeping the field's allocation when it
    /// already holds one. Decoders call this for every record, so reusing the buffer is what keeps
    /// decoding free of per-record allocations.
    pub fn set_text(field: &mut Option<String>, value: Option<&str>) {
        match (field.as_mut(), value) {
            (Some(existing), Some(value)) => {
                existing.clear();
                existing.push_str(value);
            }
            (None, Some(value)) => *field = Some(value.to_owned()),
            (_, None) => *field = None,
        }
    }
}

/// Canonical 128-bit key of an address: IPv4 addresses are mapped into `::ffff:0:0/96`, so both
/// families share one key space (and one comparison, one hash) in detector state and indexes.
pub fn address_key(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => IPV4_MAPPED | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The inverse of [`address_key`]: keys in `::ffff:0:0/96` come back as IPv4 addresses.
pub fn key_address(key: u128) -> IpAddr {
    if key >> 32 == IPV4_MAPPED >> 32 {
        // The low 32 bits are the IPv4 address.
        IpAddr::V4(Ipv4Addr::from(key as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(key))
    }
}

const IPV4_MAPPED: u128 = 0xffff_0000_0000;

/// A flow without its text fields, in the shape a hot path reads: times as Unix seconds,
/// addresses as [`address_key`]s, absent reverse counts as `0`. It is `Copy` and allocation-free,
/// so decoders can hand out millions of them per second and detectors can keep one as evidence
/// without cloning strings. [`FlowRecord::compact`] makes one from a full record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub struct CompactFlow {
    /// Start of the capture window, Unix seconds.
    pub start: i64,
    /// End of the capture window, Unix seconds.
    pub end: i64,
    /// Source address key.
    pub src: u128,
    /// Destination address key.
    pub dst: u128,
    /// Packets from source to destination.
    pub packets: u64,
    /// Bytes from source to destination.
    pub bytes: u64,
    /// Packets from destination back to source (`0` where the format does not record them).
    pub reverse_packets: u64,
    /// Bytes from destination back to source (`0` where the format does not record them).
    pub reverse_bytes: u64,
    /// Source port (`0` when none).
    pub src_port: u16,
    /// Destination port (`0` when none).
    pub dst_port: u16,
    /// IANA protocol number.
    pub protocol: u8,
    /// What the firewall did.
    pub action: FlowAction,
    /// Which way the traffic went.
    pub direction: FlowDirection,
}

impl CompactFlow {
    /// The source address.
    pub fn src_addr(&self) -> IpAddr {
        key_address(self.src)
    }

    /// The destination address.
    pub fn dst_addr(&self) -> IpAddr {
        key_address(self.dst)
    }
}

impl FlowRecord {
    /// The record without its text fields (see [`CompactFlow`]).
    pub fn compact(&self) -> CompactFlow {
        CompactFlow {
            start: self.start.timestamp(),
            end: self.end.timestamp(),
            src: address_key(self.src_addr),
            dst: address_key(self.dst_addr),
            packets: self.packets,
            bytes: self.bytes,
            reverse_packets: self.reverse_packets.unwrap_or(0),
            reverse_bytes: self.reverse_bytes.unwrap_or(0),
            src_port: self.src_port,
            dst_port: self.dst_port,
            protocol: self.protocol,
            action: self.action,
            direction: self.direction,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_json_without_absent_fields() {
        let record = FlowRecord {
            start: DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
            end: DateTime::from_timestamp(1_700_000_060, 0).expect("valid"),
            direction: FlowDirection::Inbound,
            action: FlowAction::Reject,
            src_addr: "198.51.100.7".parse().expect("valid"),
            dst_addr: "2001:db8::1".parse().expect("valid"),
            src_port: 40_000,
            dst_port: 22,
            protocol: PROTOCOL_TCP,
            packets: 1,
            bytes: 60,
            interface_id: Some("eni-1".into()),
            ..FlowRecord::default()
        };
        let json = serde_json::to_value(&record).expect("serialises");
        assert_eq!(json["direction"], "inbound");
        assert_eq!(json["action"], "reject");
        assert_eq!(json["dst_addr"], "2001:db8::1");
        assert!(json.get("reverse_bytes").is_none());
        assert!(json.get("account_id").is_none());
        let back: FlowRecord = serde_json::from_value(json).expect("parses");
        assert_eq!(back, record);
    }

    #[test]
    fn set_text_reuses_and_clears() {
        let mut field = None;
        FlowRecord::set_text(&mut field, Some("eni-1"));
        assert_eq!(field.as_deref(), Some("eni-1"));
        FlowRecord::set_text(&mut field, Some("eni-22"));
        assert_eq!(field.as_deref(), Some("eni-22"));
        FlowRecord::set_text(&mut field, None);
        assert_eq!(field, None);
    }

    #[test]
    fn address_keys_round_trip_both_families() {
        for text in [
            "10.1.2.3",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8::1",
            "::1",
            "::",
        ] {
            let address: IpAddr = text.parse().expect("valid");
            assert_eq!(key_address(address_key(address)), address, "{text}");
        }
        // An IPv4-mapped IPv6 address shares the IPv4 key.
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().expect("valid");
        assert_eq!(
            address_key(mapped),
            address_key("10.1.2.3".parse().expect("valid"))
        );
    }

    #[test]
    fn compact_keeps_the_hot_fields() {
        let record = FlowRecord {
            start: DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
            end: DateTime::from_timestamp(1_700_000_060, 0).expect("valid"),
            src_addr: "10.0.0.1".parse().expect("valid"),
            dst_addr: "2001:db8::9".parse().expect("valid"),
            dst_port: 443,
            packets: 3,
            bytes: 120,
            reverse_bytes: Some(9),
            interface_id: Some("eni-1".into()),
            ..FlowRecord::default()
        };
        let compact = record.compact();
        assert_eq!((compact.start, compact.end), (1_700_000_000, 1_700_000_060));
        assert_eq!(compact.src_addr(), record.src_addr);
        assert_eq!(compact.dst_addr(), record.dst_addr);
        assert_eq!((compact.reverse_bytes, compact.reverse_packets), (9, 0));
    }

    #[test]
    fn protocol_names() {
        assert_eq!(protocol_name(6), "tcp");
        assert_eq!(protocol_name(47), "47");
    }
}
