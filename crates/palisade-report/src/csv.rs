//! CSV: one row per evaluation, written as the evaluations stream in (what `GET
//! /reports/{id}/download` with `Accept: text/csv` returns). A failed evaluation's deciding
//! conditions are joined in the `property`, `expected_value` and `found_value` columns with
//! ` | `, in the same order.

use std::io::Write;

use palisade_posture::ScanEvaluation;

use crate::{Index, ReportData, ReportError, cell};

/// The header row.
pub const COLUMNS: [&str; 17] = [
    "report_id",
    "scan_time",
    "profile",
    "controls",
    "rule_id",
    "rule_description",
    "resource_id",
    "resource_name",
    "service_name",
    "resource_kind",
    "account_id",
    "environment",
    "status",
    "property",
    "operator",
    "expected_value",
    "found_value",
];

/// Writes the CSV report.
pub fn write_csv<'e>(
    data: &ReportData<'_>,
    evaluations: impl IntoIterator<Item = &'e ScanEvaluation>,
    output: impl Write,
) -> Result<(), ReportError> {
    let index = Index::new(data.rollup);
    let mut writer = ::csv::Writer::from_writer(output);
    writer.write_record(COLUMNS)?;
    let scan_time = data.meta.scan_time.to_rfc3339();
    for evaluation in evaluations {
        let rule = index.rules.get(evaluation.rule_id.as_str());
        let resource = index.resources.get(evaluation.resource_id.as_str());
        let join = |field: &dyn Fn(&palisade_rules::Detail) -> String| {
            evaluation
                .details
                .iter()
                .map(field)
                .collect::<Vec<_>>()
                .join(" | ")
        };
        writer.write_record([
            data.meta.report_id.as_str(),
            scan_time.as_str(),
            data.meta.profile_name.as_str(),
            &rule
                .map(|rule| rule.control_names.join(";"))
                .unwrap_or_default(),
            evaluation.rule_id.as_str(),
            rule.map(|rule| rule.description.as_str())
                .unwrap_or_default(),
            evaluation.resource_id.as_str(),
            resource
                .map(|resource| resource.resource_name.as_str())
                .unwrap_or_default(),
            resource
                .map(|resource| resource.service_name.as_str())
                .unwrap_or_default(),
            resource
                .map(|resource| resource.resource_kind.as_str())
                .unwrap_or_default(),
            resource
                .map(|resource| resource.account.id.as_str())
                .unwrap_or_default(),
            resource
                .map(|resource| resource.environment.as_str())
                .unwrap_or_default(),
            evaluation.status.as_str(),
            &join(&|detail| detail.property.clone()),
            &join(&|detail| detail.operator.to_string()),
            &join(&|detail| cell(Some(&detail.expected_value))),
            &join(&|detail| cell(detail.found_value.as_ref())),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::scan;

    #[test]
    fn one_row_per_evaluation_with_found_values() {
        let (meta, rollup, evaluations) = scan();
        let data = ReportData {
            meta: &meta,
            rollup: &rollup,
            drift: None,
        };
        let mut output = Vec::new();
        write_csv(&data, &evaluations, &mut output).expect("writes");
        let mut reader = ::csv::Reader::from_reader(output.as_slice());
        assert_eq!(reader.headers().expect("header").len(), COLUMNS.len());
        let rows: Vec<::csv::StringRecord> =
            reader.records().collect::<Result<_, _>>().expect("rows");
        assert_eq!(rows.len(), 2);
        let failed = rows
            .iter()
            .find(|row| &row[12] == "failure")
            .expect("a failure row");
        assert_eq!(&failed[3], "CP-9");
        assert_eq!(&failed[7], "bad-bücket");
        assert_eq!(&failed[13], "versioning.status");
        assert_eq!(&failed[15], "Enabled");
        assert_eq!(&failed[16], "Suspended");
    }
}
