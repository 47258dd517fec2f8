//! Store conformance: the same suite runs against SQLite and PostgreSQL.

mod collectors;
mod conformance;
mod decisions;
mod findings;
mod insights;
mod inventory;
mod locks;
mod scans;
mod sessions;
