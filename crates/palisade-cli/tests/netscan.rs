//! `palisade netscan` end to end: generated logs with planted attacks, the real sample files,
//! every output format, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn palisade(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(arguments)
        .output()
        .expect("the binary runs")
}

fn generated(directory: &Path) -> PathBuf {
    let output = palisade(&[
        "netscan",
        "--generate",
        directory.to_str().expect("UTF-8 path"),
        "--records",
        "30000",
        "--intel-entries",
        "500",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    directory.to_path_buf()
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect()
}

#[test]
fn jsonl_reports_each_planted_attack_once() {
    let directory = tempfile::tempdir().expect("temp dir");
    let data = generated(directory.path());
    let flows = data.join("flows.log");
    let intel = data.join("intel.csv");
    let output = palisade(&[
        "netscan",
        "--flows",
        flows.to_str().expect("UTF-8"),
        "--intel",
        intel.to_str().expect("UTF-8"),
        "--format",
        "jsonl",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let findings = lines(&output);
    let planted: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(data.join("planted.json")).expect("written"))
            .expect("JSON");
    assert_eq!(findings.len(), planted.len(), "{findings:#?}");
    for attack in &planted {
        let matching = findings
            .iter()
            .filter(|finding| {
                finding["type"] == attack["finding_type"]
                    && (attack["client"].is_null()
                        || finding["network_connection"]["client"]["address"] == attack["client"])
                    && (attack["server"].is_null()
                        || finding["network_connection"]["server"]["address"] == attack["server"])
            })
            .count();
        assert_eq!(matching, 1, "{attack}");
    }
    for finding in &findings {
        for field in [
            "type",
            "severity",
            "src_addresses",
            "dst_addresses",
            "dst_ports",
            "window_start",
            "window_end",
            "flow_count",
        ] {
            assert!(finding.get(field).is_some(), "{field} missing in {finding}");
        }
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("port_scan") && stderr.contains("8 findings"),
        "{stderr}"
    );
}

#[test]
fn directories_gzip_and_samples_with_bad_lines() {
    // The sample files of palisade-logs, laid out as an S3-style tree.
    let samples =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../palisade-logs/tests/data/flowlogs");
    let directory = tempfile::tempdir().expect("temp dir");
    let files = [
        (
            "aws-v2-default.log",
            "AWSLogs/123456789010/vpcflowlogs/us-east-1/2024/03/01",
        ),
        (
            "aws-v5-custom.log",
            "AWSLogs/123456789010/vpcflowlogs/us-east-1/2024/03/02",
        ),
        ("azure-nsg-v2.json", "azure/PT1H"),
        (
            "handmade/aws-bad-lines.log",
            "AWSLogs/123456789010/vpcflowlogs/us-east-1/2024/03/03",
        ),
        (
            "handmade/aws-v8-custom.log.gz",
            "AWSLogs/123456789010/vpcflowlogs/eu-west-1/2024/03/09",
        ),
        ("handmade/azure-nsg-v1-records.json", "azure/PT1H-v1"),
        ("handmade/gcp-vpc.jsonl", "gcp"),
        (
            "handmade/ibm-vpc-object.json",
            "ibm_vpc_flowlogs_v1/account=a/record-type=all",
        ),
    ];
    for (file, folder) in files {
        let target_directory = directory.path().join(folder);
        std::fs::create_dir_all(&target_directory).expect("writable");
        let name = Path::new(file).file_name().expect("file name");
        std::fs::copy(samples.join(file), target_directory.join(name)).expect("copyable");
    }
    let output = palisade(&[
        "netscan",
        "--flows",
        directory.path().to_str().expect("UTF-8"),
        "--format",
        "json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON document");
    let summary = &document["summary"];
    assert_eq!(summary["files"], 8, "{summary}");
    assert_eq!(
        summary["records"],
        5 + 1 + 1 + 2 + 2 + 4 + 3 + 2,
        "{summary}"
    );
    assert_eq!(summary["bad_records"], 3 + 1 + 2 + 1, "{summary}");
    assert_eq!(summary["skipped_without_data"], 2, "{summary}");
    assert!(document["findings"].as_array().expect("array").is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("aws-bad-lines.log:2: expected 14 fields"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ibm-vpc-object.json:1 at /flow_logs/2"),
        "{stderr}"
    );
}

#[test]
fn table_output_and_fail_on() {
    let directory = tempfile::tempdir().expect("temp dir");
    let data = generated(directory.path());
    let flows = data.join("flows.log");
    let table = palisade(&["netscan", "--flows", flows.to_str().expect("UTF-8")]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("port_scan_vertical")
            && text.contains("exfiltration")
            && text.contains("flows counted"),
        "{text}"
    );
    assert!(!text.contains("xforce"), "no intel was loaded");
    let failing = palisade(&[
        "netscan",
        "--flows",
        flows.to_str().expect("UTF-8"),
        "--fail-on",
        "high",
        "--format",
        "jsonl",
    ]);
    assert_eq!(failing.status.code(), Some(1));
}

#[test]
fn configuration_file_changes_thresholds_and_bad_ones_are_refused() {
    let directory = tempfile::tempdir().expect("temp dir");
    let data = generated(directory.path());
    let flows = data.join("flows.log");
    let config = data.join("config.json");
    std::fs::write(
        &config,
        r#"{"port_scan":{"enabled":false},"exfiltration":{"min_bytes":10000000000}}"#,
    )
    .expect("writable");
    let output = palisade(&[
        "netscan",
        "--flows",
        flows.to_str().expect("UTF-8"),
        "--config",
        config.to_str().expect("UTF-8"),
        "--format",
        "jsonl",
    ]);
    assert!(output.status.success());
    let types: Vec<String> = lines(&output)
        .iter()
        .map(|finding| finding["type"].as_str().expect("type").to_owned())
        .collect();
    assert!(
        !types
            .iter()
            .any(|kind| kind.starts_with("port_scan") || kind == "exfiltration"),
        "{types:?}"
    );
    assert!(types.contains(&"brute_force".to_owned()));
    std::fs::write(&config, r#"{"beaconing":{"window_seconds":0}}"#).expect("writable");
    let refused = palisade(&[
        "netscan",
        "--flows",
        flows.to_str().expect("UTF-8"),
        "--config",
        config.to_str().expect("UTF-8"),
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("beaconing.window_seconds"));
    let missing = palisade(&["netscan", "--flows", "/nonexistent/flows"]);
    assert_eq!(missing.status.code(), Some(2));
}
