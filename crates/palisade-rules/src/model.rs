//! The rule model: what a user writes, after validation.
//!
//! A [`Rule`] is either an SCC config rule (a [`Condition`] tree over resource properties) or a
//! Rego policy. Values keep their JSON form here (`serde_json::Value`): turning them into numbers,
//! CIDRs and wildcards is the compiler's job, because parameters (`${name}`) are only known when a
//! rule is compiled for one attachment.
//!
//! The JSON form is SCC's (see `reference/ibm-scc.md` §2). Reading goes through
//! [`crate::validate`] so that every mistake is reported at once with its JSON pointer; the serde
//! `Deserialize` impl uses the same parser and joins the messages.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

/// One rule: an SCC config rule or a Rego policy, with the resources it targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Identifier; evaluations carry it.
    pub id: String,
    /// Free text shown in reports.
    pub description: Option<String>,
    /// Rule version as the author gives it (SCC `version`).
    pub version: Option<String>,
    /// Labels (SCC `labels`).
    pub labels: Vec<String>,
    /// Which resources the rule applies to.
    pub target: Target,
    /// Parameters the rule declares (SCC `import.parameters`).
    pub parameters: Vec<ImportParameter>,
    /// What the rule checks.
    pub body: RuleBody,
}

/// What a rule checks.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleBody {
    /// An SCC `required_config` tree.
    Config(Condition),
    /// A Rego module; the rule fails when the module's `deny` set is non-empty.
    Rego(String),
}

/// The resources a rule applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Must equal the resource's `service_name`.
    pub service_name: String,
    /// Must equal the resource's `resource_kind`.
    pub resource_kind: String,
    /// Further conditions on envelope fields or config properties; all must pass.
    pub additional_target_attributes: Vec<TargetAttribute>,
}

/// A condition that narrows a target (`location string_equals us-south`).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetAttribute {
    /// Envelope field (`region`/`location`, `resource_group`, `tags.KEY`, …) or config path.
    pub name: String,
    /// Defaults to `string_equals` when the JSON omits it (v1 templates have no operator).
    pub operator: Operator,
    /// Expected value, when the operator takes one.
    pub value: Option<Value>,
}

/// A parameter a rule declares; `${name}` placeholders may only name declared parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportParameter {
    /// Name used in `${name}`.
    pub name: String,
    /// Label for user interfaces.
    pub display_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// How a supplied value is interpreted.
    pub parameter_type: ParameterType,
    /// Used when neither the attachment nor the profile gives a value.
    pub default: Option<Value>,
}

/// SCC parameter types (`parameter_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterType {
    /// A string, taken as given.
    String,
    /// A number, or a string holding one.
    Numeric,
    /// Any JSON value, taken as given.
    General,
    /// A boolean, or the string `true` / `false`.
    Boolean,
    /// A list of strings (also accepted as JSON text, a quoted Python-style list, or
    /// comma-separated text, because that is how users' tooling often hands them over).
    StringList,
    /// A list of IP addresses / CIDRs, in any form `string_list` accepts.
    IpList,
    /// An RFC 3339 timestamp string.
    Timestamp,
}

impl ParameterType {
    /// All types, in SCC's order.
    pub const ALL: [ParameterType; 7] = [
        ParameterType::String,
        ParameterType::Numeric,
        ParameterType::General,
        ParameterType::Boolean,
        ParameterType::StringList,
        ParameterType::IpList,
        ParameterType::Timestamp,
    ];

    /// The SCC name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::String => "string",
            ParameterType::Numeric => "numeric",
            ParameterType::General => "general",
            ParameterType::Boolean => "boolean",
            ParameterType::StringList => "string_list",
            ParameterType::IpList => "ip_list",
            ParameterType::Timestamp => "timestamp",
        }
    }
}

impl FromStr for ParameterType {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ParameterType::ALL
            .into_iter()
            .find(|parameter_type| parameter_type.as_str() == text)
            .ok_or(())
    }
}

/// A node of a `required_config` tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `{property, operator, value}`.
    Leaf(Leaf),
    /// `{"and": [...]}`: fails if any child fails, else errors if any errors, else passes.
    And(Vec<Condition>),
    /// `{"or": [...]}`: passes if any child passes, else errors if any errors, else fails.
    Or(Vec<Condition>),
    /// `{"any"|"all"|"any_ifexists"|"all_ifexists": {target: {ref}, required_config}}`.
    SubRule(SubRule),
}

/// A leaf condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    /// Dot path into the config (a numeric segment indexes an array).
    pub property: String,
    /// The comparison.
    pub operator: Operator,
    /// Expected value; absent for the operators that take none.
    pub value: Option<Value>,
}

/// A v3 sub-rule: a condition checked on each element of an array in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct SubRule {
    /// How element results combine.
    pub quantifier: Quantifier,
    /// Dot path of the array (`target.ref`).
    pub target_ref: String,
    /// Checked with each element acting as the config.
    pub required_config: Box<Condition>,
}

/// How a sub-rule combines its elements' results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantifier {
    /// One element passes; a missing or empty array fails.
    Any,
    /// Every element passes; a missing or empty array fails.
    All,
    /// As `any`, but a missing or empty array passes.
    AnyIfexists,
    /// As `all`, but a missing or empty array passes.
    AllIfexists,
}

impl Quantifier {
    /// All quantifiers.
    pub const ALL: [Quantifier; 4] = [
        Quantifier::Any,
        Quantifier::All,
        Quantifier::AnyIfexists,
        Quantifier::AllIfexists,
    ];

    /// The JSON key of the quantifier.
    pub fn as_str(self) -> &'static str {
        match self {
            Quantifier::Any => "any",
            Quantifier::All => "all",
            Quantifier::AnyIfexists => "any_ifexists",
            Quantifier::AllIfexists => "all_ifexists",
        }
    }

    /// Whether one passing element is enough (`any*`) rather than all of them (`all*`).
    pub fn is_any(self) -> bool {
        matches!(self, Quantifier::Any | Quantifier::AnyIfexists)
    }

    /// Whether a missing or empty array passes.
    pub fn passes_when_absent(self) -> bool {
        matches!(self, Quantifier::AnyIfexists | Quantifier::AllIfexists)
    }
}

macro_rules! operators {
    ($($variant:ident => $name:literal, $needs_value:literal;)*) => {
        /// SCC's 23 operators, exactly.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Operator {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Operator {
            /// Every operator, in SCC's documentation order.
            pub const ALL: &'static [Operator] = &[$(Operator::$variant),*];

            /// The operator's SCC name.
            pub fn as_str(self) -> &'static str {
                match self { $(Operator::$variant => $name),* }
            }

            /// Whether the operator needs a `value`.
            pub fn needs_value(self) -> bool {
                match self { $(Operator::$variant => $needs_value),* }
            }
        }
    };
}

operators! {
    IsEmpty => "is_empty", false;
    IsNotEmpty => "is_not_empty", false;
    IsTrue => "is_true", false;
    IsFalse => "is_false", false;
    StringEquals => "string_equals", true;
    StringNotEquals => "string_not_equals", true;
    StringMatch => "string_match", true;
    StringNotMatch => "string_not_match", true;
    StringContains => "string_contains", true;
    StringNotContains => "string_not_contains", true;
    StringsInList => "strings_in_list", true;
    StringsAllowed => "strings_allowed", true;
    StringsRequired => "strings_required", true;
    IpsInRange => "ips_in_range", true;
    IpsEquals => "ips_equals", true;
    IpsNotEquals => "ips_not_equals", true;
    NumEquals => "num_equals", true;
    NumNotEquals => "num_not_equals", true;
    NumLessThan => "num_less_than", true;
    NumLessThanEquals => "num_less_than_equals", true;
    NumGreaterThan => "num_greater_than", true;
    NumGreaterThanEquals => "num_greater_than_equals", true;
    DaysLessThan => "days_less_than", true;
}

impl FromStr for Operator {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Operator::ALL
            .iter()
            .copied()
            .find(|operator| operator.as_str() == text)
            .ok_or(())
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Rule {
    /// Returns the rule in SCC's JSON form (what [`crate::validate::parse_rule`] reads back).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("id".into(), Value::String(self.id.clone()));
        if let Some(description) = &self.description {
            object.insert("description".into(), Value::String(description.clone()));
        }
        if let Some(version) = &self.version {
            object.insert("version".into(), Value::String(version.clone()));
        }
        if !self.labels.is_empty() {
            object.insert("labels".into(), json!(self.labels));
        }
        object.insert("target".into(), self.target.to_json());
        if !self.parameters.is_empty() {
            let parameters: Vec<Value> = self
                .parameters
                .iter()
                .map(ImportParameter::to_json)
                .collect();
            object.insert("import".into(), json!({ "parameters": parameters }));
        }
        match &self.body {
            RuleBody::Config(condition) => {
                object.insert("required_config".into(), condition.to_json());
            }
            RuleBody::Rego(source) => {
                object.insert("type".into(), Value::String("rego".into()));
                object.insert("rego".into(), Value::String(source.clone()));
            }
        }
        Value::Object(object)
    }
}

impl Target {
    /// Returns the target in SCC's JSON form.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert(
            "service_name".into(),
            Value::String(self.service_name.clone()),
        );
        object.insert(
            "resource_kind".into(),
            Value::String(self.resource_kind.clone()),
        );
        if !self.additional_target_attributes.is_empty() {
            let attributes: Vec<Value> = self
                .additional_target_attributes
                .iter()
                .map(|attribute| {
                    let mut entry = Map::new();
                    entry.insert("name".into(), Value::String(attribute.name.clone()));
                    entry.insert(
                        "operator".into(),
                        Value::String(attribute.operator.as_str().into()),
                    );
                    if let Some(value) = &attribute.value {
                        entry.insert("value".into(), value.clone());
                    }
                    Value::Object(entry)
                })
                .collect();
            object.insert(
                "additional_target_attributes".into(),
                Value::Array(attributes),
            );
        }
        Value::Object(object)
    }
}

impl ImportParameter {
    fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("name".into(), Value::String(self.name.clone()));
        if let Some(display_name) = &self.display_name {
            object.insert("display_name".into(), Value::String(display_name.clone()));
        }
        if let Some(description) = &self.description {
            object.insert("description".into(), Value::String(description.clone()));
        }
        object.insert(
            "type".into(),
            Value::String(self.parameter_type.as_str().into()),
        );
        if let Some(default) = &self.default {
            object.insert("default".into(), default.clone());
        }
        Value::Object(object)
    }
}

impl Condition {
    /// Returns the condition in SCC's JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Condition::Leaf(leaf) => {
                let mut object = Map::new();
                object.insert("property".into(), Value::String(leaf.property.clone()));
                object.insert(
                    "operator".into(),
                    Value::String(leaf.operator.as_str().into()),
                );
                if let Some(value) = &leaf.value {
                    object.insert("value".into(), value.clone());
                }
                Value::Object(object)
            }
            Condition::And(children) => {
                json!({ "and": children.iter().map(Condition::to_json).collect::<Vec<_>>() })
            }
            Condition::Or(children) => {
                json!({ "or": children.iter().map(Condition::to_json).collect::<Vec<_>>() })
            }
            Condition::SubRule(sub_rule) => {
                let mut object = Map::new();
                object.insert(
                    sub_rule.quantifier.as_str().into(),
                    json!({
                        "target": { "ref": sub_rule.target_ref },
                        "required_config": sub_rule.required_config.to_json(),
                    }),
                );
                Value::Object(object)
            }
        }
    }

    /// Nesting depth: a leaf is 1, a list or sub-rule is one more than its deepest child.
    pub fn depth(&self) -> usize {
        match self {
            Condition::Leaf(_) => 1,
            Condition::And(children) | Condition::Or(children) => {
                1 + children.iter().map(Condition::depth).max().unwrap_or(0)
            }
            Condition::SubRule(sub_rule) => 1 + sub_rule.required_config.depth(),
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        crate::validate::parse_rule(&value).map_err(|errors| {
            let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(messages.join("; "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_exactly_twenty_three_operators_and_names_round_trip() {
        assert_eq!(Operator::ALL.len(), 23);
        for operator in Operator::ALL {
            assert_eq!(operator.as_str().parse::<Operator>(), Ok(*operator));
            let serialized = serde_json::to_value(operator).expect("serializes");
            assert_eq!(serialized, Value::String(operator.as_str().into()));
        }
        assert!("string_equal".parse::<Operator>().is_err());
    }

    #[test]
    fn depth_counts_nesting() {
        let leaf = Condition::Leaf(Leaf {
            property: "a".into(),
            operator: Operator::IsEmpty,
            value: None,
        });
        let nested = Condition::And(vec![Condition::Or(vec![leaf.clone()]), leaf.clone()]);
        assert_eq!(leaf.depth(), 1);
        assert_eq!(nested.depth(), 3);
    }

    #[test]
    fn rule_json_round_trips_through_the_parser() {
        let json = json!({
            "id": "rule-1",
            "description": "quota set",
            "target": {
                "service_name": "cloud-object-storage", "resource_kind": "bucket",
                "additional_target_attributes": [
                    {"name": "location", "operator": "string_equals", "value": "us-south"}
                ]
            },
            "import": {"parameters": [{"name": "quota", "type": "numeric"}]},
            "required_config": {"and": [
                {"property": "hard_quota", "operator": "num_equals", "value": "${quota}"},
                {"all_ifexists": {"target": {"ref": "rules"},
                    "required_config": {"property": "port", "operator": "is_not_empty"}}}
            ]}
        });
        let rule: Rule = serde_json::from_value(json.clone()).expect("parses");
        assert_eq!(rule.to_json(), json);
    }
}
