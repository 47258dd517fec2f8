//! The scan: every rule of every control of a profile, with one attachment's parameters, over
//! the resources in scope.
//!
//! A [`ScanPlan`] is built once per scan: it resolves the profile's controls against the
//! libraries, finds each automated assessment's rule, works out each rule's parameter values
//! (attachment value for that assessment, else for any assessment, else the profile default,
//! else the rule's own default) and compiles the rules. Resources are then evaluated a chunk at
//! a time with [`ScanPlan::evaluate_chunk`] (rayon inside a chunk), so a scan of 100,000
//! resources never holds more than one chunk of resources and evaluations: the caller persists
//! each chunk's evaluations and feeds them to a [`crate::rollup::RollupBuilder`].
//!
//! Evaluation statuses: `pass`, `failure`, `error` come from the rule engine; `skipped` marks a
//! (rule, resource) pair the rule targets but that could not be evaluated because the rule
//! itself does not compile (a broken custom rule must not abort the scan of the others).
//! Manual assessments produce no per-resource evaluation: they are decided by attestations
//! (see [`ManualVerdict`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use palisade_model::resource::Resource;
use palisade_rules::{Detail, ParameterValues, Rule, RuleSet, Status};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{
    Assessment, Attestation, AttestedStatus, ControlLibrary, DefaultParameter, Parameter, Profile,
    UnknownControl,
};

/// The status of one (rule, resource) evaluation (SCC `Evaluation.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationStatus {
    /// The resource complies.
    Pass,
    /// The resource does not comply.
    Failure,
    /// The rule could not be decided for the resource.
    Error,
    /// The rule targets the resource but was not run (the rule does not compile).
    Skipped,
}

impl EvaluationStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EvaluationStatus::Pass => "pass",
            EvaluationStatus::Failure => "failure",
            EvaluationStatus::Error => "error",
            EvaluationStatus::Skipped => "skipped",
        }
    }
}

impl From<Status> for EvaluationStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pass => EvaluationStatus::Pass,
            Status::Failure => EvaluationStatus::Failure,
            Status::Error => EvaluationStatus::Error,
        }
    }
}

/// One evaluation of a scan: one rule on one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanEvaluation {
    /// The rule (= the assessment id).
    pub rule_id: String,
    /// The resource.
    pub resource_id: String,
    /// The outcome.
    pub status: EvaluationStatus,
    /// Why (empty on pass): the properties checked with expected and found values.
    #[serde(default)]
    pub details: Vec<Detail>,
    /// A one-line reason for failures, errors and skips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A plan that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The profile picks controls that are not in the libraries.
    #[error("the profile picks unknown controls: {}", join(.0))]
    UnknownControls(Vec<UnknownControl>),
}

fn join(errors: &[UnknownControl]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a scan needs besides the resources.
#[derive(Debug, Clone, Copy)]
pub struct ScanInput<'a> {
    /// The attached profile.
    pub profile: &'a Profile,
    /// The libraries its controls come from.
    pub libraries: &'a [ControlLibrary],
    /// The rules available (built-in and custom); assessments name them by id.
    pub rules: &'a [Rule],
    /// The attachment's parameter values.
    pub attachment_parameters: &'a [Parameter],
    /// Attestations of manual assessments.
    pub attestations: &'a [Attestation],
    /// The scan's time: attestation expiry and time-based operators are judged against it.
    pub now: DateTime<Utc>,
}

/// A rule of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedRule {
    /// The rule's id.
    pub rule_id: String,
    /// The rule's description.
    pub description: String,
    /// Target service.
    pub service_name: String,
    /// Target kind.
    pub resource_kind: String,
    /// The names of the controls whose assessments use the rule, in profile order.
    pub control_names: Vec<String>,
    /// The parameter values the rule was compiled with (resolved as SCC resolves them).
    pub parameters: BTreeMap<String, Value>,
    /// Why the rule does not compile; its targeted resources are then `skipped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
}

/// How an assessment of the plan is decided.
#[derive(Debug, Clone, PartialEq)]
pub enum AssessmentKind {
    /// By a rule (index into [`ScanPlan::rules`]).
    Rule(usize),
    /// The rule named by the assessment does not exist: unable to perform.
    MissingRule,
    /// By a user.
    Manual(ManualVerdict),
}

/// The state of a manual assessment at scan time.
#[derive(Debug, Clone, PartialEq)]
pub enum ManualVerdict {
    /// No attestation in force: `user_evaluation_required`.
    Required,
    /// An attestation in force decides it.
    Attested(Attestation),
}

/// An assessment of the plan, with its parameters' effective values.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAssessment {
    /// The assessment as the library defines it, `parameters[].parameter_value` filled in.
    pub assessment: Assessment,
    /// How it is decided.
    pub kind: AssessmentKind,
}

/// A specification of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSpecification {
    /// Specification id.
    pub id: String,
    /// Specification description.
    pub description: String,
    /// Target service.
    pub component_id: String,
    /// Target service display name.
    pub component_name: String,
    /// Environment.
    pub environment: String,
    /// `user` or `provider`.
    pub responsibility: Option<String>,
    /// Its assessments.
    pub assessments: Vec<PlannedAssessment>,
}

/// A control of the plan, in profile order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedControl {
    /// The library.
    pub control_library_id: String,
    /// The library version.
    pub control_library_version: String,
    /// The control id.
    pub control_id: String,
    /// The control name (`AC-2`).
    pub control_name: String,
    /// The control description.
    pub control_description: String,
    /// The control category.
    pub control_category: Option<String>,
    /// Its specifications.
    pub specifications: Vec<PlannedSpecification>,
}

/// Rules compiled together: one set of non-conflicting parameter values.
#[derive(Debug)]
struct RulePartition {
    rule_set: RuleSet,
    /// Partition-local rule index → plan rule index.
    plan_indices: Vec<usize>,
}

/// A compiled scan of one attachment: build once, evaluate chunk after chunk.
#[derive(Debug)]
pub struct ScanPlan {
    /// The rules, each once, in the order the profile first uses them.
    pub rules: Vec<PlannedRule>,
    /// The controls, in profile order (disabled controls left out).
    pub controls: Vec<PlannedControl>,
    partitions: Vec<RulePartition>,
    rule_index_by_id: HashMap<String, usize>,
    /// (service_name, resource_kind) → indices of broken rules targeting it.
    broken_by_target: HashMap<(String, String), Vec<usize>>,
}

impl ScanPlan {
    /// Builds the plan. Unknown controls are an error; a rule that does not exist or does not
    /// compile is not (the assessment reports `unable_to_perform`, resources `skipped`).
    pub fn new(input: ScanInput<'_>) -> Result<ScanPlan, PlanError> {
        let resolved = input
            .profile
            .resolve(input.libraries)
            .map_err(PlanError::UnknownControls)?;
        let rules_by_id: HashMap<&str, &Rule> = input
            .rules
            .iter()
            .map(|rule| (rule.id.as_str(), rule))
            .collect();
        let mut plan = ScanPlan {
            rules: Vec::new(),
            controls: Vec::new(),
            partitions: Vec::new(),
            rule_index_by_id: HashMap::new(),
            broken_by_target: HashMap::new(),
        };
        let mut plan_rules: Vec<&Rule> = Vec::new();
        for (library, control) in resolved {
            if !control.is_enabled() {
                continue;
            }
            let mut planned_control = PlannedControl {
                control_library_id: library.id.clone(),
                control_library_version: library.control_library_version.clone(),
                control_id: control.control_id.clone(),
                control_name: control.control_name.clone(),
                control_description: control.control_description.clone(),
                control_category: control.control_category.clone(),
                specifications: Vec::new(),
            };
            for specification in &control.control_specifications {
                let mut assessments = Vec::new();
                for assessment in &specification.assessments {
                    let kind = if assessment.is_manual() {
                        AssessmentKind::Manual(manual_verdict(
                            assessment,
                            &control.control_id,
                            &control.control_name,
                            input.attestations,
                            input.now,
                        ))
                    } else if let Some(rule) = rules_by_id.get(assessment.assessment_id.as_str()) {
                        let index = match plan.rule_index_by_id.get(&rule.id) {
                            Some(index) => *index,
                            None => {
                                let index = plan.rules.len();
                                plan.rule_index_by_id.insert(rule.id.clone(), index);
                                plan.rules.push(PlannedRule {
                                    rule_id: rule.id.clone(),
                                    description: rule.description.clone().unwrap_or_default(),
                                    service_name: rule.target.service_name.clone(),
                                    resource_kind: rule.target.resource_kind.clone(),
                                    control_names: Vec::new(),
                                    parameters: effective_parameters(
                                        rule,
                                        input.attachment_parameters,
                                        &input.profile.default_parameters,
                                    ),
                                    broken: None,
                                });
                                plan_rules.push(rule);
                                index
                            }
                        };
                        let names = &mut plan.rules[index].control_names;
                        if !names.contains(&control.control_name) {
                            names.push(control.control_name.clone());
                        }
                        AssessmentKind::Rule(index)
                    } else {
                        AssessmentKind::MissingRule
                    };
                    let mut assessment = assessment.clone();
                    if let AssessmentKind::Rule(index) = kind {
                        fill_parameter_values(&mut assessment, &plan.rules[index]);
                    }
                    assessment.parameter_count = assessment.parameters.len();
                    assessments.push(PlannedAssessment { assessment, kind });
                }
                planned_control.specifications.push(PlannedSpecification {
                    id: specification.id.clone(),
                    description: specification.description.clone(),
                    component_id: specification.component_id.clone(),
                    component_name: specification.component_name.clone(),
                    environment: specification.environment.clone(),
                    responsibility: specification.responsibility.clone(),
                    assessments,
                });
            }
            plan.controls.push(planned_control);
        }
        plan.compile(&plan_rules);
        Ok(plan)
    }

    /// Groups the rules into partitions whose parameter values agree (usually one), compiles
    /// each, and marks the rules that do not compile as broken.
    fn compile(&mut self, plan_rules: &[&Rule]) {
        let mut partitions: Vec<(BTreeMap<String, Value>, Vec<usize>)> = Vec::new();
        for (index, planned) in self.rules.iter().enumerate() {
            let fits = |values: &BTreeMap<String, Value>| {
                planned
                    .parameters
                    .iter()
                    .all(|(name, value)| values.get(name).is_none_or(|other| other == value))
            };
            match partitions.iter_mut().find(|(values, _)| fits(values)) {
                Some((values, members)) => {
                    values.extend(planned.parameters.clone());
                    members.push(index);
                }
                None => partitions.push((planned.parameters.clone(), vec![index])),
            }
        }
        for (values, mut members) in partitions {
            let parameter_values = ParameterValues::from_attachment(values);
            // A compile error names the rule at fault; drop it and compile the rest again.
            // Each round removes at least one rule, so this ends.
            loop {
                let rules: Vec<Rule> = members
                    .iter()
                    .map(|&index| plan_rules[index].clone())
                    .collect();
                match RuleSet::compile(&rules, &parameter_values) {
                    Ok(rule_set) => {
                        if !members.is_empty() {
                            self.partitions.push(RulePartition {
                                rule_set,
                                plan_indices: members,
                            });
                        }
                        break;
                    }
                    Err(errors) => {
                        let mut broken: BTreeMap<usize, Vec<String>> = BTreeMap::new();
                        for error in errors {
                            let local = error.rule_index.min(members.len().saturating_sub(1));
                            broken
                                .entry(local)
                                .or_default()
                                .push(format!("{}: {}", error.pointer, error.message));
                        }
                        for (&local, messages) in broken.iter().rev() {
                            let index = members.remove(local);
                            let rule = &mut self.rules[index];
                            rule.broken = Some(messages.join("; "));
                            self.broken_by_target
                                .entry((rule.service_name.clone(), rule.resource_kind.clone()))
                                .or_default()
                                .push(index);
                        }
                    }
                }
            }
        }
    }

    /// The (service_name, resource_kind) pairs the plan's rules target: a store can load only
    /// those resources.
    pub fn targets(&self) -> BTreeSet<(String, String)> {
        self.rules
            .iter()
            .map(|rule| (rule.service_name.clone(), rule.resource_kind.clone()))
            .collect()
    }

    /// The index of a rule in [`ScanPlan::rules`].
    pub fn rule_index(&self, rule_id: &str) -> Option<usize> {
        self.rule_index_by_id.get(rule_id).copied()
    }

    /// Evaluates every rule of the plan on one resource, in plan rule order.
    pub fn evaluate_resource(
        &self,
        resource: &Resource,
        now: DateTime<Utc>,
    ) -> Vec<ScanEvaluation> {
        let mut indexed: Vec<(usize, ScanEvaluation)> = Vec::new();
        let mut outcomes = Vec::new();
        for partition in &self.partitions {
            outcomes.clear();
            partition
                .rule_set
                .evaluate_outcomes(resource, now, &mut outcomes);
            for outcome in outcomes.drain(..) {
                let index = partition.plan_indices[outcome.rule_index];
                let reason = match outcome.status {
                    Status::Pass => None,
                    _ => outcome
                        .details
                        .first()
                        .map(|detail| detail.reason.to_string()),
                };
                indexed.push((
                    index,
                    ScanEvaluation {
                        rule_id: self.rules[index].rule_id.clone(),
                        resource_id: resource.id.clone(),
                        status: outcome.status.into(),
                        details: outcome.details,
                        reason,
                    },
                ));
            }
        }
        if !self.broken_by_target.is_empty()
            && let Some(broken) = self.broken_by_target.get(&(
                resource.service_name.clone(),
                resource.resource_kind.clone(),
            ))
        {
            for &index in broken {
                let rule = &self.rules[index];
                indexed.push((
                    index,
                    ScanEvaluation {
                        rule_id: rule.rule_id.clone(),
                        resource_id: resource.id.clone(),
                        status: EvaluationStatus::Skipped,
                        details: Vec::new(),
                        reason: Some(format!(
                            "rule does not compile: {}",
                            rule.broken.as_deref().unwrap_or_default()
                        )),
                    },
                ));
            }
        }
        if self.partitions.len() > 1 || !self.broken_by_target.is_empty() {
            indexed.sort_by_key(|(index, _)| *index);
        }
        indexed
            .into_iter()
            .map(|(_, evaluation)| evaluation)
            .collect()
    }

    /// Evaluates a chunk of resources in parallel; evaluations come back resource by resource,
    /// in input order.
    pub fn evaluate_chunk(
        &self,
        resources: &[Resource],
        now: DateTime<Utc>,
    ) -> Vec<ScanEvaluation> {
        resources
            .par_iter()
            .flat_map_iter(|resource| self.evaluate_resource(resource, now))
            .collect()
    }
}

/// Resolves each declared parameter of a rule as SCC does: the attachment's value for this
/// assessment, else the attachment's value for any assessment, else the profile default (same
/// order); unresolved parameters are left out so the rule's own default applies.
fn effective_parameters(
    rule: &Rule,
    attachment: &[Parameter],
    defaults: &[DefaultParameter],
) -> BTreeMap<String, Value> {
    let mut values = BTreeMap::new();
    for declared in &rule.parameters {
        let pick_attachment = |specific: bool| {
            attachment.iter().find(|parameter| {
                parameter.parameter_name == declared.name
                    && parameter.parameter_value.is_some()
                    && match &parameter.assessment_id {
                        Some(id) => specific && *id == rule.id,
                        None => !specific,
                    }
            })
        };
        let pick_default = |specific: bool| {
            defaults.iter().find(|parameter| {
                parameter.parameter_name == declared.name
                    && !parameter.parameter_default_value.is_null()
                    && match &parameter.assessment_id {
                        Some(id) => specific && *id == rule.id,
                        None => !specific,
                    }
            })
        };
        let value = pick_attachment(true)
            .or_else(|| pick_attachment(false))
            .and_then(|parameter| parameter.parameter_value.clone())
            .or_else(|| {
                pick_default(true)
                    .or_else(|| pick_default(false))
                    .map(|parameter| parameter.parameter_default_value.clone())
            });
        if let Some(value) = value {
            values.insert(declared.name.clone(), value);
        }
    }
    values
}

/// Copies the effective values into the assessment's parameter list (adding declared
/// parameters the library did not list), so reports show what the scan used.
fn fill_parameter_values(assessment: &mut Assessment, rule: &PlannedRule) {
    for parameter in &mut assessment.parameters {
        if let Some(value) = rule.parameters.get(&parameter.parameter_name) {
            parameter.parameter_value = Some(value.clone());
        }
    }
    for (name, value) in &rule.parameters {
        if !assessment
            .parameters
            .iter()
            .any(|parameter| parameter.parameter_name == *name)
        {
            assessment.parameters.push(Parameter {
                assessment_id: Some(assessment.assessment_id.clone()),
                assessment_type: Some(assessment.assessment_type.clone()),
                parameter_name: name.clone(),
                parameter_display_name: None,
                parameter_type: None,
                parameter_value: Some(value.clone()),
            });
        }
    }
}

/// Finds the attestation in force for a manual assessment: one for this control wins over one
/// for every control; among equals the latest wins.
fn manual_verdict(
    assessment: &Assessment,
    control_id: &str,
    control_name: &str,
    attestations: &[Attestation],
    now: DateTime<Utc>,
) -> ManualVerdict {
    let in_force = |for_control: bool| {
        attestations
            .iter()
            .filter(|attestation| {
                attestation.assessment_id == assessment.assessment_id
                    && attestation.is_valid_at(now)
                    && match &attestation.control_id {
                        Some(id) => for_control && (id == control_id || id == control_name),
                        None => !for_control,
                    }
            })
            .max_by_key(|attestation| attestation.attested_on)
    };
    match in_force(true).or_else(|| in_force(false)) {
        Some(attestation) => ManualVerdict::Attested(attestation.clone()),
        None => ManualVerdict::Required,
    }
}

impl ManualVerdict {
    /// The evaluation status an attestation stands for, if any.
    pub fn status(&self) -> Option<EvaluationStatus> {
        match self {
            ManualVerdict::Required => None,
            ManualVerdict::Attested(attestation) => Some(match attestation.status {
                AttestedStatus::Pass => EvaluationStatus::Pass,
                AttestedStatus::Failure => EvaluationStatus::Failure,
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) fn now() -> DateTime<Utc> {
        "2026-03-01T00:00:00Z".parse().expect("valid time")
    }

    pub(crate) fn rules() -> Vec<Rule> {
        palisade_rules::parse_rules(&json!([
            {"id": "versioning", "description": "Buckets keep versions",
             "target": {"service_name": "s3", "resource_kind": "bucket"},
             "required_config": {"property": "versioning.status", "operator": "string_equals", "value": "Enabled"}},
            {"id": "retention", "description": "Logs are kept long enough",
             "target": {"service_name": "s3", "resource_kind": "bucket"},
             "import": {"parameters": [{"name": "min_days", "type": "numeric"}]},
             "required_config": {"property": "retention_days", "operator": "num_greater_than_equals", "value": "${min_days}"}},
            {"id": "mfa", "description": "Users have MFA",
             "target": {"service_name": "iam", "resource_kind": "user"},
             "required_config": {"property": "mfa_active", "operator": "is_true"}}
        ]))
        .expect("valid rules")
    }

    pub(crate) fn library() -> ControlLibrary {
        serde_json::from_value(json!({
            "id": "lib", "control_library_name": "Lib", "control_library_version": "1.0",
            "controls": [
                {"control_id": "cp-9", "control_name": "CP-9", "control_description": "Backup",
                 "control_specifications": [{"id": "cp-9-s3", "description": "S3 backups", "component_id": "s3",
                    "environment": "aws",
                    "assessments": [{"assessment_id": "versioning"}, {"assessment_id": "retention"}]}]},
                {"control_id": "ia-2", "control_name": "IA-2", "control_description": "Authentication",
                 "control_specifications": [{"id": "ia-2-iam", "description": "MFA", "component_id": "iam",
                    "environment": "aws",
                    "assessments": [{"assessment_id": "mfa"}, {"assessment_id": "gone"}]}]},
                {"control_id": "pe-3", "control_name": "PE-3", "control_description": "Physical access",
                 "control_specifications": [{"id": "pe-3-m", "description": "Badge readers",
                    "assessments": [{"assessment_id": "badges", "assessment_type": "manual"}]}]},
                {"control_id": "sc-7", "control_name": "SC-7", "control_description": "Boundary",
                 "control_specifications": [{"id": "sc-7-s", "description": "none in scope", "component_id": "ec2",
                    "assessments": [{"assessment_id": "versioning"}]}]}
            ]
        }))
        .expect("library decodes")
    }

    pub(crate) fn profile() -> Profile {
        serde_json::from_value(json!({
            "id": "p", "profile_name": "P", "profile_version": "1",
            "controls": [
                {"control_library_id": "lib", "control_id": "cp-9"},
                {"control_library_id": "lib", "control_id": "ia-2"},
                {"control_library_id": "lib", "control_id": "pe-3"}
            ],
            "default_parameters": [{"parameter_name": "min_days", "parameter_default_value": "30"}]
        }))
        .expect("profile decodes")
    }

    pub(crate) fn resources() -> Vec<Resource> {
        serde_json::from_value(json!([
            {"id": "b-good", "environment": "aws", "account_id": "1", "service_name": "s3", "resource_kind": "bucket",
             "name": "good", "config": {"versioning": {"status": "Enabled"}, "retention_days": 90}},
            {"id": "b-bad", "environment": "aws", "account_id": "1", "service_name": "s3", "resource_kind": "bucket",
             "name": "bad", "config": {"versioning": {"status": "Suspended"}, "retention_days": 7}},
            {"id": "u-1", "environment": "aws", "account_id": "1", "service_name": "iam", "resource_kind": "user",
             "config": {"mfa_active": "yes"}},
            {"id": "vm-1", "environment": "aws", "account_id": "1", "service_name": "ec2", "resource_kind": "instance"}
        ]))
        .expect("resources decode")
    }

    pub(crate) fn plan_with(parameters: Value, attestations: &[Attestation]) -> ScanPlan {
        let rules = rules();
        let parameters: Vec<Parameter> = serde_json::from_value(parameters).expect("parameters");
        ScanPlan::new(ScanInput {
            profile: &profile(),
            libraries: &[library()],
            rules: &rules,
            attachment_parameters: &parameters,
            attestations,
            now: now(),
        })
        .expect("plan builds")
    }

    #[test]
    fn one_evaluation_per_targeted_rule_and_resource() {
        let plan = plan_with(json!([]), &[]);
        let evaluations = plan.evaluate_chunk(&resources(), now());
        let got: Vec<(&str, &str, EvaluationStatus)> = evaluations
            .iter()
            .map(|evaluation| {
                (
                    evaluation.rule_id.as_str(),
                    evaluation.resource_id.as_str(),
                    evaluation.status,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("versioning", "b-good", EvaluationStatus::Pass),
                ("retention", "b-good", EvaluationStatus::Pass),
                ("versioning", "b-bad", EvaluationStatus::Failure),
                ("retention", "b-bad", EvaluationStatus::Failure),
                ("mfa", "u-1", EvaluationStatus::Error),
            ]
        );
        let failure = &evaluations[2];
        assert_eq!(failure.details[0].property, "versioning.status");
        assert_eq!(failure.details[0].found_value, Some(json!("Suspended")));
        assert!(failure.reason.is_some());
    }

    #[test]
    fn attachment_parameters_win_over_profile_defaults() {
        let plan = plan_with(
            json!([{"parameter_name": "min_days", "parameter_value": 5, "assessment_id": "retention"}]),
            &[],
        );
        assert_eq!(plan.rules[1].parameters["min_days"], json!(5));
        let evaluations = plan.evaluate_resource(&resources()[1], now());
        assert_eq!(evaluations[1].status, EvaluationStatus::Pass);
        let retention = &plan.controls[0].specifications[0].assessments[1].assessment;
        assert_eq!(retention.parameters[0].parameter_value, Some(json!(5)));
        let defaults_only = plan_with(json!([]), &[]);
        assert_eq!(defaults_only.rules[1].parameters["min_days"], json!("30"));
    }

    #[test]
    fn conflicting_parameter_values_compile_into_separate_partitions() {
        let mut rules = rules();
        let mut second = rules[1].clone();
        second.id = "retention-strict".into();
        rules.push(second);
        let mut library = library();
        library.controls[0].control_specifications[0]
            .assessments
            .push(serde_json::from_value(json!({"assessment_id": "retention-strict"})).expect("a"));
        let parameters: Vec<Parameter> = serde_json::from_value(json!([
            {"parameter_name": "min_days", "parameter_value": 5, "assessment_id": "retention"},
            {"parameter_name": "min_days", "parameter_value": 60, "assessment_id": "retention-strict"}
        ]))
        .expect("parameters");
        let plan = ScanPlan::new(ScanInput {
            profile: &profile(),
            libraries: &[library],
            rules: &rules,
            attachment_parameters: &parameters,
            attestations: &[],
            now: now(),
        })
        .expect("plan builds");
        let statuses: Vec<(String, EvaluationStatus)> = plan
            .evaluate_resource(&resources()[0], now())
            .into_iter()
            .map(|evaluation| (evaluation.rule_id, evaluation.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("versioning".to_string(), EvaluationStatus::Pass),
                ("retention".to_string(), EvaluationStatus::Pass),
                ("retention-strict".to_string(), EvaluationStatus::Pass),
            ]
        );
        let bad = plan.evaluate_resource(&resources()[1], now());
        assert_eq!(bad[1].status, EvaluationStatus::Pass, "7 >= 5");
        assert_eq!(bad[2].status, EvaluationStatus::Failure, "7 < 60");
    }

    #[test]
    fn broken_rule_skips_its_resources_and_missing_rule_is_recorded() {
        let mut rules = rules();
        rules[0].body = palisade_rules::model::RuleBody::Rego("package x\n deny[ {".into());
        let plan = ScanPlan::new(ScanInput {
            profile: &profile(),
            libraries: &[library()],
            rules: &rules,
            attachment_parameters: &[],
            attestations: &[],
            now: now(),
        })
        .expect("plan builds");
        assert!(plan.rules[0].broken.is_some());
        let evaluations = plan.evaluate_resource(&resources()[0], now());
        assert_eq!(evaluations[0].rule_id, "versioning");
        assert_eq!(evaluations[0].status, EvaluationStatus::Skipped);
        assert_eq!(evaluations[1].status, EvaluationStatus::Pass);
        let ia2 = &plan.controls[1].specifications[0].assessments;
        assert_eq!(ia2[1].kind, AssessmentKind::MissingRule);
    }

    #[test]
    fn manual_assessments_follow_unexpired_attestations() {
        let attestation: Attestation = serde_json::from_value(json!({
            "assessment_id": "badges", "status": "pass", "note": "checked",
            "attested_on": "2026-02-01T00:00:00Z", "expires_on": "2026-04-01T00:00:00Z"
        }))
        .expect("attestation");
        let plan = plan_with(json!([]), std::slice::from_ref(&attestation));
        let kind = &plan.controls[2].specifications[0].assessments[0].kind;
        assert_eq!(
            kind,
            &AssessmentKind::Manual(ManualVerdict::Attested(attestation.clone()))
        );
        let mut expired = attestation;
        expired.expires_on = Some("2026-02-15T00:00:00Z".parse().expect("time"));
        let plan = plan_with(json!([]), &[expired]);
        let kind = &plan.controls[2].specifications[0].assessments[0].kind;
        assert_eq!(kind, &AssessmentKind::Manual(ManualVerdict::Required));
    }

    #[test]
    fn unknown_controls_fail_the_plan() {
        let mut profile = profile();
        profile
            .controls
            .push(crate::model::ProfileControl::reference("lib", "zz-1"));
        let error = ScanPlan::new(ScanInput {
            profile: &profile,
            libraries: &[library()],
            rules: &rules(),
            attachment_parameters: &[],
            attestations: &[],
            now: now(),
        })
        .expect_err("unknown control");
        assert!(error.to_string().contains("zz-1"), "{error}");
    }
}
