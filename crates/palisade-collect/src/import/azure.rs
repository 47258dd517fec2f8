//! Azure Resource Graph results → resources.
//!
//! Accepts `az graph query -q "Resources" -o json` (`{"count", "data": [...]}`), the REST API's
//! answer (`{"totalRecords", "data": [...]}` in `objectArray` format, or `{"data": {"columns",
//! "rows"}}` in `table` format), and a plain JSON array (older CLIs, `az resource list`).
//!
//! A type `microsoft.storage/storageaccounts` becomes `service_name` `azure-storage` and
//! `resource_kind` `storageaccounts` (Resource Graph lower-cases types; nested types join their
//! segments with `-`: `microsoft.sql/servers/databases` is `azure-sql` / `servers-databases`).
//! `config` is the whole record as Resource Graph returns it (camelCase: `properties`, `sku`,
//! `kind`, `identity`, …), so rules read `properties.supportsHttpsTrafficOnly`; `account_id` is
//! the subscription, `region` the location, `resource_group` the resource group.

use serde_json::{Map, Value};

use super::{ImportOptions, string_field};
use crate::{CollectionError, CollectionOutput};
use palisade_model::resource::Resource;

/// Imports Resource Graph results.
pub fn import(source: &str, text: &str, options: &ImportOptions) -> CollectionOutput {
    let mut output = CollectionOutput::default();
    let document = match super::parse_json_document(source, text) {
        Ok(document) => document,
        Err(error) => {
            output.errors.push(error);
            return output;
        }
    };
    let records: Vec<(String, Value)> = if let Some(table) = document
        .get("data")
        .filter(|data| data.get("columns").is_some())
    {
        match table_records(table) {
            Ok(records) => records,
            Err(message) => {
                output
                    .errors
                    .push(CollectionError::new(source, Some("/data".into()), message));
                return output;
            }
        }
    } else {
        match super::records_of(&document, &["data", "value"]) {
            Some(records) => records
                .into_iter()
                .map(|(pointer, record)| (pointer, record.clone()))
                .collect(),
            None => {
                output.errors.push(CollectionError::new(
                    source,
                    Some("/".into()),
                    "expected an array of resources or an object with `data`",
                ));
                return output;
            }
        }
    };
    for (pointer, record) in records {
        match record_resource(&record, options) {
            Ok(resource) => output.resources.push(resource),
            Err(message) => {
                output
                    .errors
                    .push(CollectionError::new(source, Some(pointer), message))
            }
        }
    }
    output
}

/// Turns the `table` result format into records (`/data/rows/N` pointers).
fn table_records(table: &Value) -> Result<Vec<(String, Value)>, String> {
    let columns: Vec<&str> = table
        .get("columns")
        .and_then(Value::as_array)
        .ok_or("`columns` must be an array")?
        .iter()
        .map(|column| column.get("name").and_then(Value::as_str).unwrap_or(""))
        .collect();
    let rows = table
        .get("rows")
        .and_then(Value::as_array)
        .ok_or("`rows` must be an array")?;
    Ok(rows
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let record = match row.as_array() {
                Some(cells) => Value::Object(
                    columns
                        .iter()
                        .zip(cells)
                        .filter(|(column, _)| !column.is_empty())
                        .map(|(column, cell)| ((*column).to_owned(), cell.clone()))
                        .collect::<Map<_, _>>(),
                ),
                None => row.clone(),
            };
            (format!("/data/rows/{index}"), record)
        })
        .collect())
}

/// Maps one record.
fn record_resource(record: &Value, options: &ImportOptions) -> Result<Resource, String> {
    if !record.is_object() {
        return Err("a resource must be a JSON object".into());
    }
    let id = string_field(record, "id").ok_or("`id` is missing")?;
    let resource_type = string_field(record, "type").ok_or("`type` is missing")?;
    let lowered = resource_type.to_ascii_lowercase();
    let (namespace, kind) = lowered
        .split_once('/')
        .ok_or_else(|| format!("`type` \"{resource_type}\" is not Namespace/type"))?;
    let service = namespace.strip_prefix("microsoft.").unwrap_or(namespace);
    let subscription = string_field(record, "subscriptionId")
        .map(str::to_owned)
        .or_else(|| subscription_of(id))
        .unwrap_or_else(|| options.account_id.clone());
    Ok(Resource {
        id: id.to_owned(),
        environment: "azure".into(),
        account_id: subscription,
        service_name: format!("azure-{}", service.replace('.', "-")),
        resource_kind: kind.replace('/', "-"),
        region: string_field(record, "location").map(str::to_owned),
        resource_group: string_field(record, "resourceGroup").map(str::to_owned),
        name: string_field(record, "name").map(str::to_owned),
        tags: super::tags_of(record.get("tags")),
        config: record.clone(),
        collected_at: options.collected_at,
    })
}

/// `/subscriptions/<id>/...` → `<id>`.
fn subscription_of(id: &str) -> Option<String> {
    let mut segments = id.split('/').filter(|segment| !segment.is_empty());
    while let Some(segment) = segments.next() {
        if segment.eq_ignore_ascii_case("subscriptions") {
            return segments.next().map(str::to_owned);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_comes_from_the_id_when_missing() {
        assert_eq!(
            subscription_of("/subscriptions/abc/resourceGroups/rg/providers/x/y/z").as_deref(),
            Some("abc")
        );
        assert_eq!(subscription_of("/tenants/t"), None);
    }
}
