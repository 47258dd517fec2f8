//! `palisade rules` (being built; see its issue).

use std::process::ExitCode;

/// Subcommands of `palisade rules`.
#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Validates rules.
    Validate,
}

pub fn run(_command: RulesCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`palisade rules` is not available in this build yet")
}
