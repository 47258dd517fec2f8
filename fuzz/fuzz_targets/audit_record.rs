//! One audit record's bytes through `decode_record` with every format hint: recognition and
//! normalisation of CloudTrail, Activity Tracker (CADF), Kubernetes audit and generic JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_logs::audit::{FormatHint, decode_record};
use palisade_model::event::AuditSourceFormat;

fuzz_target!(|data: &[u8]| {
    let hints = std::iter::once(FormatHint::Detect)
        .chain(AuditSourceFormat::ALL.into_iter().map(FormatHint::Fixed));
    for hint in hints {
        match decode_record(data, hint) {
            Ok(event) => {
                let _ = serde_json::to_string(&event);
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
});
