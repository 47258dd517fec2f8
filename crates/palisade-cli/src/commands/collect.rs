//! `palisade collect aws|host|import`: runs a collector or an importer of `palisade-collect` and
//! writes the normalised resources as JSON Lines (stdout or `--out`), or pushes them to a
//! server's inventory (`--server` + `--key`, in batches of [`PUSH_BATCH`]).
//!
//! On a terminal, stderr shows a progress bar per resource type while collecting; at the end a
//! summary table (resources per kind, errors) and every error with its source and location.
//!
//! Exit status: 0 when everything was read; 1 when some sources or records failed (the rest
//! was still written or pushed); 2 when nothing could start (no credentials, unreadable
//! output).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, bail};
use chrono::Utc;
use comfy_table::Table;
use palisade_collect::aws::{AwsConfig, AwsOverrides, collect_aws};
use palisade_collect::host::{HostConfig, collect_host};
use palisade_collect::import::{ImportKind, ImportOptions, import};
use palisade_collect::{CollectionError, CollectionOutput, NoProgress, Progress};

/// Resources per inventory push (well under the server's default 10 MiB body limit).
const PUSH_BATCH: usize = 1_000;

/// Where the resources go.
#[derive(Debug, clap::Args)]
pub struct Destination {
    /// Write JSON Lines to this file (default: stdout).
    #[arg(long, value_name = "FILE.jsonl", conflicts_with = "server")]
    pub out: Option<PathBuf>,
    /// Push to this server's inventory instead of writing a file.
    #[arg(long, env = "PALISADE_SERVER", requires = "key")]
    pub server: Option<String>,
    /// An API key allowed to push data (collector, ingest, editor or admin).
    #[arg(long, env = "PALISADE_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

/// Subcommands of `palisade collect`.
#[derive(Debug, clap::Subcommand)]
pub enum CollectCommand {
    /// Collects an AWS account through the AWS APIs (credentials as every AWS tool reads them).
    Aws {
        /// Regions to collect, comma-separated (default: every enabled region).
        #[arg(long, value_delimiter = ',', value_name = "R,…")]
        regions: Vec<String>,
        /// One endpoint for every AWS service (an emulator or a proxy); else AWS_ENDPOINT_URL.
        #[arg(long, value_name = "URL")]
        endpoint_url: Option<String>,
        /// The profile of ~/.aws/credentials and ~/.aws/config; else AWS_PROFILE.
        #[arg(long)]
        profile: Option<String>,
        /// Regions collected at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        #[command(flatten)]
        destination: Destination,
    },
    /// Collects this Linux host (sshd, sysctl, accounts, file modes, ports, packages, …).
    Host {
        /// Read the facts under this directory instead of `/` (a mounted image); runs no
        /// commands then.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// The resource's account id (a site or data centre).
        #[arg(long, default_value = "")]
        account_id: String,
        #[command(flatten)]
        destination: Destination,
    },
    /// Imports exports: kubernetes, terraform, gcp, azure or ibm.
    Import {
        /// What produced the files.
        kind: ImportKind,
        /// The export files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The account id when the export has none (cluster name, Terraform workspace).
        #[arg(long, default_value = "")]
        account_id: String,
        #[command(flatten)]
        destination: Destination,
    },
}

pub fn run(command: CollectCommand) -> anyhow::Result<ExitCode> {
    super::init_logging();
    let started = std::time::Instant::now();
    let bars = TerminalProgress::new();
    let progress: &dyn Progress = match &bars {
        Some(bars) => bars,
        None => &NoProgress,
    };
    let now = Utc::now();
    let (output, destination) = match command {
        CollectCommand::Aws {
            regions,
            endpoint_url,
            profile,
            concurrency,
            destination,
        } => {
            let overrides = AwsOverrides {
                credentials: None,
                profile,
                regions,
                endpoint_url,
                concurrency: Some(concurrency),
            };
            let config = AwsConfig::from_environment(&overrides)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let output = runtime.block_on(collect_aws(&config, progress, now));
            (output, destination)
        }
        CollectCommand::Host {
            root,
            account_id,
            destination,
        } => {
            let config = HostConfig {
                run_commands: root.is_none(),
                root: root.unwrap_or_else(|| PathBuf::from("/")),
                account_id,
            };
            progress.started("linux/host");
            let output = collect_host(&config, now);
            progress.finished("linux/host", output.resources.len(), output.errors.len());
            (output, destination)
        }
        CollectCommand::Import {
            kind,
            paths,
            account_id,
            destination,
        } => {
            let options = ImportOptions {
                collected_at: now,
                account_id,
            };
            let mut output = CollectionOutput::default();
            let label = format!("import {}", kind.name());
            for path in &paths {
                progress.started(&label);
                let source = path.display().to_string();
                let part = match std::fs::read(path) {
                    Ok(bytes) => import(kind, &source, &String::from_utf8_lossy(&bytes), &options),
                    Err(error) => CollectionOutput {
                        resources: Vec::new(),
                        errors: vec![CollectionError::new(
                            source,
                            None,
                            format!("cannot read: {error}"),
                        )],
                    },
                };
                progress.finished(&label, part.resources.len(), part.errors.len());
                output.extend(part);
            }
            (output, destination)
        }
    };
    if let Some(bars) = &bars {
        bars.clear();
    }
    let mut errors = output.errors.clone();
    deliver(&output, &destination, &mut errors)?;
    summary(&output, &errors, started.elapsed());
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes or pushes the resources; records refused by the server join `errors`.
fn deliver(
    output: &CollectionOutput,
    destination: &Destination,
    errors: &mut Vec<CollectionError>,
) -> anyhow::Result<()> {
    if let (Some(server), Some(key)) = (&destination.server, &destination.key) {
        let client = palisade_client::Client::new(server, key)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(async {
            let instance_id = client.whoami().await?.instance_id;
            let (mut stored, mut duplicates) = (0, 0);
            for (batch_index, batch) in output.resources.chunks(PUSH_BATCH).enumerate() {
                let outcome = client
                    .push_inventory_to(&instance_id, batch)
                    .await
                    .with_context(|| format!("pushing batch {} to {server}", batch_index + 1))?;
                stored += outcome.stored;
                duplicates += outcome.duplicates;
                for rejected in outcome.rejected {
                    let position = batch_index * PUSH_BATCH + rejected.index;
                    let message = rejected
                        .errors
                        .iter()
                        .map(|error| error.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ");
                    errors.push(CollectionError::new(
                        "server",
                        Some(
                            rejected
                                .id
                                .unwrap_or_else(|| format!("resource {position}")),
                        ),
                        format!("rejected: {message}"),
                    ));
                }
            }
            eprintln!("pushed to {server}: {stored} stored, {duplicates} already there");
            anyhow::Ok(())
        });
    }
    if destination.server.is_some() {
        bail!("--server needs --key (or PALISADE_KEY)");
    }
    let mut writer: Box<dyn Write> = match &destination.out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    for resource in &output.resources {
        serde_json::to_writer(&mut writer, resource)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()?;
    Ok(())
}

/// The summary on stderr: resources per kind, then every error.
fn summary(output: &CollectionOutput, errors: &[CollectionError], elapsed: std::time::Duration) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for resource in &output.resources {
        *counts
            .entry(format!(
                "{}/{}",
                resource.service_name, resource.resource_kind
            ))
            .or_default() += 1;
    }
    let mut error_counts: BTreeMap<String, usize> = BTreeMap::new();
    for error in errors {
        *error_counts.entry(error.source.clone()).or_default() += 1;
    }
    let mut table = Table::new();
    table.set_header(vec!["kind", "resources"]);
    for (kind, count) in &counts {
        table.add_row(vec![kind.clone(), count.to_string()]);
    }
    table.add_row(vec!["total".to_owned(), output.resources.len().to_string()]);
    eprintln!("{table}");
    if !errors.is_empty() {
        let mut error_table = Table::new();
        error_table.set_header(vec!["source", "errors"]);
        for (source, count) in &error_counts {
            error_table.add_row(vec![source.clone(), count.to_string()]);
        }
        eprintln!("{error_table}");
        for error in errors {
            eprintln!("error: {error}");
        }
    }
    eprintln!(
        "{} resources, {} errors in {:.1} s",
        output.resources.len(),
        errors.len(),
        elapsed.as_secs_f64()
    );
}

/// One spinner per resource type, counting what each found (stderr, terminals only).
struct TerminalProgress {
    bars: indicatif::MultiProgress,
    by_type: Mutex<HashMap<String, (indicatif::ProgressBar, usize, usize)>>,
}

impl TerminalProgress {
    fn new() -> Option<Self> {
        io::stderr().is_terminal().then(|| Self {
            bars: indicatif::MultiProgress::new(),
            by_type: Mutex::new(HashMap::new()),
        })
    }

    fn clear(&self) {
        let _ = self.bars.clear();
    }
}

impl Progress for TerminalProgress {
    fn started(&self, resource_type: &str) {
        let Ok(mut by_type) = self.by_type.lock() else {
            return;
        };
        let entry = by_type.entry(resource_type.to_owned()).or_insert_with(|| {
            let bar = self.bars.add(indicatif::ProgressBar::new(0));
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} {prefix:24} {pos}/{len} {msg}")
            {
                bar.set_style(style);
            }
            bar.set_prefix(resource_type.to_owned());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            (bar, 0, 0)
        });
        entry.0.inc_length(1);
    }

    fn finished(&self, resource_type: &str, count: usize, errors: usize) {
        let Ok(mut by_type) = self.by_type.lock() else {
            return;
        };
        if let Some((bar, total, total_errors)) = by_type.get_mut(resource_type) {
            *total += count;
            *total_errors += errors;
            bar.inc(1);
            bar.set_message(format!("{total} resources, {total_errors} errors"));
            if bar.position() == bar.length().unwrap_or(0) {
                bar.finish();
            }
        }
    }
}
