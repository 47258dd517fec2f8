//! Rego rules through `regorus`: compiled once per policy, evaluated many times from any thread.
//!
//! A Rego rule fails when its package's `deny` set is non-empty (each element becomes a reason),
//! passes when the set is empty or undefined, and errors when evaluation fails. Policies written
//! for OPA 1.0 (Rego v1) and older ones (v0, `deny[msg] { … }`) are both accepted: v1 is tried
//! first, v0 only when v1 does not parse.

use serde_json::Value;

use crate::check::Status;
use crate::eval::Detail;

/// A compiled Rego policy. `regorus` is built with its `arc` feature, so the compiled form is
/// `Send + Sync` and one compilation serves every worker thread.
#[derive(Debug, Clone)]
pub(crate) struct RegoPolicy {
    compiled: regorus::CompiledPolicy,
    entrypoint: String,
}

impl RegoPolicy {
    /// Compiles `source`; the error is a message naming the line and column when the parser
    /// gives them.
    pub(crate) fn compile(rule_id: &str, source: &str) -> Result<RegoPolicy, String> {
        let depth = bracket_depth(source);
        if depth > MAX_BRACKET_DEPTH {
            return Err(format!(
                "the policy nests brackets {depth} levels deep; at most {MAX_BRACKET_DEPTH} are accepted"
            ));
        }
        match Self::compile_as(rule_id, source, false) {
            Ok(policy) => Ok(policy),
            // A policy using v1 keywords is a v1 policy with a mistake: retrying it as v0 would
            // only make regorus print keyword warnings on stderr.
            Err(v1_error) if uses_v1_keywords(source) => Err(v1_error),
            Err(v1_error) => Self::compile_as(rule_id, source, true).map_err(|_| v1_error),
        }
    }

    fn compile_as(rule_id: &str, source: &str, rego_v0: bool) -> Result<RegoPolicy, String> {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(rego_v0);
        let package = engine
            .add_policy(format!("{rule_id}.rego"), source.to_string())
            .map_err(|error| format!("{error:#}"))?;
        let entrypoint = format!("{package}.deny");
        let has_deny = engine
            .has_declared_rule_rooted_at(&format!("{rule_id}.rego"), "deny")
            .unwrap_or(false);
        if !has_deny {
            return Err(format!(
                "the policy declares no `deny` rule (expected {entrypoint})"
            ));
        }
        let compiled = engine
            .compile_with_entrypoint(&regorus::Rc::from(entrypoint.as_str()))
            .map_err(|error| format!("{error:#}"))?;
        Ok(RegoPolicy {
            compiled,
            entrypoint,
        })
    }

    /// Evaluates the policy on one resource (already converted to a `regorus` value).
    pub(crate) fn evaluate(&self, input: &regorus::Value) -> (Status, Vec<Detail>) {
        match self.compiled.eval_with_input(input.clone()) {
            Ok(regorus::Value::Undefined) => (Status::Pass, Vec::new()),
            Ok(result) => {
                let messages: Vec<String> =
                    match &result {
                        regorus::Value::Set(items) => items.iter().map(message_of).collect(),
                        regorus::Value::Array(items) => items.iter().map(message_of).collect(),
                        other => {
                            return (
                                Status::Error,
                                vec![self.detail(format!(
                                    "`deny` is not a set but {}",
                                    message_of(other)
                                ))],
                            );
                        }
                    };
                if messages.is_empty() {
                    (Status::Pass, Vec::new())
                } else {
                    (
                        Status::Failure,
                        messages
                            .into_iter()
                            .map(|message| self.detail(message))
                            .collect(),
                    )
                }
            }
            Err(error) => (
                Status::Error,
                vec![self.detail(format!("rego evaluation failed: {error:#}"))],
            ),
        }
    }

    fn detail(&self, reason: String) -> Detail {
        Detail {
            property: self.entrypoint.clone(),
            operator: "rego".into(),
            expected_value: Value::Null,
            found_value: None,
            reason: reason.into(),
        }
    }
}

fn uses_v1_keywords(source: &str) -> bool {
    source
        .split(|character: char| !(character.is_alphanumeric() || character == '_'))
        .any(|word| word == "if" || word == "contains")
}

/// A deny element's message: a string as is, an object's `msg`, anything else as JSON text.
fn message_of(value: &regorus::Value) -> String {
    if let Ok(text) = value.as_string() {
        return text.to_string();
    }
    if let Ok(object) = value.as_object()
        && let Some(message) = object.get(&regorus::Value::from("msg"))
        && let Ok(text) = message.as_string()
    {
        return text.to_string();
    }
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

/// Converts a JSON document to the `regorus` input form.
pub(crate) fn input_of(document: Value) -> regorus::Value {
    regorus::Value::from(document)
}

/// Deepest bracket nesting a policy may use. regorus's parser takes time exponential in the
/// nesting of `[` and `{` (about doubling per level: 18 levels took 15 s, 22 levels 108 s), so a
/// rule upload could stall a server; real policies nest a few levels. Found by the `rules_rego`
/// fuzz target (issue 11).
const MAX_BRACKET_DEPTH: usize = 12;

/// Returns the deepest nesting of `(`, `[` and `{` outside strings and comments.
fn bracket_depth(source: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut characters = source.chars();
    while let Some(character) = characters.next() {
        match character {
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '#' => {
                for skipped in characters.by_ref() {
                    if skipped == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                while let Some(skipped) = characters.next() {
                    match skipped {
                        '\\' => {
                            characters.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '`' => {
                for skipped in characters.by_ref() {
                    if skipped == '`' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const POLICY: &str = r#"
        package buckets
        deny contains msg if {
            input.config.public == true
            msg := sprintf("bucket %s is public", [input.id])
        }
    "#;

    #[test]
    fn compiled_policy_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RegoPolicy>();
    }

    #[test]
    fn deny_messages_become_failure_reasons() {
        let policy = RegoPolicy::compile("r", POLICY).expect("compiles");
        let (status, details) =
            policy.evaluate(&input_of(json!({"id": "b1", "config": {"public": true}})));
        assert_eq!(status, Status::Failure);
        assert_eq!(details[0].reason, "bucket b1 is public");
        let (status, details) =
            policy.evaluate(&input_of(json!({"id": "b2", "config": {"public": false}})));
        assert_eq!((status, details.len()), (Status::Pass, 0));
    }

    #[test]
    fn rego_v0_policies_are_accepted() {
        let policy = RegoPolicy::compile(
            "r",
            "package old\ndeny[msg] { input.x == 1; msg := \"x is 1\" }",
        )
        .expect("v0 compiles");
        assert_eq!(
            policy.evaluate(&input_of(json!({"x": 1}))).0,
            Status::Failure
        );
    }

    #[test]
    fn syntax_errors_and_missing_deny_are_reported() {
        assert!(RegoPolicy::compile("r", "package p\ndeny contains msg if {").is_err());
        let error = RegoPolicy::compile("r", "package p\nallow := true").expect_err("no deny");
        assert!(error.contains("deny"), "{error}");
    }

    #[test]
    fn issue_11_fuzz_deeply_nested_brackets_are_refused_before_parsing() {
        // Without the depth check this input keeps regorus's parser busy for hours.
        let source = format!("package p\nx := input.a{}b\n", "[".repeat(40));
        let error = RegoPolicy::compile("r", &source).expect_err("refused");
        assert!(error.contains("40 levels"), "{error}");
        assert_eq!(bracket_depth("a := \"[[[[\" # {{{{\nb := `((((` [1]"), 1);
        assert_eq!(bracket_depth("x := [{\"a\": [1]}]"), 3);
        assert!(RegoPolicy::compile("r", POLICY).is_ok());
    }
}
