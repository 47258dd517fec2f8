//! Integration tests of palisade-insights, one module per feature.

mod network;
