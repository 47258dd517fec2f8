//! The crate's one integration-test binary: every case file under `tests/cases` is one test
//! (datatest-stable, so `cargo nextest` lists and runs them one by one).
//!
//! Each case runs twice: through the compiled evaluator (what `palisade rules test` does) and
//! through the reference evaluator in `palisade_rules::naive`; both must meet the expectations.

use std::path::Path;

use palisade_rules::cases::Case;
use palisade_rules::naive;

fn run_case_file(path: &Path, contents: String) -> datatest_stable::Result<()> {
    let case = Case::parse(&contents).map_err(|error| format!("{}: {error}", path.display()))?;
    let compiled = case
        .run()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    if !compiled.passed() {
        return Err(format!(
            "{} ({}):\n  {}",
            path.display(),
            compiled.note,
            compiled.mismatches.join("\n  ")
        )
        .into());
    }
    let reference = case
        .run_with(|input| {
            input
                .resources
                .iter()
                .flat_map(|resource| {
                    naive::evaluate(input.rules, input.values, resource, input.now)
                })
                .collect()
        })
        .map_err(|error| format!("{}: {error}", path.display()))?;
    if !reference.passed() {
        return Err(format!(
            "{} ({}), reference evaluator:\n  {}",
            path.display(),
            reference.note,
            reference.mismatches.join("\n  ")
        )
        .into());
    }
    Ok(())
}

datatest_stable::harness! {
    { test = run_case_file, root = "tests/cases", pattern = r"\.(yaml|yml|json)$" },
}
