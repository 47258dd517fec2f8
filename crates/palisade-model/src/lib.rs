//! Domain types shared by every Palisade crate. No I/O lives here.
//!
//! - [`error`]: the [`ErrorCode`](error::ErrorCode) table (stable snake_case codes and their HTTP
//!   statuses) and the SCC-shaped error body every API error uses.
//! - [`tenancy`]: instances, API keys and roles.
//! - [`resource`]: the normalised resource every collector produces and every rule reads.
//! - [`event`]: the normalised audit event the log decoders produce and Sigma rules read.
//! - [`flow`]: the normalised network flow the flow-log decoders produce.
//! - [`finding`]: severities shared by detections and findings.
//! - [`kubernetes`] and [`terraform`]: how Kubernetes objects and Terraform plan resources
//!   become resources (shared by the admission endpoints, `palisade plan check` and the
//!   importers).

pub mod error;
pub mod event;
pub mod finding;
pub mod flow;
pub mod kubernetes;
pub mod resource;
pub mod tenancy;
pub mod terraform;
