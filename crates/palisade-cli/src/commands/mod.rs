//! One module per subcommand.

pub mod collect;
pub mod collector;
pub mod content;
pub mod demo;
pub mod hunt;
pub mod keys;
pub mod netscan;
pub mod plan;
pub mod rules;
pub mod scan;
pub mod serve;

/// Sends logs to stderr (stdout carries command output), filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
