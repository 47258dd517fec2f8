//! `palisade content`: the built-in content, and OSCAL import.
//!
//! - `list` prints the built-in control libraries, profiles and rule counts per service.
//! - `import-oscal FILE` turns an OSCAL catalog or profile (JSON) into a control library JSON
//!   (stdout or `--out`). For a profile, the catalogs it imports are read from the files its
//!   `imports[].href` point to (relative paths, or back-matter resources whose `rlinks` name a
//!   local file), plus any `--catalog` given; controls whose catalog is not found keep their
//!   id without a title, with a warning.
//!
//! Exit status: 0; 2 on unreadable or invalid input.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use comfy_table::Table;
use palisade_posture::content::builtin;
use palisade_posture::model::ContentType;
use palisade_posture::oscal::{ImportOptions, import};
use serde_json::Value;

/// Subcommands of `palisade content`.
#[derive(Debug, clap::Subcommand)]
pub enum ContentCommand {
    /// Lists the built-in control libraries, profiles and rules.
    List(ListArgs),
    /// Imports an OSCAL catalog or profile as a control library.
    ImportOscal(ImportOscalArgs),
}

/// Arguments of `palisade content list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `palisade content import-oscal`.
#[derive(Debug, clap::Args)]
pub struct ImportOscalArgs {
    /// An OSCAL catalog or profile, JSON.
    #[arg(value_name = "CATALOG_OR_PROFILE")]
    pub file: PathBuf,
    /// Write the control library here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Catalogs a profile imports, when its hrefs do not point to local files. Repeatable.
    #[arg(long = "catalog", value_name = "FILE")]
    pub catalogs: Vec<PathBuf>,
    /// Library id (default: a slug of the document title).
    #[arg(long)]
    pub id: Option<String>,
    /// Append each control's statement to its description.
    #[arg(long)]
    pub statements: bool,
}

pub fn run(command: ContentCommand) -> anyhow::Result<ExitCode> {
    let result = match command {
        ContentCommand::List(args) => list(args),
        ContentCommand::ImportOscal(args) => import_oscal(args),
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("palisade content: {error:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn list(args: ListArgs) -> anyhow::Result<()> {
    let content = builtin().map_err(|error| anyhow::anyhow!("built-in content: {error}"))?;
    let mut rules_per_service: BTreeMap<&str, usize> = BTreeMap::new();
    for rule in &content.rules {
        *rules_per_service
            .entry(rule.target.service_name.as_str())
            .or_default() += 1;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let document = serde_json::json!({
            "libraries": content.libraries.iter().map(|library| serde_json::json!({
                "id": library.id, "name": library.control_library_name,
                "version": library.control_library_version, "controls": library.controls_count,
            })).collect::<Vec<_>>(),
            "profiles": content.profiles.iter().map(|profile| serde_json::json!({
                "id": profile.id, "name": profile.profile_name,
                "version": profile.profile_version, "controls": profile.controls.len(),
            })).collect::<Vec<_>>(),
            "rules": rules_per_service,
        });
        serde_json::to_writer_pretty(&mut stdout, &document)?;
        writeln!(stdout)?;
        return Ok(());
    }
    let mut libraries = Table::new();
    libraries.set_header(["Library", "Name", "Version", "Controls"]);
    for library in &content.libraries {
        libraries.add_row([
            library.id.clone(),
            library.control_library_name.clone(),
            library.control_library_version.clone(),
            library.controls_count.to_string(),
        ]);
    }
    let mut profiles = Table::new();
    profiles.set_header(["Profile", "Name", "Controls"]);
    for profile in &content.profiles {
        profiles.add_row([
            profile.id.clone(),
            profile.profile_name.clone(),
            profile.controls.len().to_string(),
        ]);
    }
    let mut rules = Table::new();
    rules.set_header(["Service", "Rules"]);
    for (service, count) in &rules_per_service {
        rules.add_row([service.to_string(), count.to_string()]);
    }
    writeln!(stdout, "{libraries}\n{profiles}\n{rules}")?;
    writeln!(stdout, "{} rules in all", content.rules.len())?;
    Ok(())
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// The local files a profile's imports point to.
fn imported_catalog_paths(profile: &Value, base: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let resources = profile
        .pointer("/back-matter/resources")
        .and_then(Value::as_array);
    for entry in profile
        .get("imports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(href) = entry.get("href").and_then(Value::as_str) else {
            continue;
        };
        let candidates: Vec<&str> = match href.strip_prefix('#') {
            Some(uuid) => resources
                .into_iter()
                .flatten()
                .filter(|resource| resource.get("uuid").and_then(Value::as_str) == Some(uuid))
                .flat_map(|resource| {
                    resource
                        .get("rlinks")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|link| link.get("href").and_then(Value::as_str))
                })
                .collect(),
            None => vec![href],
        };
        for candidate in candidates {
            // A URL is looked for by its file name next to the profile (NIST's baselines link
            // to GitHub); a relative path as written.
            let path = match candidate.split_once("://") {
                Some(_) => base.join(candidate.rsplit('/').next().unwrap_or(candidate)),
                None => base.join(candidate),
            };
            if path.is_file() && !paths.contains(&path) {
                paths.push(path);
                break;
            }
        }
    }
    paths
}

fn import_oscal(args: ImportOscalArgs) -> anyhow::Result<()> {
    let document = read_json(&args.file)?;
    let mut catalogs = Vec::new();
    if let Some(profile) = document.get("profile") {
        let base = args.file.parent().unwrap_or(Path::new("."));
        let mut paths = imported_catalog_paths(profile, base);
        paths.extend(args.catalogs.iter().cloned());
        for path in paths {
            catalogs.push(read_json(&path)?);
        }
        if catalogs.is_empty() {
            eprintln!(
                "warning: the catalogs this profile imports were not found next to it; controls \
                 keep their ids without titles (give them with --catalog FILE)"
            );
        }
    } else if !args.catalogs.is_empty() {
        bail!("--catalog only applies to OSCAL profiles");
    }
    let library = import(
        &document,
        &catalogs,
        &ImportOptions {
            library_id: args.id,
            library_type: ContentType::Custom,
            include_statements: args.statements,
        },
    )
    .map_err(|error| anyhow::anyhow!("{}: {error}", args.file.display()))?;
    let text = serde_json::to_string_pretty(&library)?;
    match &args.out {
        Some(path) => std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => println!("{text}"),
    }
    eprintln!(
        "imported {} controls into library \"{}\"",
        library.controls_count, library.id
    );
    Ok(())
}
