//! SARIF 2.1.0 for CI pipelines (`palisade scan --format sarif`; GitHub code scanning and
//! other SARIF viewers read it). Each rule of the scan is a reporting descriptor, tagged with
//! the controls it serves; each failed evaluation is a result at level `error`, each errored
//! one at level `warning`, located at the resource (a logical location: resources are not
//! files). Passed and skipped evaluations are not results.
//!
//! [`render_violations`] writes configuration governance violations (`palisade plan check`) the
//! same way: `disallow` violations at level `error`, `audit_log` ones at `warning`.

use palisade_posture::{EvaluationStatus, ScanEvaluation};
use serde_json::{Value, json};

use crate::{Index, ReportData, cell};

/// The SARIF schema this writes.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Builds the SARIF log.
pub fn render_sarif<'e>(
    data: &ReportData<'_>,
    evaluations: impl IntoIterator<Item = &'e ScanEvaluation>,
) -> Value {
    let index = Index::new(data.rollup);
    let rules: Vec<Value> = data
        .rollup
        .rules
        .iter()
        .map(|rule| {
            json!({
                "id": rule.rule_id,
                "name": rule.rule_id,
                "shortDescription": {"text": rule.description},
                "fullDescription": {"text": format!("{} (target: {}/{}; controls: {})",
                    rule.description, rule.service_name, rule.resource_kind,
                    rule.control_names.join(", "))},
                "defaultConfiguration": {"level": "error"},
                "properties": {"tags": rule.control_names},
            })
        })
        .collect();
    let rule_positions: std::collections::HashMap<&str, usize> = data
        .rollup
        .rules
        .iter()
        .enumerate()
        .map(|(position, rule)| (rule.rule_id.as_str(), position))
        .collect();
    let mut results = Vec::new();
    for evaluation in evaluations {
        let level = match evaluation.status {
            EvaluationStatus::Failure => "error",
            EvaluationStatus::Error => "warning",
            EvaluationStatus::Pass | EvaluationStatus::Skipped => continue,
        };
        let resource = index.resources.get(evaluation.resource_id.as_str());
        let name = resource
            .map(|resource| resource.resource_name.as_str())
            .unwrap_or(evaluation.resource_id.as_str());
        let conditions: Vec<String> = evaluation
            .details
            .iter()
            .map(|detail| {
                format!(
                    "{} {} {} (found {})",
                    detail.property,
                    detail.operator,
                    cell(Some(&detail.expected_value)),
                    cell(detail.found_value.as_ref())
                )
            })
            .collect();
        let mut result = json!({
            "ruleId": evaluation.rule_id,
            "level": level,
            "message": {"text": format!("{name}: {}", if conditions.is_empty() {
                evaluation.reason.clone().unwrap_or_else(|| evaluation.status.as_str().into())
            } else {
                conditions.join("; ")
            })},
            "locations": [{"logicalLocations": [{
                "name": name,
                "fullyQualifiedName": evaluation.resource_id,
                "kind": "resource",
            }]}],
            "properties": {
                "status": evaluation.status,
                "details": evaluation.details,
                "service_name": resource.map(|resource| resource.service_name.as_str()),
                "resource_kind": resource.map(|resource| resource.resource_kind.as_str()),
            },
        });
        if let Some(position) = rule_positions.get(evaluation.rule_id.as_str()) {
            result["ruleIndex"] = json!(position);
        }
        results.push(result);
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "palisade",
                "informationUri": "https://github.com/palisade-security/palisade",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "automationDetails": {"id": format!("palisade/{}/{}", data.meta.profile_id, data.meta.report_id)},
            "properties": {
                "profile": data.meta.profile_name,
                "score": data.rollup.score,
            },
            "results": results,
        }],
    })
}

/// A rule that reported violations outside a scan (`palisade plan check`), for
/// [`render_violations`].
#[derive(Debug, Clone, PartialEq)]
pub struct ViolationRule {
    /// The rule's id.
    pub id: String,
    /// What the rule checks.
    pub description: String,
    /// `disallow`, `audit_log` or `none`: the level of its results.
    pub action: String,
}

/// One violation of a [`ViolationRule`] by a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The violated rule.
    pub rule_id: String,
    /// Where: the resource's address or id (a logical location).
    pub location: String,
    /// Why, for people.
    pub message: String,
    /// Machine-readable details (the deciding conditions).
    pub details: Value,
}

/// The SARIF level of an enforcement action: `disallow` blocks (error), `audit_log` lets the
/// change through but records it (warning), a monitor-only rule is a note.
fn level_of(action: &str) -> &'static str {
    match action {
        "disallow" => "error",
        "audit_log" => "warning",
        _ => "note",
    }
}

/// Builds a SARIF log of configuration governance violations (provisioning checks): one
/// reporting descriptor per rule, one result per violation, located at the resource.
pub fn render_violations(
    automation_id: &str,
    rules: &[ViolationRule],
    violations: &[Violation],
) -> Value {
    let positions: std::collections::HashMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(position, rule)| (rule.id.as_str(), position))
        .collect();
    let descriptors: Vec<Value> = rules
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id,
                "name": rule.id,
                "shortDescription": {"text": rule.description},
                "defaultConfiguration": {"level": level_of(&rule.action)},
                "properties": {"enforcement_action": rule.action},
            })
        })
        .collect();
    let results: Vec<Value> = violations
        .iter()
        .map(|violation| {
            let action = positions
                .get(violation.rule_id.as_str())
                .and_then(|position| rules.get(*position))
                .map_or("none", |rule| rule.action.as_str());
            let mut result = json!({
                "ruleId": violation.rule_id,
                "level": level_of(action),
                "message": {"text": format!("{}: {}", violation.location, violation.message)},
                "locations": [{"logicalLocations": [{
                    "name": violation.location,
                    "fullyQualifiedName": violation.location,
                    "kind": "resource",
                }]}],
                "properties": {"enforcement_action": action, "details": violation.details},
            });
            if let Some(position) = positions.get(violation.rule_id.as_str()) {
                result["ruleIndex"] = json!(position);
            }
            result
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "palisade",
                "informationUri": "https://github.com/palisade-security/palisade",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": descriptors,
            }},
            "automationDetails": {"id": automation_id},
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::scan;

    #[test]
    fn governance_violations_take_their_level_from_the_action() {
        let rules = [
            ViolationRule {
                id: "deny".into(),
                description: "d".into(),
                action: "disallow".into(),
            },
            ViolationRule {
                id: "audit".into(),
                description: "a".into(),
                action: "audit_log".into(),
            },
        ];
        let violations = [
            Violation {
                rule_id: "audit".into(),
                location: "aws_s3_bucket.logs".into(),
                message: "acl".into(),
                details: json!([]),
            },
            Violation {
                rule_id: "deny".into(),
                location: "aws_s3_bucket.logs".into(),
                message: "acl".into(),
                details: json!([]),
            },
        ];
        let log = render_violations("palisade/plan", &rules, &violations);
        let results = log["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results[0]["level"], "warning");
        assert_eq!(results[0]["ruleIndex"], 1);
        assert_eq!(results[1]["level"], "error");
        assert_eq!(
            results[1]["locations"][0]["logicalLocations"][0]["name"],
            "aws_s3_bucket.logs"
        );
    }

    #[test]
    fn failures_become_error_results_located_at_the_resource() {
        let (meta, rollup, evaluations) = scan();
        let data = ReportData {
            meta: &meta,
            rollup: &rollup,
            drift: None,
        };
        let log = render_sarif(&data, &evaluations);
        assert_eq!(log["version"], json!("2.1.0"));
        let run = &log["runs"][0];
        assert_eq!(run["tool"]["driver"]["rules"][0]["id"], json!("versioning"));
        assert_eq!(
            run["tool"]["driver"]["rules"][0]["properties"]["tags"],
            json!(["CP-9"])
        );
        let results = run["results"].as_array().expect("results");
        assert_eq!(results.len(), 1, "the pass is not a result");
        assert_eq!(results[0]["level"], json!("error"));
        assert_eq!(results[0]["ruleIndex"], json!(0));
        assert_eq!(
            results[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
            json!("arn:aws:s3:::bad")
        );
        let message = results[0]["message"]["text"].as_str().expect("text");
        assert!(message.contains("found Suspended"), "{message}");
    }
}
