//! Rule test cases: the file format shared by this crate's tests and `palisade rules test`.
//!
//! A case is a YAML (or JSON) document:
//!
//! ```yaml
//! note: private buckets pass, public ones fail      # what the case shows
//! rules:                                           # one rule or a list (SCC JSON or Rego)
//!   id: private-buckets
//!   target: {service_name: cloud-object-storage, resource_kind: bucket}
//!   required_config: {property: public, operator: is_false}
//! params: {quota: 100}                             # optional attachment parameter values
//! profile_defaults: {}                             # optional profile default values
//! now: 2026-03-01T00:00:00Z                        # optional; default 2026-01-01T00:00:00Z
//! resources:                                       # normalised resources
//!   - {id: b1, service_name: cloud-object-storage, resource_kind: bucket, config: {public: false}}
//!   - {id: b2, service_name: cloud-object-storage, resource_kind: bucket, config: {public: true}}
//! want:                                            # every evaluation, exactly
//!   - {resource: b1, status: pass}                 # `rule:` may be left out with one rule
//!   - resource: b2
//!     status: failure                              # pass | failure | error | not_applicable
//!     details:                                     # optional; fields given are compared, in order
//!       - {property: public, operator: is_false, found_value: true, reason_contains: "not false"}
//! ```
//!
//! Invalid rules are cases too: `want_errors: [{pointer: /required_config/operator,
//! message_contains: unknown operator, rule: 0}]` lists every expected validation error.
//! Template cases give `templates`, `request` and any of `want_config`, `want_patch`,
//! `want_skipped` (the skipped properties).
//!
//! `want` must list every evaluation the rules produce (that is what catches a rule applying
//! where it should not); `not_applicable` states that a rule produces none for a resource.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use palisade_model::resource::Resource;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::compile::RuleSet;
use crate::eval::{Detail, Evaluation, Status};
use crate::model::Rule;
use crate::params::ParameterValues;
use crate::templates::{PatchOperation, Template, apply_templates};

/// The `now` of a case that does not give one, so cases stay deterministic.
pub const DEFAULT_NOW: &str = "2026-01-01T00:00:00Z";

/// A parsed case file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    pub note: String,
    /// A rule or a list of rules, as JSON.
    #[serde(default)]
    pub rules: Option<Value>,
    /// Attachment parameter values.
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// Profile default parameter values.
    #[serde(default)]
    pub profile_defaults: BTreeMap<String, Value>,
    /// Evaluation time.
    #[serde(default)]
    pub now: Option<DateTime<Utc>>,
    /// Resources, as JSON.
    #[serde(default)]
    pub resources: Vec<Value>,
    /// Expected evaluations.
    #[serde(default)]
    pub want: Vec<WantEvaluation>,
    /// Expected validation errors (the rules are then expected to be invalid).
    #[serde(default)]
    pub want_errors: Vec<WantError>,
    /// Templates to apply to `request`.
    #[serde(default)]
    pub templates: Vec<Template>,
    /// A provisioning request's config.
    #[serde(default)]
    pub request: Option<Value>,
    /// Expected config after templates.
    #[serde(default)]
    pub want_config: Option<Value>,
    /// Expected patch.
    #[serde(default)]
    pub want_patch: Option<Vec<PatchOperation>>,
    /// Expected skipped properties.
    #[serde(default)]
    pub want_skipped: Option<Vec<String>>,
}

/// An expected evaluation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WantEvaluation {
    /// Resource id.
    pub resource: String,
    /// Rule id; may be left out when the case has one rule.
    #[serde(default)]
    pub rule: Option<String>,
    /// Expected status.
    pub status: WantStatus,
    /// Expected details, compared in order on the fields given.
    #[serde(default)]
    pub details: Option<Vec<WantDetail>>,
}

/// An expected status, or that no evaluation happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WantStatus {
    /// `pass`
    Pass,
    /// `failure`
    Failure,
    /// `error`
    Error,
    /// The rule does not apply to the resource.
    NotApplicable,
}

/// An expected detail; only the fields given are compared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WantDetail {
    /// Expected property.
    #[serde(default)]
    pub property: Option<String>,
    /// Expected operator.
    #[serde(default)]
    pub operator: Option<String>,
    /// Expected expected-value (`null` when the operator takes none).
    #[serde(default, deserialize_with = "present")]
    pub expected_value: Option<Value>,
    /// Expected found value (`null` for a missing property).
    #[serde(default, deserialize_with = "present")]
    pub found_value: Option<Value>,
    /// Text the reason must contain.
    #[serde(default)]
    pub reason_contains: Option<String>,
}

/// An expected validation error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WantError {
    /// Index of the rule in the list (0 for a single rule); any rule when left out.
    #[serde(default)]
    pub rule: Option<usize>,
    /// JSON pointer, relative to the rule.
    pub pointer: String,
    /// Text the message must contain.
    #[serde(default)]
    pub message_contains: Option<String>,
}

/// Keeps an explicit `null` as `Some(Value::Null)` (absent stays `None`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A case that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// The file is not a valid case.
    #[error("not a valid case file: {0}")]
    Format(String),
    /// A resource does not decode.
    #[error("resources/{index}: {message}")]
    Resource {
        /// Position in `resources`.
        index: usize,
        /// Why.
        message: String,
    },
    /// The case checks nothing, so it could never fail.
    #[error("the case checks nothing: give `want`, `want_errors`, or `request` with a `want_*`")]
    NothingChecked,
}

/// The result of running a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    /// The case's note.
    pub note: String,
    /// How many expectations were checked.
    pub checked: usize,
    /// Every expectation that did not hold, in words; empty when the case passes.
    pub mismatches: Vec<String>,
}

impl CaseReport {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// What a case evaluator receives: the parsed rules and their compiled form.
pub struct CaseInput<'a> {
    /// Rules as parsed.
    pub rules: &'a [Rule],
    /// Rules compiled with the case's parameter values.
    pub rule_set: &'a RuleSet,
    /// The case's parameter values.
    pub values: &'a ParameterValues,
    /// The case's resources.
    pub resources: &'a [Resource],
    /// The case's `now`.
    pub now: DateTime<Utc>,
}

impl Case {
    /// Parses a case from YAML (JSON is YAML too).
    pub fn parse(text: &str) -> Result<Case, CaseError> {
        serde_yaml::from_str(text).map_err(|error| CaseError::Format(error.to_string()))
    }

    /// Runs the case with the compiled evaluator.
    pub fn run(&self) -> Result<CaseReport, CaseError> {
        self.run_with(|input| input.rule_set.evaluate_batch(input.resources, input.now))
    }

    /// Runs the case with another evaluator (the tests also run the reference evaluator).
    pub fn run_with(
        &self,
        evaluate: impl Fn(&CaseInput<'_>) -> Vec<Evaluation>,
    ) -> Result<CaseReport, CaseError> {
        let mut report = CaseReport {
            note: self.note.clone(),
            checked: 0,
            mismatches: Vec::new(),
        };
        let template_checks = self.want_config.is_some() as usize
            + self.want_patch.is_some() as usize
            + self.want_skipped.is_some() as usize;
        if self.want.is_empty()
            && self.want_errors.is_empty()
            && (self.request.is_none() || template_checks == 0)
        {
            return Err(CaseError::NothingChecked);
        }
        if let Some(rules) = &self.rules {
            self.check_rules(rules, &evaluate, &mut report)?;
        } else if !self.want.is_empty() || !self.want_errors.is_empty() {
            return Err(CaseError::Format(
                "`want` and `want_errors` need `rules`".into(),
            ));
        }
        if let Some(request) = &self.request {
            self.check_templates(request, &mut report);
        }
        Ok(report)
    }

    fn check_rules(
        &self,
        document: &Value,
        evaluate: &impl Fn(&CaseInput<'_>) -> Vec<Evaluation>,
        report: &mut CaseReport,
    ) -> Result<(), CaseError> {
        let values = ParameterValues {
            attachment: self.params.clone(),
            profile_defaults: self.profile_defaults.clone(),
        };
        let (rules, rule_set) = match RuleSet::parse_and_compile(document, &values) {
            Err(errors) => {
                report.checked += self.want_errors.len().max(1);
                if self.want_errors.is_empty() {
                    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    report
                        .mismatches
                        .push(format!("rules are invalid: {}", listed.join("; ")));
                } else {
                    compare_errors(&self.want_errors, &errors, report);
                }
                return Ok(());
            }
            Ok(compiled) => compiled,
        };
        if !self.want_errors.is_empty() {
            report.checked += self.want_errors.len();
            report.mismatches.push(format!(
                "expected {} validation error(s), but the rules are valid",
                self.want_errors.len()
            ));
            return Ok(());
        }
        let resources = self
            .resources
            .iter()
            .enumerate()
            .map(|(index, value)| {
                serde_json::from_value::<Resource>(value.clone()).map_err(|error| {
                    CaseError::Resource {
                        index,
                        message: error.to_string(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let now = match self.now {
            Some(now) => now,
            None => DateTime::parse_from_rfc3339(DEFAULT_NOW)
                .map_err(|error| CaseError::Format(error.to_string()))?
                .with_timezone(&Utc),
        };
        let evaluations = evaluate(&CaseInput {
            rules: &rules,
            rule_set: &rule_set,
            values: &values,
            resources: &resources,
            now,
        });
        let single_rule_id = (rules.len() == 1).then(|| rules[0].id.as_str());
        compare_evaluations(&self.want, &evaluations, single_rule_id, report);
        Ok(())
    }

    fn check_templates(&self, request: &Value, report: &mut CaseReport) {
        let applied = apply_templates(request, &self.templates);
        if let Some(want_config) = &self.want_config {
            report.checked += 1;
            if *want_config != applied.config {
                report.mismatches.push(format!(
                    "config: want {want_config}, got {}",
                    applied.config
                ));
            }
        }
        if let Some(want_patch) = &self.want_patch {
            report.checked += 1;
            if *want_patch != applied.patch {
                report.mismatches.push(format!(
                    "patch: want {}, got {}",
                    serde_json::to_string(want_patch).unwrap_or_default(),
                    serde_json::to_string(&applied.patch).unwrap_or_default()
                ));
            }
        }
        if let Some(want_skipped) = &self.want_skipped {
            report.checked += 1;
            let skipped: Vec<&str> = applied
                .skipped
                .iter()
                .map(|skip| skip.property.as_str())
                .collect();
            if *want_skipped != skipped {
                report
                    .mismatches
                    .push(format!("skipped: want {want_skipped:?}, got {skipped:?}"));
            }
        }
    }
}

fn compare_errors(
    want_errors: &[WantError],
    errors: &[crate::validate::ValidationError],
    report: &mut CaseReport,
) {
    let mut unmatched: Vec<&crate::validate::ValidationError> = errors.iter().collect();
    for want in want_errors {
        let position = unmatched.iter().position(|error| {
            error.pointer == want.pointer
                && want.rule.is_none_or(|rule| rule == error.rule_index)
                && want
                    .message_contains
                    .as_ref()
                    .is_none_or(|needle| error.message.contains(needle.as_str()))
        });
        match position {
            Some(position) => {
                unmatched.remove(position);
            }
            None => report.mismatches.push(format!(
                "no validation error at {} (rule {:?}) containing {:?}",
                want.pointer, want.rule, want.message_contains
            )),
        }
    }
    for error in unmatched {
        report
            .mismatches
            .push(format!("unexpected validation error: {error}"));
    }
}

fn compare_evaluations(
    want: &[WantEvaluation],
    evaluations: &[Evaluation],
    single_rule_id: Option<&str>,
    report: &mut CaseReport,
) {
    let mut matched = vec![false; evaluations.len()];
    for expected in want {
        report.checked += 1;
        let Some(rule_id) = expected.rule.as_deref().or(single_rule_id) else {
            report.mismatches.push(format!(
                "resource {}: name the `rule` (the case has several rules)",
                expected.resource
            ));
            continue;
        };
        let position = evaluations.iter().position(|evaluation| {
            evaluation.rule_id == rule_id && evaluation.resource_id == expected.resource
        });
        let label = format!("rule {rule_id} on resource {}", expected.resource);
        match (expected.status, position) {
            (WantStatus::NotApplicable, None) => {}
            (WantStatus::NotApplicable, Some(position)) => {
                matched[position] = true;
                report.mismatches.push(format!(
                    "{label}: want not_applicable, got {}",
                    evaluations[position].status.as_str()
                ));
            }
            (_, None) => report
                .mismatches
                .push(format!("{label}: no evaluation (rule did not apply)")),
            (status, Some(position)) => {
                matched[position] = true;
                let evaluation = &evaluations[position];
                let want_status = match status {
                    WantStatus::Pass => Status::Pass,
                    WantStatus::Failure => Status::Failure,
                    _ => Status::Error,
                };
                if evaluation.status != want_status {
                    report.mismatches.push(format!(
                        "{label}: want {}, got {} {}",
                        want_status.as_str(),
                        evaluation.status.as_str(),
                        serde_json::to_string(&evaluation.details).unwrap_or_default()
                    ));
                }
                if let Some(want_details) = &expected.details {
                    compare_details(&label, want_details, &evaluation.details, report);
                }
            }
        }
    }
    for (evaluation, was_matched) in evaluations.iter().zip(matched) {
        if !was_matched {
            report.mismatches.push(format!(
                "unexpected evaluation: rule {} on resource {} is {}",
                evaluation.rule_id,
                evaluation.resource_id,
                evaluation.status.as_str()
            ));
        }
    }
}

fn compare_details(label: &str, want: &[WantDetail], got: &[Detail], report: &mut CaseReport) {
    if want.len() != got.len() {
        report.mismatches.push(format!(
            "{label}: want {} detail(s), got {}: {}",
            want.len(),
            got.len(),
            serde_json::to_string(got).unwrap_or_default()
        ));
        return;
    }
    for (index, (want, got)) in want.iter().zip(got).enumerate() {
        let found = got.found_value.clone().unwrap_or(Value::Null);
        let differences = [
            want.property
                .as_ref()
                .filter(|property| **property != got.property)
                .map(|property| format!("property want {property:?}, got {:?}", got.property)),
            want.operator
                .as_ref()
                .filter(|operator| **operator != got.operator)
                .map(|operator| format!("operator want {operator:?}, got {:?}", got.operator)),
            want.expected_value
                .as_ref()
                .filter(|expected| **expected != got.expected_value)
                .map(|expected| {
                    format!("expected_value want {expected}, got {}", got.expected_value)
                }),
            want.found_value
                .as_ref()
                .filter(|expected| **expected != found)
                .map(|expected| format!("found_value want {expected}, got {found}")),
            want.reason_contains
                .as_ref()
                .filter(|needle| !got.reason.contains(needle.as_str()))
                .map(|needle| format!("reason {:?} does not contain {needle:?}", got.reason)),
        ];
        for difference in differences.into_iter().flatten() {
            report
                .mismatches
                .push(format!("{label}: detail {index}: {difference}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = r#"
note: public buckets fail
rules:
  id: private
  target: {service_name: cos, resource_kind: bucket}
  required_config: {property: public, operator: is_false}
resources:
  - {id: b1, service_name: cos, resource_kind: bucket, config: {public: false}}
  - {id: b2, service_name: cos, resource_kind: bucket, config: {public: true}}
  - {id: v1, service_name: vpc, resource_kind: vpc}
want:
  - {resource: b1, status: pass}
  - resource: b2
    status: failure
    details: [{property: public, found_value: true, reason_contains: "not false"}]
  - {resource: v1, status: not_applicable}
"#;

    #[test]
    fn a_correct_case_passes() {
        let report = Case::parse(CASE).expect("parses").run().expect("runs");
        assert!(report.passed(), "{:?}", report.mismatches);
        assert_eq!(report.checked, 3);
    }

    #[test]
    fn a_wrong_expectation_is_reported() {
        let wrong = CASE.replace(
            "{resource: b1, status: pass}",
            "{resource: b1, status: error}",
        );
        let report = Case::parse(&wrong).expect("parses").run().expect("runs");
        assert_eq!(report.mismatches.len(), 1, "{:?}", report.mismatches);
        assert!(report.mismatches[0].contains("want error, got pass"));
    }

    #[test]
    fn an_unlisted_evaluation_is_reported() {
        let partial = CASE.replace("  - {resource: b1, status: pass}\n", "");
        let report = Case::parse(&partial).expect("parses").run().expect("runs");
        assert!(
            report.mismatches[0].contains("unexpected evaluation"),
            "{:?}",
            report.mismatches
        );
    }

    #[test]
    fn a_case_without_expectations_is_refused() {
        let empty = "note: nothing\nrules: {id: r, target: {service_name: s, resource_kind: k}, required_config: {property: a, operator: is_empty}}\n";
        let error = Case::parse(empty)
            .expect("parses")
            .run()
            .expect_err("checks nothing");
        assert_eq!(error, CaseError::NothingChecked);
        assert!(matches!(
            Case::parse("note: x\nwnat: []\n"),
            Err(CaseError::Format(_))
        ));
    }
}
