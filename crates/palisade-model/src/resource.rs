//! The normalised resource: the one shape every collector and importer produces and every rule
//! reads.
//!
//! The envelope fields (`id`, `environment`, `account_id`, `service_name`, `resource_kind`,
//! `region`, `resource_group`, `name`, `tags`) are what scopes, rule targets and reports work on;
//! `config` keeps the provider's own JSON untouched so rules can address any property of it by a
//! dot path (`firewall.allowed_ip`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A cloud or on-premises resource, normalised.
///
/// Only `id`, `service_name` and `resource_kind` are required on the wire: hand-written resources
/// (CI pipelines, rule test cases) often omit the rest. Missing optional fields take the defaults
/// documented on each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Resource {
    /// Provider identifier, unique within the instance (a CRN, an ARN, a Kubernetes UID, …).
    pub id: String,
    /// Where the resource lives: `aws`, `ibm-cloud`, `azure`, `gcp`, `kubernetes`, `on-prem`.
    /// Kept a string so a new environment does not need a model change; empty when unknown.
    #[serde(default)]
    pub environment: String,
    /// Account, subscription, project or cluster that owns the resource; empty when unknown.
    #[serde(default)]
    pub account_id: String,
    /// Service the resource belongs to (`cloud-object-storage`, `s3`, `sshd`), matched by rule
    /// targets.
    pub service_name: String,
    /// Kind of resource within the service (`bucket`, `instance`), matched by rule targets.
    pub resource_kind: String,
    /// Region or location, when the resource has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Resource group (or resource-group id) when the provider has the notion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// Human-readable name, when the resource has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tags or labels, as the provider gives them (values are usually strings).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub tags: Map<String, Value>,
    /// The provider's own configuration document; rule properties are dot paths into it.
    /// Defaults to an empty object.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: Value,
    /// When the collector read the configuration. Defaults to the Unix epoch when a hand-written
    /// resource omits it, so an unknown collection time never looks recent.
    #[serde(default = "unix_epoch")]
    pub collected_at: DateTime<Utc>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn unix_epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_resource_takes_documented_defaults() {
        let resource: Resource = serde_json::from_value(serde_json::json!({
            "id": "bucket-1", "service_name": "cloud-object-storage", "resource_kind": "bucket"
        }))
        .expect("minimal resource decodes");
        assert_eq!(resource.config, serde_json::json!({}));
        assert_eq!(resource.collected_at, DateTime::<Utc>::UNIX_EPOCH);
        assert!(resource.region.is_none());
        assert!(resource.tags.is_empty());
    }

    #[test]
    fn full_resource_round_trips() {
        let json = serde_json::json!({
            "id": "crn:v1:bluemix:public:cloud-object-storage:global:a/1::bucket:b",
            "environment": "ibm-cloud", "account_id": "a1",
            "service_name": "cloud-object-storage", "resource_kind": "bucket",
            "region": "us-south", "resource_group": "default", "name": "b",
            "tags": {"env": "prod"}, "config": {"versioning": {"enabled": true}},
            "collected_at": "2026-01-02T03:04:05Z"
        });
        let resource: Resource = serde_json::from_value(json.clone()).expect("decodes");
        assert_eq!(serde_json::to_value(&resource).expect("encodes"), json);
    }

    #[test]
    fn missing_service_name_is_rejected_with_its_name() {
        let error = serde_json::from_value::<Resource>(serde_json::json!({
            "id": "x", "resource_kind": "bucket"
        }))
        .expect_err("service_name is required");
        assert!(error.to_string().contains("service_name"), "{error}");
    }
}
