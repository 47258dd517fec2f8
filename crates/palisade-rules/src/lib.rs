//! The rule language of Palisade: SCC JSON config rules (all 23 operators, nested `and`/`or`,
//! v3 sub-rules, `${parameters}`) and Rego, validated, compiled and evaluated against
//! normalised [`Resource`](palisade_model::resource::Resource)s; plus templates. Pure: no I/O,
//! no async — callers read files and pass values in, and pass "now" in.
//!
//! The pipeline, and where each step lives:
//!
//! 1. [`validate::parse_rules`] reads JSON into the [`model`], reporting every mistake with its
//!    JSON pointer at once (serde would stop at the first).
//! 2. [`RuleSet::compile`] turns rules plus one attachment's [`ParameterValues`] into the form
//!    that evaluates without re-parsing: rules grouped by target, property paths pre-split and
//!    resolved once per resource into slots, numbers/CIDRs/wildcards parsed, Rego compiled once.
//! 3. [`RuleSet::evaluate`] / [`RuleSet::evaluate_batch`] (rayon) produce an [`Evaluation`] per
//!    applicable (rule, resource) pair: `pass`, `failure` or `error` in Kleene logic, with the
//!    deciding leaves as [`Detail`]s.
//!
//! Compile once, evaluate many times: a [`RuleSet`] is `Send + Sync`, so a server shares one per
//! (profile, attachment) across its workers.
//!
//! ```
//! use palisade_rules::{ParameterValues, RuleSet, Status};
//! use serde_json::json;
//!
//! let rules = RuleSet::from_json(
//!     &json!({
//!         "id": "buckets-private",
//!         "target": {"service_name": "cloud-object-storage", "resource_kind": "bucket"},
//!         "required_config": {"property": "firewall.allowed_ip", "operator": "ips_in_range",
//!                             "value": ["10.0.0.0/8"]}
//!     }),
//!     &ParameterValues::default(),
//! )
//! .expect("valid rule");
//! let bucket = serde_json::from_value(json!({
//!     "id": "b1", "service_name": "cloud-object-storage", "resource_kind": "bucket",
//!     "config": {"firewall": {"allowed_ip": ["10.1.2.3", "192.0.2.1"]}}
//! }))
//! .expect("valid resource");
//! let evaluations = rules.evaluate(&bucket, chrono::Utc::now());
//! assert_eq!(evaluations[0].status, Status::Failure);
//! assert_eq!(evaluations[0].details[0].property, "firewall.allowed_ip");
//! ```
//!
//! Hand-written parts and why: the validator (all errors at once, with pointers), the wildcard
//! matcher (SCC's own small language, matched without building a regex per pattern) and the IP
//! ranges (two integer operations per containment test). [`naive`] re-implements the semantics
//! with `regex` and `ipnet` as an independent reference the tests compare against. [`cases`] is
//! the test-case format shared with `palisade rules test`.

pub mod cases;
mod check;
mod compile;
pub mod eval;
pub mod model;
pub mod naive;
pub mod params;
mod rego;
pub mod templates;
pub mod validate;

pub use compile::RuleSet;
pub use eval::{Detail, Evaluation, Outcome, Status, Verdict};
pub use model::{Condition, Operator, Rule};
pub use params::ParameterValues;
pub use templates::{TemplateApplication, apply_templates};
pub use validate::{ValidationError, parse_rule, parse_rules};
