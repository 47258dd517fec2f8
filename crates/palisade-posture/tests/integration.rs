//! The crate's one integration-test binary.
//!
//! - Every file in `content/fixtures` is one test (datatest-stable): the fixture of the built-in
//!   rule with the same name, in the rule-case format of `palisade_rules::cases`, without its
//!   `rules` — the built-in rule is injected, so a fixture cannot drift from the rule it tests.
//!   Each fixture holds a compliant resource that must pass and a changed one that must fail.
//! - `scan_of_builtin_profile` runs every predefined profile over all fixture resources.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use palisade_model::resource::Resource;
use palisade_posture::content::{builtin, builtin_rule_documents};
use palisade_posture::rollup::ComplianceStatus;
use palisade_posture::scan::{ScanInput, ScanPlan};
use palisade_posture::{RollupBuilder, ScopeSelector};
use palisade_rules::cases::Case;
use serde_json::Value;

fn rule_documents() -> &'static BTreeMap<String, Value> {
    static DOCUMENTS: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        builtin_rule_documents()
            .expect("built-in rules parse")
            .into_iter()
            .filter_map(|document| {
                let id = document.get("id")?.as_str()?.to_string();
                Some((id, document))
            })
            .collect()
    })
}

fn run_rule_fixture(path: &Path, contents: String) -> datatest_stable::Result<()> {
    let rule_id = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .ok_or_else(|| format!("{}: no file name", path.display()))?;
    let rule = rule_documents()
        .get(rule_id)
        .ok_or_else(|| format!("{}: no built-in rule \"{rule_id}\"", path.display()))?;
    let mut case =
        Case::parse(&contents).map_err(|error| format!("{}: {error}", path.display()))?;
    if case.rules.is_some() {
        return Err(format!("{}: fixtures must not carry their rule", path.display()).into());
    }
    let statuses: Vec<String> = case
        .want
        .iter()
        .map(|want| format!("{:?}", want.status).to_lowercase())
        .collect();
    if !(statuses.contains(&"pass".to_string()) && statuses.contains(&"failure".to_string())) {
        return Err(format!(
            "{}: a fixture needs a passing and a failing resource",
            path.display()
        )
        .into());
    }
    case.rules = Some(rule.clone());
    let report = case
        .run()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    if !report.passed() {
        return Err(format!(
            "{} ({}):\n  {}",
            path.display(),
            report.note,
            report.mismatches.join("\n  ")
        )
        .into());
    }
    Ok(())
}

fn every_fixture_resource() -> Vec<Resource> {
    let mut resources = Vec::new();
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../content/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&directory)
        .expect("fixtures directory")
        .map(|entry| entry.expect("entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let case = Case::parse(&std::fs::read_to_string(&path).expect("readable"))
            .expect("fixture parses");
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default();
        for value in case.resources {
            let mut resource: Resource = serde_json::from_value(value).expect("resource");
            resource.id = format!("{stem}/{}", resource.id);
            resources.push(resource);
        }
    }
    resources
}

/// Each predefined profile (one test per profile file) scans the resources of every fixture:
/// because every fixture has a failing resource, every automated control is not compliant,
/// and manual ones wait for a user.
fn scan_of_builtin_profile(path: &Path, _contents: String) -> datatest_stable::Result<()> {
    let content = builtin().map_err(|error| error.to_string())?;
    let resources = every_fixture_resource();
    let now = "2026-01-01T00:00:00Z".parse().map_err(|_| "time")?;
    let profile_id = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default();
    let profile = content
        .profile(profile_id)
        .ok_or_else(|| format!("{}: not a built-in profile", path.display()))?;
    {
        let plan = ScanPlan::new(ScanInput {
            profile,
            libraries: &content.libraries,
            rules: &content.rules,
            attachment_parameters: &[],
            attestations: &[],
            now,
        })
        .map_err(|error| format!("{}: {error}", profile.id))?;
        let in_scope: Vec<Resource> = ScopeSelector::everything()
            .filter(&resources)
            .into_iter()
            .cloned()
            .collect();
        let mut builder = RollupBuilder::new(&plan);
        for chunk in in_scope.chunks(50) {
            builder.add_chunk(chunk, &plan.evaluate_chunk(chunk, now));
        }
        let rollup = builder.finish();
        if rollup.evaluations_summary.error_count != 0 {
            return Err(format!(
                "{}: {} evaluation errors",
                profile.id, rollup.evaluations_summary.error_count
            )
            .into());
        }
        if rollup.score.total_count == 0 {
            return Err(format!("{}: nothing evaluated", profile.id).into());
        }
        for control in &rollup.controls {
            let automated = control
                .control_specifications
                .iter()
                .flat_map(|specification| &specification.assessments)
                .any(|assessment| assessment.assessment_type == "automated");
            let expected = if automated {
                ComplianceStatus::NotCompliant
            } else {
                ComplianceStatus::UserEvaluationRequired
            };
            if control.stats.status != expected {
                return Err(format!(
                    "{}: control {} is {:?}, expected {expected:?}",
                    profile.id, control.control_name, control.stats.status
                )
                .into());
            }
        }
    }
    Ok(())
}

datatest_stable::harness! {
    { test = run_rule_fixture, root = "../../content/fixtures", pattern = r"\.yaml$" },
    { test = scan_of_builtin_profile, root = "../../content/profiles", pattern = r"\.json$" },
}
