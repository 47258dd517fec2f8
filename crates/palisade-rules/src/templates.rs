//! Templates: default property values (`customized_defaults`) filled into a provisioning request
//! where the request leaves them unset, reported as an RFC 6902 JSON Patch.
//!
//! A value the request sets is never overwritten; `null` counts as unset (Terraform plans write
//! `null` for attributes the user did not give). When a default's parent objects are missing,
//! one `add` creates the whole missing branch. A default that cannot be placed — its path runs
//! through a string, a number or a missing array element — is skipped and reported, not forced.

use palisade_model::resource::Resource;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::compile::AttributeSource;
use crate::validate::escape_pointer_token;

/// A template (SCC Configuration Governance `Template`, the fields that matter here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Identifier, for reports.
    #[serde(
        default,
        alias = "template_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// Which resources the template is for.
    pub target: TemplateTarget,
    /// The defaults, applied in order.
    pub customized_defaults: Vec<CustomizedDefault>,
}

/// A template target: no operators, attributes compare by string equality (SCC
/// `SimpleTargetResource`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateTarget {
    /// Must equal the resource's `service_name`.
    pub service_name: String,
    /// Must equal the resource's `resource_kind`.
    pub resource_kind: String,
    /// Each must equal the resource's attribute (envelope first, then config).
    #[serde(default)]
    pub additional_target_attributes: Vec<TemplateAttribute>,
}

/// `{name, value}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateAttribute {
    /// Attribute name, as in rule targets (`location`, `resource_group_id`, `tags.KEY`, …).
    pub name: String,
    /// Expected value.
    pub value: Value,
}

/// One default: a dot path into the config and the value to put there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomizedDefault {
    /// Dot path; a numeric segment indexes an existing array element.
    pub property: String,
    /// Value to use when the request leaves the property unset.
    pub value: Value,
}

/// One RFC 6902 operation. Templates only ever add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchOperation {
    /// Always `add`.
    pub op: String,
    /// JSON pointer (RFC 6901) into the config.
    pub path: String,
    /// The value added.
    pub value: Value,
}

/// A default that could not be applied, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedDefault {
    /// The default's property.
    pub property: String,
    /// Why it was not applied.
    pub reason: String,
}

/// The result of applying templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateApplication {
    /// The request config with the defaults filled in.
    pub config: Value,
    /// What was added, as a JSON Patch that turns the request config into `config`.
    pub patch: Vec<PatchOperation>,
    /// Defaults that could not be placed.
    pub skipped: Vec<SkippedDefault>,
}

impl Template {
    /// Whether the template is for this resource: same service and kind, and every attribute
    /// equal (a list value means any of its elements).
    pub fn applies_to(&self, resource: &Resource) -> bool {
        self.target.service_name == resource.service_name
            && self.target.resource_kind == resource.resource_kind
            && self
                .target
                .additional_target_attributes
                .iter()
                .all(|attribute| {
                    let found = AttributeSource::for_name(&attribute.name).resolve(resource);
                    let Some(found) = found else {
                        return false;
                    };
                    match &attribute.value {
                        Value::Array(options) => options.contains(&found),
                        single => *single == *found,
                    }
                })
    }
}

/// Fills the templates' defaults into `request_config` where it leaves them unset.
///
/// The caller picks the templates that apply (see [`Template::applies_to`]); they are applied
/// in order, so when two set the same property the first wins.
pub fn apply_templates(request_config: &Value, templates: &[Template]) -> TemplateApplication {
    let mut config = request_config.clone();
    let mut patch = Vec::new();
    let mut skipped = Vec::new();
    if config.is_null() {
        config = Value::Object(Map::new());
        patch.push(PatchOperation {
            op: "add".into(),
            path: String::new(),
            value: config.clone(),
        });
    }
    for default in templates
        .iter()
        .flat_map(|template| &template.customized_defaults)
    {
        match fill(&mut config, &default.property, &default.value) {
            Ok(Some(operation)) => patch.push(operation),
            Ok(None) => {}
            Err(reason) => skipped.push(SkippedDefault {
                property: default.property.clone(),
                reason,
            }),
        }
    }
    TemplateApplication {
        config,
        patch,
        skipped,
    }
}

/// Places one default; `Ok(None)` when the request already sets the property.
fn fill(
    config: &mut Value,
    property: &str,
    value: &Value,
) -> Result<Option<PatchOperation>, String> {
    let segments: Vec<&str> = property.split('.').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(format!("bad property path \"{property}\""));
    }
    let mut current = config;
    let mut pointer = String::new();
    for (position, segment) in segments.iter().enumerate() {
        let is_last = position + 1 == segments.len();
        match current {
            Value::Object(members) => {
                pointer.push('/');
                pointer.push_str(&escape_pointer_token(segment));
                let is_unset = members.get(*segment).is_none_or(Value::is_null);
                if is_unset {
                    let branch = build_branch(&segments[position + 1..], value);
                    members.insert((*segment).to_string(), branch.clone());
                    return Ok(Some(PatchOperation {
                        op: "add".into(),
                        path: pointer,
                        value: branch,
                    }));
                }
                if is_last {
                    return Ok(None);
                }
                current = members
                    .get_mut(*segment)
                    .ok_or_else(|| format!("internal error: member \"{segment}\" vanished"))?;
            }
            Value::Array(items) => {
                let element = segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| items.get_mut(index))
                    .filter(|element| !element.is_null());
                let Some(element) = element else {
                    return Err(format!(
                        "cannot set \"{property}\": \"{segment}\" is not an existing element of the array at \"{}\"",
                        segments[..position].join(".")
                    ));
                };
                pointer.push('/');
                pointer.push_str(segment);
                if is_last {
                    return Ok(None);
                }
                current = element;
            }
            _ => {
                return Err(format!(
                    "cannot set \"{property}\": \"{}\" is not an object",
                    segments[..position].join(".")
                ));
            }
        }
    }
    Ok(None)
}

/// `{"a": {"b": value}}` for the remaining segments `a.b`.
fn build_branch(remaining: &[&str], value: &Value) -> Value {
    remaining
        .iter()
        .rev()
        .fold(value.clone(), |inner, segment| {
            let mut object = Map::new();
            object.insert((*segment).to_string(), inner);
            Value::Object(object)
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(defaults: Value) -> Template {
        serde_json::from_value(json!({
            "target": {"service_name": "cloud-object-storage", "resource_kind": "bucket",
                       "additional_target_attributes": [{"name": "location", "value": "us-south"}]},
            "customized_defaults": defaults
        }))
        .expect("valid template")
    }

    #[test]
    fn defaults_fill_only_unset_properties() {
        let templates = [template(json!([
            {"property": "storage_class", "value": "smart"},
            {"property": "firewall.allowed_network_type", "value": ["private"]},
            {"property": "firewall.allowed_ip", "value": ["10.0.0.0/8"]},
            {"property": "hard_quota", "value": "10995116277760"},
            {"property": "versioning", "value": true}
        ]))];
        let request = json!({"storage_class": "standard", "firewall": {"allowed_ip": ["1.2.3.4"]}, "versioning": null});
        let applied = apply_templates(&request, &templates);
        assert_eq!(
            applied.config,
            json!({"storage_class": "standard",
                   "firewall": {"allowed_ip": ["1.2.3.4"], "allowed_network_type": ["private"]},
                   "hard_quota": "10995116277760", "versioning": true})
        );
        let paths: Vec<&str> = applied
            .patch
            .iter()
            .map(|operation| operation.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "/firewall/allowed_network_type",
                "/hard_quota",
                "/versioning"
            ]
        );
        assert!(applied.skipped.is_empty());
    }

    #[test]
    fn missing_parents_are_created_by_one_add_and_escaped() {
        let templates = [template(json!([{"property": "a/b.c~d.e", "value": 1}]))];
        let applied = apply_templates(&json!({}), &templates);
        assert_eq!(applied.patch.len(), 1);
        assert_eq!(applied.patch[0].path, "/a~1b");
        assert_eq!(applied.patch[0].value, json!({"c~d": {"e": 1}}));
    }

    #[test]
    fn unplaceable_defaults_are_skipped_with_a_reason() {
        let templates = [template(json!([
            {"property": "name.first", "value": "x"},
            {"property": "rules.5.port", "value": 22},
            {"property": "rules.0.port", "value": 22}
        ]))];
        let applied = apply_templates(&json!({"name": "bucket", "rules": [{}]}), &templates);
        let skipped: Vec<&str> = applied
            .skipped
            .iter()
            .map(|skip| skip.property.as_str())
            .collect();
        assert_eq!(skipped, ["name.first", "rules.5.port"]);
        assert_eq!(applied.patch[0].path, "/rules/0/port");
    }

    #[test]
    fn templates_apply_by_target() {
        let resource: Resource = serde_json::from_value(json!({
            "id": "b", "service_name": "cloud-object-storage", "resource_kind": "bucket", "region": "us-south"
        }))
        .expect("valid");
        let matching = template(json!([]));
        assert!(matching.applies_to(&resource));
        let mut elsewhere = matching.clone();
        elsewhere.target.additional_target_attributes[0].value = json!("eu-de");
        assert!(!elsewhere.applies_to(&resource));
    }
}
