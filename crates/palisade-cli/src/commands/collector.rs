//! `palisade collector run`: the collector agent of `palisade_collect::agent`, until SIGINT or
//! SIGTERM (then it pushes what it can and exits; the rest stays spooled for the next start).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use palisade_collect::agent::{AgentOptions, run as run_agent};

/// Subcommands of `palisade collector`.
#[derive(Debug, clap::Subcommand)]
pub enum CollectorCommand {
    /// Registers (once) and runs the collector agent: heartbeats, jobs, spooled pushes.
    Run(RunArgs),
}

/// Arguments of `palisade collector run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The Palisade server.
    #[arg(long, env = "PALISADE_SERVER")]
    pub server: String,
    /// The one-time code `POST /instances/{id}/v1/collectors` answered; needed only at the first
    /// start (the key it is exchanged for is kept in the state directory).
    #[arg(long, env = "PALISADE_REGISTRATION_CODE", hide_env_values = true)]
    pub registration_code: Option<String>,
    /// Where the agent keeps its identity (mode 0600) and its spool of unsent batches.
    #[arg(
        long,
        env = "PALISADE_COLLECTOR_STATE",
        default_value = "palisade-collector"
    )]
    pub state_dir: PathBuf,
    /// Seconds between heartbeats (and job list refreshes).
    #[arg(long, default_value_t = 30)]
    pub heartbeat_seconds: u64,
    /// Longest pause, in seconds, between push attempts while the server is away.
    #[arg(long, default_value_t = 60)]
    pub max_backoff_seconds: u64,
    /// Resources per pushed batch.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
}

pub fn run(command: CollectorCommand) -> anyhow::Result<ExitCode> {
    super::init_logging();
    let CollectorCommand::Run(args) = command;
    let options = AgentOptions {
        server: args.server,
        registration_code: args.registration_code,
        state_dir: args.state_dir,
        heartbeat_interval: Duration::from_secs(args.heartbeat_seconds.max(1)),
        max_backoff: Duration::from_secs(args.max_backoff_seconds.max(1)),
        batch_size: args.batch_size.max(1),
        ..AgentOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_agent(options, super::serve::shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}
