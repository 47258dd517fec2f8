//! `palisade content` (being built; see its issue).

use std::process::ExitCode;

/// Subcommands of `palisade content`.
#[derive(Debug, clap::Subcommand)]
pub enum ContentCommand {
    /// Imports an OSCAL catalog or profile as a control library.
    ImportOscal,
}

pub fn run(_command: ContentCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`palisade content` is not available in this build yet")
}
