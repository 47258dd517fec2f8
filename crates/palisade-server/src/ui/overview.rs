//! The overview: what a security team opens every morning. Compliance score per attachment with
//! its trend, the controls failing most, the resources most at risk, findings by severity per
//! day, and the inventory and collectors.

use axum::extract::State;
use chrono::{Duration, Utc};
use maud::{Markup, html};
use palisade_posture::ComplianceStatus;
use palisade_store::ResourceFilter;
use palisade_store::findings::{FindingStatus, OccurrenceFilter};

use super::charts::{self, SEVERITIES};
use super::layout::{self, Section};
use super::posture::rollup_of;
use super::session::Session;
use super::{UiError, encode};
use crate::routes::v3::ATTACHMENT;
use crate::service::{collectors, documents};
use crate::state::AppState;

/// Reports drawn in an attachment's trend.
const TREND_REPORTS: u32 = 12;
/// Attachments shown on the overview (the posture page lists them all).
const OVERVIEW_ATTACHMENTS: usize = 24;
/// Days of the findings chart.
const FINDING_DAYS: i64 = 14;

struct AttachmentCard {
    id: String,
    name: String,
    latest_report: Option<String>,
    points: Vec<(chrono::DateTime<Utc>, f64)>,
}

struct FailingControl {
    failures: u64,
    attachment: String,
    report_id: String,
    control_id: String,
    control_name: String,
}

struct RiskyResource {
    failures: u64,
    attachment: String,
    report_id: String,
    resource_id: String,
    resource_name: String,
    environment: String,
}

/// `GET /ui/`.
pub async fn page(State(state): State<AppState>, session: Session) -> Result<Markup, UiError> {
    let instance_id = session.instance_id();
    let attachments = documents::all(&state, instance_id, ATTACHMENT).await?;
    let mut cards = Vec::new();
    let mut failing = Vec::new();
    let mut risky = Vec::new();
    for attachment in attachments.iter().take(OVERVIEW_ATTACHMENTS) {
        let name = attachment.body["name"]
            .as_str()
            .unwrap_or(&attachment.id)
            .to_owned();
        // The trend reads summary columns only; the latest report alone is read whole.
        let reports = state
            .store
            .list_report_summaries(instance_id, Some(&attachment.id), TREND_REPORTS)
            .await?;
        let points = reports
            .iter()
            .rev()
            .filter_map(|report| {
                report
                    .score_percent()
                    .map(|score| (report.created_on, score))
            })
            .collect();
        let latest = match reports.first() {
            Some(summary) => state.store.get_report(instance_id, &summary.id).await?,
            None => None,
        };
        if let Some(latest) = &latest {
            let rollup = rollup_of(latest)?;
            for control in &rollup.controls {
                if control.stats.status != ComplianceStatus::NotCompliant {
                    continue;
                }
                let failures = control
                    .control_specifications
                    .iter()
                    .flat_map(|specification| &specification.assessments)
                    .map(|assessment| assessment.failure_count)
                    .sum();
                failing.push(FailingControl {
                    failures,
                    attachment: name.clone(),
                    report_id: latest.id.clone(),
                    control_id: control.id.clone(),
                    control_name: control.control_name.clone(),
                });
            }
            for resource in rollup
                .resources
                .iter()
                .filter(|resource| resource.failure_count > 0)
            {
                risky.push(RiskyResource {
                    failures: resource.failure_count,
                    attachment: name.clone(),
                    report_id: latest.id.clone(),
                    resource_id: resource.id.clone(),
                    resource_name: resource.resource_name.clone(),
                    environment: resource.environment.clone(),
                });
            }
        }
        cards.push(AttachmentCard {
            id: attachment.id.clone(),
            name,
            latest_report: reports.first().map(|report| report.id.clone()),
            points,
        });
    }
    failing.sort_by_key(|control| std::cmp::Reverse(control.failures));
    failing.truncate(10);
    risky.sort_by_key(|resource| std::cmp::Reverse(resource.failures));
    risky.truncate(10);

    // Findings per day and severity: one indexed count per (day, severity) rather than reading
    // the findings themselves, so the cost does not grow with their number.
    let today = Utc::now().date_naive();
    let mut days = Vec::new();
    for offset in (0..FINDING_DAYS).rev() {
        let day = today - Duration::days(offset);
        let since = day.and_hms_opt(0, 0, 0).map(|at| at.and_utc());
        let until = since.map(|at| at + Duration::days(1));
        let mut counts = [0_u64; 4];
        for (slot, severity) in counts.iter_mut().zip(SEVERITIES) {
            let filter = OccurrenceFilter {
                kinds: vec!["FINDING".into()],
                severities: vec![severity.into()],
                since,
                until,
                ..OccurrenceFilter::default()
            };
            *slot = state.store.count_occurrences(instance_id, &filter).await?;
        }
        days.push((day, counts));
    }
    let mut open = [0_u64; 4];
    for (slot, severity) in open.iter_mut().zip(SEVERITIES) {
        let filter = OccurrenceFilter {
            kinds: vec!["FINDING".into()],
            severities: vec![severity.into()],
            statuses: vec![FindingStatus::Open],
            ..OccurrenceFilter::default()
        };
        *slot = state.store.count_occurrences(instance_id, &filter).await?;
    }
    let resources = state
        .store
        .count_resources(instance_id, &ResourceFilter::default())
        .await?;
    let collectors = collectors::overview(&state, instance_id).await?;

    let body = html! {
        h1 { "Overview" }
        section.cards aria-label="Compliance by attachment" {
            @if cards.is_empty() {
                div {
                    h2 { "No attachments yet" }
                    p { "Attach a profile to a scope to start scanning: " a href="/ui/configuration" { "configuration" } "." }
                }
            }
            @for card in &cards {
                div {
                    h2 { a href=(format!("/ui/posture/attachments/{}", encode(&card.id))) { (card.name) } }
                    p { (layout::score(card.points.last().map(|(_, score)| *score))) }
                    (charts::score_trend(&card.name, &card.points))
                    @if let Some(report_id) = &card.latest_report {
                        p { a href=(format!("/ui/posture/reports/{}", encode(report_id))) { "Latest report" } }
                    }
                }
            }
        }
        @if attachments.len() > OVERVIEW_ATTACHMENTS {
            p.hint { "Showing " (OVERVIEW_ATTACHMENTS) " of " (attachments.len()) " attachments; " a href="/ui/posture" { "see them all" } "." }
        }
        div.grid2 {
            section.panel aria-labelledby="failing-controls" {
                h2 #failing-controls { "Controls failing most" }
                @if failing.is_empty() {
                    p.muted { "No failing controls in the latest reports." }
                } @else {
                    div.table-wrap { table.responsive {
                        thead { tr { th { "Control" } th { "Attachment" } th.num { "Failed evaluations" } } }
                        tbody {
                            @for control in &failing {
                                tr {
                                    td data-label="Control" { a href=(format!("/ui/posture/reports/{}/controls/{}", encode(&control.report_id), encode(&control.control_id))) { (control.control_name) } }
                                    td data-label="Attachment" { (control.attachment) }
                                    td.num data-label="Failed" { (control.failures) }
                                }
                            }
                        }
                    } }
                }
            }
            section.panel aria-labelledby="risky-resources" {
                h2 #risky-resources { "Most at-risk resources" }
                @if risky.is_empty() {
                    p.muted { "No resource fails a rule in the latest reports." }
                } @else {
                    div.table-wrap { table.responsive {
                        thead { tr { th { "Resource" } th { "Environment" } th { "Attachment" } th.num { "Failed rules" } } }
                        tbody {
                            @for resource in &risky {
                                tr {
                                    td data-label="Resource" { a href=(format!("/ui/posture/reports/{}/evaluations?resource={}&status=failure", encode(&resource.report_id), encode(&resource.resource_id))) { (resource.resource_name) } }
                                    td data-label="Environment" { (resource.environment) }
                                    td data-label="Attachment" { (resource.attachment) }
                                    td.num data-label="Failed" { (resource.failures) }
                                }
                            }
                        }
                    } }
                }
            }
            section.panel aria-labelledby="findings-chart" {
                h2 #findings-chart { "Findings by severity, last " (FINDING_DAYS) " days" }
                p.hint { "Findings by the day they were last seen." }
                (charts::severity_bars(&days))
                h3 { "Open now" }
                ul.legend {
                    @for (severity, count) in SEVERITIES.iter().zip(open.iter()) {
                        li { a href=(format!("/ui/findings?severity={severity}&status=open")) { (count) " " (severity.to_ascii_lowercase()) } }
                    }
                }
            }
            section.panel aria-labelledby="collectors" {
                h2 #collectors { "Inventory and collectors" }
                p { strong { (resources) } " resources in the inventory." }
                @if collectors.is_empty() {
                    p.muted { "No collectors yet: create one with " code { "POST …/v1/collectors" } " and run " code { "palisade collector run" } ", or push inventory with " code { "palisade collect" } "." }
                } @else {
                    div.table-wrap { table.responsive {
                        thead { tr { th { "Collector" } th { "Status" } th { "Last heartbeat" } th { "Last job" } } }
                        tbody {
                            @for collector in &collectors {
                                tr {
                                    td data-label="Collector" { (collector["name"].as_str().unwrap_or_default()) @if let Some(host) = collector["host_name"].as_str() { " (" (host) ")" } }
                                    td data-label="Status" { span class=(format!("status status-{}", collector["status"].as_str().unwrap_or_default())) { (collector["status"].as_str().unwrap_or_default()) } }
                                    td data-label="Last heartbeat" { (collector["last_heartbeat_at"].as_str().unwrap_or("never")) }
                                    td data-label="Last job" {
                                        @if let Some(job) = collector["last_job"].as_object() {
                                            (job.get("status").and_then(|status| status.as_str()).unwrap_or_default()) ", "
                                            (job.get("resources").and_then(serde_json::Value::as_u64).unwrap_or(0)) " resources"
                                        } @else { "—" }
                                    }
                                }
                            }
                        }
                    } }
                }
            }
        }
    };
    Ok(layout::page("Overview", &session, Section::Overview, body))
}
