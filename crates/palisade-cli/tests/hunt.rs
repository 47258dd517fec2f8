//! `palisade hunt` end to end: the shipped Sigma content over real CloudTrail samples and
//! generated logs, in each output format.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn content(path: &str) -> PathBuf {
    repository().join("content/sigma").join(path)
}

fn samples(path: &str) -> PathBuf {
    repository()
        .join("crates/palisade-logs/tests/data/cloudtrail")
        .join(path)
}

fn hunt(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("hunt")
        .args(arguments)
        .output()
        .expect("palisade runs")
}

fn jsonl(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect()
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn stopped_trail_sample_is_found_by_sigmahq_and_palisade_rules() {
    let rules_sigmahq = content("cloud/aws/cloudtrail");
    let rules_palisade = content("palisade");
    let logs = samples("stratus-red-team.cloud/defense_evasion/StopCloudtrailTrail.json");
    let output = hunt(&[
        "--rules",
        path_text(&rules_sigmahq),
        "--rules",
        path_text(&rules_palisade),
        "--logs",
        path_text(&logs),
        "--format",
        "jsonl",
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "hits exit with 1: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = jsonl(&output);
    let rule_ids: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["rule_id"].as_str())
        .collect();
    // SigmaHQ "AWS CloudTrail Important Change" and Palisade "AWS CloudTrail Logging Disabled".
    assert!(
        rule_ids.contains(&"4db60cc0-36fb-42b7-9b58-a5b53019fb74"),
        "{rule_ids:?}"
    );
    assert!(
        rule_ids.contains(&"3ca5b840-6c4d-4024-96a2-1f998f845eb4"),
        "{rule_ids:?}"
    );
    for line in &lines {
        let keys: Vec<&String> = line.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            ["event", "level", "rule_id", "time", "title"],
            "{line}"
        );
        assert_eq!(line["event"]["eventName"], "StopLogging");
    }
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(
        summary.contains("hit(s) from") && summary.contains("Logging Disabled"),
        "{summary}"
    );
}

#[test]
fn failed_logins_in_a_generated_s3_tree_become_one_correlation_hit() {
    let directory = tempfile::tempdir().expect("temp dir");
    let day = directory
        .path()
        .join("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01");
    std::fs::create_dir_all(&day).expect("creates");
    let failure = |minute: u32| {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2024-03-01T02:{minute:02}:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","recipientAccountId":"111122223333","userIdentity":{{"type":"IAMUser","userName":"alice"}},"responseElements":{{"ConsoleLogin":"Failure"}}}}"#
        )
    };
    for (index, minutes) in [[0, 1, 2, 3], [4, 5, 6, 7]].iter().enumerate() {
        let records: Vec<String> = minutes.iter().map(|minute| failure(*minute)).collect();
        let object = format!("{{\"Records\":[{}]}}", records.join(","));
        std::fs::write(
            day.join(format!(
                "111122223333_CloudTrail_us-east-1_20240301T020{index}Z_x.json"
            )),
            object,
        )
        .expect("writes");
    }
    std::fs::write(directory.path().join("AWSLogs/README.txt"), "not a log").expect("writes");
    let rules = content("palisade/aws/palisade_aws_console_login_failures.yml");
    let output = hunt(&[
        "--rules",
        path_text(&rules),
        "--logs",
        path_text(directory.path()),
        "--format",
        "jsonl",
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = jsonl(&output);
    assert_eq!(lines.len(), 1, "one burst, one hit: {lines:?}");
    let hit = &lines[0];
    assert_eq!(hit["rule_id"], "ab23b161-0148-4586-bb5d-14ba55445eaa");
    assert_eq!(hit["level"], "high");
    assert!(hit.get("event").is_none());
    assert_eq!(hit["group"]["userIdentity.userName"], "alice");
    assert_eq!(
        hit["events"].as_array().map(Vec::len),
        Some(6),
        "the six failures that crossed the threshold"
    );
    assert_eq!(hit["time"], "2024-03-01T02:05:00Z");

    // The same logs before the burst: nothing, and exit status 0.
    let quiet = hunt(&[
        "--rules",
        path_text(&rules),
        "--logs",
        path_text(directory.path()),
        "--to",
        "2024-03-01T02:03:00Z",
        "--format",
        "jsonl",
    ]);
    assert_eq!(
        quiet.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    assert!(quiet.stdout.is_empty());
}

#[test]
fn gzipped_s3_layout_and_csv_output() {
    let rules = content("cloud/aws/cloudtrail");
    let logs = samples("sans-504-s3-layout");
    let output = hunt(&[
        "--rules",
        path_text(&rules),
        "--logs",
        path_text(&logs),
        "--format",
        "csv",
    ]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("rule_id,title,level,severity,time,account,initiator,target,group,event_count,source")
    );
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(
        summary.contains("155 event(s) of 12 file(s)"),
        "every gzipped record is read: {summary}"
    );
}

#[test]
fn table_output_ends_with_the_summary() {
    let rules = content("palisade/aws/palisade_aws_logging_disabled.yml");
    let logs = samples("stratus-red-team.cloud/defense_evasion/DeleteCloudtrailTrail.json");
    let output = hunt(&["--rules", path_text(&rules), "--logs", path_text(&logs)]);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("AWS CloudTrail Logging Disabled"), "{text}");
    assert!(text.contains("1 hit(s) from 1 rule(s)"), "{text}");
}

#[test]
fn unloadable_rules_and_bad_times_are_errors() {
    let logs = samples("stratus-red-team.cloud");
    let directory = tempfile::tempdir().expect("temp dir");
    let rule = directory.path().join("broken.yml");
    std::fs::write(&rule, "title: x\ndetection: [").expect("writes");
    let output = hunt(&["--rules", path_text(&rule), "--logs", path_text(&logs)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("broken.yml"));
    let output = hunt(&[
        "--rules",
        path_text(&rule),
        "--logs",
        path_text(&logs),
        "--from",
        "yesterday",
    ]);
    assert_eq!(output.status.code(), Some(2));
}
