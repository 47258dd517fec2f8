//! Every real sample decodes completely; the event count is checked against an independent
//! oracle (serde_json reading the whole file), so a record lost at a buffer boundary shows.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use palisade_logs::audit::{
    AuditDecodeErrorKind, AuditReader, ContainerKind, FormatHint, decompress_if_gzip,
    is_audit_log_path,
};
use palisade_model::event::AuditSourceFormat;
use serde_json::Value;

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn walk(root: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(root).expect("readable directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else if is_audit_log_path(&path) {
            files.push(path);
        }
    }
}

/// Counts records the slow way: the whole file through serde_json.
fn oracle_count(path: &Path) -> usize {
    let mut text = String::new();
    decompress_if_gzip(BufReader::new(File::open(path).expect("opens")))
        .expect("peeks")
        .read_to_string(&mut text)
        .expect("reads");
    let whole: Value = serde_json::from_str(&text).expect("sample is valid JSON");
    match whole {
        Value::Array(records) => records.len(),
        Value::Object(object) => object["Records"].as_array().expect("Records array").len(),
        other => panic!("unexpected sample shape {other}"),
    }
}

#[test]
fn every_cloudtrail_sample_decodes_record_by_record() {
    let mut files = Vec::new();
    walk(&data("cloudtrail"), &mut files);
    assert!(files.len() > 70, "samples are present: {}", files.len());
    let mut gz_files = 0;
    for path in &files {
        gz_files += usize::from(path.extension().is_some_and(|extension| extension == "gz"));
        // A small read buffer makes every record straddle refills.
        let reader = decompress_if_gzip(BufReader::with_capacity(
            4096,
            File::open(path).expect("opens"),
        ))
        .expect("peeks");
        let mut events = 0;
        let mut reader = AuditReader::new(reader, path.display().to_string(), FormatHint::Detect);
        for result in &mut reader {
            let event = result.unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(
                event.format,
                AuditSourceFormat::AwsCloudTrail,
                "{}",
                path.display()
            );
            assert!(
                event.time.is_some() && event.action.is_some(),
                "{}: {event:?}",
                path.display()
            );
            events += 1;
        }
        assert_eq!(events, oracle_count(path), "{}", path.display());
        let expected_container = if path.to_string_lossy().contains("stratus") {
            ContainerKind::JsonArray
        } else {
            ContainerKind::CloudTrailObject
        };
        assert_eq!(
            reader.container(),
            Some(expected_container),
            "{}",
            path.display()
        );
    }
    assert_eq!(
        gz_files, 12,
        "the S3-layout tree is walked, .json.gz included"
    );
}

#[test]
fn kubernetes_audit_lines_are_normalised() {
    let file = File::open(data("audit/kubernetes-audit.jsonl")).expect("opens");
    let events: Vec<_> = AuditReader::new(BufReader::new(file), "k8s", FormatHint::Detect)
        .collect::<Result<_, _>>()
        .expect("all lines decode");
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|event| event.format == AuditSourceFormat::KubernetesAudit)
    );
    assert_eq!(events[0].target.as_deref(), Some("prod/secrets/db"));
    assert_eq!(events[1].initiator.as_deref(), Some("alice@example.com"));
    assert_eq!(
        events[1].action.as_deref(),
        Some("create clusterrolebindings")
    );
}

#[test]
fn cadf_lines_decode_around_a_broken_one() {
    let file = File::open(data("audit/activity-tracker-cadf.jsonl")).expect("opens");
    let results: Vec<_> =
        AuditReader::new(BufReader::new(file), "at.jsonl", FormatHint::Detect).collect();
    assert_eq!(results.len(), 3);
    let first = results[0].as_ref().expect("first line decodes");
    assert_eq!(first.format, AuditSourceFormat::IbmActivityTracker);
    assert_eq!(
        first.account.as_deref(),
        Some("8d63fb1cc5e99e86dd7229dddef0e3b9")
    );
    assert_eq!(first.action.as_deref(), Some("iam-identity.apikey.delete"));
    let broken = results[1].as_ref().expect_err("second line is broken");
    assert_eq!(broken.position.line, 2);
    assert!(matches!(broken.kind, AuditDecodeErrorKind::Record(_)));
    assert!(
        broken.to_string().starts_with("at.jsonl: record 1 (line 2"),
        "{broken}"
    );
    let third = results[2].as_ref().expect("third line decodes");
    assert_eq!(
        third.target.as_deref(),
        Some(
            "crn:v1:bluemix:public:cloud-object-storage:global:a/8d63fb1cc5e99e86dd7229dddef0e3b9:6f0b:bucket:backups"
        )
    );
}
