//! Drift between two reports of the same attachment: which controls, resources and
//! evaluations changed status, and how the score moved; plus SCC's `violations_drift` data
//! points.
//!
//! Controls and resources are compared from the two [`Rollup`]s. Evaluations can number in the
//! millions, so [`diff_evaluations`] merges two streams sorted by (rule id, resource id) —
//! what a store returns with `ORDER BY` — holding one evaluation of each side at a time and
//! keeping at most `limit` changes (the counters still count them all).

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::rollup::{ComplianceStats, ComplianceStatus, Rollup};
use crate::scan::EvaluationStatus;

/// A control whose status changed (or that appeared or disappeared with a profile change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlChange {
    /// The control id.
    pub control_id: String,
    /// The control name.
    pub control_name: String,
    /// Status in the previous report; `None` when the control is new.
    pub previous_status: Option<ComplianceStatus>,
    /// Status in the current report; `None` when the control was removed.
    pub current_status: Option<ComplianceStatus>,
}

/// A resource whose status changed, appeared or disappeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// The resource id.
    pub resource_id: String,
    /// The resource name.
    pub resource_name: String,
    /// Status in the previous report; `None` when the resource is new.
    pub previous_status: Option<ComplianceStatus>,
    /// Status in the current report; `None` when the resource is gone.
    pub current_status: Option<ComplianceStatus>,
}

/// An evaluation whose status changed, appeared or disappeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationChange {
    /// The rule.
    pub rule_id: String,
    /// The resource.
    pub resource_id: String,
    /// Status in the previous report; `None` when the pair is new.
    pub previous_status: Option<EvaluationStatus>,
    /// Status in the current report; `None` when the pair is gone.
    pub current_status: Option<EvaluationStatus>,
}

/// The (rule, resource, status) of one evaluation, the input of [`diff_evaluations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationKey {
    /// The rule.
    pub rule_id: String,
    /// The resource.
    pub resource_id: String,
    /// The status.
    pub status: EvaluationStatus,
}

/// Evaluation changes, bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationDrift {
    /// The first `limit` changes, in (rule, resource) order.
    pub changes: Vec<EvaluationChange>,
    /// Evaluations that went from anything to `failure` (new failures included).
    pub newly_failing: u64,
    /// Evaluations that went from `failure` to anything (removed ones included).
    pub newly_passing_or_gone: u64,
    /// Every change, also those beyond `limit`.
    pub total_changes: u64,
}

/// What changed between two reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportDrift {
    /// Score percent before.
    pub previous_score: Option<f64>,
    /// Score percent now.
    pub current_score: Option<f64>,
    /// Controls that flipped.
    pub controls: Vec<ControlChange>,
    /// Resources that flipped.
    pub resources: Vec<ResourceChange>,
    /// Evaluations that flipped (filled by [`diff_evaluations`] when the caller has them).
    pub evaluations: EvaluationDrift,
}

/// Compares two roll-ups (controls, resources, score).
pub fn diff_rollups(previous: &Rollup, current: &Rollup) -> ReportDrift {
    let previous_controls: HashMap<&str, (&str, ComplianceStatus)> = previous
        .controls
        .iter()
        .map(|control| {
            (
                control.id.as_str(),
                (control.control_name.as_str(), control.stats.status),
            )
        })
        .collect();
    let mut controls = Vec::new();
    for control in &current.controls {
        let before = previous_controls.get(control.id.as_str()).map(|(_, s)| *s);
        if before != Some(control.stats.status) {
            controls.push(ControlChange {
                control_id: control.id.clone(),
                control_name: control.control_name.clone(),
                previous_status: before,
                current_status: Some(control.stats.status),
            });
        }
    }
    for control in &previous.controls {
        if current.control(&control.id).is_none() {
            controls.push(ControlChange {
                control_id: control.id.clone(),
                control_name: control.control_name.clone(),
                previous_status: Some(control.stats.status),
                current_status: None,
            });
        }
    }
    let previous_resources: HashMap<&str, ComplianceStatus> = previous
        .resources
        .iter()
        .map(|resource| (resource.id.as_str(), resource.status))
        .collect();
    let current_ids: HashMap<&str, ()> = current
        .resources
        .iter()
        .map(|resource| (resource.id.as_str(), ()))
        .collect();
    let mut resources = Vec::new();
    for resource in &current.resources {
        let before = previous_resources.get(resource.id.as_str()).copied();
        if before != Some(resource.status) {
            resources.push(ResourceChange {
                resource_id: resource.id.clone(),
                resource_name: resource.resource_name.clone(),
                previous_status: before,
                current_status: Some(resource.status),
            });
        }
    }
    for resource in &previous.resources {
        if !current_ids.contains_key(resource.id.as_str()) {
            resources.push(ResourceChange {
                resource_id: resource.id.clone(),
                resource_name: resource.resource_name.clone(),
                previous_status: Some(resource.status),
                current_status: None,
            });
        }
    }
    ReportDrift {
        previous_score: previous.score.exact_percent(),
        current_score: current.score.exact_percent(),
        controls,
        resources,
        evaluations: EvaluationDrift::default(),
    }
}

/// Merges two evaluation streams, each sorted by (rule id, resource id), into their changes.
/// Keeps the first `limit` changes; counts all of them.
pub fn diff_evaluations(
    previous: impl IntoIterator<Item = EvaluationKey>,
    current: impl IntoIterator<Item = EvaluationKey>,
    limit: usize,
) -> EvaluationDrift {
    let mut drift = EvaluationDrift::default();
    let mut previous = previous.into_iter().peekable();
    let mut current = current.into_iter().peekable();
    let mut record = |rule_id: &str,
                      resource_id: &str,
                      before: Option<EvaluationStatus>,
                      after: Option<EvaluationStatus>| {
        if before == after {
            return;
        }
        drift.total_changes += 1;
        if after == Some(EvaluationStatus::Failure) {
            drift.newly_failing += 1;
        }
        if before == Some(EvaluationStatus::Failure) {
            drift.newly_passing_or_gone += 1;
        }
        if drift.changes.len() < limit {
            drift.changes.push(EvaluationChange {
                rule_id: rule_id.to_string(),
                resource_id: resource_id.to_string(),
                previous_status: before,
                current_status: after,
            });
        }
    };
    loop {
        let order = match (previous.peek(), current.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(before), Some(after)) => {
                (&before.rule_id, &before.resource_id).cmp(&(&after.rule_id, &after.resource_id))
            }
        };
        match order {
            Ordering::Less => {
                if let Some(before) = previous.next() {
                    record(
                        &before.rule_id,
                        &before.resource_id,
                        Some(before.status),
                        None,
                    );
                }
            }
            Ordering::Greater => {
                if let Some(after) = current.next() {
                    record(&after.rule_id, &after.resource_id, None, Some(after.status));
                }
            }
            Ordering::Equal => {
                if let (Some(before), Some(after)) = (previous.next(), current.next()) {
                    record(
                        &after.rule_id,
                        &after.resource_id,
                        Some(before.status),
                        Some(after.status),
                    );
                }
            }
        }
    }
    drift
}

/// SCC `ReportViolationDataPoint`: one report's controls summary in a drift series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViolationDataPoint {
    /// The report.
    pub report_id: String,
    /// The report group (profile + scope + attachment).
    pub report_group_id: String,
    /// When the scan ran (RFC 3339).
    pub scan_time: String,
    /// The controls summary.
    pub controls_summary: ComplianceStats,
}

/// SCC `ReportViolationsDrift`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViolationsDrift {
    /// The account.
    pub home_account_id: String,
    /// The report group.
    pub report_group_id: String,
    /// One data point per report, oldest first.
    pub data_points: Vec<ViolationDataPoint>,
}

impl ViolationDataPoint {
    /// The data point of a report.
    pub fn of(report_id: &str, report_group_id: &str, scan_time: &str, rollup: &Rollup) -> Self {
        ViolationDataPoint {
            report_id: report_id.into(),
            report_group_id: report_group_id.into(),
            scan_time: scan_time.into(),
            controls_summary: rollup.controls_summary.stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rollup::RollupBuilder;
    use crate::scan::tests::{now, plan_with, resources};

    fn key(rule: &str, resource: &str, status: EvaluationStatus) -> EvaluationKey {
        EvaluationKey {
            rule_id: rule.into(),
            resource_id: resource.into(),
            status,
        }
    }

    #[test]
    fn merge_finds_flips_additions_and_removals() {
        use EvaluationStatus::*;
        let previous = vec![
            key("a", "1", Pass),
            key("a", "2", Failure),
            key("b", "1", Pass),
            key("c", "9", Failure),
        ];
        let current = vec![
            key("a", "1", Failure),
            key("a", "2", Failure),
            key("a", "3", Pass),
            key("b", "1", Pass),
        ];
        let drift = diff_evaluations(previous, current, 2);
        assert_eq!(drift.total_changes, 3);
        assert_eq!(drift.newly_failing, 1);
        assert_eq!(drift.newly_passing_or_gone, 1);
        assert_eq!(drift.changes.len(), 2, "limited");
        assert_eq!(drift.changes[0].rule_id, "a");
        assert_eq!(drift.changes[0].previous_status, Some(Pass));
        assert_eq!(drift.changes[0].current_status, Some(Failure));
        assert_eq!(drift.changes[1].resource_id, "3");
        assert_eq!(drift.changes[1].previous_status, None);
    }

    #[test]
    fn rollup_drift_lists_controls_and_resources_that_flipped() {
        let plan = plan_with(json!([]), &[]);
        let mut resources = resources();
        let rollup = |resources: &[palisade_model::resource::Resource]| {
            let mut builder = RollupBuilder::new(&plan);
            builder.add_chunk(resources, &plan.evaluate_chunk(resources, now()));
            builder.finish()
        };
        let before = rollup(&resources);
        resources[1].config = json!({"versioning": {"status": "Enabled"}, "retention_days": 31});
        resources.pop();
        let after = rollup(&resources);
        let drift = diff_rollups(&before, &after);
        assert_eq!(drift.previous_score, Some(40.0));
        assert_eq!(drift.current_score, Some(80.0));
        assert_eq!(
            drift.controls,
            [ControlChange {
                control_id: "cp-9".into(),
                control_name: "CP-9".into(),
                previous_status: Some(ComplianceStatus::NotCompliant),
                current_status: Some(ComplianceStatus::Compliant),
            }]
        );
        let flipped: Vec<(&str, Option<ComplianceStatus>)> = drift
            .resources
            .iter()
            .map(|change| (change.resource_id.as_str(), change.current_status))
            .collect();
        assert_eq!(
            flipped,
            [("b-bad", Some(ComplianceStatus::Compliant)), ("vm-1", None)]
        );
        let point = ViolationDataPoint::of("r2", "g", "2026-03-01T00:00:00Z", &after);
        assert_eq!(point.controls_summary.not_compliant_count, 0);
    }
}
