//! AWS VPC flow logs, text: the default version 2 format and custom formats (versions 2 to 8)
//! named by a header line, fields in any order, `-` for an absent value.
//!
//! This is the hot path of network insights (S3 holds billions of these lines), so lines are
//! found with `memchr` and read in place in the reader's buffer, fields are split with a byte loop
//! and parsed where they lie: no `String` per field, no copy or allocation per line. The compact
//! paths ([`decode_aws_vpc_compact`], [`decode_aws_chunk`]) produce a [`CompactFlow`] and never touch
//! the text fields beyond checking them; the record path copies account, interface and instance
//! into the reused record's buffers. Addresses come out as their canonical form
//! (`::ffff:a.b.c.d` as `a.b.c.d`).
//!
//! Which addresses: `srcaddr` / `dstaddr` (the interface-level addresses, which the port fields
//! describe) rather than `pkt-srcaddr` / `pkt-dstaddr`, so the 5-tuple stays consistent.

use std::io::{self, BufRead, Write};
use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Utc};
use palisade_model::flow::{
    CompactFlow, FlowAction, FlowDirection, FlowRecord, FlowSourceFormat, address_key, key_address,
};

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

/// The text fields of a data line, borrowed from it and checked to be UTF-8 (`None` when
/// absent). Kept as bytes: the compact path never needs them as `str`.
#[derive(Default)]
struct LineText<'line> {
    account: Option<&'line [u8]>,
    interface: Option<&'line [u8]>,
    instance: Option<&'line [u8]>,
}

/// Line-level decoding of one AWS text source: the layout in force (header lines change it), the
/// line count and the summary. Both the record and the compact paths go through it, so they
/// accept and reject exactly the same lines.
struct AwsLines<'source> {
    source_name: &'source str,
    layout: AwsLayout,
    /// Whether `layout` is the default format, which has a one-pass fast path.
    default_layout: bool,
    line_number: u64,
    summary: FlowDecodeSummary,
}

impl<'source> AwsLines<'source> {
    fn new(source_name: &'source str, layout: AwsLayout, lines_before: u64) -> Self {
        Self {
            source_name,
            default_layout: layout.columns() == DEFAULT_FORMAT,
            layout,
            line_number: lines_before,
            summary: FlowDecodeSummary::new(),
        }
    }

    /// Decodes one line (without its `\n`) into `flow`; returns its text fields when it is a
    /// flow, `None` for headers, blank lines, no-data lines and bad lines (which are recorded).
    fn line<'line>(&mut self, raw: &'line [u8], flow: &mut CompactFlow) -> Option<LineText<'line>> {
        self.line_number += 1;
        let trimmed = trim_line_end(raw);
        let first = *trimmed.iter().find(|byte| **byte != b' ')?;
        if first.is_ascii_alphabetic() || first == b'$' {
            match std::str::from_utf8(trimmed)
                .map_err(|_| "header line is not UTF-8".to_owned())
                .and_then(AwsLayout::from_header)
            {
                Ok(new_layout) => {
                    self.default_layout = new_layout.columns() == DEFAULT_FORMAT;
                    self.layout = new_layout;
                }
                Err(message) => self.error(message),
            }
            return None;
        }
        let mut text = LineText::default();
        if self.default_layout && parse_default_line(trimmed, flow, &mut text).is_some() {
            self.summary.records += 1;
            return Some(text);
        }
        text = LineText::default();
        match parse_line(trimmed, &self.layout, flow, &mut text) {
            Ok(LineOutcome::Flow) => {
                self.summary.records += 1;
                Some(text)
            }
            Ok(LineOutcome::NoData) => {
                self.summary.skipped_without_data += 1;
                None
            }
            Err(message) => {
                self.error(message);
                None
            }
        }
    }

    fn error(&mut self, message: String) {
        self.summary.push_error(FlowDecodeError {
            source_name: self.source_name.to_owned(),
            line: self.line_number,
            pointer: None,
            message,
        });
    }
}

/// Calls `on_line` with every line of `reader` (without its `\n`), in place in the reader's
/// buffer: only a line that straddles two buffer fills is copied. Returns the number of lines, or
/// the I/O error that ended the source and the number of lines read before it.
fn for_each_line<R: BufRead>(
    reader: &mut R,
    mut on_line: impl FnMut(&[u8]),
) -> Result<u64, (io::Error, u64)> {
    let mut partial: Vec<u8> = Vec::new();
    let mut lines = 0u64;
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err((error, lines)),
        };
        if buffer.is_empty() {
            if !partial.is_empty() {
                lines += 1;
                on_line(&partial);
            }
            return Ok(lines);
        }
        let length = buffer.len();
        let mut rest = buffer;
        if !partial.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    partial.extend_from_slice(&rest[..end]);
                    lines += 1;
                    on_line(&partial);
                    partial.clear();
                    rest = &rest[end + 1..];
                }
                None => {
                    partial.extend_from_slice(rest);
                    reader.consume(length);
                    continue;
                }
            }
        }
        let mut from = 0usize;
        for end in memchr::memchr_iter(b'\n', rest) {
            lines += 1;
            on_line(&rest[from..end]);
            from = end + 1;
        }
        partial.extend_from_slice(&rest[from..]);
        reader.consume(length);
    }
}

/// Runs [`AwsLines`] over a whole reader.
fn decode_lines<R, F>(mut reader: R, source_name: &str, mut on_flow: F) -> FlowDecodeSummary
where
    R: BufRead,
    F: FnMut(&CompactFlow, LineText<'_>),
{
    let mut lines = AwsLines::new(source_name, AwsLayout::default(), 0);
    let mut flow = CompactFlow::default();
    let outcome = for_each_line(&mut reader, |raw| {
        if let Some(text) = lines.line(raw, &mut flow) {
            on_flow(&flow, text);
        }
    });
    if let Err((error, lines_read)) = outcome {
        lines
            .summary
            .push_io_error(source_name, lines_read + 1, &error);
    }
    lines.summary
}

/// Decodes AWS VPC flow-log text, calling `on_record` for every flow line.
///
/// A line whose first field starts with a letter or `$` is a header line and sets the layout for
/// the lines after it (S3 objects of custom formats start with one; concatenated objects may carry
/// several). Blank lines are skipped.
pub fn decode_aws_vpc_text<R, F>(
    reader: R,
    source_name: &str,
    mut on_record: F,
) -> FlowDecodeSummary
where
    R: BufRead,
    F: FnMut(&FlowRecord),
{
    let mut record = FlowRecord {
        source_format: FlowSourceFormat::AwsVpc,
        ..FlowRecord::default()
    };
    let mut times = TimeCaches::default();
    decode_lines(reader, source_name, |flow, text| {
        fill_record(&mut record, flow, &text, &mut times);
        on_record(&record);
    })
}

/// Decodes AWS VPC flow-log text into [`CompactFlow`]s (no text fields): the fastest way through
/// a file when only the detectors read the flows. Accepts and rejects the same lines as
/// [`decode_aws_vpc_text`].
pub fn decode_aws_vpc_compact<R, F>(
    reader: R,
    source_name: &str,
    mut on_flow: F,
) -> FlowDecodeSummary
where
    R: BufRead,
    F: FnMut(&CompactFlow),
{
    decode_lines(reader, source_name, |flow, _| on_flow(flow))
}

/// What [`decode_aws_chunk`] gives back besides the flows.
#[derive(Debug, Clone)]
pub struct AwsChunkOutcome {
    /// Records, skips and errors of the chunk (error lines are numbered from `first_line`).
    pub summary: FlowDecodeSummary,
    /// Lines the chunk held (including blank, header and bad lines).
    pub lines: u64,
    /// The layout in force at the chunk's end (a header line inside the chunk changes it).
    pub layout: AwsLayout,
}

/// Decodes a chunk of AWS VPC text made of whole lines, starting with `layout` in force and
/// numbering its lines from `first_line` (1-based).
///
/// This is the parallel path: a caller cuts a large buffer at line ends, decodes the pieces on
/// several threads and hands each piece the layout its predecessor ended with (a piece decoded
/// with the wrong guess, because an earlier piece held a header line, is decoded again).
pub fn decode_aws_chunk<F>(
    chunk: &[u8],
    source_name: &str,
    first_line: u64,
    layout: AwsLayout,
    mut on_flow: F,
) -> AwsChunkOutcome
where
    F: FnMut(&CompactFlow),
{
    let mut lines = AwsLines::new(source_name, layout, first_line.saturating_sub(1));
    let mut flow = CompactFlow::default();
    let mut rest = chunk;
    while !rest.is_empty() {
        let (line, after) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if lines.line(line, &mut flow).is_some() {
            on_flow(&flow);
        }
        rest = after;
    }
    AwsChunkOutcome {
        lines: lines.line_number - first_line.saturating_sub(1),
        summary: lines.summary,
        layout: lines.layout,
    }
}

fn fill_record(
    record: &mut FlowRecord,
    flow: &CompactFlow,
    text: &LineText<'_>,
    times: &mut TimeCaches,
) {
    record.start = times.start.time(flow.start);
    record.end = times.end.time(flow.end);
    record.direction = flow.direction;
    record.action = flow.action;
    record.src_addr = key_address(flow.src);
    record.dst_addr = key_address(flow.dst);
    record.src_port = flow.src_port;
    record.dst_port = flow.dst_port;
    record.protocol = flow.protocol;
    record.packets = flow.packets;
    record.bytes = flow.bytes;
    record.reverse_packets = None;
    record.reverse_bytes = None;
    // The parsers checked that the text fields are UTF-8.
    fn as_str(bytes: Option<&[u8]>) -> Option<&str> {
        bytes.and_then(|bytes| std::str::from_utf8(bytes).ok())
    }
    FlowRecord::set_text(&mut record.account_id, as_str(text.account));
    FlowRecord::set_text(&mut record.interface_id, as_str(text.interface));
    FlowRecord::set_text(&mut record.instance_id, as_str(text.instance));
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    &line[..end]
}

/// Parses one data line into `flow` and `text`. Errors name the field and quote the bad value.
///
/// Fields are found with a plain byte loop (they average under ten bytes, too short for
/// `memchr` to pay off) and parsed in place.
fn parse_line<'line>(
    line: &'line [u8],
    layout: &AwsLayout,
    flow: &mut CompactFlow,
    text: &mut LineText<'line>,
) -> Result<LineOutcome, String> {
    let columns = layout.columns();
    let mut saw_start = false;
    let mut saw_end = false;
    let mut saw_source = false;
    let mut saw_destination = false;
    let mut no_data = false;
    *flow = CompactFlow::default();

    let length = line.len();
    let mut position = 0usize;
    let mut column_index = 0usize;
    loop {
        // Runs of spaces count as one separator.
        while position < length && line[position] == b' ' {
            position += 1;
        }
        if position == length {
            break;
        }
        let field_start = position;
        while position < length && line[position] != b' ' {
            position += 1;
        }
        let value = &line[field_start..position];
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
                flow.src = parse_address(value, column)?;
                saw_source = true;
            }
            AwsField::DstAddr if !absent => {
                flow.dst = parse_address(value, column)?;
                saw_destination = true;
            }
            AwsField::SrcPort if !absent => flow.src_port = parse_number(value, column)?,
            AwsField::DstPort if !absent => flow.dst_port = parse_number(value, column)?,
            AwsField::Protocol if !absent => flow.protocol = parse_number(value, column)?,
            AwsField::Packets if !absent => flow.packets = parse_number(value, column)?,
            AwsField::Bytes if !absent => flow.bytes = parse_number(value, column)?,
            AwsField::Start if !absent => {
                flow.start = parse_epoch_seconds(value, column)?;
                saw_start = true;
            }
            AwsField::End if !absent => {
                flow.end = parse_epoch_seconds(value, column)?;
                saw_end = true;
            }
            AwsField::Action if !absent => {
                flow.action = match value {
                    b"ACCEPT" => FlowAction::Accept,
                    b"REJECT" => FlowAction::Reject,
                    other => return Err(invalid(column, other, "expected ACCEPT or REJECT")),
                }
            }
            AwsField::FlowDirection if !absent => {
                flow.direction = match value {
                    b"ingress" => FlowDirection::Inbound,
                    b"egress" => FlowDirection::Outbound,
                    other => return Err(invalid(column, other, "expected ingress or egress")),
                }
            }
            AwsField::AccountId if !absent => text.account = Some(as_text(value, column)?),
            AwsField::InterfaceId if !absent => text.interface = Some(as_text(value, column)?),
            AwsField::InstanceId if !absent => text.instance = Some(as_text(value, column)?),
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
        flow.end = flow.start;
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

fn as_text(value: &[u8], column: AwsField) -> Result<&[u8], String> {
    if value.is_ascii() || std::str::from_utf8(value).is_ok() {
        Ok(value)
    } else {
        Err(invalid(column, value, "not UTF-8"))
    }
}

/// Reads the default version 2 format in one pass, parsing each field as it is scanned. Returns
/// `None`, leaving `flow` and `text` to be overwritten, for anything unusual (an absent `-` value,
/// `NODATA`, an IPv6 address, a bad or out-of-range value, a field too many or too few, non-ASCII
/// text): the general parser then decodes or explains the line. Most lines of most files take
/// this path, at about a quarter of the general parser's cost.
#[inline]
fn parse_default_line<'line>(
    line: &'line [u8],
    flow: &mut CompactFlow,
    text: &mut LineText<'line>,
) -> Option<()> {
    let mut cursor = Cursor { line, position: 0 };
    cursor.field()?; // version
    let account = cursor.field()?;
    let interface = cursor.field()?;
    let src = cursor.ipv4()?;
    let dst = cursor.ipv4()?;
    let src_port = u16::try_from(cursor.number()?).ok()?;
    let dst_port = u16::try_from(cursor.number()?).ok()?;
    let protocol = u8::try_from(cursor.number()?).ok()?;
    let packets = cursor.number()?;
    let bytes = cursor.number()?;
    let start = i64::try_from(cursor.number()?)
        .ok()
        .filter(|seconds| *seconds <= MAX_EPOCH_SECONDS)?;
    let end = i64::try_from(cursor.number()?)
        .ok()
        .filter(|seconds| *seconds <= MAX_EPOCH_SECONDS)?;
    let action = match cursor.field()? {
        b"ACCEPT" => FlowAction::Accept,
        b"REJECT" => FlowAction::Reject,
        _ => return None,
    };
    if cursor.field()? != b"OK" || cursor.position != line.len() {
        return None;
    }
    if !account.is_ascii() || !interface.is_ascii() {
        return None;
    }
    *flow = CompactFlow {
        start,
        end,
        src,
        dst,
        packets,
        bytes,
        reverse_packets: 0,
        reverse_bytes: 0,
        src_port,
        dst_port,
        protocol,
        action,
        direction: FlowDirection::Unknown,
    };
    text.account = (account != b"-").then_some(account);
    text.interface = (interface != b"-").then_some(interface);
    text.instance = None;
    Some(())
}

/// A position in a line, always at the start of a field (or the end): each method reads one
/// field and the spaces after it, or returns `None` without promising where it stopped.
///
/// # Eight bytes at a time
/// The fields are read a machine word at a time (SWAR, "SIMD within a register"): [`word_at`]
/// loads the eight bytes at a position, [`leading_digits`] counts how many of them are decimal
/// digits with a few bit operations, [`digits_value`] turns up to eight digits into their value
/// with three multiplications, and [`first_space`] finds a separator. This replaces a loop with
/// a multiply-add and a branch per digit, whose exit mispredicts for every field of varying
/// length (octets of one to three digits, ports, byte counts). It is about as many instructions
/// (callgrind: 1,620 per default-format line against 1,770) but no per-digit branch. Anything
/// unusual (more than 19 digits, a leading zero in an address, a byte that is not a digit)
/// returns `None`, as before, and the general parser decides.
struct Cursor<'line> {
    line: &'line [u8],
    position: usize,
}

/// Every byte of a word set to `byte`.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The eight bytes of `line` at `position`, little-endian (the first byte in the low bits), with
/// zero bytes past the end of the line (a zero byte is neither a digit nor a space, so it ends a
/// digit run; callers check the line's end themselves).
#[inline(always)]
fn word_at(line: &[u8], position: usize) -> u64 {
    match line.get(position..position + 8) {
        Some(bytes) => {
            let mut word = [0u8; 8];
            word.copy_from_slice(bytes);
            u64::from_le_bytes(word)
        }
        None => {
            let mut word = [0u8; 8];
            let rest = line.get(position..).unwrap_or_default();
            word[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(word)
        }
    }
}

/// How many of the word's bytes, from the first, are ASCII digits (0 to 8).
///
/// A byte is a digit when its high nibble is 3 and adding 6 leaves it 3 (`0x30`–`0x39`). The
/// addition can carry into the next byte only from a byte of `0xfa` or more, which is not a
/// digit: bytes after the first non-digit may be misjudged, but they are never looked at.
#[inline(always)]
fn leading_digits(word: u64) -> u32 {
    let high = splat(0xf0);
    let not_digit =
        ((word & high) ^ splat(0x30)) | ((word.wrapping_add(splat(0x06)) & high) ^ splat(0x30));
    not_digit.trailing_zeros() / 8
}

/// The value of the first `count` (1 to 8) bytes of `word`, which are digits.
#[inline(always)]
fn digits_value(word: u64, count: u32) -> u64 {
    debug_assert!((1..=8).contains(&count));
    // Keep the digits' values and move them to the top bytes: the bytes shifted in are zeros,
    // i.e. leading zeros.
    let mut value = (word & splat(0x0f)) << (8 * (8 - count));
    // Each step joins neighbouring groups: 1-digit bytes into 2-digit pairs (in 16 bits), pairs
    // into 4-digit quads (in 32 bits), quads into the 8-digit result. The first digit is in
    // the low byte, so a group's left neighbour is the one below it.
    value = (value.wrapping_mul(10).wrapping_add(value >> 8)) & 0x00ff_00ff_00ff_00ff;
    value = (value.wrapping_mul(100).wrapping_add(value >> 16)) & 0x0000_ffff_0000_ffff;
    (value.wrapping_mul(10_000).wrapping_add(value >> 32)) & 0xffff_ffff
}

/// Byte `index` (0 to 7) of `word`.
#[inline(always)]
fn byte_of(word: u64, index: u32) -> u8 {
    (word >> (8 * index)) as u8
}

/// The index of the first space byte in `word`, if any.
#[inline(always)]
fn first_space(word: u64) -> Option<u32> {
    // The classic "has a zero byte" test on word ^ spaces: exact for the first match (a borrow
    // can only flag bytes after a true zero byte).
    let spaces = word ^ splat(b' ');
    let found = spaces.wrapping_sub(splat(0x01)) & !spaces & splat(0x80);
    (found != 0).then(|| found.trailing_zeros() / 8)
}

const POWERS_OF_TEN: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

impl<'line> Cursor<'line> {
    #[inline(always)]
    fn skip_spaces(&mut self) {
        while self.line.get(self.position) == Some(&b' ') {
            self.position += 1;
        }
    }

    /// Ends the field at `end`, whose byte (`after`, from a loaded word) must be a space, or
    /// `end` the end of the line, and moves past the spaces that follow.
    #[inline(always)]
    fn end_field(&mut self, end: usize, after: u8) -> Option<()> {
        if after == b' ' {
            self.position = end + 1;
            self.skip_spaces();
            Some(())
        } else if end == self.line.len() {
            self.position = end;
            Some(())
        } else {
            None
        }
    }

    /// A field of any bytes but spaces.
    #[inline(always)]
    fn field(&mut self) -> Option<&'line [u8]> {
        let line = self.line;
        let start = self.position;
        let mut end = start;
        loop {
            if end + 8 > line.len() {
                end += line[end..]
                    .iter()
                    .position(|byte| *byte == b' ')
                    .unwrap_or(line.len() - end);
                break;
            }
            if let Some(index) = first_space(word_at(line, end)) {
                end += index as usize;
                break;
            }
            end += 8;
        }
        if end == start {
            return None;
        }
        self.position = end;
        self.skip_spaces();
        Some(&line[start..end])
    }

    /// A decimal number of at most 19 digits (so it cannot overflow).
    #[inline(always)]
    fn number(&mut self) -> Option<u64> {
        let line = self.line;
        let start = self.position;
        let first = word_at(line, start);
        let count = leading_digits(first);
        // The byte after the digits comes from the word already loaded: a space there is a
        // real one (past the line's end the word holds zero bytes).
        let (value, digits, after) = if count < 8 {
            if count == 0 {
                return None;
            }
            (digits_value(first, count), count, byte_of(first, count))
        } else {
            let high = digits_value(first, 8);
            let second = word_at(line, start + 8);
            let more = leading_digits(second);
            if more == 0 {
                (high, 8, byte_of(second, 0))
            } else if more < 8 {
                let value = high * POWERS_OF_TEN[more as usize] + digits_value(second, more);
                (value, 8 + more, byte_of(second, more))
            } else {
                // 16 digits so far; 19 at most fit in a u64 whatever they are.
                let third = word_at(line, start + 16);
                let last = leading_digits(third);
                if last > 3 {
                    return None;
                }
                let mut value = high * POWERS_OF_TEN[8] + digits_value(second, 8);
                if last > 0 {
                    value = value * POWERS_OF_TEN[last as usize] + digits_value(third, last);
                }
                (value, 16 + last, byte_of(third, last))
            }
        };
        let end = start + digits as usize;
        self.end_field(end, after)?;
        Some(value)
    }

    /// A dotted-quad IPv4 address (octets of one to three digits, at most 255, no leading
    /// zero), as its address key.
    #[inline(always)]
    fn ipv4(&mut self) -> Option<u128> {
        let line = self.line;
        let mut position = self.position;
        let mut address: u32 = 0;
        let mut after = 0u8;
        for octet in 0..4 {
            let word = word_at(line, position);
            let digits = leading_digits(word);
            if digits == 0 || digits > 3 {
                return None;
            }
            let value = digits_value(word, digits);
            // A leading zero ("01") is refused, as `Ipv4Addr`'s parser does.
            if value > 255 || (digits > 1 && byte_of(word, 0) == b'0') {
                return None;
            }
            address = address << 8 | value as u32;
            position += digits as usize;
            after = byte_of(word, digits);
            if octet < 3 {
                if after != b'.' {
                    return None;
                }
                position += 1;
            }
        }
        self.end_field(position, after)?;
        Some(address_key(IpAddr::V4(Ipv4Addr::from(address))))
    }
}

/// Parses an address into its [`address_key`].
fn parse_address(value: &[u8], column: AwsField) -> Result<u128, String> {
    if let Some(v4) = parse_ipv4(value) {
        return Ok(address_key(IpAddr::V4(v4)));
    }
    // IPv6 (and anything odd) takes the standard parser; `IpAddr::parse_ascii` is not stable yet.
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .map(address_key)
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

/// The latest Unix time `chrono` can represent (`DateTime::<Utc>::MAX_UTC`, year 262142): a
/// start or end beyond it is an error, so every decoded time converts to a date.
const MAX_EPOCH_SECONDS: i64 = 8_210_266_876_799;

fn parse_epoch_seconds(value: &[u8], column: AwsField) -> Result<i64, String> {
    let seconds: u64 = parse_number(value, column)?;
    i64::try_from(seconds)
        .ok()
        .filter(|seconds| *seconds <= MAX_EPOCH_SECONDS)
        .ok_or_else(|| invalid(column, value, "time out of range"))
}

/// The last Unix time converted for a column and its date: lines of one file share a few
/// aggregation windows, and turning seconds into a date is the costliest step of a record.
struct TimeCache {
    seconds: i64,
    time: DateTime<Utc>,
}

impl Default for TimeCache {
    fn default() -> Self {
        Self {
            seconds: 0,
            time: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

impl TimeCache {
    fn time(&mut self, seconds: i64) -> DateTime<Utc> {
        if seconds != self.seconds {
            // parse_epoch_seconds kept the value within chrono's range.
            self.time = DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            self.seconds = seconds;
        }
        self.time
    }
}

#[derive(Default)]
struct TimeCaches {
    start: TimeCache,
    end: TimeCache,
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

    /// Reads a line with the general parser and the default-format fast path; when the fast path
    /// takes the line, checks that both read the same flow. Returns whether the general parser
    /// read a flow and whether the fast path took the line.
    fn parse_with_both(line: &str, layout: &AwsLayout) -> (bool, bool) {
        let mut fast = CompactFlow::default();
        let mut fast_text = LineText::default();
        let mut general = CompactFlow::default();
        let mut general_text = LineText::default();
        let outcome = parse_line(line.as_bytes(), layout, &mut general, &mut general_text);
        let general_flow = matches!(outcome, Ok(LineOutcome::Flow));
        let fast_took_it = parse_default_line(line.as_bytes(), &mut fast, &mut fast_text).is_some();
        if fast_took_it {
            assert!(general_flow, "{line}");
            assert_eq!(fast, general, "{line}");
            assert_eq!(fast_text.account, general_text.account, "{line}");
            assert_eq!(fast_text.interface, general_text.interface, "{line}");
        }
        (general_flow, fast_took_it)
    }

    #[test]
    fn default_line_fast_path_agrees_with_the_general_parser() {
        let layout = AwsLayout::default();
        let lines = [
            "2 123 eni-9 10.0.0.5 198.51.100.2 443 51000 6 12 3000 1700000000 1700000055 ACCEPT OK",
            "2 123 eni-9 10.0.0.5  198.51.100.2 443 51000 6 12 3000 1700000000 1700000055 REJECT OK",
            "2 - - 0.0.0.0 255.255.255.255 0 0 1 1 1 0 0 ACCEPT OK",
            "2 1 eni-1 01.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT OK",
            "2 1 eni-1 10.0.0.1 2001:db8::1 1 2 6 1 40 1700000000 1700000001 ACCEPT OK",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT NODATA",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 - - 1700000000 1700000001 - SKIPDATA",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 70000 6 1 40 1700000000 1700000001 ACCEPT OK",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT OK extra",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000",
            "2 1 eni-é 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT OK",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 99999999999999999999 1700000000 1700000001 ACCEPT OK",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 8210266876800 1700000001 ACCEPT OK",
            "2 1 eni-1 10.0.0.256 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT OK",
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000001 MAYBE OK",
        ];
        let mut fast_count = 0;
        for line in lines {
            let (_, fast_took_it) = parse_with_both(line, &layout);
            fast_count += usize::from(fast_took_it);
        }
        assert_eq!(fast_count, 3, "the three plain lines take the fast path");
    }

    #[test]
    fn swar_helpers_count_and_value_digits() {
        let word = |text: &[u8]| word_at(text, 0);
        assert_eq!(leading_digits(word(b"12345678")), 8);
        assert_eq!(leading_digits(word(b"123 5678")), 3);
        assert_eq!(leading_digits(word(b"")), 0);
        assert_eq!(leading_digits(word(b"9/:0")), 1, "bytes next to the digits");
        // A byte of 0xfa or more carries into the next byte; only later bytes may be misjudged.
        assert_eq!(leading_digits(word(&[b'7', 0xff, b'1', b'2'])), 1);
        assert_eq!(leading_digits(word(&[0xfa, b'1'])), 0);
        assert_eq!(digits_value(word(b"00000001"), 8), 1);
        assert_eq!(digits_value(word(b"99999999"), 8), 99_999_999);
        assert_eq!(digits_value(word(b"1234 zz"), 4), 1234);
        assert_eq!(digits_value(word(b"7"), 1), 7);
        assert_eq!(first_space(word(b"eni-1 22")), Some(5));
        assert_eq!(first_space(word(&[0, b' '])), Some(1));
        assert_eq!(first_space(word(b"abcdefgh")), None);
        // Past the end of a line the word is padded with zero bytes.
        assert_eq!(
            word_at(b"12", 0),
            u64::from_le_bytes([b'1', b'2', 0, 0, 0, 0, 0, 0])
        );
        assert_eq!(word_at(b"12", 2), 0);
    }

    /// The fast path's numbers and addresses against `str::parse` and the general parser, for
    /// every length from 0 to 22 digits, leading zeros, maximum and overflowing values, `-`.
    #[test]
    fn swar_numbers_and_addresses_agree_with_the_standard_parsers() {
        let mut texts: Vec<String> = vec![
            "0".into(),
            "-".into(),
            "".into(),
            "00".into(),
            "007".into(),
            "65535".into(),
            "65536".into(),
            "255".into(),
            "256".into(),
            "4294967295".into(),
            "18446744073709551615".into(),
            "18446744073709551616".into(),
            "9999999999999999999".into(),
            "99999999999999999999".into(),
            "0000000000000000001".into(),
            "00000000000000000001".into(),
            "12a".into(),
            "+5".into(),
            "1.5".into(),
        ];
        for length in 1..=22 {
            texts.push("9".repeat(length));
            texts.push(format!("1{}", "0".repeat(length - 1)));
            texts.push(format!("{}5", "0".repeat(length - 1)));
            texts.push("1234567890123456789012"[..length].to_owned());
        }
        for text in &texts {
            for tail in ["", " ", "  x"] {
                let line = format!("{text}{tail}");
                let mut cursor = Cursor {
                    line: line.as_bytes(),
                    position: 0,
                };
                let fast = cursor.number();
                let digits = text.len();
                let expected = (digits <= 19 && text.bytes().all(|byte| byte.is_ascii_digit()))
                    .then(|| text.parse::<u64>().ok())
                    .flatten();
                assert_eq!(fast, expected, "{line:?}");
                if fast.is_some() {
                    assert_eq!(
                        cursor.position,
                        line.len() - tail.trim_start().len(),
                        "{line:?}"
                    );
                    let general = parse_number::<u64>(text.as_bytes(), AwsField::Bytes).ok();
                    assert_eq!(fast, general, "{line:?}");
                }
            }
        }
        let mut addresses: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.1.22.133",
            "1.2.3.4",
            "256.1.1.1",
            "1.2.3.256",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.0",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.4a",
            "1000.2.3.4",
            "1.2.3.1000",
            "-",
            "",
            "2001:db8::1",
        ]
        .iter()
        .map(|text| (*text).to_owned())
        .collect();
        let mut seed = 0x9e37_79b9_u32;
        for _ in 0..2000 {
            let mut octets = Vec::new();
            for _ in 0..4 {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                octets.push(match seed >> 28 {
                    0 => format!("0{}", (seed >> 8) % 100),
                    1 => format!("{}", 250 + (seed >> 8) % 10),
                    _ => format!("{}", (seed >> 8) % 256),
                });
            }
            addresses.push(octets.join("."));
        }
        for text in &addresses {
            for tail in ["", " 22"] {
                let line = format!("{text}{tail}");
                let mut cursor = Cursor {
                    line: line.as_bytes(),
                    position: 0,
                };
                let fast = cursor.ipv4();
                let expected = text
                    .parse::<Ipv4Addr>()
                    .ok()
                    .map(|address| address_key(IpAddr::V4(address)));
                assert_eq!(fast, expected, "{line:?}");
            }
        }
    }

    /// Random lines of the default format, some damaged: whenever the fast path takes a line,
    /// the general parser reads the same flow from it.
    #[test]
    fn fast_path_agrees_with_the_general_parser_on_random_lines() {
        let pieces: [&[&str]; 14] = [
            &["2", "3", "-"],
            &["123456789012", "-", "1", "é"],
            &["eni-0123456789abcdef0", "-", "eni-1"],
            &[
                "10.0.0.5",
                "0.0.0.0",
                "255.255.255.255",
                "01.2.3.4",
                "2001:db8::1",
                "-",
            ],
            &["198.51.100.2", "1.2.3.4", "1.2.3.256", "-"],
            &["443", "0", "65535", "65536", "-", "007"],
            &["51000", "1", "99999"],
            &["6", "17", "255", "256"],
            &[
                "12",
                "0",
                "18446744073709551615",
                "99999999999999999999",
                "-",
            ],
            &[
                "3000",
                "12345678",
                "123456789",
                "1234567890123456789",
                "12345678901234567890",
            ],
            &["1700000000", "0", "8210266876799", "8210266876800"],
            &["1700000055", "1700000000"],
            &["ACCEPT", "REJECT", "MAYBE", "-"],
            &["OK", "NODATA", "SKIPDATA"],
        ];
        let layout = AwsLayout::default();
        let mut seed = 0x2545_f491_u32;
        let mut fast_count = 0;
        for _ in 0..20_000 {
            let mut line = String::new();
            for (index, choices) in pieces.iter().enumerate() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                // Mostly the first (plain) value, sometimes another one.
                let pick = if seed >> 29 == 0 {
                    (seed >> 8) as usize % choices.len()
                } else {
                    0
                };
                if index > 0 {
                    line.push_str(if seed & 0xff == 0 { "  " } else { " " });
                }
                line.push_str(choices[pick]);
            }
            let (general_flow, fast_took_it) = parse_with_both(&line, &layout);
            if fast_took_it {
                fast_count += 1;
            } else if general_flow {
                // The fast path may only leave plain lines to the general parser when they hold
                // an absent value, an IPv6 address, an octet with a leading zero (which the
                // general parser's address reader allows), more than 19 digits or non-ASCII text.
                assert!(
                    line.contains(" - ")
                        || line.contains(" 01.")
                        || line.starts_with("- ")
                        || line.contains(':')
                        || line.contains('é')
                        || line.split(' ').any(|field| field.len() >= 20),
                    "{line}"
                );
            }
        }
        assert!(fast_count > 5_000, "{fast_count}");
    }

    #[test]
    fn time_bound_is_chronos() {
        assert_eq!(MAX_EPOCH_SECONDS, DateTime::<Utc>::MAX_UTC.timestamp());
        let (_, summary) = decode(
            "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 8210266876800 8210266876800 ACCEPT OK\n",
        );
        assert!(summary.errors[0].message.contains("time out of range"));
    }

    const MIXED: &str = "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT OK\n\
                         garbage line\n\
                         \n\
                         version srcaddr dstaddr start dstport\n\
                         2 192.0.2.1 2001:db8::1 1700000100 22\n\
                         2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT OK\n\
                         3 192.0.2.2 10.0.0.9 1700000200 3389";

    #[test]
    fn compact_and_chunk_paths_agree_with_the_record_path() {
        let (records, expected) = decode(MIXED);
        assert_eq!(records.len(), 3);
        assert_eq!(expected.bad_records, 2, "{:?}", expected.errors);
        let mut compact = Vec::new();
        let summary = decode_aws_vpc_compact(MIXED.as_bytes(), "t.log", |flow| compact.push(*flow));
        assert_eq!(summary, expected);
        let from_records: Vec<CompactFlow> = records.iter().map(FlowRecord::compact).collect();
        assert_eq!(compact, from_records);

        // The same text cut in two pieces at a line end, each decoded on its own.
        let cut = MIXED.find("2 192.0.2.1").expect("present");
        let (head, tail) = MIXED.as_bytes().split_at(cut);
        let mut pieces = Vec::new();
        let first = decode_aws_chunk(head, "t.log", 1, AwsLayout::default(), |flow| {
            pieces.push(*flow)
        });
        assert_eq!(first.lines, 4);
        let second = decode_aws_chunk(tail, "t.log", 5, first.layout.clone(), |flow| {
            pieces.push(*flow)
        });
        assert_eq!(pieces, compact);
        let mut joined = first.summary;
        joined.absorb(second.summary);
        assert_eq!(joined, expected);
    }

    #[test]
    fn lines_straddling_buffer_fills_are_whole() {
        // A tiny buffer makes every line cross a fill boundary.
        let reader = std::io::BufReader::with_capacity(7, MIXED.as_bytes());
        let mut compact = Vec::new();
        let summary = decode_aws_vpc_compact(reader, "t.log", |flow| compact.push(*flow));
        let (records, expected) = decode(MIXED);
        assert_eq!(summary, expected);
        assert_eq!(compact.len(), records.len());
    }

    #[test]
    fn numbers_reject_overflow_and_signs() {
        assert!(parse_number::<u8>(b"256", AwsField::Protocol).is_err());
        assert!(parse_number::<u64>(b"-1", AwsField::Bytes).is_err());
        assert!(parse_number::<u64>(b"99999999999999999999", AwsField::Bytes).is_err());
        assert_eq!(parse_number::<u16>(b"65535", AwsField::DstPort), Ok(65535));
    }
}
