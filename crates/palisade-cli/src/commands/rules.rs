//! `palisade rules`: validates, tests and evaluates configuration rules offline (CI pipelines).
//!
//! - `eval --rules PATH --resources FILE` streams JSON Lines resources (a file, or `-` for
//!   stdin) in chunks of [`CHUNK_LINES`] lines: each chunk is decoded and evaluated in parallel
//!   (rayon) and printed in input order before the next is read, so memory stays bounded however
//!   long the input is. Bad lines are reported on stderr with their line number and skipped.
//! - `validate PATH` prints every mistake of every rule (file, JSON pointer, message).
//! - `test PATH` runs rule test cases (the `palisade_rules::cases` format) like `opa test`.
//!
//! PATH is a JSON rule, a JSON array of rules, or a directory of `.json` files (walked
//! recursively, in name order).
//!
//! Exit status: 0; 1 when `eval --fail-on` is triggered or a test case fails; 2 on invalid rules,
//! bad resource lines, or unreadable input.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use palisade_model::resource::Resource;
use palisade_rules::cases::Case;
use palisade_rules::{Evaluation, ParameterValues, RuleSet, Status, ValidationError};
use rayon::prelude::*;
use serde_json::Value;

/// Resource lines decoded and evaluated per parallel chunk: large enough to keep both cores
/// busy, small enough that memory does not grow with the input.
const CHUNK_LINES: usize = 4_096;

/// Subcommands of `palisade rules`.
#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Evaluates rules against resources (JSON Lines), printing one result per evaluated pair.
    Eval(EvalArgs),
    /// Validates rules, printing every mistake with its JSON pointer.
    Validate(ValidateArgs),
    /// Runs rule test cases (YAML or JSON case files), like `opa test`.
    Test(TestArgs),
}

/// Output formats of `palisade rules eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    /// One JSON object per evaluated (rule, resource) pair.
    Jsonl,
    /// Aligned columns for people, then a summary line.
    Table,
}

/// Statuses accepted by `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Exit 1 when any evaluation is a failure or an error.
    Failure,
    /// Exit 1 when any evaluation is an error.
    Error,
}

/// Arguments of `palisade rules eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A JSON rule, a JSON array of rules, or a directory of them.
    #[arg(long, value_name = "PATH")]
    pub rules: PathBuf,
    /// JSON Lines of resources; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub resources: PathBuf,
    /// Parameter value, as an attachment would give it; VALUE is read as JSON when it parses
    /// (`100`, `["a","b"]`), else as a string. Repeatable.
    #[arg(long = "params", value_name = "NAME=VALUE", value_parser = parse_parameter)]
    pub params: Vec<(String, Value)>,
    /// Evaluation time (RFC 3339) for `days_less_than`; defaults to the current time.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<DateTime<Utc>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = EvalFormat::Jsonl)]
    pub format: EvalFormat,
    /// Exit with status 1 when an evaluation reaches this status.
    #[arg(long, value_enum, value_name = "STATUS")]
    pub fail_on: Option<FailOn>,
}

/// Arguments of `palisade rules validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// A JSON rule, a JSON array of rules, or a directory of them.
    pub path: PathBuf,
}

/// Arguments of `palisade rules test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// A case file or a directory of them (`.yaml`, `.yml`, `.json`, walked recursively).
    pub path: PathBuf,
}

fn parse_parameter(text: &str) -> Result<(String, Value), String> {
    let (name, raw) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got \"{text}\""))?;
    if name.is_empty() {
        return Err(format!("empty parameter name in \"{text}\""));
    }
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    Ok((name.to_string(), value))
}

fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|now| now.with_timezone(&Utc))
        .map_err(|error| format!("not an RFC 3339 timestamp: {error}"))
}

/// Runs `palisade rules …`.
pub fn run(command: RulesCommand) -> anyhow::Result<ExitCode> {
    match command {
        RulesCommand::Eval(args) => eval(args),
        RulesCommand::Validate(args) => validate(args),
        RulesCommand::Test(args) => test(args),
    }
}

/// Rule documents read from PATH, each remembered with the file it came from so errors can
/// name the file and the pointer inside it.
pub(crate) struct RuleSources {
    pub(crate) documents: Vec<Value>,
    /// For each document: its file, and its index when the file holds an array.
    origins: Vec<(PathBuf, Option<usize>)>,
}

impl RuleSources {
    pub(crate) fn load(path: &Path) -> anyhow::Result<RuleSources> {
        let files = if path.is_dir() {
            let mut files = Vec::new();
            collect_files(path, &["json"], &mut files)?;
            if files.is_empty() {
                bail!("{}: no .json rule files in the directory", path.display());
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut sources = RuleSources {
            documents: Vec::new(),
            origins: Vec::new(),
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let document: Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not valid JSON", file.display()))?;
            match document {
                Value::Array(items) => {
                    for (index, item) in items.into_iter().enumerate() {
                        sources.documents.push(item);
                        sources.origins.push((file.clone(), Some(index)));
                    }
                }
                single => {
                    sources.documents.push(single);
                    sources.origins.push((file.clone(), None));
                }
            }
        }
        Ok(sources)
    }

    pub(crate) fn compile(&self, values: &ParameterValues) -> Result<RuleSet, Vec<String>> {
        RuleSet::from_json(&Value::Array(self.documents.clone()), values)
            .map_err(|errors| errors.iter().map(|error| self.describe(error)).collect())
    }

    /// `file: /3/required_config/operator: unknown operator "x" (rule "id")`.
    fn describe(&self, error: &ValidationError) -> String {
        let (file, index) = self
            .origins
            .get(error.rule_index)
            .map(|(file, index)| (file.display().to_string(), *index))
            .unwrap_or_default();
        let pointer = match index {
            Some(index) => format!("/{index}{}", error.pointer),
            None if error.pointer.is_empty() => "/".to_string(),
            None => error.pointer.clone(),
        };
        match &error.rule_id {
            Some(rule_id) => format!("{file}: {pointer}: {} (rule \"{rule_id}\")", error.message),
            None => format!("{file}: {pointer}: {}", error.message),
        }
    }
}

fn collect_files(
    directory: &Path,
    extensions: &[&str],
    files: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(directory)
        .with_context(|| format!("reading directory {}", directory.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading directory {}", directory.display()))?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, extensions, files)?;
        } else if entry
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| extensions.contains(&extension))
        {
            files.push(entry);
        }
    }
    Ok(())
}

fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let sources = RuleSources::load(&args.path)?;
    match sources.compile(&ParameterValues::default()) {
        Ok(rule_set) => {
            println!("ok: {} rule(s) valid", rule_set.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for error in &errors {
                println!("{error}");
            }
            eprintln!("{} error(s)", errors.len());
            Ok(ExitCode::from(2))
        }
    }
}

/// Counts of what `eval` printed.
#[derive(Default)]
struct Tally {
    resources: usize,
    bad_lines: usize,
    by_status: [usize; 3],
}

fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let sources = RuleSources::load(&args.rules)?;
    let values =
        ParameterValues::from_attachment(args.params.into_iter().collect::<BTreeMap<_, _>>());
    let rule_set = match sources.compile(&values) {
        Ok(rule_set) => rule_set,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!(
                "error: {} invalid rule error(s); nothing evaluated",
                errors.len()
            );
            return Ok(ExitCode::from(2));
        }
    };
    let now = args.now.unwrap_or_else(Utc::now);
    let input: Box<dyn BufRead> = if args.resources.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(&args.resources)
            .with_context(|| format!("opening {}", args.resources.display()))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let source_name = if args.resources.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        args.resources.display().to_string()
    };
    let stdout = io::stdout();
    let mut output = BufWriter::with_capacity(1 << 16, stdout.lock());
    let table_widths = (args.format == EvalFormat::Table).then(|| {
        let rule_width = (0..rule_set.len())
            .filter_map(|index| rule_set.rule_id(index))
            .map(str::len)
            .max()
            .unwrap_or(4)
            .max(4);
        (rule_width, 36)
    });
    if let Some((rule_width, resource_width)) = table_widths {
        write_or_stop(writeln!(
            output,
            "{:<7}  {:<rule_width$}  {:<resource_width$}  REASON",
            "STATUS", "RULE", "RESOURCE"
        ))?;
    }
    let tally = match stream(
        input,
        &source_name,
        &rule_set,
        now,
        table_widths,
        &mut output,
    ) {
        Ok(tally) => tally,
        Err(error) if is_broken_pipe(&error) => return Ok(ExitCode::SUCCESS),
        Err(error) => return Err(error),
    };
    let [passes, failures, errors] = tally.by_status;
    if table_widths.is_some() {
        write_or_stop(writeln!(
            output,
            "\n{} evaluation(s) over {} resource(s): {passes} pass, {failures} failure, {errors} error",
            passes + failures + errors,
            tally.resources
        ))?;
    }
    if let Err(error) = output.flush()
        && error.kind() != io::ErrorKind::BrokenPipe
    {
        return Err(error.into());
    }
    if tally.bad_lines > 0 {
        eprintln!(
            "error: {} bad resource line(s) in {source_name} were skipped",
            tally.bad_lines
        );
        return Ok(ExitCode::from(2));
    }
    let failed = match args.fail_on {
        Some(FailOn::Failure) => failures + errors > 0,
        Some(FailOn::Error) => errors > 0,
        None => false,
    };
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|error| error.kind() == io::ErrorKind::BrokenPipe)
}

fn write_or_stop(result: io::Result<()>) -> anyhow::Result<()> {
    result.map_err(anyhow::Error::from)
}

/// Reads, evaluates and prints chunk by chunk.
fn stream(
    mut input: Box<dyn BufRead>,
    source_name: &str,
    rule_set: &RuleSet,
    now: DateTime<Utc>,
    table_widths: Option<(usize, usize)>,
    output: &mut impl Write,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut line_number = 0usize;
    let mut chunk: Vec<(usize, String)> = Vec::with_capacity(CHUNK_LINES);
    loop {
        chunk.clear();
        let mut end_of_input = false;
        while chunk.len() < CHUNK_LINES {
            let mut line = String::new();
            let read = input
                .read_line(&mut line)
                .with_context(|| format!("reading {source_name} after line {line_number}"))?;
            if read == 0 {
                end_of_input = true;
                break;
            }
            line_number += 1;
            if !line.trim().is_empty() {
                chunk.push((line_number, line));
            }
        }
        let results: Vec<Result<Vec<Evaluation>, String>> = chunk
            .par_iter()
            .map(
                |(number, line)| match serde_json::from_str::<Resource>(line) {
                    Ok(resource) => Ok(rule_set.evaluate(&resource, now)),
                    Err(error) => Err(format!("{source_name}:{number}: bad resource: {error}")),
                },
            )
            .collect();
        for result in results {
            match result {
                Ok(evaluations) => {
                    tally.resources += 1;
                    for evaluation in evaluations {
                        tally.by_status[match evaluation.status {
                            Status::Pass => 0,
                            Status::Failure => 1,
                            Status::Error => 2,
                        }] += 1;
                        match table_widths {
                            None => {
                                serde_json::to_writer(&mut *output, &evaluation)
                                    .map_err(io::Error::from)?;
                                output.write_all(b"\n")?;
                            }
                            Some(widths) => write_table_row(output, &evaluation, widths)?,
                        }
                    }
                }
                Err(message) => {
                    tally.bad_lines += 1;
                    eprintln!("{message}");
                }
            }
        }
        if end_of_input {
            return Ok(tally);
        }
    }
}

fn write_table_row(
    output: &mut impl Write,
    evaluation: &Evaluation,
    (rule_width, resource_width): (usize, usize),
) -> io::Result<()> {
    let reason = match evaluation.details.as_slice() {
        [] => String::new(),
        [first, rest @ ..] => {
            let found = match &first.found_value {
                Some(value) => value.to_string(),
                None => "missing".to_string(),
            };
            let more = if rest.is_empty() {
                String::new()
            } else {
                format!(" (+{} more)", rest.len())
            };
            format!(
                "{} {}: {} (found {found}){more}",
                first.property, first.operator, first.reason
            )
        }
    };
    writeln!(
        output,
        "{:<7}  {:<rule_width$}  {:<resource_width$}  {reason}",
        evaluation.status.as_str(),
        evaluation.rule_id,
        evaluation.resource_id
    )
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let files = if args.path.is_dir() {
        let mut files = Vec::new();
        collect_files(&args.path, &["yaml", "yml", "json"], &mut files)?;
        files
    } else {
        vec![args.path.clone()]
    };
    if files.is_empty() {
        bail!(
            "{}: no case files (.yaml, .yml, .json)",
            args.path.display()
        );
    }
    let mut passed = 0usize;
    let mut failed = 0usize;
    for file in &files {
        let outcome = std::fs::read_to_string(file)
            .map_err(|error| error.to_string())
            .and_then(|text| Case::parse(&text).map_err(|error| error.to_string()))
            .and_then(|case| case.run().map_err(|error| error.to_string()));
        match outcome {
            Ok(report) if report.passed() => {
                passed += 1;
                println!(
                    "PASS  {}  ({} check(s)) {}",
                    file.display(),
                    report.checked,
                    report.note
                );
            }
            Ok(report) => {
                failed += 1;
                println!("FAIL  {}  {}", file.display(), report.note);
                for mismatch in &report.mismatches {
                    println!("      {mismatch}");
                }
            }
            Err(error) => {
                failed += 1;
                println!("FAIL  {}  {error}", file.display());
            }
        }
    }
    println!("{}", "-".repeat(60));
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_json_then_fall_back_to_text() {
        assert_eq!(
            parse_parameter("quota=100"),
            Ok(("quota".into(), serde_json::json!(100)))
        );
        assert_eq!(
            parse_parameter("regions=[\"a\"]"),
            Ok(("regions".into(), serde_json::json!(["a"])))
        );
        assert_eq!(
            parse_parameter("region=us-south"),
            Ok(("region".into(), serde_json::json!("us-south")))
        );
        assert_eq!(
            parse_parameter("empty="),
            Ok(("empty".into(), serde_json::json!("")))
        );
        assert!(parse_parameter("novalue").is_err());
        assert!(parse_parameter("=x").is_err());
    }

    #[test]
    fn now_must_be_rfc3339() {
        assert!(parse_now("2026-01-01T00:00:00Z").is_ok());
        assert!(parse_now("yesterday").is_err());
    }
}
