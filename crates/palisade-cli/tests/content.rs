//! `palisade content list` and `palisade content import-oscal`, on NIST's OSCAL files kept in
//! `content/oscal`.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn palisade(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(arguments)
        .output()
        .expect("palisade runs")
}

fn oscal(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../content/oscal")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn list_shows_libraries_profiles_and_rules() {
    let output = palisade(&["content", "list", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let listing: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let ids: Vec<&str> = listing["libraries"]
        .as_array()
        .expect("libraries")
        .iter()
        .filter_map(|library| library["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"nist-800-53-r5") && ids.contains(&"cis-aws-foundations-v3"),
        "{ids:?}"
    );
    let rules: u64 = listing["rules"]
        .as_object()
        .expect("rules")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert!(rules >= 80, "{rules} rules");
    let table = palisade(&["content", "list"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("cis-aws-foundations"));
}

#[test]
fn import_catalog_writes_a_control_library() {
    let directory = tempfile::tempdir().expect("tempdir");
    let out = directory.path().join("library.json");
    let output = palisade(&[
        "content",
        "import-oscal",
        &oscal("NIST_SP-800-53_rev5_HIGH-baseline-resolved-profile_catalog-min.json"),
        "--out",
        &out.to_string_lossy(),
        "--id",
        "nist-high",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let library: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("JSON");
    assert_eq!(library["id"], "nist-high");
    assert_eq!(library["controls_count"], 370);
    let ac2 = library["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|control| control["control_id"] == "ac-2")
        .expect("AC-2");
    assert_eq!(ac2["control_name"], "AC-2");
    assert_eq!(ac2["control_description"], "Account Management");
    assert_eq!(ac2["control_category"], "Access Control");
}

#[test]
fn import_profile_uses_the_given_catalog_for_titles() {
    let output = palisade(&[
        "content",
        "import-oscal",
        &oscal("NIST_SP-800-53_rev5_LOW-baseline_profile.json"),
        "--catalog",
        &oscal("NIST_SP-800-53_rev5_HIGH-baseline-resolved-profile_catalog-min.json"),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let library: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        library["controls_count"], 149,
        "the LOW baseline's controls"
    );
    assert_eq!(library["controls"][0]["control_id"], "ac-1");
    assert_eq!(
        library["controls"][0]["control_description"],
        "Policy and Procedures"
    );
}

#[test]
fn import_of_a_non_oscal_file_exits_2() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("x.json");
    std::fs::write(&path, "{\"foo\": 1}").expect("write");
    let output = palisade(&["content", "import-oscal", &path.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not an OSCAL catalog or profile"));
}
