//! Insights: the findings list with its filters, a finding's page with its evidence (matched
//! events, flows, network connection), and the lifecycle actions (acknowledge, resolve,
//! suppress, reopen). The list is the findings lifecycle listing (`GET /v1/findings`): same
//! filter parsing, same store query, same page tokens.

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate, Utc};
use maud::{Markup, html};
use palisade_model::error::{ErrorCode, ErrorTarget};
use palisade_model::tenancy::Action;
use palisade_store::findings::{OccurrenceKey, StoredOccurrence};
use serde::Deserialize;
use serde_json::Value;

use super::charts::SEVERITIES;
use super::layout::{self, Section};
use super::session::Session;
use super::{UiError, encode};
use crate::error::ApiError;
use crate::routes::findings::{FindingQuery, cursor_token, decode_cursor, finding_filter};
use crate::service::findings::model::ApiOccurrence;
use crate::service::findings::{
    ACTIVITY_INSIGHTS_PROVIDER, FindingReference, NETWORK_INSIGHTS_PROVIDER, OccurrenceView,
    POSTURE_PROVIDER, StatusChangeRequest, occurrence_view, status_change,
};
use crate::state::AppState;

/// Findings per page.
const FINDING_PAGE: u32 = 50;
const STATUSES: [&str; 4] = ["open", "acknowledged", "resolved", "suppressed"];

/// The filter form's fields (all optional; dates are days, `until` inclusive).
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    pub provider: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub resource: Option<String>,
    pub page_token: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// A day of the form as the API's RFC 3339 bound (`until` is the start of the next day).
fn day_bound(
    name: &str,
    value: &Option<String>,
    next_day: bool,
) -> Result<Option<String>, ApiError> {
    let Some(text) = non_empty(value) else {
        return Ok(None);
    };
    let day = NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("`{name}` is not a date (YYYY-MM-DD)"),
        )
        .with_target(ErrorTarget::parameter(name))
    })?;
    let day = if next_day {
        day + Duration::days(1)
    } else {
        day
    };
    Ok(Some(format!("{day}T00:00:00Z")))
}

fn finding_link(stored: &StoredOccurrence) -> String {
    format!(
        "/ui/findings/{}/{}/{}",
        encode(&stored.record.account_id),
        encode(&stored.record.provider_id),
        encode(&stored.record.id)
    )
}

/// `GET /ui/findings`: findings newest first, filtered, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<ListParams>,
) -> Result<Markup, UiError> {
    let instance_id = session.instance_id();
    let query = FindingQuery {
        provider_id: non_empty(&params.provider),
        severity: non_empty(&params.severity),
        status: non_empty(&params.status),
        resource: non_empty(&params.resource),
        since: day_bound("since", &params.since, false)?,
        until: day_bound("until", &params.until, true)?,
        ..FindingQuery::default()
    };
    let filter = finding_filter(&query)?;
    let cursor = decode_cursor(non_empty(&params.page_token).as_deref())?;
    let now = Utc::now();
    if !filter.statuses.is_empty() {
        state.store.expire_suppressions(now).await?;
    }
    let occurrences = state
        .store
        .query_occurrences(instance_id, &filter, cursor.as_ref(), FINDING_PAGE)
        .await?;
    let total = state.store.count_occurrences(instance_id, &filter).await?;
    let mut rows = Vec::with_capacity(occurrences.len());
    for stored in &occurrences {
        rows.push((stored, occurrence_view(stored, now)?));
    }
    let cards =
        crate::service::findings::cards::cards(&state.store, instance_id, instance_id, now).await?;
    // The filters, repeated in the pager's links.
    let mut kept = Vec::new();
    for (name, value) in [
        ("provider", &params.provider),
        ("severity", &params.severity),
        ("status", &params.status),
        ("since", &params.since),
        ("until", &params.until),
        ("resource", &params.resource),
    ] {
        if let Some(value) = non_empty(value) {
            kept.push(format!("{name}={}", encode(&value)));
        }
    }
    let next = occurrences
        .last()
        .filter(|_| occurrences.len() == FINDING_PAGE as usize)
        .map(|last| {
            let mut parts = kept.clone();
            parts.push(format!("page_token={}", encode(&cursor_token(last))));
            format!("/ui/findings?{}", parts.join("&"))
        });
    let first = format!("/ui/findings?{}", kept.join("&"));
    let severity = non_empty(&params.severity).map(|text| text.to_ascii_uppercase());
    let status = non_empty(&params.status);
    let body = html! {
        h1 { "Findings" }
        @if !cards.cards.is_empty() {
            section.cards aria-label="Cards" {
                @for card in &cards.cards {
                    div {
                        h2 { (card.title) }
                        @if !card.subtitle.is_empty() { p.hint { (card.section) " · " (card.subtitle) } }
                        @for element in &card.elements {
                            p { (element.text) " (" (element.days) " days): "
                                @for value in &element.values { strong { (value.value) } " " (value.text) " " }
                            }
                        }
                    }
                }
            }
        }
        form.filters method="get" action="/ui/findings" data-autosubmit {
            label { "Provider"
                input type="text" name="provider" list="providers" value=(params.provider.as_deref().unwrap_or("")) size="16";
            }
            datalist #providers {
                @for provider in [POSTURE_PROVIDER, ACTIVITY_INSIGHTS_PROVIDER, NETWORK_INSIGHTS_PROVIDER] { option value=(provider) {} }
            }
            label { "Severity"
                select name="severity" {
                    option value="" { "any" }
                    @for option in SEVERITIES { option value=(option) selected[severity.as_deref() == Some(option)] { (option.to_ascii_lowercase()) } }
                }
            }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for option in STATUSES { option value=(option) selected[status.as_deref() == Some(option)] { (option) } }
                }
            }
            label { "Seen since" input type="date" name="since" value=(params.since.as_deref().unwrap_or("")); }
            label { "Seen until" input type="date" name="until" value=(params.until.as_deref().unwrap_or("")); }
            label { "Resource" input type="text" name="resource" value=(params.resource.as_deref().unwrap_or("")) size="20"; }
            button type="submit" { "Apply" }
            a href="/ui/findings" { "Clear" }
        }
        p { (total) " findings match." }
        @if rows.is_empty() {
            p.muted { "No findings on this page." }
        } @else {
            div.table-wrap { table.responsive {
                thead { tr { th { "Severity" } th { "Finding" } th { "Resource" } th { "Provider" } th { "Status" } th.num { "Count" } th { "Last seen" } } }
                tbody {
                    @for (stored, view) in &rows {
                        tr {
                            td data-label="Severity" { (layout::badge(stored.record.severity.as_deref().unwrap_or("—"))) }
                            td data-label="Finding" { a href=(finding_link(stored)) { (title_of(&view.occurrence)) } }
                            td data-label="Resource" { (resource_of(&view.occurrence)) }
                            td data-label="Provider" { (stored.record.provider_id) }
                            td data-label="Status" { (layout::badge(&view.status)) }
                            td.num data-label="Count" { (view.occurrence_count) }
                            td data-label="Last seen" { (layout::time(stored.last_seen)) }
                        }
                    }
                }
            } }
        }
        nav.pager aria-label="Pages" {
            @if non_empty(&params.page_token).is_some() { a href=(first) { "First page" } }
            @if let Some(next) = &next { a href=(next) rel="next" { "Next page" } }
        }
    };
    Ok(layout::page("Findings", &session, Section::Findings, body))
}

fn title_of(occurrence: &ApiOccurrence) -> String {
    occurrence
        .short_description
        .clone()
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| occurrence.note_name.clone())
}

fn resource_of(occurrence: &ApiOccurrence) -> String {
    occurrence
        .context
        .as_ref()
        .and_then(|context| {
            context
                .resource_name
                .clone()
                .or_else(|| context.resource_id.clone())
                .or_else(|| context.resource_crn.clone())
        })
        .or_else(|| occurrence.resource_url.clone())
        .unwrap_or_default()
}

/// `?done=` after an action.
#[derive(Debug, Default, Deserialize)]
pub struct DoneParam {
    pub done: Option<String>,
}

/// A JSON value in one table cell.
fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Evidence: arrays of objects (matched events, flows) as tables, objects as facts, the rest as
/// text; the whole as JSON below for what the tables leave out.
fn evidence(reference: &Value) -> Markup {
    let Some(object) = reference.as_object() else {
        return html! { pre { (reference.to_string()) } };
    };
    html! {
        @for (name, value) in object {
            @match value {
                Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
                    @let columns = columns_of(items);
                    h3 { (name.replace('_', " ")) " (" (items.len()) ")" }
                    div.table-wrap { table {
                        thead { tr { @for column in &columns { th { (column) } } } }
                        tbody {
                            @for item in items.iter().take(100) {
                                tr { @for column in &columns { td { code { (cell(&item[*column])) } } } }
                            }
                        }
                    } }
                    @if items.len() > 100 { p.hint { "The first 100 of " (items.len()) "." } }
                }
                Value::Object(fields) => {
                    h3 { (name.replace('_', " ")) }
                    dl.facts { @for (key, field) in fields { dt { (key) } dd { code { (cell(field)) } } } }
                }
                other => {
                    h3 { (name.replace('_', " ")) }
                    p { code { (cell(other)) } }
                }
            }
        }
        details {
            summary { "Evidence as JSON" }
            pre { (serde_json::to_string_pretty(reference).unwrap_or_default()) }
        }
    }
}

/// The columns of an evidence table: the fields of its objects in first-seen order, at most 8.
fn columns_of(items: &[Value]) -> Vec<&str> {
    let mut columns: Vec<&str> = Vec::new();
    for key in items
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|fields| fields.keys())
    {
        if columns.len() == 8 {
            break;
        }
        if !columns.contains(&key.as_str()) {
            columns.push(key);
        }
    }
    columns
}

fn action_forms(session: &Session, view: &OccurrenceView, action: &str) -> Markup {
    let buttons: &[(&str, &str)] = match view.status.as_str() {
        "open" => &[("acknowledged", "Acknowledge"), ("resolved", "Resolve")],
        "acknowledged" => &[("resolved", "Resolve"), ("open", "Reopen")],
        _ => &[("open", "Reopen")],
    };
    html! {
        @if session.can(Action::WriteConfig) {
            section.panel aria-labelledby="actions" {
                h2 #actions { "Actions" }
                div.actions {
                    @for (status, label) in buttons {
                        form.inline method="post" action=(action) {
                            input type="hidden" name="csrf" value=(session.csrf());
                            input type="hidden" name="status" value=(status);
                            button type="submit" { (label) }
                        }
                    }
                }
                @if view.status != "suppressed" {
                    form.stack method="post" action=(action) data-confirm="Suppress this finding?" {
                        input type="hidden" name="csrf" value=(session.csrf());
                        input type="hidden" name="status" value="suppressed";
                        label for="reason" { "Reason for suppressing (required)" }
                        input #reason type="text" name="reason" required;
                        label for="until" { "Suppressed until (optional)" }
                        input #until type="date" name="suppressed_until";
                        button.secondary type="submit" { "Suppress" }
                    }
                }
            }
        } @else {
            (layout::read_only_note(session, Action::WriteConfig))
        }
    }
}

/// `GET /ui/findings/{account}/{provider}/{id}`: one finding with its evidence.
pub async fn finding(
    State(state): State<AppState>,
    session: Session,
    Path((account_id, provider_id, occurrence_id)): Path<(String, String, String)>,
    Query(done): Query<DoneParam>,
) -> Result<Markup, UiError> {
    let key = OccurrenceKey {
        account_id,
        provider_id,
        id: occurrence_id,
    };
    let stored = state
        .store
        .get_occurrence(session.instance_id(), &key)
        .await?
        .ok_or_else(|| ApiError::not_found("finding", &key.id))?;
    let view = occurrence_view(&stored, Utc::now())?;
    let occurrence = &view.occurrence;
    let finding = occurrence.finding.as_ref();
    let title = title_of(occurrence);
    let action = format!("{}/status", finding_link(&stored));
    let body = html! {
        p { a href="/ui/findings" { "Findings" } " › finding" }
        h1 { (title) }
        (layout::flash(done.done.as_deref()))
        div.grid2 {
            section.panel {
                dl.facts {
                    dt { "Severity" } dd { (layout::badge(finding.and_then(|finding| finding.severity.as_deref()).unwrap_or("—"))) }
                    dt { "Certainty" } dd { (finding.and_then(|finding| finding.certainty.as_deref()).unwrap_or("—")) }
                    dt { "Status" } dd {
                        (layout::badge(&view.status))
                        @if let Some(reason) = &view.status_reason { " — " (reason) }
                        @if let Some(until) = &view.suppressed_until { " until " (layout::time_text(until)) }
                    }
                    dt { "Resource" } dd { (resource_of(occurrence)) }
                    dt { "Provider" } dd { (view.provider_id) " · account " (view.account_id) }
                    dt { "Kind of finding" } dd { code { (occurrence.note_name) } }
                    dt { "Seen" } dd { (view.occurrence_count) " times, first " (layout::time_text(&view.first_seen)) ", last " (layout::time_text(&view.last_seen)) }
                }
            }
            (action_forms(&session, &view, &action))
        }
        @if let Some(description) = &occurrence.long_description {
            h2 { "Description" }
            p { (description) }
        }
        @if let Some(remediation) = &occurrence.remediation {
            h2 { "Remediation" }
            p { (remediation) }
        }
        @if let Some(steps) = finding.and_then(|finding| finding.next_steps.as_ref()).filter(|steps| !steps.is_empty()) {
            h2 { "Next steps" }
            ol {
                @for step in steps {
                    li {
                        (step.title.as_deref().unwrap_or(""))
                        @if let Some(url) = step.url.as_deref().filter(|url| url.starts_with("https://") || url.starts_with("http://")) {
                            " " a href=(url) rel="noopener noreferrer" { "more" }
                        }
                    }
                }
            }
        }
        @if let Some(connection) = finding.and_then(|finding| finding.network_connection.as_ref()) {
            h2 { "Network connection" }
            dl.facts {
                dt { "Direction" } dd { (connection.direction.as_deref().unwrap_or("—")) }
                dt { "Protocol" } dd { (connection.protocol.as_deref().unwrap_or("—")) }
                dt { "Client" } dd { code { (connection.client.as_ref().map(|address| serde_json::to_string(address).unwrap_or_default()).unwrap_or_default()) } }
                dt { "Server" } dd { code { (connection.server.as_ref().map(|address| serde_json::to_string(address).unwrap_or_default()).unwrap_or_default()) } }
            }
        }
        @if let Some(transferred) = finding.and_then(|finding| finding.data_transferred.as_ref()) {
            h2 { "Data transferred" }
            dl.facts {
                dt { "Client bytes" } dd { (transferred.client_bytes.unwrap_or(0)) }
                dt { "Server bytes" } dd { (transferred.server_bytes.unwrap_or(0)) }
                dt { "Client packets" } dd { (transferred.client_packets.unwrap_or(0)) }
                dt { "Server packets" } dd { (transferred.server_packets.unwrap_or(0)) }
            }
        }
        @if let Some(reference) = &occurrence.reference_data {
            section aria-labelledby="evidence" {
                h2 #evidence { "Evidence" }
                (evidence(reference))
            }
        }
    };
    Ok(layout::page(&title, &session, Section::Findings, body))
}

/// The lifecycle form's fields.
#[derive(Debug, Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub suppressed_until: String,
}

/// `POST /ui/findings/{account}/{provider}/{id}/status`: the same validation and store call as
/// `POST /v1/findings/status`, for one finding.
pub async fn change_status(
    State(state): State<AppState>,
    session: Session,
    Path((account_id, provider_id, occurrence_id)): Path<(String, String, String)>,
    Form(form): Form<StatusForm>,
) -> Result<Response, UiError> {
    session.require(Action::WriteConfig)?;
    session.check_csrf(&form.csrf)?;
    let now = Utc::now();
    let suppressed_until = day_bound(
        "suppressed_until",
        &Some(form.suppressed_until.clone()),
        true,
    )?
    .and_then(|text| chrono::DateTime::parse_from_rfc3339(&text).ok())
    .map(|at| at.with_timezone(&Utc));
    let request = StatusChangeRequest {
        findings: vec![FindingReference {
            account_id: account_id.clone(),
            provider_id: provider_id.clone(),
            id: occurrence_id.clone(),
        }],
        status: form.status.clone(),
        reason: Some(form.reason.clone()),
        suppressed_until,
    };
    let change = status_change(&request, now)?;
    let key = OccurrenceKey {
        account_id,
        provider_id,
        id: occurrence_id,
    };
    let changed = state
        .store
        .set_occurrence_status(
            session.instance_id(),
            std::slice::from_ref(&key),
            &change,
            now,
        )
        .await?;
    if changed.is_empty() {
        return Err(ApiError::not_found("finding", &key.id).into());
    }
    tracing::info!(status = %change.status, by = %session.key.id, "finding status changed from the dashboard");
    let location = format!(
        "/ui/findings/{}/{}/{}?done=Status+set+to+{}.",
        encode(&key.account_id),
        encode(&key.provider_id),
        encode(&key.id),
        change.status.as_str()
    );
    Ok((StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response())
}
