//! Attachment notification thresholds (SCC `AttachmentNotificationsControls`): a scan breaches
//! them when more than `threshold_limit` controls are not compliant, or when any control listed
//! in `failed_control_ids` is not compliant. The server turns a [`ThresholdBreach`] into a
//! finding.

use serde::{Deserialize, Serialize};

use crate::model::AttachmentNotifications;
use crate::rollup::{ComplianceStatus, ControlSummary, Rollup};

/// Why an attachment's thresholds were breached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdBreach {
    /// Controls not compliant in the scan.
    pub not_compliant_count: u64,
    /// The limit, when the count exceeds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_exceeded: Option<usize>,
    /// Watched controls (from `failed_control_ids`) that are not compliant.
    pub failed_watched_controls: Vec<ControlSummary>,
}

impl ThresholdBreach {
    /// A one-line description for the finding.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(limit) = self.threshold_exceeded {
            parts.push(format!(
                "{} controls are not compliant (threshold {limit})",
                self.not_compliant_count
            ));
        }
        if !self.failed_watched_controls.is_empty() {
            let names: Vec<&str> = self
                .failed_watched_controls
                .iter()
                .map(|control| control.control_name.as_str())
                .collect();
            parts.push(format!("watched controls failed: {}", names.join(", ")));
        }
        parts.join("; ")
    }
}

/// Checks a scan's roll-up against the attachment's thresholds; `None` when notifications are
/// off or nothing is breached.
pub fn check_thresholds(
    notifications: &AttachmentNotifications,
    rollup: &Rollup,
) -> Option<ThresholdBreach> {
    if !notifications.enabled {
        return None;
    }
    let not_compliant_count = rollup.controls_summary.stats.not_compliant_count;
    let threshold_exceeded = notifications
        .controls
        .threshold_limit
        .filter(|&limit| not_compliant_count > limit as u64);
    let failed_watched_controls: Vec<ControlSummary> = rollup
        .controls
        .iter()
        .filter(|control| control.stats.status == ComplianceStatus::NotCompliant)
        .filter(|control| {
            notifications
                .controls
                .failed_control_ids
                .iter()
                .any(|watched| *watched == control.id || *watched == control.control_name)
        })
        .map(|control| ControlSummary {
            id: control.id.clone(),
            control_name: control.control_name.clone(),
            control_description: control.control_description.clone(),
        })
        .collect();
    (threshold_exceeded.is_some() || !failed_watched_controls.is_empty()).then_some(
        ThresholdBreach {
            not_compliant_count,
            threshold_exceeded,
            failed_watched_controls,
        },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rollup::RollupBuilder;
    use crate::scan::tests::{now, plan_with, resources};

    fn rollup() -> Rollup {
        let plan = plan_with(json!([]), &[]);
        let resources = resources();
        let mut builder = RollupBuilder::new(&plan);
        builder.add_chunk(&resources, &plan.evaluate_chunk(&resources, now()));
        builder.finish()
    }

    fn notifications(value: serde_json::Value) -> AttachmentNotifications {
        serde_json::from_value(value).expect("notifications decode")
    }

    #[test]
    fn threshold_is_exceeded_only_above_the_limit() {
        let rollup = rollup();
        assert_eq!(rollup.controls_summary.stats.not_compliant_count, 1);
        let at_limit = notifications(json!({"enabled": true, "controls": {"threshold_limit": 1}}));
        assert_eq!(check_thresholds(&at_limit, &rollup), None);
        let below = notifications(json!({"enabled": true, "controls": {"threshold_limit": 0}}));
        let breach = check_thresholds(&below, &rollup).expect("breached");
        assert_eq!(breach.threshold_exceeded, Some(0));
        assert!(
            breach.summary().contains("1 controls"),
            "{}",
            breach.summary()
        );
    }

    #[test]
    fn watched_controls_breach_by_id_or_name_and_disabled_never_does() {
        let rollup = rollup();
        let watched = notifications(json!({"enabled": true,
            "controls": {"failed_control_ids": ["CP-9", "ia-2"]}}));
        let breach = check_thresholds(&watched, &rollup).expect("breached");
        assert_eq!(
            breach.failed_watched_controls.len(),
            1,
            "ia-2 is not not_compliant"
        );
        assert_eq!(breach.failed_watched_controls[0].id, "cp-9");
        let disabled = notifications(json!({"enabled": false,
            "controls": {"threshold_limit": 0, "failed_control_ids": ["cp-9"]}}));
        assert_eq!(check_thresholds(&disabled, &rollup), None);
    }
}
