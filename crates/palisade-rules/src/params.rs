//! Rule parameters: `${name}` placeholders in condition values, the values an attachment or a
//! profile supplies, and their typing.
//!
//! Resolution order is SCC's: the attachment's value, else the profile's default, else the
//! default declared in the rule's `import.parameters`. The value is then typed by the declared
//! parameter type. Users' tooling hands list parameters over in many shapes (JSON arrays, JSON
//! text, quoted Python-style lists — see terraform-provider-ibm#5586 — or comma-separated text),
//! so every one of them is accepted here rather than failing a scan on quoting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{ImportParameter, ParameterType};

/// Parameter values supplied when rules are compiled for one attachment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParameterValues {
    /// Values the attachment sets; they win over everything else.
    #[serde(default)]
    pub attachment: BTreeMap<String, Value>,
    /// The profile's default values; used when the attachment sets none.
    #[serde(default)]
    pub profile_defaults: BTreeMap<String, Value>,
}

impl ParameterValues {
    /// Returns values where only the attachment sets anything.
    pub fn from_attachment(attachment: BTreeMap<String, Value>) -> Self {
        ParameterValues {
            attachment,
            profile_defaults: BTreeMap::new(),
        }
    }
}

/// Returns the parameter name when `text` is a whole `${name}` placeholder.
pub(crate) fn placeholder_name(text: &str) -> Option<&str> {
    let name = text.strip_prefix("${")?.strip_suffix('}')?;
    let is_identifier = !name.is_empty()
        && name.chars().all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '.')
        });
    is_identifier.then_some(name)
}

/// Whether a condition value holds a placeholder (as the whole value or as a list element).
pub(crate) fn has_placeholder(value: &Value) -> bool {
    match value {
        Value::String(text) => placeholder_name(text).is_some(),
        Value::Array(items) => items
            .iter()
            .any(|item| matches!(item, Value::String(text) if placeholder_name(text).is_some())),
        _ => false,
    }
}

/// Returns the names of every placeholder in a value with the relative JSON pointer of each.
pub(crate) fn placeholders(value: &Value) -> Vec<(String, &str)> {
    match value {
        Value::String(text) => placeholder_name(text)
            .map(|name| vec![(String::new(), name)])
            .unwrap_or_default(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| match item {
                Value::String(text) => {
                    placeholder_name(text).map(|name| (format!("/{index}"), name))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Removes placeholder elements from a list value, so the literal rest can still be checked at
/// validation time. Returns `None` when the whole value is a placeholder.
pub(crate) fn without_placeholders(value: &Value) -> Option<Value> {
    match value {
        Value::String(text) if placeholder_name(text).is_some() => None,
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter(
                    |item| !matches!(item, Value::String(text) if placeholder_name(text).is_some()),
                )
                .cloned()
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

/// Replaces every placeholder of `value` with its typed parameter value.
///
/// A list-typed parameter used as a list element is spliced into the list. The error is the
/// evaluation reason: a parameter without any value, or one whose value does not fit its type.
pub(crate) fn substitute(
    value: &Value,
    declared: &[ImportParameter],
    values: &ParameterValues,
) -> Result<Value, String> {
    match value {
        Value::String(text) => match placeholder_name(text) {
            Some(name) => resolve(name, declared, values),
            None => Ok(value.clone()),
        },
        Value::Array(items) => {
            let mut substituted = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(text) if placeholder_name(text).is_some() => {
                        let name = placeholder_name(text).unwrap_or_default();
                        match resolve(name, declared, values)? {
                            Value::Array(spliced) => substituted.extend(spliced),
                            single => substituted.push(single),
                        }
                    }
                    other => substituted.push(other.clone()),
                }
            }
            Ok(Value::Array(substituted))
        }
        other => Ok(other.clone()),
    }
}

fn resolve(
    name: &str,
    declared: &[ImportParameter],
    values: &ParameterValues,
) -> Result<Value, String> {
    let Some(parameter) = declared.iter().find(|parameter| parameter.name == name) else {
        return Err(format!(
            "parameter `{name}` is not declared in import.parameters"
        ));
    };
    let (raw, source) = if let Some(value) = values.attachment.get(name) {
        (value, "attachment")
    } else if let Some(value) = values.profile_defaults.get(name) {
        (value, "profile default")
    } else if let Some(value) = &parameter.default {
        (value, "rule default")
    } else {
        return Err(format!(
            "parameter `{name}` has no value: the attachment, the profile and the rule give none"
        ));
    };
    coerce(raw, parameter.parameter_type)
        .map_err(|message| format!("parameter `{name}` ({source}): {message}"))
}

/// Types a raw parameter value.
pub(crate) fn coerce(raw: &Value, parameter_type: ParameterType) -> Result<Value, String> {
    match parameter_type {
        ParameterType::General => Ok(raw.clone()),
        ParameterType::String => match raw {
            Value::String(_) => Ok(raw.clone()),
            Value::Number(number) => Ok(Value::String(number.to_string())),
            Value::Bool(flag) => Ok(Value::String(flag.to_string())),
            _ => Err(format!("{raw} is not a string")),
        },
        ParameterType::Numeric => match raw {
            Value::Number(_) => Ok(raw.clone()),
            Value::String(text) => crate::check::parse_number(text)
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("\"{text}\" is not a number")),
            _ => Err(format!("{raw} is not a number")),
        },
        ParameterType::Boolean => match raw {
            Value::Bool(_) => Ok(raw.clone()),
            Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(format!("{raw} is not a boolean")),
        },
        ParameterType::StringList | ParameterType::IpList => string_list(raw)
            .map(|items| Value::Array(items.into_iter().map(Value::String).collect())),
        ParameterType::Timestamp => match raw {
            Value::String(text) if chrono::DateTime::parse_from_rfc3339(text).is_ok() => {
                Ok(raw.clone())
            }
            _ => Err(format!("{raw} is not an RFC 3339 timestamp")),
        },
    }
}

fn string_list(raw: &Value) -> Result<Vec<String>, String> {
    match raw {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                Value::Number(number) => Ok(number.to_string()),
                Value::Bool(flag) => Ok(flag.to_string()),
                other => Err(format!("list element {other} is not a string")),
            })
            .collect(),
        Value::String(text) => Ok(string_list_from_text(text)),
        Value::Number(number) => Ok(vec![number.to_string()]),
        other => Err(format!("{other} is not a list of strings")),
    }
}

/// Reads a list handed over as text: JSON (`["a","b"]`), Python-style (`['a', 'b']`) or
/// comma-separated (`a, b`).
fn string_list_from_text(text: &str) -> Vec<String> {
    let trimmed = text.trim();
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(trimmed)
        && let Ok(list) = string_list(&Value::Array(items))
    {
        return list;
    }
    let inner = trimmed
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(trimmed);
    inner
        .split(',')
        .map(|item| {
            item.trim()
                .trim_matches(|quote| quote == '\'' || quote == '"')
                .to_string()
        })
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn declared(
        name: &str,
        parameter_type: ParameterType,
        default: Option<Value>,
    ) -> ImportParameter {
        ImportParameter {
            name: name.into(),
            display_name: None,
            description: None,
            parameter_type,
            default,
        }
    }

    #[test]
    fn placeholder_must_be_the_whole_string() {
        assert_eq!(placeholder_name("${quota}"), Some("quota"));
        assert_eq!(placeholder_name("x${quota}"), None);
        assert_eq!(placeholder_name("${}"), None);
        assert_eq!(placeholder_name("${a b}"), None);
    }

    #[test]
    fn attachment_wins_over_profile_over_rule_default() {
        let parameters = [declared("quota", ParameterType::Numeric, Some(json!(1)))];
        let mut values = ParameterValues::default();
        assert_eq!(
            substitute(&json!("${quota}"), &parameters, &values),
            Ok(json!(1))
        );
        values.profile_defaults.insert("quota".into(), json!("2"));
        assert_eq!(
            substitute(&json!("${quota}"), &parameters, &values),
            Ok(json!(2.0))
        );
        values.attachment.insert("quota".into(), json!(3));
        assert_eq!(
            substitute(&json!("${quota}"), &parameters, &values),
            Ok(json!(3))
        );
    }

    #[test]
    fn missing_value_and_bad_type_give_reasons() {
        let parameters = [declared("quota", ParameterType::Numeric, None)];
        let missing = substitute(&json!("${quota}"), &parameters, &ParameterValues::default());
        assert!(missing.expect_err("no value").contains("has no value"));
        let values =
            ParameterValues::from_attachment([("quota".to_string(), json!("lots"))].into());
        let bad = substitute(&json!("${quota}"), &parameters, &values);
        assert!(bad.expect_err("not numeric").contains("is not a number"));
    }

    #[test]
    fn list_parameters_accept_every_common_shape_and_splice_into_lists() {
        for raw in [
            json!(["a", "b"]),
            json!("[\"a\",\"b\"]"),
            json!("['a', 'b']"),
            json!("a, b"),
        ] {
            assert_eq!(
                coerce(&raw, ParameterType::StringList),
                Ok(json!(["a", "b"])),
                "{raw}"
            );
        }
        let parameters = [declared(
            "extra",
            ParameterType::StringList,
            Some(json!("b,c")),
        )];
        let spliced = substitute(
            &json!(["a", "${extra}"]),
            &parameters,
            &ParameterValues::default(),
        );
        assert_eq!(spliced, Ok(json!(["a", "b", "c"])));
    }

    #[test]
    fn booleans_and_timestamps_are_typed() {
        assert_eq!(
            coerce(&json!("TRUE"), ParameterType::Boolean),
            Ok(json!(true))
        );
        assert!(coerce(&json!("yes"), ParameterType::Boolean).is_err());
        assert!(coerce(&json!("2026-01-01T00:00:00Z"), ParameterType::Timestamp).is_ok());
        assert!(coerce(&json!("yesterday"), ParameterType::Timestamp).is_err());
    }

    #[test]
    fn literal_elements_survive_placeholder_removal() {
        assert_eq!(without_placeholders(&json!("${a}")), None);
        assert_eq!(
            without_placeholders(&json!(["${a}", "x"])),
            Some(json!(["x"]))
        );
        assert_eq!(
            placeholders(&json!(["${a}", "x", "${b}"])),
            vec![("/0".into(), "a"), ("/2".into(), "b")]
        );
    }
}
