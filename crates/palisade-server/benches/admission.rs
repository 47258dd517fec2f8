//! Admission decision latency over HTTP on loopback, at a fixed request rate (issue 6: p99
//! under 5 ms at 500 requests/s with 100 attached rules).
//!
//! A real server (`palisade_server::run` on 127.0.0.1, embedded SQLite with durable commits)
//! gets 100 configuration governance rules attached to one account (half `disallow`, half
//! `audit_log`, all targeting the requests' resource kind, so every rule evaluates every
//! request) and a template. Then an open-loop client sends `POST /v1/admission` at a fixed
//! rate: the sending loop never waits for answers, so a slow answer cannot delay the requests
//! behind it (no coordinated omission); each request is timed from its send to its answer's
//! last byte, and how late the loop sent (client pacing) is reported apart. Half the requests are
//! compliant, half violate five rules; every decision is logged. The client runs in the same
//! process (and on the same cores) as the server, and the allocator is mimalloc, as in
//! `palisade serve`.
//!
//! Run: `cargo bench -p palisade-server --bench admission`. `PALISADE_BENCH_RATE` (default
//! 500 requests/s) and `PALISADE_BENCH_SECONDS` (default 20) override the load.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_server::{AppState, ServerConfig};
use serde_json::{Value, json};
use tokio::sync::Mutex;

// The allocator of the `palisade` binary, so the server measured allocates as `serve` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ACCOUNT: &str = "bench-account";
const RULES: usize = 100;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Rule `index`: a mix of the operators provisioning guardrails use.
fn rule(index: usize) -> Value {
    let required_config = match index % 4 {
        0 => json!({"property": format!("settings.flag_{index}"), "operator": "is_true"}),
        1 => json!({"property": "firewall.allowed_ip", "operator": "ips_in_range",
                    "value": ["10.0.0.0/8", "192.168.0.0/16"]}),
        2 => json!({"and": [
            {"property": "storage_class", "operator": "strings_in_list", "value": ["smart", "standard"]},
            {"property": format!("quota_{index}"), "operator": "num_less_than_equals", "value": "1000"}]}),
        _ => json!({"property": "name", "operator": "string_match", "value": "prod-*"}),
    };
    json!({
        "account_id": ACCOUNT,
        "name": format!("bench rule {index}"),
        "description": "benchmark guardrail",
        "target": {"service_name": "cloud-object-storage", "resource_kind": "bucket"},
        "required_config": required_config,
        "enforcement_actions": [{"action": if index.is_multiple_of(2) { "disallow" } else { "audit_log" }}],
    })
}

/// Request `sequence`: even ones are compliant; odd ones break five rules (two flags, one quota,
/// the firewall and the name), as a careless change would — not all hundred.
fn request(sequence: u64) -> Value {
    let compliant = sequence.is_multiple_of(2);
    let mut settings = serde_json::Map::new();
    let mut config = serde_json::Map::new();
    for index in 0..RULES {
        let broken_flag = !compliant && (index == 0 || index == 4);
        settings.insert(format!("flag_{index}"), json!(!broken_flag));
        let broken_quota = !compliant && index == 2;
        config.insert(
            format!("quota_{index}"),
            json!(if broken_quota { 5000 } else { 10 }),
        );
    }
    config.insert("settings".into(), Value::Object(settings));
    config.insert(
        "firewall".into(),
        json!({"allowed_ip": if compliant { json!(["10.1.2.3"]) } else { json!(["203.0.113.9"]) }}),
    );
    config.insert(
        "name".into(),
        json!(if compliant { "prod-logs" } else { "tmp" }),
    );
    json!({"operation": "create", "resource": {
        "id": format!("bucket-{sequence}"), "service_name": "cloud-object-storage",
        "resource_kind": "bucket", "account_id": ACCOUNT, "resource_group": "rg-prod",
        "config": config}})
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let position = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[position - 1]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rate = env_number("PALISADE_BENCH_RATE", 500).max(1);
    let seconds = env_number("PALISADE_BENCH_SECONDS", 20).max(1);
    let directory = tempfile::tempdir().expect("tempdir");
    let url = palisade_store::testsuite::fresh_sqlite_url(directory.path());
    let store = palisade_store::connect(&url).await.expect("store");
    let config = ServerConfig {
        rate_limit_per_second: NonZeroU32::new(100_000).expect("non-zero"),
        rate_limit_burst: NonZeroU32::new(100_000).expect("non-zero"),
        ..ServerConfig::default()
    };
    let state = AppState::new(store, config);
    let bootstrap = palisade_server::bootstrap(&state, directory.path())
        .await
        .expect("bootstrap")
        .expect("fresh store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(palisade_server::run(listener, state, async {
        let _ = stopped.await;
    }));
    let base = format!("http://{address}/instances/{}", bootstrap.instance_id);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let key = bootstrap.admin_key.clone();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&key)
            .json(&body)
    };

    let entries: Vec<Value> = (0..RULES)
        .map(|index| json!({"rule": rule(index)}))
        .collect();
    let created: Value = post("/config/v1/rules", json!({"rules": entries}))
        .send()
        .await
        .expect("create rules")
        .json()
        .await
        .expect("answer");
    let rule_ids: Vec<String> = created["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|entry| {
            entry["rule"]["rule_id"]
                .as_str()
                .expect("created")
                .to_owned()
        })
        .collect();
    assert_eq!(rule_ids.len(), RULES);
    let scope = json!({"attachments": [{"account_id": ACCOUNT,
        "included_scope": {"scope_id": ACCOUNT, "scope_type": "account"}}]});
    for rule_id in &rule_ids {
        let answer = post(
            &format!("/config/v1/rules/{rule_id}/attachments"),
            scope.clone(),
        )
        .send()
        .await
        .expect("attach");
        assert!(answer.status().is_success());
    }
    let template = json!({"templates": [{"template": {"account_id": ACCOUNT, "name": "defaults",
        "description": "bench", "target": {"service_name": "cloud-object-storage", "resource_kind": "bucket"},
        "customized_defaults": [{"property": "storage_class", "value": "smart"}]}}]});
    let created: Value = post("/config/v1/templates", template)
        .send()
        .await
        .expect("template")
        .json()
        .await
        .expect("answer");
    let template_id = created["templates"][0]["template"]["template_id"]
        .as_str()
        .expect("template id")
        .to_owned();
    post(
        &format!("/config/v1/templates/{template_id}/attachments"),
        scope,
    )
    .send()
    .await
    .expect("attach template");

    // Check the setup decides as intended before timing it.
    let decision: Value = post("/v1/admission", request(1))
        .send()
        .await
        .expect("decide")
        .json()
        .await
        .expect("decision");
    assert_eq!(decision["allowed"], false);
    assert_eq!(
        decision["rules_evaluated"].as_array().map(Vec::len),
        Some(RULES)
    );

    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..2)
            .map(|sequence| serde_json::to_vec(&request(sequence)).expect("encode"))
            .collect(),
    );
    let latencies = Arc::new(Mutex::new(Vec::with_capacity((rate * seconds) as usize)));
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let total = rate * seconds;
    // One second of warm-up at the same rate, not recorded.
    let warmup = rate;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity((total + warmup) as usize);
    for sequence in 0..total + warmup {
        let scheduled = started + interval * u32::try_from(sequence).expect("fits");
        tokio::time::sleep_until(scheduled.into()).await;
        let request = client
            .post(format!("{base}/v1/admission"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(bodies[(sequence % 2) as usize].clone());
        let latencies = latencies.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            // Timed from the send: the loop never waits for answers (open loop), so a slow
            // server cannot delay later sends; how late the loop itself was is reported apart.
            let sent = Instant::now();
            let lag = sent.saturating_duration_since(scheduled);
            let answer = request.send().await;
            let ok = match answer {
                Ok(response) => {
                    let status = response.status();
                    let _ = response.bytes().await;
                    status.is_success()
                }
                Err(_) => false,
            };
            let latency = sent.elapsed();
            if sequence >= warmup {
                if ok {
                    latencies.lock().await.push((latency, lag));
                } else {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed();
    let measured = latencies.lock().await.clone();
    let mut latencies: Vec<Duration> = measured.iter().map(|(latency, _)| *latency).collect();
    latencies.sort_unstable();
    let mut lags: Vec<Duration> = measured.iter().map(|(_, lag)| *lag).collect();
    lags.sort_unstable();
    let failures = failures.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "admission over HTTP: {} requests at {rate}/s for {seconds} s ({RULES} attached rules, 1 template), \
         {failures} failed, wall {:.1} s",
        latencies.len(),
        elapsed.as_secs_f64()
    );
    for (label, fraction) in [
        ("p50", 0.50),
        ("p90", 0.90),
        ("p99", 0.99),
        ("p99.9", 0.999),
    ] {
        println!(
            "  {label:>5}: {:.2} ms",
            percentile(&latencies, fraction).as_secs_f64() * 1000.0
        );
    }
    println!(
        "    max: {:.2} ms",
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    println!(
        "  sends were late by p50 {:.2} ms, p99 {:.2} ms (client pacing)",
        percentile(&lags, 0.50).as_secs_f64() * 1000.0,
        percentile(&lags, 0.99).as_secs_f64() * 1000.0
    );
    let _ = stop.send(());
    let _ = server.await;
}
