//! Use cases that join the store and the engines, shared by route families. Handlers stay thin:
//! they extract, call a service function, and answer.

pub mod cluster;
pub mod collectors;
pub mod credentials;
pub mod documents;
pub mod findings;
pub mod governance;
pub mod insights;
pub mod notifications;
pub mod scans;
pub mod scheduler;
