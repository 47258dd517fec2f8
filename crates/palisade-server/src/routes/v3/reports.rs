//! Scans and reports: `POST /v3/scans`, `/v3/reports[/latest|/{report_id}[/summary|/controls|
//! /evaluations|/resources|/download]]`.

use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_posture::{Rollup, ScanEvaluation};
use palisade_store::{EvaluationFilter, StoredReport};
use serde_json::{Value, json};

use crate::auth::{Authorized, ConfigWrite, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::service::documents::{BodyErrors, body_object};
use crate::state::AppState;

/// Runs a scan of an attachment now.
#[utoipa::path(post, path = "/instances/{instance_id}/v3/scans", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 201, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody),
        (status = 404, body = palisade_model::error::ErrorBody), (status = 409, body = palisade_model::error::ErrorBody)))]
pub async fn create_scan(
    State(state): State<AppState>,
    auth: Authorized<ConfigWrite>,
    Path(_instance_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let request = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&request, "", &["attachment_id"], &["account_id"]);
    errors.check_string(&request, "", "attachment_id", true);
    errors.finish(())?;
    let attachment_id = request
        .get("attachment_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let scan = crate::service::scans::run_scan(
        &state,
        auth.instance_id(),
        attachment_id,
        "ondemand",
        Utc::now(),
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(scan)))
}

async fn report_of(
    state: &AppState,
    instance_id: &str,
    report_id: &str,
) -> ApiResult<(StoredReport, Rollup)> {
    let report = state
        .store
        .get_report(instance_id, report_id)
        .await?
        .ok_or_else(|| ApiError::not_found("report", report_id))?;
    let rollup: Rollup =
        serde_json::from_value(report.body["rollup"].clone()).map_err(|error| {
            ApiError::internal(format!("stored roll-up of report {report_id}: {error}"))
        })?;
    Ok((report, rollup))
}

/// The public SCC shape of a stored report (without the roll-up's details).
fn public_report(report: &StoredReport) -> Value {
    let mut body = report.body.clone();
    if let Some(object) = body.as_object_mut() {
        object.remove("rollup");
    }
    body
}

/// Lists reports, newest first, filtered by `report_attachment_id`, `report_profile_id`, `type`.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_attachment_id" = Option<String>, Query), ("report_profile_id" = Option<String>, Query),
        ("type" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = serde_json::Value)))]
pub async fn list_reports(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(instance_id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    let limit = query
        .get("limit")
        .and_then(|limit| limit.parse().ok())
        .unwrap_or(50_u32)
        .clamp(1, 200);
    let reports = state
        .store
        .list_reports(
            auth.instance_id(),
            query.get("report_attachment_id").map(String::as_str),
            10_000,
        )
        .await?;
    let matching: Vec<Value> = reports
        .iter()
        .filter(|report| {
            query
                .get("report_profile_id")
                .is_none_or(|profile| &report.profile_id == profile)
        })
        .filter(|report| {
            query
                .get("type")
                .is_none_or(|kind| &report.scan_type == kind)
        })
        .map(public_report)
        .collect();
    let total_count = matching.len();
    let page: Vec<Value> = matching.into_iter().take(limit as usize).collect();
    Ok(ApiJson(json!({
        "limit": limit, "total_count": total_count,
        "first": {"href": format!("/instances/{instance_id}/v3/reports?limit={limit}")},
        "reports": page,
    })))
}

/// The latest report of every attachment, with their combined statistics.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/latest", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path)), responses((status = 200, body = serde_json::Value)))]
pub async fn get_latest_reports(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path(_instance_id): Path<String>,
) -> ApiResult<ApiJson<Value>> {
    let reports = state
        .store
        .list_reports(auth.instance_id(), None, 10_000)
        .await?;
    let mut seen = std::collections::HashSet::new();
    let latest: Vec<&StoredReport> = reports
        .iter()
        .filter(|report| seen.insert(report.attachment_id.clone()))
        .collect();
    let (mut passed, mut total) = (0_u64, 0_u64);
    for report in &latest {
        let score = &report.body["rollup"]["score"];
        passed += score["passed"].as_u64().unwrap_or(0);
        total += score["total_count"].as_u64().unwrap_or(0);
    }
    let percent = (passed * 100).checked_div(total).unwrap_or(0);
    Ok(ApiJson(json!({
        "home_account_id": auth.instance_id(),
        "controls_summary": latest.first().map_or(Value::Null, |report| report.body["controls_summary"].clone()),
        "evaluations_summary": latest.first().map_or(Value::Null, |report| report.body["evaluations_summary"].clone()),
        "score": {"passed": passed, "total_count": total, "percent": percent},
        "reports": latest.iter().map(|report| public_report(report)).collect::<Vec<_>>(),
    })))
}

/// Returns one report.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_report(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let (report, _) = report_of(&state, auth.instance_id(), &report_id).await?;
    Ok(ApiJson(public_report(&report)))
}

/// A report's summary: score, control, evaluation and resource statistics.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/summary", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_report_summary(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let (report, rollup) = report_of(&state, auth.instance_id(), &report_id).await?;
    Ok(ApiJson(json!({
        "report_id": report_id, "isntance_id": auth.instance_id(), "instance_id": auth.instance_id(),
        "account": report.body["account"], "score": rollup.score,
        "evaluations": rollup.evaluations_summary, "controls": rollup.controls_summary,
        "resources": rollup.resources_summary,
    })))
}

/// A report's controls with their statistics, filtered by `control_name`, `control_category`,
/// `status`.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/controls", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path), ("control_name" = Option<String>, Query),
        ("control_category" = Option<String>, Query), ("status" = Option<String>, Query)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_report_controls(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    let (_, rollup) = report_of(&state, auth.instance_id(), &report_id).await?;
    let controls: Vec<Value> = serde_json::to_value(&rollup.controls)
        .unwrap_or(Value::Null)
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|control| {
            ["control_name", "control_category", "status"]
                .iter()
                .all(|key| {
                    query
                        .get(*key)
                        .is_none_or(|wanted| control[*key] == wanted.as_str())
                })
        })
        .collect();
    Ok(ApiJson(
        json!({"report_id": report_id, "home_account_id": auth.instance_id(), "controls": controls}),
    ))
}

/// A report's evaluations, filtered by `status`, `assessment_id` (rule) and `target_id`
/// (resource), in pages (`limit`, `start`).
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/evaluations", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path), ("status" = Option<String>, Query), ("assessment_id" = Option<String>, Query),
        ("target_id" = Option<String>, Query), ("limit" = Option<u32>, Query), ("start" = Option<String>, Query)),
    responses((status = 200, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn list_report_evaluations(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((instance_id, report_id)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    let (report, rollup) = report_of(&state, auth.instance_id(), &report_id).await?;
    if let Some(status) = query.get("status")
        && !["pass", "failure", "error", "skipped"].contains(&status.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`status` is pass, failure, error or skipped",
        )
        .with_target(ErrorTarget::parameter("status")));
    }
    let limit = query
        .get("limit")
        .and_then(|limit| limit.parse().ok())
        .unwrap_or(50_u32)
        .clamp(1, 200);
    // `start` is the last (rule, resource) of the previous page, joined by a newline.
    let after = query
        .get("start")
        .and_then(|start| start.split_once('\n'))
        .map(|(rule, resource)| (rule.to_owned(), resource.to_owned()));
    let filter = EvaluationFilter {
        status: query.get("status").cloned(),
        rule_id: query.get("assessment_id").cloned(),
        resource_id: query.get("target_id").cloned(),
        after,
        limit: Some(limit + 1),
    };
    let total_count = state
        .store
        .count_evaluations(auth.instance_id(), &report_id, &filter)
        .await?;
    let mut rows = state
        .store
        .list_evaluations(auth.instance_id(), &report_id, &filter)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let evaluate_time = report.body["scan_time"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut evaluations = Vec::with_capacity(rows.len());
    for row in &rows {
        let evaluation: ScanEvaluation = serde_json::from_value(row.body.clone())
            .map_err(|error| ApiError::internal(format!("stored evaluation: {error}")))?;
        let Some(rule) = rollup
            .rules
            .iter()
            .find(|rule| rule.rule_id == evaluation.rule_id)
        else {
            continue;
        };
        let resource = rollup
            .resources
            .iter()
            .find(|resource| resource.id == evaluation.resource_id);
        let scc = palisade_posture::scc::SccEvaluation::of(
            &evaluation,
            rule,
            resource,
            &report_id,
            auth.instance_id(),
            &evaluate_time,
        );
        evaluations.push(serde_json::to_value(scc).unwrap_or(Value::Null));
    }
    let mut answer = json!({
        "limit": limit, "total_count": total_count,
        "first": {"href": format!("/instances/{instance_id}/v3/reports/{report_id}/evaluations?limit={limit}")},
        "home_account_id": auth.instance_id(), "report_id": report_id, "evaluations": evaluations,
    });
    if more && let Some(last) = rows.last() {
        let start = format!("{}\n{}", last.rule_id, last.resource_id);
        answer["next"] = json!({"href": format!("/instances/{instance_id}/v3/reports/{report_id}/evaluations?limit={limit}"), "start": start});
    }
    Ok(ApiJson(answer))
}

/// A report's resources with their statistics, filtered by `id`, `resource_name`, `status`.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/resources", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path), ("id" = Option<String>, Query), ("resource_name" = Option<String>, Query),
        ("status" = Option<String>, Query), ("limit" = Option<u32>, Query), ("start" = Option<String>, Query)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn list_report_resources(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((instance_id, report_id)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    let (_, rollup) = report_of(&state, auth.instance_id(), &report_id).await?;
    let limit = query
        .get("limit")
        .and_then(|limit| limit.parse().ok())
        .unwrap_or(50_u32)
        .clamp(1, 200);
    let start = query.get("start").cloned().unwrap_or_default();
    let mut matching: Vec<Value> = serde_json::to_value(&rollup.resources)
        .unwrap_or(Value::Null)
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|resource| {
            ["id", "resource_name", "status"].iter().all(|key| {
                query
                    .get(*key)
                    .is_none_or(|wanted| resource[*key] == wanted.as_str())
            })
        })
        .collect();
    matching.sort_by(|left, right| left["id"].as_str().cmp(&right["id"].as_str()));
    let total_count = matching.len();
    let mut page: Vec<Value> = matching
        .into_iter()
        .filter(|resource| resource["id"].as_str().unwrap_or_default() > start.as_str())
        .collect();
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let mut answer = json!({
        "limit": limit, "total_count": total_count,
        "first": {"href": format!("/instances/{instance_id}/v3/reports/{report_id}/resources?limit={limit}")},
        "home_account_id": auth.instance_id(), "report_id": report_id, "resources": page,
    });
    if more
        && let Some(last) = answer["resources"]
            .as_array()
            .and_then(|resources| resources.last())
            .map(|resource| resource["id"].clone())
    {
        answer["next"] = json!({"href": format!("/instances/{instance_id}/v3/reports/{report_id}/resources?limit={limit}&start={}", last.as_str().unwrap_or_default()), "start": last});
    }
    Ok(ApiJson(answer))
}

/// The file formats a report downloads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Csv,
    Pdf,
    /// The whole report in one JSON document (Palisade).
    Json,
    /// OSCAL 1.1.2 assessment results (Palisade).
    Oscal,
}

impl ReportFormat {
    /// Every format, by the name scan report jobs use.
    const NAMES: [(&'static str, ReportFormat); 4] = [
        ("csv", ReportFormat::Csv),
        ("pdf", ReportFormat::Pdf),
        ("json", ReportFormat::Json),
        ("oscal", ReportFormat::Oscal),
    ];

    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, format)| *format == self)
            .map_or("csv", |(name, _)| name)
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, format)| *format)
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Pdf => "application/pdf",
            Self::Json => "application/json",
            Self::Oscal => "application/oscal+json",
        }
    }

    /// The format an `Accept` header asks for (`None` header: CSV). IBM's SDK spells CSV
    /// `application/csv`.
    fn from_accept(headers: &HeaderMap, default: ReportFormat) -> ApiResult<Self> {
        let Some(accept) = headers.get(ACCEPT).and_then(|value| value.to_str().ok()) else {
            return Ok(default);
        };
        let accept = accept.to_ascii_lowercase();
        if accept.contains("application/pdf") {
            Ok(Self::Pdf)
        } else if accept.contains("application/oscal+json") {
            Ok(Self::Oscal)
        } else if accept.contains("application/json") {
            Ok(Self::Json)
        } else if accept.contains("text/csv") || accept.contains("application/csv") {
            Ok(Self::Csv)
        } else if accept.contains("*/*") {
            Ok(default)
        } else {
            Err(ApiError::new(
                ErrorCode::BadRequest,
                "`Accept` must be text/csv, application/pdf, application/json or application/oscal+json",
            )
            .with_target(ErrorTarget::header("Accept")))
        }
    }
}

/// Renders a stored report as a file, with its drift since the previous report of the same
/// attachment.
pub(crate) async fn render_report_file(
    state: &AppState,
    instance_id: &str,
    report_id: &str,
    format: ReportFormat,
) -> ApiResult<Response> {
    let (report, rollup) = report_of(state, instance_id, report_id).await?;
    let previous = state
        .store
        .list_reports(instance_id, Some(&report.attachment_id), 10_000)
        .await?
        .into_iter()
        .filter(|older| older.created_on < report.created_on)
        .max_by_key(|older| older.created_on);
    let drift = match previous {
        Some(previous) => {
            let (_, previous_rollup) = report_of(state, instance_id, &previous.id).await?;
            Some(palisade_posture::drift::diff_rollups(
                &previous_rollup,
                &rollup,
            ))
        }
        None => None,
    };
    let mut evaluations = Vec::new();
    let mut filter = EvaluationFilter {
        limit: Some(10_000),
        ..EvaluationFilter::default()
    };
    loop {
        let rows = state
            .store
            .list_evaluations(instance_id, report_id, &filter)
            .await?;
        let Some(last) = rows
            .last()
            .map(|row| (row.rule_id.clone(), row.resource_id.clone()))
        else {
            break;
        };
        for row in rows {
            evaluations.push(
                serde_json::from_value::<ScanEvaluation>(row.body)
                    .map_err(|error| ApiError::internal(format!("stored evaluation: {error}")))?,
            );
        }
        filter.after = Some(last);
    }
    let time = |key: &str| {
        report.body[key]
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map_or_else(Utc::now, |at| at.with_timezone(&Utc))
    };
    let meta = palisade_report::ReportMeta {
        report_id: report_id.to_owned(),
        report_type: report.scan_type.clone(),
        created_on: time("created_on"),
        scan_time: time("scan_time"),
        profile_id: report.profile_id.clone(),
        profile_name: report.body["profile"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        profile_version: report.body["profile"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        attachment_id: Some(report.attachment_id.clone()),
        attachment_name: report.body["attachment"]["name"]
            .as_str()
            .map(str::to_owned),
        instance_id: Some(instance_id.to_owned()),
    };
    let bytes = tokio::task::spawn_blocking(move || -> ApiResult<Vec<u8>> {
        let data = palisade_report::ReportData {
            meta: &meta,
            rollup: &rollup,
            drift: drift.as_ref(),
        };
        match format {
            ReportFormat::Pdf => palisade_report::pdf::render_pdf(&data, evaluations.iter())
                .map_err(|error| ApiError::internal(format!("pdf: {error}"))),
            ReportFormat::Csv => {
                let mut bytes = Vec::new();
                palisade_report::csv::write_csv(&data, evaluations.iter(), &mut bytes)
                    .map_err(|error| ApiError::internal(format!("csv: {error}")))?;
                Ok(bytes)
            }
            ReportFormat::Json => {
                let document = palisade_report::json::render_json(&data, evaluations.iter())
                    .map_err(|error| ApiError::internal(format!("json: {error}")))?;
                serde_json::to_vec_pretty(&document)
                    .map_err(|error| ApiError::internal(format!("json: {error}")))
            }
            ReportFormat::Oscal => {
                let document =
                    palisade_report::oscal::render_assessment_results(&data, evaluations.iter());
                serde_json::to_vec_pretty(&document)
                    .map_err(|error| ApiError::internal(format!("oscal: {error}")))
            }
        }
    })
    .await
    .map_err(|error| ApiError::internal(format!("report rendering failed: {error}")))??;
    let extension = match format {
        ReportFormat::Oscal => "oscal.json",
        other => other.name(),
    };
    let disposition = format!("attachment; filename=\"report-{report_id}.{extension}\"");
    Ok((
        [
            (CONTENT_TYPE, format.content_type().to_owned()),
            (CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// Downloads a report as CSV (`Accept: text/csv`, the default), PDF (`application/pdf`), JSON
/// (`application/json`) or OSCAL assessment results (`application/oscal+json`), with the drift
/// since the attachment's previous report.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/download", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path), ("Accept" = Option<String>, Header, description = "text/csv, application/pdf, application/json or application/oscal+json")),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_report_download_file(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let format = ReportFormat::from_accept(&headers, ReportFormat::Csv)?;
    render_report_file(&state, auth.instance_id(), &report_id, format).await
}

/// Scan report export jobs, as documents.
const SCAN_REPORT: crate::service::documents::Kind = crate::service::documents::Kind {
    store_kind: "scan_report",
    label: "scan report",
};

/// Starts an export of a report as a file (`format`: `csv`, `pdf`, or Palisade's `json` and
/// `oscal`), optionally for one scope or subscope of the attachment. Files are rendered from
/// the stored report when downloaded, so a job is complete as soon as it is created.
#[utoipa::path(post, path = "/instances/{instance_id}/v3/reports/{report_id}/scan_reports", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path)), request_body = serde_json::Value,
    responses((status = 202, body = serde_json::Value), (status = 400, body = palisade_model::error::ErrorBody), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn create_scan_report(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, ApiJson<Value>)> {
    let instance_id = auth.instance_id().to_owned();
    let (report, _) = report_of(&state, &instance_id, &report_id).await?;
    let object = body_object(body)?;
    let mut errors = BodyErrors::default();
    errors.check_keys(&object, "", &["format"], &["scope_id", "subscope_id"]);
    errors.check_enum(&object, "", "format", &["csv", "pdf", "json", "oscal"]);
    errors.check_string(&object, "", "scope_id", true);
    errors.check_string(&object, "", "subscope_id", true);
    errors.finish(())?;
    let format = object
        .get("format")
        .and_then(Value::as_str)
        .and_then(ReportFormat::from_name);
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    let (scope_id, subscope_id) = (text("scope_id"), text("subscope_id"));
    let format = format.ok_or_else(|| ApiError::internal("format checked above"))?;
    // A scope must be one the report's attachment covers.
    let attachment_scopes: Vec<String> = report.body["attachment"]["scope"]
        .as_array()
        .or_else(|| report.body["scope"].as_array())
        .map(|scopes| {
            scopes
                .iter()
                .filter_map(|scope| scope["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(scope_id) = &scope_id
        && !attachment_scopes.is_empty()
        && !attachment_scopes.contains(scope_id)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`/scope_id`: scope `{scope_id}` is not scanned by this report's attachment"),
        )
        .with_target(ErrorTarget::field("/scope_id")));
    }
    let id = crate::service::documents::new_id();
    let job = json!({
        "id": id,
        "scan_id": report.body["scan_id"].as_str().unwrap_or(&report_id),
        "instance_id": instance_id,
        "report_id": report_id,
        "scope_id": scope_id,
        "subscope_id": subscope_id,
        "status": "completed",
        "created_on": crate::service::documents::timestamp(Utc::now()),
        "format": format.name(),
        "href": format!("/instances/{instance_id}/v3/reports/{report_id}/scan_reports/{id}/download"),
    });
    crate::service::documents::insert(&state, &instance_id, SCAN_REPORT, &id, &job).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(json!({"id": id}))))
}

fn public_job(job: &Value) -> Value {
    let mut job = job.clone();
    if let Some(object) = job.as_object_mut() {
        object.remove("report_id");
        object.retain(|_, value| !value.is_null());
    }
    job
}

/// Lists a report's export jobs, newest first, optionally of one scope or subscope.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/scan_reports", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path), ("scope_id" = Option<String>, Query), ("subscope_id" = Option<String>, Query), ("sort" = Option<String>, Query)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn list_scan_reports(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    let instance_id = auth.instance_id().to_owned();
    report_of(&state, &instance_id, &report_id).await?;
    let mut jobs: Vec<Value> = crate::service::documents::all(&state, &instance_id, SCAN_REPORT)
        .await?
        .into_iter()
        .map(|document| document.body)
        .filter(|job| job["report_id"] == report_id.as_str())
        .filter(|job| {
            ["scope_id", "subscope_id"].iter().all(|key| {
                query
                    .get(*key)
                    .is_none_or(|wanted| job[*key] == wanted.as_str())
            })
        })
        .collect();
    jobs.sort_by(|left, right| {
        right["created_on"]
            .as_str()
            .cmp(&left["created_on"].as_str())
            .then_with(|| right["id"].as_str().cmp(&left["id"].as_str()))
    });
    let total = jobs.len();
    Ok(ApiJson(json!({
        "limit": total.max(1),
        "total_count": total,
        "first": {"href": format!("/instances/{instance_id}/v3/reports/{report_id}/scan_reports")},
        "scope_id": query.get("scope_id"),
        "subscope_id": query.get("subscope_id"),
        "scan_reports": jobs.iter().map(public_job).collect::<Vec<_>>(),
    })))
}

async fn scan_report_job(
    state: &AppState,
    instance_id: &str,
    report_id: &str,
    job_id: &str,
) -> ApiResult<Value> {
    let job = crate::service::documents::get(state, instance_id, SCAN_REPORT, job_id)
        .await?
        .body;
    if job["report_id"] != report_id {
        return Err(ApiError::not_found("scan report", job_id));
    }
    Ok(job)
}

/// Returns one export job.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/scan_reports/{job_id}", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path), ("job_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_scan_report(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id, job_id)): Path<(String, String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let job = scan_report_job(&state, auth.instance_id(), &report_id, &job_id).await?;
    Ok(ApiJson(public_job(&job)))
}

/// Downloads an export job's file, in the job's format.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/scan_reports/{job_id}/download", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path), ("job_id" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = String), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_scan_report_download_file(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id, job_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let job = scan_report_job(&state, auth.instance_id(), &report_id, &job_id).await?;
    let format = job["format"]
        .as_str()
        .and_then(ReportFormat::from_name)
        .unwrap_or(ReportFormat::Csv);
    render_report_file(&state, auth.instance_id(), &report_id, format).await
}

/// The tags of a report's resources (user tags as `key:value`).
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/tags", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_report_tags(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let (_, rollup) = report_of(&state, auth.instance_id(), &report_id).await?;
    let mut user = std::collections::BTreeSet::new();
    for resource in serde_json::to_value(&rollup.resources)
        .unwrap_or(Value::Null)
        .as_array()
        .into_iter()
        .flatten()
    {
        for tag in resource["tags"]["user"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            user.insert(tag.to_owned());
        }
    }
    Ok(ApiJson(
        json!({"report_id": report_id, "tags": {"user": user, "access": [], "service": []}}),
    ))
}

/// The rule a report's evaluations used.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/rules/{rule_id}", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path), ("rule_id" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_report_rule(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id, rule_id)): Path<(String, String, String)>,
) -> ApiResult<ApiJson<Value>> {
    let (_, rollup) = report_of(&state, auth.instance_id(), &report_id).await?;
    if !rollup.rules.iter().any(|rule| rule.rule_id == rule_id) {
        return Err(ApiError::not_found("rule of this report", &rule_id));
    }
    let stored = state
        .store
        .get_document(auth.instance_id(), super::RULE.store_kind, &rule_id)
        .await?
        .map(|document| document.body);
    let builtin = || {
        palisade_posture::content::builtin()
            .ok()
            .and_then(|content| {
                content
                    .rule_documents
                    .iter()
                    .find(|rule| rule["id"] == rule_id.as_str())
                    .cloned()
            })
    };
    let rule = stored
        .or_else(builtin)
        .ok_or_else(|| ApiError::not_found("rule", &rule_id))?;
    let field = |key: &str| rule.get(key).cloned().unwrap_or(Value::Null);
    Ok(ApiJson(json!({
        "id": rule_id, "type": rule.get("type").cloned().unwrap_or(json!("system_defined")),
        "description": field("description"), "version": field("version"), "account_id": field("account_id"),
        "created_on": field("created_on"), "created_by": field("created_by"), "updated_on": field("updated_on"),
        "updated_by": field("updated_by"), "labels": rule.get("labels").cloned().unwrap_or(json!([])),
    })))
}

/// The controls summary of every report of the same attachment, oldest first: how compliance
/// drifted scan after scan.
#[utoipa::path(get, path = "/instances/{instance_id}/v3/reports/{report_id}/violations_drift", tag = "v3 reports", security(("bearer" = [])),
    params(("instance_id" = String, Path), ("report_id" = String, Path), ("scan_time_duration" = Option<u32>, Query, description = "Days back from the report's scan")),
    responses((status = 200, body = serde_json::Value), (status = 404, body = palisade_model::error::ErrorBody)))]
pub async fn get_report_violations_drift(
    State(state): State<AppState>,
    auth: Authorized<ReadAccess>,
    Path((_instance_id, report_id)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<ApiJson<Value>> {
    let (report, _) = report_of(&state, auth.instance_id(), &report_id).await?;
    let days = query
        .get("scan_time_duration")
        .and_then(|days| days.parse::<i64>().ok());
    let since = days.map(|days| report.created_on - chrono::Duration::days(days));
    let mut history = state
        .store
        .list_reports(auth.instance_id(), Some(&report.attachment_id), 10_000)
        .await?;
    history.retain(|older| {
        older.created_on <= report.created_on && since.is_none_or(|since| older.created_on >= since)
    });
    history.reverse();
    let group = report.body["group_id"].clone();
    let data_points: Vec<Value> = history
        .iter()
        .map(|older| json!({"report_id": older.id, "report_group_id": group, "scan_time": older.body["scan_time"], "controls_summary": older.body["controls_summary"]}))
        .collect();
    Ok(ApiJson(
        json!({"home_account_id": auth.instance_id(), "report_group_id": group, "data_points": data_points}),
    ))
}
