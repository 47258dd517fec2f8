//! Kubernetes objects as normalised [`Resource`]s: the one mapping the admission webhooks and the
//! Kubernetes importer (`palisade collect import kubernetes`) share, so a rule written for
//! `kubectl get -o json` output also guards `kubectl apply`.
//!
//! The layout is content/README.md's collector contract for `kubernetes`:
//!
//! - Workloads (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
//!   CronJob) are `kubernetes` / `workload`; their pod template's `spec` is lifted to
//!   `config.pod_spec`, so one rule covers a Pod and every controller that makes Pods. A
//!   controller's own `spec` stays in `config.spec`, without the template (not stored twice).
//! - Any other kind is `kubernetes` / `object`, with the object's own top-level fields (`spec`,
//!   `data`, `rules`, `subjects` …) in `config`.
//! - `config` always has `kind`, `api_version` and `metadata`; field names stay as the Kubernetes
//!   API writes them (camelCase). `metadata` drops `managedFields` and kubectl's
//!   `last-applied-configuration` annotation, which only repeat the object; `status` is left
//!   out: it is runtime state, not configuration.
//! - The envelope: `environment` `kubernetes`, `account_id` the cluster, `resource_group` the
//!   namespace, `name` the object's name (or its `generateName`, as Pods made by controllers
//!   arrive at admission), `tags` its labels, `id` its `metadata.uid` — or, for an object not
//!   created yet, `k8s://{cluster}/{apiVersion}/{kind}/{namespace}/{name}`.
//!
//! [`KubernetesResource::object_pointer`] maps a JSON pointer into `config` back into the
//! object, which is how a template's JSON Patch on the resource becomes a patch a mutating
//! webhook can return.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::resource::Resource;

/// The `service_name` of every Kubernetes resource.
pub const SERVICE_NAME: &str = "kubernetes";
/// The `resource_kind` of workloads.
pub const WORKLOAD_KIND: &str = "workload";
/// The `resource_kind` of every other object.
pub const OBJECT_KIND: &str = "object";

/// kubectl's copy of the whole object, kept in an annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A Kubernetes object mapped to a resource, with where its pod spec came from.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesResource {
    /// The normalised resource.
    pub resource: Resource,
    /// JSON pointer of the pod spec inside the original object (`/spec/template/spec`), for
    /// workloads.
    pub pod_spec_pointer: Option<&'static str>,
}

/// Why an object cannot be mapped; `pointer` names the field inside the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct MappingError {
    /// JSON pointer into the object (`/metadata/name`), empty for the object itself.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

fn error(pointer: &str, message: impl Into<String>) -> MappingError {
    MappingError {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}

/// Where each workload kind keeps its pod spec, and its template inside `spec` (removed from the
/// controller's spec once lifted).
fn pod_spec_pointer(kind: &str) -> Option<(&'static str, &'static [&'static str])> {
    match kind {
        "Pod" => Some(("/spec", &[])),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => Some(("/spec/template/spec", &["template"])),
        "CronJob" => Some((
            "/spec/jobTemplate/spec/template/spec",
            &["jobTemplate", "spec", "template"],
        )),
        _ => None,
    }
}

/// A string that is present and not empty.
fn non_empty(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

/// Maps a Kubernetes object (as `kubectl get -o json`, a manifest or an `AdmissionReview`
/// carries it) to a resource of cluster `cluster` (empty when unknown), collected at
/// `collected_at`.
pub fn resource_from_object(
    object: &Value,
    cluster: &str,
    collected_at: DateTime<Utc>,
) -> Result<KubernetesResource, MappingError> {
    let Some(fields) = object.as_object() else {
        return Err(error("", "a Kubernetes object must be a JSON object"));
    };
    let Some(kind) = non_empty(fields.get("kind")) else {
        return Err(error("/kind", "missing kind (a non-empty string)"));
    };
    // Optional: every object the API server sends has one, but hand-written manifests and
    // admission tests do not always.
    let api_version = non_empty(fields.get("apiVersion")).unwrap_or_default();
    let empty = Map::new();
    let metadata = match fields.get("metadata") {
        Some(Value::Object(metadata)) => metadata,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(error("/metadata", "metadata must be an object")),
    };
    let text = |key: &str| non_empty(metadata.get(key));
    let Some(name) = text("name").or_else(|| text("generateName")) else {
        return Err(error(
            "/metadata/name",
            "missing metadata.name (or metadata.generateName)",
        ));
    };
    let namespace = text("namespace");
    let labels = match metadata.get("labels") {
        Some(Value::Object(labels)) => labels.clone(),
        _ => Map::new(),
    };

    let mut kept_metadata = metadata.clone();
    kept_metadata.remove("managedFields");
    if let Some(Value::Object(annotations)) = kept_metadata.get_mut("annotations") {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            kept_metadata.remove("annotations");
        }
    }
    let mut config = Map::new();
    config.insert("kind".into(), Value::String(kind.to_owned()));
    config.insert("api_version".into(), Value::String(api_version.to_owned()));
    config.insert("metadata".into(), Value::Object(kept_metadata));

    let workload = pod_spec_pointer(kind);
    let resource_kind = match workload {
        Some((pointer, template_path)) => {
            let pod_spec = match object.pointer(pointer) {
                Some(Value::Object(spec)) => Value::Object(spec.clone()),
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(_) => return Err(error(pointer, "the pod spec must be an object")),
            };
            if let Some((template, parents)) = template_path.split_last() {
                // The controller's own settings (replicas, schedule …) without the template.
                let mut spec = fields.get("spec").cloned().unwrap_or(Value::Null);
                let mut parent = Some(&mut spec);
                for key in parents {
                    parent = parent.and_then(|value| value.get_mut(*key));
                }
                if let Some(Value::Object(parent)) = parent {
                    parent.remove(*template);
                }
                if !spec.is_null() {
                    config.insert("spec".into(), spec);
                }
            }
            config.insert("pod_spec".into(), pod_spec);
            WORKLOAD_KIND
        }
        None => {
            for (key, value) in fields {
                if !matches!(key.as_str(), "kind" | "apiVersion" | "metadata" | "status") {
                    config.insert(key.clone(), value.clone());
                }
            }
            OBJECT_KIND
        }
    };
    // The uid identifies an object for its whole life; manifests and objects under admission
    // have none yet, so they are named by what makes them unique in a cluster.
    let id = match text("uid") {
        Some(uid) => uid.to_owned(),
        None => format!(
            "k8s://{}/{}{kind}/{}{name}",
            if cluster.is_empty() { "-" } else { cluster },
            if api_version.is_empty() {
                String::new()
            } else {
                format!("{api_version}/")
            },
            namespace.map(|ns| format!("{ns}/")).unwrap_or_default()
        ),
    };
    Ok(KubernetesResource {
        resource: Resource {
            id,
            environment: "kubernetes".to_owned(),
            account_id: cluster.to_owned(),
            service_name: SERVICE_NAME.to_owned(),
            resource_kind: resource_kind.to_owned(),
            region: None,
            resource_group: namespace.map(str::to_owned),
            name: Some(name.to_owned()),
            tags: labels,
            config: Value::Object(config),
            collected_at,
        },
        pod_spec_pointer: workload.map(|(pointer, _)| pointer),
    })
}

impl KubernetesResource {
    /// Maps a JSON pointer into the resource's `config` to the same place in the original
    /// object; `None` for the fields the mapping made up (`/api_version`, `/kind`).
    pub fn object_pointer(&self, config_pointer: &str) -> Option<String> {
        if let Some(rest) = strip_segment(config_pointer, "/pod_spec") {
            return self.pod_spec_pointer.map(|base| format!("{base}{rest}"));
        }
        if strip_segment(config_pointer, "/kind").is_some()
            || strip_segment(config_pointer, "/api_version").is_some()
        {
            return None;
        }
        // Everything else (metadata, spec, data …) keeps its place.
        Some(config_pointer.to_owned())
    }
}

/// `Some(rest)` when `pointer` is `segment` or starts with `segment/`.
fn strip_segment<'p>(pointer: &'p str, segment: &str) -> Option<&'p str> {
    let rest = pointer.strip_prefix(segment)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    #[test]
    fn a_deployment_is_a_workload_with_its_pod_template_lifted() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1",
                         "labels": {"app": "web"}, "managedFields": [{}]},
            "spec": {"replicas": 2, "template": {"metadata": {}, "spec": {
                "hostNetwork": false, "containers": [{"name": "web", "image": "web:1"}]}}},
            "status": {"replicas": 2}
        });
        let mapped = resource_from_object(&deployment, "prod", now()).expect("maps");
        let resource = &mapped.resource;
        assert_eq!(
            (
                resource.id.as_str(),
                resource.resource_kind.as_str(),
                resource.account_id.as_str()
            ),
            ("u-1", "workload", "prod")
        );
        assert_eq!(resource.resource_group.as_deref(), Some("shop"));
        assert_eq!(resource.tags["app"], "web");
        assert_eq!(
            resource.config,
            json!({"kind": "Deployment", "api_version": "apps/v1",
                   "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
                   "spec": {"replicas": 2},
                   "pod_spec": {"hostNetwork": false, "containers": [{"name": "web", "image": "web:1"}]}})
        );
        assert_eq!(
            mapped.object_pointer("/pod_spec/containers/0/resources"),
            Some("/spec/template/spec/containers/0/resources".to_owned())
        );
        assert_eq!(
            mapped.object_pointer("/metadata/labels/team"),
            Some("/metadata/labels/team".to_owned())
        );
        assert_eq!(mapped.object_pointer("/kind"), None);
    }

    #[test]
    fn cronjobs_pods_and_other_kinds_map_as_documented() {
        let cronjob = json!({"kind": "CronJob", "apiVersion": "batch/v1",
            "metadata": {"name": "nightly", "namespace": "ops"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        let mapped = resource_from_object(&cronjob, "c", now()).expect("maps");
        assert_eq!(mapped.resource.id, "k8s://c/batch/v1/CronJob/ops/nightly");
        assert_eq!(
            mapped.resource.config["spec"],
            json!({"jobTemplate": {"spec": {}}}),
            "the controller's spec stays, without its template"
        );
        assert_eq!(
            mapped.resource.config["pod_spec"],
            json!({"containers": []})
        );
        assert_eq!(
            mapped.object_pointer("/pod_spec/hostPID"),
            Some("/spec/jobTemplate/spec/template/spec/hostPID".to_owned())
        );

        let pod = json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"generateName": "web-", "namespace": "shop"}, "spec": {"containers": []}});
        let mapped = resource_from_object(&pod, "c", now()).expect("maps");
        assert_eq!(mapped.resource.name.as_deref(), Some("web-"));
        assert_eq!(mapped.object_pointer("/pod_spec"), Some("/spec".to_owned()));

        let service = json!({"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "web", "namespace": "shop"}, "spec": {"type": "LoadBalancer"},
            "status": {}});
        let mapped = resource_from_object(&service, "c", now()).expect("maps");
        assert_eq!(mapped.resource.resource_kind, "object");
        assert_eq!(mapped.resource.config["spec"]["type"], "LoadBalancer");
        assert!(mapped.resource.config.get("status").is_none());
        assert_eq!(mapped.pod_spec_pointer, None);
        assert_eq!(
            mapped.object_pointer("/pod_spec/x"),
            None,
            "no pod spec to map into"
        );
    }

    #[test]
    fn bad_objects_name_the_field() {
        let cases = [
            (json!([]), ""),
            (json!({"metadata": {"name": "x"}}), "/kind"),
            (json!({"kind": "Pod", "apiVersion": "v1"}), "/metadata/name"),
            (
                json!({"kind": "Pod", "apiVersion": "v1", "metadata": 3}),
                "/metadata",
            ),
            (
                json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "x"},
                       "spec": {"template": {"spec": []}}}),
                "/spec/template/spec",
            ),
        ];
        for (object, pointer) in cases {
            let error = resource_from_object(&object, "c", now()).expect_err("refused");
            assert_eq!(error.pointer, pointer, "{object}");
        }
    }
}
