//! Sigma rules for Palisade's activity insights: loading packs, matching audit events fast, and
//! correlation state that the caller owns.
//!
//! # What is ours and what is rsigma's
//!
//! Before writing a Sigma engine we evaluated the Rust libraries against the activity-insights
//! requirements (full condition grammar; every modifier but `expand`, which must fail loudly;
//! correlations `event_count` / `value_count` / `temporal` / `temporal_ordered` with group-by,
//! timespan, aliases, `generate` and chaining; filters; 300 MB/s of CloudTrail on 2 cores):
//!
//! - **`rsigma-parser` / `rsigma-eval` 0.23** (pinned `=0.23.0`, the last release for rustc 1.95;
//!   parser with `default-features = false`) meet the language requirements: all 225 SigmaHQ
//!   cloud rules parse and compile unmodified; the condition grammar, modifiers (`cased`, `re`
//!   with `i`/`m`/`s`, `cidr`, numeric and time-part modifiers, `exists`, `fieldref`,
//!   `base64`/`base64offset`, `utf16*`/`wide`, `windash`, `all`), filters, all correlation types
//!   including `value_sum`/`value_avg`, aliases and chaining are implemented and tested upstream,
//!   and correlation state exports to a serde snapshot. We use them for parsing, matching and
//!   correlation semantics.
//! - **`sigma-rust` 0.7** matches single rules only (no correlations, no filters): rejected.
//!
//! Where rsigma falls short of our needs, this crate adds its own layer:
//! - **Speed.** Evaluating the 225 rules on parsed events ran at 134 MB/s on one core, and
//!   parsing CloudTrail JSON into `serde_json::Value` alone at ~460 MB/s, so "parse every
//!   record, then evaluate" cannot reach 300 MB/s on two cores; rsigma's own prefilters (bloom,
//!   cross-rule Aho-Corasick) work on parsed events. [`CompiledPack::select_candidates`] decides
//!   from the record's raw bytes instead: it extracts the values of the fields rules test for
//!   equality or substrings (`eventName`, `eventSource`, `userIdentity.type`, …) in one
//!   allocation-free walk, falls back to an Aho-Corasick literal search only for rules with
//!   nothing better, and routes by logsource, so most records are never parsed; only the
//!   surviving candidate rules are evaluated, with `rsigma_eval::evaluate_rule` (see the
//!   `prefilter` module for why it never hides a match).
//! - **`expand` fails loudly.** rsigma implements `expand` as runtime placeholder expansion;
//!   the requirement is to refuse it, so [`parse_sources`] rejects such rules with an error.
//! - **Names.** Correlation and filter references by `name` are rewritten to ids before rsigma
//!   sees them (0.23 did not resolve every `name` reference).
//! - **`temporal` without a condition** means "every referenced rule matched in the window" in
//!   the specification; rsigma-parser 0.23 defaults it to `gte: 1` (any one rule), so the
//!   loader sets it to the number of referenced rules.
//! - **Logsource routing** follows the decoder that produced the event
//!   ([`AuditSourceFormat`](palisade_model::event::AuditSourceFormat) → `product`/`service`).
//! - **Parameters.** Palisade packs may use `${name:-default}` placeholders (e.g. a change
//!   window), substituted before parsing ([`PackParameters`]).
//! - **Explicit state.** [`CorrelationState`] is created, fed and snapshotted by the caller;
//!   the compiled pack itself is immutable and shared between threads.
//!
//! # Example
//! ```
//! use palisade_model::event::AuditSourceFormat;
//! use palisade_sigma::{MatchScratch, PackParameters, RuleSource, load_pack};
//!
//! let rule = RuleSource {
//!     name: "stop_logging.yml".into(),
//!     text: "title: Trail stopped\nid: 11111111-1111-1111-1111-111111111111\nlevel: high\n\
//!            logsource: {product: aws, service: cloudtrail}\n\
//!            detection:\n  selection:\n    eventName: StopLogging\n  condition: selection\n".into(),
//! };
//! let (pack, errors) = load_pack(&[rule], &PackParameters::default());
//! assert!(errors.is_empty());
//! let raw = br#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com"}"#;
//! let mut scratch = MatchScratch::default();
//! assert!(pack.select_candidates(raw, Some(AuditSourceFormat::AwsCloudTrail), &mut scratch));
//! let event: serde_json::Value = serde_json::from_slice(raw).unwrap();
//! let mut matches = Vec::new();
//! pack.evaluate_candidates(&event, AuditSourceFormat::AwsCloudTrail, &scratch, &mut matches);
//! assert_eq!(pack.detection_rules()[matches[0].rule as usize].title, "Trail stopped");
//! ```

mod compiled;
mod pack;
mod prefilter;

pub use compiled::{
    CompiledPack, CorrelationHit, CorrelationState, MAX_CORRELATION_EVENTS, RuleMatch,
    SnapshotVersionError,
};
pub use pack::{
    PackParameters, ParsedPack, RuleInfo, RuleKind, RuleLevel, RuleLoadError, RuleSource,
    parse_sources, substitute_parameters,
};
pub use prefilter::MatchScratch;
pub use rsigma_eval::CorrelationSnapshot;

/// Parses and compiles a pack in one go; every document that fails is reported, the rest load.
pub fn load_pack(
    sources: &[RuleSource],
    parameters: &PackParameters,
) -> (CompiledPack, Vec<RuleLoadError>) {
    let (parsed, mut errors) = parse_sources(sources, parameters);
    let (pack, compile_errors) = CompiledPack::compile(parsed);
    errors.extend(compile_errors);
    (pack, errors)
}
