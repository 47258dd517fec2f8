//! Threat-intelligence feeds: text, CSV (with or without a header) and STIX 2.1 bundles, chosen by
//! the first byte. Parsed indicators are built into the lookup index, and every indicator must
//! then be found by a lookup of its own network address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_insights::network::intel::{FeedFormat, FeedSpec, ThreatIntel, parse_feed};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let format = match selector % 4 {
        0 => FeedFormat::Text,
        1 => FeedFormat::Csv,
        2 => FeedFormat::Stix,
        _ => FeedFormat::guess("feed", input),
    };
    let spec = FeedSpec {
        name: "fuzz".into(),
        format,
        default_category: "malware".into(),
        default_confidence: 80,
    };
    let parsed = parse_feed(input, &spec);
    for error in &parsed.errors {
        let _ = error.to_string();
    }
    let intel = ThreatIntel::build([("fuzz", &parsed.indicators[..])]);
    for indicator in &parsed.indicators {
        assert!(indicator.confidence <= 100, "confidence is capped at 100");
        assert!(
            intel.lookup(indicator.network.network()).is_some(),
            "a listed network's own address is found"
        );
    }
});
