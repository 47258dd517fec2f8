//! The OSCAL assessment-results document is validated with compliance-trestle (PyPI), whose
//! pydantic models implement the OSCAL 1.1.2 JSON schema. The interpreter comes from
//! `PALISADE_TRESTLE_PYTHON`, default `/var/tmp/palisade-venv/trestle/bin/python`; create it
//! with `python3 -m venv /var/tmp/palisade-venv/trestle &&
//! /var/tmp/palisade-venv/trestle/bin/pip install compliance-trestle`.

use std::process::Command;

use palisade_report::ReportData;
use palisade_report::oscal::render_assessment_results;

use crate::common::scan;

const VALIDATE: &str = r#"
import json, sys
from trestle.oscal.assessment_results import AssessmentResults
document = json.load(open(sys.argv[1]))
results = AssessmentResults.parse_obj(document["assessment-results"])
print(len(results.results[0].findings or []), len(results.results[0].observations or []))
"#;

#[test]
fn assessment_results_validate_with_compliance_trestle() {
    let scanned = scan();
    let data = ReportData {
        meta: &scanned.meta,
        rollup: &scanned.rollup,
        drift: None,
    };
    let document = render_assessment_results(&data, &scanned.evaluations);
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("assessment-results.json");
    std::fs::write(&path, serde_json::to_vec(&document).expect("encodes")).expect("written");
    let python = std::env::var("PALISADE_TRESTLE_PYTHON")
        .unwrap_or_else(|_| "/var/tmp/palisade-venv/trestle/bin/python".into());
    let output = Command::new(&python)
        .arg("-c")
        .arg(VALIDATE)
        .arg(&path)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run {python} ({error}); see this module's docs to install trestle")
        });
    assert!(
        output.status.success(),
        "trestle rejects the document:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let counts = String::from_utf8_lossy(&output.stdout);
    let findings = scanned
        .rollup
        .controls
        .iter()
        .filter(|control| control.stats.status != palisade_posture::ComplianceStatus::NotApplicable)
        .count();
    assert_eq!(
        counts.trim(),
        format!("{findings} {}", scanned.rollup.rules.len()),
        "findings and observations as trestle reads them"
    );
}
