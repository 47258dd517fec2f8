//! `palisade netscan` (being built; see its issue).

use std::process::ExitCode;

/// Arguments of `palisade netscan`.
#[derive(Debug, clap::Args)]
pub struct NetscanArgs {}

pub fn run(_args: NetscanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`palisade netscan` is not available in this build yet")
}
