//! `palisade collect`, run as a user would: importers to a JSON Lines file (bad records named on
//! stderr, good ones kept, exit 1), the host collector over a fixture tree, and a push to a
//! running server.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::ServerProcess;

fn palisade(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(arguments)
        .env_remove("PALISADE_SERVER")
        .env_remove("PALISADE_KEY")
        .output()
        .expect("palisade runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fixture of palisade-collect's importer tests.
fn fixture(relative: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../palisade-collect/tests/import")
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

fn read_jsonl(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("output written")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

#[test]
fn import_writes_good_resources_and_names_bad_records() {
    let directory = tempfile::tempdir().expect("tempdir");
    let out = directory.path().join("k8s.jsonl");
    let output = palisade(&[
        "collect",
        "import",
        "kubernetes",
        &fixture("kubernetes/kubectl-list.json"),
        &fixture("kubernetes/manifests.yaml"),
        "--account-id",
        "prod",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("kubectl-list.json: /items/3/metadata/name: missing metadata.name"),
        "{stderr}"
    );
    assert!(
        stderr.contains("manifests.yaml: line 43: not valid YAML"),
        "{stderr}"
    );
    assert!(
        stderr.contains("kubernetes/workload"),
        "summary table: {stderr}"
    );
    let resources = read_jsonl(&out);
    assert_eq!(resources.len(), 7, "{resources:#?}");
    assert!(
        resources
            .iter()
            .all(|resource| resource["account_id"] == "prod")
    );
}

#[test]
fn clean_import_exits_zero_and_unknown_kinds_are_refused() {
    let directory = tempfile::tempdir().expect("tempdir");
    let out = directory.path().join("ibm.jsonl");
    let output = palisade(&[
        "collect",
        "import",
        "ibm",
        &fixture("ibm/cos-buckets.json"),
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let resources = read_jsonl(&out);
    assert_eq!(resources.len(), 2);
    assert_eq!(resources[0]["service_name"], "cloud-object-storage");

    let refused = palisade(&["collect", "import", "oracle", "x.json"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("unknown import kind"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn host_collects_a_root_directory_to_stdout() {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../palisade-collect/tests/host/tree");
    let output = palisade(&[
        "collect",
        "host",
        "--root",
        root.to_str().expect("utf-8 path"),
    ]);
    // The fixture's /etc/passwd has a malformed line: reported, exit 1, the host still written.
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/etc/passwd: line 5: not a 7-field passwd line"),
        "{stderr}"
    );
    let lines: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["service_name"], "linux");
    assert_eq!(lines[0]["config"]["sshd"]["permit_root_login"], "no");
}

#[test]
fn push_to_a_server_stores_the_good_records() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(data_dir.path());
    let (admin_key, _instance_id) = server.bootstrap();
    let first = palisade(&[
        "collect",
        "import",
        "azure",
        &fixture("azure/rest-table.json"),
        "--server",
        &server.url,
        "--key",
        &admin_key,
    ]);
    let stderr = text(&first.stderr);
    // The fixture's second row has no namespace in its type: an importer error, exit 1.
    assert_eq!(first.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 stored, 0 already there"), "{stderr}");
}
