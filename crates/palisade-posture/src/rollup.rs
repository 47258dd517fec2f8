//! Roll-ups: per assessment, specification, control and resource, the report summaries and the
//! compliance score — in SCC v3's shapes (`EvalStats`, `ComplianceStats`,
//! `ComplianceStatsWithNonCompliant`, `ComplianceScore`, `ControlWithStats`,
//! `ControlSpecificationWithStats`, `AssessmentWithStats`, `Resource`, `ResourceSummary`), so the
//! server returns them as they are.
//!
//! Statuses, from the evaluations up:
//! - an assessment (a rule) is `not_compliant` when any of its evaluations failed, else
//!   `unable_to_perform` when any errored (or all were skipped, or its rule does not exist),
//!   else `compliant` when any passed, else `not_applicable` (no resource in scope);
//!   manual assessments are `user_evaluation_required` until attested;
//! - a specification, a control, the controls summary: the worst of their children, in the
//!   order `not_compliant` > `unable_to_perform` > `user_evaluation_required` > `compliant` >
//!   `not_applicable`; the counts are of children per status (a control counts its
//!   specifications, a specification its assessments);
//! - a resource: as an assessment, over its evaluations.
//!
//! Counts (`EvalStats`): `total_count` = pass + failure + error, `completed_count` = pass +
//! failure, `skipped_count` apart (SCC's fixture: 123 + 12 = 135 completed, + 5 errors = 140).
//!
//! **Score** = passed ÷ (passed + failed + errored) × 100: `skipped`, `not_applicable` and
//! unattested manual assessments stay outside the denominator. An evaluation counts once even
//! when its rule serves several controls; an attested manual assessment counts as one
//! evaluation per control using it.
//!
//! [`RollupBuilder`] takes evaluations chunk by chunk: it keeps counters per rule and per
//! resource, never the evaluations themselves.
//!
//! A scan split into shards (evaluated by several workers) rolls each shard up alone into a
//! [`PartialRollup`] — the same counters, serialisable — and the assembler merges the partials
//! in shard order ([`RollupBuilder::add_partial`]): counters add up, and resources keep the order
//! they were first seen in, so the merged roll-up equals the one-pass roll-up of the same
//! resources.

use std::collections::HashMap;

use palisade_model::resource::Resource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Parameter;
use crate::scan::{AssessmentKind, EvaluationStatus, ManualVerdict, ScanEvaluation, ScanPlan};

/// SCC's aggregated status of controls, specifications, assessments and resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceStatus {
    /// Every evaluation passed.
    Compliant,
    /// At least one evaluation failed.
    NotCompliant,
    /// Evaluations errored, were skipped, or the rule is missing.
    UnableToPerform,
    /// A manual assessment waits for a user's attestation.
    UserEvaluationRequired,
    /// Nothing in scope to evaluate.
    NotApplicable,
}

impl ComplianceStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ComplianceStatus::Compliant => "compliant",
            ComplianceStatus::NotCompliant => "not_compliant",
            ComplianceStatus::UnableToPerform => "unable_to_perform",
            ComplianceStatus::UserEvaluationRequired => "user_evaluation_required",
            ComplianceStatus::NotApplicable => "not_applicable",
        }
    }

    /// Rank for "the worst wins" (higher is worse).
    fn severity(self) -> u8 {
        match self {
            ComplianceStatus::NotApplicable => 0,
            ComplianceStatus::Compliant => 1,
            ComplianceStatus::UserEvaluationRequired => 2,
            ComplianceStatus::UnableToPerform => 3,
            ComplianceStatus::NotCompliant => 4,
        }
    }
}

/// Evaluation counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationCounts {
    /// Passed.
    pub pass: u64,
    /// Failed.
    pub failure: u64,
    /// Errored.
    pub error: u64,
    /// Skipped.
    pub skipped: u64,
}

impl EvaluationCounts {
    /// Counts one evaluation.
    pub fn add(&mut self, status: EvaluationStatus) {
        match status {
            EvaluationStatus::Pass => self.pass += 1,
            EvaluationStatus::Failure => self.failure += 1,
            EvaluationStatus::Error => self.error += 1,
            EvaluationStatus::Skipped => self.skipped += 1,
        }
    }

    /// Adds other counters.
    pub fn merge(&mut self, other: &EvaluationCounts) {
        self.pass += other.pass;
        self.failure += other.failure;
        self.error += other.error;
        self.skipped += other.skipped;
    }

    /// pass + failure + error (SCC `total_count`).
    pub fn total(&self) -> u64 {
        self.pass + self.failure + self.error
    }

    /// pass + failure (SCC `completed_count`).
    pub fn completed(&self) -> u64 {
        self.pass + self.failure
    }

    /// The status these evaluations stand for.
    pub fn status(&self) -> ComplianceStatus {
        if self.failure > 0 {
            ComplianceStatus::NotCompliant
        } else if self.error > 0 {
            ComplianceStatus::UnableToPerform
        } else if self.pass > 0 {
            ComplianceStatus::Compliant
        } else if self.skipped > 0 {
            ComplianceStatus::UnableToPerform
        } else {
            ComplianceStatus::NotApplicable
        }
    }

    /// SCC `EvalStats` of these counters.
    pub fn eval_stats(&self) -> EvalStats {
        EvalStats {
            status: self.status(),
            total_count: self.total(),
            pass_count: self.pass,
            failure_count: self.failure,
            error_count: self.error,
            skipped_count: self.skipped,
            completed_count: self.completed(),
        }
    }
}

/// SCC `EvalStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalStats {
    /// Aggregated status.
    pub status: ComplianceStatus,
    /// pass + failure + error.
    pub total_count: u64,
    /// Passed evaluations.
    pub pass_count: u64,
    /// Failed evaluations.
    pub failure_count: u64,
    /// Errored evaluations.
    pub error_count: u64,
    /// Skipped evaluations.
    pub skipped_count: u64,
    /// pass + failure.
    pub completed_count: u64,
}

/// SCC `ComplianceStats`: a status and the number of children per status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceStats {
    /// The worst status among the children.
    pub status: ComplianceStatus,
    /// Children counted.
    pub total_count: u64,
    /// Compliant children.
    pub compliant_count: u64,
    /// Non-compliant children.
    pub not_compliant_count: u64,
    /// Children unable to perform.
    pub unable_to_perform_count: u64,
    /// Children waiting for a user's evaluation.
    pub user_evaluation_required_count: u64,
    /// Not applicable children.
    pub not_applicable_count: u64,
}

impl ComplianceStats {
    /// Stats of a set of child statuses.
    pub fn of(statuses: impl IntoIterator<Item = ComplianceStatus>) -> ComplianceStats {
        let mut stats = ComplianceStats {
            status: ComplianceStatus::NotApplicable,
            total_count: 0,
            compliant_count: 0,
            not_compliant_count: 0,
            unable_to_perform_count: 0,
            user_evaluation_required_count: 0,
            not_applicable_count: 0,
        };
        for status in statuses {
            stats.total_count += 1;
            match status {
                ComplianceStatus::Compliant => stats.compliant_count += 1,
                ComplianceStatus::NotCompliant => stats.not_compliant_count += 1,
                ComplianceStatus::UnableToPerform => stats.unable_to_perform_count += 1,
                ComplianceStatus::UserEvaluationRequired => {
                    stats.user_evaluation_required_count += 1
                }
                ComplianceStatus::NotApplicable => stats.not_applicable_count += 1,
            }
            if status.severity() > stats.status.severity() {
                stats.status = status;
            }
        }
        stats
    }
}

/// SCC `ComplianceScore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceScore {
    /// Passed evaluations.
    pub passed: u64,
    /// passed + failed + errored.
    pub total_count: u64,
    /// passed ÷ total × 100, rounded down to an integer as SCC sends it (0 when total is 0).
    pub percent: u64,
}

impl ComplianceScore {
    /// The score of evaluation counters.
    pub fn of(counts: &EvaluationCounts) -> ComplianceScore {
        let total = counts.total();
        ComplianceScore {
            passed: counts.pass,
            total_count: total,
            percent: (counts.pass * 100).checked_div(total).unwrap_or(0),
        }
    }

    /// The exact percentage, `None` when nothing was evaluated (a CI gate must not read "no
    /// evaluation" as either 0 or 100).
    pub fn exact_percent(&self) -> Option<f64> {
        (self.total_count > 0).then(|| self.passed as f64 * 100.0 / self.total_count as f64)
    }
}

/// SCC `ControlSummary`, listed in `not_compliant_controls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlSummary {
    /// The control id.
    pub id: String,
    /// The control name.
    pub control_name: String,
    /// The control description.
    pub control_description: String,
}

/// SCC `ComplianceStatsWithNonCompliant` (a report's `controls_summary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlsSummary {
    /// Counts of controls per status.
    #[serde(flatten)]
    pub stats: ComplianceStats,
    /// The non-compliant controls.
    pub not_compliant_controls: Vec<ControlSummary>,
}

/// SCC `AssessmentWithStats`, plus the assessment's `status` and `skipped_count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessmentWithStats {
    /// The rule id (automated) or the manual assessment's id.
    pub assessment_id: String,
    /// `automated` or `manual`.
    pub assessment_type: String,
    /// How it is carried out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment_method: Option<String>,
    /// What it checks.
    pub assessment_description: String,
    /// Number of parameters.
    pub parameter_count: usize,
    /// Parameters with the values the scan used.
    pub parameters: Vec<Parameter>,
    /// The assessment's status.
    pub status: ComplianceStatus,
    /// pass + failure + error.
    pub total_count: u64,
    /// Passed.
    pub pass_count: u64,
    /// Failed.
    pub failure_count: u64,
    /// Errored.
    pub error_count: u64,
    /// Skipped.
    pub skipped_count: u64,
    /// pass + failure.
    pub completed_count: u64,
}

/// SCC `ControlSpecificationWithStats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlSpecificationWithStats {
    /// Specification id.
    pub control_specification_id: String,
    /// Specification description.
    pub control_specification_description: String,
    /// Target service.
    pub component_id: String,
    /// Target service display name.
    pub component_name: String,
    /// Environment.
    pub environment: String,
    /// `user` or `provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsibility: Option<String>,
    /// The assessments with their counts.
    pub assessments: Vec<AssessmentWithStats>,
    /// Counts of assessments per status.
    #[serde(flatten)]
    pub stats: ComplianceStats,
}

/// SCC `ControlWithStats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlWithStats {
    /// The report, set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_id: Option<String>,
    /// The account, set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_account_id: Option<String>,
    /// The control id.
    pub id: String,
    /// The library.
    pub control_library_id: String,
    /// The library version.
    pub control_library_version: String,
    /// The control name.
    pub control_name: String,
    /// The control description.
    pub control_description: String,
    /// The control category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_category: Option<String>,
    /// The specifications with their stats.
    pub control_specifications: Vec<ControlSpecificationWithStats>,
    /// Counts of specifications per status.
    #[serde(flatten)]
    pub stats: ComplianceStats,
}

/// SCC `Account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Account id.
    pub id: String,
    /// Account name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Account type.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub account_type: Option<String>,
}

/// SCC `Tags`: Palisade's key/value tags are written `key:value` under `user`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tags {
    /// User tags.
    #[serde(default)]
    pub user: Vec<String>,
    /// Access tags.
    #[serde(default)]
    pub access: Vec<String>,
    /// Service tags.
    #[serde(default)]
    pub service: Vec<String>,
}

impl Tags {
    /// SCC tags of a resource's key/value tags (`env:prod`; a tag with an empty value is its
    /// key alone).
    pub fn of_resource(resource: &Resource) -> Tags {
        Tags {
            user: resource
                .tags
                .iter()
                .map(|(key, value)| match value {
                    Value::String(text) if text.is_empty() => key.clone(),
                    Value::String(text) => format!("{key}:{text}"),
                    Value::Null => key.clone(),
                    other => format!("{key}:{other}"),
                })
                .collect(),
            access: Vec::new(),
            service: Vec::new(),
        }
    }
}

/// SCC `Resource` (the report's resource view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceWithStats {
    /// The report, set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_id: Option<String>,
    /// The account, set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_account_id: Option<String>,
    /// The resource id.
    pub id: String,
    /// The resource name (the id when it has none).
    pub resource_name: String,
    /// Owning account.
    pub account: Account,
    /// Service (SCC's component).
    pub component_id: String,
    /// Service display name.
    pub component_name: String,
    /// Environment.
    pub environment: String,
    /// Tags.
    pub tags: Tags,
    /// The resource's status.
    pub status: ComplianceStatus,
    /// pass + failure + error.
    pub total_count: u64,
    /// Passed.
    pub pass_count: u64,
    /// Failed.
    pub failure_count: u64,
    /// Errored.
    pub error_count: u64,
    /// Skipped.
    pub skipped_count: u64,
    /// pass + failure.
    pub completed_count: u64,
    /// Service name.
    pub service_name: String,
    /// The resource kind (Palisade addition).
    pub resource_kind: String,
}

/// SCC `ResourceSummaryItem` (an entry of `top_failed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSummaryItem {
    /// The resource id.
    pub id: String,
    /// The resource name.
    pub name: String,
    /// Owning account.
    pub account: String,
    /// Service.
    pub service: String,
    /// Tags.
    pub tags: Tags,
    /// The resource's status.
    pub status: ComplianceStatus,
    /// pass + failure + error.
    pub total_count: u64,
    /// Passed.
    pub pass_count: u64,
    /// Failed.
    pub failure_count: u64,
    /// Errored.
    pub error_count: u64,
    /// Skipped.
    pub skipped_count: u64,
    /// pass + failure.
    pub completed_count: u64,
}

/// SCC `ResourceSummary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSummary {
    /// Counts of resources per status.
    #[serde(flatten)]
    pub stats: ComplianceStats,
    /// The ten resources with the most failures.
    pub top_failed: Vec<ResourceSummaryItem>,
}

/// A rule's counts in a report (Palisade's per-rule view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleWithStats {
    /// The rule id.
    pub rule_id: String,
    /// The rule description.
    pub description: String,
    /// Target service.
    pub service_name: String,
    /// Target kind.
    pub resource_kind: String,
    /// Controls using the rule.
    pub control_names: Vec<String>,
    /// Why the rule does not compile, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
    /// Its evaluation stats.
    pub evaluations: EvalStats,
}

/// Every roll-up of one scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// The compliance score.
    pub score: ComplianceScore,
    /// SCC `evaluations_summary`.
    pub evaluations_summary: EvalStats,
    /// SCC `controls_summary`.
    pub controls_summary: ControlsSummary,
    /// The controls, in profile order.
    pub controls: Vec<ControlWithStats>,
    /// SCC `ResourceSummary`.
    pub resources_summary: ResourceSummary,
    /// The resources, in the order they were first seen.
    pub resources: Vec<ResourceWithStats>,
    /// The rules, in plan order.
    pub rules: Vec<RuleWithStats>,
}

impl Rollup {
    /// Finds a control by id.
    pub fn control(&self, control_id: &str) -> Option<&ControlWithStats> {
        self.controls
            .iter()
            .find(|control| control.id == control_id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ResourceEntry {
    resource: ResourceWithStats,
    counts: EvaluationCounts,
}

/// The counters of part of a scan (one shard), to be merged into the scan's roll-up by
/// [`RollupBuilder::add_partial`]. Rules are named by id, so a partial is independent of the
/// plan's internal order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialRollup {
    /// Counters of the rules that were evaluated, by rule id.
    rules: Vec<(String, EvaluationCounts)>,
    /// The resources in scope, in the order they were first seen, with their counters.
    resources: Vec<ResourceEntry>,
    /// Evaluations whose rule is not in the plan.
    unknown_rule_evaluations: u64,
}

impl PartialRollup {
    /// Resources in scope in this part.
    pub fn resource_count(&self) -> usize {
        self.resources.len()
    }
}

/// Accumulates the evaluations of a scan, chunk by chunk.
pub struct RollupBuilder<'p> {
    plan: &'p ScanPlan,
    rule_counts: Vec<EvaluationCounts>,
    resources: Vec<ResourceEntry>,
    resource_index: HashMap<String, usize>,
    unknown_rule_evaluations: u64,
}

impl<'p> RollupBuilder<'p> {
    /// Starts a roll-up of a plan's scan.
    pub fn new(plan: &'p ScanPlan) -> Self {
        RollupBuilder {
            plan,
            rule_counts: vec![EvaluationCounts::default(); plan.rules.len()],
            resources: Vec::new(),
            resource_index: HashMap::new(),
            unknown_rule_evaluations: 0,
        }
    }

    /// Adds a chunk: the resources scanned (each listed once per scan, also those no rule
    /// applied to, which become `not_applicable`) and their evaluations.
    pub fn add_chunk(&mut self, resources: &[Resource], evaluations: &[ScanEvaluation]) {
        for resource in resources {
            self.add_resource(resource);
        }
        for evaluation in evaluations {
            self.add_evaluation(evaluation);
        }
    }

    /// Registers a resource in scope.
    pub fn add_resource(&mut self, resource: &Resource) {
        if self.resource_index.contains_key(&resource.id) {
            return;
        }
        self.resource_index
            .insert(resource.id.clone(), self.resources.len());
        self.resources.push(ResourceEntry {
            resource: ResourceWithStats {
                report_id: None,
                home_account_id: None,
                id: resource.id.clone(),
                resource_name: resource.name.clone().unwrap_or_else(|| resource.id.clone()),
                account: Account {
                    id: resource.account_id.clone(),
                    name: None,
                    account_type: None,
                },
                component_id: resource.service_name.clone(),
                component_name: resource.service_name.clone(),
                environment: resource.environment.clone(),
                tags: Tags::of_resource(resource),
                status: ComplianceStatus::NotApplicable,
                total_count: 0,
                pass_count: 0,
                failure_count: 0,
                error_count: 0,
                skipped_count: 0,
                completed_count: 0,
                service_name: resource.service_name.clone(),
                resource_kind: resource.resource_kind.clone(),
            },
            counts: EvaluationCounts::default(),
        });
    }

    /// Counts one evaluation. Evaluations of rules outside the plan are counted apart and
    /// otherwise ignored; those of unregistered resources count for the rule only.
    pub fn add_evaluation(&mut self, evaluation: &ScanEvaluation) {
        match self.plan.rule_index(&evaluation.rule_id) {
            Some(index) => self.rule_counts[index].add(evaluation.status),
            None => {
                self.unknown_rule_evaluations += 1;
                return;
            }
        }
        if let Some(&index) = self.resource_index.get(&evaluation.resource_id) {
            self.resources[index].counts.add(evaluation.status);
        }
    }

    /// Evaluations whose rule is not in the plan (a caller mixing scans).
    pub fn unknown_rule_evaluations(&self) -> u64 {
        self.unknown_rule_evaluations
    }

    /// What was added so far, as a part of a larger scan (see [`PartialRollup`]).
    pub fn into_partial(self) -> PartialRollup {
        PartialRollup {
            rules: self
                .plan
                .rules
                .iter()
                .zip(self.rule_counts)
                .filter(|(_, counts)| *counts != EvaluationCounts::default())
                .map(|(rule, counts)| (rule.rule_id.clone(), counts))
                .collect(),
            resources: self.resources,
            unknown_rule_evaluations: self.unknown_rule_evaluations,
        }
    }

    /// Adds a part of the scan rolled up elsewhere. Parts added in the order their resources
    /// were read give the roll-up of reading them all in one pass; a resource already seen
    /// keeps its place and adds the part's counters.
    pub fn add_partial(&mut self, partial: &PartialRollup) {
        for (rule_id, counts) in &partial.rules {
            match self.plan.rule_index(rule_id) {
                Some(index) => self.rule_counts[index].merge(counts),
                None => self.unknown_rule_evaluations += counts.total() + counts.skipped,
            }
        }
        self.unknown_rule_evaluations += partial.unknown_rule_evaluations;
        for entry in &partial.resources {
            match self.resource_index.get(&entry.resource.id) {
                Some(&index) => self.resources[index].counts.merge(&entry.counts),
                None => {
                    self.resource_index
                        .insert(entry.resource.id.clone(), self.resources.len());
                    self.resources.push(entry.clone());
                }
            }
        }
    }

    /// Computes every roll-up.
    pub fn finish(self) -> Rollup {
        let mut totals = EvaluationCounts::default();
        for counts in &self.rule_counts {
            totals.merge(counts);
        }
        let mut controls = Vec::with_capacity(self.plan.controls.len());
        for control in &self.plan.controls {
            let mut specifications = Vec::with_capacity(control.specifications.len());
            for specification in &control.specifications {
                let assessments: Vec<AssessmentWithStats> = specification
                    .assessments
                    .iter()
                    .map(|planned| {
                        let (status, counts) = match &planned.kind {
                            AssessmentKind::Rule(index) => {
                                let counts = self.rule_counts[*index];
                                (counts.status(), counts)
                            }
                            AssessmentKind::MissingRule => (
                                ComplianceStatus::UnableToPerform,
                                EvaluationCounts::default(),
                            ),
                            AssessmentKind::Manual(verdict) => match verdict.status() {
                                None => (
                                    ComplianceStatus::UserEvaluationRequired,
                                    EvaluationCounts::default(),
                                ),
                                Some(status) => {
                                    let mut counts = EvaluationCounts::default();
                                    counts.add(status);
                                    totals.merge(&counts);
                                    (counts.status(), counts)
                                }
                            },
                        };
                        let assessment = &planned.assessment;
                        AssessmentWithStats {
                            assessment_id: assessment.assessment_id.clone(),
                            assessment_type: assessment.assessment_type.clone(),
                            assessment_method: assessment.assessment_method.clone(),
                            assessment_description: assessment.assessment_description.clone(),
                            parameter_count: assessment.parameters.len(),
                            parameters: assessment.parameters.clone(),
                            status,
                            total_count: counts.total(),
                            pass_count: counts.pass,
                            failure_count: counts.failure,
                            error_count: counts.error,
                            skipped_count: counts.skipped,
                            completed_count: counts.completed(),
                        }
                    })
                    .collect();
                let stats = ComplianceStats::of(assessments.iter().map(|a| a.status));
                specifications.push(ControlSpecificationWithStats {
                    control_specification_id: specification.id.clone(),
                    control_specification_description: specification.description.clone(),
                    component_id: specification.component_id.clone(),
                    component_name: specification.component_name.clone(),
                    environment: specification.environment.clone(),
                    responsibility: specification.responsibility.clone(),
                    assessments,
                    stats,
                });
            }
            let stats = ComplianceStats::of(specifications.iter().map(|s| s.stats.status));
            controls.push(ControlWithStats {
                report_id: None,
                home_account_id: None,
                id: control.control_id.clone(),
                control_library_id: control.control_library_id.clone(),
                control_library_version: control.control_library_version.clone(),
                control_name: control.control_name.clone(),
                control_description: control.control_description.clone(),
                control_category: control.control_category.clone(),
                control_specifications: specifications,
                stats,
            });
        }
        let controls_summary = ControlsSummary {
            stats: ComplianceStats::of(controls.iter().map(|control| control.stats.status)),
            not_compliant_controls: controls
                .iter()
                .filter(|control| control.stats.status == ComplianceStatus::NotCompliant)
                .map(|control| ControlSummary {
                    id: control.id.clone(),
                    control_name: control.control_name.clone(),
                    control_description: control.control_description.clone(),
                })
                .collect(),
        };
        let resources: Vec<ResourceWithStats> = self
            .resources
            .into_iter()
            .map(|entry| {
                let counts = entry.counts;
                ResourceWithStats {
                    status: counts.status(),
                    total_count: counts.total(),
                    pass_count: counts.pass,
                    failure_count: counts.failure,
                    error_count: counts.error,
                    skipped_count: counts.skipped,
                    completed_count: counts.completed(),
                    ..entry.resource
                }
            })
            .collect();
        let mut failed: Vec<&ResourceWithStats> = resources
            .iter()
            .filter(|resource| resource.failure_count > 0)
            .collect();
        failed.sort_by(|left, right| {
            right
                .failure_count
                .cmp(&left.failure_count)
                .then_with(|| left.id.cmp(&right.id))
        });
        let top_failed = failed
            .into_iter()
            .take(10)
            .map(|resource| ResourceSummaryItem {
                id: resource.id.clone(),
                name: resource.resource_name.clone(),
                account: resource.account.id.clone(),
                service: resource.service_name.clone(),
                tags: resource.tags.clone(),
                status: resource.status,
                total_count: resource.total_count,
                pass_count: resource.pass_count,
                failure_count: resource.failure_count,
                error_count: resource.error_count,
                skipped_count: resource.skipped_count,
                completed_count: resource.completed_count,
            })
            .collect();
        let resources_summary = ResourceSummary {
            stats: ComplianceStats::of(resources.iter().map(|resource| resource.status)),
            top_failed,
        };
        let rules = self
            .plan
            .rules
            .iter()
            .zip(&self.rule_counts)
            .map(|(rule, counts)| RuleWithStats {
                rule_id: rule.rule_id.clone(),
                description: rule.description.clone(),
                service_name: rule.service_name.clone(),
                resource_kind: rule.resource_kind.clone(),
                control_names: rule.control_names.clone(),
                broken: rule.broken.clone(),
                evaluations: counts.eval_stats(),
            })
            .collect();
        Rollup {
            score: ComplianceScore::of(&totals),
            evaluations_summary: totals.eval_stats(),
            controls_summary,
            controls,
            resources_summary,
            resources,
            rules,
        }
    }
}

impl ManualVerdict {
    /// The assessment status of the verdict.
    pub fn compliance_status(&self) -> ComplianceStatus {
        match self.status() {
            None => ComplianceStatus::UserEvaluationRequired,
            Some(EvaluationStatus::Pass) => ComplianceStatus::Compliant,
            Some(_) => ComplianceStatus::NotCompliant,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::Attestation;
    use crate::scan::tests::{now, plan_with, resources};

    fn rollup_of(attestations: &[Attestation]) -> Rollup {
        let plan = plan_with(json!([]), attestations);
        let resources = resources();
        let mut builder = RollupBuilder::new(&plan);
        // Two chunks, to show the builder only accumulates counters.
        for chunk in resources.chunks(2) {
            let evaluations = plan.evaluate_chunk(chunk, now());
            builder.add_chunk(chunk, &evaluations);
        }
        builder.finish()
    }

    #[test]
    fn merged_partials_equal_the_one_pass_rollup() {
        let plan = plan_with(json!([]), &[]);
        let resources = resources();
        let one_pass = rollup_of(&[]);
        // Each chunk rolled up apart (as a shard worker does), sent as JSON, merged in order.
        let mut assembled = RollupBuilder::new(&plan);
        for chunk in resources.chunks(2) {
            let mut shard = RollupBuilder::new(&plan);
            shard.add_chunk(chunk, &plan.evaluate_chunk(chunk, now()));
            let sent = serde_json::to_string(&shard.into_partial()).expect("serialise");
            let partial: PartialRollup = serde_json::from_str(&sent).expect("parse");
            assert_eq!(partial.resource_count(), chunk.len());
            assembled.add_partial(&partial);
        }
        assert_eq!(assembled.finish(), one_pass);
        // Parts merged out of order hold the same counters but list resources differently.
        let mut reversed = RollupBuilder::new(&plan);
        for chunk in resources.chunks(2).rev() {
            let mut shard = RollupBuilder::new(&plan);
            shard.add_chunk(chunk, &plan.evaluate_chunk(chunk, now()));
            reversed.add_partial(&shard.into_partial());
        }
        let reversed = reversed.finish();
        assert_eq!(reversed.evaluations_summary, one_pass.evaluations_summary);
        assert_eq!(reversed.controls, one_pass.controls);
        assert_eq!(reversed.resources.len(), one_pass.resources.len());
    }

    #[test]
    fn counts_and_score_follow_the_formula() {
        let rollup = rollup_of(&[]);
        // versioning: pass, failure; retention: pass, failure; mfa: error.
        assert_eq!(rollup.evaluations_summary.pass_count, 2);
        assert_eq!(rollup.evaluations_summary.failure_count, 2);
        assert_eq!(rollup.evaluations_summary.error_count, 1);
        assert_eq!(rollup.evaluations_summary.total_count, 5);
        assert_eq!(rollup.evaluations_summary.completed_count, 4);
        assert_eq!(
            rollup.score,
            ComplianceScore {
                passed: 2,
                total_count: 5,
                percent: 40
            }
        );
        assert_eq!(rollup.score.exact_percent(), Some(40.0));
    }

    #[test]
    fn statuses_roll_up_worst_first() {
        let rollup = rollup_of(&[]);
        let status_of = |id: &str| rollup.control(id).expect("control").stats.status;
        assert_eq!(status_of("cp-9"), ComplianceStatus::NotCompliant);
        // mfa errored and the second assessment names a missing rule.
        assert_eq!(status_of("ia-2"), ComplianceStatus::UnableToPerform);
        let ia2 = &rollup
            .control("ia-2")
            .expect("control")
            .control_specifications[0];
        assert_eq!(ia2.stats.unable_to_perform_count, 2);
        assert_eq!(status_of("pe-3"), ComplianceStatus::UserEvaluationRequired);
        let summary = &rollup.controls_summary;
        assert_eq!(summary.stats.status, ComplianceStatus::NotCompliant);
        assert_eq!(summary.stats.total_count, 3);
        assert_eq!(summary.stats.not_compliant_count, 1);
        assert_eq!(summary.stats.user_evaluation_required_count, 1);
        assert_eq!(summary.not_compliant_controls[0].control_name, "CP-9");
    }

    #[test]
    fn resources_roll_up_and_top_failed_lists_the_worst() {
        let rollup = rollup_of(&[]);
        let status: HashMap<&str, ComplianceStatus> = rollup
            .resources
            .iter()
            .map(|resource| (resource.id.as_str(), resource.status))
            .collect();
        assert_eq!(status["b-good"], ComplianceStatus::Compliant);
        assert_eq!(status["b-bad"], ComplianceStatus::NotCompliant);
        assert_eq!(status["u-1"], ComplianceStatus::UnableToPerform);
        assert_eq!(status["vm-1"], ComplianceStatus::NotApplicable);
        assert_eq!(rollup.resources_summary.top_failed.len(), 1);
        assert_eq!(rollup.resources_summary.top_failed[0].failure_count, 2);
        assert_eq!(rollup.resources_summary.stats.total_count, 4);
    }

    #[test]
    fn attested_manual_assessment_counts_in_the_score() {
        let attestation: Attestation = serde_json::from_value(json!({
            "assessment_id": "badges", "status": "pass", "attested_on": "2026-02-01T00:00:00Z"
        }))
        .expect("attestation");
        let rollup = rollup_of(&[attestation]);
        assert_eq!(
            rollup.control("pe-3").expect("control").stats.status,
            ComplianceStatus::Compliant
        );
        assert_eq!(rollup.score.passed, 3);
        assert_eq!(rollup.score.total_count, 6);
        assert_eq!(rollup.score.percent, 50);
    }

    #[test]
    fn serialised_shapes_carry_the_sdk_required_fields() {
        let rollup = rollup_of(&[]);
        let summary = serde_json::to_value(&rollup.controls_summary).expect("encodes");
        for field in [
            "status",
            "total_count",
            "not_compliant_controls",
            "compliant_count",
        ] {
            assert!(
                summary.get(field).is_some(),
                "controls_summary lacks {field}"
            );
        }
        let control = serde_json::to_value(&rollup.controls[0]).expect("encodes");
        assert_eq!(control["status"], json!("not_compliant"));
        assert_eq!(
            control["control_specifications"][0]["assessments"][0]["pass_count"],
            json!(1)
        );
        let resource = serde_json::to_value(&rollup.resources[1]).expect("encodes");
        assert_eq!(resource["status"], json!("not_compliant"));
        assert_eq!(resource["account"]["id"], json!("1"));
        let round_trip: Rollup =
            serde_json::from_value(serde_json::to_value(&rollup).expect("encodes"))
                .expect("decodes");
        assert_eq!(round_trip, rollup);
    }

    #[test]
    fn empty_scan_scores_none() {
        let score = ComplianceScore::of(&EvaluationCounts::default());
        assert_eq!(score.percent, 0);
        assert_eq!(score.exact_percent(), None);
        assert_eq!(
            EvaluationCounts::default().status(),
            ComplianceStatus::NotApplicable
        );
    }
}
