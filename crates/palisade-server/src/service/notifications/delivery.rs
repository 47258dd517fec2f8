//! Delivery: the background worker that turns pending findings into queued deliveries and sends
//! them — signed JWT webhooks, Slack-compatible webhooks, and e-mail over SMTP — retrying with
//! exponential backoff.
//!
//! Everything the worker needs is in the store (pending marks, the delivery queue with leases),
//! so a restart loses nothing and repeats nothing that was logged as delivered; [`run_delivery_pass`]
//! is one round of that work, which tests call directly instead of waiting for the timer.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use palisade_store::findings::OccurrenceKey;
use palisade_store::notifications::{AttemptOutcome, Delivery, NewDelivery};
use serde_json::Value;

use super::endpoint::{SafeResolver, check_url};
use super::signing::{sign, signing_key};
use super::{Channel, channel_wants, finding_payload};
use crate::error::ApiError;
use crate::service::findings::occurrence_view;
use crate::state::AppState;

/// Pending findings fanned out per pass.
const FAN_OUT_BATCH: u32 = 500;
/// Deliveries sent per pass.
const SEND_BATCH: u32 = 100;
/// How long a claimed delivery is reserved for the worker that claimed it.
const LEASE: Duration = Duration::from_secs(120);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Time allowed to one webhook or SMTP exchange.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// The SMTP relay e-mail channels send through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// The `From:` address.
    pub from: String,
    /// Upgrade with STARTTLS (required when credentials are set).
    pub starttls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub reopened: u64,
    pub queued: u64,
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
}

/// Why a send failed, and whether trying again can help.
#[derive(Debug, Clone)]
pub struct SendError {
    pub message: String,
    pub permanent: bool,
}

impl SendError {
    fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// The webhook client: no redirects (a redirect could point inside), a resolver that refuses
/// internal addresses unless allowed, bounded time. One per policy, shared by the process.
fn http_client(allow_insecure: bool) -> Result<&'static reqwest::Client, SendError> {
    static STRICT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    static PERMISSIVE: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    let cell = if allow_insecure { &PERMISSIVE } else { &STRICT };
    cell.get_or_init(|| {
        // The binary uses ring only (see CRATES.md); a second install attempt is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(SafeResolver {
                allow_internal: allow_insecure,
            }))
            .timeout(SEND_TIMEOUT)
            .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("building the webhook client: {error}"))
    })
    .as_ref()
    .map_err(|message| SendError::permanent(message.clone()))
}

/// The error chain of a reqwest failure, which its `Display` hides.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn post_json(
    state: &AppState,
    endpoint: &str,
    body: &Value,
    extra_header: Option<(&str, String)>,
) -> Result<(), SendError> {
    let allow_insecure = state.config.allow_insecure_webhooks;
    // Checked again at send time: the policy may have tightened since the channel was saved.
    check_url(endpoint, allow_insecure).map_err(SendError::permanent)?;
    let mut request = http_client(allow_insecure)?.post(endpoint).json(body);
    if let Some((name, value)) = extra_header {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|error| {
        let text = describe(&error);
        if text.contains("internal address webhooks may not reach") {
            SendError::permanent(text)
        } else {
            SendError::transient(text)
        }
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let message = format!("endpoint answered HTTP {}", status.as_u16());
    // Overload and server trouble pass; any other refusal will not change by itself.
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(SendError::transient(message))
    } else {
        Err(SendError::permanent(message))
    }
}

/// A one-line summary of a payload, for Slack and e-mail subjects.
fn summary(payload: &Value) -> String {
    if payload.get("test").is_some() {
        return payload["message"]
            .as_str()
            .unwrap_or("Test notification from Palisade")
            .to_owned();
    }
    let finding = &payload["findings"][0];
    let occurrence = &finding["payload"];
    let title = occurrence["short_description"]
        .as_str()
        .or_else(|| occurrence["note_name"].as_str())
        .unwrap_or("finding");
    let severity = finding["severity"].as_str().unwrap_or("");
    let resource = occurrence
        .pointer("/context/resource_crn")
        .or_else(|| occurrence.pointer("/context/resource_id"))
        .or_else(|| occurrence.get("resource_url"))
        .and_then(Value::as_str);
    let mut line = format!(
        "[{}] {title} (provider {})",
        if severity.is_empty() {
            "FINDING"
        } else {
            severity
        },
        finding["provider"].as_str().unwrap_or("?")
    );
    if let Some(resource) = resource {
        line.push_str(&format!(" on {resource}"));
    }
    line
}

/// A Slack incoming-webhook body (also understood by Mattermost, Rocket.Chat and Teams' Slack
/// compatibility): `text` for notifications, `blocks` for the message.
fn slack_body(payload: &Value) -> Value {
    let headline = summary(payload);
    let finding = &payload["findings"][0];
    let mut detail = String::new();
    if let Some(description) = finding["payload"]["long_description"].as_str() {
        detail.push_str(description);
        detail.push('\n');
    }
    if let Some(link) = finding["payload-link"].as_str() {
        detail.push_str(&format!("`{link}`"));
    }
    let mut blocks = vec![serde_json::json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{headline}*")},
    })];
    if !detail.is_empty() {
        blocks.push(serde_json::json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": detail},
        }));
    }
    serde_json::json!({"text": headline, "blocks": blocks})
}

async fn send_email(state: &AppState, to: &str, payload: &Value) -> Result<(), SendError> {
    let Some(smtp) = &state.config.smtp else {
        return Err(SendError::permanent(
            "no SMTP relay is configured (serve --smtp-host)",
        ));
    };
    let from = smtp
        .from
        .parse::<lettre::message::Mailbox>()
        .map_err(|error| SendError::permanent(format!("SMTP from address: {error}")))?;
    let to = to
        .parse::<lettre::message::Mailbox>()
        .map_err(|error| SendError::permanent(format!("recipient: {error}")))?;
    let body = format!(
        "{}\n\n{}\n",
        summary(payload),
        serde_json::to_string_pretty(payload).unwrap_or_default()
    );
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(format!("[Palisade] {}", summary(payload)))
        .body(body)
        .map_err(|error| SendError::permanent(format!("building the e-mail: {error}")))?;
    let mut builder = if smtp.starttls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|error| SendError::permanent(format!("SMTP relay: {error}")))?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
    };
    builder = builder.port(smtp.port).timeout(Some(SEND_TIMEOUT));
    if let (Some(username), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            username.clone(),
            password.clone(),
        ));
    }
    builder
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|error| {
            if error.is_permanent() {
                SendError::permanent(format!("SMTP: {error}"))
            } else {
                SendError::transient(format!("SMTP: {error}"))
            }
        })
}

/// Sends one delivery to its channel, once.
pub async fn send(
    state: &AppState,
    delivery: &Delivery,
    channel: &Channel,
    at: DateTime<Utc>,
) -> Result<(), SendError> {
    match channel.channel_type.as_str() {
        "Webhook" => {
            let key = signing_key(&state.store, &delivery.instance_id)
                .await
                .map_err(|error| SendError::transient(error.to_string()))?;
            let token =
                sign(&key, &delivery.payload, &delivery.id, at).map_err(SendError::permanent)?;
            post_json(
                state,
                &channel.endpoint,
                &serde_json::json!({"data": token}),
                Some(("X-Palisade-Delivery", delivery.id.clone())),
            )
            .await
        }
        "Slack" => {
            post_json(
                state,
                &channel.endpoint,
                &slack_body(&delivery.payload),
                None,
            )
            .await
        }
        "Email" => send_email(state, &channel.endpoint, &delivery.payload).await,
        other => Err(SendError::permanent(format!(
            "unknown channel type `{other}`"
        ))),
    }
}

/// The wait before attempt `attempt + 1` after `attempt` failures: base × 2^(attempt − 1), at
/// most an hour.
pub fn backoff(base: Duration, attempt: i64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    base.saturating_mul(2_u32.saturating_pow(exponent))
        .min(MAX_BACKOFF)
}

/// Loads a channel for a delivery, reading a missing or malformed one as gone.
async fn channel_of(state: &AppState, delivery: &Delivery) -> Result<Option<Channel>, ApiError> {
    let stored = state
        .store
        .get_channel(
            &delivery.instance_id,
            &delivery.account_id,
            &delivery.channel_id,
        )
        .await?;
    Ok(stored.and_then(|stored| serde_json::from_value(stored.body).ok()))
}

/// Sends one claimed delivery and records the outcome; returns it.
pub async fn attempt(
    state: &AppState,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> Result<AttemptOutcome, ApiError> {
    let is_test = delivery.payload.get("test").is_some();
    let outcome = match channel_of(state, delivery).await? {
        None => AttemptOutcome::Failed {
            error: "the channel was deleted".into(),
        },
        Some(channel) if !channel.enabled && !is_test => AttemptOutcome::Failed {
            error: "the channel was disabled".into(),
        },
        Some(channel) => match send(state, delivery, &channel, now).await {
            Ok(()) => AttemptOutcome::Delivered,
            Err(error) if error.permanent => AttemptOutcome::Failed {
                error: error.message,
            },
            Err(error) => {
                let attempts = delivery.attempts + 1;
                if attempts >= i64::from(state.config.notification_max_attempts) {
                    AttemptOutcome::Failed {
                        error: format!("gave up after {attempts} attempts: {}", error.message),
                    }
                } else {
                    let wait = backoff(state.config.notification_retry_base, attempts);
                    AttemptOutcome::Retry {
                        error: error.message,
                        next_attempt_at: now
                            + chrono::Duration::from_std(wait)
                                .unwrap_or(chrono::Duration::hours(1)),
                    }
                }
            }
        },
    };
    state
        .store
        .record_delivery_attempt(&delivery.id, &outcome, now)
        .await?;
    match &outcome {
        AttemptOutcome::Delivered => {
            tracing::info!(delivery = %delivery.id, channel = %delivery.channel_id, "notification delivered");
        }
        AttemptOutcome::Retry {
            error,
            next_attempt_at,
        } => {
            tracing::warn!(delivery = %delivery.id, channel = %delivery.channel_id, error = %error, next = %next_attempt_at, "notification failed; will retry");
        }
        AttemptOutcome::Failed { error } => {
            tracing::error!(delivery = %delivery.id, channel = %delivery.channel_id, error = %error, "notification failed for good");
        }
    }
    Ok(outcome)
}

/// Queues one delivery per matching channel for every pending finding, then clears the marks.
async fn fan_out(state: &AppState, now: DateTime<Utc>) -> Result<u64, ApiError> {
    let pending = state.store.pending_notifications(FAN_OUT_BATCH).await?;
    let mut channels: HashMap<(String, String), Vec<Channel>> = HashMap::new();
    let mut queued = 0;
    for item in pending {
        let occurrence = &item.occurrence;
        let record = &occurrence.record;
        let account_key = (item.instance_id.clone(), record.account_id.clone());
        if !channels.contains_key(&account_key) {
            let stored = state
                .store
                .list_channels(&item.instance_id, &record.account_id)
                .await?;
            channels.insert(
                account_key.clone(),
                stored
                    .into_iter()
                    .filter_map(|stored| serde_json::from_value(stored.body).ok())
                    .collect(),
            );
        }
        let wanted: Vec<&Channel> = channels
            .get(&account_key)
            .map(|list| {
                list.iter()
                    .filter(|channel| {
                        channel_wants(
                            channel,
                            &record.provider_id,
                            &record.note_id,
                            record.severity.as_deref(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !wanted.is_empty() {
            let view = occurrence_view(occurrence, now)?;
            let payload = finding_payload(&item.instance_id, &view);
            for channel in wanted {
                let delivery = NewDelivery {
                    id: uuid::Uuid::now_v7().to_string(),
                    instance_id: item.instance_id.clone(),
                    account_id: record.account_id.clone(),
                    channel_id: channel.channel_id.clone(),
                    // One alert per finding and opening: a reopened finding alerts again.
                    dedup_key: format!(
                        "{}/{}@{}",
                        record.provider_id,
                        record.id,
                        palisade_store::format_timestamp(occurrence.opened_at)
                    ),
                    payload: payload.clone(),
                };
                if state.store.enqueue_delivery(&delivery, now, now).await? {
                    queued += 1;
                }
            }
        }
        state
            .store
            .clear_pending_notification(
                &item.instance_id,
                &OccurrenceKey {
                    account_id: record.account_id.clone(),
                    provider_id: record.provider_id.clone(),
                    id: record.id.clone(),
                },
                occurrence.opened_at,
            )
            .await?;
    }
    Ok(queued)
}

/// One round of the worker: reopen expired suppressions, queue alerts for pending findings, and
/// send what is due.
pub async fn run_delivery_pass(
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<PassReport, ApiError> {
    let mut report = PassReport {
        reopened: state.store.expire_suppressions(now).await?,
        ..PassReport::default()
    };
    report.queued = fan_out(state, now).await?;
    let lease_until =
        now + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::minutes(2));
    let due = state
        .store
        .claim_due_deliveries(now, lease_until, SEND_BATCH)
        .await?;
    for delivery in due {
        match attempt(state, &delivery, now).await? {
            AttemptOutcome::Delivered => report.delivered += 1,
            AttemptOutcome::Retry { .. } => report.retried += 1,
            AttemptOutcome::Failed { .. } => report.failed += 1,
        }
    }
    Ok(report)
}

/// Starts the delivery worker: a pass every `notification_poll_interval` until `shutdown` turns
/// true. A pass in progress finishes first (sends are bounded by their timeout).
pub fn spawn_worker(
    state: AppState,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(error) = run_delivery_pass(&state, Utc::now()).await {
                tracing::warn!(error = %error, detail = ?error.internal_detail, "notification pass failed; retrying next round");
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = tokio::time::sleep(state.config.notification_poll_interval) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(60));
        assert_eq!(backoff(base, 4), Duration::from_secs(240));
        assert_eq!(backoff(base, 30), MAX_BACKOFF);
    }

    #[test]
    fn slack_bodies_have_text_and_blocks() {
        let payload = serde_json::json!({"findings": [{
            "severity": "HIGH", "provider": "network-insights", "payload-link": "/x",
            "payload": {"short_description": "Traffic to a botnet", "long_description": "Details",
                         "context": {"resource_crn": "crn:vm-1"}}
        }]});
        let body = slack_body(&payload);
        assert_eq!(
            body["text"],
            "[HIGH] Traffic to a botnet (provider network-insights) on crn:vm-1"
        );
        assert_eq!(body["blocks"].as_array().map(Vec::len), Some(2));
    }
}
