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

/// A minimal HTTP/1.1 request over a plain socket (`Connection: close`), so this test needs no
/// HTTP client crate: returns the status and the body.
fn http(url: &str, method: &str, path: &str, key: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn server_mode_asks_the_admission_endpoint_and_the_decisions_are_logged() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let server = crate::support::ServerProcess::start(data_dir.path());
    let (key, instance_id) = server.bootstrap();
    let base = format!("/instances/{instance_id}");
    let rules: Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("rules.json")).expect("rules"))
            .expect("JSON");
    let mut rule = rules[0].clone();
    rule.as_object_mut().expect("object").remove("rule_id");
    let (status, body) = http(
        &server.url,
        "POST",
        &format!("{base}/config/v1/rules"),
        &key,
        &serde_json::json!({"rules": [{"rule": rule}]}).to_string(),
    );
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).expect("JSON");
    let rule_id = created["rules"][0]["rule"]["rule_id"].as_str().expect("id");
    let (status, body) = http(
        &server.url,
        "POST",
        &format!("{base}/config/v1/rules/{rule_id}/attachments"),
        &key,
        r#"{"attachments": [{"account_id": "111122223333",
            "included_scope": {"scope_id": "111122223333", "scope_type": "account"}}]}"#,
    );
    assert_eq!(status, 201, "{body}");

    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["plan", "check", &testdata("plan-public-bucket.json")])
        .args([
            "--server",
            &server.url,
            "--key",
            &key,
            "--account",
            "111122223333",
        ])
        .args(["--format", "json"])
        .output()
        .expect("palisade runs");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(document["violations"][0]["rule_id"], rule_id);
    assert_eq!(
        document["violations"][0]["address"],
        "aws_s3_bucket_public_access_block.logs"
    );

    let (status, body) = http(
        &server.url,
        "GET",
        &format!("{base}/v1/admission/decisions?source=terraform"),
        &key,
        "",
    );
    assert_eq!(status, 200, "{body}");
    let log: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(log["decisions"].as_array().map(Vec::len), Some(4), "{body}");
}
