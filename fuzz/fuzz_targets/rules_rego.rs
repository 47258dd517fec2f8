//! Rego policies as SCC rules carry them (`"type": "rego"`): the input is the policy source,
//! compiled by the rule compiler and, when it compiles, evaluated against one resource.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use palisade_model::resource::Resource;
use palisade_rules::{ParameterValues, RuleSet};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let document = json!({
        "id": "fuzzed",
        "type": "rego",
        "target": {"service_name": "svc", "resource_kind": "thing"},
        "rego": source,
    });
    let Ok(rule_set) = RuleSet::from_json(&document, &ParameterValues::default()) else {
        return;
    };
    let resource: Resource = serde_json::from_value(json!({
        "id": "r1", "name": "site", "region": "eu-de", "service_name": "svc",
        "resource_kind": "thing", "config": {"public_access": true, "n": [1, 2, 3]}
    }))
    .expect("a valid resource");
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("valid date");
    let _ = rule_set.evaluate(&resource, now);
});
