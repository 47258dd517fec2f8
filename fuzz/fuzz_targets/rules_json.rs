//! SCC JSON config rules through the validator, the compiler and both evaluators.
//!
//! The input is a JSON object shaped like the crate's test cases — `rules` (one rule or an
//! array), optional `params` (attachment parameter values) and `resources` — or any other JSON
//! value, taken as the rules document and evaluated against a few fixed resources. Rules that
//! compile must evaluate without a panic, and the compiled evaluator must agree with the
//! reference evaluator (`palisade_rules::naive`) on every status.
#![no_main]

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use palisade_model::resource::Resource;
use palisade_rules::{ParameterValues, RuleSet, naive};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (document, params, resources) = match &input {
        Value::Object(object) if object.contains_key("rules") => (
            object["rules"].clone(),
            object.get("params").cloned(),
            object.get("resources").cloned(),
        ),
        _ => (input.clone(), None, None),
    };
    let params: BTreeMap<String, Value> = params
        .and_then(|params| serde_json::from_value(params).ok())
        .unwrap_or_default();
    let values = ParameterValues::from_attachment(params);
    let resources: Vec<Resource> = resources
        .and_then(|resources| serde_json::from_value::<Vec<Value>>(resources).ok())
        .unwrap_or_else(default_resources)
        .into_iter()
        .filter_map(|resource| serde_json::from_value(resource).ok())
        .collect();
    let (rules, rule_set) = match RuleSet::parse_and_compile(&document, &values) {
        Ok(compiled) => compiled,
        Err(errors) => {
            assert!(!errors.is_empty(), "a rejected document names at least one error");
            for error in errors {
                let _ = error.to_string();
            }
            return;
        }
    };
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("valid date");
    for resource in &resources {
        let compiled: Vec<_> = rule_set
            .evaluate(resource, now)
            .into_iter()
            .map(|evaluation| (evaluation.rule_id, evaluation.status))
            .collect();
        let reference: Vec<_> = naive::evaluate(&rules, &values, resource, now)
            .into_iter()
            .map(|evaluation| (evaluation.rule_id, evaluation.status))
            .collect();
        assert_eq!(compiled, reference, "compiled and reference evaluators disagree");
    }
});

fn default_resources() -> Vec<Value> {
    vec![
        json!({"id": "r1", "service_name": "svc", "resource_kind": "thing",
               "config": {"settings": {"p": "prod-web-01", "n": 5, "on": true,
                          "ips": ["10.0.0.1", "192.0.2.0/24"], "list": ["a", "b"],
                          "when": "2025-12-01T00:00:00Z"}}}),
        json!({"id": "r2", "service_name": "svc", "resource_kind": "thing", "config": {}}),
        json!({"id": "r3", "service_name": "cloud-object-storage", "resource_kind": "bucket",
               "config": {"firewall": {"allowed_ip": ["10.1.2.3"]}, "public_access": true}}),
    ]
}
