//! Store conformance: the same suite runs against SQLite and PostgreSQL.

mod conformance;
mod findings;
mod insights;
mod inventory;
