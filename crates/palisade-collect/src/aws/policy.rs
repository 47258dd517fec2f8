//! Facts derived from IAM policy documents, because the rule language cannot compute them
//! from the raw statements (content/README.md names each derived property).

use serde_json::Value;

/// The statements of a policy (`Statement` may be one object or an array).
fn statements(policy: &Value) -> Vec<&Value> {
    match policy.get("Statement") {
        Some(Value::Array(statements)) => statements.iter().collect(),
        Some(statement @ Value::Object(_)) => vec![statement],
        _ => Vec::new(),
    }
}

/// True when `value` is `"*"` or a list holding `"*"`.
fn has_wildcard(value: Option<&Value>) -> bool {
    match value {
        Some(Value::String(text)) => text == "*",
        Some(Value::Array(items)) => items.iter().any(|item| item.as_str() == Some("*")),
        _ => false,
    }
}

fn effect_is(statement: &Value, effect: &str) -> bool {
    statement
        .get("Effect")
        .and_then(Value::as_str)
        .is_some_and(|value| value.eq_ignore_ascii_case(effect))
}

/// True when a statement allows every action on every resource (`"Action": "*"`,
/// `"Resource": "*"`): full administrator rights.
pub fn allows_full_admin(policy: &Value) -> bool {
    statements(policy).into_iter().any(|statement| {
        effect_is(statement, "Allow")
            && has_wildcard(statement.get("Action"))
            && has_wildcard(statement.get("Resource"))
    })
}

/// True when a statement allows the principal `*` (everyone) without a condition.
pub fn allows_public(policy: &Value) -> bool {
    statements(policy).into_iter().any(|statement| {
        let principal = statement.get("Principal");
        let everyone = match principal {
            Some(Value::String(text)) => text == "*",
            Some(Value::Object(map)) => has_wildcard(map.get("AWS")),
            _ => false,
        };
        effect_is(statement, "Allow") && everyone && statement.get("Condition").is_none()
    })
}

/// True when a statement denies requests made without TLS (`aws:SecureTransport` false).
pub fn denies_insecure_transport(policy: &Value) -> bool {
    statements(policy).into_iter().any(|statement| {
        if !effect_is(statement, "Deny") {
            return false;
        }
        let Some(Value::Object(condition)) = statement.get("Condition") else {
            return false;
        };
        ["Bool", "BoolIfExists"].iter().any(|operator| {
            condition
                .get(*operator)
                .and_then(|test| {
                    test.as_object()?.iter().find_map(|(key, value)| {
                        key.eq_ignore_ascii_case("aws:SecureTransport")
                            .then_some(value)
                    })
                })
                .is_some_and(|value| match value {
                    Value::Bool(flag) => !flag,
                    Value::String(text) => text.eq_ignore_ascii_case("false"),
                    Value::Array(items) => items.iter().any(|item| {
                        item.as_str()
                            .is_some_and(|text| text.eq_ignore_ascii_case("false"))
                            || item == &Value::Bool(false)
                    }),
                    _ => false,
                })
        })
    })
}

/// Decodes a policy document as IAM returns it (URL-encoded JSON), or plain JSON.
pub fn decode_document(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok().or_else(|| {
        let decoded = percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .ok()?
            .into_owned();
        serde_json::from_str(&decoded).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_are_analysed() {
        let admin = json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": ["*"]}});
        assert!(allows_full_admin(&admin));
        let read =
            json!({"Statement": [{"Effect": "Allow", "Action": ["s3:Get*"], "Resource": "*"}]});
        assert!(!allows_full_admin(&read));
        let public = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*"}]});
        assert!(allows_public(&public));
        let tls = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert!(denies_insecure_transport(&tls));
        assert!(!denies_insecure_transport(&public));
        assert_eq!(
            decode_document("%7B%22Version%22%3A%222012-10-17%22%7D"),
            Some(json!({"Version": "2012-10-17"}))
        );
    }
}
