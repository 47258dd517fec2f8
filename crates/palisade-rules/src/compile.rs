//! Compiling rules into a [`RuleSet`]: the form that evaluates without re-parsing anything.
//!
//! - Rules are grouped by target (`service_name`, `resource_kind`), so a resource only meets the
//!   rules that can apply to it, found with one map lookup.
//! - Within a group, every property path the rules read at the top level (and every target
//!   attribute) is interned to a *slot*. A resource's slots are resolved once, then every rule
//!   of the group reads its values by index: 200 rules reading the same 20 paths walk the JSON
//!   20 times, not 900.
//! - Expected values are parsed once: numbers, CIDRs, wildcards, string sets
//!   ([`crate::check::Check`]); `${parameters}` are substituted and typed at this point.
//! - Rego policies are compiled once.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::Value;

use crate::check::{Check, compile_check};
use crate::model::{
    Condition, ImportParameter, Operator, Quantifier, Rule, RuleBody, TargetAttribute,
};
use crate::params::{self, ParameterValues};
use crate::rego::RegoPolicy;
use crate::validate::{MAX_DEPTH, ValidationError, escape_pointer_token};
use palisade_model::resource::Resource;

/// Rules compiled for one set of parameter values; compile once, evaluate many times, from any
/// number of threads (`RuleSet` is `Send + Sync`).
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) groups: Vec<TargetGroup>,
    /// `service_name` → `resource_kind` → group index (two levels so lookups borrow the
    /// resource's strings instead of allocating a key).
    pub(crate) group_by_target: HashMap<String, HashMap<String, usize>>,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub id: String,
    pub attributes: Box<[CompiledLeaf]>,
    pub body: CompiledBody,
}

#[derive(Debug)]
pub(crate) enum CompiledBody {
    Config(Node),
    Rego(Box<RegoPolicy>),
}

/// Rules sharing a target, and the slots their top-level conditions read.
#[derive(Debug, Default)]
pub(crate) struct TargetGroup {
    pub rule_indices: Vec<usize>,
    pub config_paths: Vec<Path>,
    pub attribute_sources: Vec<AttributeSource>,
    pub has_rego: bool,
    /// Per config slot: whether some rule compares its texts (so a resource's view interns
    /// them) or reads it as addresses (so the view parses them), once per resource.
    pub slot_reads_texts: Vec<bool>,
    pub slot_reads_addresses: Vec<bool>,
    /// Every text the group's slot conditions compare against, as a small integer: a
    /// resource's slot texts are looked up here once, then rules compare integers.
    pub symbol_by_text: HashMap<Box<str>, u32>,
    config_slot_by_path: HashMap<String, u32>,
    attribute_slot_by_name: HashMap<String, u32>,
}

#[derive(Debug)]
pub(crate) enum Node {
    Leaf(Box<CompiledLeaf>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    SubRule(Box<CompiledSubRule>),
}

#[derive(Debug)]
pub(crate) struct CompiledLeaf {
    pub location: Location,
    pub check: Check,
    pub property: Box<str>,
    pub operator: Operator,
    /// The expected value after parameter substitution, reported in details.
    pub expected: Value,
    /// The check's expected texts interned in the group's table (config-slot leaves only).
    pub symbols: Box<[u32]>,
}

#[derive(Debug)]
pub(crate) struct CompiledSubRule {
    pub quantifier: Quantifier,
    pub array: Location,
    pub target_ref: Box<str>,
    pub inner: Node,
}

/// Where a condition's value comes from.
#[derive(Debug)]
pub(crate) enum Location {
    /// A config path resolved once per resource.
    ConfigSlot(u32),
    /// A target attribute resolved once per resource.
    AttributeSlot(u32),
    /// A path relative to the current sub-rule element.
    Relative(Path),
}

/// A dot path, split once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    segments: Box<[Segment]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    key: Box<str>,
    /// Set when the segment is a number: it then indexes arrays (and still names object keys).
    index: Option<usize>,
}

impl Path {
    pub(crate) fn parse(text: &str) -> Path {
        Path {
            segments: text
                .split('.')
                .map(|segment| Segment {
                    key: segment.into(),
                    index: if segment.bytes().all(|byte| byte.is_ascii_digit()) {
                        segment.parse().ok()
                    } else {
                        None
                    },
                })
                .collect(),
        }
    }

    pub(crate) fn resolve<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut current = root;
        for segment in self.segments.iter() {
            current = match current {
                Value::Object(members) => members.get(&*segment.key)?,
                Value::Array(items) => items.get(segment.index?)?,
                _ => return None,
            };
        }
        Some(current)
    }
}

/// Where a target attribute is read: the envelope first, then the config.
#[derive(Debug)]
pub(crate) enum AttributeSource {
    Envelope(EnvelopeField, Path),
    Tag(Box<str>, Path),
    Config(Path),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum EnvelopeField {
    Id,
    Environment,
    AccountId,
    ServiceName,
    ResourceKind,
    Region,
    ResourceGroup,
    Name,
}

impl AttributeSource {
    pub(crate) fn for_name(name: &str) -> AttributeSource {
        let field = match name {
            "id" | "resource_id" => Some(EnvelopeField::Id),
            "environment" => Some(EnvelopeField::Environment),
            "account_id" => Some(EnvelopeField::AccountId),
            "service_name" => Some(EnvelopeField::ServiceName),
            "resource_kind" => Some(EnvelopeField::ResourceKind),
            "region" | "location" => Some(EnvelopeField::Region),
            "resource_group" | "resource_group_id" => Some(EnvelopeField::ResourceGroup),
            "name" | "resource_name" => Some(EnvelopeField::Name),
            _ => None,
        };
        match (field, name.strip_prefix("tags.")) {
            (Some(field), _) => AttributeSource::Envelope(field, Path::parse(name)),
            (None, Some(tag)) if !tag.is_empty() => {
                AttributeSource::Tag(tag.into(), Path::parse(name))
            }
            _ => AttributeSource::Config(Path::parse(name)),
        }
    }

    pub(crate) fn resolve<'r>(&self, resource: &'r Resource) -> Option<Cow<'r, Value>> {
        match self {
            AttributeSource::Envelope(field, fallback) => {
                let envelope = match field {
                    EnvelopeField::Id => Some(&resource.id),
                    EnvelopeField::Environment => Some(&resource.environment),
                    EnvelopeField::AccountId => Some(&resource.account_id),
                    EnvelopeField::ServiceName => Some(&resource.service_name),
                    EnvelopeField::ResourceKind => Some(&resource.resource_kind),
                    EnvelopeField::Region => resource.region.as_ref(),
                    EnvelopeField::ResourceGroup => resource.resource_group.as_ref(),
                    EnvelopeField::Name => resource.name.as_ref(),
                };
                match envelope.filter(|text| !text.is_empty()) {
                    Some(text) => Some(Cow::Owned(Value::String(text.clone()))),
                    None => fallback.resolve(&resource.config).map(Cow::Borrowed),
                }
            }
            AttributeSource::Tag(tag, fallback) => resource
                .tags
                .get(&**tag)
                .or_else(|| fallback.resolve(&resource.config))
                .map(Cow::Borrowed),
            AttributeSource::Config(path) => path.resolve(&resource.config).map(Cow::Borrowed),
        }
    }
}

impl TargetGroup {
    fn config_slot(&mut self, property: &str) -> u32 {
        if let Some(slot) = self.config_slot_by_path.get(property) {
            return *slot;
        }
        let slot = u32::try_from(self.config_paths.len()).unwrap_or(u32::MAX);
        self.config_paths.push(Path::parse(property));
        self.slot_reads_texts.push(false);
        self.slot_reads_addresses.push(false);
        self.config_slot_by_path.insert(property.to_string(), slot);
        slot
    }

    /// Records what a condition on a config slot reads, and interns its expected texts.
    fn note_slot_check(&mut self, slot: u32, check: &Check) -> Box<[u32]> {
        let index = slot as usize;
        if check.reads_addresses()
            && let Some(flag) = self.slot_reads_addresses.get_mut(index)
        {
            *flag = true;
        }
        let texts = check.expected_texts();
        if texts.is_empty() {
            return Box::new([]);
        }
        if let Some(flag) = self.slot_reads_texts.get_mut(index) {
            *flag = true;
        }
        texts
            .iter()
            .map(|text| {
                let next = u32::try_from(self.symbol_by_text.len()).unwrap_or(u32::MAX - 1);
                *self.symbol_by_text.entry(text.clone()).or_insert(next)
            })
            .collect()
    }

    fn attribute_slot(&mut self, name: &str) -> u32 {
        if let Some(slot) = self.attribute_slot_by_name.get(name) {
            return *slot;
        }
        let slot = u32::try_from(self.attribute_sources.len()).unwrap_or(u32::MAX);
        self.attribute_sources.push(AttributeSource::for_name(name));
        self.attribute_slot_by_name.insert(name.to_string(), slot);
        slot
    }
}

/// Compiles one rule's pieces, collecting errors.
struct RuleCompiler<'a> {
    rule_index: usize,
    rule_id: &'a str,
    declared: &'a [ImportParameter],
    values: &'a ParameterValues,
    errors: Vec<ValidationError>,
}

impl RuleCompiler<'_> {
    fn error(&mut self, pointer: String, message: String) {
        self.errors.push(ValidationError {
            rule_index: self.rule_index,
            rule_id: Some(self.rule_id.to_string()),
            pointer,
            message,
        });
    }

    /// Compiles a value; values with parameters that cannot be used become an always-error
    /// check (the rule is fine, the attachment's value is not).
    fn check(
        &mut self,
        operator: Operator,
        value: Option<&Value>,
        pointer: &str,
    ) -> (Check, Value) {
        let Some(value) = value else {
            return match compile_check(operator, None) {
                Ok(check) => (check, Value::Null),
                Err(_) => {
                    self.error(
                        format!("{pointer}/value"),
                        format!("missing value (operator `{operator}` needs one)"),
                    );
                    (
                        Check::Unresolved {
                            reason: "missing value".into(),
                        },
                        Value::Null,
                    )
                }
            };
        };
        if params::has_placeholder(value) {
            for (placeholder_pointer, name) in params::placeholders(value) {
                if !self.declared.iter().any(|parameter| parameter.name == name) {
                    self.error(
                        format!("{pointer}/value{placeholder_pointer}"),
                        format!("unknown parameter \"{name}\" (declare it in import.parameters)"),
                    );
                }
            }
            return match params::substitute(value, self.declared, self.values) {
                Ok(substituted) => match compile_check(operator, Some(&substituted)) {
                    Ok(check) => (check, substituted),
                    Err(errors) => {
                        let reasons: Vec<String> =
                            errors.into_iter().map(|(_, message)| message).collect();
                        let reason = format!(
                            "parameter value {substituted} does not fit `{operator}`: {}",
                            reasons.join("; ")
                        );
                        (
                            Check::Unresolved {
                                reason: reason.into(),
                            },
                            substituted,
                        )
                    }
                },
                Err(reason) => (
                    Check::Unresolved {
                        reason: reason.into(),
                    },
                    value.clone(),
                ),
            };
        }
        match compile_check(operator, Some(value)) {
            Ok(check) => (check, value.clone()),
            Err(errors) => {
                for (value_pointer, message) in errors {
                    self.error(format!("{pointer}/value{value_pointer}"), message);
                }
                (
                    Check::Unresolved {
                        reason: "invalid value".into(),
                    },
                    value.clone(),
                )
            }
        }
    }

    fn node(
        &mut self,
        condition: &Condition,
        pointer: &str,
        depth: usize,
        group: &mut Option<&mut TargetGroup>,
    ) -> Node {
        if depth > MAX_DEPTH {
            self.error(
                pointer.to_string(),
                format!("conditions nest deeper than {MAX_DEPTH} levels"),
            );
            return Node::And(Box::new([]));
        }
        match condition {
            Condition::Leaf(leaf) => {
                let (check, expected) = self.check(leaf.operator, leaf.value.as_ref(), pointer);
                if leaf.property.is_empty() || leaf.property.split('.').any(str::is_empty) {
                    self.error(
                        format!("{pointer}/property"),
                        format!("bad property path \"{}\"", leaf.property),
                    );
                }
                let (location, symbols) = match group {
                    Some(group) => {
                        let slot = group.config_slot(&leaf.property);
                        let symbols = group.note_slot_check(slot, &check);
                        (Location::ConfigSlot(slot), symbols)
                    }
                    None => (
                        Location::Relative(Path::parse(&leaf.property)),
                        Box::default(),
                    ),
                };
                Node::Leaf(Box::new(CompiledLeaf {
                    location,
                    check,
                    property: leaf.property.as_str().into(),
                    operator: leaf.operator,
                    expected,
                    symbols,
                }))
            }
            Condition::And(children) | Condition::Or(children) => {
                let key = if matches!(condition, Condition::And(_)) {
                    "and"
                } else {
                    "or"
                };
                if children.is_empty() {
                    self.error(
                        format!("{pointer}/{key}"),
                        format!("`{key}` must list at least one condition"),
                    );
                }
                let compiled: Box<[Node]> = children
                    .iter()
                    .enumerate()
                    .map(|(index, child)| {
                        self.node(child, &format!("{pointer}/{key}/{index}"), depth + 1, group)
                    })
                    .collect();
                if key == "and" {
                    Node::And(compiled)
                } else {
                    Node::Or(compiled)
                }
            }
            Condition::SubRule(sub_rule) => {
                let base = format!("{pointer}/{}", sub_rule.quantifier.as_str());
                let array = match group {
                    Some(group) => Location::ConfigSlot(group.config_slot(&sub_rule.target_ref)),
                    None => Location::Relative(Path::parse(&sub_rule.target_ref)),
                };
                // Inside a sub-rule, paths are relative to each element: no slots.
                let inner = self.node(
                    &sub_rule.required_config,
                    &format!("{base}/required_config"),
                    depth + 1,
                    &mut None,
                );
                Node::SubRule(Box::new(CompiledSubRule {
                    quantifier: sub_rule.quantifier,
                    array,
                    target_ref: sub_rule.target_ref.as_str().into(),
                    inner,
                }))
            }
        }
    }

    fn attribute(
        &mut self,
        index: usize,
        attribute: &TargetAttribute,
        group: &mut TargetGroup,
    ) -> CompiledLeaf {
        let pointer = format!("/target/additional_target_attributes/{index}");
        let (check, expected) = self.check(attribute.operator, attribute.value.as_ref(), &pointer);
        CompiledLeaf {
            location: Location::AttributeSlot(group.attribute_slot(&attribute.name)),
            check,
            property: attribute.name.as_str().into(),
            operator: attribute.operator,
            expected,
            symbols: Box::default(),
        }
    }
}

impl RuleSet {
    /// Compiles rules for one set of parameter values.
    ///
    /// Rules built by [`crate::validate::parse_rules`] are already valid; rules built in code
    /// are checked here with the same rules, and every problem comes back at once. A parameter
    /// without a usable value is not a compile error: the conditions using it evaluate to
    /// `error` with the reason, as SCC does.
    pub fn compile(
        rules: &[Rule],
        values: &ParameterValues,
    ) -> Result<RuleSet, Vec<ValidationError>> {
        let mut rule_set = RuleSet {
            rules: Vec::with_capacity(rules.len()),
            groups: Vec::new(),
            group_by_target: HashMap::new(),
        };
        let mut errors = Vec::new();
        let mut seen_ids = HashMap::new();
        for (rule_index, rule) in rules.iter().enumerate() {
            if let Some(first_index) = seen_ids.insert(rule.id.as_str(), rule_index) {
                errors.push(ValidationError {
                    rule_index,
                    rule_id: Some(rule.id.clone()),
                    pointer: "/id".into(),
                    message: format!(
                        "duplicate rule id \"{}\" (also rule #{first_index})",
                        rule.id
                    ),
                });
            }
            let group_index =
                rule_set.group_index_for(&rule.target.service_name, &rule.target.resource_kind);
            let group = &mut rule_set.groups[group_index];
            let mut compiler = RuleCompiler {
                rule_index,
                rule_id: &rule.id,
                declared: &rule.parameters,
                values,
                errors: Vec::new(),
            };
            let attributes: Box<[CompiledLeaf]> = rule
                .target
                .additional_target_attributes
                .iter()
                .enumerate()
                .map(|(index, attribute)| compiler.attribute(index, attribute, group))
                .collect();
            let body = match &rule.body {
                RuleBody::Config(condition) => CompiledBody::Config(compiler.node(
                    condition,
                    "/required_config",
                    1,
                    &mut Some(&mut *group),
                )),
                RuleBody::Rego(source) => {
                    match RegoPolicy::compile(&escape_pointer_token(&rule.id), source) {
                        Ok(policy) => {
                            group.has_rego = true;
                            CompiledBody::Rego(Box::new(policy))
                        }
                        Err(message) => {
                            compiler.error("/rego".into(), message);
                            CompiledBody::Config(Node::And(Box::new([])))
                        }
                    }
                }
            };
            group.rule_indices.push(rule_index);
            errors.extend(compiler.errors);
            rule_set.rules.push(CompiledRule {
                id: rule.id.clone(),
                attributes,
                body,
            });
        }
        if errors.is_empty() {
            Ok(rule_set)
        } else {
            Err(errors)
        }
    }

    /// Parses and compiles rules from JSON (one rule or an array) in one step, reporting the
    /// mistakes of every rule — structural and compile-time (Rego syntax) — together.
    pub fn from_json(
        document: &Value,
        values: &ParameterValues,
    ) -> Result<RuleSet, Vec<ValidationError>> {
        RuleSet::parse_and_compile(document, values).map(|(_, rule_set)| rule_set)
    }

    /// As [`RuleSet::from_json`], also returning the parsed rules.
    pub fn parse_and_compile(
        document: &Value,
        values: &ParameterValues,
    ) -> Result<(Vec<Rule>, RuleSet), Vec<ValidationError>> {
        let (parsed, mut errors) = crate::validate::parse_rules_partially(document);
        let (positions, rules): (Vec<usize>, Vec<Rule>) = parsed.into_iter().unzip();
        match RuleSet::compile(&rules, values) {
            Ok(rule_set) if errors.is_empty() => return Ok((rules, rule_set)),
            Ok(_) => {}
            Err(compile_errors) => errors.extend(compile_errors.into_iter().map(|mut error| {
                error.rule_index = positions
                    .get(error.rule_index)
                    .copied()
                    .unwrap_or(error.rule_index);
                error
            })),
        }
        errors.sort_by_key(|error| error.rule_index);
        Err(errors)
    }

    fn group_index_for(&mut self, service_name: &str, resource_kind: &str) -> usize {
        let kinds = self
            .group_by_target
            .entry(service_name.to_string())
            .or_default();
        if let Some(index) = kinds.get(resource_kind) {
            return *index;
        }
        let index = self.groups.len();
        kinds.insert(resource_kind.to_string(), index);
        self.groups.push(TargetGroup::default());
        index
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the set has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The id of the rule at `rule_index` (as in [`crate::eval::Outcome::rule_index`]).
    pub fn rule_id(&self, rule_index: usize) -> Option<&str> {
        self.rules.get(rule_index).map(|rule| rule.id.as_str())
    }

    pub(crate) fn group_for(&self, resource: &Resource) -> Option<&TargetGroup> {
        let index = self
            .group_by_target
            .get(&resource.service_name)?
            .get(&resource.resource_kind)?;
        self.groups.get(*index)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_index_arrays_and_name_numeric_keys() {
        let document = json!({"a": {"b": [{"c": 1}, {"c": 2}]}, "m": {"0": "zero"}});
        assert_eq!(Path::parse("a.b.1.c").resolve(&document), Some(&json!(2)));
        assert_eq!(Path::parse("m.0").resolve(&document), Some(&json!("zero")));
        assert_eq!(Path::parse("a.b.x").resolve(&document), None);
        assert_eq!(Path::parse("a.b.9.c").resolve(&document), None);
    }

    #[test]
    fn rule_set_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RuleSet>();
    }

    #[test]
    fn shared_paths_use_one_slot_per_group() {
        let rules = crate::validate::parse_rules(&json!([
            {"id": "a", "target": {"service_name": "s", "resource_kind": "k"},
             "required_config": {"and": [{"property": "x.y", "operator": "is_true"}, {"property": "z", "operator": "is_empty"}]}},
            {"id": "b", "target": {"service_name": "s", "resource_kind": "k"},
             "required_config": {"property": "x.y", "operator": "is_false"}},
            {"id": "c", "target": {"service_name": "s", "resource_kind": "other"},
             "required_config": {"property": "x.y", "operator": "is_false"}}
        ]))
        .expect("valid");
        let rule_set = RuleSet::compile(&rules, &ParameterValues::default()).expect("compiles");
        assert_eq!(rule_set.groups.len(), 2);
        assert_eq!(rule_set.groups[0].config_paths.len(), 2);
        assert_eq!(rule_set.groups[0].rule_indices, [0, 1]);
    }

    #[test]
    fn compile_reports_problems_of_rules_built_in_code() {
        let rules = crate::validate::parse_rules(&json!([
            {"id": "a", "target": {"service_name": "s", "resource_kind": "k"},
             "required_config": {"property": "x", "operator": "is_true"}},
            {"id": "bad-rego", "type": "rego", "target": {"service_name": "s", "resource_kind": "k"},
             "rego": "package p\ndeny contains msg if {"}
        ]))
        .expect("structurally valid");
        let mut duplicated = rules.clone();
        duplicated.push(rules[0].clone());
        let errors =
            RuleSet::compile(&duplicated, &ParameterValues::default()).expect_err("invalid");
        let pointers: Vec<(usize, &str)> = errors
            .iter()
            .map(|error| (error.rule_index, error.pointer.as_str()))
            .collect();
        assert_eq!(pointers, [(1, "/rego"), (2, "/id")]);
    }
}
