//! The reference evaluator: the rule semantics written as plainly as possible, straight from the
//! rule model, re-reading paths and values on every call.
//!
//! It exists to check the compiled evaluator ([`crate::RuleSet`]): property tests and every case
//! file run both and require the same results. It shares no evaluation code with the compiled
//! path — wildcards go through `regex`, addresses through `ipnet`, paths are split on every
//! lookup, Rego gets a fresh engine per evaluation — only the input preparation (parameter
//! substitution) and the wording of reasons. Too slow for production use.

use chrono::{DateTime, NaiveDate, Utc};
use ipnet::IpNet;
use palisade_model::resource::Resource;
use serde_json::Value;

use crate::check::{Status, reason};
use crate::eval::{Detail, Evaluation};
use crate::model::{Condition, ImportParameter, Leaf, Operator, Rule, RuleBody, SubRule};
use crate::params::{self, ParameterValues};

/// Evaluates every applicable rule on one resource, in rule order.
pub fn evaluate(
    rules: &[Rule],
    values: &ParameterValues,
    resource: &Resource,
    now: DateTime<Utc>,
) -> Vec<Evaluation> {
    rules
        .iter()
        .filter_map(|rule| evaluate_rule(rule, values, resource, now))
        .collect()
}

/// Evaluates one rule; `None` when it does not apply to the resource.
pub fn evaluate_rule(
    rule: &Rule,
    values: &ParameterValues,
    resource: &Resource,
    now: DateTime<Utc>,
) -> Option<Evaluation> {
    if rule.target.service_name != resource.service_name
        || rule.target.resource_kind != resource.resource_kind
    {
        return None;
    }
    for attribute in &rule.target.additional_target_attributes {
        let found = target_attribute(resource, &attribute.name);
        let leaf = Leaf {
            property: attribute.name.clone(),
            operator: attribute.operator,
            value: attribute.value.clone(),
        };
        let (status, _) = leaf_result(&leaf, &rule.parameters, values, found.as_ref(), now, "");
        if status != Status::Pass {
            return None;
        }
    }
    let (status, details) = match &rule.body {
        RuleBody::Config(condition) => {
            let (status, details) = condition_result(
                condition,
                &rule.parameters,
                values,
                &resource.config,
                now,
                "",
            );
            if status == Status::Pass {
                (status, Vec::new())
            } else {
                (status, details)
            }
        }
        RuleBody::Rego(source) => rego_result(source, resource),
    };
    Some(Evaluation {
        rule_id: rule.id.clone(),
        resource_id: resource.id.clone(),
        status,
        details,
    })
}

fn target_attribute(resource: &Resource, name: &str) -> Option<Value> {
    let envelope = match name {
        "id" | "resource_id" => Some(resource.id.clone()),
        "environment" => Some(resource.environment.clone()),
        "account_id" => Some(resource.account_id.clone()),
        "service_name" => Some(resource.service_name.clone()),
        "resource_kind" => Some(resource.resource_kind.clone()),
        "region" | "location" => resource.region.clone(),
        "resource_group" | "resource_group_id" => resource.resource_group.clone(),
        "name" | "resource_name" => resource.name.clone(),
        _ => None,
    };
    if let Some(text) = envelope.filter(|text| !text.is_empty()) {
        return Some(Value::String(text));
    }
    if let Some(tag) = name.strip_prefix("tags.")
        && let Some(value) = resource.tags.get(tag)
    {
        return Some(value.clone());
    }
    lookup(&resource.config, name).cloned()
}

fn lookup<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = root;
    for segment in path.split('.') {
        current = match current {
            Value::Object(members) => members.get(segment)?,
            Value::Array(items) if segment.chars().all(|character| character.is_ascii_digit()) => {
                items.get(segment.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(current)
}

fn condition_result(
    condition: &Condition,
    declared: &[ImportParameter],
    values: &ParameterValues,
    config: &Value,
    now: DateTime<Utc>,
    prefix: &str,
) -> (Status, Vec<Detail>) {
    match condition {
        Condition::Leaf(leaf) => {
            let found = lookup(config, &leaf.property).cloned();
            leaf_result(leaf, declared, values, found.as_ref(), now, prefix)
        }
        Condition::And(children) => combine(
            children
                .iter()
                .map(|child| condition_result(child, declared, values, config, now, prefix))
                .collect(),
            true,
        ),
        Condition::Or(children) => combine(
            children
                .iter()
                .map(|child| condition_result(child, declared, values, config, now, prefix))
                .collect(),
            false,
        ),
        Condition::SubRule(sub_rule) => {
            sub_rule_result(sub_rule, declared, values, config, now, prefix)
        }
    }
}

fn combine(results: Vec<(Status, Vec<Detail>)>, conjunction: bool) -> (Status, Vec<Detail>) {
    let statuses: Vec<Status> = results.iter().map(|(status, _)| *status).collect();
    let status = if conjunction {
        if statuses.contains(&Status::Failure) {
            Status::Failure
        } else if statuses.contains(&Status::Error) {
            Status::Error
        } else {
            Status::Pass
        }
    } else if statuses.contains(&Status::Pass) {
        Status::Pass
    } else if statuses.contains(&Status::Error) {
        Status::Error
    } else {
        Status::Failure
    };
    let details = results
        .into_iter()
        .filter(|(child_status, _)| *child_status == status)
        .flat_map(|(_, details)| details)
        .collect();
    (status, details)
}

fn sub_rule_result(
    sub_rule: &SubRule,
    declared: &[ImportParameter],
    values: &ParameterValues,
    config: &Value,
    now: DateTime<Utc>,
    prefix: &str,
) -> (Status, Vec<Detail>) {
    let found = lookup(config, &sub_rule.target_ref);
    let detail = |reason: &str| Detail {
        property: format!("{prefix}{}", sub_rule.target_ref),
        operator: sub_rule.quantifier.as_str().into(),
        expected_value: Value::Null,
        found_value: found.cloned(),
        reason: reason.to_string().into(),
    };
    let elements = match found {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(_) => return (Status::Error, vec![detail("property is not an array")]),
    };
    if elements.is_empty() {
        return if sub_rule.quantifier.passes_when_absent() {
            (Status::Pass, Vec::new())
        } else {
            (Status::Failure, vec![detail("array is missing or empty")])
        };
    }
    let results = elements
        .iter()
        .enumerate()
        .map(|(index, element)| {
            let element_prefix = format!("{prefix}{}.{index}.", sub_rule.target_ref);
            condition_result(
                &sub_rule.required_config,
                declared,
                values,
                element,
                now,
                &element_prefix,
            )
        })
        .collect();
    combine(results, !sub_rule.quantifier.is_any())
}

fn leaf_result(
    leaf: &Leaf,
    declared: &[ImportParameter],
    values: &ParameterValues,
    found: Option<&Value>,
    now: DateTime<Utc>,
    prefix: &str,
) -> (Status, Vec<Detail>) {
    let expected = match &leaf.value {
        Some(value) => params::substitute(value, declared, values),
        None => Ok(Value::Null),
    };
    let (status, why) = match &expected {
        Err(reason) => (Status::Error, reason.clone()),
        Ok(expected) => match operator_result(leaf.operator, expected, found, now) {
            Ok((status, why)) => (status, why.to_string()),
            Err(bad_value) => (
                Status::Error,
                format!(
                    "parameter value {expected} does not fit `{}`: {bad_value}",
                    leaf.operator
                ),
            ),
        },
    };
    let details = if status == Status::Pass {
        Vec::new()
    } else {
        vec![Detail {
            property: format!("{prefix}{}", leaf.property),
            operator: leaf.operator.as_str().into(),
            expected_value: expected.unwrap_or_else(|_| leaf.value.clone().unwrap_or(Value::Null)),
            found_value: found.cloned(),
            reason: why.into(),
        }]
    };
    (status, details)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    }
}

fn number(value: &Value) -> Option<f64> {
    let parsed = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.parse::<f64>().ok(),
        _ => None,
    };
    parsed.filter(|number| number.is_finite())
}

fn network(text: &str) -> Option<IpNet> {
    let parsed = if text.contains('/') {
        let (_, prefix) = text.split_once('/')?;
        if prefix.is_empty() || !prefix.chars().all(|character| character.is_ascii_digit()) {
            return None;
        }
        // ipnet's own parser takes octets with leading zeros (`09.0.0.0/24`), which the standard
        // library — and so the compiled evaluator — refuses: some tools read them as octal.
        // Found by the `rules_json` fuzz target (issue 11).
        let (address, _) = text.split_once('/')?;
        address.parse::<std::net::IpAddr>().ok()?;
        text.parse::<IpNet>().ok()?
    } else {
        IpNet::from(text.parse::<std::net::IpAddr>().ok()?)
    };
    Some(parsed.trunc())
}

fn wildcard_regex(pattern: &str) -> Option<regex::Regex> {
    let mut source = String::from("(?s)^");
    let mut characters = pattern.chars();
    while let Some(character) = characters.next() {
        match character {
            '*' => source.push_str(".*"),
            '?' => source.push('.'),
            '\\' => source.push_str(&regex::escape(&characters.next()?.to_string())),
            literal => source.push_str(&regex::escape(&literal.to_string())),
        }
    }
    source.push('$');
    regex::Regex::new(&source).ok()
}

/// Applies one operator. `Err` means the expected value does not fit the operator.
fn operator_result(
    operator: Operator,
    expected: &Value,
    found: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<(Status, &'static str), String> {
    use Status::{Error, Failure, Pass};
    let outcome = |holds: bool, why: &'static str| {
        if holds {
            (Pass, "condition holds")
        } else {
            (Failure, why)
        }
    };
    let expected_texts = || -> Result<Vec<String>, String> {
        as_list(expected)
            .into_iter()
            .map(|item| text(item).ok_or_else(|| format!("expected a string, found {item}")))
            .collect()
    };
    let expected_networks = || -> Result<Vec<IpNet>, String> {
        let items = as_list(expected);
        if items.is_empty() {
            return Err("value list is empty".into());
        }
        items
            .into_iter()
            .map(|item| {
                item.as_str()
                    .and_then(network)
                    .ok_or_else(|| format!("bad CIDR or IP address {item}"))
            })
            .collect()
    };
    // Check the expected value before looking at the property, as compilation does.
    match operator {
        Operator::StringEquals
        | Operator::StringNotEquals
        | Operator::StringMatch
        | Operator::StringNotMatch
        | Operator::StringContains
        | Operator::StringNotContains => {
            if expected_texts()?.is_empty() {
                return Err("value list is empty".into());
            }
        }
        Operator::StringsInList | Operator::StringsAllowed | Operator::StringsRequired => {
            expected_texts()?;
        }
        Operator::IpsInRange | Operator::IpsEquals | Operator::IpsNotEquals => {
            expected_networks()?;
        }
        Operator::IsEmpty | Operator::IsNotEmpty | Operator::IsTrue | Operator::IsFalse => {}
        _ => {
            number(expected).ok_or_else(|| format!("expected a number, found {expected}"))?;
        }
    }
    if matches!(operator, Operator::StringMatch | Operator::StringNotMatch) {
        for pattern in expected_texts()? {
            wildcard_regex(&pattern).ok_or_else(|| format!("bad wildcard \"{pattern}\""))?;
        }
    }
    let found = match found {
        None | Some(Value::Null) => {
            return Ok(if operator == Operator::IsEmpty {
                (Pass, "condition holds")
            } else {
                (Failure, "property is missing or null")
            });
        }
        Some(found) => found,
    };
    let empty = match found {
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.is_empty(),
        _ => false,
    };
    let boolean = match found {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.to_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    };
    let result = match operator {
        Operator::IsEmpty => outcome(empty, reason::NOT_EMPTY),
        Operator::IsNotEmpty => outcome(!empty, reason::EMPTY),
        Operator::IsTrue => boolean.map_or((Error, reason::NOT_BOOLEAN), |flag| {
            outcome(flag, reason::NOT_TRUE)
        }),
        Operator::IsFalse => boolean.map_or((Error, reason::NOT_BOOLEAN), |flag| {
            outcome(!flag, reason::NOT_FALSE)
        }),
        Operator::StringEquals | Operator::StringNotEquals => match text(found) {
            None => (Error, reason::NOT_SCALAR),
            Some(found_text) => {
                let equal = expected_texts()?.contains(&found_text);
                if operator == Operator::StringEquals {
                    outcome(equal, reason::NOT_EQUAL)
                } else {
                    outcome(!equal, reason::EQUAL)
                }
            }
        },
        Operator::StringMatch | Operator::StringNotMatch => match text(found) {
            None => (Error, reason::NOT_SCALAR),
            Some(found_text) => {
                let mut matched = false;
                for pattern in expected_texts()? {
                    let regex = wildcard_regex(&pattern)
                        .ok_or_else(|| format!("bad wildcard \"{pattern}\""))?;
                    matched |= regex.is_match(&found_text);
                }
                if operator == Operator::StringMatch {
                    outcome(matched, reason::NO_MATCH)
                } else {
                    outcome(!matched, reason::MATCH)
                }
            }
        },
        Operator::StringContains | Operator::StringNotContains => match text(found) {
            None => (Error, reason::NOT_SCALAR),
            Some(found_text) => {
                let contained = expected_texts()?
                    .iter()
                    .any(|needle| found_text.contains(needle.as_str()));
                if operator == Operator::StringContains {
                    outcome(contained, reason::NOT_CONTAINED)
                } else {
                    outcome(!contained, reason::CONTAINED)
                }
            }
        },
        Operator::StringsInList | Operator::StringsAllowed | Operator::StringsRequired => {
            let found_texts: Option<Vec<String>> = as_list(found).into_iter().map(text).collect();
            match found_texts {
                None => (Error, reason::NOT_LIST),
                Some(found_texts) => {
                    let expected = expected_texts()?;
                    if operator == Operator::StringsRequired {
                        outcome(
                            expected.iter().all(|item| found_texts.contains(item)),
                            reason::NOT_REQUIRED,
                        )
                    } else {
                        outcome(
                            found_texts.iter().all(|item| expected.contains(item)),
                            reason::NOT_ALLOWED,
                        )
                    }
                }
            }
        }
        Operator::IpsInRange => {
            let found_networks: Option<Vec<IpNet>> = as_list(found)
                .into_iter()
                .map(|item| text(item).as_deref().and_then(network))
                .collect();
            match found_networks {
                None => (Error, reason::NOT_IP),
                Some(found_networks) => {
                    let ranges = expected_networks()?;
                    let inside = found_networks
                        .iter()
                        .all(|address| ranges.iter().any(|range| range.contains(address)));
                    outcome(inside, reason::OUT_OF_RANGE)
                }
            }
        }
        Operator::IpsEquals | Operator::IpsNotEquals => match found.as_str().and_then(network) {
            None => (Error, reason::NOT_IP),
            Some(address) => {
                let equal = expected_networks()?.contains(&address);
                if operator == Operator::IpsEquals {
                    outcome(equal, reason::IP_NOT_EQUAL)
                } else {
                    outcome(!equal, reason::IP_EQUAL)
                }
            }
        },
        Operator::NumEquals
        | Operator::NumNotEquals
        | Operator::NumLessThan
        | Operator::NumLessThanEquals
        | Operator::NumGreaterThan
        | Operator::NumGreaterThanEquals => {
            let limit = number(expected).unwrap_or_default();
            match number(found) {
                None => (Error, reason::NOT_NUMBER),
                Some(value) => {
                    let holds = match operator {
                        Operator::NumEquals => value == limit,
                        Operator::NumNotEquals => value != limit,
                        Operator::NumLessThan => value < limit,
                        Operator::NumLessThanEquals => value <= limit,
                        Operator::NumGreaterThan => value > limit,
                        _ => value >= limit,
                    };
                    outcome(holds, reason::NUMBER_COMPARISON)
                }
            }
        }
        Operator::DaysLessThan => {
            let days = number(expected).unwrap_or_default();
            let age = match found {
                Value::Number(number) => number.as_f64(),
                Value::String(text) => DateTime::parse_from_rfc3339(text)
                    .map(|timestamp| {
                        (now - timestamp.with_timezone(&Utc)).num_milliseconds() as f64
                            / 86_400_000.0
                    })
                    .ok()
                    .or_else(|| {
                        NaiveDate::parse_from_str(text, "%Y-%m-%d")
                            .ok()
                            .and_then(|date| {
                                let midnight = date.and_hms_opt(0, 0, 0)?.and_utc();
                                Some((now - midnight).num_milliseconds() as f64 / 86_400_000.0)
                            })
                    })
                    .or_else(|| number(found)),
                _ => None,
            };
            match age {
                None => (Error, reason::NOT_DATE),
                Some(age) => outcome(age < days, reason::TOO_OLD),
            }
        }
    };
    Ok(result)
}

fn rego_result(source: &str, resource: &Resource) -> (Status, Vec<Detail>) {
    let error = |reason: String| (Status::Error, vec![rego_detail("deny", reason)]);
    let mut engine = regorus::Engine::new();
    let package = match engine.add_policy("policy.rego".into(), source.into()) {
        Ok(package) => package,
        Err(_) => {
            engine = regorus::Engine::new();
            engine.set_rego_v0(true);
            match engine.add_policy("policy.rego".into(), source.into()) {
                Ok(package) => package,
                Err(parse_error) => return error(format!("{parse_error:#}")),
            }
        }
    };
    let entrypoint = format!("{package}.deny");
    let input = match serde_json::to_value(resource) {
        Ok(document) => regorus::Value::from(document),
        Err(encode_error) => return error(encode_error.to_string()),
    };
    engine.set_input(input);
    let denied = match engine.eval_rule(entrypoint.clone()) {
        Ok(denied) => denied,
        Err(evaluation_error) => {
            return error(format!("rego evaluation failed: {evaluation_error:#}"));
        }
    };
    let messages: Vec<String> = match &denied {
        regorus::Value::Undefined => Vec::new(),
        regorus::Value::Set(items) => items.iter().map(rego_message).collect(),
        regorus::Value::Array(items) => items.iter().map(rego_message).collect(),
        other => return error(format!("`deny` is not a set but {}", rego_message(other))),
    };
    if messages.is_empty() {
        (Status::Pass, Vec::new())
    } else {
        (
            Status::Failure,
            messages
                .into_iter()
                .map(|message| rego_detail(&entrypoint, message))
                .collect(),
        )
    }
}

fn rego_message(value: &regorus::Value) -> String {
    match value {
        regorus::Value::String(text) => text.to_string(),
        regorus::Value::Object(members) => match members.get(&regorus::Value::from("msg")) {
            Some(regorus::Value::String(text)) => text.to_string(),
            _ => serde_json::to_string(value).unwrap_or_default(),
        },
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn rego_detail(property: &str, reason: String) -> Detail {
    Detail {
        property: property.to_string(),
        operator: "rego".into(),
        expected_value: Value::Null,
        found_value: None,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    //! Property test: the compiled evaluator and this reference agree on random rules and
    //! resources, statuses and details alike.

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::RuleSet;
    use crate::validate::parse_rules;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("valid")
            .with_timezone(&Utc)
    }

    const ADDRESSES: &[&str] = &[
        "10.0.0.1",
        "10.1.0.0/16",
        "10.0.0.0/8",
        "192.168.1.7",
        "0.0.0.0/0",
        "::1",
        "2001:db8::/32",
        "2001:db8::5",
        "10.0.0.1/32",
        "bad",
        "",
    ];
    const WORDS: &[&str] = &[
        "", "a", "ab", "ba", "abc", "TRUE", "false", "1", "2.5", "x y", "é",
    ];
    const DATES: &[&str] = &[
        "2025-12-01",
        "2026-01-01T00:00:00Z",
        "2020-01-01",
        "2025-12-31T12:00:00+02:00",
        "soon",
    ];

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-5i64..50).prop_map(|number| json!(number)),
            (-5.0f64..50.0).prop_map(|number| json!(number)),
            (-5i64..50).prop_map(|number| json!(number.to_string())),
            prop::sample::select(WORDS).prop_map(|word| json!(word)),
            prop::sample::select(ADDRESSES).prop_map(|address| json!(address)),
            prop::sample::select(DATES).prop_map(|date| json!(date)),
        ]
    }

    fn property_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => scalar(),
            1 => prop::collection::vec(scalar(), 0..4).prop_map(Value::Array),
            1 => Just(json!({})),
        ]
    }

    fn element() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => (property_value(), property_value()).prop_map(|(x, y)| json!({"x": x, "y": y})),
            1 => scalar(),
        ]
    }

    fn config() -> impl Strategy<Value = Value> {
        (
            property_value(),
            property_value(),
            property_value(),
            prop::option::of(prop::collection::vec(element(), 0..4)),
        )
            .prop_map(|(a, b, n, list)| {
                let mut config = json!({"a": a, "c": {"d": b}, "n": n});
                if let Some(list) = list {
                    config["list"] = Value::Array(list);
                }
                config
            })
    }

    fn pattern() -> impl Strategy<Value = String> {
        "[ab*?]{0,4}"
    }

    /// A value that suits the operator (rules must be valid to be compared).
    fn operator_value(operator: Operator) -> BoxedStrategy<Option<Value>> {
        match operator {
            Operator::IsEmpty | Operator::IsNotEmpty | Operator::IsTrue | Operator::IsFalse => {
                Just(None).boxed()
            }
            Operator::StringMatch | Operator::StringNotMatch => prop_oneof![
                pattern().prop_map(|pattern| Some(json!(pattern))),
                prop::collection::vec(pattern(), 1..3).prop_map(|patterns| Some(json!(patterns))),
            ]
            .boxed(),
            Operator::StringEquals
            | Operator::StringNotEquals
            | Operator::StringContains
            | Operator::StringNotContains => prop_oneof![
                prop::sample::select(WORDS).prop_map(|word| Some(json!(word))),
                prop::collection::vec(prop::sample::select(WORDS), 1..3)
                    .prop_map(|words| Some(json!(words))),
            ]
            .boxed(),
            Operator::StringsInList | Operator::StringsAllowed | Operator::StringsRequired => {
                prop::collection::vec(prop::sample::select(WORDS), 0..3)
                    .prop_map(|words| Some(json!(words)))
                    .boxed()
            }
            Operator::IpsInRange | Operator::IpsEquals | Operator::IpsNotEquals => {
                prop::collection::vec(prop::sample::select(&ADDRESSES[..9]), 1..3)
                    .prop_map(|addresses| Some(json!(addresses)))
                    .boxed()
            }
            Operator::DaysLessThan => (0i64..4000).prop_map(|days| Some(json!(days))).boxed(),
            _ => prop_oneof![
                (-5i64..50).prop_map(|number| Some(json!(number))),
                (-5i64..50).prop_map(|number| Some(json!(number.to_string()))),
                Just(Some(json!("${limit}"))),
            ]
            .boxed(),
        }
    }

    fn leaf(properties: &'static [&'static str]) -> impl Strategy<Value = Value> {
        (
            prop::sample::select(properties),
            prop::sample::select(Operator::ALL),
        )
            .prop_flat_map(|(property, operator)| {
                operator_value(operator).prop_map(move |value| {
                    let mut leaf = json!({"property": property, "operator": operator.as_str()});
                    if let Some(value) = value {
                        leaf["value"] = value;
                    }
                    leaf
                })
            })
    }

    fn condition() -> impl Strategy<Value = Value> {
        const TOP: &[&str] = &["a", "c.d", "n", "list", "list.0.x", "missing"];
        const INNER: &[&str] = &["x", "y", "z"];
        let sub_rule = (
            prop::sample::select(&["any", "all", "any_ifexists", "all_ifexists"][..]),
            prop_oneof![leaf(INNER), prop::collection::vec(leaf(INNER), 1..3).prop_map(|children| json!({"or": children}))],
        )
            .prop_map(|(quantifier, inner)| json!({quantifier: {"target": {"ref": "list"}, "required_config": inner}}));
        let base = prop_oneof![4 => leaf(TOP), 1 => sub_rule];
        base.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4)
                    .prop_map(|children| json!({"and": children})),
                prop::collection::vec(inner, 1..4).prop_map(|children| json!({"or": children})),
            ]
        })
    }

    fn rule() -> impl Strategy<Value = Value> {
        (
            condition(),
            prop::option::of(prop::sample::select(&["us-south", "eu-de"][..])),
            prop::option::of(-5i64..50),
        )
            .prop_map(|(required_config, location, default_limit)| {
                let mut parameter = json!({"name": "limit", "type": "numeric"});
                if let Some(limit) = default_limit {
                    parameter["default"] = json!(limit);
                }
                let mut target = json!({"service_name": "s", "resource_kind": "k"});
                if let Some(location) = location {
                    target["additional_target_attributes"] =
                        json!([{"name": "location", "value": location}]);
                }
                json!({"id": "rule", "target": target, "import": {"parameters": [parameter]},
                       "required_config": required_config})
            })
    }

    fn resource() -> impl Strategy<Value = Resource> {
        (config(), prop::option::of(prop::sample::select(&["us-south", "eu-de"][..]))).prop_map(|(config, region)| {
            serde_json::from_value(json!({
                "id": "r", "service_name": "s", "resource_kind": "k", "region": region, "config": config
            }))
            .expect("valid resource")
        })
    }

    fn attachment() -> impl Strategy<Value = ParameterValues> {
        prop::option::of(prop_oneof![
            (-5i64..50).prop_map(|limit| json!(limit)),
            Just(json!("lots"))
        ])
        .prop_map(|limit| {
            let mut values = ParameterValues::default();
            if let Some(limit) = limit {
                values.attachment.insert("limit".into(), limit);
            }
            values
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn compiled_and_naive_evaluation_agree(
            rules in prop::collection::vec(rule(), 1..3),
            resources in prop::collection::vec(resource(), 1..4),
            values in attachment(),
        ) {
            let rules_json: Vec<Value> = rules
                .into_iter()
                .enumerate()
                .map(|(index, mut rule)| {
                    rule["id"] = json!(format!("rule-{index}"));
                    rule
                })
                .collect();
            let parsed = parse_rules(&Value::Array(rules_json)).expect("generated rules are valid");
            let rule_set = RuleSet::compile(&parsed, &values).expect("generated rules compile");
            for resource in &resources {
                let compiled = rule_set.evaluate(resource, now());
                let reference = evaluate(&parsed, &values, resource, now());
                // The hot path (statuses only, details on demand) must say the same.
                let mut verdicts = Vec::new();
                rule_set.evaluate_verdicts(resource, now(), &mut verdicts);
                prop_assert_eq!(verdicts.len(), compiled.len());
                for (verdict, evaluation) in verdicts.iter().zip(&compiled) {
                    prop_assert_eq!(rule_set.rule_id(verdict.rule_index), Some(evaluation.rule_id.as_str()));
                    prop_assert_eq!(verdict.status, evaluation.status);
                    prop_assert_eq!(&verdict.details(&rule_set, resource, now()), &evaluation.details);
                }
                prop_assert_eq!(compiled, reference, "config {}", resource.config);
            }
        }
    }
}
