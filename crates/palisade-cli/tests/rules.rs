//! `palisade rules eval|validate|test`, run as a user would: the built binary, files in a
//! temporary directory, resources on stdin.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn palisade(arguments: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(arguments)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn palisade");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let text = text.to_string();
        // Written from a thread so a large input cannot deadlock against a full stdout pipe.
        std::thread::spawn(move || pipe.write_all(text.as_bytes()));
    }
    child.wait_with_output().expect("palisade runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const RULES: &str = r#"[
  {"id": "encrypted", "target": {"service_name": "cos", "resource_kind": "bucket"},
   "required_config": {"property": "encrypted", "operator": "is_true"}},
  {"id": "quota", "target": {"service_name": "cos", "resource_kind": "bucket"},
   "import": {"parameters": [{"name": "max_quota", "type": "numeric"}]},
   "required_config": {"property": "quota", "operator": "num_less_than_equals", "value": "${max_quota}"}},
  {"id": "fresh-key", "target": {"service_name": "kms", "resource_kind": "key"},
   "required_config": {"property": "rotated_at", "operator": "days_less_than", "value": 90}}
]"#;

fn resources() -> String {
    [
        json!({"id": "b1", "service_name": "cos", "resource_kind": "bucket", "config": {"encrypted": true, "quota": 10}}),
        json!({"id": "b2", "service_name": "cos", "resource_kind": "bucket", "config": {"encrypted": false, "quota": 500}}),
        json!({"id": "k1", "service_name": "kms", "resource_kind": "key", "config": {"rotated_at": "2025-12-01"}}),
        json!({"id": "vm", "service_name": "is", "resource_kind": "instance", "config": {}}),
    ]
    .iter()
    .map(|resource| format!("{resource}\n"))
    .collect()
}

fn write(directory: &Path, name: &str, contents: &str) -> String {
    let path = directory.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create directory");
    }
    std::fs::write(&path, contents).expect("write file");
    path.display().to_string()
}

fn lines(output: &Output) -> Vec<Value> {
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each stdout line is JSON"))
        .collect()
}

#[test]
fn eval_prints_one_json_line_per_evaluated_pair_in_input_order() {
    let directory = tempfile::tempdir().expect("tempdir");
    let rules = write(directory.path(), "rules.json", RULES);
    let input = write(directory.path(), "resources.jsonl", &resources());
    let output = palisade(
        &[
            "rules",
            "eval",
            "--rules",
            &rules,
            "--resources",
            &input,
            "--params",
            "max_quota=100",
            "--now",
            "2026-01-01T00:00:00Z",
        ],
        None,
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    let summary: Vec<(String, String, String)> = lines(&output)
        .iter()
        .map(|line| {
            (
                line["rule_id"].as_str().unwrap_or_default().to_string(),
                line["resource_id"].as_str().unwrap_or_default().to_string(),
                line["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected = [
        ("encrypted", "b1", "pass"),
        ("quota", "b1", "pass"),
        ("encrypted", "b2", "failure"),
        ("quota", "b2", "failure"),
        ("fresh-key", "k1", "pass"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(rule, resource, status)| {
            (rule.to_string(), resource.to_string(), status.to_string())
        })
        .collect();
    assert_eq!(summary, expected);
    let failure = &lines(&output)[3];
    assert_eq!(failure["details"][0]["property"], "quota");
    assert_eq!(failure["details"][0]["found_value"], 500);
    assert_eq!(failure["details"][0]["expected_value"], 100);
}

#[test]
fn eval_reads_stdin_and_fail_on_changes_the_exit_code() {
    let directory = tempfile::tempdir().expect("tempdir");
    let rules = write(directory.path(), "rules.json", RULES);
    let base = [
        "rules",
        "eval",
        "--rules",
        rules.as_str(),
        "--resources",
        "-",
        "--now",
        "2026-01-01T00:00:00Z",
    ];
    let plain = palisade(&base, Some(&resources()));
    assert_eq!(
        plain.status.code(),
        Some(0),
        "stderr: {}",
        text(&plain.stderr)
    );
    // Without a value for max_quota the quota rule errors, with the reason.
    let quota_line = lines(&plain)
        .into_iter()
        .find(|line| line["rule_id"] == "quota" && line["resource_id"] == "b1")
        .expect("quota evaluated on b1");
    assert_eq!(quota_line["status"], "error");
    assert!(
        quota_line["details"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("max_quota")
    );

    let mut failing = base.to_vec();
    failing.extend(["--fail-on", "failure"]);
    assert_eq!(
        palisade(&failing, Some(&resources())).status.code(),
        Some(1)
    );
    let mut erroring = base.to_vec();
    erroring.extend(["--fail-on", "error", "--params", "max_quota=1000"]);
    assert_eq!(
        palisade(&erroring, Some(&resources())).status.code(),
        Some(0)
    );
}

#[test]
fn eval_reports_bad_lines_with_their_number_and_keeps_the_good_ones() {
    let directory = tempfile::tempdir().expect("tempdir");
    let rules = write(directory.path(), "rules.json", RULES);
    let input = format!(
        "{}\n{{not json\n{{\"id\": \"x\"}}\n",
        resources().trim_end()
    );
    let output = palisade(
        &["rules", "eval", "--rules", &rules, "--resources", "-"],
        Some(&input),
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("stdin:5: bad resource"), "{stderr}");
    assert!(
        stderr.contains("stdin:6: bad resource") && stderr.contains("service_name"),
        "{stderr}"
    );
    assert_eq!(lines(&output).len(), 5);
}

#[test]
fn eval_streams_many_chunks_in_order() {
    let directory = tempfile::tempdir().expect("tempdir");
    let rules = write(directory.path(), "rules.json", RULES);
    let count = 10_000;
    let input: String = (0..count)
        .map(|index| {
            format!(
                "{}\n",
                json!({"id": format!("b{index}"), "service_name": "cos", "resource_kind": "bucket",
                       "config": {"encrypted": index % 3 == 0, "quota": index}})
            )
        })
        .collect();
    let output = palisade(
        &[
            "rules",
            "eval",
            "--rules",
            &rules,
            "--resources",
            "-",
            "--params",
            "max_quota=5000",
        ],
        Some(&input),
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    let evaluations = lines(&output);
    assert_eq!(evaluations.len(), 2 * count);
    for (index, pair) in evaluations.chunks(2).enumerate() {
        assert_eq!(pair[0]["resource_id"], format!("b{index}"));
        assert_eq!(
            pair[0]["status"],
            if index % 3 == 0 { "pass" } else { "failure" }
        );
        assert_eq!(
            pair[1]["status"],
            if index <= 5000 { "pass" } else { "failure" }
        );
    }
}

#[test]
fn eval_table_is_for_people() {
    let directory = tempfile::tempdir().expect("tempdir");
    let rules = write(directory.path(), "rules.json", RULES);
    let output = palisade(
        &[
            "rules",
            "eval",
            "--rules",
            &rules,
            "--resources",
            "-",
            "--format",
            "table",
            "--params",
            "max_quota=100",
            "--now",
            "2026-01-01T00:00:00Z",
        ],
        Some(&resources()),
    );
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("STATUS"), "{stdout}");
    assert!(stdout.contains("failure  encrypted"), "{stdout}");
    assert!(
        stdout.contains("5 evaluation(s) over 4 resource(s): 3 pass, 2 failure, 0 error"),
        "{stdout}"
    );
}

#[test]
fn invalid_rules_list_every_error_and_exit_2() {
    let directory = tempfile::tempdir().expect("tempdir");
    write(directory.path(), "rules/good.json", RULES);
    let bad = write(
        directory.path(),
        "rules/nested/bad.json",
        r#"{"id": "bad", "target": {"service_name": "cos", "resource_kind": "bucket"},
            "required_config": {"and": [
              {"property": "a", "operator": "string_equal", "value": "x"},
              {"property": "b", "operator": "ips_in_range", "value": ["10.0.0.0/8", "10.0.0.0/40"]}]}}"#,
    );
    let rules_directory = directory.path().join("rules").display().to_string();
    let validate = palisade(&["rules", "validate", &rules_directory], None);
    assert_eq!(validate.status.code(), Some(2));
    let stdout = text(&validate.stdout);
    assert!(
        stdout.contains(&format!(
            "{bad}: /required_config/and/0/operator: unknown operator \"string_equal\""
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{bad}: /required_config/and/1/value/1: bad CIDR")),
        "{stdout}"
    );

    let eval = palisade(
        &[
            "rules",
            "eval",
            "--rules",
            &rules_directory,
            "--resources",
            "-",
        ],
        Some(&resources()),
    );
    assert_eq!(eval.status.code(), Some(2));
    assert!(eval.stdout.is_empty());
    assert!(text(&eval.stderr).contains("unknown operator"));

    let good = directory
        .path()
        .join("rules/good.json")
        .display()
        .to_string();
    let valid = palisade(&["rules", "validate", &good], None);
    assert_eq!(valid.status.code(), Some(0));
    assert!(text(&valid.stdout).contains("ok: 3 rule(s) valid"));
}

#[test]
fn array_files_point_into_the_array() {
    let directory = tempfile::tempdir().expect("tempdir");
    let rules = write(
        directory.path(),
        "rules.json",
        r#"[{"id": "a", "target": {"service_name": "s", "resource_kind": "k"}, "required_config": {"property": "x", "operator": "is_empty"}},
            {"id": "b", "target": {"service_name": "s"}, "required_config": {"property": "x", "operator": "is_empty"}}]"#,
    );
    let output = palisade(&["rules", "validate", &rules], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stdout).contains(&format!(
        "{rules}: /1/target/resource_kind: missing resource_kind (rule \"b\")"
    )));
}

#[test]
fn test_runs_case_files_like_opa_test() {
    let directory = tempfile::tempdir().expect("tempdir");
    let passing = r#"
note: encryption required
rules: {id: enc, target: {service_name: cos, resource_kind: bucket}, required_config: {property: encrypted, operator: is_true}}
resources:
  - {id: b1, service_name: cos, resource_kind: bucket, config: {encrypted: true}}
  - {id: b2, service_name: cos, resource_kind: bucket, config: {}}
want:
  - {resource: b1, status: pass}
  - {resource: b2, status: failure, details: [{property: encrypted, found_value: null}]}
"#;
    write(directory.path(), "cases/pass.yaml", passing);
    let cases = directory.path().join("cases").display().to_string();
    let output = palisade(&["rules", "test", &cases], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert!(text(&output.stdout).contains("1 passed, 0 failed"));

    write(
        directory.path(),
        "cases/wrong.yaml",
        &passing.replace(
            "{resource: b1, status: pass}",
            "{resource: b1, status: error}",
        ),
    );
    let output = palisade(&["rules", "test", &cases], None);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("FAIL") && stdout.contains("want error, got pass"),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
}
