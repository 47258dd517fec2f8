//! `palisade plan check PLAN.json`: configuration governance for Terraform, before `apply`.
//!
//! The plan (`terraform show -json PLAN > plan.json`) is read by
//! [`palisade_model::terraform::planned_resources`]: every managed resource it creates or
//! updates becomes a resource (`service_name` the provider, `resource_kind` the Terraform type,
//! `config` the planned values). Then either
//!
//! - `--rules PATH` evaluates them offline with rule files (a rule, an array, or a directory of
//!   them; IBM Configuration Governance v1 rules — `rule_id`/`name`, `enforcement_actions` — or
//!   the engine's own form; a rule without enforcement actions counts as `disallow`, and one
//!   with `"enabled": false` is skipped), or
//! - `--server URL --key KEY` asks a Palisade server's admission endpoint, which applies the
//!   rules and templates attached to each resource's scope and logs the decisions (source
//!   `terraform`).
//!
//! Output: `table` (default), `json`, or `sarif` (for code scanning).
//!
//! Exit status: 0 when nothing is denied; 1 when any `disallow` rule is violated; 2 on bad
//! input (unreadable plan, invalid rules, server errors).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use comfy_table::Table;
use palisade_model::terraform::{PlannedResource, planned_resources};
use palisade_report::sarif::{Violation as SarifViolation, ViolationRule, render_violations};
use palisade_rules::{ParameterValues, Status};
use serde_json::{Value, json};

use super::rules::RuleSources;

/// Subcommands of `palisade plan`.
#[derive(Debug, clap::Subcommand)]
pub enum PlanCommand {
    /// Checks a Terraform plan (JSON) against configuration governance rules.
    Check(CheckArgs),
}

/// Output formats of `palisade plan check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// One row per violation, then a summary line.
    Table,
    /// One JSON document: the summary and every violation with its details.
    Json,
    /// SARIF 2.1.0: `disallow` violations as errors, `audit_log` ones as warnings.
    Sarif,
}

/// Arguments of `palisade plan check`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["rules", "server"])))]
pub struct CheckArgs {
    /// The plan as `terraform show -json` writes it.
    pub plan: PathBuf,
    /// Rule files to evaluate with, offline.
    #[arg(long, value_name = "PATH")]
    pub rules: Option<PathBuf>,
    /// A Palisade server whose attached rules and templates decide (with `--key`).
    #[arg(long, value_name = "URL", requires = "key")]
    pub server: Option<String>,
    /// An API key of the server's instance (any reading role).
    #[arg(long, env = "PALISADE_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The account the planned resources belong to (scopes on the server match it).
    #[arg(long, default_value = "")]
    pub account: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    pub format: PlanFormat,
    /// Evaluation time (RFC 3339) for time-based operators; defaults to now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<DateTime<Utc>>,
}

fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|now| now.with_timezone(&Utc))
        .map_err(|error| format!("not an RFC 3339 timestamp: {error}"))
}

/// Runs `palisade plan …`.
pub fn run(command: PlanCommand) -> anyhow::Result<ExitCode> {
    match command {
        PlanCommand::Check(args) => check(args),
    }
}

/// One violated rule on one planned resource.
#[derive(Debug, Clone, serde::Serialize)]
struct Finding {
    address: String,
    operation: &'static str,
    rule_id: String,
    rule_name: String,
    action: String,
    status: String,
    details: Value,
}

/// What the rules say about one rule id: its name, description and action.
#[derive(Debug, Clone)]
struct RuleInfo {
    name: String,
    description: String,
    action: String,
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.plan)
        .with_context(|| format!("reading {}", args.plan.display()))?;
    let plan: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", args.plan.display()))?;
    let now = args.now.unwrap_or_else(Utc::now);
    let mut planned = planned_resources(&plan, now).map_err(|error| {
        anyhow::anyhow!(
            "{}: {}: {}",
            args.plan.display(),
            error.pointer,
            error.message
        )
    })?;
    for item in &mut planned {
        item.resource.account_id.clone_from(&args.account);
    }
    let (findings, rules) = match (&args.rules, &args.server, &args.key) {
        (Some(path), _, _) => check_offline(path, &planned, now)?,
        (None, Some(server), Some(key)) => check_with_server(server, key, &planned)?,
        _ => bail!("give --rules PATH, or --server URL with --key KEY"),
    };
    let denied = findings
        .iter()
        .filter(|finding| finding.action == "disallow")
        .count();
    let stdout = std::io::stdout();
    let mut output = stdout.lock();
    match args.format {
        PlanFormat::Table => {
            if !findings.is_empty() {
                let mut table = Table::new();
                table.set_header(["RESOURCE", "RULE", "ACTION", "STATUS", "CONDITIONS"]);
                for finding in &findings {
                    table.add_row([
                        finding.address.clone(),
                        finding.rule_id.clone(),
                        finding.action.clone(),
                        finding.status.clone(),
                        conditions(&finding.details),
                    ]);
                }
                writeln!(output, "{table}")?;
            }
            writeln!(
                output,
                "{} planned resource(s) checked: {} violation(s), {denied} denied (disallow)",
                planned.len(),
                findings.len()
            )?;
        }
        PlanFormat::Json => {
            let document = json!({
                "resources_checked": planned.len(),
                "allowed": denied == 0,
                "violations": findings,
            });
            writeln!(output, "{}", serde_json::to_string_pretty(&document)?)?;
        }
        PlanFormat::Sarif => {
            let mut sarif_rules: Vec<ViolationRule> = rules
                .iter()
                .map(|(id, info)| ViolationRule {
                    id: id.clone(),
                    description: if info.description.is_empty() {
                        info.name.clone()
                    } else {
                        info.description.clone()
                    },
                    action: info.action.clone(),
                })
                .collect();
            sarif_rules.sort_by(|left, right| left.id.cmp(&right.id));
            let violations: Vec<SarifViolation> = findings
                .iter()
                .map(|finding| SarifViolation {
                    rule_id: finding.rule_id.clone(),
                    location: finding.address.clone(),
                    message: format!(
                        "{} ({}): {}",
                        finding.rule_id,
                        finding.action,
                        conditions(&finding.details)
                    ),
                    details: finding.details.clone(),
                })
                .collect();
            let log = render_violations(
                &format!("palisade/plan/{}", args.plan.display()),
                &sarif_rules,
                &violations,
            );
            writeln!(output, "{}", serde_json::to_string_pretty(&log)?)?;
        }
    }
    output.flush()?;
    Ok(if denied > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `property operator expected (found …)` of each deciding condition.
fn conditions(details: &Value) -> String {
    let parts: Vec<String> = details
        .as_array()
        .into_iter()
        .flatten()
        .map(|detail| {
            let found = match detail.get("found_value") {
                None | Some(Value::Null) => "missing".to_owned(),
                Some(value) => value.to_string(),
            };
            format!(
                "{} {} {} (found {found})",
                detail["property"].as_str().unwrap_or_default(),
                detail["operator"].as_str().unwrap_or_default(),
                detail["expected_value"]
            )
        })
        .collect();
    parts.join("; ")
}

/// The enforcement action of a rule document: the strongest it lists; `disallow` when it lists
/// none (an offline check is a gate).
fn action_of(rule: &Value) -> String {
    let Some(actions) = rule.get("enforcement_actions").and_then(Value::as_array) else {
        return "disallow".to_owned();
    };
    let names: Vec<&str> = actions
        .iter()
        .filter_map(|action| action["action"].as_str())
        .collect();
    if names.contains(&"disallow") || names.is_empty() {
        "disallow".to_owned()
    } else if names.contains(&"audit_log") {
        "audit_log".to_owned()
    } else {
        "none".to_owned()
    }
}

fn check_offline(
    path: &std::path::Path,
    planned: &[PlannedResource],
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<Finding>, BTreeMap<String, RuleInfo>)> {
    let mut sources = RuleSources::load(path)?;
    let mut rules = BTreeMap::new();
    let mut disabled = std::collections::HashSet::new();
    for document in &mut sources.documents {
        let Some(object) = document.as_object_mut() else {
            continue;
        };
        // IBM's v1 rules name themselves by `rule_id` (or only by `name` before they are
        // created); the engine wants `id`.
        if !object.contains_key("id") {
            let id = object
                .get("rule_id")
                .or_else(|| object.get("name"))
                .cloned();
            if let Some(id) = id {
                object.insert("id".into(), id);
            }
        }
        let Some(id) = object.get("id").and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        if object.get("enabled") == Some(&Value::Bool(false)) {
            disabled.insert(id.clone());
        }
        let text = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        rules.insert(
            id,
            RuleInfo {
                name: text("name"),
                description: text("description"),
                action: action_of(&Value::Object(object.clone())),
            },
        );
    }
    let rule_set = match sources.compile(&ParameterValues::default()) {
        Ok(rule_set) => rule_set,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            bail!("{} invalid rule error(s); nothing checked", errors.len());
        }
    };
    let mut findings = Vec::new();
    for item in planned {
        for evaluation in rule_set.evaluate(&item.resource, now) {
            if evaluation.status == Status::Pass || disabled.contains(&evaluation.rule_id) {
                continue;
            }
            let info = rules.get(&evaluation.rule_id);
            findings.push(Finding {
                address: item.address.clone(),
                operation: item.action.as_str(),
                rule_name: info.map(|info| info.name.clone()).unwrap_or_default(),
                action: info.map_or_else(|| "disallow".to_owned(), |info| info.action.clone()),
                status: evaluation.status.as_str().to_owned(),
                details: serde_json::to_value(&evaluation.details)?,
                rule_id: evaluation.rule_id,
            });
        }
    }
    rules.retain(|id, _| !disabled.contains(id));
    Ok((findings, rules))
}

fn check_with_server(
    server: &str,
    key: &str,
    planned: &[PlannedResource],
) -> anyhow::Result<(Vec<Finding>, BTreeMap<String, RuleInfo>)> {
    let client = palisade_client::Client::new(server, key)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let instance_id = client.whoami().await?.instance_id;
        let mut findings = Vec::new();
        let mut rules = BTreeMap::new();
        for item in planned {
            let request = json!({
                "operation": item.action.as_str(),
                "resource": item.resource,
                "source": "terraform",
            });
            let decision = client
                .admission(&instance_id, &request)
                .await
                .with_context(|| format!("asking for a decision on {}", item.address))?;
            for violation in decision["violations"].as_array().into_iter().flatten() {
                let text = |key: &str| violation[key].as_str().unwrap_or_default().to_owned();
                rules.insert(
                    text("rule_id"),
                    RuleInfo {
                        name: text("rule_name"),
                        description: text("rule_name"),
                        action: text("action"),
                    },
                );
                findings.push(Finding {
                    address: item.address.clone(),
                    operation: item.action.as_str(),
                    rule_id: text("rule_id"),
                    rule_name: text("rule_name"),
                    action: text("action"),
                    status: text("status"),
                    details: violation["details"].clone(),
                });
            }
        }
        Ok::<_, anyhow::Error>((findings, rules))
    })
}
