//! The scan scheduler: scans every enabled attachment whose `next_scan_time` has come.
//!
//! The schedule lives in the attachments themselves (`next_scan_time`, moved forward by every
//! scan), so it survives restarts: a server that was down when a scan was due runs it at its
//! next tick. An attachment already being scanned is skipped (see `service::scans`).
//!
//! Processes sharing a PostgreSQL store run one scheduler between them: the one holding the
//! scheduler lock (`service::cluster`); when it dies, another takes the lock at its next tick.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::routes::v3::ATTACHMENT;
use crate::service::documents;
use crate::state::AppState;

/// How often the scheduler looks for due attachments.
pub const TICK: Duration = Duration::from_secs(60);

/// Starts the scheduler loop; abort the handle to stop it.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(state.config.scheduler_tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            if !state.cluster.scheduler_turn().await {
                continue;
            }
            let ran = run_due(&state, Utc::now()).await;
            if ran > 0 {
                tracing::info!(scans = ran, "scheduled scans ran");
            }
        }
    })
}

/// Runs every scan due at `now`; returns how many ran. Failures are logged, not fatal: one
/// broken attachment must not stop the others.
pub async fn run_due(state: &AppState, now: DateTime<Utc>) -> usize {
    let instances = match state.store.list_instances().await {
        Ok(instances) => instances,
        Err(error) => {
            tracing::error!(error = %error, "scheduler cannot list instances");
            return 0;
        }
    };
    let mut ran = 0;
    for instance in instances {
        let attachments = match documents::all(state, &instance.id, ATTACHMENT).await {
            Ok(attachments) => attachments,
            Err(error) => {
                tracing::error!(instance = %instance.id, error = %error, "scheduler cannot list attachments");
                continue;
            }
        };
        for attachment in attachments {
            if !is_due(&attachment.body, now) {
                continue;
            }
            match crate::service::scans::run_scan(
                state,
                &instance.id,
                &attachment.id,
                "scheduled",
                now,
            )
            .await
            {
                Ok(_) => ran += 1,
                Err(error) => {
                    tracing::warn!(instance = %instance.id, attachment = %attachment.id, error = %error, "scheduled scan failed")
                }
            }
        }
    }
    ran
}

/// Tells whether an attachment is enabled and its next scan time has come.
pub fn is_due(attachment: &Value, now: DateTime<Utc>) -> bool {
    attachment["status"] == "enabled"
        && attachment["next_scan_time"]
            .as_str()
            .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
            .is_some_and(|next| next.with_timezone(&Utc) <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_enabled_attachments_past_their_time_are_due() {
        let now = DateTime::parse_from_rfc3339("2026-06-02T00:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert!(is_due(
            &json!({"status": "enabled", "next_scan_time": "2026-06-01T00:00:00Z"}),
            now
        ));
        assert!(!is_due(
            &json!({"status": "enabled", "next_scan_time": "2026-06-03T00:00:00Z"}),
            now
        ));
        assert!(!is_due(
            &json!({"status": "disabled", "next_scan_time": "2026-06-01T00:00:00Z"}),
            now
        ));
        assert!(!is_due(
            &json!({"status": "enabled", "next_scan_time": null}),
            now
        ));
    }
}
