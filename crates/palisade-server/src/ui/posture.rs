//! Posture drill-down: attachments → report → control → assessment → evaluations of resources,
//! with expected and found values, drift since the previous report, attestation of manual
//! assessments, scans on demand and report downloads.
//!
//! A report's roll-up (controls, rules, resources) is one stored document; its evaluations —
//! possibly hundreds of thousands — are only ever read a page at a time with the store's keyset
//! paging and counted with the store's indexed count.

use std::collections::HashMap;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use maud::{Markup, html};
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_model::tenancy::Action;
use palisade_posture::drift::ReportDrift;
use palisade_posture::{Rollup, ScanEvaluation};
use palisade_store::{EvaluationFilter, StoredReport};
use serde::Deserialize;
use serde_json::Value;

use super::layout::{self, Section};
use super::session::{CsrfForm, Session};
use super::{UiError, charts, encode};
use crate::error::{ApiError, ApiResult};
use crate::routes::attestations::AttestationRequest;
use crate::routes::v3::reports::{ReportFormat, render_report_file};
use crate::routes::v3::{ATTACHMENT, PROFILE};
use crate::service::documents;
use crate::state::AppState;

/// Evaluations per page.
const EVALUATION_PAGE: u32 = 50;
/// Reports listed on an attachment's page (each carries its roll-up, so keep it bounded).
const HISTORY_REPORTS: u32 = 20;

/// Parses a stored report's roll-up (without copying the JSON first).
pub fn rollup_of(report: &StoredReport) -> ApiResult<Rollup> {
    Rollup::deserialize(&report.body["rollup"]).map_err(|error| {
        ApiError::internal(format!("stored roll-up of report {}: {error}", report.id))
    })
}

async fn report_of(
    state: &AppState,
    instance_id: &str,
    report_id: &str,
) -> ApiResult<StoredReport> {
    state
        .store
        .get_report(instance_id, report_id)
        .await?
        .ok_or_else(|| ApiError::not_found("report", report_id))
}

/// `?done=` after an action.
#[derive(Debug, Default, Deserialize)]
pub struct DoneParam {
    pub done: Option<String>,
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

fn scan_form(session: &Session, attachment_id: &str) -> Markup {
    html! {
        @if session.can(Action::WriteConfig) {
            form.inline method="post" action=(format!("/ui/posture/attachments/{}/scan", encode(attachment_id))) {
                input type="hidden" name="csrf" value=(session.csrf());
                button type="submit" { "Scan now" }
            }
        }
    }
}

/// `GET /ui/posture`: every attachment with its schedule and last scan.
pub async fn attachments(
    State(state): State<AppState>,
    session: Session,
    Query(done): Query<DoneParam>,
) -> Result<Markup, UiError> {
    let instance_id = session.instance_id();
    let attachments = documents::all(&state, instance_id, ATTACHMENT).await?;
    let profiles: HashMap<String, String> = documents::all(&state, instance_id, PROFILE)
        .await?
        .into_iter()
        .map(|profile| {
            let name = text(&profile.body, "profile_name").to_owned();
            (profile.id, name)
        })
        .collect();
    let body = html! {
        h1 { "Posture" }
        (layout::flash(done.done.as_deref()))
        @if attachments.is_empty() {
            p {
                "No attachments yet. "
                @if session.can(Action::WriteConfig) {
                    a href="/ui/configuration/attachments/new" { "Attach a profile to a scope" } "."
                } @else {
                    "An editor or admin attaches a profile to a scope in the configuration."
                }
            }
        } @else {
            div.table-wrap { table.responsive {
                caption { "Attachments: a profile applied to a scope on a schedule" }
                thead { tr { th { "Attachment" } th { "Profile" } th { "Schedule" } th { "Status" } th { "Last scan" } th { "Next scan" } th { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for attachment in &attachments {
                        @let body = &attachment.body;
                        tr {
                            td data-label="Attachment" { a href=(format!("/ui/posture/attachments/{}", encode(&attachment.id))) { (body["name"].as_str().unwrap_or(&attachment.id)) } }
                            td data-label="Profile" { (profiles.get(text(body, "profile_id")).map_or(text(body, "profile_id"), String::as_str)) }
                            td data-label="Schedule" { (text(body, "schedule")) }
                            td data-label="Status" { (layout::badge(text(body, "status"))) }
                            td data-label="Last scan" {
                                @if let Some(report_id) = body["last_scan"]["id"].as_str() {
                                    a href=(format!("/ui/posture/reports/{}", encode(report_id))) { (layout::time_text(text(&body["last_scan"], "time"))) }
                                } @else { span.muted { "never" } }
                            }
                            td data-label="Next scan" { (layout::time_text(text(body, "next_scan_time"))) }
                            td { (scan_form(&session, &attachment.id)) }
                        }
                    }
                }
            } }
        }
    };
    Ok(layout::page("Posture", &session, Section::Posture, body))
}

/// `GET /ui/posture/attachments/{id}`: an attachment, its score trend and its reports.
pub async fn attachment(
    State(state): State<AppState>,
    session: Session,
    Path(attachment_id): Path<String>,
    Query(done): Query<DoneParam>,
) -> Result<Markup, UiError> {
    let instance_id = session.instance_id();
    let document = documents::get(&state, instance_id, ATTACHMENT, &attachment_id).await?;
    let reports = state
        .store
        .list_report_summaries(instance_id, Some(&attachment_id), HISTORY_REPORTS)
        .await?;
    let points: Vec<(DateTime<Utc>, f64)> = reports
        .iter()
        .rev()
        .filter_map(|report| {
            report
                .score_percent()
                .map(|score| (report.created_on, score))
        })
        .collect();
    let name = document.body["name"]
        .as_str()
        .unwrap_or(&attachment_id)
        .to_owned();
    let body = html! {
        p { a href="/ui/posture" { "Posture" } " › " (name) }
        h1 { (name) }
        (layout::flash(done.done.as_deref()))
        div.grid2 {
            section.panel {
                dl.facts {
                    dt { "Profile" } dd { code { (text(&document.body, "profile_id")) } }
                    dt { "Schedule" } dd { (text(&document.body, "schedule")) }
                    dt { "Status" } dd { (layout::badge(text(&document.body, "status"))) }
                    dt { "Scope" } dd {
                        @for scope in document.body["scope"].as_array().into_iter().flatten() {
                            code { (text(scope, "id")) } " "
                        }
                    }
                    dt { "Next scan" } dd { (layout::time_text(text(&document.body, "next_scan_time"))) }
                }
                p { (scan_form(&session, &attachment_id)) }
            }
            section.panel aria-labelledby="trend" {
                h2 #trend { "Score trend" }
                (charts::score_trend(&name, &points))
            }
        }
        h2 { "Reports" }
        @if reports.is_empty() {
            p.muted { "No report yet: run a scan." }
        } @else {
            div.table-wrap { table.responsive {
                thead { tr { th { "Report" } th { "Type" } th { "Score" } th.num { "Controls failing" } th.num { "Evaluations" } } }
                tbody {
                    @for report in &reports {
                        tr {
                            td data-label="Report" { a href=(format!("/ui/posture/reports/{}", encode(&report.id))) { (layout::time(report.created_on)) } }
                            td data-label="Type" { (report.scan_type) }
                            td data-label="Score" { (layout::score(report.score_percent())) }
                            td.num data-label="Controls failing" { (report.controls_failing) }
                            td.num data-label="Evaluations" { (report.evaluations) }
                        }
                    }
                }
            } }
            @if reports.len() == HISTORY_REPORTS as usize {
                p.hint { "The latest " (HISTORY_REPORTS) " reports." }
            }
        }
    };
    Ok(layout::page(&name, &session, Section::Posture, body))
}

/// `POST /ui/posture/attachments/{id}/scan`: scans now, then shows the report.
pub async fn scan(
    State(state): State<AppState>,
    session: Session,
    Path(attachment_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    session.require(Action::WriteConfig)?;
    session.check_csrf(&form.csrf)?;
    let scan = crate::service::scans::run_scan(
        &state,
        session.instance_id(),
        &attachment_id,
        "ondemand",
        Utc::now(),
    )
    .await?;
    let location = match scan["report_id"].as_str() {
        Some(report_id) => format!(
            "/ui/posture/reports/{}?done=Scan+completed.",
            encode(report_id)
        ),
        None => format!("/ui/posture/attachments/{}", encode(&attachment_id)),
    };
    Ok((StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response())
}

/// `?status=` of the report page's controls.
#[derive(Debug, Default, Deserialize)]
pub struct ReportParams {
    pub status: Option<String>,
    pub done: Option<String>,
}

async fn drift_of(
    state: &AppState,
    instance_id: &str,
    report: &StoredReport,
    rollup: &Rollup,
) -> ApiResult<Option<(StoredReport, ReportDrift)>> {
    let previous_id = state
        .store
        .list_report_summaries(instance_id, Some(&report.attachment_id), HISTORY_REPORTS)
        .await?
        .into_iter()
        .filter(|older| older.created_on < report.created_on)
        .max_by_key(|older| older.created_on)
        .map(|older| older.id);
    let previous = match previous_id {
        Some(id) => state.store.get_report(instance_id, &id).await?,
        None => None,
    };
    match previous {
        Some(previous) => {
            let previous_rollup = rollup_of(&previous)?;
            let drift = palisade_posture::diff_rollups(&previous_rollup, rollup);
            Ok(Some((previous, drift)))
        }
        None => Ok(None),
    }
}

fn status_change(before: Option<&str>, after: Option<&str>) -> Markup {
    html! {
        @match before { Some(status) => (layout::badge(status)), None => span.muted { "new" } }
        " → "
        @match after { Some(status) => (layout::badge(status)), None => span.muted { "gone" } }
    }
}

/// `GET /ui/posture/reports/{id}`: score, downloads, drift and controls of a report.
pub async fn report(
    State(state): State<AppState>,
    session: Session,
    Path(report_id): Path<String>,
    Query(params): Query<ReportParams>,
) -> Result<Markup, UiError> {
    let instance_id = session.instance_id();
    let report = report_of(&state, instance_id, &report_id).await?;
    let rollup = rollup_of(&report)?;
    let drift = drift_of(&state, instance_id, &report, &rollup).await?;
    let wanted = params.status.as_deref().filter(|status| !status.is_empty());
    let attachment_name = report.body["attachment"]["name"]
        .as_str()
        .unwrap_or(&report.attachment_id)
        .to_owned();
    let title = format!("Report of {}", report.created_on.format("%Y-%m-%d %H:%M"));
    let base = format!("/ui/posture/reports/{}", encode(&report_id));
    let body = html! {
        p {
            a href="/ui/posture" { "Posture" } " › "
            a href=(format!("/ui/posture/attachments/{}", encode(&report.attachment_id))) { (attachment_name) } " › report"
        }
        h1 { (title) }
        (layout::flash(params.done.as_deref()))
        div.grid2 {
            section.panel {
                dl.facts {
                    dt { "Score" } dd { (layout::score(rollup.score.exact_percent())) " (" (rollup.score.passed) " of " (rollup.score.total_count) " evaluations passed)" }
                    dt { "Profile" } dd { (text(&report.body["profile"], "name")) " " (text(&report.body["profile"], "version")) }
                    dt { "Type" } dd { (report.scan_type) }
                    dt { "Controls" } dd {
                        (rollup.controls_summary.stats.compliant_count) " compliant, "
                        (rollup.controls_summary.stats.not_compliant_count) " not compliant, "
                        (rollup.controls_summary.stats.user_evaluation_required_count) " need attestation"
                    }
                    dt { "Resources" } dd { (rollup.resources_summary.stats.total_count) " (" (rollup.resources_summary.stats.not_compliant_count) " not compliant)" }
                }
                p.actions {
                    a href=(format!("{base}/evaluations?status=failure")) { "All failing evaluations" }
                }
                h2 { "Download" }
                ul.legend {
                    li { a href=(format!("{base}/download?format=csv")) download { "CSV" } }
                    li { a href=(format!("{base}/download?format=pdf")) download { "PDF" } }
                    li { a href=(format!("{base}/download?format=oscal")) download { "OSCAL assessment results" } }
                    li { a href=(format!("{base}/download?format=json")) download { "JSON" } }
                }
            }
            section.panel aria-labelledby="drift" {
                h2 #drift { "Drift since the previous report" }
                @match &drift {
                    None => p.muted { "This is the attachment's first report." },
                    Some((previous, drift)) => {
                        p {
                            "Since " a href=(format!("/ui/posture/reports/{}", encode(&previous.id))) { (layout::time(previous.created_on)) } ": score "
                            (drift.previous_score.map_or("–".to_owned(), |score| format!("{score:.1} %")))
                            " → " (drift.current_score.map_or("–".to_owned(), |score| format!("{score:.1} %")))
                        }
                        @if drift.controls.is_empty() && drift.resources.is_empty() {
                            p.muted { "No control or resource changed status." }
                        }
                        @if !drift.controls.is_empty() {
                            h3 { "Controls" }
                            ul {
                                @for change in drift.controls.iter().take(20) {
                                    li { (change.control_name) ": " (status_change(change.previous_status.map(|s| s.as_str()), change.current_status.map(|s| s.as_str()))) }
                                }
                            }
                        }
                        @if !drift.resources.is_empty() {
                            h3 { "Resources" }
                            ul {
                                @for change in drift.resources.iter().take(20) {
                                    li {
                                        a href=(format!("{base}/evaluations?resource={}", encode(&change.resource_id))) { (change.resource_name) } ": "
                                        (status_change(change.previous_status.map(|s| s.as_str()), change.current_status.map(|s| s.as_str())))
                                    }
                                }
                            }
                            @if drift.resources.len() > 20 { p.hint { "And " (drift.resources.len() - 20) " more." } }
                        }
                    }
                }
            }
        }
        h2 #controls { "Controls" }
        form.filters method="get" action=(base) data-autosubmit {
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for status in ["not_compliant", "compliant", "user_evaluation_required", "unable_to_perform", "not_applicable"] {
                        option value=(status) selected[wanted == Some(status)] { (status.replace('_', " ")) }
                    }
                }
            }
            button type="submit" { "Apply" }
        }
        div.table-wrap { table.responsive {
            thead { tr { th { "Control" } th { "Category" } th { "Status" } th.num { "Assessments failing" } } }
            tbody {
                @for control in rollup.controls.iter().filter(|control| wanted.is_none_or(|status| control.stats.status.as_str() == status)) {
                    @let failing = control.control_specifications.iter().flat_map(|specification| &specification.assessments).filter(|assessment| assessment.failure_count > 0).count();
                    tr {
                        td data-label="Control" {
                            a href=(format!("{base}/controls/{}", encode(&control.id))) { (control.control_name) }
                            @if !control.control_description.is_empty() { br; span.hint { (control.control_description) } }
                        }
                        td data-label="Category" { (control.control_category.as_deref().unwrap_or("")) }
                        td data-label="Status" { (layout::badge(control.stats.status.as_str())) }
                        td.num data-label="Failing" { (failing) }
                    }
                }
            }
        } }
    };
    Ok(layout::page(&title, &session, Section::Posture, body))
}

/// `GET /ui/posture/reports/{id}/controls/{control_id}`: a control's specifications and
/// assessments, with the attestation form of manual ones.
pub async fn control(
    State(state): State<AppState>,
    session: Session,
    Path((report_id, control_id)): Path<(String, String)>,
    Query(done): Query<DoneParam>,
) -> Result<Markup, UiError> {
    let instance_id = session.instance_id();
    let report = report_of(&state, instance_id, &report_id).await?;
    let rollup = rollup_of(&report)?;
    let control = rollup
        .control(&control_id)
        .ok_or_else(|| ApiError::not_found("control", &control_id))?;
    let attestations =
        crate::service::scans::attestations_of(&state, instance_id, &report.attachment_id).await?;
    let now = Utc::now();
    let base = format!("/ui/posture/reports/{}", encode(&report_id));
    let body = html! {
        p {
            a href="/ui/posture" { "Posture" } " › "
            a href=(base) { "report" } " › control"
        }
        h1 { (control.control_name) " " (layout::badge(control.stats.status.as_str())) }
        (layout::flash(done.done.as_deref()))
        @if !control.control_description.is_empty() { p { (control.control_description) } }
        @for specification in &control.control_specifications {
            section.panel {
                h2 { (specification.component_name) " " span.muted { "(" (specification.environment) ")" } }
                @if !specification.control_specification_description.is_empty() { p { (specification.control_specification_description) } }
                div.table-wrap { table.responsive {
                    thead { tr { th { "Assessment" } th { "Type" } th { "Status" } th.num { "Pass" } th.num { "Fail" } th.num { "Error" } } }
                    tbody {
                        @for assessment in &specification.assessments {
                            tr {
                                td data-label="Assessment" {
                                    a href=(format!("{base}/evaluations?rule={}", encode(&assessment.assessment_id))) { (assessment.assessment_description) }
                                    br; code.hint { (assessment.assessment_id) }
                                }
                                td data-label="Type" { (assessment.assessment_type) }
                                td data-label="Status" { (layout::badge(assessment.status.as_str())) }
                                td.num data-label="Pass" { (assessment.pass_count) }
                                td.num data-label="Fail" {
                                    @if assessment.failure_count > 0 {
                                        a href=(format!("{base}/evaluations?rule={}&status=failure", encode(&assessment.assessment_id))) { (assessment.failure_count) }
                                    } @else { "0" }
                                }
                                td.num data-label="Error" { (assessment.error_count) }
                            }
                        }
                    }
                } }
                @for assessment in specification.assessments.iter().filter(|assessment| assessment.assessment_type.eq_ignore_ascii_case("manual")) {
                    @let current = attestations.iter().find(|attestation| attestation.assessment_id == assessment.assessment_id
                        && attestation.control_id.as_deref().is_none_or(|id| id == control.id));
                    section aria-label=(format!("Attestation of {}", assessment.assessment_id)) {
                        h3 { "Attestation: " (assessment.assessment_description) }
                        @match current {
                            Some(attestation) => p {
                                "Attested " (layout::badge(match attestation.status { palisade_posture::model::AttestedStatus::Pass => "pass", palisade_posture::model::AttestedStatus::Failure => "failure" }))
                                " by key " code { (attestation.attested_by) } " on " (layout::time(attestation.attested_on))
                                @if let Some(expiry) = attestation.expires_on { ", until " (layout::time(expiry)) }
                                @if !attestation.is_valid_at(now) { " " strong { "(expired)" } }
                                ": " (attestation.note)
                            },
                            None => p.muted { "Not attested: a person must decide this assessment." },
                        }
                        @if session.can(Action::WriteConfig) {
                            form.stack method="post" action=(format!("/ui/posture/attachments/{}/attestations/{}", encode(&report.attachment_id), encode(&assessment.assessment_id))) {
                                input type="hidden" name="csrf" value=(session.csrf());
                                input type="hidden" name="control_id" value=(control.id);
                                input type="hidden" name="report_id" value=(report_id);
                                fieldset {
                                    legend { "Verdict" }
                                    label { input type="radio" name="status" value="pass" required; " Pass" }
                                    " "
                                    label { input type="radio" name="status" value="failure"; " Failure" }
                                }
                                label for=(format!("note-{}", assessment.assessment_id)) { "What was checked, and how" }
                                textarea id=(format!("note-{}", assessment.assessment_id)) name="note" rows="3" required {}
                                label for=(format!("evidence-{}", assessment.assessment_id)) { "Evidence (one link or document id per line)" }
                                textarea id=(format!("evidence-{}", assessment.assessment_id)) name="evidence" rows="2" {}
                                label for=(format!("expires-{}", assessment.assessment_id)) { "Valid until (optional)" }
                                input id=(format!("expires-{}", assessment.assessment_id)) type="date" name="expires_on";
                                button type="submit" { "Attest" }
                                p.hint { "The next scan of the attachment uses this attestation." }
                            }
                        } @else {
                            (layout::read_only_note(&session, Action::WriteConfig))
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        &control.control_name,
        &session,
        Section::Posture,
        body,
    ))
}

/// The attestation form's fields.
#[derive(Debug, Deserialize)]
pub struct AttestForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub evidence: String,
    #[serde(default)]
    pub expires_on: String,
    #[serde(default)]
    pub control_id: String,
    #[serde(default)]
    pub report_id: String,
}

/// `POST /ui/posture/attachments/{id}/attestations/{assessment_id}`.
pub async fn attest(
    State(state): State<AppState>,
    session: Session,
    Path((attachment_id, assessment_id)): Path<(String, String)>,
    Form(form): Form<AttestForm>,
) -> Result<Response, UiError> {
    session.require(Action::WriteConfig)?;
    session.check_csrf(&form.csrf)?;
    let expires_on = match form.expires_on.trim() {
        "" => None,
        date => Some(
            NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .ok()
                .and_then(|day| day.and_hms_opt(23, 59, 59))
                .map(|at| at.and_utc())
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidField,
                        "`expires_on` is not a date (YYYY-MM-DD)",
                    )
                    .with_target(ErrorTarget::field("/expires_on"))
                })?,
        ),
    };
    let request = AttestationRequest {
        status: form.status.clone(),
        note: form.note.clone(),
        evidence: form
            .evidence
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect(),
        expires_on,
    };
    let control_id = Some(form.control_id.trim().to_owned()).filter(|id| !id.is_empty());
    crate::routes::attestations::attest(
        &state,
        &session.key,
        &attachment_id,
        &assessment_id,
        control_id.clone(),
        request,
    )
    .await?;
    let location = match (form.report_id.trim(), control_id) {
        ("", _) | (_, None) => format!(
            "/ui/posture/attachments/{}?done=Attested.",
            encode(&attachment_id)
        ),
        (report_id, Some(control_id)) => format!(
            "/ui/posture/reports/{}/controls/{}?done=Attested%3B+the+next+scan+uses+it.",
            encode(report_id),
            encode(&control_id)
        ),
    };
    Ok((StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response())
}

/// Filters of the evaluations page.
#[derive(Debug, Default, Deserialize)]
pub struct EvaluationParams {
    pub rule: Option<String>,
    pub resource: Option<String>,
    pub status: Option<String>,
    /// The last (rule, resource) of the previous page, joined by a newline.
    pub start: Option<String>,
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    }
}

/// `GET /ui/posture/reports/{id}/evaluations`: one page of evaluations (by rule, resource,
/// status), each with the properties checked and their expected and found values.
pub async fn evaluations(
    State(state): State<AppState>,
    session: Session,
    Path(report_id): Path<String>,
    Query(params): Query<EvaluationParams>,
) -> Result<Markup, UiError> {
    let instance_id = session.instance_id();
    let report = report_of(&state, instance_id, &report_id).await?;
    let rollup = rollup_of(&report)?;
    let non_empty = |value: &Option<String>| value.clone().filter(|text| !text.is_empty());
    let status = non_empty(&params.status);
    if let Some(status) = &status
        && !["pass", "failure", "error", "skipped"].contains(&status.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`status` is pass, failure, error or skipped",
        )
        .with_target(ErrorTarget::parameter("status"))
        .into());
    }
    let filter = EvaluationFilter {
        status: status.clone(),
        rule_id: non_empty(&params.rule),
        resource_id: non_empty(&params.resource),
        after: params
            .start
            .as_deref()
            .and_then(|start| start.split_once('\n'))
            .map(|(rule, resource)| (rule.to_owned(), resource.to_owned())),
        limit: Some(EVALUATION_PAGE + 1),
    };
    let total = state
        .store
        .count_evaluations(instance_id, &report_id, &filter)
        .await?;
    let mut rows = state
        .store
        .list_evaluations(instance_id, &report_id, &filter)
        .await?;
    let more = rows.len() > EVALUATION_PAGE as usize;
    rows.truncate(EVALUATION_PAGE as usize);
    let mut evaluations = Vec::with_capacity(rows.len());
    for row in &rows {
        evaluations.push(
            ScanEvaluation::deserialize(&row.body)
                .map_err(|error| ApiError::internal(format!("stored evaluation: {error}")))?,
        );
    }
    let rule_of = |rule_id: &str| rollup.rules.iter().find(|rule| rule.rule_id == rule_id);
    let resource_of = |resource_id: &str| {
        rollup
            .resources
            .iter()
            .find(|resource| resource.id == resource_id)
    };
    let base = format!("/ui/posture/reports/{}/evaluations", encode(&report_id));
    let query_of = |start: Option<&str>| {
        let mut parts = Vec::new();
        for (name, value) in [
            ("rule", &filter.rule_id),
            ("resource", &filter.resource_id),
            ("status", &filter.status),
        ] {
            if let Some(value) = value {
                parts.push(format!("{name}={}", encode(value)));
            }
        }
        if let Some(start) = start {
            parts.push(format!("start={}", encode(start)));
        }
        format!("{base}?{}", parts.join("&"))
    };
    let next = rows
        .last()
        .filter(|_| more)
        .map(|last| query_of(Some(&format!("{}\n{}", last.rule_id, last.resource_id))));
    let mut heading = String::from("Evaluations");
    if let Some(rule) = filter.rule_id.as_deref() {
        heading.push_str(&format!(
            " of {}",
            rule_of(rule).map_or(rule, |rule| rule.description.as_str())
        ));
    }
    if let Some(resource) = filter.resource_id.as_deref() {
        heading.push_str(&format!(
            " on {}",
            resource_of(resource).map_or(resource, |resource| resource.resource_name.as_str())
        ));
    }
    let body = html! {
        p {
            a href="/ui/posture" { "Posture" } " › "
            a href=(format!("/ui/posture/reports/{}", encode(&report_id))) { "report" } " › evaluations"
        }
        h1 { (heading) }
        form.filters method="get" action=(base) data-autosubmit {
            @if let Some(rule) = &filter.rule_id { input type="hidden" name="rule" value=(rule); }
            @if let Some(resource) = &filter.resource_id { input type="hidden" name="resource" value=(resource); }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for option in ["failure", "pass", "error", "skipped"] {
                        option value=(option) selected[status.as_deref() == Some(option)] { (option) }
                    }
                }
            }
            button type="submit" { "Apply" }
        }
        p { (total) " evaluations match." }
        @if evaluations.is_empty() {
            p.muted { "None on this page." }
        } @else {
            div.table-wrap { table.responsive {
                thead { tr { th { "Resource" } th { "Rule" } th { "Status" } th { "Expected and found" } } }
                tbody {
                    @for evaluation in &evaluations {
                        tr {
                            td data-label="Resource" {
                                @match resource_of(&evaluation.resource_id) {
                                    Some(resource) => { (resource.resource_name) br; span.hint { (resource.environment) " · " (resource.service_name) " · " code { (resource.id) } } },
                                    None => code { (evaluation.resource_id) },
                                }
                            }
                            td data-label="Rule" {
                                (rule_of(&evaluation.rule_id).map_or("", |rule| rule.description.as_str()))
                                br; code.hint { (evaluation.rule_id) }
                            }
                            td data-label="Status" {
                                (layout::badge(evaluation.status.as_str()))
                                @if let Some(reason) = &evaluation.reason { br; span.hint { (reason) } }
                            }
                            td data-label="Details" {
                                @if evaluation.details.is_empty() {
                                    span.muted { "—" }
                                } @else {
                                    table {
                                        thead { tr { th { "Property" } th { "Operator" } th { "Expected" } th { "Found" } } }
                                        tbody {
                                            @for detail in &evaluation.details {
                                                tr {
                                                    td { code { (detail.property) } }
                                                    td { (detail.operator) }
                                                    td { code { (compact(&detail.expected_value)) } }
                                                    td { code { (detail.found_value.as_ref().map_or("(missing)".to_owned(), compact)) } }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
        nav.pager aria-label="Pages" {
            @if params.start.is_some() { a href=(query_of(None)) { "First page" } }
            @if let Some(next) = &next { a href=(next) rel="next" { "Next page" } }
        }
    };
    Ok(layout::page(&heading, &session, Section::Posture, body))
}

/// `?format=` of a download.
#[derive(Debug, Default, Deserialize)]
pub struct DownloadParams {
    pub format: Option<String>,
}

/// `GET /ui/posture/reports/{id}/download?format=csv|pdf|json|oscal`: the same files as the
/// API's download route, for a browser link (which cannot set `Accept`).
pub async fn download(
    State(state): State<AppState>,
    session: Session,
    Path(report_id): Path<String>,
    Query(params): Query<DownloadParams>,
) -> Result<Response, UiError> {
    let name = params.format.as_deref().unwrap_or("csv");
    let format = ReportFormat::from_name(name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            "`format` is csv, pdf, json or oscal",
        )
        .with_target(ErrorTarget::parameter("format"))
    })?;
    Ok(render_report_file(&state, session.instance_id(), &report_id, format).await?)
}
