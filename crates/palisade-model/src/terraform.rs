//! Terraform plan JSON (`terraform show -json PLAN`) as normalised [`Resource`]s, for
//! `palisade plan check`: guardrails judge each planned resource by its provider's attributes.
//! (The inventory importer, `palisade collect import terraform`, keeps the other shape the
//! catalogue documents, `terraform/resource` with the attributes under `config.values`, since
//! inventory rules are written against it.)
//!
//! Each managed resource the plan creates or updates becomes one resource:
//!
//! - `id` is the resource's address (`module.net.aws_security_group.web`);
//! - `service_name` is the provider's short name (`aws`, `ibm`, `google`, `azurerm`,
//!   `kubernetes` — the last segment of `provider_name`), `resource_kind` the Terraform type
//!   (`aws_s3_bucket`), so rules target Terraform resources as
//!   `{"service_name": "aws", "resource_kind": "aws_s3_bucket"}` and read the planned attributes
//!   by their Terraform names (`versioning.0.enabled`);
//! - `config` is the planned `after` value; attributes only known after apply are absent;
//! - `environment` follows the provider (`aws`, `ibm-cloud`, `gcp`, `azure`, `kubernetes`, else
//!   the provider's name), `region` and `tags` come from the `region` / `location` and `tags`
//!   (or `labels`) attributes when the resource has them, `name` from its `name` attribute.
//!
//! `resource_changes` is read when the plan has it (it says which resources change); a plan
//! without it (an older format, or a state file's `values`) falls back to `planned_values`,
//! every resource counting as created. Deleted, read (data sources) and unchanged resources are
//! not checked: a provisioning check is about what the apply would create or change.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::kubernetes::MappingError;
use crate::resource::Resource;

/// What the plan does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedAction {
    /// Created (including the create half of a replacement).
    Create,
    /// Updated in place.
    Update,
}

impl PlannedAction {
    /// The admission operation name (`create`, `update`).
    pub fn as_str(self) -> &'static str {
        match self {
            PlannedAction::Create => "create",
            PlannedAction::Update => "update",
        }
    }
}

/// One resource of a plan to check.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedResource {
    /// The resource address.
    pub address: String,
    /// Create or update.
    pub action: PlannedAction,
    /// The normalised resource.
    pub resource: Resource,
}

fn error(pointer: impl Into<String>, message: impl Into<String>) -> MappingError {
    MappingError {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// Reads the resources a plan creates or updates. Errors name the JSON pointer of the first
/// malformed part; a plan with nothing to check gives an empty list.
pub fn planned_resources(
    plan: &Value,
    collected_at: DateTime<Utc>,
) -> Result<Vec<PlannedResource>, MappingError> {
    if !plan.is_object() {
        return Err(error("", "a Terraform plan must be a JSON object"));
    }
    match plan.get("resource_changes") {
        Some(Value::Array(changes)) => from_changes(changes, collected_at),
        None | Some(Value::Null) => {
            let root = plan
                .pointer("/planned_values/root_module")
                .or_else(|| plan.pointer("/values/root_module"));
            let mut planned = Vec::new();
            if let Some(root) = root {
                let base = if plan.get("planned_values").is_some() {
                    "/planned_values/root_module"
                } else {
                    "/values/root_module"
                };
                from_module(root, base, collected_at, &mut planned)?;
            }
            Ok(planned)
        }
        Some(_) => Err(error("/resource_changes", "must be an array")),
    }
}

fn from_changes(
    changes: &[Value],
    collected_at: DateTime<Utc>,
) -> Result<Vec<PlannedResource>, MappingError> {
    let mut planned = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        let pointer = format!("/resource_changes/{index}");
        let Some(fields) = change.as_object() else {
            return Err(error(pointer, "must be an object"));
        };
        if fields.get("mode").and_then(Value::as_str) == Some("data") {
            continue;
        }
        let actions: Vec<&str> = match change.pointer("/change/actions") {
            Some(Value::Array(actions)) => actions.iter().filter_map(Value::as_str).collect(),
            _ => {
                return Err(error(
                    format!("{pointer}/change/actions"),
                    "missing change.actions (an array)",
                ));
            }
        };
        let action = if actions.contains(&"create") {
            PlannedAction::Create
        } else if actions.contains(&"update") {
            PlannedAction::Update
        } else {
            continue;
        };
        let after = change
            .pointer("/change/after")
            .cloned()
            .unwrap_or(Value::Null);
        planned.push(resource(fields, after, action, &pointer, collected_at)?);
    }
    Ok(planned)
}

fn from_module(
    module: &Value,
    pointer: &str,
    collected_at: DateTime<Utc>,
    planned: &mut Vec<PlannedResource>,
) -> Result<(), MappingError> {
    if let Some(resources) = module.get("resources") {
        let Some(resources) = resources.as_array() else {
            return Err(error(format!("{pointer}/resources"), "must be an array"));
        };
        for (index, item) in resources.iter().enumerate() {
            let item_pointer = format!("{pointer}/resources/{index}");
            let Some(fields) = item.as_object() else {
                return Err(error(item_pointer, "must be an object"));
            };
            if fields.get("mode").and_then(Value::as_str) == Some("data") {
                continue;
            }
            let values = fields.get("values").cloned().unwrap_or(Value::Null);
            planned.push(resource(
                fields,
                values,
                PlannedAction::Create,
                &item_pointer,
                collected_at,
            )?);
        }
    }
    if let Some(children) = module.get("child_modules") {
        let Some(children) = children.as_array() else {
            return Err(error(
                format!("{pointer}/child_modules"),
                "must be an array",
            ));
        };
        for (index, child) in children.iter().enumerate() {
            from_module(
                child,
                &format!("{pointer}/child_modules/{index}"),
                collected_at,
                planned,
            )?;
        }
    }
    Ok(())
}

/// The provider's short name: the last segment of `provider_name`, else the type's prefix.
fn provider_of(provider_name: Option<&str>, resource_type: &str) -> String {
    provider_name
        .and_then(|name| name.rsplit('/').next())
        .filter(|name| !name.is_empty())
        .or_else(|| resource_type.split('_').next())
        .unwrap_or(resource_type)
        .to_owned()
}

fn environment_of(provider: &str) -> &str {
    match provider {
        "aws" => "aws",
        "ibm" => "ibm-cloud",
        "google" | "google-beta" => "gcp",
        "azurerm" | "azuread" => "azure",
        "kubernetes" => "kubernetes",
        other => other,
    }
}

fn resource(
    fields: &Map<String, Value>,
    values: Value,
    action: PlannedAction,
    pointer: &str,
    collected_at: DateTime<Utc>,
) -> Result<PlannedResource, MappingError> {
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    };
    let Some(address) = text("address") else {
        return Err(error(
            format!("{pointer}/address"),
            "missing address (a non-empty string)",
        ));
    };
    let Some(resource_type) = text("type") else {
        return Err(error(
            format!("{pointer}/type"),
            "missing type (a non-empty string)",
        ));
    };
    let config = match values {
        Value::Object(_) => values,
        Value::Null => Value::Object(Map::new()),
        _ => {
            return Err(error(
                pointer,
                "the planned values of a resource must be an object",
            ));
        }
    };
    let provider = provider_of(text("provider_name"), resource_type);
    let attribute = |key: &str| config.get(key).and_then(Value::as_str).map(str::to_owned);
    let tags = ["tags", "labels"]
        .iter()
        .find_map(|key| config.get(*key).and_then(Value::as_object).cloned())
        .unwrap_or_default();
    Ok(PlannedResource {
        address: address.to_owned(),
        action,
        resource: Resource {
            id: address.to_owned(),
            environment: environment_of(&provider).to_owned(),
            account_id: String::new(),
            service_name: provider,
            resource_kind: resource_type.to_owned(),
            region: attribute("region").or_else(|| attribute("location")),
            resource_group: attribute("resource_group_name")
                .or_else(|| attribute("resource_group_id")),
            name: attribute("name").or_else(|| text("name").map(str::to_owned)),
            tags,
            config,
            collected_at,
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    #[test]
    fn resource_changes_give_created_and_updated_managed_resources() {
        let plan = json!({"resource_changes": [
            {"address": "aws_s3_bucket.logs", "mode": "managed", "type": "aws_s3_bucket", "name": "logs",
             "provider_name": "registry.terraform.io/hashicorp/aws",
             "change": {"actions": ["create"], "after": {"bucket": "logs", "tags": {"team": "sec"}, "region": "eu-west-1"}}},
            {"address": "aws_instance.web", "mode": "managed", "type": "aws_instance", "name": "web",
             "provider_name": "registry.terraform.io/hashicorp/aws",
             "change": {"actions": ["update"], "after": {"instance_type": "t3.micro"}}},
            {"address": "aws_instance.old", "mode": "managed", "type": "aws_instance", "name": "old",
             "change": {"actions": ["delete"], "after": null}},
            {"address": "aws_instance.same", "mode": "managed", "type": "aws_instance", "name": "same",
             "change": {"actions": ["no-op"], "after": {}}},
            {"address": "data.aws_caller_identity.me", "mode": "data", "type": "aws_caller_identity", "name": "me",
             "change": {"actions": ["read"]}},
            {"address": "ibm_cos_bucket.b", "mode": "managed", "type": "ibm_cos_bucket", "name": "b",
             "provider_name": "registry.terraform.io/ibm-cloud/ibm",
             "change": {"actions": ["delete", "create"], "after": {"bucket_name": "b"}}}
        ]});
        let planned = planned_resources(&plan, now()).expect("reads");
        let summary: Vec<(&str, PlannedAction, &str, &str)> = planned
            .iter()
            .map(|item| {
                (
                    item.address.as_str(),
                    item.action,
                    item.resource.service_name.as_str(),
                    item.resource.environment.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("aws_s3_bucket.logs", PlannedAction::Create, "aws", "aws"),
                ("aws_instance.web", PlannedAction::Update, "aws", "aws"),
                (
                    "ibm_cos_bucket.b",
                    PlannedAction::Create,
                    "ibm",
                    "ibm-cloud"
                ),
            ]
        );
        let bucket = &planned[0].resource;
        assert_eq!(bucket.resource_kind, "aws_s3_bucket");
        assert_eq!(bucket.region.as_deref(), Some("eu-west-1"));
        assert_eq!(bucket.tags["team"], "sec");
        assert_eq!(bucket.config["bucket"], "logs");
    }

    #[test]
    fn planned_values_are_read_with_child_modules_when_changes_are_absent() {
        let plan = json!({"planned_values": {"root_module": {
            "resources": [{"address": "google_storage_bucket.a", "mode": "managed", "type": "google_storage_bucket",
                           "name": "a", "values": {"name": "a", "location": "EU", "labels": {"env": "prod"}}}],
            "child_modules": [{"address": "module.m", "resources": [
                {"address": "module.m.azurerm_storage_account.s", "mode": "managed", "type": "azurerm_storage_account",
                 "name": "s", "values": {"resource_group_name": "rg"}}]}]
        }}});
        let planned = planned_resources(&plan, now()).expect("reads");
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[0].resource.environment, "gcp");
        assert_eq!(planned[0].resource.region.as_deref(), Some("EU"));
        assert_eq!(planned[0].resource.tags["env"], "prod");
        assert_eq!(planned[1].resource.service_name, "azurerm");
        assert_eq!(planned[1].resource.resource_group.as_deref(), Some("rg"));
    }

    #[test]
    fn malformed_plans_name_the_pointer() {
        let cases = [
            (json!([]), ""),
            (json!({"resource_changes": {}}), "/resource_changes"),
            (
                json!({"resource_changes": [{"address": "a.b", "type": "a"}]}),
                "/resource_changes/0/change/actions",
            ),
            (
                json!({"resource_changes": [{"type": "a", "change": {"actions": ["create"]}}]}),
                "/resource_changes/0/address",
            ),
            (
                json!({"planned_values": {"root_module": {"resources": [{"address": "x.y", "type": "x", "values": 3}]}}}),
                "/planned_values/root_module/resources/0",
            ),
        ];
        for (plan, pointer) in cases {
            let error = planned_resources(&plan, now()).expect_err("refused");
            assert_eq!(error.pointer, pointer, "{plan}");
        }
    }
}
