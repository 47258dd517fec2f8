//! The AWS collector against the moto emulator (`python -m moto.server`), seeded by
//! `tests/aws/seed_moto.py` with compliant and non-compliant resources: the built-in rules run
//! on what was collected must find every misconfiguration the script seeded.
//!
//! The interpreter is `PALISADE_MOTO_PYTHON` (a venv made by `scripts/test` from
//! `tests/sdk/requirements-moto.txt`). Without it the test skips, saying so, unless
//! `PALISADE_REQUIRE_SDK=1`, which makes the skip a failure.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use palisade_collect::NoProgress;
use palisade_collect::aws::{AwsConfig, AwsCredentials, collect_aws};
use palisade_model::resource::Resource;
use palisade_rules::{ParameterValues, RuleSet, Status};
use serde_json::Value;

use crate::support::{tests_dir, uncatalogued};

/// The (rule, resource id) pairs the built-in rules fail on.
pub fn failing_rules(resources: &[Resource], now: DateTime<Utc>) -> Vec<(String, String)> {
    let content = palisade_posture::content::builtin().expect("built-in content loads");
    let rules = RuleSet::compile(&content.rules, &ParameterValues::default())
        .expect("built-in rules compile");
    rules
        .evaluate_batch(resources, now)
        .into_iter()
        .filter(|evaluation| evaluation.status == Status::Failure)
        .map(|evaluation| (evaluation.rule_id, evaluation.resource_id))
        .collect()
}

/// A moto server, killed on drop.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto(python: &str) -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(python)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto.server");
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not listen within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    moto
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_account_misconfigurations_are_found() {
    let Ok(python) = std::env::var("PALISADE_MOTO_PYTHON") else {
        let required = std::env::var("PALISADE_REQUIRE_SDK").is_ok_and(|value| value == "1");
        assert!(
            !required,
            "PALISADE_REQUIRE_SDK=1 but PALISADE_MOTO_PYTHON is unset: run the tests through scripts/test"
        );
        eprintln!(
            "SKIPPED moto_account_misconfigurations_are_found: PALISADE_MOTO_PYTHON is unset (scripts/test sets it up)"
        );
        return;
    };
    let moto = start_moto(&python);
    let seeded = Command::new(&python)
        .arg(tests_dir().join("aws/seed_moto.py"))
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("run the seed script");
    assert!(
        seeded.status.success(),
        "seeding failed:\n{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let expected: Vec<Value> = serde_json::from_slice(&seeded.stdout).expect("seed prints JSON");

    let config = AwsConfig {
        credentials: AwsCredentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        },
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        home_region: "us-east-1".into(),
        endpoint_url: Some(moto.url.clone()),
        concurrency: 2,
        assume_role: None,
    };
    let now = Utc::now();
    let output = collect_aws(&config, &NoProgress, now).await;
    for error in &output.errors {
        eprintln!("collection error: {error}");
    }
    let mut counts = std::collections::BTreeMap::new();
    for resource in &output.resources {
        *counts
            .entry(format!(
                "{}/{}",
                resource.service_name, resource.resource_kind
            ))
            .or_insert(0) += 1;
        assert_eq!(resource.account_id, "123456789012", "{}", resource.id);
    }
    eprintln!("collected: {counts:?}");
    for kind in [
        "s3/bucket",
        "iam/user",
        "iam/role",
        "iam/policy",
        "iam/account",
        "ec2/security-group",
        "ec2/instance",
        "ec2/volume",
        "ec2/vpc",
        "ec2/account-settings",
        "cloudtrail/trail",
        "kms/key",
        "rds/db-instance",
    ] {
        assert!(counts.contains_key(kind), "nothing collected for {kind}");
    }
    assert!(
        uncatalogued(&output).is_empty(),
        "kinds missing from services.json: {:?}",
        uncatalogued(&output)
    );

    let failing = failing_rules(&output.resources, now);
    let mut missed = Vec::new();
    for expectation in &expected {
        let rule = expectation["rule"].as_str().unwrap_or_default();
        let marker = expectation["resource"].as_str().unwrap_or_default();
        if !failing
            .iter()
            .any(|(rule_id, resource_id)| rule_id == rule && resource_id.contains(marker))
        {
            missed.push(format!("{rule} on {marker}"));
        }
    }
    assert!(
        missed.is_empty(),
        "seeded misconfigurations not found: {missed:#?}\nfailing: {failing:#?}"
    );

    // The compliant twins pass the rules they were made for.
    for (rule, marker) in [
        ("aws-s3-block-public-acls", "palisade-good"),
        ("aws-s3-deny-http", "palisade-good"),
        ("aws-s3-access-logging", "palisade-good"),
        ("aws-s3-object-read-logging", "palisade-good"),
        ("aws-iam-user-mfa", "user/alice"),
        ("aws-iam-user-one-active-key", "user/alice"),
        ("aws-cloudtrail-multi-region", "trail/palisade-good-trail"),
        ("aws-cloudtrail-logging", "trail/palisade-good-trail"),
        ("aws-rds-encrypted", "db:palisade-ledger"),
        ("aws-vpc-flow-logs", "10.20.0.0"),
    ] {
        let resource_id = output
            .resources
            .iter()
            .find(|resource| {
                resource.id.contains(marker) || resource.config.to_string().contains(marker)
            })
            .map(|resource| resource.id.clone())
            .unwrap_or_else(|| panic!("no resource for {marker}"));
        assert!(
            !failing
                .iter()
                .any(|(rule_id, id)| rule_id == rule && id == &resource_id),
            "{rule} fails on the compliant {marker}"
        );
    }
}

/// A credential with a role (an `aws_cloud` credential's `role_arn`, or a profile's `role_arn` +
/// `source_profile`) collects as the role: STS AssumeRole first, then every call with the
/// role's temporary credentials — moto answers those in the role's own account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_assumed_role_collects_in_the_role_account_issue_5() {
    let Ok(python) = std::env::var("PALISADE_MOTO_PYTHON") else {
        let required = std::env::var("PALISADE_REQUIRE_SDK").is_ok_and(|value| value == "1");
        assert!(
            !required,
            "PALISADE_REQUIRE_SDK=1 but PALISADE_MOTO_PYTHON is unset: run the tests through scripts/test"
        );
        eprintln!(
            "SKIPPED moto_assumed_role_collects_in_the_role_account_issue_5: PALISADE_MOTO_PYTHON is unset (scripts/test sets it up)"
        );
        return;
    };
    let moto = start_moto(&python);
    let config = AwsConfig {
        credentials: AwsCredentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        },
        regions: vec!["us-east-1".into()],
        home_region: "us-east-1".into(),
        endpoint_url: Some(moto.url.clone()),
        concurrency: 1,
        assume_role: Some(palisade_collect::aws::AssumeRole::new(
            "arn:aws:iam::111111111111:role/palisade-audit",
        )),
    };
    let output = collect_aws(&config, &NoProgress, Utc::now()).await;
    assert!(
        !output
            .errors
            .iter()
            .any(|error| error.source.contains("assume-role") || error.source.contains("caller")),
        "{:#?}",
        output.errors
    );
    let account = output
        .resources
        .iter()
        .find(|resource| resource.service_name == "iam" && resource.resource_kind == "account")
        .expect("the account resource");
    assert_eq!(account.account_id, "111111111111", "collected as the role");
}
