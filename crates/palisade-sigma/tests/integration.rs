//! Integration tests of palisade-sigma, one test per data file (datatest-stable harness):
//!
//! - `rule_file_loads`: every shipped rule file (`content/sigma/**.yml`) loads and compiles on
//!   its own if it is listed in `tests/sigma.passing`; a file that loads but is not listed fails
//!   too, so the list can only grow.
//! - `passing_list_is_consistent`: every entry of `tests/sigma.passing` names an existing file.
//! - `cloudtrail_rule_fires_and_misses`: each SigmaHQ AWS CloudTrail rule fires on an event
//!   built from its own detection and stays silent on a near miss (the same event with one
//!   value altered); `cloudtrail_events/<rule>.json` overrides the generated pair when a
//!   detection cannot be satisfied mechanically (regular expressions, field references).
//! - `case`: `tests/cases/*.yaml` — rules plus events in order, and the findings wanted.
//! - `prefilter_keeps_every_match`: on every real CloudTrail sample record (palisade-logs'
//!   test data), prefiltered evaluation finds exactly what evaluating every rule finds.

mod common;

mod cases;
mod cloudtrail_rules;
mod conformance;
mod prefilter_soundness;

datatest_stable::harness! {
    { test = conformance::rule_file_loads, root = "../../content/sigma", pattern = r"\.yml$" },
    { test = conformance::passing_list_is_consistent, root = "tests", pattern = r"sigma\.passing$" },
    { test = cloudtrail_rules::cloudtrail_rule_fires_and_misses, root = "../../content/sigma/cloud/aws/cloudtrail", pattern = r"\.yml$" },
    { test = cases::case, root = "tests/cases", pattern = r"\.yaml$" },
    { test = prefilter_soundness::prefilter_keeps_every_match, root = "../palisade-logs/tests/data/cloudtrail", pattern = r"\.json(\.gz)?$" },
}
