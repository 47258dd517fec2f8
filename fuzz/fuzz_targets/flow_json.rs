//! The JSON flow-log decoders: IBM Cloud VPC objects, Azure NSG (v1, v2), GCP VPC flow entries,
//! as one JSON document, an array or JSON Lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_logs::flow::{FlowFormat, decode_flows};

fuzz_target!(|data: &[u8]| {
    let mut records = 0u64;
    let summary = decode_flows(data, "fuzz", FlowFormat::Json, |_record| records += 1);
    assert_eq!(summary.records, records, "the summary counts every record handed out");
    for error in &summary.errors {
        let _ = error.to_string();
    }
});
