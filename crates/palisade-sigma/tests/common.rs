//! Helpers shared by the integration tests: loading pack files and running events through the
//! same path the runtime uses (raw prefilter, parse, evaluate, correlate).

use std::path::{Path, PathBuf};

use palisade_logs::audit::{FormatHint, normalise};
use palisade_sigma::{
    CompiledPack, MatchScratch, PackParameters, RuleLoadError, RuleSource, load_pack,
};
use serde_json::Value;

/// `content/sigma` of the repository.
pub fn content_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../content/sigma")
}

/// Loads rule files into one pack.
pub fn load_files(
    paths: &[PathBuf],
    parameters: &PackParameters,
) -> (CompiledPack, Vec<RuleLoadError>) {
    let sources: Vec<RuleSource> = paths
        .iter()
        .map(|path| RuleSource {
            name: path.display().to_string(),
            text: std::fs::read_to_string(path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display())),
        })
        .collect();
    load_pack(&sources, parameters)
}

/// One rule that fired: its id (or name), and for correlations the group.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    pub rule_id: String,
    pub rule_name: Option<String>,
    pub group: Vec<(String, String)>,
    pub event_count: usize,
}

/// Runs events in order through prefilter, evaluation and correlation, like the runtime does.
pub fn run_events(pack: &CompiledPack, events: &[Value]) -> Vec<Fired> {
    let mut state = pack.new_correlation_state();
    let mut scratch = MatchScratch::default();
    let mut fired = Vec::new();
    for event in events {
        let raw = serde_json::to_vec(event).expect("serialises");
        if !pack.select_candidates(&raw, None, &mut scratch) {
            continue;
        }
        let audit_event = normalise(event.clone(), FormatHint::Detect).expect("events are objects");
        let mut matches = Vec::new();
        pack.evaluate_candidates(&audit_event.raw, audit_event.format, &scratch, &mut matches);
        for found in &matches {
            if pack.generates_findings(found.rule) {
                let info = &pack.detection_rules()[found.rule as usize];
                fired.push(Fired {
                    rule_id: info.id.clone(),
                    rule_name: info.name.clone(),
                    group: Vec::new(),
                    event_count: 1,
                });
            }
        }
        let time = audit_event.time.map_or(0, |time| time.timestamp());
        for hit in pack.correlate(&mut state, &audit_event.raw, &matches, time) {
            let info = &pack.correlation_rules()[hit.rule as usize];
            fired.push(Fired {
                rule_id: info.id.clone(),
                rule_name: info.name.clone(),
                group: hit.group.clone(),
                event_count: hit.events.len(),
            });
        }
    }
    fired
}

/// Runs events and says whether the rule with `rule_id` fired.
pub fn fires(pack: &CompiledPack, event: &Value, rule_id: &str) -> bool {
    run_events(pack, std::slice::from_ref(event))
        .iter()
        .any(|fired| fired.rule_id == rule_id)
}
