//! A flow-log file as it arrives: gzip or not, format sniffed from its first bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_logs::flow::{FlowFormat, decode_flows, decompress_if_gzipped};

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = decompress_if_gzipped(data) else {
        return;
    };
    let mut records = 0u64;
    let summary = decode_flows(reader, "fuzz", FlowFormat::Auto, |_record| records += 1);
    assert_eq!(summary.records, records, "the summary counts every record handed out");
});
