//! The compiled pack: detection rules with filters applied, the literal prefilter, logsource
//! routing, and the correlation definitions.

use std::collections::{HashMap, HashSet};

use palisade_model::event::AuditSourceFormat;
use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, CorrelationEventMode,
    CorrelationSnapshot, Engine, EvaluationResult, JsonEvent,
};
use rsigma_parser::{CorrelationRule, SigmaRule};
use serde_json::Value;

use crate::pack::{ParsedPack, RuleInfo, RuleLoadError, correlation_info, rule_info};
use crate::prefilter::{LiteralTable, MatchScratch, Prefilter, rule_clauses};

/// Most contributing events a correlation finding carries (per group and window).
pub const MAX_CORRELATION_EVENTS: usize = 100;

/// A detection rule that matched one event.
#[derive(Debug, Clone)]
pub struct RuleMatch {
    /// Index into [`CompiledPack::detection_rules`].
    pub rule: u32,
    /// The evaluator's result (matched selections and fields), fed to correlations.
    pub result: EvaluationResult,
}

/// A correlation rule that fired.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CorrelationHit {
    /// Index into [`CompiledPack::correlation_rules`].
    pub rule: u32,
    /// The group-by fields and their values.
    pub group: Vec<(String, String)>,
    /// The count, distinct-value count, sum or average that met the condition.
    pub aggregated_value: f64,
    /// The rule's time window.
    pub timespan_secs: u64,
    /// The events that made it (at most [`MAX_CORRELATION_EVENTS`]), oldest first.
    pub events: Vec<Value>,
}

/// A rule pack ready to match: immutable and `Sync`, shared by every thread and every batch.
pub struct CompiledPack {
    engine: Engine,
    detection_rules: Vec<RuleInfo>,
    correlation_rules: Vec<RuleInfo>,
    correlation_index_by_key: HashMap<String, u32>,
    /// Detection rules a correlation refers to; only their matches feed correlation state.
    feeds_correlation: Vec<bool>,
    /// Whether a detection rule's own matches become findings (`generate`).
    generates_findings: Vec<bool>,
    /// The parsed rules correlations need, to build fresh correlation state.
    correlation_sources: (Vec<SigmaRule>, Vec<CorrelationRule>),
    prefilter: Prefilter,
    rules_by_format: [Vec<u32>; 4],
    any_format_rules: Vec<u32>,
    /// Bit `format as usize` is set when the rule's logsource admits that format.
    format_mask: Vec<u8>,
}

impl std::fmt::Debug for CompiledPack {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CompiledPack")
            .field("detection_rules", &self.detection_rules.len())
            .field("correlation_rules", &self.correlation_rules.len())
            .field("prefilter_literals", &self.prefilter.literal_count())
            .finish()
    }
}

fn format_slot(format: AuditSourceFormat) -> usize {
    match format {
        AuditSourceFormat::AwsCloudTrail => 0,
        AuditSourceFormat::IbmActivityTracker => 1,
        AuditSourceFormat::KubernetesAudit => 2,
        AuditSourceFormat::GenericJson => 3,
    }
}

/// The id and name a rule can be referred to by.
fn handles(rule: &SigmaRule) -> Vec<&String> {
    [rule.id.as_ref(), rule.name.as_ref()]
        .into_iter()
        .flatten()
        .collect()
}

/// Says whether a rule's logsource admits events of `format`: every field the rule sets must
/// equal the format's (events carry no `category`, so a rule that needs one sees none).
fn logsource_admits(rule: &RuleInfo, format: AuditSourceFormat) -> bool {
    let equal = |wanted: &Option<String>, actual: Option<&str>| match wanted {
        None => true,
        Some(wanted) => actual.is_some_and(|actual| actual.eq_ignore_ascii_case(wanted)),
    };
    rule.category.is_none()
        && equal(&rule.product, format.logsource_product())
        && equal(&rule.service, format.logsource_service())
}

impl CompiledPack {
    /// Compiles a parsed pack; rules, filters and correlations that do not compile are reported
    /// and left out.
    pub fn compile(parsed: ParsedPack) -> (Self, Vec<RuleLoadError>) {
        let mut errors = Vec::new();
        let mut engine = Engine::new();
        let mut detection_rules = Vec::new();
        let mut kept_rules: Vec<SigmaRule> = Vec::new();
        let mut table = LiteralTable::default();
        let mut clauses = Vec::new();
        for (rule, source_name) in parsed.rules {
            let info = rule_info(&rule, &source_name);
            if let Err(error) = engine.add_rule(&rule) {
                errors.push(RuleLoadError {
                    source_name,
                    rule: Some(info.id),
                    message: error.to_string(),
                });
                continue;
            }
            clauses.push(rule_clauses(&rule, &mut table));
            detection_rules.push(info);
            kept_rules.push(rule);
        }
        for (filter, source_name) in &parsed.filters {
            if let Err(error) = engine.apply_filter(filter) {
                errors.push(RuleLoadError {
                    source_name: source_name.clone(),
                    rule: Some(filter.id.clone().unwrap_or_else(|| filter.title.clone())),
                    message: error.to_string(),
                });
            }
        }

        // Correlations: keep those whose references resolve and that compile.
        let mut known: HashSet<String> = kept_rules
            .iter()
            .flat_map(|rule| [rule.id.clone(), rule.name.clone()])
            .flatten()
            .collect();
        for (correlation, _) in &parsed.correlations {
            known.extend(
                [correlation.id.clone(), correlation.name.clone()]
                    .into_iter()
                    .flatten(),
            );
        }
        let mut correlation_rules = Vec::new();
        let mut kept_correlations = Vec::new();
        let mut probe = CorrelationEngine::new(CorrelationConfig::default());
        for (correlation, source_name) in parsed.correlations {
            let info = correlation_info(&correlation, &source_name);
            if let Some(missing) = correlation
                .rules
                .iter()
                .find(|reference| !known.contains(*reference))
            {
                errors.push(RuleLoadError {
                    source_name,
                    rule: Some(info.id),
                    message: format!(
                        "correlation refers to rule `{missing}`, which is not in the pack"
                    ),
                });
                continue;
            }
            if let Err(error) = probe.add_correlation(&correlation) {
                errors.push(RuleLoadError {
                    source_name,
                    rule: Some(info.id),
                    message: error.to_string(),
                });
                continue;
            }
            correlation_rules.push(info);
            kept_correlations.push(correlation);
        }

        let referenced: HashSet<&String> = kept_correlations
            .iter()
            .flat_map(|c| c.rules.iter())
            .collect();
        let referenced_silently: HashSet<&String> = kept_correlations
            .iter()
            .filter(|correlation| !correlation.generate)
            .flat_map(|correlation| correlation.rules.iter())
            .collect();
        let referenced_loudly: HashSet<&String> = kept_correlations
            .iter()
            .filter(|correlation| correlation.generate)
            .flat_map(|correlation| correlation.rules.iter())
            .collect();
        let feeds_correlation: Vec<bool> = kept_rules
            .iter()
            .map(|rule| {
                handles(rule)
                    .iter()
                    .any(|handle| referenced.contains(handle))
            })
            .collect();
        let generates_findings: Vec<bool> = kept_rules
            .iter()
            .map(|rule| {
                let handles = handles(rule);
                let silenced = handles
                    .iter()
                    .any(|handle| referenced_silently.contains(handle));
                let loud = handles
                    .iter()
                    .any(|handle| referenced_loudly.contains(handle));
                !silenced || loud
            })
            .collect();
        let correlation_base_rules: Vec<SigmaRule> = kept_rules
            .into_iter()
            .zip(&feeds_correlation)
            .filter_map(|(rule, feeds)| feeds.then_some(rule))
            .collect();

        let mut rules_by_format: [Vec<u32>; 4] = Default::default();
        let mut format_mask = vec![0u8; detection_rules.len()];
        for (index, info) in detection_rules.iter().enumerate() {
            for format in AuditSourceFormat::ALL {
                if logsource_admits(info, format) {
                    rules_by_format[format_slot(format)].push(index as u32);
                    format_mask[index] |= 1 << format_slot(format);
                }
            }
        }
        let any_format_rules: Vec<u32> = (0..detection_rules.len() as u32)
            .filter(|index| format_mask[*index as usize] != 0)
            .collect();
        let correlation_index_by_key = correlation_rules
            .iter()
            .enumerate()
            .flat_map(|(index, info)| {
                [
                    Some(info.id.clone()),
                    Some(info.title.clone()),
                    info.name.clone(),
                ]
                .into_iter()
                .flatten()
                .map(move |key| (key, index as u32))
            })
            .collect();
        let pack = Self {
            engine,
            detection_rules,
            correlation_rules,
            correlation_index_by_key,
            feeds_correlation,
            generates_findings,
            correlation_sources: (correlation_base_rules, kept_correlations),
            prefilter: Prefilter::build(table, clauses),
            rules_by_format,
            any_format_rules,
            format_mask,
        };
        (pack, errors)
    }

    /// The detection rules, in pack order; [`RuleMatch::rule`] indexes this.
    pub fn detection_rules(&self) -> &[RuleInfo] {
        &self.detection_rules
    }

    /// The correlation rules; [`CorrelationHit::rule`] indexes this.
    pub fn correlation_rules(&self) -> &[RuleInfo] {
        &self.correlation_rules
    }

    /// Whether matches of detection rule `rule` become findings of their own (Sigma `generate`).
    pub fn generates_findings(&self, rule: u32) -> bool {
        self.generates_findings[rule as usize]
    }

    /// Whether matches of detection rule `rule` feed correlation state.
    pub fn feeds_correlation(&self, rule: u32) -> bool {
        self.feeds_correlation[rule as usize]
    }

    /// Whether the pack has correlation rules at all.
    pub fn has_correlations(&self) -> bool {
        !self.correlation_rules.is_empty()
    }

    /// Number of detection rules whose prefilter constrains anything (the others are evaluated
    /// on every event of their logsource).
    pub fn prefiltered_rule_count(&self) -> usize {
        (0..self.detection_rules.len())
            .filter(|rule| self.prefilter.is_constrained(*rule))
            .count()
    }

    /// Picks the rules that may match the record `raw` (its JSON text), of those that admit
    /// `format` (any format, when it is not known before parsing). Returns false when there are
    /// none, in which case the record need not be parsed at all.
    pub fn select_candidates(
        &self,
        raw: &[u8],
        format: Option<AuditSourceFormat>,
        scratch: &mut MatchScratch,
    ) -> bool {
        let subset = match format {
            Some(format) => &self.rules_by_format[format_slot(format)],
            None => &self.any_format_rules,
        };
        if subset.is_empty() {
            scratch.candidates.clear();
            return false;
        }
        self.prefilter.select(raw, subset, scratch);
        !scratch.candidates.is_empty()
    }

    /// Evaluates the candidates left in `scratch` by [`Self::select_candidates`] against the
    /// parsed record, now that its format is known, appending matches to `matches`.
    pub fn evaluate_candidates(
        &self,
        event: &Value,
        format: AuditSourceFormat,
        scratch: &MatchScratch,
        matches: &mut Vec<RuleMatch>,
    ) {
        let slot_bit = 1u8 << format_slot(format);
        let json_event = JsonEvent::borrow(event);
        for &rule in &scratch.candidates {
            if self.format_mask[rule as usize] & slot_bit == 0 {
                continue;
            }
            if let Some(result) =
                rsigma_eval::evaluate_rule(&self.engine.rules()[rule as usize], &json_event)
            {
                matches.push(RuleMatch { rule, result });
            }
        }
    }

    /// Evaluates every rule admitting `format` against an already parsed event (no prefilter).
    pub fn evaluate_all(
        &self,
        event: &Value,
        format: AuditSourceFormat,
        matches: &mut Vec<RuleMatch>,
    ) {
        let json_event = JsonEvent::borrow(event);
        for &rule in &self.rules_by_format[format_slot(format)] {
            if let Some(result) =
                rsigma_eval::evaluate_rule(&self.engine.rules()[rule as usize], &json_event)
            {
                matches.push(RuleMatch { rule, result });
            }
        }
    }

    /// Creates empty correlation state for this pack.
    pub fn new_correlation_state(&self) -> CorrelationState {
        let config = CorrelationConfig {
            // A correlation fires once per burst: after firing, the group starts counting afresh.
            action_on_match: CorrelationAction::Reset,
            correlation_event_mode: CorrelationEventMode::Full,
            max_correlation_events: MAX_CORRELATION_EVENTS,
            ..CorrelationConfig::default()
        };
        let mut engine = CorrelationEngine::new(config);
        let (rules, correlations) = &self.correlation_sources;
        for rule in rules {
            // These rules compiled once already; a failure here would be an rsigma bug.
            if engine.add_rule(rule).is_err() {
                continue;
            }
        }
        for correlation in correlations {
            if engine.add_correlation(correlation).is_err() {
                continue;
            }
        }
        CorrelationState { engine }
    }

    /// Restores correlation state saved with [`CorrelationState::snapshot`]. Groups of
    /// correlations no longer in the pack are dropped.
    ///
    /// # Errors
    /// [`SnapshotVersionError`] when the snapshot's schema version is not understood.
    pub fn restore_correlation_state(
        &self,
        snapshot: CorrelationSnapshot,
    ) -> Result<CorrelationState, SnapshotVersionError> {
        let version = snapshot.version;
        let mut state = self.new_correlation_state();
        if state.engine.import_state(snapshot) {
            Ok(state)
        } else {
            Err(SnapshotVersionError { version })
        }
    }

    /// Feeds one event's matches (of rules that feed correlations) to the correlation state and
    /// returns the correlations that fired. `time_secs` is the event's Unix time.
    pub fn correlate(
        &self,
        state: &mut CorrelationState,
        event: &Value,
        matches: &[RuleMatch],
        time_secs: i64,
    ) -> Vec<CorrelationHit> {
        let detections: Vec<EvaluationResult> = matches
            .iter()
            .filter(|found| self.feeds_correlation(found.rule))
            .map(|found| found.result.clone())
            .collect();
        if detections.is_empty() {
            return Vec::new();
        }
        let json_event = JsonEvent::borrow(event);
        let results = state
            .engine
            .process_with_detections(&json_event, detections, time_secs);
        results
            .into_iter()
            .filter_map(|result| {
                let correlation = result.as_correlation()?;
                let rule = result
                    .header
                    .rule_id
                    .as_ref()
                    .and_then(|id| self.correlation_index_by_key.get(id))
                    .or_else(|| self.correlation_index_by_key.get(&result.header.rule_title))
                    .copied()?;
                Some(CorrelationHit {
                    rule,
                    group: correlation.group_key.clone(),
                    aggregated_value: correlation.aggregated_value,
                    timespan_secs: correlation.timespan_secs,
                    events: correlation.events.clone().unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// Correlation state of one pack: windows per correlation and group. Owned by the caller and
/// passed to [`CompiledPack::correlate`]; saved and restored through [`CorrelationSnapshot`]
/// (serde), so a server can persist it between batches or hand a partition to another node.
pub struct CorrelationState {
    engine: CorrelationEngine,
}

impl std::fmt::Debug for CorrelationState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CorrelationState")
            .field("entries", &self.engine.state_count())
            .finish()
    }
}

impl CorrelationState {
    /// Returns the state as a serialisable snapshot.
    pub fn snapshot(&self) -> CorrelationSnapshot {
        self.engine.export_state()
    }

    /// Drops windows that ended before `now_secs` (Unix time), bounding memory on long runs.
    pub fn evict_expired(&mut self, now_secs: i64) {
        self.engine.evict_expired(now_secs);
    }

    /// Number of live (correlation, group) entries.
    pub fn entry_count(&self) -> usize {
        self.engine.state_count()
    }
}

/// A correlation snapshot written by an incompatible version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("correlation state snapshot version {version} is not supported")]
pub struct SnapshotVersionError {
    /// The version found in the snapshot.
    pub version: u32,
}
