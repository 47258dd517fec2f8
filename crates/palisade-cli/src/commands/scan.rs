//! `palisade scan`: the posture scan of the server, offline, for CI pipelines.
//!
//! `--profile` names a built-in profile (id or name) or a profile JSON file whose controls come
//! from the built-in libraries or from `--library` files; `--rules` adds custom rules to the
//! built-in ones. `--inventory` is a JSON array of resources, an object with a `resources`
//! array, or JSON Lines; records that do not decode are reported on stderr (with their index
//! or line) and left out, the others are scanned.
//!
//! Resources are evaluated a chunk of [`CHUNK_RESOURCES`] at a time (rayon inside a chunk),
//! with a progress bar when stderr is a terminal. The summary table (or the JSON, CSV or SARIF
//! report) goes to stdout or `--output`.
//!
//! Exit status: 0; 1 when the score is below `--fail-under` (or nothing was evaluated); 2 on
//! unreadable or invalid input.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use comfy_table::Table;
use palisade_model::resource::Resource;
use palisade_posture::content::builtin;
use palisade_posture::model::{Attestation, Parameter};
use palisade_posture::scan::{ScanInput, ScanPlan};
use palisade_posture::{ControlLibrary, Profile, RollupBuilder, ScanEvaluation};
use palisade_report::{ReportData, ReportMeta};
use serde_json::Value;

/// Resources evaluated per parallel chunk.
const CHUNK_RESOURCES: usize = 2_048;

/// Output formats of `palisade scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanFormat {
    /// A summary and the controls, as tables.
    Table,
    /// The whole report as JSON (score, summaries, controls, resources, evaluations).
    Json,
    /// One row per evaluation.
    Csv,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

/// Arguments of `palisade scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// A built-in profile (id or name; see `palisade content list`) or a profile JSON file.
    #[arg(long, value_name = "NAME_OR_FILE")]
    pub profile: String,
    /// Resources: a JSON array, `{"resources": [...]}`, or JSON Lines.
    #[arg(long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// Attachment parameter value; VALUE is read as JSON when it parses, else as a string.
    /// `RULE_ID:NAME=VALUE` sets it for one rule only. Repeatable.
    #[arg(long = "params", value_name = "NAME=VALUE", value_parser = parse_parameter)]
    pub params: Vec<Parameter>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ScanFormat::Table)]
    pub format: ScanFormat,
    /// Exit 1 when the compliance score (0-100) is below this.
    #[arg(long, value_name = "SCORE")]
    pub fail_under: Option<f64>,
    /// Extra control library JSON files for a profile file. Repeatable.
    #[arg(long = "library", value_name = "FILE")]
    pub libraries: Vec<PathBuf>,
    /// Extra rule files (a JSON rule or array of rules). Repeatable.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Attestations of manual assessments (a JSON array).
    #[arg(long, value_name = "FILE")]
    pub attestations: Option<PathBuf>,
    /// Scan time (RFC 3339); defaults to now.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<DateTime<Utc>>,
    /// Write the report here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_parameter(text: &str) -> Result<Parameter, String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got \"{text}\""))?;
    let (assessment_id, name) = match key.split_once(':') {
        Some((rule, name)) => (Some(rule.to_string()), name),
        None => (None, key),
    };
    if name.is_empty() {
        return Err(format!("empty parameter name in \"{text}\""));
    }
    Ok(Parameter {
        assessment_id,
        assessment_type: None,
        parameter_name: name.to_string(),
        parameter_display_name: None,
        parameter_type: None,
        parameter_value: Some(
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string())),
        ),
    })
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// Reads resources, keeping the good ones and reporting the bad ones on stderr.
fn read_inventory(path: &Path) -> anyhow::Result<(Vec<Resource>, usize)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut resources = Vec::new();
    let mut rejected = 0;
    let mut keep = |label: String, value: Value| match serde_json::from_value::<Resource>(value) {
        Ok(resource) => {
            resources.push(resource);
            0
        }
        Err(error) => {
            eprintln!("{}: {label}: {error} (skipped)", path.display());
            1
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(items)) => {
            for (index, item) in items.into_iter().enumerate() {
                rejected += keep(format!("/{index}"), item);
            }
        }
        Ok(Value::Object(mut object)) if object.contains_key("resources") => {
            match object.remove("resources") {
                Some(Value::Array(items)) => {
                    for (index, item) in items.into_iter().enumerate() {
                        rejected += keep(format!("/resources/{index}"), item);
                    }
                }
                _ => bail!("{}: /resources must be an array", path.display()),
            }
        }
        _ => {
            for (number, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(line) {
                    Ok(value) => rejected += keep(format!("line {}", number + 1), value),
                    Err(error) => {
                        rejected += 1;
                        eprintln!(
                            "{}: line {}: invalid JSON: {error} (skipped)",
                            path.display(),
                            number + 1
                        );
                    }
                }
            }
        }
    }
    Ok((resources, rejected))
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    match scan(args) {
        Ok(code) => Ok(code),
        Err(error) => {
            eprintln!("palisade scan: {error:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let content = builtin().map_err(|error| anyhow::anyhow!("built-in content: {error}"))?;
    let mut libraries: Vec<ControlLibrary> = content.libraries.clone();
    for path in &args.libraries {
        let library: ControlLibrary = serde_json::from_value(read_json(path)?)
            .with_context(|| format!("{} is not a control library", path.display()))?;
        libraries.push(library);
    }
    let profile: Profile = match content.profile(&args.profile) {
        Some(profile) => profile.clone(),
        None if Path::new(&args.profile).exists() => {
            serde_json::from_value(read_json(Path::new(&args.profile))?)
                .with_context(|| format!("{} is not a profile", args.profile))?
        }
        None => bail!(
            "no built-in profile or file named \"{}\" (see `palisade content list`)",
            args.profile
        ),
    };
    let mut rules = content.rules.clone();
    for path in &args.rules {
        let parsed = palisade_rules::parse_rules(&read_json(path)?).map_err(|errors| {
            let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("{}: {}", path.display(), listed.join("; "))
        })?;
        // A custom rule with a built-in id replaces the built-in one.
        rules.retain(|rule| !parsed.iter().any(|custom| custom.id == rule.id));
        rules.extend(parsed);
    }
    let attestations: Vec<Attestation> = match &args.attestations {
        Some(path) => serde_json::from_value(read_json(path)?)
            .with_context(|| format!("{} is not a list of attestations", path.display()))?,
        None => Vec::new(),
    };
    let now = args.now.unwrap_or_else(Utc::now);
    let plan = ScanPlan::new(ScanInput {
        profile: &profile,
        libraries: &libraries,
        rules: &rules,
        attachment_parameters: &args.params,
        attestations: &attestations,
        now,
    })?;
    for rule in plan.rules.iter().filter(|rule| rule.broken.is_some()) {
        eprintln!(
            "warning: rule {} does not compile, its resources are skipped: {}",
            rule.rule_id,
            rule.broken.as_deref().unwrap_or_default()
        );
    }
    let (resources, rejected) = read_inventory(&args.inventory)?;

    let progress = if io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(resources.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} scanning [{bar:40}] {pos}/{len} resources ({per_sec}, {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Some(bar)
    } else {
        None
    };
    let mut builder = RollupBuilder::new(&plan);
    let mut evaluations: Vec<ScanEvaluation> = Vec::new();
    for chunk in resources.chunks(CHUNK_RESOURCES) {
        let chunk_evaluations = plan.evaluate_chunk(chunk, now);
        builder.add_chunk(chunk, &chunk_evaluations);
        evaluations.extend(chunk_evaluations);
        if let Some(bar) = &progress {
            bar.inc(chunk.len() as u64);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let rollup = builder.finish();
    let meta = ReportMeta {
        report_id: format!("offline-{}", now.format("%Y%m%dT%H%M%SZ")),
        report_type: "ondemand".into(),
        created_on: now,
        scan_time: now,
        profile_id: profile.id.clone(),
        profile_name: profile.profile_name.clone(),
        profile_version: profile.profile_version.clone(),
        attachment_id: None,
        attachment_name: None,
        instance_id: None,
    };
    let data = ReportData {
        meta: &meta,
        rollup: &rollup,
        drift: None,
    };
    let mut output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    match args.format {
        ScanFormat::Table => write_tables(&data, resources.len(), rejected, &mut output)?,
        ScanFormat::Json => {
            let document = palisade_report::json::render_json(&data, &evaluations)?;
            serde_json::to_writer_pretty(&mut output, &document)?;
            writeln!(output)?;
        }
        ScanFormat::Csv => palisade_report::csv::write_csv(&data, &evaluations, &mut output)?,
        ScanFormat::Sarif => {
            let log = palisade_report::sarif::render_sarif(&data, &evaluations);
            serde_json::to_writer_pretty(&mut output, &log)?;
            writeln!(output)?;
        }
    }
    output.flush()?;
    drop(output);

    let score = rollup.score.exact_percent();
    if let Some(threshold) = args.fail_under {
        match score {
            Some(score) if score < threshold => {
                eprintln!("compliance score {score:.1} is below --fail-under {threshold}");
                return Ok(ExitCode::from(1));
            }
            None => {
                eprintln!(
                    "nothing was evaluated, so the score cannot meet --fail-under {threshold}"
                );
                return Ok(ExitCode::from(1));
            }
            Some(_) => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_tables(
    data: &ReportData<'_>,
    resource_count: usize,
    rejected: usize,
    output: &mut dyn Write,
) -> anyhow::Result<()> {
    let rollup = data.rollup;
    let score = rollup
        .score
        .exact_percent()
        .map_or_else(|| "n/a".to_string(), |score| format!("{score:.1}%"));
    let summary = &rollup.evaluations_summary;
    let controls = &rollup.controls_summary.stats;
    let mut table = Table::new();
    table.set_header(["Profile", "Score", "Resources", "Evaluations", "Controls"]);
    table.add_row([
        data.meta.profile_name.clone(),
        score,
        if rejected > 0 {
            format!("{resource_count} ({rejected} rejected)")
        } else {
            resource_count.to_string()
        },
        format!(
            "{} pass, {} fail, {} error, {} skipped",
            summary.pass_count, summary.failure_count, summary.error_count, summary.skipped_count
        ),
        format!(
            "{} compliant, {} not compliant, {} unable, {} manual, {} n/a",
            controls.compliant_count,
            controls.not_compliant_count,
            controls.unable_to_perform_count,
            controls.user_evaluation_required_count,
            controls.not_applicable_count
        ),
    ]);
    writeln!(output, "{table}")?;
    let mut controls_table = Table::new();
    controls_table.set_header(["Control", "Status", "Pass", "Fail", "Error", "Description"]);
    for control in &rollup.controls {
        let (mut pass, mut fail, mut error) = (0, 0, 0);
        for assessment in control
            .control_specifications
            .iter()
            .flat_map(|specification| &specification.assessments)
        {
            pass += assessment.pass_count;
            fail += assessment.failure_count;
            error += assessment.error_count;
        }
        let mut description = control.control_description.clone();
        if description.chars().count() > 60 {
            description = description.chars().take(59).collect::<String>() + "…";
        }
        controls_table.add_row([
            control.control_name.clone(),
            control.stats.status.as_str().to_string(),
            pass.to_string(),
            fail.to_string(),
            error.to_string(),
            description,
        ]);
    }
    writeln!(output, "{controls_table}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parameters_parse_as_json_or_text_and_may_name_a_rule() {
        let plain = parse_parameter("min_password_length=16").expect("parses");
        assert_eq!(plain.parameter_value, Some(json!(16)));
        assert_eq!(plain.assessment_id, None);
        let scoped = parse_parameter("aws-rds-backup-retention:min_backup_retention_days=30")
            .expect("parses");
        assert_eq!(
            scoped.assessment_id.as_deref(),
            Some("aws-rds-backup-retention")
        );
        assert_eq!(scoped.parameter_name, "min_backup_retention_days");
        let text = parse_parameter("region=us east").expect("parses");
        assert_eq!(text.parameter_value, Some(json!("us east")));
        assert!(parse_parameter("novalue").is_err());
        assert!(parse_parameter("=1").is_err());
    }
}
