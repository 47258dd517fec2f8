//! Integration tests of the `palisade` binary, one module per command.

mod api_fuzz;
mod collect;
mod collector;
mod config_governance_sdk;
mod content;
mod demo;
mod findings_sdk;
mod hunt;
mod netscan;
mod plan;
mod posture_sdk;
mod rules;
mod scaleout;
mod scan;
mod sdk;
mod serve;
mod support;
