//! `palisade hunt`: runs Sigma rules over audit logs on disk, for incident responders.
//!
//! Files are scanned in parallel (rayon), in batches of files taken in path order (CloudTrail
//! object names sort by time); after each batch the matches that feed correlation rules are
//! correlated in event-time order, so memory is bounded by one batch of matches, not by the
//! size of the logs. Exit status: 0 no hits, 1 hits, 2 error.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use palisade_insights::activity::{
    ActivityFinding, ActivityState, CorrelationInput, ScanOptions, ScanOutput, correlate,
    scan_records,
};
use palisade_logs::audit::{decompress_if_gzip, is_audit_log_path, parse_time};
use palisade_sigma::{CompiledPack, PackParameters, RuleSource, load_pack};
use rayon::prelude::*;
use serde_json::{Value, json};

/// Files scanned in parallel before their correlation inputs are correlated.
const FILES_PER_BATCH: usize = 256;

/// Output formats of `palisade hunt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HuntFormat {
    /// A table of hits, then the summary.
    Table,
    /// One JSON array of findings (with severity, envelope and remediation).
    Json,
    /// One line per hit: `{"rule_id","title","level","time","event"}`; correlation hits carry
    /// `"group"` and `"events"` instead of `"event"`.
    Jsonl,
    /// One row per hit.
    Csv,
}

/// Arguments of `palisade hunt`.
#[derive(Debug, clap::Args)]
pub struct HuntArgs {
    /// Sigma rule files or directories (searched for .yml/.yaml); repeatable.
    #[arg(long = "rules", required = true, value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Audit log files or directory trees (CloudTrail S3 layout, .json, .jsonl, .json.gz); repeatable.
    #[arg(long = "logs", required = true, value_name = "PATH")]
    pub logs: Vec<PathBuf>,
    /// Only events at or after this time (RFC 3339, or a date: 2024-05-01).
    #[arg(long, value_parser = parse_time_argument)]
    pub from: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339, or a date).
    #[arg(long, value_parser = parse_time_argument)]
    pub to: Option<DateTime<Utc>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = HuntFormat::Table)]
    pub format: HuntFormat,
    /// Rule-pack parameter, e.g. `change_window_hours=[9,10,11]`; repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_parameter)]
    pub parameters: Vec<(String, String)>,
}

fn parse_time_argument(text: &str) -> Result<DateTime<Utc>, String> {
    if let Some(time) = parse_time(text) {
        return Ok(time);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
        .ok_or_else(|| {
            format!("`{text}` is not a time (use RFC 3339, e.g. 2024-05-01T10:00:00Z, or a date)")
        })
}

fn parse_parameter(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.trim().to_owned(), value.to_owned()))
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))
}

pub fn run(args: HuntArgs) -> anyhow::Result<ExitCode> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from >= to
    {
        bail!("--from ({from}) must be before --to ({to})");
    }
    let pack = load_rules(&args)?;
    let mut log_files = Vec::new();
    for path in &args.logs {
        collect_log_files(path, &mut log_files)
            .with_context(|| format!("reading {}", path.display()))?;
    }
    if log_files.is_empty() {
        bail!("no audit log files found under {:?}", args.logs);
    }
    let total_bytes: u64 = log_files
        .iter()
        .filter_map(|path| path.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let options = ScanOptions {
        from: args.from,
        to: args.to,
        ..ScanOptions::default()
    };
    let mut state = ActivityState::new(&pack);
    let mut findings: Vec<ActivityFinding> = Vec::new();
    let mut totals = Totals::default();
    let events_seen = std::sync::atomic::AtomicU64::new(0);
    for batch in log_files.chunks(FILES_PER_BATCH) {
        let results: Vec<FileResult> = batch
            .par_iter()
            .map(|path| scan_file(&pack, path, &options, &progress, &events_seen))
            .collect();
        let mut inputs = Vec::new();
        for result in results {
            let result = result.with_context(|| "scanning logs")?;
            totals.records += result.records;
            totals.errors += result.errors.len() as u64;
            for error in result.errors {
                progress.suspend(|| eprintln!("warning: {error}"));
            }
            findings.extend(result.findings);
            inputs.extend(result.correlation_inputs);
        }
        findings.extend(correlate(&pack, &mut state, inputs));
    }
    progress.finish_and_clear();
    findings.sort_by(|left, right| {
        left.time
            .cmp(&right.time)
            .then_with(|| left.rule_id.cmp(&right.rule_id))
    });

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        HuntFormat::Table => write_table(&mut out, &findings)?,
        HuntFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &findings)?;
            writeln!(out)?;
        }
        HuntFormat::Jsonl => {
            for finding in &findings {
                serde_json::to_writer(&mut out, &jsonl_line(finding))?;
                writeln!(out)?;
            }
        }
        HuntFormat::Csv => write_csv(&mut out, &findings)?,
    }
    out.flush()?;
    drop(out);

    let summary = summarise(&findings, &totals, log_files.len());
    if args.format == HuntFormat::Table {
        println!("{summary}");
    } else {
        eprintln!("{summary}");
    }
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn load_rules(args: &HuntArgs) -> anyhow::Result<CompiledPack> {
    let mut rule_files = Vec::new();
    for path in &args.rules {
        collect_rule_files(path, &mut rule_files)
            .with_context(|| format!("reading rules {}", path.display()))?;
    }
    let sources: Vec<RuleSource> = rule_files
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))
                .map(|text| RuleSource {
                    name: path.display().to_string(),
                    text,
                })
        })
        .collect::<anyhow::Result<_>>()?;
    let parameters = PackParameters(args.parameters.iter().cloned().collect());
    let (pack, errors) = load_pack(&sources, &parameters);
    for error in &errors {
        eprintln!("warning: rule not loaded: {error}");
    }
    if pack.detection_rules().is_empty() {
        bail!("no rule could be loaded from {:?}", args.rules);
    }
    Ok(pack)
}

fn collect_rule_files(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_rule_files(&entry, files)?;
        } else if entry
            .extension()
            .is_some_and(|extension| extension == "yml" || extension == "yaml")
        {
            files.push(entry);
        }
    }
    Ok(())
}

fn collect_log_files(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_log_files(&entry, files)?;
        } else if is_audit_log_path(&entry) {
            files.push(entry);
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Totals {
    records: u64,
    errors: u64,
}

struct ScannedFile {
    records: u64,
    findings: Vec<ActivityFinding>,
    correlation_inputs: Vec<CorrelationInput>,
    errors: Vec<String>,
}

type FileResult = anyhow::Result<ScannedFile>;

/// Counts bytes read from the file (compressed, like the progress bar's total).
struct CountingReader<'bar, R> {
    inner: R,
    bar: &'bar ProgressBar,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.bar.inc(read as u64);
        Ok(read)
    }
}

fn scan_file(
    pack: &CompiledPack,
    path: &Path,
    options: &ScanOptions,
    bar: &ProgressBar,
    events_seen: &std::sync::atomic::AtomicU64,
) -> FileResult {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let counting = CountingReader { inner: file, bar };
    let reader = decompress_if_gzip(BufReader::with_capacity(256 * 1024, counting))
        .with_context(|| format!("reading {}", path.display()))?;
    let source_name = path.display().to_string();
    let mut scanned = ScannedFile {
        records: 0,
        findings: Vec::new(),
        correlation_inputs: Vec::new(),
        errors: Vec::new(),
    };
    let stats = {
        let mut sink = |output: ScanOutput| match output {
            ScanOutput::Finding(finding) => scanned.findings.push(*finding),
            ScanOutput::CorrelationInput(input) => scanned.correlation_inputs.push(*input),
            ScanOutput::DecodeError(error) => scanned.errors.push(error.to_string()),
            ScanOutput::Progress(records) => {
                let total =
                    events_seen.fetch_add(records, std::sync::atomic::Ordering::Relaxed) + records;
                bar.set_message(format!("{total} events"));
            }
        };
        scan_records(pack, reader, &source_name, options, &mut sink)
    };
    scanned.records = stats.records;
    Ok(scanned)
}

fn time_text(finding: &ActivityFinding) -> Value {
    finding.time.map_or(Value::Null, |time| {
        Value::String(time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    })
}

/// The documented `jsonl` shape: detection hits carry `event`, correlation hits `group` and `events`.
fn jsonl_line(finding: &ActivityFinding) -> Value {
    let mut line = json!({
        "rule_id": finding.rule_id,
        "title": finding.title,
        "level": finding.level.map(|level| level.as_str()),
        "time": time_text(finding),
    });
    if let Some(group) = &finding.group {
        line["group"] = Value::Object(group.clone());
        line["events"] = Value::Array(finding.events.clone());
    } else {
        line["event"] = finding.event.clone().unwrap_or(Value::Null);
    }
    line
}

fn cell(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

fn write_table(out: &mut dyn Write, findings: &[ActivityFinding]) -> anyhow::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.set_header(["time", "level", "rule", "account", "initiator", "target"]);
    for finding in findings {
        let time = finding
            .time
            .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let title = match &finding.group {
            Some(group) => format!(
                "{} ({} events, {})",
                finding.title,
                finding.events.len(),
                Value::Object(group.clone())
            ),
            None => finding.title.clone(),
        };
        table.add_row([
            cell(time.as_deref()),
            cell(finding.level.map(|level| level.as_str())),
            title,
            cell(finding.account.as_deref()),
            cell(finding.initiator.as_deref()),
            cell(finding.target.as_deref()),
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}

/// Quotes a CSV field when needed (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn write_csv(out: &mut dyn Write, findings: &[ActivityFinding]) -> anyhow::Result<()> {
    writeln!(
        out,
        "rule_id,title,level,severity,time,account,initiator,target,group,event_count,source"
    )?;
    for finding in findings {
        let time = finding
            .time
            .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        let group = finding
            .group
            .as_ref()
            .map(|group| Value::Object(group.clone()).to_string());
        let event_count = if finding.group.is_some() {
            finding.events.len()
        } else {
            1
        };
        let source = finding
            .origin
            .as_ref()
            .map(|origin| format!("{}:{}", origin.source, origin.position.line));
        let fields = [
            finding.rule_id.clone(),
            finding.title.clone(),
            finding
                .level
                .map(|level| level.as_str().to_owned())
                .unwrap_or_default(),
            finding.severity.as_str().to_owned(),
            time.unwrap_or_default(),
            finding.account.clone().unwrap_or_default(),
            finding.initiator.clone().unwrap_or_default(),
            finding.target.clone().unwrap_or_default(),
            group.unwrap_or_default(),
            event_count.to_string(),
            source.unwrap_or_default(),
        ];
        let row: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        writeln!(out, "{}", row.join(","))?;
    }
    Ok(())
}

fn summarise(findings: &[ActivityFinding], totals: &Totals, files: usize) -> String {
    let mut per_rule: BTreeMap<(String, String), usize> = BTreeMap::new();
    for finding in findings {
        *per_rule
            .entry((finding.title.clone(), finding.rule_id.clone()))
            .or_default() += 1;
    }
    let mut text = format!(
        "{} hit(s) from {} rule(s) in {} event(s) of {} file(s){}",
        findings.len(),
        per_rule.len(),
        totals.records,
        files,
        if totals.errors > 0 {
            format!(", {} unreadable record(s) skipped", totals.errors)
        } else {
            String::new()
        }
    );
    for ((title, rule_id), count) in &per_rule {
        text.push_str(&format!("\n  {count:>6}  {title} ({rule_id})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arguments_accept_rfc3339_and_dates() {
        assert_eq!(
            parse_time_argument("2024-05-01").map(|time| time.to_rfc3339()),
            Ok("2024-05-01T00:00:00+00:00".to_owned())
        );
        assert!(parse_time_argument("2024-05-01T10:00:00+02:00").is_ok());
        assert!(parse_time_argument("yesterday").is_err());
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn parameters_split_on_the_first_equals_sign() {
        assert_eq!(
            parse_parameter("a=b=c"),
            Ok(("a".to_owned(), "b=c".to_owned()))
        );
        assert!(parse_parameter("novalue").is_err());
    }
}
