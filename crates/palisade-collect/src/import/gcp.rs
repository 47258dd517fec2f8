//! GCP Cloud Asset Inventory exports → resources.
//!
//! Accepts JSON lines (`gcloud asset export`, one asset per line, snake_case keys) and JSON
//! arrays (`gcloud asset list --format=json`, camelCase keys). An asset type
//! `storage.googleapis.com/Bucket` becomes `service_name` `gcp-storage` and `resource_kind`
//! `bucket` (the API's first label prefixed with `gcp-`, the type in kebab-case), so kinds of
//! GCP never collide with AWS's `iam` or `ec2`.
//!
//! `config` is the asset's `resource.data` as the GCP API returns it (camelCase), plus
//! `iam_policy` when the export carries the IAM policy. Exports of several content types list
//! the same asset once per type; those lines merge into one resource. `id` is the full resource
//! name, `account_id` the project number from `ancestors`, `region` the asset's location,
//! `tags` its labels.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{ImportOptions, string_field};
use crate::naming::kebab_case;
use crate::{CollectionError, CollectionOutput};
use palisade_model::resource::Resource;

/// Imports an export (JSON lines or a JSON array).
pub fn import(source: &str, text: &str, options: &ImportOptions) -> CollectionOutput {
    let mut output = CollectionOutput::default();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut add =
        |output: &mut CollectionOutput, location: String, asset: &Value| match asset_resource(
            asset, options,
        ) {
            Ok(resource) => match by_name.get(&resource.id) {
                Some(&index) => merge(&mut output.resources[index], resource),
                None => {
                    by_name.insert(resource.id.clone(), output.resources.len());
                    output.resources.push(resource);
                }
            },
            Err(message) => {
                output
                    .errors
                    .push(CollectionError::new(source, Some(location), message))
            }
        };
    if text.trim_start().starts_with('[') {
        match super::parse_json_document(source, text) {
            Ok(Value::Array(assets)) => {
                for (index, asset) in assets.iter().enumerate() {
                    add(&mut output, format!("/{index}"), asset);
                }
            }
            Ok(_) => unreachable_array(source, &mut output),
            Err(error) => output.errors.push(error),
        }
        return output;
    }
    let mut lines = Vec::new();
    super::for_each_json_line(source, text, &mut output.errors, |number, value| {
        lines.push((number, value));
    });
    for (number, asset) in lines {
        add(&mut output, format!("line {number}"), &asset);
    }
    output
}

fn unreachable_array(source: &str, output: &mut CollectionOutput) {
    output.errors.push(CollectionError::new(
        source,
        Some("/".to_owned()),
        "expected a JSON array of assets",
    ));
}

/// Reads a key in either of the export's spellings (`asset_type` / `assetType`).
fn either<'a>(value: &'a Value, snake: &str, camel: &str) -> Option<&'a Value> {
    value.get(snake).or_else(|| value.get(camel))
}

/// Maps one asset.
fn asset_resource(asset: &Value, options: &ImportOptions) -> Result<Resource, String> {
    if !asset.is_object() {
        return Err("an asset must be a JSON object".into());
    }
    let name = string_field(asset, "name").ok_or("`name` is missing")?;
    let asset_type = either(asset, "asset_type", "assetType")
        .and_then(Value::as_str)
        .ok_or("`asset_type` is missing")?;
    let (api, type_name) = asset_type
        .split_once('/')
        .ok_or_else(|| format!("`asset_type` \"{asset_type}\" is not API/Type"))?;
    let service = api.split('.').next().unwrap_or(api);
    let resource = asset.get("resource");
    let data = resource.and_then(|resource| resource.get("data"));
    let mut config = match data {
        Some(Value::Object(data)) => data.clone(),
        Some(_) => return Err("`resource.data` must be an object".into()),
        None => Map::new(),
    };
    if let Some(policy) = either(asset, "iam_policy", "iamPolicy") {
        config.insert("iam_policy".into(), policy.clone());
    }
    let project = either(asset, "ancestors", "ancestors")
        .and_then(Value::as_array)
        .and_then(|ancestors| {
            ancestors
                .iter()
                .filter_map(Value::as_str)
                .find_map(|ancestor| ancestor.strip_prefix("projects/"))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| options.account_id.clone());
    let region = resource
        .and_then(|resource| string_field(resource, "location"))
        .map(str::to_owned);
    let display_name = config
        .get("name")
        .and_then(Value::as_str)
        .map(|name| name.rsplit('/').next().unwrap_or(name))
        .or_else(|| name.rsplit('/').next())
        .map(str::to_owned);
    Ok(Resource {
        id: name.to_owned(),
        environment: "gcp".into(),
        account_id: project,
        service_name: format!("gcp-{service}"),
        resource_kind: kebab_case(type_name),
        region,
        resource_group: None,
        name: display_name,
        tags: super::tags_of(config.get("labels")),
        config: Value::Object(config),
        collected_at: options.collected_at,
    })
}

/// Merges a second line about the same asset (another content type) into the first.
fn merge(first: &mut Resource, second: Resource) {
    if let (Value::Object(into), Value::Object(from)) = (&mut first.config, second.config) {
        for (key, value) in from {
            into.entry(key).or_insert(value);
        }
    }
    if first.region.is_none() {
        first.region = second.region;
    }
    if first.tags.is_empty() {
        first.tags = second.tags;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn asset_types_name_service_and_kind() {
        let asset = json!({"name": "//iam.googleapis.com/projects/p/serviceAccounts/a/keys/k",
            "asset_type": "iam.googleapis.com/ServiceAccountKey", "ancestors": ["projects/42"],
            "resource": {"data": {"keyType": "USER_MANAGED"}}});
        let resource =
            asset_resource(&asset, &ImportOptions::at(chrono::DateTime::UNIX_EPOCH)).expect("maps");
        assert_eq!(resource.service_name, "gcp-iam");
        assert_eq!(resource.resource_kind, "service-account-key");
        assert_eq!(resource.account_id, "42");
        assert_eq!(resource.name.as_deref(), Some("k"));
    }
}
