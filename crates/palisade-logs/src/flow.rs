//! Flow-log decoders: AWS VPC (text, versions 2–8), IBM Cloud VPC (JSON objects), Azure NSG
//! (versions 1 and 2) and GCP VPC flow logs (Cloud Logging entries, JSON Lines or arrays).
//!
//! Every decoder reads from a [`BufRead`] (the caller opens files; [`decompress_if_gzipped`] wraps a
//! reader so plain and gzipped input read the same) and hands each record to a callback as a
//! borrowed [`FlowRecord`]. The record is reused from line to line, which is what lets the AWS text
//! path run without allocating per field or per line: callers that keep a record clone it.
//!
//! A bad line or entry never stops the file: it becomes a [`FlowDecodeError`] naming the source,
//! the line and (for JSON) the JSON pointer of the entry, is kept in the [`FlowDecodeSummary`]
//! (the first [`MAX_KEPT_ERRORS`] of them; all are counted) and decoding goes on. Only an I/O
//! error ends a file early, and it is reported the same way.
//!
//! # Example
//! ```
//! use palisade_logs::flow::{decode_flows, FlowFormat};
//!
//! let log = "2 123456789010 eni-1 10.0.0.5 203.0.113.9 40000 443 6 10 840 1700000000 1700000060 ACCEPT OK\n\
//!            not a flow line\n";
//! let mut destinations = Vec::new();
//! let summary = decode_flows(log.as_bytes(), "example.log", FlowFormat::Auto, |record| {
//!     destinations.push(record.dst_addr);
//! });
//! assert_eq!(destinations, ["203.0.113.9".parse::<std::net::IpAddr>().unwrap()]);
//! assert_eq!(summary.records, 1);
//! assert_eq!(summary.bad_records, 1);
//! assert_eq!(summary.errors[0].line, 2);
//! ```

use std::fmt;
use std::io::{self, BufRead, BufReader};

use palisade_model::flow::{CompactFlow, FlowRecord};
use serde::Serialize;

pub mod aws;
mod azure;
mod gcp;
mod ibm;
mod json;

/// How many errors a [`FlowDecodeSummary`] keeps in full; the rest are only counted, so a file of
/// garbage cannot grow memory without bound.
pub const MAX_KEPT_ERRORS: usize = 1000;

/// Which decoder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowFormat {
    /// Look at the first bytes: JSON (`{` or `[`) goes to the JSON decoder, which recognises IBM,
    /// Azure and GCP entries one by one; anything else is AWS VPC text.
    #[default]
    Auto,
    /// AWS VPC flow logs, text (default version 2 format, or the format named by a header line).
    AwsVpcText,
    /// Any of the JSON flow-log formats (IBM VPC, Azure NSG, GCP VPC), recognised per entry.
    Json,
}

/// One record that could not be decoded, or an I/O failure that ended a source early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct FlowDecodeError {
    /// The name the caller gave the source (usually its path).
    pub source_name: String,
    /// 1-based line of the source where the bad record starts.
    pub line: u64,
    /// JSON pointer of the bad entry inside the JSON value on that line, for JSON formats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for FlowDecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.source_name, self.line)?;
        if let Some(pointer) = &self.pointer {
            write!(formatter, " at {pointer}")?;
        }
        write!(formatter, ": {}", self.message)
    }
}

/// What decoding one source gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowDecodeSummary {
    /// Records handed to the callback.
    pub records: u64,
    /// Entries that carry no flow by design (AWS `NODATA` / `SKIPDATA`, IBM `skip data` objects);
    /// not errors.
    pub skipped_without_data: u64,
    /// Lines or entries that could not be decoded (all of them, including those not kept).
    pub bad_records: u64,
    /// The first [`MAX_KEPT_ERRORS`] decoding errors, in input order.
    pub errors: Vec<FlowDecodeError>,
    /// `false` when an I/O error ended the source before its end (the error is in `errors`).
    pub complete: bool,
}

impl FlowDecodeSummary {
    /// An empty summary of a source read to its end.
    pub fn new() -> Self {
        Self {
            complete: true,
            ..Self::default()
        }
    }

    /// Records one bad record.
    pub(crate) fn push_error(&mut self, error: FlowDecodeError) {
        self.bad_records += 1;
        if self.errors.len() < MAX_KEPT_ERRORS {
            self.errors.push(error);
        }
    }

    /// Records an I/O failure that ends the source at `line` (1-based).
    pub fn push_io_error(&mut self, source_name: &str, line: u64, error: &io::Error) {
        self.complete = false;
        self.push_error(FlowDecodeError {
            source_name: source_name.to_owned(),
            line,
            pointer: None,
            message: format!("read failed: {error}"),
        });
    }

    /// Adds another source's summary to this one (for callers decoding a directory).
    pub fn absorb(&mut self, other: FlowDecodeSummary) {
        self.records += other.records;
        self.skipped_without_data += other.skipped_without_data;
        self.bad_records += other.bad_records;
        self.complete &= other.complete;
        let room = MAX_KEPT_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(other.errors.into_iter().take(room));
    }
}

/// Wraps `reader` in a gzip decoder when its first two bytes are the gzip magic number, so callers
/// never need to know (S3 delivers AWS logs as `.log.gz`, IBM objects are gzipped without a
/// telling extension). Concatenated gzip members are read as one stream.
///
/// # Errors
/// Fails only when reading the first bytes fails.
pub fn decompress_if_gzipped<'reader, R: BufRead + Send + 'reader>(
    mut reader: R,
) -> io::Result<Box<dyn BufRead + Send + 'reader>> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::bufread::MultiGzDecoder::new(reader);
        Ok(Box::new(BufReader::with_capacity(256 * 1024, decoder)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Decodes one source of flow logs, calling `on_record` for every flow, and returns what happened.
///
/// `source_name` is only used in error messages. Input must already be decompressed (see
/// [`decompress_if_gzipped`]).
pub fn decode_flows<R, F>(
    mut reader: R,
    source_name: &str,
    format: FlowFormat,
    on_record: F,
) -> FlowDecodeSummary
where
    R: BufRead,
    F: FnMut(&FlowRecord),
{
    match resolve_format(&mut reader, format) {
        Ok(FlowFormat::Json) => json::decode_json_flows(reader, source_name, on_record),
        Ok(_) => aws::decode_aws_vpc_text(reader, source_name, on_record),
        Err(error) => {
            let mut summary = FlowDecodeSummary::new();
            summary.push_io_error(source_name, 1, &error);
            summary
        }
    }
}

/// As [`decode_flows`], handing out [`CompactFlow`]s (no text fields). AWS text, the bulk of flow
/// logs, is then decoded without building records at all.
pub fn decode_flows_compact<R, F>(
    mut reader: R,
    source_name: &str,
    format: FlowFormat,
    mut on_flow: F,
) -> FlowDecodeSummary
where
    R: BufRead,
    F: FnMut(&CompactFlow),
{
    match resolve_format(&mut reader, format) {
        Ok(FlowFormat::Json) => json::decode_json_flows(reader, source_name, |record| {
            on_flow(&record.compact());
        }),
        Ok(_) => aws::decode_aws_vpc_compact(reader, source_name, on_flow),
        Err(error) => {
            let mut summary = FlowDecodeSummary::new();
            summary.push_io_error(source_name, 1, &error);
            summary
        }
    }
}

/// Turns [`FlowFormat::Auto`] into the format the first bytes show (never returns `Auto`).
///
/// # Errors
/// Fails when reading the first bytes fails.
pub fn resolve_format<R: BufRead>(reader: &mut R, format: FlowFormat) -> io::Result<FlowFormat> {
    match format {
        FlowFormat::Auto => sniff_format(reader),
        explicit => Ok(explicit),
    }
}

/// Looks at the first non-blank byte without consuming anything the decoders need.
fn sniff_format<R: BufRead>(reader: &mut R) -> io::Result<FlowFormat> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(FlowFormat::AwsVpcText);
        }
        match buffer.iter().position(|byte| !byte.is_ascii_whitespace()) {
            Some(index) => {
                let first = buffer[index];
                // Leading blank bytes are harmless to either decoder, so they can be dropped.
                reader.consume(index);
                return Ok(if first == b'{' || first == b'[' {
                    FlowFormat::Json
                } else {
                    FlowFormat::AwsVpcText
                });
            }
            None => {
                let length = buffer.len();
                reader.consume(length);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn gzipped_and_plain_input_decode_alike() {
        let text = "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000001 ACCEPT OK\n";
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).expect("in memory");
        let gzipped = encoder.finish().expect("in memory");
        for input in [text.as_bytes().to_vec(), gzipped] {
            let reader = decompress_if_gzipped(&input[..]).expect("in memory");
            let mut count = 0;
            let summary = decode_flows(reader, "mem", FlowFormat::Auto, |_| count += 1);
            assert_eq!((count, summary.records, summary.bad_records), (1, 1, 0));
        }
    }

    #[test]
    fn sniffing_picks_json_after_blank_lines() {
        let mut reader = &b"\n\n  {\"a\":1}"[..];
        assert_eq!(
            sniff_format(&mut reader).expect("in memory"),
            FlowFormat::Json
        );
        assert_eq!(reader, b"{\"a\":1}");
        let mut text = &b"version srcaddr"[..];
        assert_eq!(
            sniff_format(&mut text).expect("in memory"),
            FlowFormat::AwsVpcText
        );
    }

    #[test]
    fn error_display_names_source_line_and_pointer() {
        let error = FlowDecodeError {
            source_name: "a.json".into(),
            line: 3,
            pointer: Some("/flow_logs/2/target_ip".into()),
            message: "invalid address `x`".into(),
        };
        assert_eq!(
            error.to_string(),
            "a.json:3 at /flow_logs/2/target_ip: invalid address `x`"
        );
    }

    #[test]
    fn summary_keeps_a_bounded_number_of_errors() {
        let mut summary = FlowDecodeSummary::new();
        for line in 0..(MAX_KEPT_ERRORS as u64 + 10) {
            summary.push_error(FlowDecodeError {
                source_name: "x".into(),
                line,
                pointer: None,
                message: "bad".into(),
            });
        }
        assert_eq!(summary.errors.len(), MAX_KEPT_ERRORS);
        assert_eq!(summary.bad_records, MAX_KEPT_ERRORS as u64 + 10);
    }
}
