//! The prefilter never hides a match: on every real CloudTrail sample record, the rules that
//! match after prefiltering are exactly those that match when every rule is evaluated.

use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::OnceLock;

use palisade_logs::audit::{FormatHint, decompress_if_gzip, normalise};
use palisade_sigma::{CompiledPack, MatchScratch, PackParameters};
use serde_json::Value;

use crate::common::{content_root, load_files};

fn every_shipped_rule() -> &'static CompiledPack {
    static PACK: OnceLock<CompiledPack> = OnceLock::new();
    PACK.get_or_init(|| {
        let mut files = Vec::new();
        let mut pending = vec![content_root()];
        while let Some(directory) = pending.pop() {
            for entry in std::fs::read_dir(directory).expect("readable") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|extension| extension == "yml") {
                    files.push(path);
                }
            }
        }
        let (pack, errors) = load_files(&files, &PackParameters::default());
        assert!(errors.is_empty(), "{errors:?}");
        pack
    })
}

pub fn prefilter_keeps_every_match(path: &Path) -> datatest_stable::Result<()> {
    let pack = every_shipped_rule();
    let mut text = String::new();
    decompress_if_gzip(BufReader::new(std::fs::File::open(path)?))?.read_to_string(&mut text)?;
    let records = match serde_json::from_str::<Value>(&text)? {
        Value::Array(records) => records,
        Value::Object(mut object) => match object.remove("Records") {
            Some(Value::Array(records)) => records,
            _ => return Err("no Records array".into()),
        },
        _ => return Err("unexpected JSON".into()),
    };
    let mut scratch = MatchScratch::default();
    for record in records {
        let raw = serde_json::to_vec(&record)?;
        let event = normalise(record, FormatHint::Detect)?;
        let mut all = Vec::new();
        pack.evaluate_all(&event.raw, event.format, &mut all);
        let mut filtered = Vec::new();
        if pack.select_candidates(&raw, None, &mut scratch) {
            pack.evaluate_candidates(&event.raw, event.format, &scratch, &mut filtered);
        }
        let rules = |matches: &[palisade_sigma::RuleMatch]| {
            matches.iter().map(|found| found.rule).collect::<Vec<_>>()
        };
        if rules(&all) != rules(&filtered) {
            return Err(format!(
                "prefilter lost a match: all {:?} vs filtered {:?} on {}",
                rules(&all),
                rules(&filtered),
                event.raw
            )
            .into());
        }
    }
    Ok(())
}
