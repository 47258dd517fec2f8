//! Log decoders: bytes in, [`audit`] events and [`flow`] records out.
//!
//! - `audit`: AWS CloudTrail, IBM Activity Tracker (CADF), Kubernetes audit, generic JSON Lines.
//! - `flow`: AWS VPC flow logs (v2–v8), IBM Cloud VPC flow logs, Azure NSG, GCP VPC flow logs.

pub mod audit;
pub mod flow;
