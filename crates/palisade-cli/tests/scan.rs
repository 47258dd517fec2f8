//! `palisade scan`, run as a user would: a built-in profile or a profile file over an
//! inventory file, each output format, the `--fail-under` gate and bad records.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn palisade(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(arguments)
        .output()
        .expect("palisade runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Two hosts: one hardened, one with root SSH logins and password authentication.
fn inventory(directory: &Path) -> String {
    let hardened = json!({"id": "host-a", "name": "web-1", "environment": "on-prem", "account_id": "dc1",
        "service_name": "linux", "resource_kind": "host",
        "config": {"sshd": {"permit_root_login": "no", "password_authentication": "no"}}});
    let weak = json!({"id": "host-b", "name": "db-1", "environment": "on-prem", "account_id": "dc1",
        "service_name": "linux", "resource_kind": "host",
        "config": {"sshd": {"permit_root_login": "yes", "password_authentication": "yes"}}});
    let bad = json!({"id": "no-service"});
    let path = directory.join("inventory.jsonl");
    std::fs::write(&path, format!("{hardened}\n{weak}\n{bad}\nnot json\n")).expect("write");
    path.to_string_lossy().into_owned()
}

/// A profile file picking the two SSH controls' rules through a one-control library.
fn profile_files(directory: &Path) -> (String, String) {
    let library = json!({"id": "ssh", "control_library_name": "SSH", "control_library_version": "1",
        "controls": [{"control_id": "ssh-1", "control_name": "SSH-1", "control_description": "Hardened SSH",
            "control_specifications": [{"id": "s", "component_id": "linux", "environment": "on-prem",
                "assessments": [{"assessment_id": "linux-sshd-no-root-login"},
                                {"assessment_id": "linux-sshd-no-password-auth"}]}]}]});
    let profile = json!({"id": "ssh-profile", "profile_name": "SSH only", "profile_version": "1",
        "controls": [{"control_library_id": "ssh", "control_id": "ssh-1"}]});
    let library_path = directory.join("library.json");
    let profile_path = directory.join("profile.json");
    std::fs::write(&library_path, library.to_string()).expect("write");
    std::fs::write(&profile_path, profile.to_string()).expect("write");
    (
        library_path.to_string_lossy().into_owned(),
        profile_path.to_string_lossy().into_owned(),
    )
}

#[test]
fn profile_file_json_report_scores_and_reports_bad_records() {
    let directory = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(directory.path());
    let (library, profile) = profile_files(directory.path());
    let output = palisade(&[
        "scan",
        "--profile",
        &profile,
        "--library",
        &library,
        "--inventory",
        &inventory,
        "--format",
        "json",
        "--now",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(
        report["score"],
        json!({"passed": 2, "total_count": 4, "percent": 50})
    );
    assert_eq!(report["controls"][0]["status"], json!("not_compliant"));
    assert_eq!(report["evaluations"].as_array().map(Vec::len), Some(4));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("line 3"), "bad record reported: {stderr}");
    assert!(stderr.contains("line 4: invalid JSON"), "{stderr}");
}

#[test]
fn fail_under_gates_on_the_score() {
    let directory = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(directory.path());
    let (library, profile) = profile_files(directory.path());
    let base = [
        "scan",
        "--profile",
        &profile,
        "--library",
        &library,
        "--inventory",
        &inventory,
    ];
    let below = palisade(&[&base[..], &["--fail-under", "60"]].concat());
    assert_eq!(below.status.code(), Some(1), "{}", text(&below.stderr));
    assert!(text(&below.stderr).contains("below --fail-under 60"));
    let above = palisade(&[&base[..], &["--fail-under", "50"]].concat());
    assert_eq!(above.status.code(), Some(0), "{}", text(&above.stderr));
    let table = text(&above.stdout);
    assert!(
        table.contains("SSH only") && table.contains("50.0%"),
        "{table}"
    );
    assert!(table.contains("not_compliant"), "{table}");
}

#[test]
fn builtin_profile_with_params_as_sarif_and_csv() {
    let directory = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(directory.path());
    let sarif = palisade(&[
        "scan",
        "--profile",
        "nist-800-53-linux",
        "--inventory",
        &inventory,
        "--format",
        "sarif",
        "--params",
        "ssh_max_auth_tries=10",
    ]);
    assert_eq!(sarif.status.code(), Some(0), "{}", text(&sarif.stderr));
    let log: Value = serde_json::from_slice(&sarif.stdout).expect("SARIF");
    assert_eq!(log["version"], json!("2.1.0"));
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert!(results.iter().any(
        |result| result["ruleId"] == json!("linux-sshd-no-root-login")
            && result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                == json!("host-b")
    ));
    assert!(
        results
            .iter()
            .all(|result| result["level"] == json!("error"))
    );

    let csv = palisade(&[
        "scan",
        "--profile",
        "nist-800-53-linux",
        "--inventory",
        &inventory,
        "--format",
        "csv",
    ]);
    assert_eq!(csv.status.code(), Some(0), "{}", text(&csv.stderr));
    let rows = text(&csv.stdout);
    assert!(
        rows.starts_with("report_id,scan_time,profile,controls,rule_id"),
        "{rows}"
    );
    assert!(
        rows.lines()
            .any(|row| row.contains("linux-sshd-no-root-login")
                && row.contains("host-b")
                && row.contains("failure")
                && row.contains("yes")),
        "{rows}"
    );
}

#[test]
fn unknown_profile_and_missing_inventory_exit_2() {
    let unknown = palisade(&[
        "scan",
        "--profile",
        "no-such-profile",
        "--inventory",
        "x.json",
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no-such-profile"));
    let missing = palisade(&[
        "scan",
        "--profile",
        "nist-800-53-linux",
        "--inventory",
        "/nonexistent.json",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent.json"));
}
