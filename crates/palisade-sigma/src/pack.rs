//! Loading a rule pack: YAML documents in, parsed rules, correlations and filters out, with one
//! error per document that could not be used (the others still load).

use std::collections::{BTreeMap, HashMap};

use rsigma_parser::{
    ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType, Detection,
    FilterRule, FilterRuleTarget, Modifier, SigmaCollection, SigmaRule,
};
use serde::{Deserialize, Serialize};

/// One YAML file (one or more `---`-separated documents) of a pack.
#[derive(Debug, Clone)]
pub struct RuleSource {
    /// Where the text came from (a path), for error messages and findings.
    pub name: String,
    /// The YAML text.
    pub text: String,
}

/// Values for `${name}` / `${name:-default}` placeholders in pack files.
///
/// Sigma has no rule parameters; Palisade packs use the same `${…}` placeholders as Palisade's
/// configuration rules (e.g. the change window of a policy-change rule). They are substituted in
/// the text before parsing, so a rule file stays plain Sigma once its parameters are applied.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PackParameters(pub BTreeMap<String, String>);

/// A document (or a whole file) that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{source_name}{}: {message}", rule.as_ref().map(|rule| format!(" (rule {rule})")).unwrap_or_default())]
pub struct RuleLoadError {
    /// The file.
    pub source_name: String,
    /// The rule's id or title, when the document got that far.
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Sigma rule level, ordered by gravity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleLevel {
    /// `informational`
    Informational,
    /// `low`
    Low,
    /// `medium`
    Medium,
    /// `high`
    High,
    /// `critical`
    Critical,
}

impl RuleLevel {
    /// Returns the Sigma spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Informational => "informational",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub(crate) fn from_parsed(level: rsigma_parser::Level) -> Self {
        match level {
            rsigma_parser::Level::Informational => Self::Informational,
            rsigma_parser::Level::Low => Self::Low,
            rsigma_parser::Level::Medium => Self::Medium,
            rsigma_parser::Level::High => Self::High,
            rsigma_parser::Level::Critical => Self::Critical,
        }
    }
}

/// Whether a rule is a plain detection or a correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A detection rule, matched event by event.
    Detection,
    /// A correlation rule over other rules' matches.
    Correlation,
}

/// What a finding needs to know about the rule that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// The rule's `id` (its `name`, then its title, when it has none).
    pub id: String,
    /// `title`
    pub title: String,
    /// `name`, the handle correlations may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Detection or correlation.
    pub kind: RuleKind,
    /// `level`; `None` when the rule has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<RuleLevel>,
    /// `description`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `author` (kept: the Detection Rule License asks for it when rules are shipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// `references`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// `falsepositives`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub falsepositives: Vec<String>,
    /// `tags`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `logsource.product` (detections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// `logsource.service` (detections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `logsource.category` (detections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The rule's `remediation` attribute (a Palisade extension), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// The file the rule came from.
    pub source_name: String,
}

/// The parsed content of a pack, before compilation.
#[derive(Debug, Clone, Default)]
pub struct ParsedPack {
    pub(crate) rules: Vec<(SigmaRule, String)>,
    pub(crate) correlations: Vec<(CorrelationRule, String)>,
    pub(crate) filters: Vec<(FilterRule, String)>,
}

/// Substitutes `${name:-default}` placeholders, and `${name}` ones that have a value in
/// `parameters`; any other `${…}` text (unknown, unterminated) is left as it is, since plain
/// Sigma rules may contain it.
pub fn substitute_parameters(text: &str, parameters: &PackParameters) -> String {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        output.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            output.push_str(&rest[start..]);
            return output;
        };
        let body = &after[..end];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name.trim(), Some(default)),
            None => (body.trim(), None),
        };
        match (parameters.0.get(name), default) {
            (Some(value), _) => output.push_str(value),
            (None, Some(default)) => output.push_str(default),
            // Not a Palisade parameter (SigmaHQ text may contain `${project.version}`): kept.
            (None, None) => {
                output.push_str("${");
                output.push_str(body);
                output.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    output.push_str(rest);
    output
}

/// Parses every source; a bad document is reported and the rest of the pack still loads.
pub fn parse_sources(
    sources: &[RuleSource],
    parameters: &PackParameters,
) -> (ParsedPack, Vec<RuleLoadError>) {
    let mut pack = ParsedPack::default();
    let mut errors = Vec::new();
    for source in sources {
        let file_error = |message: String| RuleLoadError {
            source_name: source.name.clone(),
            rule: None,
            message,
        };
        let text = substitute_parameters(&source.text, parameters);
        let collection: SigmaCollection = match rsigma_parser::parse_sigma_yaml(&text) {
            Ok(collection) => collection,
            Err(error) => {
                errors.push(file_error(error.to_string()));
                continue;
            }
        };
        errors.extend(
            collection
                .errors
                .iter()
                .map(|message| file_error(message.clone())),
        );
        for rule in collection.rules {
            if let Some(message) = unsupported_in_detections(rule.detection.named.values()) {
                errors.push(RuleLoadError {
                    source_name: source.name.clone(),
                    rule: Some(rule.id.clone().unwrap_or_else(|| rule.title.clone())),
                    message,
                });
                continue;
            }
            pack.rules.push((rule, source.name.clone()));
        }
        for filter in collection.filters {
            if let Some(message) = unsupported_in_detections(filter.detection.named.values()) {
                errors.push(RuleLoadError {
                    source_name: source.name.clone(),
                    rule: Some(filter.id.clone().unwrap_or_else(|| filter.title.clone())),
                    message,
                });
                continue;
            }
            pack.filters.push((filter, source.name.clone()));
        }
        for correlation in collection.correlations {
            pack.correlations.push((correlation, source.name.clone()));
        }
    }
    pack.resolve_names();
    pack.default_temporal_conditions();
    (pack, errors)
}

/// Returns why a rule cannot be loaded, if it uses something Palisade refuses.
///
/// `expand` means "replace `%placeholder%` with a value from the processing pipeline"; Palisade
/// has no such pipeline, and matching the literal `%placeholder%` text would silently never
/// fire, so the rule is refused loudly instead.
fn unsupported_in_detections<'rule>(
    detections: impl Iterator<Item = &'rule Detection>,
) -> Option<String> {
    fn visit(detection: &Detection) -> Option<String> {
        match detection {
            Detection::AllOf(items) => items.iter().find_map(|item| {
                item.field.has_modifier(Modifier::Expand).then(|| {
                    format!(
                        "field `{}`: modifier `expand` is not supported (placeholders need a processing \
                         pipeline, which Palisade does not run)",
                        item.field.name.as_deref().unwrap_or("<keywords>")
                    )
                })
            }),
            Detection::AnyOf(parts) | Detection::And(parts) => parts.iter().find_map(visit),
            Detection::Keywords(_) => None,
            Detection::ArrayMatch { body, .. } => visit(body),
            Detection::Conditional { named, .. } => named.values().find_map(visit),
        }
    }
    detections.into_iter().find_map(visit)
}

impl ParsedPack {
    /// Gives `temporal` correlations without a condition the specification's meaning: every
    /// referenced rule must have matched in the window. rsigma-parser 0.23 defaults them to
    /// `gte: 1`, which fires as soon as any one of the rules matches.
    fn default_temporal_conditions(&mut self) {
        for (correlation, _) in &mut self.correlations {
            if correlation.correlation_type != CorrelationType::Temporal {
                continue;
            }
            if let CorrelationCondition::Threshold {
                predicates,
                field: None,
                ..
            } = &mut correlation.condition
                && predicates.as_slice() == [(ConditionOperator::Gte, 1)]
            {
                let every_rule = u64::try_from(correlation.rules.len()).unwrap_or(u64::MAX);
                *predicates = vec![(ConditionOperator::Gte, every_rule)];
            }
        }
    }

    /// Rewrites references by `name` to references by `id`, in correlations (`rules`, alias
    /// mappings) and filters, so the evaluator only ever has to look rules up by id. The Sigma
    /// specification allows either; rsigma 0.23 did not always resolve names.
    fn resolve_names(&mut self) {
        let mut name_to_id: HashMap<String, String> = HashMap::new();
        for (rule, _) in &self.rules {
            if let (Some(name), Some(id)) = (&rule.name, &rule.id) {
                name_to_id.insert(name.clone(), id.clone());
            }
        }
        for (correlation, _) in &self.correlations {
            if let (Some(name), Some(id)) = (&correlation.name, &correlation.id) {
                name_to_id.insert(name.clone(), id.clone());
            }
        }
        let resolve = |reference: &String| {
            name_to_id
                .get(reference)
                .cloned()
                .unwrap_or_else(|| reference.clone())
        };
        for (correlation, _) in &mut self.correlations {
            correlation.rules = correlation.rules.iter().map(resolve).collect();
            for alias in &mut correlation.aliases {
                alias.mapping = alias
                    .mapping
                    .iter()
                    .map(|(reference, field)| (resolve(reference), field.clone()))
                    .collect();
            }
        }
        for (filter, _) in &mut self.filters {
            if let FilterRuleTarget::Specific(references) = &mut filter.rules {
                *references = references.iter().map(resolve).collect();
            }
        }
    }
}

pub(crate) fn rule_key(id: &Option<String>, name: &Option<String>, title: &str) -> String {
    id.clone()
        .or_else(|| name.clone())
        .unwrap_or_else(|| title.to_owned())
}

pub(crate) fn rule_info(rule: &SigmaRule, source_name: &str) -> RuleInfo {
    RuleInfo {
        id: rule_key(&rule.id, &rule.name, &rule.title),
        title: rule.title.clone(),
        name: rule.name.clone(),
        kind: RuleKind::Detection,
        level: rule.level.map(RuleLevel::from_parsed),
        description: rule.description.clone(),
        author: rule.author.clone(),
        references: rule.references.clone(),
        falsepositives: rule.falsepositives.clone(),
        tags: rule.tags.clone(),
        product: rule.logsource.product.clone(),
        service: rule.logsource.service.clone(),
        category: rule.logsource.category.clone(),
        remediation: rule
            .custom_attributes
            .get("remediation")
            .and_then(|value| value.as_str())
            .map(|text| text.trim().to_owned()),
        source_name: source_name.to_owned(),
    }
}

pub(crate) fn correlation_info(correlation: &CorrelationRule, source_name: &str) -> RuleInfo {
    RuleInfo {
        id: rule_key(&correlation.id, &correlation.name, &correlation.title),
        title: correlation.title.clone(),
        name: correlation.name.clone(),
        kind: RuleKind::Correlation,
        level: correlation.level.map(RuleLevel::from_parsed),
        description: correlation.description.clone(),
        author: correlation.author.clone(),
        references: correlation.references.clone(),
        falsepositives: correlation.falsepositives.clone(),
        tags: correlation.tags.clone(),
        product: None,
        service: None,
        category: None,
        remediation: correlation
            .custom_attributes
            .get("remediation")
            .and_then(|value| value.as_str())
            .map(|text| text.trim().to_owned()),
        source_name: source_name.to_owned(),
    }
}
