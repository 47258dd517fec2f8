//! A whole audit-log input as a file gives it: gzip or not, any container (CloudTrail object,
//! JSON array, JSON Lines, concatenated objects), records of any format. The first byte picks the
//! format hint. Every record must come back as an event or an error, never a panic, and the
//! iteration must end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_logs::audit::{AuditReader, FormatHint, decompress_if_gzip};
use palisade_model::event::AuditSourceFormat;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let hint = match selector % 5 {
        0 => FormatHint::Detect,
        slot => FormatHint::Fixed(AuditSourceFormat::ALL[usize::from(slot - 1)]),
    };
    let Ok(reader) = decompress_if_gzip(input) else {
        return;
    };
    // A gzip bomb could expand far; a bounded number of records keeps each run short.
    for result in AuditReader::new(reader, "fuzz", hint).take(10_000) {
        if let Err(error) = result {
            // Formatting the error is part of the contract (it names source, line and offset).
            let _ = error.to_string();
        }
    }
});
