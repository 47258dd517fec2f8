//! Notifications: channels (IBM's Notifications v1 model, plus Slack and e-mail), which findings
//! each channel wants, the signing key, and the payloads sent.
//!
//! How an alert travels: recording a new or reopened FINDING marks it pending in the same
//! transaction ([`palisade_store::findings`]); the delivery worker ([`delivery`]) turns pending
//! findings into one queued delivery per matching channel (deduplicated by finding and opening),
//! then sends, retrying with backoff, and logs the outcome on the delivery row.

pub mod delivery;
pub mod endpoint;
pub mod signing;

use chrono::{DateTime, Utc};
use palisade_model::error::{ErrorCode, ErrorItem, ErrorTarget};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::service::findings::OccurrenceView;
use crate::state::ServerConfig;

pub use delivery::{PassReport, SmtpSettings, run_delivery_pass, spawn_worker};

/// Most channels an account may have (IBM's limit).
pub const MAX_CHANNELS_PER_ACCOUNT: usize = 15;
/// Channel types: IBM's signed webhook, plus Palisade's Slack-style webhook and e-mail.
pub const CHANNEL_TYPES: [&str; 3] = ["Webhook", "Slack", "Email"];
const SEVERITY_LEVELS: [&str; 4] = ["critical", "high", "medium", "low"];
/// IBM's built-in provider names and the Palisade providers they stand for.
const PROVIDER_ALIASES: [(&str, &str); 2] =
    [("NA", "network-insights"), ("ATA", "activity-insights")];

/// Which finding sources a channel alerts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSource {
    /// A provider id, a built-in name (`VA`, `NA`, `ATA`, `CERT`) or `ALL`.
    pub provider_name: String,
    /// Note ids (finding types) of that provider, or `ALL`; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_types: Option<Vec<String>>,
}

/// Body of channel create and update (IBM's `create_notification_channel`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelRequest {
    pub name: String,
    /// `Webhook` (JWT-signed body), `Slack` (Slack-compatible body) or `Email`.
    #[serde(rename = "type")]
    pub channel_type: String,
    /// HTTPS URL, or for `Email` an address (`ops@example.com` or `mailto:…`).
    pub endpoint: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Severities to alert on: any of `critical`, `high`, `medium`, `low`; default the top three.
    #[serde(default)]
    pub severity: Option<Vec<String>>,
    /// Default false, as in IBM's API.
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub alert_source: Option<Vec<AlertSource>>,
}

/// Which severities a channel alerts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeverityFlags {
    pub critical: bool,
    pub high: bool,
    pub medium: bool,
    pub low: bool,
}

impl SeverityFlags {
    /// Tells whether a finding of `severity` (`HIGH` …; none counts as low) is wanted.
    pub fn wants(&self, severity: Option<&str>) -> bool {
        match severity.unwrap_or("LOW") {
            "CRITICAL" => self.critical,
            "HIGH" => self.high,
            "MEDIUM" => self.medium,
            _ => self.low,
        }
    }
}

/// A channel as stored and shown (IBM's `Channel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    pub channel_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub channel_type: String,
    pub severity: SeverityFlags,
    pub endpoint: String,
    pub enabled: bool,
    pub alert_source: Vec<AlertSource>,
    /// IBM's field; Palisade sends as findings arrive.
    pub frequency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

fn problem(items: &mut Vec<ErrorItem>, code: ErrorCode, pointer: &str, message: impl Into<String>) {
    items.push(ErrorItem {
        code,
        message: format!("`{pointer}`: {}", message.into()),
        target: Some(ErrorTarget::field(pointer)),
    });
}

/// Validates a channel request against the server's policy and returns the channel to store.
pub fn channel_from_request(
    channel_id: &str,
    request: &ChannelRequest,
    config: &ServerConfig,
) -> ApiResult<Channel> {
    let mut items = Vec::new();
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        problem(
            &mut items,
            ErrorCode::InvalidField,
            "/name",
            "must be 1–128 characters",
        );
    }
    if request
        .description
        .as_ref()
        .is_some_and(|description| description.chars().count() > 1024)
    {
        problem(
            &mut items,
            ErrorCode::InvalidField,
            "/description",
            "is longer than 1024 characters",
        );
    }
    let channel_type = CHANNEL_TYPES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(&request.channel_type))
        .copied();
    let mut endpoint = request.endpoint.trim().to_owned();
    match channel_type {
        None => problem(
            &mut items,
            ErrorCode::InvalidField,
            "/type",
            format!(
                "`{}` is not one of {}",
                request.channel_type,
                CHANNEL_TYPES.join(", ")
            ),
        ),
        Some("Email") => match endpoint::email_address(&endpoint) {
            Ok(address) => {
                endpoint = address;
                if config.smtp.is_none() {
                    problem(
                        &mut items,
                        ErrorCode::InvalidField,
                        "/type",
                        "this server has no SMTP relay configured (serve --smtp-host)",
                    );
                }
            }
            Err(message) => problem(&mut items, ErrorCode::InvalidField, "/endpoint", message),
        },
        Some(_) => {
            if let Err(message) = endpoint::check_url(&endpoint, config.allow_insecure_webhooks) {
                problem(&mut items, ErrorCode::InvalidField, "/endpoint", message);
            }
        }
    }
    let mut severity = SeverityFlags {
        critical: true,
        high: true,
        medium: true,
        low: false,
    };
    if let Some(levels) = &request.severity {
        severity = SeverityFlags {
            critical: false,
            high: false,
            medium: false,
            low: false,
        };
        for (index, level) in levels.iter().enumerate() {
            match level.to_ascii_lowercase().as_str() {
                "critical" => severity.critical = true,
                "high" => severity.high = true,
                "medium" => severity.medium = true,
                "low" => severity.low = true,
                _ => problem(
                    &mut items,
                    ErrorCode::InvalidField,
                    &format!("/severity/{index}"),
                    format!("`{level}` is not one of {}", SEVERITY_LEVELS.join(", ")),
                ),
            }
        }
    }
    let alert_source = request.alert_source.clone().unwrap_or_else(|| {
        vec![AlertSource {
            provider_name: "ALL".into(),
            finding_types: None,
        }]
    });
    let has_all = alert_source
        .iter()
        .any(|source| source.provider_name == "ALL");
    if has_all && alert_source.len() > 1 {
        problem(
            &mut items,
            ErrorCode::InvalidField,
            "/alert_source",
            "`ALL` stands for every provider and cannot be combined with others",
        );
    }
    for (index, source) in alert_source.iter().enumerate() {
        if !crate::service::findings::model::is_valid_id(&source.provider_name) {
            problem(
                &mut items,
                ErrorCode::InvalidField,
                &format!("/alert_source/{index}/provider_name"),
                "must be a provider id or one of VA, NA, ATA, CERT, ALL",
            );
        }
        for (type_index, finding_type) in source.finding_types.iter().flatten().enumerate() {
            if finding_type.trim().is_empty() {
                problem(
                    &mut items,
                    ErrorCode::InvalidField,
                    &format!("/alert_source/{index}/finding_types/{type_index}"),
                    "must not be empty",
                );
            }
        }
    }
    if !items.is_empty() {
        return Err(ApiError::many(items));
    }
    Ok(Channel {
        channel_id: channel_id.to_owned(),
        name: name.to_owned(),
        description: request.description.clone(),
        channel_type: channel_type.unwrap_or("Webhook").to_owned(),
        severity,
        endpoint,
        enabled: request.enabled.unwrap_or(false),
        alert_source,
        frequency: "realtime".into(),
        created_at: None,
        updated_at: None,
    })
}

/// Tells whether a channel wants an alert about this finding.
pub fn channel_wants(
    channel: &Channel,
    provider_id: &str,
    note_id: &str,
    severity: Option<&str>,
) -> bool {
    if !channel.enabled || !channel.severity.wants(severity) {
        return false;
    }
    channel.alert_source.iter().any(|source| {
        let provider_matches = source.provider_name == "ALL"
            || source.provider_name == provider_id
            || PROVIDER_ALIASES.iter().any(|(alias, provider)| {
                source.provider_name == *alias && *provider == provider_id
            });
        let type_matches = match &source.finding_types {
            None => true,
            Some(types) if types.is_empty() => true,
            Some(types) => types.iter().any(|finding_type| {
                finding_type == "ALL"
                    || finding_type == note_id
                    // IBM's types name the detection (`anonym_server`); notes may carry a
                    // prefix (`xforce-anonym_server`).
                    || note_id.ends_with(&format!("-{finding_type}"))
            }),
        };
        provider_matches && type_matches
    })
}

/// The JSON an alert about one finding carries, in IBM's webhook shape; rendered per channel
/// type at send time.
pub fn finding_payload(instance_id: &str, view: &OccurrenceView) -> serde_json::Value {
    let occurrence = &view.occurrence;
    let link = format!(
        "/instances/{instance_id}/findings/v1/{}/providers/{}/occurrences/{}",
        view.account_id, view.provider_id, occurrence.id
    );
    let severity = occurrence
        .finding
        .as_ref()
        .and_then(|finding| finding.severity.clone())
        .unwrap_or_default();
    serde_json::json!({
        "findings": [{
            "severity": severity,
            "issuer": "Palisade",
            "issuer-url": format!("/instances/{instance_id}/findings/v1/{}/providers/{}", view.account_id, view.provider_id),
            "id": occurrence.id,
            "payload-type": "findings",
            "payload-link": link,
            "provider": view.provider_id,
            "payload": view,
        }]
    })
}

/// The payload of a channel test.
pub fn test_payload(channel: &Channel, at: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "test": true,
        "message": format!("Test notification from Palisade to channel `{}`", channel.name),
        "sent_at": crate::service::findings::wire_time(at),
        "findings": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(endpoint: &str) -> ChannelRequest {
        ChannelRequest {
            name: "ops".into(),
            channel_type: "Webhook".into(),
            endpoint: endpoint.into(),
            description: None,
            severity: None,
            enabled: Some(true),
            alert_source: None,
        }
    }

    #[test]
    fn channels_default_to_the_top_three_severities_and_every_source() {
        let channel = channel_from_request(
            "c1",
            &request("https://hooks.example.com/x"),
            &ServerConfig::default(),
        )
        .expect("valid");
        assert_eq!(
            channel.severity,
            SeverityFlags {
                critical: true,
                high: true,
                medium: true,
                low: false
            }
        );
        assert!(channel_wants(&channel, "partner", "n", Some("MEDIUM")));
        assert!(!channel_wants(&channel, "partner", "n", Some("LOW")));
        assert!(!channel_wants(&channel, "partner", "n", None));
    }

    #[test]
    fn plain_http_and_private_targets_need_the_development_setting() {
        let strict = ServerConfig::default();
        for endpoint in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://localhost/x",
            "ftp://example.com/x",
        ] {
            assert!(
                channel_from_request("c", &request(endpoint), &strict).is_err(),
                "{endpoint}"
            );
        }
        let permissive = ServerConfig {
            allow_insecure_webhooks: true,
            ..ServerConfig::default()
        };
        assert!(channel_from_request("c", &request("http://127.0.0.1:9/x"), &permissive).is_ok());
    }

    #[test]
    fn alert_sources_filter_by_provider_alias_and_type() {
        let mut with_sources = request("https://hooks.example.com/x");
        with_sources.alert_source = Some(vec![
            AlertSource {
                provider_name: "NA".into(),
                finding_types: Some(vec!["anonym_server".into()]),
            },
            AlertSource {
                provider_name: "posture".into(),
                finding_types: None,
            },
        ]);
        with_sources.severity = Some(vec!["low".into(), "critical".into()]);
        let channel =
            channel_from_request("c", &with_sources, &ServerConfig::default()).expect("valid");
        assert!(channel_wants(
            &channel,
            "network-insights",
            "xforce-anonym_server",
            Some("LOW")
        ));
        assert!(!channel_wants(
            &channel,
            "network-insights",
            "xforce-bot_server",
            Some("LOW")
        ));
        assert!(channel_wants(
            &channel,
            "posture",
            "anything",
            Some("CRITICAL")
        ));
        assert!(!channel_wants(
            &channel,
            "posture",
            "anything",
            Some("HIGH")
        ));
        assert!(!channel_wants(&channel, "partner", "x", Some("CRITICAL")));

        let mut combined = request("https://hooks.example.com/x");
        combined.alert_source = Some(vec![
            AlertSource {
                provider_name: "ALL".into(),
                finding_types: None,
            },
            AlertSource {
                provider_name: "NA".into(),
                finding_types: None,
            },
        ]);
        assert!(channel_from_request("c", &combined, &ServerConfig::default()).is_err());
    }

    #[test]
    fn disabled_channels_want_nothing() {
        let mut disabled = request("https://hooks.example.com/x");
        disabled.enabled = None;
        let channel =
            channel_from_request("c", &disabled, &ServerConfig::default()).expect("valid");
        assert!(!channel.enabled, "IBM's default");
        assert!(!channel_wants(&channel, "p", "n", Some("CRITICAL")));
    }
}
