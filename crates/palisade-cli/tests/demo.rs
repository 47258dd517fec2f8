//! `palisade demo` (issue 10): a fresh data directory is seeded through the API with inventory,
//! scans of the built-in profiles, audit events and flow logs, so every source has findings; a
//! second start on the same directory serves what is there without seeding again.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use palisade_client::{Client, Method};

struct Demo {
    child: Child,
    url: String,
    instance_id: String,
    key: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data_dir: &std::path::Path) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--flows",
            "5000",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn palisade demo");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut fields = std::collections::HashMap::new();
    while !fields.contains_key("admin_key") {
        let line = receiver
            .recv_timeout(Duration::from_secs(180))
            .expect("the demo is ready within 3 minutes");
        if let Some((name, value)) = line.split_once(": ") {
            fields.insert(name.to_owned(), value.to_owned());
        }
    }
    Demo {
        child,
        url: fields["url"].clone(),
        instance_id: fields["instance_id"].clone(),
        key: fields["admin_key"].clone(),
    }
}

async fn counts(demo: &Demo) -> (usize, Vec<usize>) {
    let client = Client::new(&demo.url, &demo.key).expect("client");
    let reports = client
        .json(
            Method::GET,
            &format!("/instances/{}/v3/reports", demo.instance_id),
            None,
        )
        .await
        .expect("reports");
    let mut findings = Vec::new();
    for provider in ["posture", "activity-insights", "network-insights"] {
        let page = client
            .json(
                Method::GET,
                &format!(
                    "/instances/{}/v1/findings?provider_id={provider}&page_size=200",
                    demo.instance_id
                ),
                None,
            )
            .await
            .expect("findings");
        findings.push(page["findings"].as_array().map_or(0, Vec::len));
    }
    (reports["reports"].as_array().map_or(0, Vec::len), findings)
}

#[test]
fn demo_seeds_every_source_once_issue_10() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let first = start(data_dir.path());
    let (reports, findings) = runtime.block_on(counts(&first));
    assert_eq!(reports, 8, "one report per built-in profile attached");
    assert!(
        findings.iter().all(|count| *count > 0),
        "posture, activity and network findings: {findings:?}"
    );
    drop(first);

    let second = start(data_dir.path());
    let (reports_again, findings_again) = runtime.block_on(counts(&second));
    assert_eq!(
        (reports_again, findings_again),
        (reports, findings),
        "a restart serves the same data without seeding again"
    );
}
