//! Findings store speed on the embedded SQLite backend (durable commits, `synchronous=FULL`):
//!
//! - **ingest**: `service::findings::record_occurrences` in batches of 1 000 new occurrences, as
//!   Palisade's sources call it (validation, id derivation, one transaction per batch);
//! - **filtered listing**: one page of 100 from `GET /v1/findings`'s store query over
//!   1 000 000 stored occurrences, with the filters a security team uses (severity + status,
//!   provider, resource, time window, and all combined), plus the p99 of a mixed sample.
//!
//! The data is generated at bench time (`PALISADE_BENCH_OCCURRENCES` overrides the count).
//! Run: `cargo bench -p palisade-server --bench findings`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput};
use palisade_model::tenancy::Instance;
use palisade_server::service::findings::model::{ApiOccurrence, Context, Finding};
use palisade_server::service::findings::{SourceOccurrence, record_occurrences};
use palisade_store::Store;
use palisade_store::findings::{FindingStatus, OccurrenceFilter};

const PROVIDERS: [&str; 4] = [
    "posture",
    "activity-insights",
    "network-insights",
    "partner",
];
const SEVERITIES: [&str; 4] = ["LOW", "MEDIUM", "HIGH", "CRITICAL"];
const BATCH: usize = 1000;
const PAGE: u32 = 100;

fn occurrence(n: u64) -> SourceOccurrence {
    SourceOccurrence {
        account_id: format!("acct-{}", n % 3),
        note_id: format!("rule-{}", n % 50),
        fingerprint: n.to_string(),
        body: ApiOccurrence {
            resource_url: None,
            note_name: String::new(),
            kind: "FINDING".into(),
            short_description: Some("Traffic to a known scanner".into()),
            long_description: None,
            remediation: None,
            create_time: None,
            update_time: None,
            id: String::new(),
            context: Some(Context {
                resource_crn: Some(format!(
                    "crn:v1:bluemix:public:is:us-south:a/1::instance:{}",
                    n % 20_000
                )),
                region: Some("us-south".into()),
                ..Context::default()
            }),
            finding: Some(Finding {
                severity: Some(SEVERITIES[(n % 4) as usize].into()),
                certainty: Some("HIGH".into()),
                ..Finding::default()
            }),
            kpi: None,
            reference_data: None,
        },
    }
}

async fn ingest(store: &Arc<dyn Store>, first: u64, count: u64, at: DateTime<Utc>) {
    let mut next = first;
    while next < first + count {
        let end = (next + BATCH as u64).min(first + count);
        let provider = PROVIDERS[((next / BATCH as u64) % 4) as usize];
        let batch: Vec<SourceOccurrence> = (next..end).map(occurrence).collect();
        // Spread last_seen over time so time filters and ordering have work to do.
        let batch_at = at + chrono::Duration::milliseconds(next as i64);
        let report = record_occurrences(store, "bench", provider, batch, batch_at)
            .await
            .expect("record");
        assert!(report.rejected.is_empty());
        next = end;
    }
}

fn filters(at: DateTime<Utc>, total: u64) -> Vec<(&'static str, OccurrenceFilter)> {
    let middle = at + chrono::Duration::milliseconds((total / 2) as i64);
    vec![
        ("none", OccurrenceFilter::default()),
        (
            "severity_and_status",
            OccurrenceFilter {
                severities: vec!["CRITICAL".into()],
                statuses: vec![FindingStatus::Open],
                ..OccurrenceFilter::default()
            },
        ),
        (
            "provider",
            OccurrenceFilter {
                provider_ids: vec!["network-insights".into()],
                ..OccurrenceFilter::default()
            },
        ),
        (
            "resource",
            OccurrenceFilter {
                resource: Some("crn:v1:bluemix:public:is:us-south:a/1::instance:4242".into()),
                ..OccurrenceFilter::default()
            },
        ),
        (
            "time_window",
            OccurrenceFilter {
                since: Some(middle),
                until: Some(middle + chrono::Duration::seconds(60)),
                ..OccurrenceFilter::default()
            },
        ),
        (
            "combined",
            OccurrenceFilter {
                account_id: Some("acct-1".into()),
                provider_ids: vec!["posture".into(), "partner".into()],
                severities: vec!["HIGH".into(), "CRITICAL".into()],
                statuses: vec![FindingStatus::Open, FindingStatus::Acknowledged],
                since: Some(at),
                ..OccurrenceFilter::default()
            },
        ),
    ]
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let directory = tempfile::tempdir().expect("tempdir");
    let url = palisade_store::testsuite::fresh_sqlite_url(directory.path());
    let store = runtime
        .block_on(palisade_store::connect(&url))
        .expect("open sqlite");
    runtime
        .block_on(store.create_instance(&Instance {
            id: "bench".into(),
            name: "bench".into(),
            created_at: Utc::now(),
        }))
        .expect("instance");
    let total: u64 = std::env::var("PALISADE_BENCH_OCCURRENCES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let at = Utc::now();

    // Sustained ingest of the whole data set, timed as one run.
    let started = Instant::now();
    runtime.block_on(ingest(&store, 0, total, at));
    let elapsed = started.elapsed();
    eprintln!(
        "sustained ingest: {total} occurrences in {:.1} s = {:.0} occurrences/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );

    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    let mut next = total;
    {
        let mut group = criterion.benchmark_group("findings_ingest");
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function("record_1000_new_occurrences", |bencher| {
            bencher.iter(|| {
                runtime.block_on(ingest(&store, next, BATCH as u64, at));
                next += BATCH as u64;
            });
        });
        group.finish();
    }
    let stored = next;
    {
        let mut group = criterion.benchmark_group(format!("findings_list_{stored}"));
        for (name, filter) in filters(at, total) {
            group.bench_function(name, |bencher| {
                bencher.iter(|| {
                    runtime
                        .block_on(store.query_occurrences("bench", &filter, None, PAGE))
                        .expect("query")
                });
            });
        }
        group.finish();
    }

    // p99 over a mixed sample of every filter, pages 1 and 2 (keyset continuation).
    let mut latencies = Vec::new();
    for round in 0..100 {
        for (_, filter) in filters(at, total) {
            let started = Instant::now();
            let page = runtime
                .block_on(store.query_occurrences("bench", &filter, None, PAGE))
                .expect("query");
            latencies.push(started.elapsed());
            if round % 2 == 0
                && let Some(last) = page.last()
            {
                let cursor = palisade_store::findings::OccurrenceCursor {
                    last_seen: last.last_seen,
                    seq: last.seq,
                };
                let started = Instant::now();
                runtime
                    .block_on(store.query_occurrences("bench", &filter, Some(&cursor), PAGE))
                    .expect("query");
                latencies.push(started.elapsed());
            }
        }
    }
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    eprintln!(
        "filtered listing over {stored} occurrences, {} queries: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(0.50).as_secs_f64() * 1000.0,
        percentile(0.99).as_secs_f64() * 1000.0,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    criterion.final_summary();
}
