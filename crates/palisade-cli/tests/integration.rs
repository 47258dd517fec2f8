//! Integration tests of the `palisade` binary, one module per command.

mod serve;
