//! `palisade collector run` end to end (issue 5): a real server process, a collector created
//! through the API, the real agent process registering with its one-time code and running an
//! import job and a host job every second — and the server killed with SIGKILL in the middle and
//! restarted on the same data directory. Every batch the agent spooled must be in the server
//! exactly once, and every resource version it collected must be in the inventory, once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_client::{Client, Method};
use serde_json::{Value, json};

use crate::support::ServerProcess;

/// The longest any wait below may take before the test gives up (a bound, not a speed claim).
const PATIENCE: Duration = Duration::from_secs(120);

fn api(url: &str, key: &str, method: Method, path: &str, body: Option<Value>) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        Client::new(url, key)
            .expect("client")
            .json(method, path, body.as_ref())
            .await
            .unwrap_or_else(|error| panic!("{path}: {error}"))
    })
}

fn fixture(relative: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../palisade-collect/tests")
        .join(relative)
        .canonicalize()
        .expect("fixture exists")
        .to_string_lossy()
        .into_owned()
}

/// The agent process; its stderr lines are collected as they come.
struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    fn start(server: &str, code: &str, state_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args([
                "collector",
                "run",
                "--server",
                server,
                "--registration-code",
                code,
            ])
            .arg("--state-dir")
            .arg(state_dir)
            .args([
                "--heartbeat-seconds",
                "1",
                "--max-backoff-seconds",
                "1",
                "--batch-size",
                "2",
            ])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn palisade collector run");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        Self {
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// Waits until `done` holds over the agent's log, failing with the log after [`PATIENCE`].
    fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let started = Instant::now();
        loop {
            let lines = self.lines();
            if done(&lines) {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "gave up waiting for {what}; agent log:\n{}",
                lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then the exit status and the whole log.
    fn terminate(mut self) -> (bool, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill")
                .success()
        );
        let success = self.child.wait().expect("wait").success();
        // The log is complete once the reader saw the end of stderr.
        if let Some(reader) = self.reader.take() {
            reader.join().expect("log reader");
        }
        (success, self.lines())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `name=value` in a log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|token| token.strip_prefix(&format!("{name}=")))
}

/// Spooled batches in log order: (batch id, resources).
fn spooled(lines: &[String]) -> Vec<(String, u64)> {
    lines
        .iter()
        .filter(|line| line.contains("spooled batch"))
        .filter_map(|line| {
            Some((
                field(line, "batch_id")?.to_owned(),
                field(line, "resources")?.parse().ok()?,
            ))
        })
        .collect()
}

/// Acknowledged batch ids in log order.
fn acknowledged(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line.contains("batch acknowledged"))
        .filter_map(|line| field(line, "batch_id").map(str::to_owned))
        .collect()
}

fn count_matching(lines: &[String], text: &str) -> usize {
    lines.iter().filter(|line| line.contains(text)).count()
}

#[test]
fn issue_5_agent_loses_and_duplicates_nothing_across_a_server_crash() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let state_dir = tempfile::tempdir().expect("state dir");
    let server = ServerProcess::start(data_dir.path());
    let (admin_key, instance_id) = server.bootstrap();
    let url = server.url.clone();
    let listen = url.trim_start_matches("http://").to_owned();

    let created = api(
        &url,
        &admin_key,
        Method::POST,
        &format!("/instances/{instance_id}/v1/collectors"),
        Some(json!({"name": "edge", "targets": [
            {"id": "k8s", "kind": "import", "import_kind": "kubernetes", "account_id": "prod", "interval_seconds": 1,
             "paths": [fixture("import/kubernetes/kubectl-list.json"), fixture("import/kubernetes/manifests.yaml")]},
            {"id": "host", "kind": "host", "root": fixture("host/tree"), "account_id": "dc-1", "interval_seconds": 1}
        ]})),
    );
    assert_eq!(created["status"], "pending", "{created}");
    let collector_id = created["id"].as_str().expect("id").to_owned();
    let code = created["registration_code"]
        .as_str()
        .expect("code")
        .to_owned();
    let collector_path = format!("/instances/{instance_id}/v1/collectors/{collector_id}");

    let agent = Agent::start(&url, &code, state_dir.path());
    agent.wait_for("the first acknowledged batches", |lines| {
        acknowledged(lines).len() >= 6
    });
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(state_dir.path().join("agent.json"))
            .expect("identity kept")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A crash in the middle of the agent's work: no graceful shutdown, connections cut.
    server.kill();
    let spooled_at_kill = spooled(&agent.lines()).len();
    let failures_at_kill = count_matching(&agent.lines(), "push failed")
        + count_matching(&agent.lines(), "heartbeat failed");
    agent.wait_for(
        "failed pushes and new batches spooled while the server is away",
        |lines| {
            count_matching(lines, "push failed") + count_matching(lines, "heartbeat failed")
                > failures_at_kill + 1
                && spooled(lines).len() >= spooled_at_kill + 4
        },
    );

    // The same data directory and port: the agent's URL does not change.
    let restarted = ServerProcess::start_listening(data_dir.path(), &listen, &[]);
    let restarted_at = chrono::Utc::now();
    let log_at_restart = agent.lines().len();
    agent.wait_for(
        "a batch spooled after the restart to be acknowledged",
        |lines| {
            let fresh: BTreeSet<String> = spooled(&lines[log_at_restart..])
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            acknowledged(&lines[log_at_restart..])
                .iter()
                .any(|id| fresh.contains(id))
        },
    );
    // Heartbeats resumed: the collector is active with a heartbeat after the restart.
    let started = Instant::now();
    let shown = loop {
        let shown = api(
            &restarted.url,
            &admin_key,
            Method::GET,
            &collector_path,
            None,
        );
        let beat = shown["last_heartbeat_at"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok());
        if beat.is_some_and(|beat| beat >= restarted_at - chrono::Duration::seconds(1)) {
            break shown;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no heartbeat after the restart: {shown}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["version"], env!("CARGO_PKG_VERSION"));
    assert!(shown["host_name"].is_string(), "{shown}");
    assert!(shown["last_job"]["target_id"].is_string(), "{shown}");

    // SIGTERM: the agent pushes what is left and exits cleanly with an empty spool.
    let (stopped_cleanly, agent_lines) = agent.terminate();
    assert!(
        stopped_cleanly,
        "the agent exits 0 on SIGTERM:\n{}",
        agent_lines.join("\n")
    );
    let left: Vec<_> = std::fs::read_dir(state_dir.path().join("spool"))
        .expect("spool")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_file())
        .map(|entry| entry.path())
        .collect();
    assert!(left.is_empty(), "spool not empty: {left:?}");
    let rejected = std::fs::read_dir(state_dir.path().join("spool/rejected"))
        .expect("rejected dir")
        .count();
    assert_eq!(rejected, 0, "no batch was refused");

    // Every spooled batch was acknowledged, and each once.
    let spooled_batches: BTreeMap<String, u64> = spooled(&agent_lines).into_iter().collect();
    assert_eq!(
        spooled_batches.len(),
        spooled(&agent_lines).len(),
        "batch ids are unique"
    );
    let acknowledgements = acknowledged(&agent_lines);
    let acknowledged_set: BTreeSet<String> = acknowledgements.iter().cloned().collect();
    assert_eq!(
        acknowledged_set.len(),
        acknowledgements.len(),
        "each batch acknowledged once"
    );
    assert_eq!(
        acknowledged_set,
        spooled_batches.keys().cloned().collect::<BTreeSet<_>>()
    );

    // The server has exactly those batches, each applied once with all its resources.
    let mut recorded = BTreeMap::new();
    let mut start: Option<String> = None;
    loop {
        let page_path = match &start {
            Some(start) => {
                format!("/instances/{instance_id}/v1/inventory-batches?limit=1000&start={start}")
            }
            None => format!("/instances/{instance_id}/v1/inventory-batches?limit=1000"),
        };
        let page = api(&restarted.url, &admin_key, Method::GET, &page_path, None);
        for batch in page["batches"].as_array().expect("batches") {
            let id = batch["batch_id"].as_str().expect("id").to_owned();
            assert!(
                recorded.insert(id, batch.clone()).is_none(),
                "batch listed twice"
            );
        }
        match page["next"]["start"].as_str() {
            Some(next) => start = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        recorded.keys().cloned().collect::<BTreeSet<_>>(),
        spooled_batches.keys().cloned().collect::<BTreeSet<_>>(),
        "the server's batches are exactly the agent's"
    );
    for (id, batch) in &recorded {
        assert_eq!(batch["stored"], spooled_batches[id], "batch {id}: {batch}");
        assert_eq!(batch["duplicates"], 0, "batch {id}: {batch}");
    }

    // And the inventory holds every collected version once: 7 Kubernetes objects and 1 host per
    // run, each run with its own `collected_at`.
    let total: u64 = spooled_batches.values().sum();
    let resources = api(
        &restarted.url,
        &admin_key,
        Method::GET,
        &format!("/instances/{instance_id}/v1/inventory?limit=1000"),
        None,
    );
    let resources = resources["resources"]
        .as_array()
        .expect("resources")
        .clone();
    assert_eq!(resources.len(), 8, "7 Kubernetes objects and the host");
    let mut versions = 0;
    for resource in &resources {
        let id = resource["id"].as_str().expect("id");
        let history = api(
            &restarted.url,
            &admin_key,
            Method::GET,
            &format!(
                "/instances/{instance_id}/v1/inventory/{}/history",
                percent_encode(id)
            ),
            None,
        );
        let stamps: Vec<&str> = history["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .filter_map(|version| version["collected_at"].as_str())
            .collect();
        let unique: BTreeSet<&str> = stamps.iter().copied().collect();
        assert_eq!(unique.len(), stamps.len(), "{id}: a version twice");
        versions += stamps.len() as u64;
    }
    assert_eq!(
        versions, total,
        "every spooled resource version is stored, once"
    );
    let quarantine = api(
        &restarted.url,
        &admin_key,
        Method::GET,
        &format!("/instances/{instance_id}/v1/quarantine"),
        None,
    );
    assert_eq!(quarantine["records"], json!([]), "{quarantine}");
}

/// Percent-encodes a resource id for a path segment.
fn percent_encode(id: &str) -> String {
    id.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}
