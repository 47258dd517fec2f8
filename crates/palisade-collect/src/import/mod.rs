//! Importers of exports users already have. Each is a pure function of the export's text: no
//! I/O beyond what the caller read, "now" passed in as [`ImportOptions::collected_at`].
//!
//! | kind | accepts | resources |
//! |---|---|---|
//! | [`ImportKind::Kubernetes`] | `kubectl get -o json` (a `List` or one object), YAML manifests with several `---` documents, `kind: List` in YAML | `kubernetes/workload` for pods and pod controllers, `kubernetes/object` for everything else |
//! | [`ImportKind::Terraform`] | `terraform show -json` of a state (`values`) or a plan (`planned_values`), and raw `terraform.tfstate` (version 4) | `terraform/resource`, one per resource instance |
//! | [`ImportKind::Gcp`] | Cloud Asset Inventory exports: JSON lines (`gcloud asset export`, one asset per line), a JSON array (`gcloud asset list --format=json`) | `gcp-<api>/<kebab-type>`, e.g. `gcp-storage/bucket` |
//! | [`ImportKind::Azure`] | Azure Resource Graph results: `az graph query -o json` (`{"data": [...]}`), a plain array, the REST answer | `azure-<namespace>/<type>`, e.g. `azure-storage/storageaccounts` |
//! | [`ImportKind::Ibm`] | IBM Cloud resource JSON: Resource Controller lists (`resources`), Global Search (`items`), `ibmcloud resource service-instances --output json` arrays, COS bucket configurations | `<CRN service>/<CRN resource type or "instance">`, e.g. `cloud-object-storage/bucket` |
//!
//! Errors name the file and the line (text formats, JSON syntax) or the JSON pointer of the bad
//! record; a bad record never costs the others.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{CollectionError, CollectionOutput};

pub mod azure;
pub mod gcp;
pub mod ibm;
pub mod kubernetes;
pub mod terraform;

/// Which exporter produced the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportKind {
    /// Kubernetes objects (JSON from kubectl or YAML manifests).
    Kubernetes,
    /// Terraform state or plan JSON.
    Terraform,
    /// GCP Cloud Asset Inventory export.
    Gcp,
    /// Azure Resource Graph results.
    Azure,
    /// IBM Cloud resource JSON.
    Ibm,
}

impl ImportKind {
    /// Every kind, in documentation order.
    pub const ALL: [ImportKind; 5] = [
        ImportKind::Kubernetes,
        ImportKind::Terraform,
        ImportKind::Gcp,
        ImportKind::Azure,
        ImportKind::Ibm,
    ];

    /// The kind's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            ImportKind::Kubernetes => "kubernetes",
            ImportKind::Terraform => "terraform",
            ImportKind::Gcp => "gcp",
            ImportKind::Azure => "azure",
            ImportKind::Ibm => "ibm",
        }
    }
}

impl std::str::FromStr for ImportKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ImportKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text || (text == "k8s" && *kind == ImportKind::Kubernetes))
            .ok_or_else(|| {
                format!("unknown import kind \"{text}\" (kubernetes, terraform, gcp, azure, ibm)")
            })
    }
}

/// Settings of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The `collected_at` of every resource (exports rarely say when they were taken).
    pub collected_at: DateTime<Utc>,
    /// The `account_id` when the export does not carry one: the cluster name for Kubernetes,
    /// the workspace for Terraform. Empty when unknown.
    pub account_id: String,
}

impl ImportOptions {
    /// Options with `collected_at` and no account.
    pub fn at(collected_at: DateTime<Utc>) -> Self {
        Self {
            collected_at,
            account_id: String::new(),
        }
    }
}

/// Imports `text`, read from `source` (a path, used in error messages), as `kind`.
pub fn import(
    kind: ImportKind,
    source: &str,
    text: &str,
    options: &ImportOptions,
) -> CollectionOutput {
    match kind {
        ImportKind::Kubernetes => kubernetes::import(source, text, options),
        ImportKind::Terraform => terraform::import(source, text, options),
        ImportKind::Gcp => gcp::import(source, text, options),
        ImportKind::Azure => azure::import(source, text, options),
        ImportKind::Ibm => ibm::import(source, text, options),
    }
}

/// Parses a whole JSON document, or says where it breaks (`line L column C`).
pub(crate) fn parse_json_document(source: &str, text: &str) -> Result<Value, CollectionError> {
    serde_json::from_str(text).map_err(|error| {
        CollectionError::new(
            source,
            Some(format!("line {} column {}", error.line(), error.column())),
            format!("not valid JSON: {}", strip_position(&error.to_string())),
        )
    })
}

/// serde_json appends " at line L column C" to its messages; the location is reported apart.
pub(crate) fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// Escapes a key for a JSON pointer (RFC 6901).
pub(crate) fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The records of a document that is either an array or an object holding an array under one
/// of `keys`, with the JSON pointer of each record; `None` when neither.
pub(crate) fn records_of<'a>(
    document: &'a Value,
    keys: &[&str],
) -> Option<Vec<(String, &'a Value)>> {
    if let Value::Array(items) = document {
        return Some(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| (format!("/{index}"), item))
                .collect(),
        );
    }
    for key in keys {
        if let Some(Value::Array(items)) = document.get(key) {
            return Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| (format!("/{}/{index}", pointer_token(key)), item))
                    .collect(),
            );
        }
    }
    None
}

/// Parses JSON lines (blank lines skipped), handing each record with its 1-based line number to
/// `record`; lines that are not JSON become errors naming their line.
pub(crate) fn for_each_json_line(
    source: &str,
    text: &str,
    errors: &mut Vec<CollectionError>,
    mut record: impl FnMut(usize, Value),
) {
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value) => record(number, value),
            Err(error) => errors.push(CollectionError::new(
                source,
                Some(format!("line {number}")),
                format!(
                    "not valid JSON (column {}): {}",
                    error.column(),
                    strip_position(&error.to_string())
                ),
            )),
        }
    }
}

/// Copies an object's string values into tags (other values as they are); `None` → empty.
pub(crate) fn tags_of(value: Option<&Value>) -> serde_json::Map<String, Value> {
    match value {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    }
}

/// A string field, `None` when missing, not a string, or empty.
pub(crate) fn string_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}
