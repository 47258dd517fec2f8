//! Integration tests of palisade-logs, one module per feature.

mod audit;
mod flow;
