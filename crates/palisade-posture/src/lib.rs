//! Posture management's engine: control libraries, profiles, scopes and attachments; scans of
//! resources against a profile; roll-ups in SCC v3's shapes; the compliance score; drift between
//! reports; notification thresholds; OSCAL import; and the built-in content. Pure: no I/O, no
//! async — the server and the CLI read and store, and pass "now" in.
//!
//! A scan, end to end (what `palisade scan` and the server both do):
//!
//! 1. [`scope::resolve_attachment_scopes`] turns the attachment's scopes into a
//!    [`scope::ScopeSelector`] — a predicate a store query builder translates, and that also
//!    filters in memory.
//! 2. [`scan::ScanPlan::new`] resolves the profile's controls, finds each assessment's rule,
//!    resolves parameters (attachment → profile default → rule default) and compiles the rules.
//! 3. [`scan::ScanPlan::evaluate_chunk`] evaluates a chunk of resources in parallel; the caller
//!    persists the chunk's [`scan::ScanEvaluation`]s and feeds them to a
//!    [`rollup::RollupBuilder`], which keeps counters only, so memory stays bounded.
//! 4. [`rollup::RollupBuilder::finish`] gives the [`rollup::Rollup`]: score, summaries, controls
//!    with stats, resources with stats.
//! 5. [`drift::diff_rollups`] / [`drift::diff_evaluations`] compare with the previous report;
//!    [`notify::check_thresholds`] decides whether to raise a finding.
//!
//! Hand-written parts and why: the roll-up arithmetic and status precedence are SCC's own
//! semantics (no library has them); the OSCAL import reads only the few catalog/profile fields a
//! control library needs, which is smaller than binding a full OSCAL model crate (the `oscal`
//! crate is young and models far more than we read).

pub mod content;
pub mod drift;
pub mod model;
pub mod notify;
pub mod oscal;
pub mod rollup;
pub mod scan;
pub mod scc;
pub mod scope;

pub use drift::{ReportDrift, diff_evaluations, diff_rollups};
pub use model::{Attachment, Attestation, ControlLibrary, Profile, Scope};
pub use notify::{ThresholdBreach, check_thresholds};
pub use rollup::{ComplianceScore, ComplianceStatus, PartialRollup, Rollup, RollupBuilder};
pub use scan::{EvaluationStatus, ScanEvaluation, ScanInput, ScanPlan};
pub use scope::{ScopeSelector, resolve_attachment_scopes};
