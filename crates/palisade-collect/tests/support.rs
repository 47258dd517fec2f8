//! Golden files and the service catalogue, shared by the test modules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use palisade_collect::CollectionOutput;
use serde_json::Value;

/// The crate's `tests/` directory.
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// Compares `output` with the golden file beside `input` (`<input>.expected.json`), or
/// rewrites the golden when `PALISADE_BLESS=1`. Returns a description of the difference.
pub fn check_golden(input: &Path, output: &CollectionOutput) -> Result<(), String> {
    let golden_path = PathBuf::from(format!("{}.expected.json", input.display()));
    let actual = format!(
        "{}\n",
        serde_json::to_string_pretty(output).map_err(|error| error.to_string())?
    );
    if std::env::var_os("PALISADE_BLESS").is_some() {
        std::fs::write(&golden_path, &actual).map_err(|error| error.to_string())?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(&golden_path).map_err(|error| {
        format!(
            "{}: {error} (bless with PALISADE_BLESS=1)",
            golden_path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    let first_difference = expected
        .lines()
        .zip(actual.lines())
        .enumerate()
        .find(|(_, (want, got))| want != got)
        .map(|(index, (want, got))| format!("line {}:\n  want {want}\n  got  {got}", index + 1))
        .unwrap_or_else(|| "lengths differ".into());
    Err(format!(
        "{} differs from the import (bless with PALISADE_BLESS=1): {first_difference}",
        golden_path.display()
    ))
}

/// The `(service_name, resource_kind)` pairs of `content/services.json`.
pub fn catalogue() -> BTreeSet<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../content/services.json");
    let text = std::fs::read_to_string(&path).expect("services.json is readable");
    let services: Vec<Value> = serde_json::from_str(&text).expect("services.json parses");
    let mut pairs = BTreeSet::new();
    for service in services {
        let name = service["service_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for config in service["supported_configs"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let kind = config["resource_kind"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            pairs.insert((name.clone(), kind));
        }
    }
    pairs
}

/// The pairs of `output` missing from the catalogue.
pub fn uncatalogued(output: &CollectionOutput) -> BTreeSet<(String, String)> {
    let catalogue = catalogue();
    output
        .resources
        .iter()
        .map(|resource| {
            (
                resource.service_name.clone(),
                resource.resource_kind.clone(),
            )
        })
        .filter(|pair| !catalogue.contains(pair))
        .collect()
}
