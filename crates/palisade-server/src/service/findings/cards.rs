//! Card aggregation: the numbers and time series a dashboard card shows, computed from the
//! card's KPI and finding notes (IBM's dashboard computed them server-side the same way).
//!
//! A `FINDING_COUNT` value counts the open and acknowledged occurrences of its finding notes seen
//! in the element's time range; a `KPI` value sums the KPI occurrences of its note (the only
//! aggregation IBM defined, `SUM`). `TIME_SERIES` elements add one point per day of the range.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use palisade_store::Store;
use palisade_store::findings::{FindingStatus, OccurrenceFilter, ProviderQuery};
use serde::Serialize;
use utoipa::ToSchema;

use super::model::{ApiNote, NoteName, ValueType};
use super::note_view;
use crate::error::ApiResult;

/// Most KPI occurrences summed per value; a KPI reported more often than this in four days is
/// summed over its newest reports.
const KPI_SUM_LIMIT: u32 = 10_000;

/// A card with its computed values.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardView {
    pub note_name: String,
    pub section: String,
    pub title: String,
    pub subtitle: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    pub elements: Vec<ElementView>,
}

/// One element of a card.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ElementView {
    pub kind: String,
    pub text: String,
    /// Days the values cover.
    pub days: i64,
    pub values: Vec<ValueView>,
}

/// One value of an element.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValueView {
    pub kind: String,
    pub text: String,
    /// Over the whole range.
    pub value: f64,
    /// One point per day, oldest first (TIME_SERIES only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<SeriesPoint>>,
}

/// A day of a time series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// Start of the day covered (RFC 3339).
    pub start: String,
    pub value: f64,
}

/// Cards of an account with their values.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardList {
    pub cards: Vec<CardView>,
}

fn range_days(range: Option<&str>) -> i64 {
    range
        .and_then(|range| range.strip_suffix('d'))
        .and_then(|days| days.parse::<i64>().ok())
        .filter(|days| (1..=4).contains(days))
        .unwrap_or(1)
}

async fn value_between(
    store: &Arc<dyn Store>,
    instance_id: &str,
    account_id: &str,
    value_type: &ValueType,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> ApiResult<f64> {
    match value_type.kind.as_str() {
        "FINDING_COUNT" => {
            let mut total = 0_u64;
            for name in value_type.finding_note_names.iter().flatten() {
                let Some(name) = NoteName::parse(name) else {
                    continue;
                };
                total += store
                    .count_occurrences(
                        instance_id,
                        &OccurrenceFilter {
                            account_id: Some(account_id.to_owned()),
                            note_provider_id: Some(name.provider_id),
                            note_id: Some(name.note_id),
                            kinds: vec!["FINDING".into()],
                            statuses: vec![FindingStatus::Open, FindingStatus::Acknowledged],
                            since: Some(since),
                            until: Some(until),
                            ..OccurrenceFilter::default()
                        },
                    )
                    .await?;
            }
            Ok(total as f64)
        }
        "KPI" => {
            let Some(name) = value_type
                .kpi_note_name
                .as_deref()
                .and_then(NoteName::parse)
            else {
                return Ok(0.0);
            };
            let occurrences = store
                .query_occurrences(
                    instance_id,
                    &OccurrenceFilter {
                        account_id: Some(account_id.to_owned()),
                        note_provider_id: Some(name.provider_id),
                        note_id: Some(name.note_id),
                        kinds: vec!["KPI".into()],
                        since: Some(since),
                        until: Some(until),
                        ..OccurrenceFilter::default()
                    },
                    None,
                    KPI_SUM_LIMIT,
                )
                .await?;
            Ok(occurrences
                .iter()
                .filter_map(|occurrence| {
                    occurrence
                        .record
                        .body
                        .pointer("/kpi/value")
                        .and_then(serde_json::Value::as_f64)
                })
                .sum())
        }
        _ => Ok(0.0),
    }
}

/// Computes every card of an account at `now`.
pub async fn cards(
    store: &Arc<dyn Store>,
    instance_id: &str,
    account_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<CardList> {
    let (providers, _) = store
        .list_providers(
            instance_id,
            account_id,
            &ProviderQuery {
                limit: 1000,
                ..ProviderQuery::default()
            },
        )
        .await?;
    let mut notes: Vec<(String, ApiNote)> = Vec::new();
    for provider in providers {
        let mut after: Option<String> = None;
        loop {
            let page = store
                .list_notes(instance_id, account_id, &provider.id, after.as_deref(), 500)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.record.id.clone());
            for stored in &page {
                if matches!(stored.record.kind.as_str(), "CARD" | "CARD_CONFIGURED") {
                    notes.push((
                        NoteName::format(account_id, &provider.id, &stored.record.id),
                        note_view(stored)?,
                    ));
                }
            }
        }
    }
    let mut cards = Vec::new();
    for (note_name, note) in notes {
        let Some(card) = note.card else { continue };
        let mut elements = Vec::new();
        for element in &card.elements {
            let days = range_days(element.default_time_range.as_deref());
            let since = now - Duration::days(days);
            let value_types: Vec<&ValueType> = match &element.value_type {
                Some(value_type) => vec![value_type],
                None => element.value_types.iter().flatten().collect(),
            };
            let mut values = Vec::new();
            for value_type in value_types {
                let value =
                    value_between(store, instance_id, account_id, value_type, since, now).await?;
                let series = if element.kind == "TIME_SERIES" {
                    let mut points = Vec::new();
                    for day in 0..days {
                        let start = since + Duration::days(day);
                        let end = start + Duration::days(1);
                        points.push(SeriesPoint {
                            start: super::wire_time(start),
                            value: value_between(
                                store,
                                instance_id,
                                account_id,
                                value_type,
                                start,
                                end,
                            )
                            .await?,
                        });
                    }
                    Some(points)
                } else {
                    None
                };
                values.push(ValueView {
                    kind: value_type.kind.clone(),
                    text: value_type.text.clone().unwrap_or_default(),
                    value,
                    series,
                });
            }
            elements.push(ElementView {
                kind: element.kind.clone(),
                text: element.text.clone(),
                days,
                values,
            });
        }
        cards.push(CardView {
            note_name,
            section: card.section,
            title: card.title,
            subtitle: card.subtitle,
            order: card.order,
            elements,
        });
    }
    cards.sort_by(|left, right| {
        (&left.section, left.order, &left.note_name).cmp(&(
            &right.section,
            right.order,
            &right.note_name,
        ))
    });
    Ok(CardList { cards })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges_are_one_to_four_days() {
        assert_eq!(range_days(Some("3d")), 3);
        assert_eq!(range_days(Some("9d")), 1);
        assert_eq!(range_days(Some("x")), 1);
        assert_eq!(range_days(None), 1);
    }
}
