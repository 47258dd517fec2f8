//! Store conformance: the same suite runs against SQLite and PostgreSQL.

mod conformance;
mod decisions;
mod findings;
mod insights;
mod inventory;
mod locks;
