//! AWS VPC flow-log text (versions 2–8, default and custom formats named by a header line), and
//! the header parser on its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_logs::flow::aws::AwsLayout;
use palisade_logs::flow::{FlowFormat, decode_flows};

fuzz_target!(|data: &[u8]| {
    let first_line = data.split(|byte| *byte == b'\n').next().unwrap_or_default();
    if let Ok(layout) = std::str::from_utf8(first_line).map(AwsLayout::from_header) {
        let _ = layout.map(|layout| layout.columns().len());
    }
    let mut records = 0u64;
    let summary = decode_flows(data, "fuzz", FlowFormat::AwsVpcText, |_record| records += 1);
    assert_eq!(summary.records, records, "the summary counts every record handed out");
    for error in &summary.errors {
        let _ = error.to_string();
    }
});
