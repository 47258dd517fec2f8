//! `palisade netscan`: runs the network detectors over flow-log files, offline.
//!
//! Reads every file under `--flows` (plain or gzipped AWS VPC text, IBM VPC objects, Azure NSG,
//! GCP JSON Lines; directories are walked recursively, S3-style trees included), loads threat
//! intelligence from `--intel` files (text, CSV or STIX 2.1), and prints the findings as a table,
//! one JSON document, or JSON Lines (one finding per line). Files are read in flow-time order
//! where their names say it (AWS object names carry `_YYYYMMDDTHHMMZ_`), since the detectors
//! close windows as flow time advances. Bad lines are reported on stderr and skipped.
//!
//! Exit status: 0, or 1 with `--fail-on SEVERITY` when a finding reaches that severity; 2 on
//! errors (an unreadable path, a bad configuration).
//!
//! The hidden `--generate DIR` writes benchmark and demo input instead: AWS version 2 flow logs
//! with planted attacks (`flows.log`), an intel feed listing the planted hosts plus decoys
//! (`intel.csv`), and the list of planted attacks (`planted.json`).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use palisade_insights::network::generator::{self, GeneratorConfig};
use palisade_insights::network::{
    FeedFormat, FeedSpec, NetworkDetectorConfig, NetworkDetectors, NetworkFinding, ParallelScan,
    ThreatIntel, parse_feed,
};
use palisade_logs::flow::{FlowDecodeSummary, FlowFormat, decompress_if_gzipped};
use palisade_model::finding::Severity;

/// Output formats of `palisade netscan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetscanFormat {
    /// Human-readable tables: findings, then a summary per detector.
    Table,
    /// One JSON document: `{"findings": […], "summary": {…}}`.
    Json,
    /// One finding per line; the summary goes to stderr.
    Jsonl,
}

/// Severities accepted by `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Any finding.
    Low,
    /// MEDIUM and above.
    Medium,
    /// HIGH and above.
    High,
    /// CRITICAL only.
    Critical,
}

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            Self::Low => Severity::Low,
            Self::Medium => Severity::Medium,
            Self::High => Severity::High,
            Self::Critical => Severity::Critical,
        }
    }
}

/// Arguments of `palisade netscan`.
#[derive(Debug, clap::Args)]
pub struct NetscanArgs {
    /// Flow-log file or directory (walked recursively); repeatable.
    #[arg(
        long = "flows",
        value_name = "PATH",
        required_unless_present = "generate"
    )]
    pub flows: Vec<PathBuf>,
    /// Threat-intelligence feed (text, CSV or STIX 2.1 JSON); repeatable.
    #[arg(long = "intel", value_name = "FILE")]
    pub intel: Vec<PathBuf>,
    /// Category of feed entries that name none (text feeds).
    #[arg(long, value_name = "CATEGORY", default_value = "malware")]
    pub intel_category: String,
    /// Detector configuration, JSON (fields not given keep their defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = NetscanFormat::Table)]
    pub format: NetscanFormat,
    /// Exit with status 1 when a finding has at least this severity.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Write generated flow logs with planted attacks into this directory, then exit.
    #[arg(long, value_name = "DIR", hide = true)]
    pub generate: Option<PathBuf>,
    /// Background records to generate (with --generate).
    #[arg(long, default_value_t = 1_000_000, hide = true)]
    pub records: u64,
    /// Seed of the generator (with --generate).
    #[arg(long, default_value_t = 1, hide = true)]
    pub seed: u64,
    /// Decoy entries in the generated intel feed (with --generate).
    #[arg(long, default_value_t = 10_000, hide = true)]
    pub intel_entries: usize,
}

pub fn run(args: NetscanArgs) -> anyhow::Result<ExitCode> {
    if let Some(directory) = &args.generate {
        return generate(directory, &args);
    }
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<NetworkDetectorConfig>(&text)
                .with_context(|| format!("{}: invalid detector configuration", path.display()))?
        }
        None => NetworkDetectorConfig::default(),
    };
    let detectors = NetworkDetectors::new(config)?;
    let intel = load_intel(&args.intel, &args.intel_category)?;
    let files = collect_flow_files(&args.flows)?;

    let total_bytes: u64 = files
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|metadata| metadata.len())
        .sum();
    let progress = if io::stderr().is_terminal() {
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };

    // Decoding and detection on every core; the findings are those of a single thread.
    let mut scan = ParallelScan::with_all_threads(&detectors, &intel);
    let mut decoding = FlowDecodeSummary {
        complete: true,
        ..FlowDecodeSummary::default()
    };
    for path in &files {
        let name = path.display().to_string();
        if let Some(bar) = &progress {
            bar.set_message(
                path.file_name()
                    .map(|file| file.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
        let file = File::open(path).with_context(|| format!("opening {name}"))?;
        let counting = CountingReader {
            inner: file,
            progress: progress.as_ref(),
        };
        let reader = decompress_if_gzipped(BufReader::with_capacity(256 * 1024, counting))
            .with_context(|| format!("reading {name}"))?;
        let summary = scan.scan(reader, &name, FlowFormat::Auto);
        decoding.absorb(summary);
    }
    let (findings, stats) = scan.finish();
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }

    for error in decoding.errors.iter().take(20) {
        eprintln!("warning: {error}");
    }
    if decoding.bad_records > 20 {
        eprintln!(
            "warning: … and {} more bad records",
            decoding.bad_records - 20
        );
    }

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format {
        NetscanFormat::Jsonl => {
            for finding in &findings {
                serde_json::to_writer(&mut out, finding)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            eprint!(
                "{}",
                summary_text(files.len(), &decoding, &stats, findings.len())
            );
        }
        NetscanFormat::Json => {
            let summary = serde_json::json!({
                "files": files.len(),
                "records": decoding.records,
                "bad_records": decoding.bad_records,
                "skipped_without_data": decoding.skipped_without_data,
                "detectors": stats.iter().map(|(kind, stats)| (kind.as_str(), stats)).collect::<std::collections::BTreeMap<_, _>>(),
            });
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({ "findings": findings, "summary": summary }),
            )?;
            out.write_all(b"\n")?;
        }
        NetscanFormat::Table => {
            if !findings.is_empty() {
                writeln!(out, "{}", findings_table(&findings))?;
            }
            write!(
                out,
                "{}",
                summary_text(files.len(), &decoding, &stats, findings.len())
            )?;
        }
    }
    out.flush()?;
    let failing = args.fail_on.is_some_and(|threshold| {
        findings
            .iter()
            .any(|finding| finding.severity >= threshold.severity())
    });
    Ok(if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Counts bytes read from the (compressed) file for the progress bar.
struct CountingReader<'bar, R> {
    inner: R,
    progress: Option<&'bar ProgressBar>,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        if let Some(bar) = self.progress {
            bar.inc(read as u64);
        }
        Ok(read)
    }
}

fn load_intel(paths: &[PathBuf], default_category: &str) -> anyhow::Result<ThreatIntel> {
    let mut feeds = Vec::new();
    for path in paths {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .with_context(|| format!("reading intel feed {}", path.display()))?;
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let format =
            FeedFormat::guess(&path.display().to_string(), &bytes[..bytes.len().min(4096)]);
        let spec = FeedSpec {
            name: name.clone(),
            format,
            default_category: default_category.to_owned(),
            default_confidence: 80,
        };
        let parsed = parse_feed(&bytes[..], &spec);
        for error in parsed.errors.iter().take(10) {
            eprintln!("warning: {}: {error}", path.display());
        }
        if parsed.errors.len() > 10 {
            eprintln!(
                "warning: {}: … and {} more bad entries",
                path.display(),
                parsed.errors.len() - 10
            );
        }
        if parsed.indicators.is_empty() && !parsed.errors.is_empty() {
            bail!("intel feed {} has no usable entry", path.display());
        }
        feeds.push((name, parsed.indicators));
    }
    Ok(ThreatIntel::build(feeds.iter().map(
        |(name, indicators)| (name.as_str(), &indicators[..]),
    )))
}

/// Lists the files to read: files as given, directories walked recursively (hidden entries
/// skipped), sorted by the flow time in their AWS object name when there is one, else by path.
fn collect_flow_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if metadata.is_dir() {
            walk(path, &mut files).with_context(|| format!("walking {}", path.display()))?;
        } else {
            files.push(path.clone());
        }
    }
    files.sort_by_cached_key(|path| (aws_object_time(path), path.clone()));
    Ok(files)
}

fn walk(directory: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), files)?;
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    Ok(())
}

/// The `YYYYMMDDTHHMMZ` part of an AWS flow-log object name (`…_20240301T1005Z_hash.log.gz`).
fn aws_object_time(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    name.split('_')
        .find(|part| {
            part.len() == 14
                && part.ends_with('Z')
                && part.as_bytes().get(8) == Some(&b'T')
                && part[..8].bytes().all(|byte| byte.is_ascii_digit())
        })
        .map(str::to_owned)
}

fn findings_table(findings: &[NetworkFinding]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_header([
        "severity",
        "type",
        "client",
        "server",
        "ports",
        "flows",
        "bytes",
        "window start",
    ]);
    for finding in findings {
        let client = if finding.src_addresses.len() > 1 {
            format!(
                "{} (+{})",
                finding.network_connection.client.address,
                finding.src_addresses.len() - 1
            )
        } else {
            finding.network_connection.client.address.to_string()
        };
        let server = if finding.dst_addresses.len() > 1 {
            format!(
                "{} (+{})",
                finding.network_connection.server.address,
                finding.dst_addresses.len() - 1
            )
        } else {
            finding.network_connection.server.address.to_string()
        };
        let mut ports: Vec<String> = finding
            .dst_ports
            .iter()
            .take(5)
            .map(u16::to_string)
            .collect();
        if finding.dst_ports.len() > 5 {
            ports.push(format!(
                "… ({})",
                finding
                    .distinct_count
                    .unwrap_or(finding.dst_ports.len() as u64)
            ));
        }
        table.add_row([
            finding.severity.to_string(),
            finding.finding_type.clone(),
            client,
            server,
            ports.join(","),
            finding.flow_count.to_string(),
            (finding.data_transferred.client_bytes + finding.data_transferred.server_bytes)
                .to_string(),
            finding.window_start.to_rfc3339(),
        ]);
    }
    table
}

fn summary_text(
    files: usize,
    decoding: &FlowDecodeSummary,
    stats: &[(
        palisade_insights::network::DetectorKind,
        palisade_insights::network::DetectorStats,
    )],
    findings: usize,
) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_header([
        "detector",
        "flows counted",
        "findings",
        "suppressed",
        "late flows",
    ]);
    for (kind, stats) in stats {
        table.add_row([
            kind.as_str().to_owned(),
            stats.flows_counted.to_string(),
            stats.findings.to_string(),
            stats.suppressed.to_string(),
            stats.late_flows.to_string(),
        ]);
    }
    format!(
        "{files} files, {} flows, {} bad records, {} without data; {findings} findings\n{table}\n",
        decoding.records, decoding.bad_records, decoding.skipped_without_data
    )
}

fn generate(directory: &Path, args: &NetscanArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("creating {}", directory.display()))?;
    let duration_seconds = (args.records / 200).clamp(6 * 3600, 7 * 24 * 3600);
    let config = GeneratorConfig {
        seed: args.seed,
        duration_seconds,
        background_records: args.records,
        internal_hosts: 500,
        external_peers: 50_000,
        ..GeneratorConfig::default()
    };
    let flows_path = directory.join("flows.log");
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(&flows_path).with_context(|| format!("creating {}", flows_path.display()))?,
    );
    let mut write_error = None;
    let traffic = generator::generate(&config, |record| {
        if write_error.is_none()
            && let Err(error) =
                palisade_logs::flow::aws::write_default_format_line(record, &mut out)
        {
            write_error = Some(error);
        }
    });
    if let Some(error) = write_error {
        return Err(error).with_context(|| format!("writing {}", flows_path.display()));
    }
    out.flush()?;
    let intel_path = directory.join("intel.csv");
    let mut intel = BufWriter::new(
        File::create(&intel_path).with_context(|| format!("creating {}", intel_path.display()))?,
    );
    writeln!(intel, "ip,category,confidence")?;
    for indicator in traffic
        .intel
        .iter()
        .chain(generator::decoy_intel(args.seed, args.intel_entries).iter())
    {
        writeln!(
            intel,
            "{},{},{}",
            indicator.network, indicator.category, indicator.confidence
        )?;
    }
    intel.flush()?;
    let planted_path = directory.join("planted.json");
    std::fs::write(
        &planted_path,
        serde_json::to_string_pretty(&traffic.planted)? + "\n",
    )
    .with_context(|| format!("writing {}", planted_path.display()))?;
    eprintln!(
        "wrote {} records to {}, {} intel entries to {}, {} planted attacks to {}",
        traffic.records,
        flows_path.display(),
        traffic.intel.len() + args.intel_entries,
        intel_path.display(),
        traffic.planted.len(),
        planted_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_object_names_sort_by_their_time() {
        let name = |text: &str| aws_object_time(Path::new(text));
        assert_eq!(
            name("123_vpcflowlogs_eu-west-1_eni-0a_20240301T1005Z_abcd.log.gz").as_deref(),
            Some("20240301T1005Z")
        );
        assert_eq!(name("flows.log"), None);
        let mut files = [
            PathBuf::from("a/1_vpcflowlogs_r_eni-b_20240301T1010Z_x.log.gz"),
            PathBuf::from("a/1_vpcflowlogs_r_eni-a_20240301T1015Z_x.log.gz"),
            PathBuf::from("a/1_vpcflowlogs_r_eni-c_20240301T1000Z_x.log.gz"),
        ];
        files.sort_by_cached_key(|path| (aws_object_time(path), path.clone()));
        assert!(
            files[0].to_string_lossy().contains("eni-c")
                && files[2].to_string_lossy().contains("eni-a")
        );
    }
}
