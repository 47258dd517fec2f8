//! Each SigmaHQ AWS CloudTrail rule fires on an event made from its own detection and stays
//! silent on a near miss.
//!
//! The generator walks the rule's condition and picks, for every positive detection item, a
//! value its modifiers accept (`contains` wraps it, `startswith` appends, wildcards are filled
//! in); negated parts are left out of the event, so filters do not match. The near miss alters
//! one character in the middle of the literal of the last value set — usually the `eventName`
//! — so it differs from the match by a single value.

use std::collections::HashMap;
use std::path::Path;

use palisade_sigma::PackParameters;
use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, Modifier, Quantifier, SelectorPattern, SigmaValue,
    StringPart,
};
use serde_json::{Map, Value};

use crate::common::{fires, load_files};

/// A value the generator set: its dot path and the literal a near miss should break.
struct SetValue {
    path: String,
    literal: String,
}

struct Generator<'rule> {
    named: &'rule HashMap<String, Detection>,
    event: Map<String, Value>,
    set: Vec<SetValue>,
}

impl Generator<'_> {
    fn satisfy(&mut self, condition: &ConditionExpr) -> bool {
        match condition {
            ConditionExpr::And(parts) => parts.iter().all(|part| self.satisfy(part)),
            ConditionExpr::Or(parts) => parts.iter().any(|part| self.satisfy(part)),
            ConditionExpr::Not(_) => true,
            ConditionExpr::Identifier(name) => match self.named.get(name) {
                Some(detection) => self.satisfy_detection(detection),
                None => false,
            },
            ConditionExpr::Selector {
                quantifier,
                pattern,
            } => {
                let mut names: Vec<&String> = self
                    .named
                    .keys()
                    .filter(|name| match pattern {
                        SelectorPattern::Them => !name.starts_with('_'),
                        SelectorPattern::Pattern(glob) => {
                            rsigma_parser::detection_name_matches(glob, name)
                        }
                    })
                    .collect();
                names.sort();
                let named = self.named;
                let wanted = match quantifier {
                    Quantifier::All => {
                        return names
                            .into_iter()
                            .all(|name| self.satisfy_detection(&named[name]));
                    }
                    Quantifier::Any => 1,
                    Quantifier::Count(count) => *count as usize,
                };
                // Try the alternatives in order, undoing one that cannot be satisfied.
                let mut satisfied = 0;
                for name in names {
                    let (saved_event, saved_count) = (self.event.clone(), self.set.len());
                    if self.satisfy_detection(&named[name]) {
                        satisfied += 1;
                        if satisfied == wanted {
                            return true;
                        }
                    } else {
                        self.event = saved_event;
                        self.set.truncate(saved_count);
                    }
                }
                false
            }
        }
    }

    fn satisfy_detection(&mut self, detection: &Detection) -> bool {
        match detection {
            Detection::AllOf(items) => items.iter().all(|item| self.satisfy_item(item)),
            Detection::AnyOf(alternatives) => alternatives
                .first()
                .is_some_and(|first| self.satisfy_detection(first)),
            Detection::Keywords(values) => {
                match values.first().and_then(|value| literal_value(value, &[])) {
                    Some((value, literal)) => {
                        self.put("palisade_keyword_carrier", value, literal);
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    fn satisfy_item(&mut self, item: &DetectionItem) -> bool {
        let Some(field) = item.field.name.clone() else {
            return false;
        };
        let modifiers = &item.field.modifiers;
        if modifiers.contains(&Modifier::Exists) {
            if matches!(item.values.first(), Some(SigmaValue::Bool(true))) {
                self.put(&field, Value::String("present".into()), "present".into());
            }
            return true;
        }
        if modifiers.iter().any(|modifier| {
            matches!(
                modifier,
                Modifier::Re
                    | Modifier::FieldRef
                    | Modifier::Cidr
                    | Modifier::Base64
                    | Modifier::Base64Offset
            )
        }) {
            return false;
        }
        if modifiers.contains(&Modifier::All) {
            let parts: Option<Vec<String>> = item
                .values
                .iter()
                .map(|value| literal_value(value, &[]).map(|(_, literal)| literal))
                .collect();
            let Some(parts) = parts else { return false };
            let joined = format!("zz {} zz", parts.join(" "));
            let last = parts.last().cloned().unwrap_or_default();
            self.put(&field, Value::String(joined), last);
            return true;
        }
        if matches!(item.values.first(), Some(SigmaValue::Null)) {
            // `field: null` matches an absent field: leave it out.
            return true;
        }
        match item
            .values
            .first()
            .and_then(|value| literal_value(value, modifiers))
        {
            Some((value, literal)) => {
                self.put(&field, value, literal);
                true
            }
            None => false,
        }
    }

    fn put(&mut self, path: &str, value: Value, literal: String) {
        set_path(&mut self.event, path, value);
        self.set.push(SetValue {
            path: path.to_owned(),
            literal,
        });
    }
}

/// Returns a JSON value the item's modifiers accept and the literal inside it.
fn literal_value(value: &SigmaValue, modifiers: &[Modifier]) -> Option<(Value, String)> {
    match value {
        SigmaValue::String(string) => {
            let mut text = String::new();
            for part in &string.parts {
                match part {
                    StringPart::Plain(plain) => text.push_str(plain),
                    StringPart::Special(rsigma_parser::SpecialChar::WildcardSingle) => {
                        text.push('x')
                    }
                    StringPart::Special(rsigma_parser::SpecialChar::WildcardMulti) => {}
                }
            }
            let literal = text.clone();
            if modifiers.contains(&Modifier::Contains) {
                text = format!("zz{text}zz");
            } else if modifiers.contains(&Modifier::StartsWith) {
                text.push_str("zz");
            } else if modifiers.contains(&Modifier::EndsWith) {
                text.insert_str(0, "zz");
            }
            Some((Value::String(text), literal))
        }
        SigmaValue::Integer(number) => Some((Value::from(*number), number.to_string())),
        SigmaValue::Bool(flag) => Some((Value::Bool(*flag), flag.to_string())),
        SigmaValue::Float(_) | SigmaValue::Null => None,
    }
}

fn set_path(event: &mut Map<String, Value>, path: &str, value: Value) {
    let mut segments: Vec<&str> = path.split('.').collect();
    let last = segments.pop().unwrap_or(path);
    let mut current = event;
    for segment in segments {
        let entry = current
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        current = entry.as_object_mut().expect("just made an object");
    }
    current.insert(last.to_owned(), value);
}

fn get_path_mut<'event>(event: &'event mut Value, path: &str) -> Option<&'event mut Value> {
    path.split('.')
        .try_fold(event, |current, segment| current.get_mut(segment))
}

/// Breaks `literal` inside the value at `path`: a character is inserted in its middle.
fn near_miss(event: &Value, set: &SetValue) -> Option<Value> {
    let mut altered = event.clone();
    let target = get_path_mut(&mut altered, &set.path)?;
    let broken_literal = {
        let middle = set
            .literal
            .char_indices()
            .nth(set.literal.chars().count() / 2)?
            .0;
        format!("{}_{}", &set.literal[..middle], &set.literal[middle..])
    };
    *target = match target {
        Value::String(text) => Value::String(text.replacen(&set.literal, &broken_literal, 1)),
        Value::Number(number) => Value::from(number.as_i64()? + 1),
        Value::Bool(flag) => Value::Bool(!*flag),
        _ => return None,
    };
    Some(altered)
}

/// Loads `cloudtrail_events/<stem>.json` ({"match": …, "near_miss": …}) when present.
fn hand_written_pair(rule_path: &Path) -> Option<(Value, Value)> {
    let stem = rule_path.file_stem()?.to_str()?;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cloudtrail_events")
        .join(format!("{stem}.json"));
    let text = std::fs::read_to_string(fixture).ok()?;
    let mut pair: Value = serde_json::from_str(&text).expect("fixture is JSON");
    Some((
        pair.get_mut("match")?.take(),
        pair.get_mut("near_miss")?.take(),
    ))
}

pub fn cloudtrail_rule_fires_and_misses(path: &Path) -> datatest_stable::Result<()> {
    let (pack, errors) = load_files(&[path.to_path_buf()], &PackParameters::default());
    if !errors.is_empty() {
        return Err(format!("rule does not load: {errors:?}").into());
    }
    let rule_id = pack
        .detection_rules()
        .first()
        .ok_or("no detection rule in file")?
        .id
        .clone();
    let (matching, missing) = match hand_written_pair(path) {
        Some(pair) => pair,
        None => {
            let text = std::fs::read_to_string(path)?;
            let collection = rsigma_parser::parse_sigma_yaml(&text)?;
            let rule = collection.rules.first().ok_or("no rule")?;
            let mut generator = Generator {
                named: &rule.detection.named,
                event: Map::new(),
                set: Vec::new(),
            };
            let satisfiable = rule
                .detection
                .conditions
                .iter()
                .any(|condition| generator.satisfy(condition));
            if !satisfiable {
                return Err("the generator cannot satisfy this detection: add tests/cloudtrail_events/<rule>.json".into());
            }
            // What makes a record CloudTrail's, unless the rule itself set these fields.
            for (field, default) in [
                ("eventVersion", "1.08"),
                ("eventName", "PalisadeGeneratedEvent"),
            ] {
                generator
                    .event
                    .entry(field)
                    .or_insert_with(|| Value::String(default.into()));
            }
            let matching = Value::Object(generator.event.clone());
            // Break the last value whose literal can be broken (a bare `*` has none).
            let missing = generator
                .set
                .iter()
                .rev()
                .filter(|set| set.literal.chars().count() >= 2)
                .find_map(|set| near_miss(&matching, set))
                .ok_or("cannot build a near miss")?;
            (matching, missing)
        }
    };
    if !fires(&pack, &matching, &rule_id) {
        return Err(format!("rule did not fire on {matching}").into());
    }
    if fires(&pack, &missing, &rule_id) {
        return Err(format!("rule fired on the near miss {missing}").into());
    }
    Ok(())
}
