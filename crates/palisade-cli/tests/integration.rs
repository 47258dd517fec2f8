//! Integration tests of the `palisade` binary, one module per command.

mod sdk;
mod serve;
mod support;
