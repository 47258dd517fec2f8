//! Evaluating a [`RuleSet`] against resources: Kleene three-valued results with details.
//!
//! Evaluation runs in two passes per (rule, resource) pair. The fast pass computes only the
//! status and short-circuits (`and` stops at the first failure, `or` at the first pass). Only
//! when the status is not `pass` does the explaining pass run, visiting every child to collect
//! the deciding leaves — so the common, compliant case allocates nothing.
//!
//! Deciding leaves: a node's details are the details of its children whose status equals the
//! node's own (the failing children of a failing `and`, every child of a failing `or`, the
//! erroring children of an erroring node). Sub-rule element details carry the element's path
//! (`rules.2.port`).

use std::borrow::Cow;
use std::cell::OnceCell;

use chrono::{DateTime, Utc};
use palisade_model::resource::Resource;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::check::Status;
use crate::check::{
    Check, IpRange, Judgement, NO_SYMBOL, SlotAddresses, SlotFacts, SlotTexts, each_text,
};
use crate::compile::{
    CompiledBody, CompiledLeaf, CompiledSubRule, Location, Node, RuleSet, TargetGroup,
};
use crate::rego;

/// The result of one rule on one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The rule's id.
    pub rule_id: String,
    /// The resource's id.
    pub resource_id: String,
    /// `pass`, `failure` or `error`.
    pub status: Status,
    /// Why, for failures and errors (empty on pass).
    pub details: Vec<Detail>,
}

/// One deciding condition of a failure or error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    /// The property checked (a config dot path, a target attribute, or the Rego entrypoint).
    pub property: String,
    /// The operator (`string_equals`, …; a sub-rule quantifier; `rego`).
    pub operator: Cow<'static, str>,
    /// The expected value after parameter substitution (`null` when the operator takes none).
    pub expected_value: Value,
    /// The value found; `null` when the property is missing.
    pub found_value: Option<Value>,
    /// Why the condition did not pass.
    pub reason: Cow<'static, str>,
}

/// The result of one rule on one resource, without copies of the ids: what hot loops (scans
/// storing results in bulk, benchmarks) consume. [`RuleSet::rule_id`] gives the rule's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Index of the rule in the list the set was compiled from.
    pub rule_index: usize,
    /// `pass`, `failure` or `error`.
    pub status: Status,
    /// Why, for failures and errors (empty on pass).
    pub details: Vec<Detail>,
}

/// A resource's values for the slots of its target group, resolved once, with the digested
/// forms the group's rules compare (interned texts, parsed addresses): 200 rules reading the
/// same property share one lookup and one parse.
struct ResourceView<'r> {
    config_slots: Vec<Option<&'r Value>>,
    slot_texts: Vec<SlotTexts>,
    slot_addresses: Vec<SlotAddresses>,
    symbols: Vec<u32>,
    ranges: Vec<IpRange>,
    attribute_slots: Vec<Option<Cow<'r, Value>>>,
}

impl<'r> ResourceView<'r> {
    fn new(group: &TargetGroup, resource: &'r Resource) -> Self {
        let config_slots: Vec<Option<&'r Value>> = group
            .config_paths
            .iter()
            .map(|path| path.resolve(&resource.config))
            .collect();
        let mut symbols = Vec::new();
        let mut ranges = Vec::new();
        let mut slot_texts = vec![SlotTexts::Unknown; config_slots.len()];
        let mut slot_addresses = vec![SlotAddresses::Unknown; config_slots.len()];
        for (index, found) in config_slots.iter().enumerate() {
            let Some(found) = found.filter(|found| !found.is_null()) else {
                continue;
            };
            if group.slot_reads_texts.get(index).copied().unwrap_or(false) {
                let start = symbols.len();
                let all_texts = each_text(found, |text| {
                    symbols.push(group.symbol_by_text.get(text).copied().unwrap_or(NO_SYMBOL));
                });
                slot_texts[index] = match (all_texts, found) {
                    (false, _) => {
                        symbols.truncate(start);
                        SlotTexts::NotTexts
                    }
                    (true, Value::Array(_)) => {
                        SlotTexts::List(table_index(start), table_index(symbols.len()))
                    }
                    (true, _) => SlotTexts::Scalar(symbols.pop().unwrap_or(NO_SYMBOL)),
                };
            }
            if group
                .slot_reads_addresses
                .get(index)
                .copied()
                .unwrap_or(false)
            {
                let start = ranges.len();
                let mut all_parsed = true;
                let all_texts = each_text(found, |text| match IpRange::parse(text) {
                    Some(range) if all_parsed => ranges.push(range),
                    _ => all_parsed = false,
                });
                slot_addresses[index] = if all_texts && all_parsed {
                    SlotAddresses::Parsed(table_index(start), table_index(ranges.len()))
                } else {
                    ranges.truncate(start);
                    SlotAddresses::Unparsable
                };
            }
        }
        ResourceView {
            config_slots,
            slot_texts,
            slot_addresses,
            symbols,
            ranges,
            attribute_slots: group
                .attribute_sources
                .iter()
                .map(|source| source.resolve(resource))
                .collect(),
        }
    }

    fn facts(&self, slot: usize) -> SlotFacts<'_> {
        SlotFacts {
            texts: self.slot_texts.get(slot).copied().unwrap_or_default(),
            addresses: self.slot_addresses.get(slot).copied().unwrap_or_default(),
            symbols: &self.symbols,
            ranges: &self.ranges,
        }
    }
}

/// A position in a view's symbol or address table (tables past `u32::MAX` entries would need
/// a resource with billions of list elements; such positions saturate and read as empty).
fn table_index(position: usize) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

/// What a condition reads from: the resource (top level) or a sub-rule element.
#[derive(Clone, Copy)]
enum Scope<'s, 'r> {
    Resource(&'s ResourceView<'r>),
    Element(&'s Value),
}

impl<'s> Scope<'s, '_> {
    fn fetch(self, location: &Location) -> Option<&'s Value> {
        match (self, location) {
            (Scope::Resource(view), Location::ConfigSlot(slot)) => {
                view.config_slots.get(*slot as usize).copied().flatten()
            }
            (Scope::Resource(view), Location::AttributeSlot(slot)) => view
                .attribute_slots
                .get(*slot as usize)
                .and_then(|value| value.as_deref()),
            (Scope::Element(element), Location::Relative(path)) => path.resolve(element),
            // The compiler gives top-level conditions slots and sub-rule conditions relative
            // paths, so the other pairs do not occur.
            _ => None,
        }
    }
}

impl CompiledLeaf {
    fn judge(&self, scope: Scope<'_, '_>, now: DateTime<Utc>) -> Judgement {
        match (scope, &self.location) {
            (Scope::Resource(view), Location::ConfigSlot(slot)) => {
                let slot = *slot as usize;
                let found = view.config_slots.get(slot).copied().flatten();
                self.check
                    .judge_with_facts(found, &self.symbols, &view.facts(slot), now)
            }
            _ => self.check.judge(scope.fetch(&self.location), now),
        }
    }

    fn explain(
        &self,
        scope: Scope<'_, '_>,
        now: DateTime<Utc>,
        prefix: &str,
        details: &mut Vec<Detail>,
    ) -> Status {
        let found = scope.fetch(&self.location);
        let judgement = self.judge(scope, now);
        if judgement.status != Status::Pass {
            let reason = match &self.check {
                Check::Unresolved { reason } => Cow::Owned(reason.to_string()),
                _ => Cow::Borrowed(judgement.reason),
            };
            details.push(Detail {
                property: if prefix.is_empty() {
                    self.property.to_string()
                } else {
                    format!("{prefix}{}", self.property)
                },
                operator: Cow::Borrowed(self.operator.as_str()),
                expected_value: self.expected.clone(),
                found_value: found.cloned(),
                reason,
            });
        }
        judgement.status
    }
}

impl Node {
    /// Status only, short-circuiting.
    fn status(&self, scope: Scope<'_, '_>, now: DateTime<Utc>) -> Status {
        match self {
            Node::Leaf(leaf) => leaf.judge(scope, now).status,
            Node::And(children) => {
                let mut status = Status::Pass;
                for child in children.iter() {
                    match child.status(scope, now) {
                        Status::Failure => return Status::Failure,
                        Status::Error => status = Status::Error,
                        Status::Pass => {}
                    }
                }
                status
            }
            Node::Or(children) => {
                let mut status = Status::Failure;
                for child in children.iter() {
                    match child.status(scope, now) {
                        Status::Pass => return Status::Pass,
                        Status::Error => status = Status::Error,
                        Status::Failure => {}
                    }
                }
                status
            }
            Node::SubRule(sub_rule) => sub_rule.status(scope, now),
        }
    }

    /// Status plus the details of the deciding leaves.
    fn explain(
        &self,
        scope: Scope<'_, '_>,
        now: DateTime<Utc>,
        prefix: &str,
        details: &mut Vec<Detail>,
    ) -> Status {
        match self {
            Node::Leaf(leaf) => leaf.explain(scope, now, prefix, details),
            Node::And(children) => explain_children(children, scope, now, prefix, details, true),
            Node::Or(children) => explain_children(children, scope, now, prefix, details, false),
            Node::SubRule(sub_rule) => sub_rule.explain(scope, now, prefix, details),
        }
    }
}

/// Kleene `and` (`conjunction`) or `or` over results.
fn combine(statuses: impl IntoIterator<Item = Status>, conjunction: bool) -> Status {
    let (deciding, default) = if conjunction {
        (Status::Failure, Status::Pass)
    } else {
        (Status::Pass, Status::Failure)
    };
    let mut result = default;
    for status in statuses {
        if status == deciding {
            return deciding;
        }
        if status == Status::Error {
            result = Status::Error;
        }
    }
    result
}

/// Explains a list node: its status from the children's statuses, then the details of the
/// children whose status equals it. Statuses are recomputed rather than buffered, so no
/// temporary lists are allocated on this path.
fn explain_children(
    children: &[Node],
    scope: Scope<'_, '_>,
    now: DateTime<Utc>,
    prefix: &str,
    details: &mut Vec<Detail>,
    conjunction: bool,
) -> Status {
    let status = combine(
        children.iter().map(|child| child.status(scope, now)),
        conjunction,
    );
    for child in children {
        if child.status(scope, now) == status {
            child.explain(scope, now, prefix, details);
        }
    }
    status
}

const ABSENT_ARRAY: &str = "array is missing or empty";
const NOT_ARRAY: &str = "property is not an array";

impl CompiledSubRule {
    fn elements<'s>(&self, scope: Scope<'s, '_>) -> Result<&'s [Value], Option<&'s Value>> {
        match scope.fetch(&self.array) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items.as_slice()),
            Some(other) => Err(Some(other)),
        }
    }

    fn status(&self, scope: Scope<'_, '_>, now: DateTime<Utc>) -> Status {
        let elements = match self.elements(scope) {
            Ok(elements) => elements,
            Err(_) => return Status::Error,
        };
        if elements.is_empty() {
            return self.absent_status();
        }
        let conjunction = !self.quantifier.is_any();
        combine(
            elements
                .iter()
                .map(|element| self.inner.status(Scope::Element(element), now)),
            conjunction,
        )
    }

    fn absent_status(&self) -> Status {
        if self.quantifier.passes_when_absent() {
            Status::Pass
        } else {
            Status::Failure
        }
    }

    fn explain(
        &self,
        scope: Scope<'_, '_>,
        now: DateTime<Utc>,
        prefix: &str,
        details: &mut Vec<Detail>,
    ) -> Status {
        let elements = match self.elements(scope) {
            Ok(elements) => elements,
            Err(found) => {
                details.push(self.detail(prefix, found.cloned(), NOT_ARRAY));
                return Status::Error;
            }
        };
        if elements.is_empty() {
            let status = self.absent_status();
            if status != Status::Pass {
                details.push(self.detail(prefix, scope.fetch(&self.array).cloned(), ABSENT_ARRAY));
            }
            return status;
        }
        let conjunction = !self.quantifier.is_any();
        let status = combine(
            elements
                .iter()
                .map(|element| self.inner.status(Scope::Element(element), now)),
            conjunction,
        );
        for (index, element) in elements.iter().enumerate() {
            if self.inner.status(Scope::Element(element), now) == status {
                let element_prefix = format!("{prefix}{}.{index}.", self.target_ref);
                self.inner
                    .explain(Scope::Element(element), now, &element_prefix, details);
            }
        }
        status
    }

    fn detail(&self, prefix: &str, found: Option<Value>, reason: &'static str) -> Detail {
        Detail {
            property: format!("{prefix}{}", self.target_ref),
            operator: Cow::Borrowed(self.quantifier.as_str()),
            expected_value: Value::Null,
            found_value: found,
            reason: Cow::Borrowed(reason),
        }
    }
}

/// The status of one rule on one resource, without details: what the allocation-free hot path
/// ([`RuleSet::evaluate_verdicts`], [`RuleSet::fold_batch`]) produces. Details are built only
/// when asked for, with [`Verdict::details`] (which re-runs the explaining pass of that one rule),
/// so bulk consumers that count, filter or store only some results pay nothing for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Index of the rule in the list the set was compiled from ([`RuleSet::rule_id`]).
    pub rule_index: usize,
    /// `pass`, `failure` or `error`.
    pub status: Status,
}

impl Verdict {
    /// The details of this verdict, materialised now: the same list [`RuleSet::evaluate`] gives
    /// for this (rule, resource) pair. Pass `resource` and `now` as given to the evaluation.
    pub fn details(
        &self,
        rule_set: &RuleSet,
        resource: &Resource,
        now: DateTime<Utc>,
    ) -> Vec<Detail> {
        if self.status == Status::Pass {
            return Vec::new();
        }
        rule_set.rule_details(self.rule_index, resource, now)
    }
}

impl RuleSet {
    /// Evaluates every applicable rule on one resource, in rule order.
    pub fn evaluate(&self, resource: &Resource, now: DateTime<Utc>) -> Vec<Evaluation> {
        let mut outcomes = Vec::new();
        self.evaluate_outcomes(resource, now, &mut outcomes);
        outcomes
            .into_iter()
            .map(|outcome| Evaluation {
                rule_id: self.rules[outcome.rule_index].id.clone(),
                resource_id: resource.id.clone(),
                status: outcome.status,
                details: outcome.details,
            })
            .collect()
    }

    /// Calls `visit` with each applicable rule of `resource`'s group, in rule order, and the
    /// scope its conditions read. A rule applies when its `service_name` and `resource_kind`
    /// equal the resource's and every additional target attribute passes.
    fn for_each_applicable(
        &self,
        resource: &Resource,
        now: DateTime<Utc>,
        mut visit: impl FnMut(usize, &CompiledBody, Scope<'_, '_>, &OnceCell<regorus::Value>),
    ) {
        let Some(group) = self.group_for(resource) else {
            return;
        };
        let view = ResourceView::new(group, resource);
        let scope = Scope::Resource(&view);
        let rego_input: OnceCell<regorus::Value> = OnceCell::new();
        for &rule_index in &group.rule_indices {
            let rule = &self.rules[rule_index];
            let applies = rule
                .attributes
                .iter()
                .all(|attribute| attribute.judge(scope, now).status == Status::Pass);
            if applies {
                visit(rule_index, &rule.body, scope, &rego_input);
            }
        }
    }

    /// Evaluates every applicable rule on one resource, appending to `outcomes` in rule order.
    ///
    /// A rule applies when its `service_name` and `resource_kind` equal the resource's and every
    /// additional target attribute passes; rules that do not apply produce nothing.
    pub fn evaluate_outcomes(
        &self,
        resource: &Resource,
        now: DateTime<Utc>,
        outcomes: &mut Vec<Outcome>,
    ) {
        self.for_each_applicable(resource, now, |rule_index, body, scope, rego_input| {
            let (status, details) = match body {
                CompiledBody::Config(root) => match root.status(scope, now) {
                    Status::Pass => (Status::Pass, Vec::new()),
                    _ => {
                        let mut details = Vec::new();
                        let status = root.explain(scope, now, "", &mut details);
                        (status, details)
                    }
                },
                CompiledBody::Rego(policy) => policy.evaluate(rego_input_of(rego_input, resource)),
            };
            outcomes.push(Outcome {
                rule_index,
                status,
                details,
            });
        });
    }

    /// As [`RuleSet::evaluate_outcomes`], statuses only: SCC config rules allocate nothing here
    /// (Rego rules still run the interpreter). [`Verdict::details`] builds a verdict's details
    /// on demand.
    pub fn evaluate_verdicts(
        &self,
        resource: &Resource,
        now: DateTime<Utc>,
        verdicts: &mut Vec<Verdict>,
    ) {
        self.for_each_applicable(resource, now, |rule_index, body, scope, rego_input| {
            let status = match body {
                CompiledBody::Config(root) => root.status(scope, now),
                CompiledBody::Rego(policy) => {
                    policy.evaluate(rego_input_of(rego_input, resource)).0
                }
            };
            verdicts.push(Verdict { rule_index, status });
        });
    }

    /// The details of one rule on one resource (empty when it passes or does not apply).
    fn rule_details(
        &self,
        rule_index: usize,
        resource: &Resource,
        now: DateTime<Utc>,
    ) -> Vec<Detail> {
        let Some(rule) = self.rules.get(rule_index) else {
            return Vec::new();
        };
        let Some(group) = self.group_for(resource) else {
            return Vec::new();
        };
        let view = ResourceView::new(group, resource);
        let scope = Scope::Resource(&view);
        let applies = rule
            .attributes
            .iter()
            .all(|attribute| attribute.judge(scope, now).status == Status::Pass);
        if !applies {
            return Vec::new();
        }
        let mut details = Vec::new();
        match &rule.body {
            CompiledBody::Config(root) => {
                root.explain(scope, now, "", &mut details);
            }
            CompiledBody::Rego(policy) => {
                details = policy.evaluate(rego_input_of(&OnceCell::new(), resource)).1;
            }
        }
        details
    }

    /// Evaluates every rule on many resources in parallel (rayon); results come back in input
    /// order (resource by resource, rules in rule order).
    pub fn evaluate_batch(&self, resources: &[Resource], now: DateTime<Utc>) -> Vec<Evaluation> {
        resources
            .par_iter()
            .flat_map_iter(|resource| self.evaluate(resource, now))
            .collect()
    }

    /// Evaluates every rule on many resources in parallel and folds the verdicts, without
    /// allocating per evaluation: each worker reuses one verdict buffer, hands it to `fold` with
    /// the resource and its position in `resources`, and the workers' accumulators are merged
    /// with `reduce`. This is the shape for bulk consumers that turn results into their own rows
    /// or counters (a scan writing to a store, a benchmark); [`Verdict::details`] materialises
    /// the details of the verdicts that need them.
    ///
    /// `fold` sees resources in no particular order; the position tells where each belongs.
    pub fn fold_batch<T, Identity, Fold, Reduce>(
        &self,
        resources: &[Resource],
        now: DateTime<Utc>,
        identity: Identity,
        fold: Fold,
        reduce: Reduce,
    ) -> T
    where
        T: Send,
        Identity: Fn() -> T + Sync + Send,
        Fold: Fn(T, usize, &Resource, &[Verdict]) -> T + Sync + Send,
        Reduce: Fn(T, T) -> T + Sync + Send,
    {
        resources
            .par_iter()
            .enumerate()
            .fold(
                || (identity(), Vec::new()),
                |(accumulator, mut verdicts), (position, resource)| {
                    verdicts.clear();
                    self.evaluate_verdicts(resource, now, &mut verdicts);
                    (fold(accumulator, position, resource, &verdicts), verdicts)
                },
            )
            .map(|(accumulator, _)| accumulator)
            .reduce(&identity, &reduce)
    }

    /// As [`RuleSet::evaluate_batch`], with one list of [`Outcome`]s per resource (same order as
    /// `resources`) and no copies of ids.
    pub fn evaluate_batch_outcomes(
        &self,
        resources: &[Resource],
        now: DateTime<Utc>,
    ) -> Vec<Vec<Outcome>> {
        resources
            .par_iter()
            .map(|resource| {
                let mut outcomes = Vec::new();
                self.evaluate_outcomes(resource, now, &mut outcomes);
                outcomes
            })
            .collect()
    }
}

/// The Rego `input` of a resource, built once per resource and only when a Rego rule needs it.
fn rego_input_of<'c>(
    cell: &'c OnceCell<regorus::Value>,
    resource: &Resource,
) -> &'c regorus::Value {
    cell.get_or_init(|| match serde_json::to_value(resource) {
        Ok(document) => rego::input_of(document),
        Err(_) => regorus::Value::Undefined,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::params::ParameterValues;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn resource(config: Value) -> Resource {
        serde_json::from_value(json!({
            "id": "r1", "service_name": "s", "resource_kind": "k", "region": "us-south", "config": config
        }))
        .expect("valid resource")
    }

    fn rule_set(required_config: Value) -> RuleSet {
        RuleSet::from_json(
            &json!({"id": "rule", "target": {"service_name": "s", "resource_kind": "k"}, "required_config": required_config}),
            &ParameterValues::default(),
        )
        .expect("valid rule")
    }

    #[test]
    fn failing_and_reports_only_its_failing_leaves() {
        let rules = rule_set(json!({"and": [
            {"property": "a", "operator": "is_true"},
            {"property": "b", "operator": "num_less_than", "value": 5},
            {"property": "c", "operator": "num_less_than", "value": 5}
        ]}));
        let evaluations = rules.evaluate(&resource(json!({"a": true, "b": 9, "c": "x"})), now());
        assert_eq!(evaluations.len(), 1);
        assert_eq!(evaluations[0].status, Status::Failure);
        let properties: Vec<&str> = evaluations[0]
            .details
            .iter()
            .map(|detail| detail.property.as_str())
            .collect();
        assert_eq!(properties, ["b"]);
        assert_eq!(evaluations[0].details[0].found_value, Some(json!(9)));
    }

    #[test]
    fn erroring_or_reports_erroring_leaves() {
        let rules = rule_set(json!({"or": [
            {"property": "a", "operator": "is_true"},
            {"property": "b", "operator": "num_less_than", "value": 5}
        ]}));
        let evaluations = rules.evaluate(&resource(json!({"a": false, "b": "x"})), now());
        assert_eq!(evaluations[0].status, Status::Error);
        assert_eq!(evaluations[0].details.len(), 1);
        assert_eq!(evaluations[0].details[0].property, "b");
    }

    #[test]
    fn sub_rule_details_name_the_element() {
        let rules = rule_set(json!({"all": {"target": {"ref": "rules"},
            "required_config": {"property": "port", "operator": "num_not_equals", "value": 22}}}));
        let evaluations = rules.evaluate(
            &resource(json!({"rules": [{"port": 443}, {"port": 22}]})),
            now(),
        );
        assert_eq!(evaluations[0].status, Status::Failure);
        assert_eq!(evaluations[0].details[0].property, "rules.1.port");
        let missing = rules.evaluate(&resource(json!({})), now());
        assert_eq!(missing[0].status, Status::Failure);
        assert_eq!(missing[0].details[0].reason, ABSENT_ARRAY);
    }

    #[test]
    fn target_attributes_read_the_envelope_then_the_config() {
        let rules = RuleSet::from_json(
            &json!([
                {"id": "south", "target": {"service_name": "s", "resource_kind": "k",
                    "additional_target_attributes": [{"name": "location", "value": "us-south"}]},
                 "required_config": {"property": "a", "operator": "is_empty"}},
                {"id": "east", "target": {"service_name": "s", "resource_kind": "k",
                    "additional_target_attributes": [{"name": "location", "operator": "string_equals", "value": "us-east"}]},
                 "required_config": {"property": "a", "operator": "is_empty"}},
                {"id": "tier", "target": {"service_name": "s", "resource_kind": "k",
                    "additional_target_attributes": [{"name": "tier", "operator": "string_equals", "value": "gold"}]},
                 "required_config": {"property": "a", "operator": "is_empty"}}
            ]),
            &ParameterValues::default(),
        )
        .expect("valid");
        let evaluated: Vec<String> = rules
            .evaluate(&resource(json!({"tier": "gold"})), now())
            .into_iter()
            .map(|evaluation| evaluation.rule_id)
            .collect();
        assert_eq!(evaluated, ["south", "tier"]);
    }

    #[test]
    fn batch_keeps_input_order() {
        let rules = rule_set(json!({"property": "n", "operator": "num_less_than", "value": 50}));
        let resources: Vec<Resource> = (0..200)
            .map(|index| {
                let mut resource = resource(json!({"n": index}));
                resource.id = format!("r{index}");
                resource
            })
            .collect();
        let evaluations = rules.evaluate_batch(&resources, now());
        assert_eq!(evaluations.len(), 200);
        for (index, evaluation) in evaluations.iter().enumerate() {
            assert_eq!(evaluation.resource_id, format!("r{index}"));
            let expected = if index < 50 {
                Status::Pass
            } else {
                Status::Failure
            };
            assert_eq!(evaluation.status, expected);
        }
    }

    #[test]
    fn fast_status_and_explained_status_agree() {
        let rules = rule_set(json!({"or": [
            {"and": [{"property": "a", "operator": "is_true"}, {"property": "b", "operator": "num_equals", "value": 1}]},
            {"any_ifexists": {"target": {"ref": "list"}, "required_config": {"property": "x", "operator": "string_equals", "value": "y"}}}
        ]}));
        let configs = [
            json!({"a": true, "b": 1}),
            json!({"a": "nope", "b": 1}),
            json!({"a": false, "list": [{"x": "z"}, {"x": 1}]}),
            json!({"a": false, "list": "oops"}),
            json!({"a": false, "list": []}),
        ];
        for config in configs {
            let view_resource = resource(config.clone());
            let group = rules.group_for(&view_resource).expect("group");
            let view = ResourceView::new(group, &view_resource);
            let CompiledBody::Config(root) = &rules.rules[0].body else {
                panic!("config rule");
            };
            let fast = root.status(Scope::Resource(&view), now());
            let explained = root.explain(Scope::Resource(&view), now(), "", &mut Vec::new());
            assert_eq!(fast, explained, "{config}");
        }
    }
}
