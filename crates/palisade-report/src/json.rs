//! JSON: the whole report in one document — metadata, score, summaries, controls, resources,
//! rules, drift and evaluations — in the field names of SCC v3 where SCC has them.

use palisade_posture::ScanEvaluation;
use serde_json::{Value, json};

use crate::{ReportData, ReportError};

/// Builds the JSON report.
pub fn render_json<'e>(
    data: &ReportData<'_>,
    evaluations: impl IntoIterator<Item = &'e ScanEvaluation>,
) -> Result<Value, ReportError> {
    let evaluations: Vec<&ScanEvaluation> = evaluations.into_iter().collect();
    Ok(json!({
        "report": data.meta,
        "score": data.rollup.score,
        "evaluations_summary": data.rollup.evaluations_summary,
        "controls_summary": data.rollup.controls_summary,
        "resources_summary": data.rollup.resources_summary,
        "controls": data.rollup.controls,
        "resources": data.rollup.resources,
        "rules": data.rollup.rules,
        "drift": data.drift,
        "evaluations": serde_json::to_value(evaluations)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::scan;

    #[test]
    fn report_document_holds_score_controls_and_evaluations() {
        let (meta, rollup, evaluations) = scan();
        let data = ReportData {
            meta: &meta,
            rollup: &rollup,
            drift: None,
        };
        let document = render_json(&data, &evaluations).expect("renders");
        assert_eq!(document["score"]["percent"], json!(50));
        assert_eq!(document["controls"][0]["status"], json!("not_compliant"));
        assert_eq!(document["evaluations"].as_array().map(Vec::len), Some(2));
        assert_eq!(document["report"]["report_id"], json!("r-1"));
        assert_eq!(document["drift"], Value::Null);
    }
}
