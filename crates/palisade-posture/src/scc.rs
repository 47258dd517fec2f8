//! SCC v3 `Evaluation` objects (what `GET /reports/{id}/evaluations` returns), built from a
//! [`ScanEvaluation`] and the report's roll-up, so the server can store Palisade's compact
//! evaluations and answer in IBM's shape.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rollup::{ResourceWithStats, RuleWithStats, Tags};
use crate::scan::{EvaluationStatus, ScanEvaluation};

/// SCC `Evaluation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SccEvaluation {
    /// The report.
    pub report_id: String,
    /// The account.
    pub home_account_id: String,
    /// The service of the resource.
    pub component_id: String,
    /// Its display name.
    pub component_name: String,
    /// The assessment (rule).
    pub assessment: SccAssessment,
    /// When the evaluation ran (RFC 3339).
    pub evaluate_time: String,
    /// The resource.
    pub target: SccTarget,
    /// `pass`, `failure`, `error` or `skipped`.
    pub status: EvaluationStatus,
    /// Why, for anything but a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The deciding conditions.
    pub details: SccEvaluationDetails,
    /// Who evaluated (`palisade`).
    pub evaluated_by: String,
}

/// SCC `Assessment` inside an evaluation (`parameters` is required by the SDK).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SccAssessment {
    /// The rule id.
    pub assessment_id: String,
    /// `automated`.
    pub assessment_type: String,
    /// The rule description.
    pub assessment_description: String,
    /// Number of parameters.
    pub parameter_count: usize,
    /// Parameters (names and values the scan used).
    pub parameters: Vec<Value>,
}

/// SCC `TargetInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SccTarget {
    /// The resource id.
    pub id: String,
    /// Its account.
    pub account_id: String,
    /// Its service.
    pub service_name: String,
    /// Its name.
    pub resource_name: String,
    /// Its tags.
    pub tags: Tags,
}

/// SCC `EvaluationDetails`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SccEvaluationDetails {
    /// SCC `EvaluationProperty` list.
    pub properties: Vec<SccEvaluationProperty>,
}

/// SCC `EvaluationProperty` (`operator` is required by the SDK).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SccEvaluationProperty {
    /// The property checked.
    pub property: String,
    /// The operator.
    pub operator: String,
    /// Expected value.
    pub expected_value: Value,
    /// Found value (`null` when missing).
    pub found_value: Value,
}

impl SccEvaluation {
    /// Builds the SCC shape. `rule` and `resource` come from the report's
    /// [`Rollup`](crate::Rollup) (`rules` and `resources`); a resource the roll-up does not
    /// know is described by its id alone.
    pub fn of(
        evaluation: &ScanEvaluation,
        rule: &RuleWithStats,
        resource: Option<&ResourceWithStats>,
        report_id: &str,
        home_account_id: &str,
        evaluate_time: &str,
    ) -> SccEvaluation {
        SccEvaluation {
            report_id: report_id.into(),
            home_account_id: home_account_id.into(),
            component_id: rule.service_name.clone(),
            component_name: rule.service_name.clone(),
            assessment: SccAssessment {
                assessment_id: rule.rule_id.clone(),
                assessment_type: "automated".into(),
                assessment_description: rule.description.clone(),
                parameter_count: 0,
                parameters: Vec::new(),
            },
            evaluate_time: evaluate_time.into(),
            target: SccTarget {
                id: evaluation.resource_id.clone(),
                account_id: resource
                    .map(|resource| resource.account.id.clone())
                    .unwrap_or_default(),
                service_name: rule.service_name.clone(),
                resource_name: resource
                    .map(|resource| resource.resource_name.clone())
                    .unwrap_or_else(|| evaluation.resource_id.clone()),
                tags: resource
                    .map(|resource| resource.tags.clone())
                    .unwrap_or_default(),
            },
            status: evaluation.status,
            reason: evaluation.reason.clone(),
            details: SccEvaluationDetails {
                properties: evaluation
                    .details
                    .iter()
                    .map(|detail| SccEvaluationProperty {
                        property: detail.property.clone(),
                        operator: detail.operator.to_string(),
                        expected_value: detail.expected_value.clone(),
                        found_value: detail.found_value.clone().unwrap_or(Value::Null),
                    })
                    .collect(),
            },
            evaluated_by: "palisade".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rollup::RollupBuilder;
    use crate::scan::tests::{now, plan_with, resources};

    #[test]
    fn failure_carries_target_and_properties_in_scc_shape() {
        let plan = plan_with(json!([]), &[]);
        let resources = resources();
        let evaluations = plan.evaluate_chunk(&resources, now());
        let mut builder = RollupBuilder::new(&plan);
        builder.add_chunk(&resources, &evaluations);
        let rollup = builder.finish();
        let failure = &evaluations[2];
        let scc = SccEvaluation::of(
            failure,
            &rollup.rules[0],
            rollup
                .resources
                .iter()
                .find(|resource| resource.id == failure.resource_id),
            "r1",
            "acct",
            "2026-03-01T00:00:00Z",
        );
        let value = serde_json::to_value(&scc).expect("encodes");
        assert_eq!(value["status"], json!("failure"));
        assert_eq!(value["target"]["resource_name"], json!("bad"));
        assert_eq!(value["assessment"]["parameters"], json!([]));
        assert_eq!(
            value["details"]["properties"][0],
            json!({"property": "versioning.status", "operator": "string_equals",
                   "expected_value": "Enabled", "found_value": "Suspended"})
        );
    }
}
