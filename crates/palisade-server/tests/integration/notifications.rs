//! Notifications v1 (IBM-compatible) and delivery: channel rules, the endpoint policy, signed
//! webhooks verified with the public key from the API, Slack bodies, e-mail through a local SMTP
//! sink, retries with backoff, deduplication, the delivery log, and durability across a restart.
//!
//! Receivers are real sockets on 127.0.0.1: a small axum app for webhooks and a minimal SMTP sink
//! written here (a few lines of the protocol, so the test needs no Python or external server).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use palisade_server::service::findings::model::{ApiOccurrence, Context, Finding};
use palisade_server::service::findings::{SourceOccurrence, record_occurrences};
use palisade_server::service::notifications::{SmtpSettings, run_delivery_pass};
use palisade_server::{AppState, ServerConfig};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{TestServer, assert_error_shape, test_config};

const ACCOUNT: &str = "acct-1";

fn permissive_config() -> ServerConfig {
    ServerConfig {
        allow_insecure_webhooks: true,
        notification_retry_base: Duration::from_secs(10),
        notification_max_attempts: 3,
        ..test_config()
    }
}

/// A webhook receiver: records every request and answers with the queued statuses, then 200.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    statuses: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start(statuses: Vec<u16>) -> (Self, String) {
        let receiver = Receiver {
            received: Arc::default(),
            statuses: Arc::new(Mutex::new(statuses)),
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    state.received.lock().expect("lock").push((headers, value));
                    let mut statuses = state.statuses.lock().expect("lock");
                    let status = if statuses.is_empty() {
                        200
                    } else {
                        statuses.remove(0)
                    };
                    StatusCode::from_u16(status).expect("status")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (receiver, format!("http://{address}/hook"))
    }

    fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, body)| body.clone())
            .collect()
    }
}

/// A minimal SMTP server that accepts every message and keeps its DATA.
async fn smtp_sink() -> (Arc<Mutex<Vec<String>>>, u16) {
    let messages: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let store = messages.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            store.lock().expect("lock").push(std::mem::take(body));
                            data = None;
                            let _ = write.write_all(b"250 queued\r\n").await;
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (messages, port)
}

fn channels_path(server: &TestServer) -> String {
    format!(
        "/instances/{}/notifications/v1/{ACCOUNT}/notifications/channels",
        server.instance_id
    )
}

async fn create_channel(server: &TestServer, body: Value) -> String {
    let answer = server
        .call(
            Method::POST,
            &channels_path(server),
            Some(&server.admin_key),
            Some(body),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.body["channel_id"]
        .as_str()
        .expect("channel id")
        .to_owned()
}

fn finding(note: &str, resource: &str, severity: &str) -> SourceOccurrence {
    SourceOccurrence {
        account_id: ACCOUNT.to_owned(),
        note_id: note.to_owned(),
        fingerprint: String::new(),
        body: ApiOccurrence {
            resource_url: None,
            note_name: String::new(),
            kind: "FINDING".into(),
            short_description: Some(format!("{note} on {resource}")),
            long_description: Some("details".into()),
            remediation: None,
            create_time: None,
            update_time: None,
            id: String::new(),
            context: Some(Context {
                resource_crn: Some(resource.to_owned()),
                ..Context::default()
            }),
            finding: Some(Finding {
                severity: Some(severity.to_owned()),
                ..Finding::default()
            }),
            kpi: None,
            reference_data: None,
        },
    }
}

async fn record(
    state: &AppState,
    instance_id: &str,
    provider: &str,
    findings: Vec<SourceOccurrence>,
) {
    let report = record_occurrences(&state.store, instance_id, provider, findings, Utc::now())
        .await
        .expect("record");
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
}

/// Verifies a compact RS256 JWT with `ring` against the PEM public key and returns its claims.
fn verify_jwt(token: &str, public_key_pem: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWT");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    assert_eq!(header["alg"], "RS256");
    let public = rsa::RsaPublicKey::from_public_key_pem(public_key_pem).expect("public key PEM");
    let components = ring::signature::RsaPublicKeyComponents {
        n: public.n().to_bytes_be(),
        e: public.e().to_bytes_be(),
    };
    components
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).expect("b64"),
        )
        .expect("the signature verifies with the API's public key");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("claims")
}

async fn log(server: &TestServer) -> Vec<Value> {
    let answer = server
        .call(
            Method::GET,
            &format!(
                "/instances/{}/v1/notifications/deliveries",
                server.instance_id
            ),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.body["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

#[tokio::test]
async fn channels_follow_ibms_model_and_the_endpoint_policy() {
    let server = TestServer::sqlite().await;
    let path = channels_path(&server);
    for (endpoint, why) in [
        ("http://hooks.example.com/x", "plain http"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://10.0.0.8/x", "private"),
    ] {
        let answer = server
            .call(
                Method::POST,
                &path,
                Some(&server.admin_key),
                Some(json!({"name": "n", "type": "Webhook", "endpoint": endpoint})),
            )
            .await;
        assert_eq!(
            assert_error_shape(&answer, StatusCode::BAD_REQUEST),
            "invalid_field",
            "{why}"
        );
        assert_eq!(answer.body["errors"][0]["target"]["name"], "/endpoint");
    }
    let email_without_smtp = server
        .call(
            Method::POST,
            &path,
            Some(&server.admin_key),
            Some(json!({"name": "n", "type": "Email", "endpoint": "mailto:ops@example.com"})),
        )
        .await;
    assert_eq!(
        assert_error_shape(&email_without_smtp, StatusCode::BAD_REQUEST),
        "invalid_field"
    );

    let id = create_channel(
        &server,
        json!({"name": "SOC", "type": "Webhook", "endpoint": "https://hooks.example.com/soc",
               "description": "d", "severity": ["critical", "high"],
               "alert_source": [{"provider_name": "NA", "finding_types": ["bot_server"]}]}),
    )
    .await;
    let fetched = server
        .call(
            Method::GET,
            &format!("{path}/{id}"),
            Some(&server.admin_key),
            None,
        )
        .await;
    let channel = &fetched.body["channel"];
    assert_eq!(
        channel["severity"],
        json!({"critical": true, "high": true, "medium": false, "low": false})
    );
    assert_eq!(channel["enabled"], false, "IBM's default");
    assert_eq!(channel["type"], "Webhook");
    let updated = server
        .call(
            Method::PUT,
            &format!("{path}/{id}"),
            Some(&server.admin_key),
            Some(json!({"name": "SOC 2", "type": "Webhook", "endpoint": "https://hooks.example.com/soc", "enabled": true})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let listed = server
        .call(Method::GET, &path, Some(&server.admin_key), None)
        .await;
    assert_eq!(listed.body["channels"][0]["name"], "SOC 2");
    assert_eq!(
        listed.body["channels"][0]["alert_source"][0]["provider_name"],
        "ALL"
    );

    for n in 1..15 {
        create_channel(
            &server,
            json!({"name": format!("c{n}"), "type": "Slack", "endpoint": "https://hooks.example.com/s"}),
        )
        .await;
    }
    let sixteenth = server
        .call(
            Method::POST,
            &path,
            Some(&server.admin_key),
            Some(json!({"name": "one too many", "type": "Webhook", "endpoint": "https://hooks.example.com/x"})),
        )
        .await;
    assert_eq!(
        assert_error_shape(&sixteenth, StatusCode::CONFLICT),
        "conflict"
    );
    let all: Vec<String> = server
        .call(Method::GET, &path, Some(&server.admin_key), None)
        .await
        .body["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|channel| channel["channel_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(all.len(), 15);
    let page = server
        .call(
            Method::GET,
            &format!("{path}?limit=5&skip=12"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(page.body["channels"].as_array().map(Vec::len), Some(3));
    let deleted_one = server
        .call(
            Method::DELETE,
            &format!("{path}/{id}"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(deleted_one.body["channel_id"], id.as_str());
    let bulk = server
        .call(
            Method::DELETE,
            &path,
            Some(&server.admin_key),
            Some(json!(all)),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.text);
    assert_eq!(bulk.body["deleted"].as_array().map(Vec::len), Some(14));
    let gone = server
        .call(
            Method::GET,
            &format!("{path}/{id}"),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(
        assert_error_shape(&gone, StatusCode::NOT_FOUND),
        "not_found"
    );

    // Viewers read channels but do not change them.
    let (_, viewer) = server.key_with_role("viewer").await;
    assert_eq!(
        server
            .call(Method::GET, &path, Some(&viewer), None)
            .await
            .status,
        StatusCode::OK
    );
    let as_viewer = server
        .call(
            Method::POST,
            &path,
            Some(&viewer),
            Some(
                json!({"name": "n", "type": "Webhook", "endpoint": "https://hooks.example.com/x"}),
            ),
        )
        .await;
    assert_eq!(
        assert_error_shape(&as_viewer, StatusCode::FORBIDDEN),
        "forbidden"
    );
}

#[tokio::test]
async fn signed_webhooks_verify_with_the_public_key_and_alert_once_per_opening() {
    let server = TestServer::sqlite_with(permissive_config()).await;
    let (receiver, url) = Receiver::start(vec![]).await;
    create_channel(
        &server,
        json!({"name": "soc", "type": "Webhook", "endpoint": url, "enabled": true}),
    )
    .await;
    record(
        &server.state,
        &server.instance_id,
        "network-insights",
        vec![
            finding("xforce-bot_server", "crn:vm-1", "HIGH"),
            finding("xforce-reconnaissance", "crn:vm-2", "LOW"),
        ],
    )
    .await;
    let report = run_delivery_pass(&server.state, Utc::now())
        .await
        .expect("pass");
    assert_eq!(
        (report.queued, report.delivered),
        (1, 1),
        "LOW is below the default severities"
    );

    let public_key = server
        .call(
            Method::GET,
            &format!(
                "/instances/{}/notifications/v1/{ACCOUNT}/notifications/public_key",
                server.instance_id
            ),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(public_key.status, StatusCode::OK, "{}", public_key.text);
    let pem = public_key.body["public_key"].as_str().expect("pem");
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 1);
    let claims = verify_jwt(bodies[0]["data"].as_str().expect("data is the JWT"), pem);
    let alert = &claims["findings"][0];
    assert_eq!(alert["severity"], "HIGH");
    assert_eq!(alert["provider"], "network-insights");
    assert_eq!(alert["payload-type"], "findings");
    assert_eq!(alert["payload"]["context"]["resource_crn"], "crn:vm-1");
    assert!(claims["exp"].as_i64() > claims["iat"].as_i64());

    // Reported again: counted, not alerted again.
    record(
        &server.state,
        &server.instance_id,
        "network-insights",
        vec![finding("xforce-bot_server", "crn:vm-1", "HIGH")],
    )
    .await;
    let report = run_delivery_pass(&server.state, Utc::now())
        .await
        .expect("pass");
    assert_eq!((report.queued, report.delivered), (0, 0));
    // Resolved, then detected again: a new opening alerts again.
    let listed = server
        .call(
            Method::GET,
            &format!(
                "/instances/{}/v1/findings?severity=HIGH",
                server.instance_id
            ),
            Some(&server.admin_key),
            None,
        )
        .await;
    let id = listed.body["findings"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let resolved = server
        .call(
            Method::POST,
            &format!("/instances/{}/v1/findings/status", server.instance_id),
            Some(&server.admin_key),
            Some(json!({"findings": [{"account_id": ACCOUNT, "provider_id": "network-insights", "id": id}], "status": "resolved"})),
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK);
    record(
        &server.state,
        &server.instance_id,
        "network-insights",
        vec![finding("xforce-bot_server", "crn:vm-1", "HIGH")],
    )
    .await;
    let report = run_delivery_pass(&server.state, Utc::now())
        .await
        .expect("pass");
    assert_eq!((report.queued, report.delivered), (1, 1));
    assert_eq!(receiver.bodies().len(), 2);
    let entries = log(&server).await;
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|entry| entry["state"] == "delivered" && entry["attempts"] == 1)
    );
}

#[tokio::test]
async fn failed_deliveries_retry_with_backoff_and_give_up() {
    let server = TestServer::sqlite_with(permissive_config()).await;
    let (receiver, url) = Receiver::start(vec![503, 500, 503, 503, 503]).await;
    let channel = create_channel(
        &server,
        json!({"name": "flaky", "type": "Slack", "endpoint": url, "enabled": true,
               "alert_source": [{"provider_name": "posture"}]}),
    )
    .await;
    record(
        &server.state,
        &server.instance_id,
        "posture",
        vec![finding("mfa-off", "crn:acct", "CRITICAL")],
    )
    .await;
    record(
        &server.state,
        &server.instance_id,
        "partner",
        vec![finding("other", "crn:x", "CRITICAL")],
    )
    .await;
    let start = Utc::now();
    let first = run_delivery_pass(&server.state, start).await.expect("pass");
    assert_eq!(
        (first.queued, first.retried),
        (1, 1),
        "only the posture finding matches"
    );
    let entries = log(&server).await;
    assert_eq!(
        (
            entries[0]["state"].as_str(),
            entries[0]["attempts"].as_i64(),
            entries[0]["last_error"].as_str()
        ),
        (Some("pending"), Some(1), Some("endpoint answered HTTP 503"))
    );
    assert_eq!(entries[0]["channel_id"], channel.as_str());
    // Not due before the backoff (10 s, then 20 s).
    let early = run_delivery_pass(&server.state, start + chrono::Duration::seconds(5))
        .await
        .expect("pass");
    assert_eq!(early.retried + early.delivered + early.failed, 0);
    let second = run_delivery_pass(&server.state, start + chrono::Duration::seconds(11))
        .await
        .expect("pass");
    assert_eq!(second.retried, 1);
    let third = run_delivery_pass(&server.state, start + chrono::Duration::seconds(40))
        .await
        .expect("pass");
    assert_eq!(third.failed, 1, "three attempts, then it gives up");
    let entries = log(&server).await;
    assert_eq!(entries[0]["state"], "failed");
    assert!(
        entries[0]["last_error"]
            .as_str()
            .expect("error")
            .starts_with("gave up after 3 attempts")
    );
    let failed_only = server
        .call(
            Method::GET,
            &format!(
                "/instances/{}/v1/notifications/deliveries?state=failed&channel_id={channel}",
                server.instance_id
            ),
            Some(&server.admin_key),
            None,
        )
        .await;
    assert_eq!(
        failed_only.body["deliveries"].as_array().map(Vec::len),
        Some(1)
    );
    // What Slack received: text and blocks.
    let body = &receiver.bodies()[0];
    assert!(
        body["text"]
            .as_str()
            .expect("text")
            .starts_with("[CRITICAL] mfa-off on crn:acct")
    );
    assert!(body["blocks"].is_array());
}

#[tokio::test]
async fn permanent_refusals_fail_at_once_and_tests_report_them() {
    let server = TestServer::sqlite_with(permissive_config()).await;
    let (_receiver, url) = Receiver::start(vec![404, 200]).await;
    let channel = create_channel(
        &server,
        json!({"name": "t", "type": "Webhook", "endpoint": url}),
    )
    .await;
    let test_path = format!("{}/{channel}/test", channels_path(&server));
    let failed = server
        .call(Method::GET, &test_path, Some(&server.admin_key), None)
        .await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.text);
    assert_eq!(failed.body["test"], "failed");
    assert_eq!(failed.body["error"], "endpoint answered HTTP 404");
    let succeeded = server
        .call(Method::GET, &test_path, Some(&server.admin_key), None)
        .await;
    assert_eq!(
        succeeded.body["test"], "success",
        "a disabled channel can still be tested"
    );
    let entries = log(&server).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["state"], "failed");

    // With the strict default policy, a channel saved earlier cannot reach loopback any more.
    let strict = AppState::new(
        server.state.store.clone(),
        ServerConfig {
            allow_insecure_webhooks: false,
            ..test_config()
        },
    );
    let queued = server
        .call(Method::GET, &test_path, Some(&server.admin_key), None)
        .await;
    assert_eq!(queued.body["test"], "success");
    let via_strict = palisade_server::service::notifications::delivery::attempt(
        &strict,
        &server
            .state
            .store
            .get_delivery(
                &server.instance_id,
                queued.body["delivery_id"].as_str().expect("id"),
            )
            .await
            .expect("get")
            .expect("delivery"),
        Utc::now(),
    )
    .await
    .expect("attempt");
    assert!(
        matches!(&via_strict, palisade_store::notifications::AttemptOutcome::Failed { error } if error.contains("https")),
        "{via_strict:?}"
    );
}

#[tokio::test]
async fn email_channels_send_through_the_smtp_relay() {
    let (messages, port) = smtp_sink().await;
    let server = TestServer::sqlite_with(ServerConfig {
        smtp: Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            from: "Palisade <palisade@example.com>".into(),
            starttls: false,
            username: None,
            password: None,
        }),
        ..permissive_config()
    })
    .await;
    create_channel(
        &server,
        json!({"name": "mail", "type": "Email", "endpoint": "mailto:soc@example.com", "enabled": true,
               "severity": ["medium"]}),
    )
    .await;
    record(
        &server.state,
        &server.instance_id,
        "activity-insights",
        vec![finding("ata-iam-sec-conf", "crn:iam", "MEDIUM")],
    )
    .await;
    let report = run_delivery_pass(&server.state, Utc::now())
        .await
        .expect("pass");
    assert_eq!(report.delivered, 1, "{report:?} {:?}", log(&server).await);
    let received = messages.lock().expect("lock").clone();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert!(message.contains("To: soc@example.com"), "{message}");
    assert!(
        message.contains("Subject: [Palisade] [MEDIUM] ata-iam-sec-conf on crn:iam"),
        "{message}"
    );
}

#[tokio::test]
async fn the_queue_survives_a_restart() {
    let directory = tempfile::tempdir().expect("tempdir");
    let url = palisade_store::testsuite::fresh_sqlite_url(directory.path());
    let (receiver, endpoint) = Receiver::start(vec![503]).await;
    let instance_id;
    {
        let store = palisade_store::connect(&url).await.expect("open");
        let state = AppState::new(store, permissive_config());
        let bootstrap = palisade_server::bootstrap(&state, directory.path())
            .await
            .expect("bootstrap")
            .expect("fresh");
        instance_id = bootstrap.instance_id.clone();
        let server = crate::common::TestServer::wrap(state.clone(), bootstrap);
        create_channel(
            &server,
            json!({"name": "soc", "type": "Webhook", "endpoint": endpoint, "enabled": true}),
        )
        .await;
        record(
            &state,
            &instance_id,
            "posture",
            vec![finding("a", "crn:1", "HIGH")],
        )
        .await;
        // The process "dies" after recording, before any pass: the alert is only a mark.
    }
    {
        let store = palisade_store::connect(&url).await.expect("reopen");
        let state = AppState::new(store, permissive_config());
        record(
            &state,
            &instance_id,
            "posture",
            vec![finding("b", "crn:2", "HIGH")],
        )
        .await;
        let report = run_delivery_pass(&state, Utc::now()).await.expect("pass");
        // Both alerts were queued; the receiver refused the first attempt.
        assert_eq!((report.queued, report.delivered, report.retried), (2, 1, 1));
        // Dies again with one delivery waiting for its retry.
    }
    let store = palisade_store::connect(&url).await.expect("reopen again");
    let state = AppState::new(store, permissive_config());
    let later = Utc::now() + chrono::Duration::seconds(30);
    let report = run_delivery_pass(&state, later).await.expect("pass");
    assert_eq!((report.queued, report.delivered), (0, 1));
    let report = run_delivery_pass(&state, later + chrono::Duration::hours(1))
        .await
        .expect("pass");
    assert_eq!(report.delivered, 0, "nothing is sent twice");
    let delivered: Vec<String> = receiver
        .received
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|(headers, _)| {
            headers
                .get("x-palisade-delivery")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .collect();
    // Three requests: one refused, then each delivery exactly once.
    assert_eq!(delivered.len(), 3);
    let mut distinct = delivered.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2);
}

/// Every notification route, as (method, path with `{i}` for the instance and `{c}` for a
/// channel, body).
fn notification_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let channel =
        json!({"name": "n", "type": "Webhook", "endpoint": "https://hooks.example.com/x"});
    vec![
        (
            Method::GET,
            "/instances/{i}/notifications/v1/acct-1/notifications/channels",
            None,
        ),
        (
            Method::POST,
            "/instances/{i}/notifications/v1/acct-1/notifications/channels",
            Some(channel.clone()),
        ),
        (
            Method::GET,
            "/instances/{i}/notifications/v1/acct-1/notifications/channels/{c}",
            None,
        ),
        (
            Method::PUT,
            "/instances/{i}/notifications/v1/acct-1/notifications/channels/{c}",
            Some(channel),
        ),
        (
            Method::GET,
            "/instances/{i}/notifications/v1/acct-1/notifications/channels/{c}/test",
            None,
        ),
        (
            Method::GET,
            "/instances/{i}/notifications/v1/acct-1/notifications/public_key",
            None,
        ),
        (
            Method::GET,
            "/instances/{i}/v1/notifications/deliveries",
            None,
        ),
        (
            Method::DELETE,
            "/instances/{i}/notifications/v1/acct-1/notifications/channels/{c}",
            None,
        ),
        (
            Method::DELETE,
            "/instances/{i}/notifications/v1/acct-1/notifications/channels",
            Some(json!(["{c}"])),
        ),
    ]
}

#[tokio::test]
async fn notifications_never_reach_another_instance() {
    let server = TestServer::sqlite().await;
    let channel = create_channel(
        &server,
        json!({"name": "n", "type": "Webhook", "endpoint": "https://hooks.example.com/x"}),
    )
    .await;
    let (other_instance, other_admin) = server.second_instance().await;
    for (method, template, body) in notification_routes() {
        let body = body.map(|body| {
            serde_json::from_str(&body.to_string().replace("{c}", &channel)).expect("json")
        });
        for (instance, key) in [
            (&server.instance_id, &other_admin),
            (&other_instance, &server.admin_key),
        ] {
            let path = template.replace("{i}", instance).replace("{c}", &channel);
            let answer = server
                .call(method.clone(), &path, Some(key), body.clone())
                .await;
            assert_eq!(
                assert_error_shape(&answer, StatusCode::NOT_FOUND),
                "not_found",
                "{method} {template}"
            );
        }
    }
    // The other admin, on its own instance, cannot see or delete our channel either.
    let path = format!(
        "/instances/{other_instance}/notifications/v1/acct-1/notifications/channels/{channel}"
    );
    let answer = server
        .call(Method::DELETE, &path, Some(&other_admin), None)
        .await;
    assert_eq!(
        assert_error_shape(&answer, StatusCode::NOT_FOUND),
        "not_found"
    );
    let answer = server
        .call(
            Method::GET,
            &channels_path(&server).replace(&server.instance_id, &other_instance),
            Some(&other_admin),
            None,
        )
        .await;
    assert_eq!(answer.body["channels"], json!([]));
    let openapi = server.call(Method::GET, "/openapi.json", None, None).await;
    let paths = openapi.body["paths"].as_object().expect("paths");
    for (method, template, _) in notification_routes() {
        let path = template
            .replace("{i}", "{instance_id}")
            .replace("acct-1", "{account_id}")
            .replace("{c}", "{channel_id}");
        let method = method.as_str().to_ascii_lowercase();
        assert!(
            paths
                .get(&path)
                .and_then(|item| item.get(&method))
                .is_some(),
            "{method} {path} is not in the OpenAPI document"
        );
    }
}
