//! OSCAL 1.1.2 assessment-results: one result per report.
//!
//! - `reviewed-controls` lists every control of the profile;
//! - one `observation` per rule (method `TEST`, type `finding`), whose subjects are the
//!   resources it failed on, with the pass/fail/error counts in its description;
//! - one `finding` per evaluated control, targeting the control's objective, `satisfied` when
//!   compliant and `not-satisfied` otherwise (reason `fail` for not compliant, `other` with the
//!   SCC status in `remarks` for unable-to-perform or user-evaluation-required), linked to the
//!   observations of its rules. Not-applicable controls have no finding.
//!
//! UUIDs are version 5, derived from the report id and what they name, so rendering the same
//! report twice gives the same document. OSCAL control ids are tokens (they must start with a
//! letter or `_`), so ids such as CIS's `1.4` are written `cis-1.4`.

use std::collections::HashMap;

use palisade_posture::rollup::ComplianceStatus;
use palisade_posture::{EvaluationStatus, ScanEvaluation};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Index, ReportData};

/// The OSCAL version written.
pub const OSCAL_VERSION: &str = "1.1.2";

/// Builds the assessment-results document.
pub fn render_assessment_results<'e>(
    data: &ReportData<'_>,
    evaluations: impl IntoIterator<Item = &'e ScanEvaluation>,
) -> Value {
    let index = Index::new(data.rollup);
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_URL, data.meta.report_id.as_bytes());
    let uuid = |name: &str| Uuid::new_v5(&namespace, name.as_bytes()).to_string();
    let mut failed_subjects: HashMap<&str, Vec<Value>> = HashMap::new();
    for evaluation in evaluations {
        if evaluation.status != EvaluationStatus::Failure {
            continue;
        }
        let Some(rule) = index.rules.get(evaluation.rule_id.as_str()) else {
            continue;
        };
        let title = index
            .resources
            .get(evaluation.resource_id.as_str())
            .map(|resource| resource.resource_name.clone())
            .unwrap_or_else(|| evaluation.resource_id.clone());
        failed_subjects
            .entry(rule.rule_id.as_str())
            .or_default()
            .push(json!({
                "subject-uuid": uuid(&format!("resource:{}", evaluation.resource_id)),
                "type": "inventory-item",
                "title": title,
                "props": [{"name": "resource-id", "ns": "https://palisade.dev/ns/oscal",
                           "value": non_empty(&evaluation.resource_id)}],
            }));
    }
    let collected = data.meta.scan_time.to_rfc3339();
    let observations: Vec<Value> = data
        .rollup
        .rules
        .iter()
        .map(|rule| {
            let stats = &rule.evaluations;
            let mut observation = json!({
                "uuid": uuid(&format!("observation:{}", rule.rule_id)),
                "title": non_empty(&rule.rule_id),
                "description": non_empty(&format!(
                    "{} — {} passed, {} failed, {} errored, {} skipped.",
                    if rule.description.is_empty() { &rule.rule_id } else { &rule.description },
                    stats.pass_count, stats.failure_count, stats.error_count, stats.skipped_count
                )),
                "methods": ["TEST"],
                "types": ["finding"],
                "collected": collected,
            });
            if let Some(subjects) = failed_subjects.remove(rule.rule_id.as_str()) {
                observation["subjects"] = Value::Array(subjects);
            }
            observation
        })
        .collect();
    let mut findings = Vec::new();
    for control in &data.rollup.controls {
        let (state, reason) = match control.stats.status {
            ComplianceStatus::NotApplicable => continue,
            ComplianceStatus::Compliant => ("satisfied", "pass"),
            ComplianceStatus::NotCompliant => ("not-satisfied", "fail"),
            ComplianceStatus::UnableToPerform | ComplianceStatus::UserEvaluationRequired => {
                ("not-satisfied", "other")
            }
        };
        let related: Vec<Value> = control
            .control_specifications
            .iter()
            .flat_map(|specification| &specification.assessments)
            .filter(|assessment| index.rules.contains_key(assessment.assessment_id.as_str()))
            .map(|assessment| {
                json!({"observation-uuid": uuid(&format!("observation:{}", assessment.assessment_id))})
            })
            .collect();
        let mut finding = json!({
            "uuid": uuid(&format!("finding:{}", control.id)),
            "title": non_empty(&format!("{} {}", control.control_name, control.control_description)),
            "description": non_empty(&format!(
                "Control {} is {} ({} of {} specifications compliant).",
                control.control_name,
                control.stats.status.as_str(),
                control.stats.compliant_count,
                control.stats.total_count
            )),
            "target": {
                "type": "objective-id",
                "target-id": control_token(&control.id),
                "status": {"state": state, "reason": reason,
                           "remarks": format!("SCC status: {}", control.stats.status.as_str())},
            },
        });
        if !related.is_empty() {
            finding["related-observations"] = Value::Array(related);
        }
        findings.push(finding);
    }
    let mut result = json!({
        "uuid": uuid("result"),
        "title": non_empty(&format!("Palisade scan of {}", data.meta.profile_name)),
        "description": non_empty(&format!(
            "Compliance score {}% ({} passed of {} evaluations).",
            data.rollup.score.percent, data.rollup.score.passed, data.rollup.score.total_count
        )),
        "start": collected,
        "end": collected,
        "reviewed-controls": {"control-selections": [{
            "include-controls": data.rollup.controls.iter()
                .map(|control| json!({"control-id": control_token(&control.id)}))
                .collect::<Vec<_>>(),
        }]},
    });
    if data.rollup.controls.is_empty() {
        result["reviewed-controls"] = json!({"control-selections": [{"include-all": {}}]});
    }
    if !observations.is_empty() {
        result["observations"] = Value::Array(observations);
    }
    if !findings.is_empty() {
        result["findings"] = Value::Array(findings);
    }
    let plan_resource = uuid("assessment-plan");
    json!({
        "assessment-results": {
            "uuid": uuid("assessment-results"),
            "metadata": {
                "title": non_empty(&format!("Palisade assessment results: {}", data.meta.profile_name)),
                "last-modified": data.meta.created_on.to_rfc3339(),
                "version": non_empty(&data.meta.report_id),
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {"href": format!("#{plan_resource}")},
            "results": [result],
            "back-matter": {"resources": [{
                "uuid": plan_resource,
                "title": non_empty(&format!("Profile {} {}", data.meta.profile_name, data.meta.profile_version)),
                "description": "The Palisade profile and attachment this scan assessed.",
                "props": [{"name": "profile-id", "ns": "https://palisade.dev/ns/oscal",
                           "value": non_empty(&data.meta.profile_id)}],
            }]},
        }
    })
}

/// OSCAL strings must not be empty (`^\S(.*\S)?$`): empty or blank text becomes a dash, and
/// surrounding whitespace is trimmed.
fn non_empty(text: &str) -> String {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        "-".into()
    } else {
        trimmed.to_string()
    }
}

/// An OSCAL token for a control id: letters, digits, `.`, `-`, `_`, starting with a letter or
/// `_`.
pub fn control_token(id: &str) -> String {
    let mut token: String = id
        .chars()
        .map(|character| {
            if character.is_alphanumeric() || matches!(character, '.' | '-' | '_') {
                character
            } else {
                '-'
            }
        })
        .collect();
    if !token
        .chars()
        .next()
        .is_some_and(|first| first.is_alphabetic() || first == '_')
    {
        token = format!("cis-{token}");
    }
    token
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::scan;

    #[test]
    fn result_has_observations_findings_and_stable_uuids() {
        let (meta, rollup, evaluations) = scan();
        let data = ReportData {
            meta: &meta,
            rollup: &rollup,
            drift: None,
        };
        let document = render_assessment_results(&data, &evaluations);
        let results = &document["assessment-results"]["results"][0];
        assert_eq!(
            results["reviewed-controls"]["control-selections"][0]["include-controls"][0]["control-id"],
            json!("cp-9")
        );
        let observation = &results["observations"][0];
        assert_eq!(observation["subjects"].as_array().map(Vec::len), Some(1));
        assert_eq!(observation["subjects"][0]["title"], json!("bad-bücket"));
        let finding = &results["findings"][0];
        assert_eq!(finding["target"]["status"]["state"], json!("not-satisfied"));
        assert_eq!(
            finding["related-observations"][0]["observation-uuid"],
            observation["uuid"]
        );
        assert_eq!(
            render_assessment_results(&data, &evaluations),
            document,
            "deterministic"
        );
    }

    #[test]
    fn control_ids_become_oscal_tokens() {
        assert_eq!(control_token("ac-2.1"), "ac-2.1");
        assert_eq!(control_token("1.4"), "cis-1.4");
        assert_eq!(control_token("a b"), "a-b");
    }
}
