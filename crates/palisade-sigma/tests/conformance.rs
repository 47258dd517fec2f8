//! The ratchet: rule files listed in `tests/sigma.passing` must keep loading.

use std::collections::BTreeSet;
use std::path::Path;

use palisade_sigma::PackParameters;

use crate::common::{content_root, load_files};

fn passing_list() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigma.passing");
    std::fs::read_to_string(path)
        .expect("tests/sigma.passing exists")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The rule's path below `content/sigma`, found in the runtime path itself rather than against a
/// compile-time root, so a test binary built in another checkout of the repository still works.
fn relative_name(path: &Path) -> String {
    let full = path
        .canonicalize()
        .expect("rule file exists")
        .to_string_lossy()
        .replace('\\', "/");
    full.rsplit_once("/content/sigma/")
        .map(|(_, rest)| rest.to_owned())
        .expect("rule under content/sigma")
}

pub fn rule_file_loads(path: &Path) -> datatest_stable::Result<()> {
    let name = relative_name(path);
    let listed = passing_list().contains(&name);
    let (pack, errors) = load_files(&[path.to_path_buf()], &PackParameters::default());
    let loaded =
        errors.is_empty() && (!pack.detection_rules().is_empty() || pack.has_correlations());
    match (listed, loaded) {
        (true, true) | (false, false) => Ok(()),
        (true, false) => {
            Err(format!("{name} is listed in sigma.passing but no longer loads: {errors:?}").into())
        }
        (false, true) => {
            Err(format!("{name} loads: add it to tests/sigma.passing (the list only grows)").into())
        }
    }
}

pub fn passing_list_is_consistent(_path: &Path) -> datatest_stable::Result<()> {
    let root = content_root();
    let missing: Vec<String> = passing_list()
        .into_iter()
        .filter(|name| !root.join(name).is_file())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("listed in sigma.passing but missing: {missing:?}").into())
    }
}
