//! `palisade scan` (being built; see its issue).

use std::process::ExitCode;

/// Arguments of `palisade scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {}

pub fn run(_args: ScanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`palisade scan` is not available in this build yet")
}
