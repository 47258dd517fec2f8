//! Collectors and importers: everything that turns a provider's configuration into Palisade's
//! normalised [`Resource`]s (the collector contract of `content/README.md`, whose
//! `service_name` / `resource_kind` pairs are the `/v3/services` catalogue of
//! `content/services.json`).
//!
//! Three sources, one output shape ([`CollectionOutput`]: resources plus per-source errors):
//!
//! - [`import`]: exports users already have — Kubernetes (`kubectl get -o json` and multi-document
//!   YAML manifests), Terraform state and plan JSON, GCP Cloud Asset Inventory JSON lines, Azure
//!   Resource Graph results, IBM Cloud resource JSON. Pure functions of the bytes they are given;
//!   a bad record is reported with its file and line or JSON pointer and the rest still imports.
//!   Kubernetes objects are mapped by `palisade_model::kubernetes`, the one mapping the admission
//!   webhooks share.
//! - [`host`]: the Linux machine it runs on (sshd, sysctl, login.defs, accounts, file modes,
//!   listening ports, packages, kernel, auditd, firewall). Parsing is pure (`host::parse`); a thin
//!   layer reads the files under a root directory, so the whole collection also runs on a
//!   fixture tree.
//! - [`aws`]: the AWS APIs with SigV4 at any endpoint URL (S3, IAM, EC2, EBS, VPC flow logs,
//!   CloudTrail, KMS, RDS), regions in parallel, errors per resource type.
//!
//! The [`agent`] (`palisade collector run`) runs these as jobs the server hands it and pushes
//! their resources in idempotent batches, spooled on disk until the server acknowledges them.
//! It talks to the server only through `palisade-client`; the crate depends on no server or
//! store code, so an agent build stays small to deploy.

use palisade_model::resource::Resource;
use serde::{Deserialize, Serialize};

pub mod agent;
pub mod aws;
pub mod host;
pub mod import;
mod naming;

pub use naming::snake_case;

/// What one collection produced: the resources it could read and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectionOutput {
    /// Normalised resources, in a stable order (collection order, then as read).
    pub resources: Vec<Resource>,
    /// Problems that cost some resources or properties; the rest of the output is still good.
    pub errors: Vec<CollectionError>,
}

impl CollectionOutput {
    /// Appends another output (resources and errors).
    pub fn extend(&mut self, other: CollectionOutput) {
        self.resources.extend(other.resources);
        self.errors.extend(other.errors);
    }
}

/// One problem met while collecting, kept beside the resources instead of aborting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionError {
    /// Where: a file path for importers and host files, `service/kind` (plus region) for AWS.
    pub source: String,
    /// Position inside the source when there is one: `line 12`, or a JSON pointer `/items/3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// What went wrong.
    pub message: String,
}

impl CollectionError {
    /// An error of `source` at `location`.
    pub fn new(
        source: impl Into<String>,
        location: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            source: source.into(),
            location,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CollectionError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(location) => write!(formatter, "{}: {location}: {}", self.source, self.message),
            None => write!(formatter, "{}: {}", self.source, self.message),
        }
    }
}

/// Hears how a long collection advances, per resource type (`s3/bucket`), so a CLI can draw a
/// progress bar per type and an agent can log. Calls come from several tasks at once.
pub trait Progress: Send + Sync {
    /// A resource type starts (once per type and region).
    fn started(&self, resource_type: &str) {
        let _ = resource_type;
    }
    /// A resource type (in one region) is done with `count` resources and `errors` errors.
    fn finished(&self, resource_type: &str, count: usize, errors: usize) {
        let _ = (resource_type, count, errors);
    }
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
