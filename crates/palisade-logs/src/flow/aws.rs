//! AWS VPC flow logs, text: the default version 2 format and custom formats (versions 2 to 8)
//! named by a header line, fields in any order, `-` for an absent value.
//!
//! This is the hot path of network insights (S3 holds billions of these lines), so a line is
//! split with `memchr` into byte slices and each field is parsed in place: no `String` per field,
//! no allocation per line. Text fields (account, interface, instance) are copied into the reused
//! record's buffers.
//!
//! Which addresses: `srcaddr` / `dstaddr` (the interface-level addresses, which the port fields
//! describe) rather than `pkt-srcaddr` / `pkt-dstaddr`, so the 5-tuple stays consistent.

use std::io::{self, BufRead, Write};
use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Utc};
use palisade_model::flow::{FlowAction, FlowDirection, FlowRecord, FlowSourceFormat};

use super::{FlowDecodeError, FlowDecodeSummary};

/// One column of an AWS flow-log line, as named in a header line or a custom format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsField {
    /// `version`
    Version,
    /// `account-id`
    AccountId,
    /// `interface-id`
    InterfaceId,
    /// `srcaddr`
    SrcAddr,
    /// `dstaddr`
    DstAddr,
    /// `srcport`
    SrcPort,
    /// `dstport`
    DstPort,
    /// `protocol`
    Protocol,
    /// `packets`
    Packets,
    /// `bytes`
    Bytes,
    /// `start`
    Start,
    /// `end`
    End,
    /// `action`
    Action,
    /// `log-status`
    LogStatus,
    /// `instance-id` (version 3 and later)
    InstanceId,
    /// `flow-direction` (version 5 and later)
    FlowDirection,
    /// Any other known or future field; read past without parsing.
    Ignored,
}

impl AwsField {
    /// Maps a field name (`srcaddr`, `${srcaddr}`, `log_status` — Athena and Parquet spell names
    /// with underscores) to a column.
    pub fn from_name(name: &str) -> Self {
        let bare = name.trim_start_matches("${").trim_end_matches('}');
        match bare.replace('_', "-").as_str() {
            "version" => Self::Version,
            "account-id" => Self::AccountId,
            "interface-id" => Self::InterfaceId,
            "srcaddr" => Self::SrcAddr,
            "dstaddr" => Self::DstAddr,
            "srcport" => Self::SrcPort,
            "dstport" => Self::DstPort,
            "protocol" => Self::Protocol,
            "packets" => Self::Packets,
            "bytes" => Self::Bytes,
            "start" => Self::Start,
            "end" => Self::End,
            "action" => Self::Action,
            "log-status" => Self::LogStatus,
            "instance-id" => Self::InstanceId,
            "flow-direction" => Self::FlowDirection,
            _ => Self::Ignored,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Version => "version",
            Self::AccountId => "account-id",
            Self::InterfaceId => "interface-id",
            Self::SrcAddr => "srcaddr",
            Self::DstAddr => "dstaddr",
            Self::SrcPort => "srcport",
            Self::DstPort => "dstport",
            Self::Protocol => "protocol",
            Self::Packets => "packets",
            Self::Bytes => "bytes",
            Self::Start => "start",
            Self::End => "end",
            Self::Action => "action",
            Self::LogStatus => "log-status",
            Self::InstanceId => "instance-id",
            Self::FlowDirection => "flow-direction",
            Self::Ignored => "(ignored)",
        }
    }
}

/// The column order of the default format (version 2), used when a file has no header line.
pub const DEFAULT_FORMAT: [AwsField; 14] = [
    AwsField::Version,
    AwsField::AccountId,
    AwsField::InterfaceId,
    AwsField::SrcAddr,
    AwsField::DstAddr,
    AwsField::SrcPort,
    AwsField::DstPort,
    AwsField::Protocol,
    AwsField::Packets,
    AwsField::Bytes,
    AwsField::Start,
    AwsField::End,
    AwsField::Action,
    AwsField::LogStatus,
];

/// The field order of one file: the default format, or what its header line said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsLayout {
    columns: Vec<AwsField>,
}

impl Default for AwsLayout {
    fn default() -> Self {
        Self {
            columns: DEFAULT_FORMAT.to_vec(),
        }
    }
}

impl AwsLayout {
    /// Parses a header line (`version account-id … log-status`) or a custom format string
    /// (`${version} ${srcaddr} …`).
    ///
    /// # Errors
    /// Names the required field the header lacks: a flow needs `srcaddr`, `dstaddr` and `start`.
    pub fn from_header(header: &str) -> Result<Self, String> {
        let columns: Vec<AwsField> = header
            .split_ascii_whitespace()
            .map(AwsField::from_name)
            .collect();
        for required in [AwsField::SrcAddr, AwsField::DstAddr, AwsField::Start] {
            if !columns.contains(&required) {
                return Err(format!("header line has no `{}` field", required.name()));
            }
        }
        Ok(Self { columns })
    }

    /// The columns in file order.
    pub fn columns(&self) -> &[AwsField] {
        &self.columns
    }
}

/// What one data line turned out to be.
enum LineOutcome {
    Flow,
    NoData,
}

/// Decodes AWS VPC flow-log text, calling `on_record` for every flow line.
///
/// A line whose first field starts with a letter or `$` is a header line and sets the layout for
/// the lines after it (S3 objects of custom formats start with one; concatenated objects may carry
/// several). Blank lines are skipped.
pub fn decode_aws_vpc_text<R, F>(
    mut reader: R,
    source_name: &str,
    mut on_record: F,
) -> FlowDecodeSummary
where
    R: BufRead,
    F: FnMut(&FlowRecord),
{
    let mut summary = FlowDecodeSummary::new();
    let mut layout = AwsLayout::default();
    let mut record = FlowRecord {
        source_format: FlowSourceFormat::AwsVpc,
        ..FlowRecord::default()
    };
    let mut line = Vec::with_capacity(512);
    let mut line_number = 0u64;
    let mut times = TimeCaches::default();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                summary.push_io_error(source_name, line_number + 1, &error);
                break;
            }
        }
        line_number += 1;
        let trimmed = trim_line_end(&line);
        let Some(&first) = trimmed.iter().find(|byte| **byte != b' ') else {
            continue;
        };
        if first.is_ascii_alphabetic() || first == b'$' {
            match std::str::from_utf8(trimmed)
                .map_err(|_| "header line is not UTF-8".to_owned())
                .and_then(AwsLayout::from_header)
            {
                Ok(new_layout) => layout = new_layout,
                Err(message) => summary.push_error(FlowDecodeError {
                    source_name: source_name.to_owned(),
                    line: line_number,
                    pointer: None,
                    message,
                }),
            }
            continue;
        }
        match parse_line(trimmed, &layout, &mut record, &mut times) {
            Ok(LineOutcome::Flow) => {
                summary.records += 1;
                on_record(&record);
            }
            Ok(LineOutcome::NoData) => summary.skipped_without_data += 1,
            Err(message) => summary.push_error(FlowDecodeError {
                source_name: source_name.to_owned(),
                line: line_number,
                pointer: None,
                message,
            }),
        }
    }
    summary
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    &line[..end]
}

/// Parses one data line into `record`. Errors name the field and quote the bad value.
fn parse_line(
    line: &[u8],
    layout: &AwsLayout,
    record: &mut FlowRecord,
    times: &mut TimeCaches,
) -> Result<LineOutcome, String> {
    let columns = layout.columns();
    let mut saw_start = false;
    let mut saw_end = false;
    let mut saw_source = false;
    let mut saw_destination = false;
    let mut no_data = false;
    record.direction = FlowDirection::Unknown;
    record.action = FlowAction::Unknown;
    record.src_port = 0;
    record.dst_port = 0;
    record.protocol = 0;
    record.packets = 0;
    record.bytes = 0;
    record.reverse_packets = None;
    record.reverse_bytes = None;
    let mut account_seen = false;
    let mut interface_seen = false;
    let mut instance_seen = false;

    let mut position = 0usize;
    let mut column_index = 0usize;
    while position < line.len() {
        // Runs of spaces count as one separator.
        if line[position] == b' ' {
            position += 1;
            continue;
        }
        let field_end =
            memchr::memchr(b' ', &line[position..]).map_or(line.len(), |offset| position + offset);
        let value = &line[position..field_end];
        position = field_end;
        let Some(&column) = columns.get(column_index) else {
            return Err(format!(
                "more fields than the {} the format names",
                columns.len()
            ));
        };
        column_index += 1;
        let absent = value == b"-";
        match column {
            AwsField::Ignored | AwsField::Version => {}
            AwsField::LogStatus => no_data = value == b"NODATA" || value == b"SKIPDATA",
            AwsField::SrcAddr if !absent => {
                record.src_addr = parse_address(value, column)?;
                saw_source = true;
            }
            AwsField::DstAddr if !absent => {
                record.dst_addr = parse_address(value, column)?;
                saw_destination = true;
            }
            AwsField::SrcPort if !absent => record.src_port = parse_number(value, column)?,
            AwsField::DstPort if !absent => record.dst_port = parse_number(value, column)?,
            AwsField::Protocol if !absent => record.protocol = parse_number(value, column)?,
            AwsField::Packets if !absent => record.packets = parse_number(value, column)?,
            AwsField::Bytes if !absent => record.bytes = parse_number(value, column)?,
            AwsField::Start if !absent => {
                record.start = times.start.time(value, column)?;
                saw_start = true;
            }
            AwsField::End if !absent => {
                record.end = times.end.time(value, column)?;
                saw_end = true;
            }
            AwsField::Action if !absent => {
                record.action = match value {
                    b"ACCEPT" => FlowAction::Accept,
                    b"REJECT" => FlowAction::Reject,
                    other => return Err(invalid(column, other, "expected ACCEPT or REJECT")),
                }
            }
            AwsField::FlowDirection if !absent => {
                record.direction = match value {
                    b"ingress" => FlowDirection::Inbound,
                    b"egress" => FlowDirection::Outbound,
                    other => return Err(invalid(column, other, "expected ingress or egress")),
                }
            }
            AwsField::AccountId if !absent => {
                FlowRecord::set_text(&mut record.account_id, Some(text(value, column)?));
                account_seen = true;
            }
            AwsField::InterfaceId if !absent => {
                FlowRecord::set_text(&mut record.interface_id, Some(text(value, column)?));
                interface_seen = true;
            }
            AwsField::InstanceId if !absent => {
                FlowRecord::set_text(&mut record.instance_id, Some(text(value, column)?));
                instance_seen = true;
            }
            _ => {}
        }
    }
    if column_index != columns.len() {
        return Err(format!(
            "expected {} fields ({}), found {column_index}",
            columns.len(),
            if columns == DEFAULT_FORMAT {
                "default version 2 format"
            } else {
                "as the header line names"
            }
        ));
    }
    if no_data || !saw_source || !saw_destination {
        if no_data {
            return Ok(LineOutcome::NoData);
        }
        let missing = if saw_source { "dstaddr" } else { "srcaddr" };
        return Err(format!(
            "field `{missing}` is absent (`-`) on a line that is not NODATA/SKIPDATA"
        ));
    }
    if !saw_start {
        return Err("field `start` is absent".to_owned());
    }
    if !saw_end {
        record.end = record.start;
    }
    if !account_seen {
        record.account_id = None;
    }
    if !interface_seen {
        record.interface_id = None;
    }
    if !instance_seen {
        record.instance_id = None;
    }
    Ok(LineOutcome::Flow)
}

fn invalid(column: AwsField, value: &[u8], expectation: &str) -> String {
    format!(
        "field `{}`: invalid value `{}`: {expectation}",
        column.name(),
        String::from_utf8_lossy(value)
    )
}

fn text(value: &[u8], column: AwsField) -> Result<&str, String> {
    std::str::from_utf8(value).map_err(|_| invalid(column, value, "not UTF-8"))
}

fn parse_address(value: &[u8], column: AwsField) -> Result<IpAddr, String> {
    if let Some(v4) = parse_ipv4(value) {
        return Ok(IpAddr::V4(v4));
    }
    // IPv6 (and anything odd) takes the standard parser; `IpAddr::parse_ascii` is not stable yet.
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| invalid(column, value, "not an IP address"))
}

/// Parses a dotted-quad IPv4 address straight from bytes (four decimal octets, each at most 255
/// and three digits long); `None` for anything else, which then goes to the standard parser.
fn parse_ipv4(value: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut octet_index = 0usize;
    let mut current: u16 = 0;
    let mut digits = 0u8;
    for &byte in value {
        if byte == b'.' {
            if digits == 0 || octet_index == 3 {
                return None;
            }
            octets[octet_index] = u8::try_from(current).ok()?;
            octet_index += 1;
            current = 0;
            digits = 0;
        } else {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 || digits == 3 {
                return None;
            }
            current = current * 10 + u16::from(digit);
            digits += 1;
        }
    }
    if digits == 0 || octet_index != 3 {
        return None;
    }
    octets[3] = u8::try_from(current).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// Parses a decimal number without going through `str` (the bytes are ASCII digits or an error).
fn parse_number<T: TryFrom<u64>>(value: &[u8], column: AwsField) -> Result<T, String> {
    if value.is_empty() || value.len() > 20 {
        return Err(invalid(column, value, "not a number"));
    }
    let mut accumulated: u64 = 0;
    for &byte in value {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return Err(invalid(column, value, "not a number"));
        }
        accumulated = accumulated
            .checked_mul(10)
            .and_then(|shifted| shifted.checked_add(u64::from(digit)))
            .ok_or_else(|| invalid(column, value, "number too large"))?;
    }
    T::try_from(accumulated).map_err(|_| invalid(column, value, "number out of range"))
}

/// The last epoch-seconds text parsed for a column and its time: lines of one file share a few
/// aggregation windows, and turning seconds into a date is the costliest step of a line.
#[derive(Default)]
struct TimeCache {
    text: [u8; 20],
    length: usize,
    time: Option<DateTime<Utc>>,
}

impl TimeCache {
    fn time(&mut self, value: &[u8], column: AwsField) -> Result<DateTime<Utc>, String> {
        if let Some(time) = self.time
            && value.len() == self.length
            && value == &self.text[..self.length]
        {
            return Ok(time);
        }
        let time = parse_epoch_seconds(value, column)?;
        // parse_epoch_seconds accepted at most 20 digits, so the text fits.
        self.text[..value.len()].copy_from_slice(value);
        self.length = value.len();
        self.time = Some(time);
        Ok(time)
    }
}

#[derive(Default)]
struct TimeCaches {
    start: TimeCache,
    end: TimeCache,
}

fn parse_epoch_seconds(value: &[u8], column: AwsField) -> Result<DateTime<Utc>, String> {
    let seconds: u64 = parse_number(value, column)?;
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .ok_or_else(|| invalid(column, value, "time out of range"))
}

/// Writes `record` as one line of the default version 2 format (with its newline).
///
/// Used by the traffic generator (tests, benchmarks, `palisade netscan --generate`); absent text
/// fields are written as `-`, as AWS does.
///
/// # Errors
/// Returns the writer's error.
pub fn write_default_format_line<W: Write>(record: &FlowRecord, out: &mut W) -> io::Result<()> {
    writeln!(
        out,
        "2 {} {} {} {} {} {} {} {} {} {} {} {} OK",
        record.account_id.as_deref().unwrap_or("-"),
        record.interface_id.as_deref().unwrap_or("-"),
        record.src_addr,
        record.dst_addr,
        record.src_port,
        record.dst_port,
        record.protocol,
        record.packets,
        record.bytes,
        record.start.timestamp(),
        record.end.timestamp(),
        match record.action {
            FlowAction::Reject => "REJECT",
            FlowAction::Accept | FlowAction::Unknown => "ACCEPT",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> (Vec<FlowRecord>, FlowDecodeSummary) {
        let mut records = Vec::new();
        let summary = decode_aws_vpc_text(text.as_bytes(), "t.log", |record| {
            records.push(record.clone())
        });
        (records, summary)
    }

    #[test]
    fn default_format_line_decodes_every_field() {
        let (records, summary) = decode(
            "2 123 eni-9 10.0.0.5 198.51.100.2 443 51000 6 12 3000 1700000000 1700000055 REJECT OK\n",
        );
        assert_eq!(summary.bad_records, 0);
        let record = &records[0];
        assert_eq!(record.src_addr.to_string(), "10.0.0.5");
        assert_eq!(
            (record.src_port, record.dst_port, record.protocol),
            (443, 51000, 6)
        );
        assert_eq!((record.packets, record.bytes), (12, 3000));
        assert_eq!(record.action, FlowAction::Reject);
        assert_eq!(record.end.timestamp() - record.start.timestamp(), 55);
        assert_eq!(record.account_id.as_deref(), Some("123"));
        assert_eq!(record.interface_id.as_deref(), Some("eni-9"));
    }

    #[test]
    fn custom_header_reorders_fields_and_dash_means_absent() {
        let text = "start dstaddr srcaddr flow-direction instance-id dstport\n\
                    1700000000 10.0.0.1 192.0.2.1 ingress - 22\n";
        let (records, summary) = decode(text);
        assert_eq!(summary.bad_records, 0, "{:?}", summary.errors);
        assert_eq!(records[0].dst_addr.to_string(), "10.0.0.1");
        assert_eq!(records[0].direction, FlowDirection::Inbound);
        assert_eq!(records[0].instance_id, None);
        assert_eq!(records[0].end, records[0].start);
        assert_eq!(records[0].dst_port, 22);
    }

    #[test]
    fn bad_lines_are_reported_with_line_and_field_and_skipped() {
        let text = "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT OK\n\
                    2 1 eni-1 10.0.0.999 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT OK\n\
                    2 1 eni-1 10.0.0.1 10.0.0.2 1 70000 6 1 40 1700000000 1700000001 ACCEPT OK\n\
                    2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000001 MAYBE OK\n\
                    2 1 eni-1 10.0.0.1\n\
                    2 1 eni-1 - - - - - - - 1700000000 1700000001 - NODATA\n\
                    2 1 eni-1 10.0.0.3 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT OK\n";
        let (records, summary) = decode(text);
        assert_eq!(records.len(), 2);
        assert_eq!(summary.skipped_without_data, 1);
        let lines: Vec<u64> = summary.errors.iter().map(|error| error.line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert!(
            summary.errors[0].message.contains("srcaddr"),
            "{}",
            summary.errors[0]
        );
        assert!(
            summary.errors[1].message.contains("dstport"),
            "{}",
            summary.errors[1]
        );
        assert!(
            summary.errors[2].message.contains("action"),
            "{}",
            summary.errors[2]
        );
        assert!(
            summary.errors[3].message.contains("expected 14 fields"),
            "{}",
            summary.errors[3]
        );
    }

    #[test]
    fn header_without_addresses_is_an_error() {
        let (_, summary) = decode("version packets bytes\n");
        assert_eq!(summary.bad_records, 1);
        assert!(summary.errors[0].message.contains("srcaddr"));
    }

    #[test]
    fn field_names_accept_underscores_and_placeholders() {
        assert_eq!(AwsField::from_name("log_status"), AwsField::LogStatus);
        assert_eq!(
            AwsField::from_name("${flow-direction}"),
            AwsField::FlowDirection
        );
        assert_eq!(AwsField::from_name("ecs-task-id"), AwsField::Ignored);
    }

    #[test]
    fn written_lines_decode_back() {
        let (records, _) = decode(
            "2 123 eni-9 2001:db8::5 198.51.100.2 443 51000 6 12 3000 1700000000 1700000055 ACCEPT OK\n",
        );
        let mut out = Vec::new();
        write_default_format_line(&records[0], &mut out).expect("in memory");
        let (again, summary) = decode(std::str::from_utf8(&out).expect("ascii"));
        assert_eq!(summary.bad_records, 0);
        assert_eq!(again, records);
    }

    #[test]
    fn ipv4_fast_path_agrees_with_std() {
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "10.1.22.133",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.4a",
            "0001.2.3.4",
            "",
        ] {
            assert_eq!(parse_ipv4(text.as_bytes()), text.parse().ok(), "{text}");
        }
    }

    #[test]
    fn numbers_reject_overflow_and_signs() {
        assert!(parse_number::<u8>(b"256", AwsField::Protocol).is_err());
        assert!(parse_number::<u64>(b"-1", AwsField::Bytes).is_err());
        assert!(parse_number::<u64>(b"99999999999999999999", AwsField::Bytes).is_err());
        assert_eq!(parse_number::<u16>(b"65535", AwsField::DstPort), Ok(65535));
    }
}
