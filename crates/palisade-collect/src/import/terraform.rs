//! Terraform state and plan JSON → `terraform/resource` resources.
//!
//! Three inputs, told apart by their top-level keys:
//!
//! - `terraform show -json` of a state: `values.root_module` (resources and `child_modules`);
//! - `terraform show -json` of a plan: `planned_values.root_module`, the resources as they will
//!   be once applied (values not known until apply are absent), each with the plan's `actions`
//!   for its address (`["create"]`, `["delete", "create"]`, …) from `resource_changes`;
//! - a raw `terraform.tfstate` (version 4): `resources[].instances[].attributes`.
//!
//! Each managed resource instance becomes one resource, `id` = `terraform://<workspace>/<address>`
//! (stable between a plan and the state it produces; the workspace is
//! [`ImportOptions::account_id`], `-` when not given). `config` = `{address, mode, type, name,
//! provider_name, values, actions}` with the provider's attribute names in `values`. Values
//! Terraform marks sensitive are replaced by `"(sensitive)"` so secrets never reach the
//! inventory. Data sources are skipped: they are read, not managed.

use serde_json::{Map, Value, json};

use super::{ImportOptions, string_field};
use crate::{CollectionError, CollectionOutput};
use palisade_model::resource::Resource;

/// What replaces a sensitive value.
const SENSITIVE: &str = "(sensitive)";

/// Imports a Terraform state or plan.
pub fn import(source: &str, text: &str, options: &ImportOptions) -> CollectionOutput {
    let mut output = CollectionOutput::default();
    let document = match super::parse_json_document(source, text) {
        Ok(document) => document,
        Err(error) => {
            output.errors.push(error);
            return output;
        }
    };
    let mut importer = Importer {
        source,
        options,
        output: &mut output,
        actions: Map::new(),
    };
    if let Some(changes) = document.get("resource_changes").and_then(Value::as_array) {
        for change in changes {
            if let (Some(address), Some(actions)) = (
                string_field(change, "address"),
                change.pointer("/change/actions"),
            ) {
                importer.actions.insert(address.to_owned(), actions.clone());
            }
        }
    }
    if let Some(module) = document.pointer("/planned_values/root_module") {
        importer.module(module, "/planned_values/root_module");
    } else if let Some(module) = document.pointer("/values/root_module") {
        importer.module(module, "/values/root_module");
    } else if document.get("resources").is_some_and(Value::is_array) {
        importer.raw_state(&document);
    } else if document.get("format_version").is_some() {
        // `terraform show -json` of an empty state has no `values` at all.
    } else {
        importer.output.errors.push(CollectionError::new(
            source,
            Some("/".to_owned()),
            "neither Terraform JSON (`values` / `planned_values`) nor a state file (`resources`)",
        ));
    }
    output
}

struct Importer<'a> {
    source: &'a str,
    options: &'a ImportOptions,
    output: &'a mut CollectionOutput,
    actions: Map<String, Value>,
}

impl Importer<'_> {
    fn error(&mut self, pointer: String, message: impl Into<String>) {
        self.output
            .errors
            .push(CollectionError::new(self.source, Some(pointer), message));
    }

    /// A module of `show -json`: its resources, then its child modules.
    fn module(&mut self, module: &Value, pointer: &str) {
        if let Some(resources) = module.get("resources") {
            let Some(resources) = resources.as_array() else {
                self.error(format!("{pointer}/resources"), "must be an array");
                return;
            };
            for (index, resource) in resources.iter().enumerate() {
                let pointer = format!("{pointer}/resources/{index}");
                if let Err(message) = self.shown_resource(resource) {
                    self.error(pointer, message);
                }
            }
        }
        if let Some(children) = module.get("child_modules").and_then(Value::as_array) {
            for (index, child) in children.iter().enumerate() {
                self.module(child, &format!("{pointer}/child_modules/{index}"));
            }
        }
    }

    fn shown_resource(&mut self, resource: &Value) -> Result<(), String> {
        let address = string_field(resource, "address").ok_or("`address` is missing")?;
        let mode = string_field(resource, "mode").unwrap_or("managed");
        if mode != "managed" {
            return Ok(());
        }
        let kind = string_field(resource, "type").ok_or("`type` is missing")?;
        let name = string_field(resource, "name").ok_or("`name` is missing")?;
        let provider = string_field(resource, "provider_name").unwrap_or_default();
        let mut values = match resource.get("values") {
            Some(Value::Object(values)) => Value::Object(values.clone()),
            None => json!({}),
            Some(_) => return Err("`values` must be an object".into()),
        };
        if let Some(sensitive) = resource.get("sensitive_values") {
            redact_marked(&mut values, sensitive);
        }
        let resource = self.resource(address, mode, kind, name, provider, values);
        self.output.resources.push(resource);
        Ok(())
    }

    /// A raw state file: `resources[].instances[]`.
    fn raw_state(&mut self, document: &Value) {
        let Some(resources) = document.get("resources").and_then(Value::as_array) else {
            return;
        };
        for (index, resource) in resources.iter().enumerate() {
            let pointer = format!("/resources/{index}");
            if let Err((pointer, message)) = self.state_resource(resource, &pointer) {
                self.error(pointer, message);
            }
        }
    }

    fn state_resource(&mut self, resource: &Value, pointer: &str) -> Result<(), (String, String)> {
        let fail = |key: &str, message: &str| (format!("{pointer}/{key}"), message.to_owned());
        let mode = string_field(resource, "mode").unwrap_or("managed");
        if mode != "managed" {
            return Ok(());
        }
        let kind = string_field(resource, "type").ok_or_else(|| fail("type", "is missing"))?;
        let name = string_field(resource, "name").ok_or_else(|| fail("name", "is missing"))?;
        // `provider["registry.terraform.io/hashicorp/aws"]` → the quoted part.
        let provider = string_field(resource, "provider")
            .map(|provider| {
                provider
                    .split('"')
                    .nth(1)
                    .unwrap_or(provider)
                    .trim_end_matches(']')
                    .to_owned()
            })
            .unwrap_or_default();
        let prefix = string_field(resource, "module")
            .map(|module| format!("{module}."))
            .unwrap_or_default();
        let instances = resource
            .get("instances")
            .and_then(Value::as_array)
            .ok_or_else(|| fail("instances", "must be an array"))?;
        for (index, instance) in instances.iter().enumerate() {
            let key = match instance.get("index_key") {
                Some(Value::Number(number)) => format!("[{number}]"),
                Some(Value::String(text)) => format!("[{}]", json!(text)),
                _ => String::new(),
            };
            let address = format!("{prefix}{kind}.{name}{key}");
            let mut values = match instance.get("attributes") {
                Some(Value::Object(values)) => Value::Object(values.clone()),
                _ => {
                    self.error(
                        format!("{pointer}/instances/{index}/attributes"),
                        "must be an object",
                    );
                    continue;
                }
            };
            if let Some(Value::Array(paths)) = instance.get("sensitive_attributes") {
                for path in paths {
                    redact_path(&mut values, path);
                }
            }
            let resource = self.resource(&address, mode, kind, name, &provider, values);
            self.output.resources.push(resource);
        }
        Ok(())
    }

    fn resource(
        &self,
        address: &str,
        mode: &str,
        kind: &str,
        name: &str,
        provider: &str,
        values: Value,
    ) -> Resource {
        let workspace = if self.options.account_id.is_empty() {
            "-"
        } else {
            self.options.account_id.as_str()
        };
        let environment = environment_of(provider, kind);
        let region = string_field(&values, "region")
            .or_else(|| string_field(&values, "location"))
            .map(str::to_owned);
        let resource_group = string_field(&values, "resource_group_name")
            .or_else(|| string_field(&values, "resource_group_id"))
            .map(str::to_owned);
        let display_name = string_field(&values, "name")
            .or_else(|| string_field(&values, "bucket"))
            .unwrap_or(name)
            .to_owned();
        let tags = match values.get("tags").or_else(|| values.get("labels")) {
            Some(Value::Object(tags)) => tags.clone(),
            _ => Map::new(),
        };
        let mut config = Map::new();
        config.insert("address".into(), json!(address));
        config.insert("mode".into(), json!(mode));
        config.insert("type".into(), json!(kind));
        config.insert("name".into(), json!(name));
        config.insert("provider_name".into(), json!(provider));
        config.insert("values".into(), values);
        if let Some(actions) = self.actions.get(address) {
            config.insert("actions".into(), actions.clone());
        }
        Resource {
            id: format!("terraform://{workspace}/{address}"),
            environment: environment.into(),
            account_id: self.options.account_id.clone(),
            service_name: "terraform".into(),
            resource_kind: "resource".into(),
            region,
            resource_group,
            name: Some(display_name),
            tags,
            config: Value::Object(config),
            collected_at: self.options.collected_at,
        }
    }
}

/// The environment a provider manages (by its registry name, else the type's prefix).
fn environment_of(provider: &str, kind: &str) -> &'static str {
    let provider_type = provider.rsplit('/').next().unwrap_or(provider);
    let provider_type = if provider_type.is_empty() {
        kind.split('_').next().unwrap_or_default()
    } else {
        provider_type
    };
    match provider_type {
        "aws" => "aws",
        "google" | "google-beta" => "gcp",
        "azurerm" | "azuread" => "azure",
        "ibm" => "ibm-cloud",
        "kubernetes" | "helm" => "kubernetes",
        _ => "",
    }
}

/// Replaces the values `sensitive_values` marks `true` (same shape as `values`).
fn redact_marked(values: &mut Value, marks: &Value) {
    match (values, marks) {
        (value, Value::Bool(true)) => *value = json!(SENSITIVE),
        (Value::Object(values), Value::Object(marks)) => {
            for (key, mark) in marks {
                if let Some(value) = values.get_mut(key) {
                    redact_marked(value, mark);
                }
            }
        }
        (Value::Array(values), Value::Array(marks)) => {
            for (value, mark) in values.iter_mut().zip(marks) {
                redact_marked(value, mark);
            }
        }
        _ => {}
    }
}

/// Replaces the value at a raw state's sensitive path
/// (`[{"type": "get_attr", "value": "password"}, {"type": "index", "value": {"value": 0}}]`).
fn redact_path(values: &mut Value, path: &Value) {
    let Some(steps) = path.as_array() else {
        return;
    };
    let mut current = values;
    for step in steps {
        let next = match (step.get("type").and_then(Value::as_str), step.get("value")) {
            (Some("get_attr"), Some(Value::String(key))) => current.get_mut(key.as_str()),
            (Some("index"), Some(index)) => match index.get("value").unwrap_or(index) {
                Value::Number(number) => number
                    .as_u64()
                    .and_then(|number| current.get_mut(number as usize)),
                Value::String(key) => current.get_mut(key.as_str()),
                _ => None,
            },
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    *current = json!(SENSITIVE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_name_their_environment() {
        assert_eq!(
            environment_of("registry.terraform.io/hashicorp/aws", "aws_s3_bucket"),
            "aws"
        );
        assert_eq!(environment_of("", "google_storage_bucket"), "gcp");
        assert_eq!(
            environment_of("registry.terraform.io/hashicorp/null", "null_resource"),
            ""
        );
    }

    #[test]
    fn sensitive_paths_are_redacted() {
        let mut values = json!({"password": "hunter2", "list": ["a", "b"]});
        redact_path(
            &mut values,
            &json!([{"type": "get_attr", "value": "password"}]),
        );
        redact_path(
            &mut values,
            &json!([{"type": "get_attr", "value": "list"}, {"type": "index", "value": {"value": 1, "type": "number"}}]),
        );
        assert_eq!(
            values,
            json!({"password": SENSITIVE, "list": ["a", SENSITIVE]})
        );
        let mut shown = json!({"a": {"b": "secret", "c": "open"}});
        redact_marked(&mut shown, &json!({"a": {"b": true}}));
        assert_eq!(shown, json!({"a": {"b": SENSITIVE, "c": "open"}}));
    }
}
