//! IBM Cloud resource JSON → resources.
//!
//! Accepts Resource Controller lists (`{"resources": [...]}`), Global Search results
//! (`{"items": [...]}`), `ibmcloud resource service-instances --output json` arrays, COS
//! Resource Configuration bucket lists (`{"buckets": [...]}`), and a single object with a
//! `crn`. Every record needs a CRN (`crn:v1:bluemix:public:<service>:<location>:a/<account>:
//! <instance>:<resource type>:<resource>`), which names it:
//!
//! - `service_name` = the CRN's service (`cloud-object-storage`, `kms`, `is`, `iam-identity`);
//! - `resource_kind` = the CRN's resource type (`bucket`, `vpc`, `security-group`), or
//!   `instance` for a service instance (empty resource type);
//! - `id` = the CRN, `account_id` = the CRN's `a/<account>` (else `account_id`), `region` =
//!   `region_id` / `region` / `location` (else the CRN's location), `resource_group` =
//!   `resource_group_id`, `tags` = IBM's `key:value` tag strings as a map.
//!
//! `config` is the record as IBM's API returned it, so a COS bucket configuration keeps
//! `firewall.allowed_ip` and `activity_tracking.read_data_events` for the built-in rules.

use serde_json::{Map, Value, json};

use super::{ImportOptions, string_field};
use crate::{CollectionError, CollectionOutput};
use palisade_model::resource::Resource;

/// Imports IBM Cloud resource JSON.
pub fn import(source: &str, text: &str, options: &ImportOptions) -> CollectionOutput {
    let mut output = CollectionOutput::default();
    let document = match super::parse_json_document(source, text) {
        Ok(document) => document,
        Err(error) => {
            output.errors.push(error);
            return output;
        }
    };
    let records = match super::records_of(&document, &["resources", "items", "buckets"]) {
        Some(records) => records,
        None if document.get("crn").is_some() => vec![(String::new(), &document)],
        None => {
            output.errors.push(CollectionError::new(
                source,
                Some("/".into()),
                "expected an array, `resources`, `items`, `buckets`, or an object with a `crn`",
            ));
            return output;
        }
    };
    for (pointer, record) in records {
        match record_resource(record, options) {
            Ok(resource) => output.resources.push(resource),
            Err(message) => output.errors.push(CollectionError::new(
                source,
                Some(if pointer.is_empty() {
                    "/".into()
                } else {
                    pointer
                }),
                message,
            )),
        }
    }
    output
}

/// The parts of a CRN the mapping needs.
struct Crn<'a> {
    service: &'a str,
    location: &'a str,
    account: Option<&'a str>,
    resource_type: &'a str,
}

fn parse_crn(crn: &str) -> Result<Crn<'_>, String> {
    let segments: Vec<&str> = crn.split(':').collect();
    if segments.len() < 10 || segments[0] != "crn" {
        return Err(format!("`crn` \"{crn}\" does not have the 10 CRN segments"));
    }
    if segments[4].is_empty() {
        return Err(format!("`crn` \"{crn}\" names no service"));
    }
    Ok(Crn {
        service: segments[4],
        location: segments[5],
        account: segments[6].strip_prefix("a/"),
        resource_type: segments[8],
    })
}

fn record_resource(record: &Value, options: &ImportOptions) -> Result<Resource, String> {
    if !record.is_object() {
        return Err("a resource must be a JSON object".into());
    }
    let crn_text = string_field(record, "crn").ok_or("`crn` is missing")?;
    let crn = parse_crn(crn_text)?;
    let account_id = crn
        .account
        .map(str::to_owned)
        .or_else(|| string_field(record, "account_id").map(str::to_owned))
        .unwrap_or_else(|| options.account_id.clone());
    let region = ["region_id", "region", "location"]
        .iter()
        .find_map(|key| string_field(record, key))
        .or(Some(crn.location).filter(|location| !location.is_empty()))
        .map(str::to_owned);
    let resource_kind = if crn.resource_type.is_empty() {
        "instance"
    } else {
        crn.resource_type
    };
    Ok(Resource {
        id: crn_text.to_owned(),
        environment: "ibm-cloud".into(),
        account_id,
        service_name: crn.service.to_owned(),
        resource_kind: resource_kind.to_owned(),
        region,
        resource_group: string_field(record, "resource_group_id").map(str::to_owned),
        name: string_field(record, "name").map(str::to_owned),
        tags: tags_of(record.get("tags")),
        config: record.clone(),
        collected_at: options.collected_at,
    })
}

/// IBM tags are strings, `key:value` or bare `key` (an empty value).
fn tags_of(tags: Option<&Value>) -> Map<String, Value> {
    match tags {
        Some(Value::Array(tags)) => tags
            .iter()
            .filter_map(Value::as_str)
            .map(|tag| match tag.split_once(':') {
                Some((key, value)) => (key.to_owned(), json!(value)),
                None => (tag.to_owned(), json!("")),
            })
            .collect(),
        Some(Value::Object(tags)) => tags.clone(),
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crn_names_service_and_kind() {
        let crn =
            parse_crn("crn:v1:bluemix:public:cloud-object-storage:global:a/acct:inst:bucket:b")
                .expect("parses");
        assert_eq!(crn.service, "cloud-object-storage");
        assert_eq!(crn.resource_type, "bucket");
        assert_eq!(crn.account, Some("acct"));
        assert!(parse_crn("crn:v1:short").is_err());
    }

    #[test]
    fn tags_split_on_the_first_colon() {
        let tags = tags_of(Some(&json!(["env:prod", "team", "url:https://x"])));
        assert_eq!(tags["env"], "prod");
        assert_eq!(tags["team"], "");
        assert_eq!(tags["url"], "https://x");
    }
}
