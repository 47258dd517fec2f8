//! Importers over their fixture files (one case per file, named in failures), compared with
//! golden outputs.

use palisade_collect::import::{ImportKind, ImportOptions, import};

use crate::support::{check_golden, tests_dir, uncatalogued};

/// Runs every fixture of one import kind; fails listing every case that differs.
fn run_kind(kind: ImportKind) {
    let directory = tests_dir().join("import").join(kind.name());
    let mut entries: Vec<_> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| !path.to_string_lossy().ends_with(".expected.json"))
        .collect();
    entries.sort();
    assert!(
        !entries.is_empty(),
        "no fixtures in {}",
        directory.display()
    );
    let options = ImportOptions {
        collected_at: "2026-01-01T00:00:00Z".parse().expect("time"),
        account_id: "fixture".into(),
    };
    let mut failures = Vec::new();
    for path in &entries {
        let case = format!(
            "{}/{}",
            kind.name(),
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let text = std::fs::read_to_string(path).expect("fixture is readable");
        let output = import(kind, &case, &text, &options);
        if let Err(difference) = check_golden(path, &output) {
            failures.push(format!("{case}: {difference}"));
        }
        let missing = uncatalogued(&output);
        if !missing.is_empty() {
            failures.push(format!(
                "{case}: kinds missing from content/services.json: {missing:?}"
            ));
        }
        eprintln!(
            "{case}: {} resources, {} errors",
            output.resources.len(),
            output.errors.len()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn kubernetes_fixtures() {
    run_kind(ImportKind::Kubernetes);
}

#[test]
fn terraform_fixtures() {
    run_kind(ImportKind::Terraform);
}

#[test]
fn gcp_fixtures() {
    run_kind(ImportKind::Gcp);
}

#[test]
fn azure_fixtures() {
    run_kind(ImportKind::Azure);
}

#[test]
fn ibm_fixtures() {
    run_kind(ImportKind::Ibm);
}
