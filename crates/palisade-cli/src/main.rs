//! The `palisade` binary. Each subcommand lives in its own module under `commands/`; this file
//! only parses the command line and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

// mimalloc instead of glibc's allocator: `rules eval` and scans build many small strings and
// JSON values per failing evaluation, where glibc's malloc/free took about a third of the CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Palisade: a self-hosted security and compliance center.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the API server.
    Serve(commands::serve::ServeArgs),
    /// Runs a server with a demo instance: inventory, scans, audit events and flow logs.
    Demo(commands::demo::DemoArgs),
    /// Manages API keys of a running server.
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Validates, tests and evaluates configuration rules offline.
    #[command(subcommand)]
    Rules(commands::rules::RulesCommand),
    /// Runs the network detectors over flow logs, offline.
    Netscan(commands::netscan::NetscanArgs),
    /// Hunts through audit logs with Sigma rules, offline.
    Hunt(commands::hunt::HuntArgs),
    /// Scans an inventory against a profile, offline (for CI pipelines).
    Scan(commands::scan::ScanArgs),
    /// Collects resources (AWS, this Linux host) or imports exports (Kubernetes, Terraform,
    /// GCP, Azure, IBM Cloud), writing JSON Lines or pushing to a server's inventory.
    #[command(subcommand)]
    Collect(commands::collect::CollectCommand),
    /// Runs the collector agent: registers with a one-time code, then collects the jobs the
    /// server hands it and pushes them, spooled on disk until acknowledged.
    #[command(subcommand)]
    Collector(commands::collector::CollectorCommand),
    /// Imports and inspects compliance content (control libraries, profiles, rules).
    #[command(subcommand)]
    Content(commands::content::ContentCommand),
    /// Checks Terraform plans against configuration governance rules (for CI pipelines).
    #[command(subcommand)]
    Plan(commands::plan::PlanCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Keys(command) => commands::keys::run(command),
        Command::Rules(command) => commands::rules::run(command),
        Command::Netscan(args) => commands::netscan::run(args),
        Command::Hunt(args) => commands::hunt::run(args),
        Command::Scan(args) => commands::scan::run(args),
        Command::Collect(command) => commands::collect::run(command),
        Command::Collector(command) => commands::collector::run(command),
        Command::Content(command) => commands::content::run(command),
        Command::Plan(command) => commands::plan::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
