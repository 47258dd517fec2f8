//! The normalised network flow (filled in by the network-insights work).
