//! Integration tests of the `palisade` binary, one module per command.

mod collect;
mod content;
mod findings_sdk;
mod hunt;
mod netscan;
mod posture_sdk;
mod rules;
mod scan;
mod sdk;
mod serve;
mod support;
