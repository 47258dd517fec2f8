//! End-to-end scan benchmark on the embedded SQLite store: 100,000 resources against a profile
//! of 200 rules (3–6 conditions each), through the same code as `POST /v3/scans` (read the
//! inventory page by page, evaluate, write every evaluation, roll up, store the report).
//!
//! Run: `cargo bench -p palisade-server --bench scan` (`PALISADE_BENCH_RESOURCES` and
//! `PALISADE_BENCH_RULES` change the size). It prints one line per phase; the figures go into
//! BENCHMARKS.md. One run, not a statistical harness: the workload takes tens of seconds.

use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

async fn call(
    state: &palisade_server::AppState,
    method: Method,
    path: &str,
    key: &str,
    body: Value,
) -> Value {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = palisade_server::app(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

/// Resources of 10 kinds with 20 properties each, ~30% misconfigured.
fn resource(index: usize) -> Value {
    let kind = format!("kind{}", index % 10);
    let mut config = serde_json::Map::new();
    for property in 0..20 {
        let value = (index * 7 + property * 13) % 100;
        config.insert(format!("p{property}"), json!(value));
        config.insert(
            format!("s{property}"),
            json!(if value < 70 { "enabled" } else { "disabled" }),
        );
    }
    json!({"id": format!("res-{index:07}"), "environment": "aws", "account_id": format!("acct-{}", index % 5),
           "service_name": "bench", "resource_kind": kind, "region": "us-east-1", "config": config,
           "collected_at": "2026-06-01T00:00:00Z"})
}

/// Rule `n`: targets one kind, 3–6 conditions mixing numbers and strings.
fn rule(index: usize) -> Value {
    let conditions: Vec<Value> = (0..3 + index % 4)
        .map(|condition| {
            let property = (index + condition * 3) % 20;
            if condition % 2 == 0 {
                json!({"property": format!("p{property}"), "operator": "num_less_than", "value": 95})
            } else {
                json!({"property": format!("s{property}"), "operator": "string_equals", "value": "enabled"})
            }
        })
        .collect();
    json!({"description": format!("bench rule {index}"), "target": {"service_name": "bench", "resource_kind": format!("kind{}", index % 10)},
           "required_config": {"and": conditions}})
}

fn main() {
    let resources = env_number("PALISADE_BENCH_RESOURCES", 100_000);
    let rules = env_number("PALISADE_BENCH_RULES", 200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let directory = tempfile::tempdir().expect("tempdir");
        let store = palisade_store::connect(&format!("sqlite://{}/bench.db", directory.path().display())).await.expect("store");
        let config = palisade_server::ServerConfig {
            body_limit_bytes: 256 * 1024 * 1024,
            request_timeout: std::time::Duration::from_secs(3600),
            ..palisade_server::ServerConfig::default()
        };
        let state = palisade_server::AppState::new(store, config);
        let boot = palisade_server::bootstrap(&state, directory.path()).await.expect("bootstrap").expect("fresh");
        let (key, instance) = (boot.admin_key, boot.instance_id);
        let base = format!("/instances/{instance}");

        let started = Instant::now();
        for batch in (0..resources).collect::<Vec<_>>().chunks(5_000) {
            let body = json!({"resources": batch.iter().map(|index| resource(*index)).collect::<Vec<_>>()});
            call(&state, Method::POST, &format!("{base}/v1/inventory"), &key, body).await;
        }
        println!("inventory: {resources} resources pushed in {:.1} s", started.elapsed().as_secs_f64());

        let mut assessments = Vec::new();
        for index in 0..rules {
            let created = call(&state, Method::POST, &format!("{base}/v3/rules"), &key, rule(index)).await;
            assessments.push(json!({"assessment_id": created["id"]}));
        }
        let controls: Vec<Value> = assessments
            .chunks(10)
            .enumerate()
            .map(|(index, chunk)| json!({"control_name": format!("C-{index}"), "control_description": "", "control_category": "bench",
                "control_requirement": true, "control_specifications": [{"component_id": "bench", "assessments": chunk}]}))
            .collect();
        let library = call(&state, Method::POST, &format!("{base}/v3/control_libraries"), &key, json!({
            "control_library_name": "bench", "control_library_description": "", "control_library_type": "custom",
            "control_library_version": "1", "controls": controls})).await;
        let picked: Vec<Value> = library["controls"].as_array().expect("controls").iter()
            .map(|control| json!({"control_library_id": library["id"], "control_id": control["control_id"]})).collect();
        let profile = call(&state, Method::POST, &format!("{base}/v3/profiles"), &key, json!({
            "profile_name": "bench", "profile_version": "1", "controls": picked, "default_parameters": []})).await;
        let scope = call(&state, Method::POST, &format!("{base}/v3/scopes"), &key, json!({"name": "all", "environment": "aws", "properties": []})).await;
        let attachment = call(&state, Method::POST, &format!("{base}/v3/profiles/{}/attachments", profile["id"].as_str().unwrap_or_default()), &key, json!({
            "attachments": [{"name": "bench", "description": "", "scope": [{"id": scope["id"]}], "schedule": "daily", "status": "enabled",
                             "notifications": {"enabled": false}, "attachment_parameters": []}]})).await;

        let started = Instant::now();
        let scan = call(&state, Method::POST, &format!("{base}/v3/scans"), &key, json!({"attachment_id": attachment["attachments"][0]["id"]})).await;
        let elapsed = started.elapsed().as_secs_f64();
        let summary = call(&state, Method::GET, &format!("{base}/v3/reports/{}/summary", scan["report_id"].as_str().unwrap_or_default()), &key, Value::Null).await;
        let total = summary["evaluations"]["total_count"].as_u64().unwrap_or(0);
        println!(
            "scan: {resources} resources x {rules} rules -> {total} evaluations stored in {elapsed:.1} s ({:.0} evaluations/s), score {}%",
            total as f64 / elapsed,
            summary["score"]["percent"]
        );
    });
}
