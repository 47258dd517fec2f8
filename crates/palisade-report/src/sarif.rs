//! SARIF 2.1.0 for CI pipelines (`palisade scan --format sarif`; GitHub code scanning and
//! other SARIF viewers read it). Each rule of the scan is a reporting descriptor, tagged with
//! the controls it serves; each failed evaluation is a result at level `error`, each errored
//! one at level `warning`, located at the resource (a logical location: resources are not
//! files). Passed and skipped evaluations are not results.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::scan;

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
