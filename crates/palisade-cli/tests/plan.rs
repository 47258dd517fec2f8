//! `palisade plan check`, run as a CI pipeline would: Terraform plans from `testdata/terraform`
//! against configuration governance rules, in each output format, with the exit status as the
//! gate.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn testdata(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/terraform")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn plan_check(plan: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "plan",
            "check",
            &testdata(plan),
            "--rules",
            &testdata("rules.json"),
        ])
        .args(extra)
        .output()
        .expect("palisade runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_disallow_violation_fails_the_plan_and_audit_log_ones_are_reported() {
    let output = plan_check("plan-public-bucket.json", &[]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("aws_s3_bucket_public_access_block.logs"),
        "{stdout}"
    );
    assert!(stdout.contains("tf-s3-block-public-acls"), "{stdout}");
    assert!(
        stdout.contains("module.network.aws_security_group.web"),
        "{stdout}"
    );
    // The disabled rule is not enforced; the deleted instance is not checked.
    assert!(!stdout.contains("tf-instance-monitoring"), "{stdout}");
    assert!(!stdout.contains("aws_instance.old"), "{stdout}");
    assert!(
        stdout.contains("4 planned resource(s) checked: 2 violation(s), 1 denied"),
        "{stdout}"
    );
}

#[test]
fn json_output_lists_violations_with_their_details() {
    let output = plan_check("plan-public-bucket.json", &["--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(document["allowed"], false);
    assert_eq!(document["resources_checked"], 4);
    let violations = document["violations"].as_array().expect("violations");
    let summary: Vec<(&str, &str, &str)> = violations
        .iter()
        .map(|violation| {
            (
                violation["address"].as_str().unwrap_or_default(),
                violation["rule_id"].as_str().unwrap_or_default(),
                violation["action"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "aws_s3_bucket_public_access_block.logs",
                "tf-s3-block-public-acls",
                "disallow"
            ),
            (
                "module.network.aws_security_group.web",
                "tf-sg-no-public-ssh",
                "audit_log"
            ),
        ]
    );
    let properties: Vec<&str> = violations[0]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|detail| detail["property"].as_str())
        .collect();
    assert_eq!(properties, ["block_public_acls", "ignore_public_acls"]);
}

#[test]
fn sarif_output_has_errors_for_disallow_and_warnings_for_audit_log() {
    let output = plan_check("plan-public-bucket.json", &["--format", "sarif"]);
    assert_eq!(output.status.code(), Some(1));
    let log: Value = serde_json::from_slice(&output.stdout).expect("SARIF is JSON");
    assert_eq!(log["version"], "2.1.0");
    let results = log["runs"][0]["results"].as_array().expect("results");
    let levels: Vec<&str> = results
        .iter()
        .filter_map(|result| result["level"].as_str())
        .collect();
    assert_eq!(levels, ["error", "warning"]);
    assert_eq!(
        results[0]["locations"][0]["logicalLocations"][0]["name"],
        "aws_s3_bucket_public_access_block.logs"
    );
}

#[test]
fn a_compliant_plan_passes() {
    let output = plan_check("plan-compliant.json", &[]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("0 violation(s), 0 denied"), "{stdout}");
}

#[test]
fn a_malformed_plan_names_the_pointer_and_exits_2() {
    let directory = tempfile::tempdir().expect("tempdir");
    let plan = directory.path().join("plan.json");
    std::fs::write(
        &plan,
        r#"{"resource_changes": [{"address": "a.b", "type": "a", "change": {}}]}"#,
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["plan", "check"])
        .arg(&plan)
        .args(["--rules", &testdata("rules.json")])
        .output()
        .expect("palisade runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("/resource_changes/0/change/actions"),
        "{stderr}"
    );
    // Neither --rules nor --server: clap refuses.
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["plan", "check"])
        .arg(&plan)
        .output()
        .expect("palisade runs");
    assert_eq!(output.status.code(), Some(2));
}
