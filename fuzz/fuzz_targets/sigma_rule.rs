//! Sigma rule documents (YAML, possibly several per file, with correlations and filters) through
//! the pack loader: parameter substitution, parsing, the `expand` refusal, name-to-id rewriting
//! and compilation. A pack that loads is then run on one CloudTrail event, through the prefilter
//! and the evaluator, and through correlation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_model::event::AuditSourceFormat;
use palisade_sigma::{MatchScratch, PackParameters, RuleSource, load_pack};

const EVENT: &[u8] = br#"{"eventVersion":"1.08","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","userIdentity":{"type":"Root","arn":"arn:aws:iam::1:root"},"sourceIPAddress":"198.51.100.7","responseElements":{"ConsoleLogin":"Failure"},"eventTime":"2026-01-01T00:00:00Z"}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sources = [RuleSource {
        name: "fuzz.yml".into(),
        text: text.to_owned(),
    }];
    let (pack, errors) = load_pack(&sources, &PackParameters::default());
    for error in &errors {
        let _ = error.to_string();
    }
    let mut scratch = MatchScratch::default();
    let format = AuditSourceFormat::AwsCloudTrail;
    let event: serde_json::Value = serde_json::from_slice(EVENT).expect("valid event");
    let mut matches = Vec::new();
    if pack.select_candidates(EVENT, Some(format), &mut scratch) {
        pack.evaluate_candidates(&event, format, &scratch, &mut matches);
    }
    let mut all = Vec::new();
    pack.evaluate_all(&event, format, &mut all);
    assert_eq!(
        matches.len(),
        all.len(),
        "the prefilter hid a match (or invented one)"
    );
    if pack.has_correlations() {
        let mut state = pack.new_correlation_state();
        let _ = pack.correlate(&mut state, &event, &all, 1_767_225_600);
    }
});
