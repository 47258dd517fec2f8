//! Integration tests of the `palisade` binary, one module per command.

mod posture_sdk;
mod sdk;
mod serve;
mod support;
