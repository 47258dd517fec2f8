//! Reading rules from JSON with every mistake reported at once.
//!
//! The parser walks the JSON by hand instead of deriving `Deserialize`, because serde stops at
//! the first error while users (and the `rules validate` command) need all of them, each with its
//! JSON pointer: unknown operator, missing value, bad CIDR, bad wildcard, unknown parameter,
//! nesting deeper than [`MAX_DEPTH`], empty `and`/`or`. Value checks reuse the compiler's
//! ([`crate::check::compile_check`]) so validation and compilation can never disagree.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::check::compile_check;
use crate::model::{
    Condition, ImportParameter, Leaf, Operator, ParameterType, Quantifier, Rule, RuleBody, SubRule,
    Target, TargetAttribute,
};
use crate::params;

/// Deepest allowed `required_config` nesting (a leaf alone is depth 1).
pub const MAX_DEPTH: usize = 32;

/// One mistake in a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// Position of the rule in the list given (0 for a single rule).
    pub rule_index: usize,
    /// The rule's id, when it has a usable one.
    pub rule_id: Option<String>,
    /// JSON pointer to the offending field, relative to the rule (`/required_config/and/0/value`).
    pub pointer: String,
    /// What is wrong, in lowercase without a trailing period.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule_id {
            Some(rule_id) => write!(formatter, "rule \"{rule_id}\"")?,
            None => write!(formatter, "rule #{}", self.rule_index)?,
        }
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(formatter, " at {pointer}: {}", self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Escapes a key for use in a JSON pointer (RFC 6901).
pub(crate) fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Parses one rule (a JSON object).
pub fn parse_rule(document: &Value) -> Result<Rule, Vec<ValidationError>> {
    parse_rule_at(document, 0)
}

/// Parses a rule or a JSON array of rules. Every rule is parsed even when an earlier one is bad,
/// and ids must be unique across the list.
pub fn parse_rules(document: &Value) -> Result<Vec<Rule>, Vec<ValidationError>> {
    let (rules, errors) = parse_rules_partially(document);
    if errors.is_empty() {
        Ok(rules.into_iter().map(|(_, rule)| rule).collect())
    } else {
        Err(errors)
    }
}

/// As [`parse_rules`], but also returns the rules that did parse, each with its position in the
/// list, so later checks (Rego compilation) can still run on them and report in the same answer.
pub fn parse_rules_partially(document: &Value) -> (Vec<(usize, Rule)>, Vec<ValidationError>) {
    let items: Vec<&Value> = match document {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut rules = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    let mut seen_ids = HashSet::new();
    for (rule_index, item) in items.into_iter().enumerate() {
        match parse_rule_at(item, rule_index) {
            Ok(rule) => {
                if !seen_ids.insert(rule.id.clone()) {
                    errors.push(ValidationError {
                        rule_index,
                        rule_id: Some(rule.id.clone()),
                        pointer: "/id".into(),
                        message: format!("duplicate rule id \"{}\"", rule.id),
                    });
                    continue;
                }
                rules.push((rule_index, rule));
            }
            Err(rule_errors) => errors.extend(rule_errors),
        }
    }
    (rules, errors)
}

/// Collects errors for one rule.
struct Collector {
    rule_index: usize,
    rule_id: Option<String>,
    errors: Vec<ValidationError>,
}

impl Collector {
    fn push(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError {
            rule_index: self.rule_index,
            rule_id: self.rule_id.clone(),
            pointer: pointer.into(),
            message: message.into(),
        });
    }
}

fn parse_rule_at(document: &Value, rule_index: usize) -> Result<Rule, Vec<ValidationError>> {
    let rule_id = document
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_string);
    let mut collector = Collector {
        rule_index,
        rule_id: rule_id.clone(),
        errors: Vec::new(),
    };
    let Some(object) = document.as_object() else {
        collector.push(
            "",
            format!("a rule must be a JSON object, found {}", kind_of(document)),
        );
        return Err(collector.errors);
    };
    if rule_id.is_none() {
        collector.push("/id", "missing id (a non-empty string)");
    }
    let description = optional_string(object, "description", "", &mut collector);
    let version = optional_string(object, "version", "", &mut collector);
    let labels = parse_labels(object, &mut collector);
    let target = parse_target(object.get("target"), &mut collector);
    let parameters = parse_import(object.get("import"), &mut collector);

    let rego_source = object.get("rego");
    let declared_rego = object.get("type").and_then(Value::as_str) == Some("rego");
    let body = match (rego_source, object.get("required_config")) {
        (Some(_), Some(_)) => {
            collector.push(
                "/required_config",
                "a rule has either `rego` or `required_config`, not both",
            );
            None
        }
        (Some(Value::String(source)), None) if !source.trim().is_empty() => {
            Some(RuleBody::Rego(source.clone()))
        }
        (Some(_), None) => {
            collector.push(
                "/rego",
                "`rego` must be a non-empty string holding a Rego module",
            );
            None
        }
        (None, _) if declared_rego => {
            collector.push("/rego", "missing `rego` (the rule's type is \"rego\")");
            None
        }
        (None, Some(required_config)) => parse_condition(
            required_config,
            "/required_config",
            1,
            &parameters,
            &mut collector,
        )
        .map(RuleBody::Config),
        (None, None) => {
            collector.push("/required_config", "missing required_config");
            None
        }
    };

    match (rule_id, target, body) {
        (Some(id), Some(target), Some(body)) if collector.errors.is_empty() => Ok(Rule {
            id,
            description,
            version,
            labels,
            target,
            parameters,
            body,
        }),
        _ => Err(collector.errors),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn optional_string(
    object: &Map<String, Value>,
    key: &str,
    base: &str,
    collector: &mut Collector,
) -> Option<String> {
    match object.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            collector.push(
                format!("{base}/{key}"),
                format!("expected a string, found {}", kind_of(other)),
            );
            None
        }
    }
}

fn required_string(
    object: &Map<String, Value>,
    key: &str,
    base: &str,
    collector: &mut Collector,
) -> Option<String> {
    match object.get(key) {
        Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
        Some(Value::String(_)) => {
            collector.push(format!("{base}/{key}"), "must not be empty");
            None
        }
        None | Some(Value::Null) => {
            collector.push(format!("{base}/{key}"), format!("missing {key}"));
            None
        }
        Some(other) => {
            collector.push(
                format!("{base}/{key}"),
                format!("expected a string, found {}", kind_of(other)),
            );
            None
        }
    }
}

fn parse_labels(object: &Map<String, Value>, collector: &mut Collector) -> Vec<String> {
    match object.get("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| match item {
                Value::String(label) => Some(label.clone()),
                other => {
                    collector.push(
                        format!("/labels/{index}"),
                        format!("expected a string, found {}", kind_of(other)),
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            collector.push(
                "/labels",
                format!("expected an array of strings, found {}", kind_of(other)),
            );
            Vec::new()
        }
    }
}

fn parse_target(target: Option<&Value>, collector: &mut Collector) -> Option<Target> {
    let Some(target) = target else {
        collector.push("/target", "missing target");
        return None;
    };
    let Some(object) = target.as_object() else {
        collector.push(
            "/target",
            format!("expected an object, found {}", kind_of(target)),
        );
        return None;
    };
    let service_name = required_string(object, "service_name", "/target", collector);
    let resource_kind = required_string(object, "resource_kind", "/target", collector);
    let mut attributes = Vec::new();
    match object.get("additional_target_attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                let base = format!("/target/additional_target_attributes/{index}");
                if let Some(attribute) = parse_target_attribute(item, &base, collector) {
                    attributes.push(attribute);
                }
            }
        }
        Some(other) => collector.push(
            "/target/additional_target_attributes",
            format!("expected an array, found {}", kind_of(other)),
        ),
    }
    Some(Target {
        service_name: service_name?,
        resource_kind: resource_kind?,
        additional_target_attributes: attributes,
    })
}

fn parse_target_attribute(
    item: &Value,
    base: &str,
    collector: &mut Collector,
) -> Option<TargetAttribute> {
    let Some(object) = item.as_object() else {
        collector.push(base, format!("expected an object, found {}", kind_of(item)));
        return None;
    };
    let name = required_string(object, "name", base, collector);
    let operator = match object.get("operator") {
        None | Some(Value::Null) => Some(Operator::StringEquals),
        Some(value) => parse_operator(value, &format!("{base}/operator"), collector),
    };
    let value = object
        .get("value")
        .filter(|value| !value.is_null())
        .cloned();
    if let Some(operator) = operator {
        check_value(operator, value.as_ref(), base, &[], collector);
    }
    Some(TargetAttribute {
        name: name?,
        operator: operator?,
        value,
    })
}

fn parse_operator(value: &Value, pointer: &str, collector: &mut Collector) -> Option<Operator> {
    match value {
        Value::String(name) => match name.parse::<Operator>() {
            Ok(operator) => Some(operator),
            Err(()) => {
                collector.push(pointer, format!("unknown operator \"{name}\""));
                None
            }
        },
        other => {
            collector.push(
                pointer,
                format!("expected an operator name, found {}", kind_of(other)),
            );
            None
        }
    }
}

fn parse_import(import: Option<&Value>, collector: &mut Collector) -> Vec<ImportParameter> {
    let Some(import) = import.filter(|import| !import.is_null()) else {
        return Vec::new();
    };
    let parameters = match import.get("parameters") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(parameters)) => parameters,
        Some(other) => {
            collector.push(
                "/import/parameters",
                format!("expected an array, found {}", kind_of(other)),
            );
            return Vec::new();
        }
    };
    let mut parsed: Vec<ImportParameter> = Vec::with_capacity(parameters.len());
    for (index, parameter) in parameters.iter().enumerate() {
        let base = format!("/import/parameters/{index}");
        let Some(object) = parameter.as_object() else {
            collector.push(
                base,
                format!("expected an object, found {}", kind_of(parameter)),
            );
            continue;
        };
        let name = required_string(object, "name", &base, collector);
        let display_name = optional_string(object, "display_name", &base, collector);
        let description = optional_string(object, "description", &base, collector);
        let parameter_type = match object.get("type") {
            Some(Value::String(name)) => match name.parse::<ParameterType>() {
                Ok(parameter_type) => Some(parameter_type),
                Err(()) => {
                    let known: Vec<&str> = ParameterType::ALL
                        .iter()
                        .map(|known| known.as_str())
                        .collect();
                    collector.push(
                        format!("{base}/type"),
                        format!(
                            "unknown parameter type \"{name}\" (known: {})",
                            known.join(", ")
                        ),
                    );
                    None
                }
            },
            _ => {
                collector.push(format!("{base}/type"), "missing type (a string)");
                None
            }
        };
        let default = object
            .get("default")
            .filter(|value| !value.is_null())
            .cloned();
        if let (Some(default), Some(parameter_type)) = (&default, parameter_type)
            && let Err(message) = params::coerce(default, parameter_type)
        {
            collector.push(format!("{base}/default"), message);
        }
        if let Some(name) = &name
            && parsed.iter().any(|existing| existing.name == *name)
        {
            collector.push(
                format!("{base}/name"),
                format!("duplicate parameter \"{name}\""),
            );
        }
        if let (Some(name), Some(parameter_type)) = (name, parameter_type) {
            parsed.push(ImportParameter {
                name,
                display_name,
                description,
                parameter_type,
                default,
            });
        }
    }
    parsed
}

/// Checks a condition value: declared parameters only, and the literal parts well formed.
fn check_value(
    operator: Operator,
    value: Option<&Value>,
    base: &str,
    declared: &[ImportParameter],
    collector: &mut Collector,
) {
    let Some(value) = value else {
        if operator.needs_value() {
            collector.push(
                format!("{base}/value"),
                format!("missing value (operator `{operator}` needs one)"),
            );
        }
        return;
    };
    for (pointer, name) in params::placeholders(value) {
        if !declared.iter().any(|parameter| parameter.name == name) {
            collector.push(
                format!("{base}/value{pointer}"),
                format!("unknown parameter \"{name}\" (declare it in import.parameters)"),
            );
        }
    }
    let literal = if params::has_placeholder(value) {
        match params::without_placeholders(value) {
            // Only the literal elements can be checked before the parameter values are known.
            Some(Value::Array(items)) if items.is_empty() => return,
            Some(literal) => literal,
            None => return,
        }
    } else {
        value.clone()
    };
    if !operator.needs_value() {
        return;
    }
    if let Err(errors) = compile_check(operator, Some(&literal)) {
        let placeholder_positions = params::has_placeholder(value);
        for (pointer, message) in errors {
            // Element pointers of a list without its placeholders no longer line up with the
            // user's list, so they point at the value as a whole.
            let pointer = if placeholder_positions {
                String::new()
            } else {
                pointer
            };
            collector.push(format!("{base}/value{pointer}"), message);
        }
    }
}

const QUANTIFIER_KEYS: [&str; 4] = ["any", "all", "any_ifexists", "all_ifexists"];

fn parse_condition(
    value: &Value,
    pointer: &str,
    depth: usize,
    declared: &[ImportParameter],
    collector: &mut Collector,
) -> Option<Condition> {
    if depth > MAX_DEPTH {
        collector.push(
            pointer,
            format!("conditions nest deeper than {MAX_DEPTH} levels"),
        );
        return None;
    }
    let Some(object) = value.as_object() else {
        collector.push(
            pointer,
            format!("a condition must be an object, found {}", kind_of(value)),
        );
        return None;
    };
    let is_leaf = object.contains_key("property") || object.contains_key("operator");
    let mut kinds: Vec<&str> = Vec::new();
    if is_leaf {
        kinds.push("property/operator");
    }
    for key in ["and", "or"].into_iter().chain(QUANTIFIER_KEYS) {
        if object.contains_key(key) {
            kinds.push(key);
        }
    }
    match kinds.as_slice() {
        [] => {
            collector.push(
                pointer,
                "a condition needs `property` and `operator`, or one of `and`, `or`, `any`, `all`, `any_ifexists`, `all_ifexists`",
            );
            None
        }
        [_] if is_leaf => parse_leaf(object, pointer, declared, collector),
        ["and"] | ["or"] => {
            let key = kinds[0];
            let children_pointer = format!("{pointer}/{key}");
            let children = match object.get(key) {
                Some(Value::Array(children)) if children.is_empty() => {
                    collector.push(
                        children_pointer,
                        format!("`{key}` must list at least one condition"),
                    );
                    return None;
                }
                Some(Value::Array(children)) => children,
                Some(other) => {
                    collector.push(
                        children_pointer,
                        format!("expected an array, found {}", kind_of(other)),
                    );
                    return None;
                }
                None => return None,
            };
            let mut parsed = Vec::with_capacity(children.len());
            let mut complete = true;
            for (index, child) in children.iter().enumerate() {
                match parse_condition(
                    child,
                    &format!("{children_pointer}/{index}"),
                    depth + 1,
                    declared,
                    collector,
                ) {
                    Some(condition) => parsed.push(condition),
                    None => complete = false,
                }
            }
            if !complete {
                return None;
            }
            Some(if key == "and" {
                Condition::And(parsed)
            } else {
                Condition::Or(parsed)
            })
        }
        [key] => {
            let quantifier = Quantifier::ALL
                .into_iter()
                .find(|quantifier| quantifier.as_str() == *key)?;
            let base = format!("{pointer}/{key}");
            parse_sub_rule(
                object.get(*key),
                quantifier,
                &base,
                depth,
                declared,
                collector,
            )
        }
        several => {
            collector.push(
                pointer,
                format!(
                    "a condition must be exactly one kind, found {}",
                    several.join(" and ")
                ),
            );
            None
        }
    }
}

fn parse_leaf(
    object: &Map<String, Value>,
    pointer: &str,
    declared: &[ImportParameter],
    collector: &mut Collector,
) -> Option<Condition> {
    let property = required_string(object, "property", pointer, collector);
    if let Some(property) = &property
        && property.split('.').any(str::is_empty)
    {
        collector.push(
            format!("{pointer}/property"),
            format!("bad property path \"{property}\": empty segment"),
        );
    }
    let operator = match object.get("operator") {
        Some(value) => parse_operator(value, &format!("{pointer}/operator"), collector),
        None => {
            collector.push(format!("{pointer}/operator"), "missing operator");
            None
        }
    };
    let value = object
        .get("value")
        .filter(|value| !value.is_null())
        .cloned();
    if let Some(operator) = operator {
        check_value(operator, value.as_ref(), pointer, declared, collector);
    }
    Some(Condition::Leaf(Leaf {
        property: property?,
        operator: operator?,
        value,
    }))
}

fn parse_sub_rule(
    value: Option<&Value>,
    quantifier: Quantifier,
    base: &str,
    depth: usize,
    declared: &[ImportParameter],
    collector: &mut Collector,
) -> Option<Condition> {
    let Some(object) = value.and_then(Value::as_object) else {
        collector.push(
            base,
            "a sub-rule must be an object with `target` and `required_config`",
        );
        return None;
    };
    let target_ref = match object.get("target").and_then(Value::as_object) {
        Some(target) => required_string(target, "ref", &format!("{base}/target"), collector),
        None => {
            collector.push(
                format!("{base}/target"),
                "missing target (an object with `ref`)",
            );
            None
        }
    };
    if let Some(target_ref) = &target_ref
        && target_ref.split('.').any(str::is_empty)
    {
        collector.push(
            format!("{base}/target/ref"),
            format!("bad property path \"{target_ref}\": empty segment"),
        );
    }
    let required_config = match object.get("required_config") {
        Some(required_config) => parse_condition(
            required_config,
            &format!("{base}/required_config"),
            depth + 1,
            declared,
            collector,
        ),
        None => {
            collector.push(format!("{base}/required_config"), "missing required_config");
            None
        }
    };
    Some(Condition::SubRule(SubRule {
        quantifier,
        target_ref: target_ref?,
        required_config: Box::new(required_config?),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pointers(errors: &[ValidationError]) -> Vec<&str> {
        errors.iter().map(|error| error.pointer.as_str()).collect()
    }

    #[test]
    fn every_mistake_is_reported_at_once_with_its_pointer() {
        let errors = parse_rule(&json!({
            "id": "r1",
            "target": {"service_name": "s", "resource_kind": ""},
            "import": {"parameters": [{"name": "p", "type": "numeric"}]},
            "required_config": {"and": [
                {"property": "a", "operator": "string_equal", "value": "x"},
                {"property": "b", "operator": "num_equals"},
                {"property": "c", "operator": "ips_in_range", "value": ["10.0.0.0/8", "300.0.0.0/8"]},
                {"property": "d", "operator": "string_match", "value": "abc\\"},
                {"property": "e", "operator": "num_less_than", "value": "${q}"},
                {"or": []}
            ]}
        }))
        .expect_err("invalid");
        assert_eq!(
            pointers(&errors),
            [
                "/target/resource_kind",
                "/required_config/and/0/operator",
                "/required_config/and/1/value",
                "/required_config/and/2/value/1",
                "/required_config/and/3/value",
                "/required_config/and/4/value",
                "/required_config/and/5/or",
            ]
        );
        assert!(
            errors
                .iter()
                .all(|error| error.rule_id.as_deref() == Some("r1"))
        );
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_rejected_once() {
        let mut condition = json!({"property": "a", "operator": "is_empty"});
        for _ in 0..MAX_DEPTH {
            condition = json!({"and": [condition]});
        }
        let rule = json!({"id": "deep", "target": {"service_name": "s", "resource_kind": "k"}, "required_config": condition});
        let errors = parse_rule(&rule).expect_err("too deep");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("deeper than 32"));
        assert_eq!(errors[0].pointer.matches("/and/0").count(), MAX_DEPTH);
    }

    #[test]
    fn rules_in_a_list_are_all_checked_and_ids_are_unique() {
        let target = json!({"service_name": "s", "resource_kind": "k"});
        let leaf = json!({"property": "a", "operator": "is_empty"});
        let errors = parse_rules(&json!([
            {"id": "a", "target": target, "required_config": leaf},
            {"target": target, "required_config": leaf},
            {"id": "a", "target": target, "required_config": leaf},
            "nonsense"
        ]))
        .expect_err("invalid list");
        let summary: Vec<(usize, &str)> = errors
            .iter()
            .map(|error| (error.rule_index, error.pointer.as_str()))
            .collect();
        assert_eq!(summary, [(1, "/id"), (2, "/id"), (3, "")]);
    }

    #[test]
    fn placeholders_defer_checks_of_their_elements_only() {
        let rule = json!({
            "id": "r", "target": {"service_name": "s", "resource_kind": "k"},
            "import": {"parameters": [{"name": "ranges", "type": "ip_list"}]},
            "required_config": {"property": "ip", "operator": "ips_in_range", "value": ["${ranges}", "nope"]}
        });
        let errors = parse_rule(&rule).expect_err("literal element is bad");
        assert_eq!(pointers(&errors), ["/required_config/value"]);
        let good = json!({
            "id": "r", "target": {"service_name": "s", "resource_kind": "k"},
            "import": {"parameters": [{"name": "ranges", "type": "ip_list"}]},
            "required_config": {"property": "ip", "operator": "ips_in_range", "value": "${ranges}"}
        });
        assert!(parse_rule(&good).is_ok());
    }

    #[test]
    fn rego_rules_need_source_and_no_required_config() {
        let target = json!({"service_name": "s", "resource_kind": "k"});
        assert!(
            parse_rule(&json!({"id": "r", "type": "rego", "target": target, "rego": "package p"}))
                .is_ok()
        );
        let errors = parse_rule(&json!({"id": "r", "type": "rego", "target": target}))
            .expect_err("no source");
        assert_eq!(pointers(&errors), ["/rego"]);
    }

    #[test]
    fn display_names_rule_and_pointer() {
        let error = ValidationError {
            rule_index: 2,
            rule_id: None,
            pointer: "/target".into(),
            message: "missing target".into(),
        };
        assert_eq!(error.to_string(), "rule #2 at /target: missing target");
    }
}
