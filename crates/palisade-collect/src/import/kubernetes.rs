//! Kubernetes objects → resources: `kubectl get -o json` output and YAML manifests.
//!
//! [`kubernetes_resource`] is the one mapping of an object to a resource (shared with the
//! admission webhook, which sees the same objects in `AdmissionReview` requests):
//!
//! - pods and pod controllers (Deployment, StatefulSet, DaemonSet, ReplicaSet,
//!   ReplicationController, Job, CronJob) are `kubernetes/workload`, with the pod template's
//!   spec lifted to `pod_spec` so one rule covers every controller;
//! - every other object is `kubernetes/object`.
//!
//! `config` keeps Kubernetes' camelCase: `kind`, `api_version`, `metadata` (without
//! `managedFields` and kubectl's `last-applied-configuration` annotation, which only repeat the
//! object), `spec` (a controller's spec without its pod template; absent for pods), `pod_spec`,
//! and for other objects their remaining top-level fields (`data`, `rules`, `subjects`, …).
//! `status` is left out: it is runtime state, not configuration.

use chrono::{DateTime, Utc};
use palisade_model::resource::Resource;
use serde_json::{Map, Value, json};

use super::{ImportOptions, string_field};
use crate::{CollectionError, CollectionOutput};

/// Kinds whose pod template is at `spec.template.spec`.
const TEMPLATE_KINDS: [&str; 6] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
];

/// Maps one Kubernetes object to a resource. `cluster` becomes `account_id` (empty when
/// unknown). The error says which required field is missing.
pub fn kubernetes_resource(
    object: &Value,
    cluster: &str,
    collected_at: DateTime<Utc>,
) -> Result<Resource, String> {
    let Value::Object(fields) = object else {
        return Err("a Kubernetes object must be a mapping".into());
    };
    let kind = string_field(object, "kind").ok_or("`kind` is missing")?;
    let api_version = string_field(object, "apiVersion").ok_or("`apiVersion` is missing")?;
    let metadata = match fields.get("metadata") {
        Some(Value::Object(metadata)) => metadata,
        Some(_) => return Err("`metadata` must be a mapping".into()),
        None => return Err("`metadata` is missing".into()),
    };
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or("`metadata.name` is missing")?;
    let namespace = metadata
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|namespace| !namespace.is_empty());

    let mut clean_metadata = metadata.clone();
    clean_metadata.remove("managedFields");
    if let Some(Value::Object(annotations)) = clean_metadata.get_mut("annotations") {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        if annotations.is_empty() {
            clean_metadata.remove("annotations");
        }
    }

    let mut config = Map::new();
    config.insert("kind".into(), json!(kind));
    config.insert("api_version".into(), json!(api_version));
    config.insert("metadata".into(), Value::Object(clean_metadata));
    let pod_spec = pod_spec_of(kind, fields);
    let resource_kind = if let Some((pod_spec, controller_spec)) = pod_spec {
        if let Some(spec) = controller_spec {
            config.insert("spec".into(), spec);
        }
        config.insert("pod_spec".into(), pod_spec);
        "workload"
    } else {
        for (key, value) in fields {
            if !matches!(key.as_str(), "kind" | "apiVersion" | "metadata" | "status") {
                config.insert(key.clone(), value.clone());
            }
        }
        "object"
    };

    // The uid identifies an object for its whole life; manifests have none yet, so they are
    // named by what makes them unique in a cluster.
    let id = match metadata.get("uid").and_then(Value::as_str) {
        Some(uid) if !uid.is_empty() => uid.to_owned(),
        _ => format!(
            "k8s://{}/{}/{kind}/{}{name}",
            if cluster.is_empty() { "-" } else { cluster },
            api_version,
            namespace.map(|ns| format!("{ns}/")).unwrap_or_default()
        ),
    };
    Ok(Resource {
        id,
        environment: "kubernetes".into(),
        account_id: cluster.to_owned(),
        service_name: "kubernetes".into(),
        resource_kind: resource_kind.into(),
        region: None,
        resource_group: namespace.map(str::to_owned),
        name: Some(name.to_owned()),
        tags: super::tags_of(metadata.get("labels")),
        config: Value::Object(config),
        collected_at,
    })
}

/// For workloads: the pod spec, and the controller's spec without its template.
fn pod_spec_of(kind: &str, fields: &Map<String, Value>) -> Option<(Value, Option<Value>)> {
    let spec = fields.get("spec")?;
    if kind == "Pod" {
        return Some((spec.clone(), None));
    }
    let template_path: &[&str] = if kind == "CronJob" {
        &["jobTemplate", "spec", "template", "spec"]
    } else if TEMPLATE_KINDS.contains(&kind) {
        &["template", "spec"]
    } else {
        return None;
    };
    let mut pod_spec = spec;
    for key in template_path {
        pod_spec = pod_spec.get(key)?;
    }
    let mut controller_spec = spec.clone();
    // Remove the template from the copy so it is not stored twice.
    if kind == "CronJob" {
        if let Some(Value::Object(job_spec)) = controller_spec
            .get_mut("jobTemplate")
            .and_then(|template| template.get_mut("spec"))
        {
            job_spec.remove("template");
        }
    } else if let Value::Object(map) = &mut controller_spec {
        map.remove("template");
    }
    Some((pod_spec.clone(), Some(controller_spec)))
}

/// Imports `kubectl get -o json` output (JSON) or manifests (YAML, several documents).
pub fn import(source: &str, text: &str, options: &ImportOptions) -> CollectionOutput {
    let mut output = CollectionOutput::default();
    let first = text.trim_start().chars().next();
    if matches!(first, Some('{') | Some('[')) {
        match super::parse_json_document(source, text) {
            Ok(document) => add_objects(source, "", &document, options, &mut output),
            Err(error) => output.errors.push(error),
        }
        return output;
    }
    for document in split_yaml_documents(text) {
        match serde_yaml::from_str::<Value>(document.text) {
            Ok(Value::Null) => {}
            Ok(value) => {
                // YAML objects are named by the line their document starts on.
                let location = format!("line {}", document.first_line);
                add_objects(source, &location, &value, options, &mut output);
            }
            Err(error) => {
                // The parser may notice a problem only at the end of its document; the line
                // reported stays inside that document, not on the next one.
                let last_line = document.first_line + document.text.lines().count().max(1) - 1;
                let line = error
                    .location()
                    .map(|location| document.first_line + location.line().saturating_sub(1))
                    .unwrap_or(document.first_line)
                    .min(last_line);
                output.errors.push(CollectionError::new(
                    source,
                    Some(format!("line {line}")),
                    format!(
                        "not valid YAML: {}",
                        strip_yaml_position(&error.to_string())
                    ),
                ));
            }
        }
    }
    output
}

/// Adds one document: a `List` (its items) or a single object. `location` prefixes pointers.
fn add_objects(
    source: &str,
    location: &str,
    document: &Value,
    options: &ImportOptions,
    output: &mut CollectionOutput,
) {
    let items: Vec<(String, &Value)> = match document {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| (format!("/{index}"), item))
            .collect(),
        Value::Object(_) if is_list(document) => match document.get("items") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| (format!("/items/{index}"), item))
                .collect(),
            _ => vec![(String::new(), document)],
        },
        _ => vec![(String::new(), document)],
    };
    for (pointer, item) in items {
        match kubernetes_resource(item, &options.account_id, options.collected_at) {
            Ok(resource) => output.resources.push(resource),
            Err(message) => {
                let place = match (location.is_empty(), pointer.is_empty()) {
                    (true, true) => "/".to_owned(),
                    (true, false) => pointer,
                    (false, true) => location.to_owned(),
                    (false, false) => format!("{location} {pointer}"),
                };
                let named = item
                    .get("metadata")
                    .and_then(|metadata| metadata.get("name"))
                    .and_then(Value::as_str)
                    .map(|name| format!(" ({name})"))
                    .unwrap_or_default();
                output.errors.push(CollectionError::new(
                    source,
                    Some(place),
                    format!("{message}{named}"),
                ));
            }
        }
    }
}

fn is_list(document: &Value) -> bool {
    document
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind == "List" || kind.ends_with("List"))
        && document.get("items").is_some()
}

/// One YAML document of a multi-document file, with the line it starts on (1-based).
struct YamlDocument<'a> {
    text: &'a str,
    first_line: usize,
}

/// Splits at `---` lines, so a broken document costs only itself (serde_yaml stops at the
/// first error of a stream).
fn split_yaml_documents(text: &str) -> Vec<YamlDocument<'_>> {
    let mut documents = Vec::new();
    let mut start_offset = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed == "..." {
            documents.push(YamlDocument {
                text: &text[start_offset..offset],
                first_line: start_line,
            });
            start_offset = offset + line.len();
            start_line = index + 2;
        }
        offset += line.len();
    }
    documents.push(YamlDocument {
        text: &text[start_offset..],
        first_line: start_line,
    });
    documents
        .into_iter()
        .filter(|document| {
            document
                .text
                .lines()
                .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        })
        .collect()
}

/// serde_yaml appends " at line L column C"; the line is reported apart, in file terms.
fn strip_yaml_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    #[test]
    fn deployment_pod_template_is_lifted() {
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}});
        let resource = kubernetes_resource(&object, "prod", now()).expect("maps");
        assert_eq!(resource.resource_kind, "workload");
        assert_eq!(resource.config["pod_spec"]["containers"][0]["name"], "web");
        assert_eq!(resource.config["spec"], json!({"replicas": 2}));
        assert_eq!(resource.id, "k8s://prod/apps/v1/Deployment/shop/web");
        assert_eq!(resource.resource_group.as_deref(), Some("shop"));
    }

    #[test]
    fn cronjob_template_is_two_levels_down() {
        let object = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "uid": "u1"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"backoffLimit": 1,
                "template": {"spec": {"containers": [{"name": "x"}]}}}}}});
        let resource = kubernetes_resource(&object, "", now()).expect("maps");
        assert_eq!(resource.id, "u1");
        assert_eq!(resource.config["pod_spec"]["containers"][0]["name"], "x");
        assert_eq!(
            resource.config["spec"]["jobTemplate"]["spec"],
            json!({"backoffLimit": 1})
        );
    }

    #[test]
    fn other_objects_keep_their_fields_but_not_status() {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"a": "b"}, "status": {"x": 1}});
        let resource = kubernetes_resource(&object, "", now()).expect("maps");
        assert_eq!(resource.resource_kind, "object");
        assert_eq!(resource.config["data"], json!({"a": "b"}));
        assert!(resource.config.get("status").is_none());
    }

    #[test]
    fn missing_name_is_named() {
        let error = kubernetes_resource(
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}}),
            "",
            now(),
        )
        .expect_err("no name");
        assert!(error.contains("metadata.name"), "{error}");
    }

    #[test]
    fn yaml_documents_keep_their_first_line() {
        let documents = split_yaml_documents("a: 1\n---\nb: 2\n---\n# only a comment\n");
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[1].first_line, 3);
    }
}
