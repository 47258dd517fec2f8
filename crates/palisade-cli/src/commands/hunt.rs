//! `palisade hunt` (being built; see its issue).

use std::process::ExitCode;

/// Arguments of `palisade hunt`.
#[derive(Debug, clap::Args)]
pub struct HuntArgs {}

pub fn run(_args: HuntArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`palisade hunt` is not available in this build yet")
}
