//! The PDF is checked by parsing it back with printpdf and extracting its text.

use palisade_report::ReportData;
use palisade_report::pdf::render_pdf;
use printpdf::{PdfDocument, PdfParseOptions};

use crate::common::scan;

fn extracted_text(bytes: &[u8]) -> String {
    let mut warnings = Vec::new();
    let document = PdfDocument::parse(bytes, &PdfParseOptions::default(), &mut warnings)
        .expect("the PDF parses");
    document
        .extract_text()
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn pdf_text_holds_score_controls_failures_and_drift() {
    let scanned = scan();
    let data = ReportData {
        meta: &scanned.meta,
        rollup: &scanned.rollup,
        drift: Some(&scanned.drift),
    };
    let bytes = render_pdf(&data, &scanned.evaluations).expect("renders");
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    let text = extracted_text(&bytes);
    let score = scanned.rollup.score.exact_percent().expect("evaluated");
    for expected in [
        format!("Compliance score: {score:.1}%"),
        "NIST SP 800-53 rev5 — AWS".to_string(),
        "CP-9".to_string(),
        "not_compliant".to_string(),
        // A failing resource with the property, the expected and the found value.
        "données-clients".to_string(),
        "public_access_block.block_public_acls is_true: expected null, found false".to_string(),
        "versioning.status string_equals: expected Enabled, found Suspended".to_string(),
        "Drift since the previous report".to_string(),
        "Control CP-9: compliant → not_compliant".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
}
