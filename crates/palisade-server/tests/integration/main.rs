//! Integration tests of the API server, in-process (`app(state).oneshot(request)`), over a real
//! SQLite file or PostgreSQL schema.

mod access;
mod collectors;
mod common;
mod credentials;
mod errors;
mod findings;
mod governance;
mod insights;
mod inventory;
mod notifications;
mod operations;
mod scans;
mod scheduler;
mod ui;
mod ui_browser;
