//! PDF: score, summaries, the controls table with statuses, the failing resources with the
//! expected and found values of each deciding condition, and the drift since the previous
//! report. A4 pages, DejaVu Sans embedded (subset by printpdf) so the text is extractable.
//!
//! Layout is line-based: a cursor moves down the page and a new page starts when it reaches
//! the bottom margin. Cells are cut to their column width (with `…`) rather than wrapped, so a
//! row is always one line. Failing evaluations are listed up to [`MAX_FAILURE_ROWS`]; the rest
//! are counted (the CSV has them all).

use palisade_posture::drift::ReportDrift;
use palisade_posture::{EvaluationStatus, ScanEvaluation};
use printpdf::{
    Color, Line, LinePoint, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rgb, TextItem,
};

use crate::{Index, ReportData, cell};

/// Failing evaluations listed in the PDF at most.
pub const MAX_FAILURE_ROWS: usize = 2_000;

const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const PAGE_WIDTH_MM: f32 = 210.0;
const PAGE_HEIGHT_MM: f32 = 297.0;
const MARGIN_MM: f32 = 15.0;
/// Average DejaVu Sans advance as a fraction of the font size, to cut cells to width.
const AVERAGE_ADVANCE: f32 = 0.55;

/// A PDF that could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The embedded font did not parse (a bug).
    #[error("internal error (a bug): the embedded font does not parse")]
    Font,
}

/// An RGB colour, each channel 0 to 1.
type Colour = (f32, f32, f32);

/// A table cell: start (mm from the margin), width (mm), text, colour.
type Cell<'t> = (f32, f32, &'t str, Colour);

struct Writer {
    font: PdfFontHandle,
    pages: Vec<PdfPage>,
    ops: Vec<Op>,
    /// Distance from the top of the page, in mm.
    cursor_mm: f32,
}

impl Writer {
    fn new(font: PdfFontHandle) -> Self {
        Writer {
            font,
            pages: Vec::new(),
            ops: Vec::new(),
            cursor_mm: MARGIN_MM,
        }
    }

    fn finish_page(&mut self) {
        let ops = std::mem::take(&mut self.ops);
        self.pages
            .push(PdfPage::new(Mm(PAGE_WIDTH_MM), Mm(PAGE_HEIGHT_MM), ops));
        self.cursor_mm = MARGIN_MM;
    }

    fn ensure_room(&mut self, height_mm: f32) {
        if self.cursor_mm + height_mm > PAGE_HEIGHT_MM - MARGIN_MM {
            self.finish_page();
        }
    }

    fn text_at(&mut self, x_mm: f32, size: f32, text: &str, color: Colour) {
        let baseline = PAGE_HEIGHT_MM - self.cursor_mm;
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFillColor {
                col: Color::Rgb(Rgb::new(color.0, color.1, color.2, None)),
            },
            Op::SetFont {
                font: self.font.clone(),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point {
                    x: Mm(x_mm).into(),
                    y: Mm(baseline).into(),
                },
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.to_string())],
            },
            Op::EndTextSection,
        ]);
    }

    /// Writes one line of text and moves the cursor down.
    fn line(&mut self, size: f32, text: &str) {
        let height = size * 0.3528 * 1.45;
        self.ensure_room(height);
        self.cursor_mm += height;
        let width = PAGE_WIDTH_MM - 2.0 * MARGIN_MM;
        self.text_at(MARGIN_MM, size, &fit(text, width, size), (0.0, 0.0, 0.0));
    }

    fn heading(&mut self, text: &str) {
        self.ensure_room(14.0);
        self.cursor_mm += 4.0;
        self.line(13.0, text);
        self.rule();
    }

    fn rule(&mut self) {
        let y = Mm(PAGE_HEIGHT_MM - self.cursor_mm - 1.2).into();
        self.ops.extend([
            Op::SetOutlineColor {
                col: Color::Rgb(Rgb::new(0.6, 0.6, 0.6, None)),
            },
            Op::SetOutlineThickness { pt: Pt(0.5) },
            Op::DrawLine {
                line: Line {
                    points: vec![
                        LinePoint {
                            p: Point {
                                x: Mm(MARGIN_MM).into(),
                                y,
                            },
                            bezier: false,
                        },
                        LinePoint {
                            p: Point {
                                x: Mm(PAGE_WIDTH_MM - MARGIN_MM).into(),
                                y,
                            },
                            bezier: false,
                        },
                    ],
                    is_closed: false,
                },
            },
        ]);
        self.cursor_mm += 2.0;
    }

    /// Writes a table row: (column start in mm from the margin, width in mm, text, colour).
    fn row(&mut self, size: f32, cells: &[Cell<'_>]) {
        let height = size * 0.3528 * 1.5;
        self.ensure_room(height);
        self.cursor_mm += height;
        for (start, width, text, color) in cells {
            let fitted = fit(text, *width, size);
            self.text_at(MARGIN_MM + start, size, &fitted, *color);
        }
    }
}

/// Cuts text to what fits in `width_mm` at `size` points, ending in `…` when cut.
fn fit(text: &str, width_mm: f32, size: f32) -> String {
    let capacity = (width_mm / (size * 0.3528 * AVERAGE_ADVANCE))
        .floor()
        .max(1.0) as usize;
    let count = text.chars().count();
    if count <= capacity {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(capacity.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn status_color(status: &str) -> Colour {
    match status {
        "compliant" | "pass" => (0.0, 0.45, 0.15),
        "not_compliant" | "failure" => (0.75, 0.05, 0.05),
        "unable_to_perform" | "error" => (0.7, 0.4, 0.0),
        _ => (0.3, 0.3, 0.3),
    }
}

/// Renders the PDF report.
pub fn render_pdf<'e>(
    data: &ReportData<'_>,
    evaluations: impl IntoIterator<Item = &'e ScanEvaluation>,
) -> Result<Vec<u8>, PdfError> {
    let mut warnings = Vec::new();
    let font = ParsedFont::from_bytes(FONT, 0, &mut warnings).ok_or(PdfError::Font)?;
    let title = format!("Palisade compliance report — {}", data.meta.profile_name);
    let mut document = PdfDocument::new(&title);
    let font_id = document.add_font(&font);
    let mut writer = Writer::new(PdfFontHandle::External(font_id));
    let rollup = data.rollup;
    let index = Index::new(rollup);

    writer.line(18.0, "Palisade compliance report");
    writer.line(
        10.0,
        &format!(
            "Profile: {} (version {})",
            data.meta.profile_name, data.meta.profile_version
        ),
    );
    if let Some(name) = &data.meta.attachment_name {
        writer.line(10.0, &format!("Attachment: {name}"));
    }
    writer.line(
        10.0,
        &format!(
            "Report: {}   Scan time: {}",
            data.meta.report_id,
            data.meta.scan_time.to_rfc3339()
        ),
    );

    writer.heading("Compliance score");
    let score = match rollup.score.exact_percent() {
        Some(percent) => format!("{percent:.1}%"),
        None => "n/a (nothing evaluated)".into(),
    };
    writer.line(
        16.0,
        &format!(
            "Compliance score: {score} ({} passed of {} evaluations)",
            rollup.score.passed, rollup.score.total_count
        ),
    );
    let evaluations_summary = &rollup.evaluations_summary;
    writer.line(
        10.0,
        &format!(
            "Evaluations: {} passed, {} failed, {} errors, {} skipped",
            evaluations_summary.pass_count,
            evaluations_summary.failure_count,
            evaluations_summary.error_count,
            evaluations_summary.skipped_count
        ),
    );
    let controls = &rollup.controls_summary.stats;
    writer.line(
        10.0,
        &format!(
            "Controls: {} compliant, {} not compliant, {} unable to perform, {} user evaluation required, {} not applicable",
            controls.compliant_count,
            controls.not_compliant_count,
            controls.unable_to_perform_count,
            controls.user_evaluation_required_count,
            controls.not_applicable_count
        ),
    );
    let resources = &rollup.resources_summary.stats;
    writer.line(
        10.0,
        &format!(
            "Resources: {} compliant, {} not compliant, {} unable to perform, {} not applicable",
            resources.compliant_count,
            resources.not_compliant_count,
            resources.unable_to_perform_count,
            resources.not_applicable_count
        ),
    );

    writer.heading("Controls");
    let black = (0.0, 0.0, 0.0);
    writer.row(
        8.5,
        &[
            (0.0, 22.0, "Control", black),
            (23.0, 38.0, "Status", black),
            (62.0, 12.0, "Pass", black),
            (75.0, 12.0, "Fail", black),
            (88.0, 12.0, "Error", black),
            (101.0, 79.0, "Description", black),
        ],
    );
    for control in &rollup.controls {
        let (mut pass, mut fail, mut error) = (0, 0, 0);
        for assessment in control
            .control_specifications
            .iter()
            .flat_map(|specification| &specification.assessments)
        {
            pass += assessment.pass_count;
            fail += assessment.failure_count;
            error += assessment.error_count;
        }
        let status = control.stats.status.as_str();
        writer.row(
            8.0,
            &[
                (0.0, 22.0, control.control_name.as_str(), black),
                (23.0, 38.0, status, status_color(status)),
                (62.0, 12.0, &pass.to_string(), black),
                (75.0, 12.0, &fail.to_string(), black),
                (88.0, 12.0, &error.to_string(), black),
                (101.0, 79.0, control.control_description.as_str(), black),
            ],
        );
    }

    writer.heading("Failing resources");
    let mut listed = 0usize;
    let mut unlisted = 0usize;
    for evaluation in evaluations {
        if evaluation.status != EvaluationStatus::Failure {
            continue;
        }
        if listed == MAX_FAILURE_ROWS {
            unlisted += 1;
            continue;
        }
        listed += 1;
        let name = index
            .resources
            .get(evaluation.resource_id.as_str())
            .map(|resource| resource.resource_name.as_str())
            .unwrap_or(evaluation.resource_id.as_str());
        let controls = index
            .rules
            .get(evaluation.rule_id.as_str())
            .map(|rule| rule.control_names.join(", "))
            .unwrap_or_default();
        writer.line(
            9.0,
            &format!(
                "{name} ({}) — rule {} [{controls}]",
                evaluation.resource_id, evaluation.rule_id
            ),
        );
        for detail in &evaluation.details {
            writer.row(
                8.0,
                &[(
                    6.0,
                    174.0,
                    &format!(
                        "{} {}: expected {}, found {}",
                        detail.property,
                        detail.operator,
                        cell(Some(&detail.expected_value)),
                        cell(detail.found_value.as_ref())
                    ),
                    (0.25, 0.25, 0.25),
                )],
            );
        }
    }
    if listed == 0 {
        writer.line(10.0, "No failing resources.");
    }
    if unlisted > 0 {
        writer.line(
            10.0,
            &format!("… and {unlisted} more failing evaluations (see the CSV download)."),
        );
    }

    if let Some(drift) = data.drift {
        write_drift(&mut writer, drift);
    }
    writer.finish_page();
    let pages = std::mem::take(&mut writer.pages);
    let mut save_warnings = Vec::new();
    Ok(document
        .with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut save_warnings))
}

fn write_drift(writer: &mut Writer, drift: &ReportDrift) {
    writer.heading("Drift since the previous report");
    let percent = |score: Option<f64>| {
        score.map_or_else(|| "n/a".to_string(), |percent| format!("{percent:.1}%"))
    };
    writer.line(
        10.0,
        &format!(
            "Score: {} → {}",
            percent(drift.previous_score),
            percent(drift.current_score)
        ),
    );
    let status = |status: Option<palisade_posture::ComplianceStatus>| {
        status.map_or("absent", |status| status.as_str())
    };
    if drift.controls.is_empty() {
        writer.line(10.0, "No control changed status.");
    }
    for change in &drift.controls {
        writer.line(
            9.0,
            &format!(
                "Control {}: {} → {}",
                change.control_name,
                status(change.previous_status),
                status(change.current_status)
            ),
        );
    }
    for change in drift.resources.iter().take(MAX_FAILURE_ROWS) {
        writer.line(
            9.0,
            &format!(
                "Resource {}: {} → {}",
                change.resource_name,
                status(change.previous_status),
                status(change.current_status)
            ),
        );
    }
    if drift.evaluations.total_changes > 0 {
        writer.line(
            9.0,
            &format!(
                "Evaluations: {} changed, {} newly failing, {} no longer failing",
                drift.evaluations.total_changes,
                drift.evaluations.newly_failing,
                drift.evaluations.newly_passing_or_gone
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_long_text_with_an_ellipsis() {
        assert_eq!(fit("short", 100.0, 10.0), "short");
        let cut = fit(&"x".repeat(500), 20.0, 10.0);
        assert!(cut.ends_with('…'));
        assert!(cut.chars().count() < 20, "{cut}");
    }
}
