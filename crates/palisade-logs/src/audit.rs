//! Audit-log decoders: AWS CloudTrail, IBM Activity Tracker (CADF), Kubernetes audit and
//! generic JSON Lines, streamed record by record.
//!
//! Decoding has two layers so that a fast caller can skip work:
//! - [`RecordSplitter`] finds each record's bytes in the container — a CloudTrail S3 object
//!   (`{"Records":[…]}`), a JSON array, JSON Lines or pretty-printed objects one after another —
//!   holding one record and one read chunk in memory, never the whole input.
//! - [`decode_record`] parses one record and normalises it into an
//!   [`AuditEvent`](palisade_model::event::AuditEvent), recognising its format from its own fields.
//!
//! [`AuditReader`] joins both for callers that want every event. A record that does not parse
//! is reported with its source, index, line and byte offset and skipped; a container that is
//! structurally broken (a truncated array) ends that input after the last good record.
//! [`decompress_if_gzip`] makes `.json.gz` objects transparent, and [`is_audit_log_path`] says
//! which files of a directory tree (as CloudTrail writes them to S3) hold audit records.

mod normalise;
mod splitter;

use std::io::{BufRead, BufReader};
use std::path::Path;

use palisade_model::event::AuditEvent;

pub use normalise::{FormatHint, RecordError, decode_record, detect_format, normalise, parse_time};
pub use splitter::{
    ContainerKind, MAX_RECORD_BYTES, RawRecord, RecordPosition, RecordSplitter, SplitError,
    SplitFailure,
};

/// A record (or the rest of an input) that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: record {index} (line {line}, byte {byte_offset}): {kind}",
    index = position.index, line = position.line, byte_offset = position.byte_offset)]
pub struct AuditDecodeError {
    /// The input's name as the caller gave it (usually the file path).
    pub source_name: String,
    /// Where in the input.
    pub position: RecordPosition,
    /// What went wrong.
    pub kind: AuditDecodeErrorKind,
}

/// The kinds of decode failure.
#[derive(Debug, thiserror::Error)]
pub enum AuditDecodeErrorKind {
    /// One record is bad; the following ones are still read.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The container is broken; nothing after this point is read.
    #[error("{0}")]
    Structure(String),
    /// Reading failed; nothing after this point is read.
    #[error("read failed: {0}")]
    Io(std::io::Error),
}

/// Iterates over the audit events of one input, yielding an error for each bad record and
/// carrying on after it.
pub struct AuditReader<R> {
    splitter: RecordSplitter<R>,
    source_name: String,
    hint: FormatHint,
}

impl<R: BufRead> AuditReader<R> {
    /// Reads `reader`; `source_name` names it in errors.
    pub fn new(reader: R, source_name: impl Into<String>, hint: FormatHint) -> Self {
        Self {
            splitter: RecordSplitter::new(reader),
            source_name: source_name.into(),
            hint,
        }
    }

    /// Returns the detected container once reading has started.
    pub fn container(&self) -> Option<ContainerKind> {
        self.splitter.container()
    }
}

impl<R: BufRead> Iterator for AuditReader<R> {
    type Item = Result<AuditEvent, AuditDecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.splitter.next_record()?;
        Some(match next {
            Ok(record) => {
                let hint = effective_hint(self.hint, Some(record.container));
                decode_record(record.bytes, hint).map_err(|error| AuditDecodeError {
                    source_name: self.source_name.clone(),
                    position: record.position,
                    kind: AuditDecodeErrorKind::Record(error),
                })
            }
            Err(failure) => Err(split_failure_to_error(&self.source_name, failure)),
        })
    }
}

/// Returns the hint to decode records with: a `{"Records":[…]}` object holds CloudTrail records.
pub fn effective_hint(hint: FormatHint, container: Option<ContainerKind>) -> FormatHint {
    match (hint, container) {
        (FormatHint::Detect, Some(ContainerKind::CloudTrailObject)) => {
            FormatHint::Fixed(palisade_model::event::AuditSourceFormat::AwsCloudTrail)
        }
        _ => hint,
    }
}

/// Turns a splitter failure into a decode error naming the input.
pub fn split_failure_to_error(source_name: &str, failure: SplitFailure) -> AuditDecodeError {
    match failure {
        SplitFailure::Structure(error) => AuditDecodeError {
            source_name: source_name.to_owned(),
            position: error.position,
            kind: AuditDecodeErrorKind::Structure(error.message),
        },
        SplitFailure::Io(error) => AuditDecodeError {
            source_name: source_name.to_owned(),
            position: RecordPosition::default(),
            kind: AuditDecodeErrorKind::Io(error),
        },
    }
}

/// Wraps `reader` in a gzip decoder when its first bytes are the gzip magic number, so `.json.gz`
/// objects (as CloudTrail delivers them) read like plain JSON. Concatenated gzip members are read
/// through.
///
/// # Errors
/// The I/O error of peeking at the first bytes.
pub fn decompress_if_gzip<'reader, R: BufRead + Send + 'reader>(
    mut reader: R,
) -> std::io::Result<Box<dyn BufRead + Send + 'reader>> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// Says whether a file found while walking a log tree holds audit records: `.json`, `.jsonl`,
/// `.ndjson`, `.log` (optionally `.gz`), but not CloudTrail digest files, which S3 delivery puts
/// next to the logs under `CloudTrail-Digest/`.
pub fn is_audit_log_path(path: &Path) -> bool {
    if path
        .components()
        .any(|component| component.as_os_str() == "CloudTrail-Digest")
    {
        return false;
    }
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".json", ".jsonl", ".ndjson", ".log"]
        .iter()
        .any(|extension| name.ends_with(extension))
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_model::event::AuditSourceFormat;
    use std::io::Write;

    #[test]
    fn reader_reports_bad_records_and_keeps_good_ones() {
        let input = b"{\"a\":1}\n{\"a\":tru}\n[1]\n{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\"}\n";
        let results: Vec<_> =
            AuditReader::new(&input[..], "k8s.jsonl", FormatHint::Detect).collect();
        assert_eq!(results.len(), 4);
        assert!(results[0].is_ok());
        let error = results[1].as_ref().expect_err("bad JSON");
        assert_eq!(error.position.line, 2);
        assert!(
            error.to_string().starts_with("k8s.jsonl: record 1 (line 2"),
            "{error}"
        );
        assert!(matches!(
            results[2].as_ref().expect_err("array").kind,
            AuditDecodeErrorKind::Record(RecordError::NotAnObject { .. })
        ));
        let last = results[3].as_ref().expect("k8s event");
        assert_eq!(last.format, AuditSourceFormat::KubernetesAudit);
    }

    #[test]
    fn records_array_is_cloudtrail_even_without_version_fields() {
        let input = br#"{"Records":[{"eventName":"ConsoleLogin"}]}"#;
        let events: Vec<_> = AuditReader::new(&input[..], "x.json", FormatHint::Detect).collect();
        let event = events[0].as_ref().expect("decodes");
        assert_eq!(event.format, AuditSourceFormat::AwsCloudTrail);
    }

    #[test]
    fn gzip_input_is_detected_by_magic_bytes() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(br#"{"Records":[{"eventName":"A"},{"eventName":"B"}]}"#)
            .expect("writes");
        let compressed = encoder.finish().expect("finishes");
        let reader = decompress_if_gzip(&compressed[..]).expect("peeks");
        let events: Vec<_> = AuditReader::new(reader, "x.json.gz", FormatHint::Detect).collect();
        assert_eq!(events.len(), 2);
        let plain = decompress_if_gzip(&b"{\"a\":1}"[..]).expect("peeks");
        assert_eq!(AuditReader::new(plain, "x", FormatHint::Detect).count(), 1);
    }

    #[test]
    fn log_paths_exclude_digests_and_other_files() {
        assert!(is_audit_log_path(Path::new(
            "AWSLogs/1/CloudTrail/us-east-1/2024/01/02/x.json.gz"
        )));
        assert!(is_audit_log_path(Path::new("audit.JSONL")));
        assert!(!is_audit_log_path(Path::new(
            "AWSLogs/1/CloudTrail-Digest/us-east-1/x.json.gz"
        )));
        assert!(!is_audit_log_path(Path::new("LICENSE")));
    }
}
