//! The Sigma prefilter reads raw record bytes (before any JSON parse) to pick candidate rules of
//! the built-in packs. It must never panic on any bytes, and for a record that parses it must
//! never hide a match: evaluating only the candidates finds exactly what evaluating every rule
//! finds.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use palisade_insights::packs::BUILTIN_PACKS;
use palisade_model::event::AuditSourceFormat;
use palisade_sigma::{CompiledPack, MatchScratch, PackParameters, load_pack};

fn packs() -> &'static [CompiledPack] {
    static PACKS: OnceLock<Vec<CompiledPack>> = OnceLock::new();
    PACKS.get_or_init(|| {
        BUILTIN_PACKS
            .iter()
            .map(|builtin| load_pack(&builtin.sources(), &PackParameters::default()).0)
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let event = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .filter(serde_json::Value::is_object);
    let mut scratch = MatchScratch::default();
    for pack in packs() {
        let _ = pack.select_candidates(data, None, &mut scratch);
        for format in AuditSourceFormat::ALL {
            let mut candidates = Vec::new();
            let selected = pack.select_candidates(data, Some(format), &mut scratch);
            let Some(event) = &event else {
                continue;
            };
            if selected {
                pack.evaluate_candidates(event, format, &scratch, &mut candidates);
            }
            let mut all = Vec::new();
            pack.evaluate_all(event, format, &mut all);
            let rules = |found: &[palisade_sigma::RuleMatch]| {
                let mut rules: Vec<u32> = found.iter().map(|found| found.rule).collect();
                rules.sort_unstable();
                rules
            };
            assert_eq!(rules(&candidates), rules(&all), "the prefilter hid a match");
        }
    }
});
