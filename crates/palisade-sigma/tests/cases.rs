//! Case files: a pack, events in order, and exactly the findings wanted.
//!
//! ```yaml
//! note: why the case exists
//! rules: [palisade/aws/palisade_aws_console_login_failures.yml]   # under content/sigma
//! inline_rules: |            # or Sigma YAML written in the case
//!   title: …
//! parameters: {failed_login_threshold: "3"}
//! events:
//!   - {eventName: …}                                             # one event
//!   - {repeat: 6, start: "2024-01-01T10:00:00Z", every_seconds: 30, event: {…}}
//! want:                        # every rule that fires, with how often; nothing else may fire
//!   - {rule: palisade_aws_console_login_brute_force, count: 1, events: 6}
//! ```

use std::path::Path;

use palisade_sigma::{PackParameters, RuleSource, load_pack};
use serde::Deserialize;
use serde_json::Value;

use crate::common::{content_root, run_events};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[allow(dead_code)]
    note: String,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    inline_rules: Option<String>,
    #[serde(default)]
    parameters: PackParameters,
    events: Vec<Value>,
    #[serde(default)]
    want: Vec<Want>,
    #[serde(default)]
    want_load_error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Want {
    rule: String,
    count: usize,
    /// For correlations: how many events the (last) finding carries.
    #[serde(default)]
    events: Option<usize>,
}

fn expand_events(items: &[Value]) -> datatest_stable::Result<Vec<Value>> {
    let mut events = Vec::new();
    for item in items {
        let Some(repeat) = item.get("repeat").and_then(Value::as_u64) else {
            events.push(item.clone());
            continue;
        };
        let start = item
            .get("start")
            .and_then(Value::as_str)
            .ok_or("repeat needs `start`")?;
        let start = palisade_logs::audit::parse_time(start).ok_or("bad `start`")?;
        let every = item
            .get("every_seconds")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let template = item.get("event").ok_or("repeat needs `event`")?;
        for index in 0..repeat as i64 {
            let mut event = template.clone();
            let time = start + chrono::Duration::seconds(every * index);
            event["eventTime"] = Value::String(time.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            events.push(event);
        }
    }
    Ok(events)
}

pub fn case(path: &Path) -> datatest_stable::Result<()> {
    let case: Case = serde_yaml::from_str(&std::fs::read_to_string(path)?)?;
    let mut sources: Vec<RuleSource> = case
        .rules
        .iter()
        .map(|name| {
            let file = content_root().join(name);
            std::fs::read_to_string(&file).map(|text| RuleSource {
                name: name.clone(),
                text,
            })
        })
        .collect::<Result<_, _>>()?;
    if let Some(inline) = &case.inline_rules {
        sources.push(RuleSource {
            name: "inline".into(),
            text: inline.clone(),
        });
    }
    let (pack, errors) = load_pack(&sources, &case.parameters);
    if let Some(wanted_error) = &case.want_load_error {
        return match errors
            .iter()
            .find(|error| error.to_string().contains(wanted_error.as_str()))
        {
            Some(_) => Ok(()),
            None => Err(
                format!("wanted a load error containing {wanted_error:?}, got {errors:?}").into(),
            ),
        };
    }
    if !errors.is_empty() {
        return Err(format!("pack does not load: {errors:?}").into());
    }
    let events = expand_events(&case.events)?;
    let fired = run_events(&pack, &events);
    let mut problems = Vec::new();
    for want in &case.want {
        let hits: Vec<_> = fired
            .iter()
            .filter(|fired| {
                fired.rule_id == want.rule || fired.rule_name.as_deref() == Some(want.rule.as_str())
            })
            .collect();
        if hits.len() != want.count {
            problems.push(format!(
                "{}: fired {} times, wanted {}",
                want.rule,
                hits.len(),
                want.count
            ));
        }
        if let (Some(wanted_events), Some(last)) = (want.events, hits.last())
            && last.event_count != wanted_events
        {
            problems.push(format!(
                "{}: carries {} events, wanted {wanted_events}",
                want.rule, last.event_count
            ));
        }
    }
    for fired in &fired {
        let expected = case.want.iter().any(|want| {
            fired.rule_id == want.rule || fired.rule_name.as_deref() == Some(want.rule.as_str())
        });
        if !expected {
            problems.push(format!(
                "unexpected finding from {} ({:?})",
                fired.rule_id, fired.rule_name
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let summary: Vec<String> = fired
            .iter()
            .map(|fired| {
                format!(
                    "{} {:?}",
                    fired.rule_name.as_deref().unwrap_or(&fired.rule_id),
                    fired.group
                )
            })
            .collect();
        Err(format!("{} (fired: {summary:?})", problems.join("; ")).into())
    }
}
