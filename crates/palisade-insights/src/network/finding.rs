//! What the network detectors report: [`NetworkFinding`], with the evidence flows and the two
//! SCC Findings-API blocks it maps to ([`NetworkConnection`], [`DataTransferred`]).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use palisade_model::finding::Severity;
use palisade_model::flow::{FlowAction, FlowDirection, FlowRecord};
use serde::{Deserialize, Serialize};

use super::intel::IntelMatch;

/// Which detector produced a finding (also the key of the per-detector summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    /// Traffic to or from threat-intelligence addresses (`xforce-…` types).
    ThreatIntel,
    /// Vertical, horizontal and distributed port scans.
    PortScan,
    /// Many short connections to a remote-access or database port.
    BruteForce,
    /// Unusually large uploads to an external peer.
    Exfiltration,
    /// Regular-interval contact with an external peer.
    Beaconing,
}

impl DetectorKind {
    /// Every detector, in report order.
    pub const ALL: [DetectorKind; 5] = [
        Self::ThreatIntel,
        Self::PortScan,
        Self::BruteForce,
        Self::Exfiltration,
        Self::Beaconing,
    ];

    /// Returns the wire spelling (`"port_scan"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ThreatIntel => "threat_intel",
            Self::PortScan => "port_scan",
            Self::BruteForce => "brute_force",
            Self::Exfiltration => "exfiltration",
            Self::Beaconing => "beaconing",
        }
    }
}

/// One flow kept as evidence: the 5-tuple, counts and times, without the text fields (evidence is
/// kept for every tracked pair, so it must not allocate per flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceFlow {
    /// Start of the flow's capture window.
    pub start: DateTime<Utc>,
    /// End of the flow's capture window.
    pub end: DateTime<Utc>,
    /// Source address.
    pub src_addr: IpAddr,
    /// Destination address.
    pub dst_addr: IpAddr,
    /// Source port (`0` when none).
    pub src_port: u16,
    /// Destination port (`0` when none).
    pub dst_port: u16,
    /// IANA protocol number.
    pub protocol: u8,
    /// Packets source → destination.
    pub packets: u64,
    /// Bytes source → destination.
    pub bytes: u64,
    /// What the firewall did.
    pub action: FlowAction,
    /// Direction as the log recorded it.
    pub direction: FlowDirection,
}

impl From<&FlowRecord> for EvidenceFlow {
    fn from(record: &FlowRecord) -> Self {
        Self {
            start: record.start,
            end: record.end,
            src_addr: record.src_addr,
            dst_addr: record.dst_addr,
            src_port: record.src_port,
            dst_port: record.dst_port,
            protocol: record.protocol,
            packets: record.packets,
            bytes: record.bytes,
            action: record.action,
            direction: record.direction,
        }
    }
}

/// One side of a connection in the Findings API (`client` / `server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The address.
    pub address: IpAddr,
    /// The port, when the finding is about one port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// The Findings API `finding.network_connection` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConnection {
    /// `inbound` when the client is outside the monitored networks, `outbound` when inside.
    pub direction: FlowDirection,
    /// Protocol name (`tcp`, `udp`, `icmp`, or the IANA number).
    pub protocol: String,
    /// Who initiated (the scanner, the internal host calling out…).
    pub client: Endpoint,
    /// Who was contacted.
    pub server: Endpoint,
}

/// The Findings API `finding.data_transferred` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DataTransferred {
    /// Bytes the client sent.
    pub client_bytes: u64,
    /// Bytes the server sent (where the logs record the reverse direction).
    pub server_bytes: u64,
    /// Packets the client sent.
    pub client_packets: u64,
    /// Packets the server sent.
    pub server_packets: u64,
}

/// One detection: what happened, between whom, when, how much, and the flows that show it.
///
/// `type` is the alert-filter name: `port_scan_vertical`, `port_scan_horizontal`,
/// `port_scan_distributed`, `brute_force`, `exfiltration`, `beaconing`, or an `xforce-…` name for
/// threat-intelligence hits (SCC's Network Insights names, so existing filters keep working).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkFinding {
    /// Stable identifier (type, client, server, port, window start): the same detection over the
    /// same input always gets the same id, so a server can upsert occurrences with it.
    pub id: String,
    /// The finding type (see above).
    #[serde(rename = "type")]
    pub finding_type: String,
    /// The detector that produced it.
    pub detector: DetectorKind,
    /// How serious it is.
    pub severity: Severity,
    /// One sentence for humans.
    pub summary: String,
    /// Who, to whom, over what: the Findings API `network_connection`.
    pub network_connection: NetworkConnection,
    /// How much: the Findings API `data_transferred`.
    pub data_transferred: DataTransferred,
    /// Every source address involved (more than one for distributed scans), at most
    /// [`MAX_LISTED`] of them.
    pub src_addresses: Vec<IpAddr>,
    /// Every destination address involved (more than one for horizontal scans), capped alike.
    pub dst_addresses: Vec<IpAddr>,
    /// Distinct destination ports involved, ascending, capped alike.
    pub dst_ports: Vec<u16>,
    /// Flows counted by the detector in the window.
    pub flow_count: u64,
    /// Of those, flows the firewall rejected.
    pub rejected_flow_count: u64,
    /// Distinct values the detector counted (ports, targets, sources, connections…), when the
    /// finding is about a count; may be more than the listed values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_count: Option<u64>,
    /// Start of the detection window (flow time).
    pub window_start: DateTime<Utc>,
    /// End of the detection window (flow time, exclusive).
    pub window_end: DateTime<Utc>,
    /// Start of the first counted flow.
    pub first_seen: DateTime<Utc>,
    /// End of the last counted flow.
    pub last_seen: DateTime<Utc>,
    /// The threat-intelligence entry that matched, for `xforce-…` findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threat_intel: Option<IntelMatch>,
    /// The pair's usual bytes per window before this one (exfiltration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_bytes: Option<u64>,
    /// The typical gap between connections, seconds (beaconing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// The first flows that made up the detection, at most the configured number.
    pub evidence: Vec<EvidenceFlow>,
}

/// How many addresses or ports a finding lists at most; counts stay exact.
pub const MAX_LISTED: usize = 100;

/// Builds the stable finding id from its identifying parts.
pub(crate) fn finding_id(
    finding_type: &str,
    client: IpAddr,
    server: IpAddr,
    port: Option<u16>,
    window_start: DateTime<Utc>,
) -> String {
    let port_text = port.map_or_else(|| "-".to_owned(), |port| port.to_string());
    format!(
        "{finding_type}:{client}:{server}:{port_text}:{}",
        window_start.timestamp()
    )
}
