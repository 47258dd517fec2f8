//! The normalised resource (filled in by the rule-engine work).
