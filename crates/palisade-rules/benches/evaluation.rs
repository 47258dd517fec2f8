//! Rule-engine throughput: 100,000 resources × 200 SCC rules of 3–6 conditions each (every
//! pair applies, so 20 million evaluations per pass), and the same rules written in Rego and
//! evaluated through `regorus` by the same `RuleSet` code path.
//!
//! Rego is far slower, so it runs on a sample of the resources (`REGO_SAMPLE_RESOURCES`) and its
//! rate is extrapolated; the figures printed at the end say so. Run with
//!
//! ```text
//! nice -n 15 cargo bench -p palisade-rules --bench evaluation
//! ```
//!
//! Data are generated from a fixed seed; nothing is read from disk.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput};
use palisade_model::resource::Resource;
use palisade_rules::{Outcome, ParameterValues, RuleSet, Status, Verdict};
use rayon::prelude::*;
use serde_json::{Value, json};

const RESOURCES: usize = 100_000;
const RULES: usize = 200;
const REGO_SAMPLE_RESOURCES: usize = 500;
/// Resources per `evaluate_batch` call in the owned-`Evaluation` measurement: what a scan would
/// hand the engine at a time.
const CHUNK: usize = 2_000;

/// A small deterministic generator (xorshift64*), so the workload is the same on every run.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// True one time in `one_in`.
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const REGIONS: &[&str] = &["us-south", "us-east", "eu-de", "eu-gb", "jp-tok"];
const CLASSES: &[&str] = &["smart", "standard", "cold", "vault"];
const TLS: &[&str] = &["TLSv1.2", "TLSv1.3", "TLSv1.1"];
const NETWORKS: &[&str] = &[
    "10.1.2.3",
    "10.200.0.0/16",
    "192.168.4.4",
    "172.16.0.9",
    "8.8.8.8",
];

fn resource(generator: &mut Seeded, index: usize) -> Resource {
    // Mostly compliant, as real estates are: each property is off in a few percent of
    // resources, so about one rule evaluation in five fails and takes the explaining path.
    let allowed_ip: Vec<&str> = (0..generator.below(3))
        .map(|_| {
            if generator.chance(50) {
                "8.8.8.8"
            } else {
                generator.pick(NETWORKS)
            }
        })
        .collect();
    let protocols: Vec<&str> = (0..1 + generator.below(2))
        .map(|_| {
            if generator.chance(40) {
                "TLSv1.1"
            } else {
                generator.pick(TLS)
            }
        })
        .collect();
    let port = if generator.chance(40) {
        22
    } else {
        [443, 8443, 80][generator.below(3) as usize]
    };
    let region = if generator.chance(10) {
        generator.pick(REGIONS)
    } else {
        "us-south"
    };
    let config = json!({
        "name": format!("{}-bucket-{index}", if generator.chance(30) { "test" } else { "prod" }),
        "region": region,
        "storage_class": generator.pick(CLASSES),
        "encrypted": !generator.chance(50),
        "public": generator.chance(50),
        "port": port,
        "retention_days": generator.below(100),
        "hard_quota": generator.below(2_000_000),
        "versioning": {"enabled": !generator.chance(30), "mfa_delete": generator.chance(2)},
        "firewall": {"allowed_ip": allowed_ip, "allowed_network_type": ["private"]},
        "tls": {"protocols": protocols},
        "owner": if generator.chance(30) { Value::Null } else { json!("team-a") },
        "kms_key": format!("crn:v1:kms:{}", generator.below(100)),
    });
    serde_json::from_value(json!({
        "id": format!("bucket-{index}"), "environment": "ibm-cloud", "account_id": "a1",
        "service_name": "cloud-object-storage", "resource_kind": "bucket",
        "region": region, "config": config,
    }))
    .expect("generated resource is valid")
}

/// One generated condition, as an SCC leaf and as a Rego expression with the same meaning.
fn condition(generator: &mut Seeded) -> (Value, String) {
    match generator.below(10) {
        0 => {
            let regions = ["us-south", generator.pick(REGIONS), generator.pick(REGIONS)];
            (
                json!({"property": "region", "operator": "string_equals", "value": regions}),
                format!("input.config.region in {}", rego_set(&regions)),
            )
        }
        1 => (
            json!({"property": "encrypted", "operator": "is_true"}),
            "input.config.encrypted == true".into(),
        ),
        2 => (
            json!({"property": "public", "operator": "is_false"}),
            "input.config.public == false".into(),
        ),
        3 => {
            let limit = 90 + generator.below(300);
            (
                json!({"property": "retention_days", "operator": "num_less_than", "value": limit}),
                format!("input.config.retention_days < {limit}"),
            )
        }
        4 => (
            json!({"property": "port", "operator": "num_not_equals", "value": 22}),
            "input.config.port != 22".into(),
        ),
        5 => (
            json!({"property": "versioning.enabled", "operator": "is_true"}),
            "input.config.versioning.enabled == true".into(),
        ),
        6 => (
            json!({"property": "firewall.allowed_ip", "operator": "ips_in_range",
                   "value": ["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12"]}),
            "every address in input.config.firewall.allowed_ip { \
             some range in {\"10.0.0.0/8\", \"192.168.0.0/16\", \"172.16.0.0/12\"}; \
             net.cidr_contains(range, address) }"
                .into(),
        ),
        7 => (
            json!({"property": "tls.protocols", "operator": "strings_allowed", "value": ["TLSv1.2", "TLSv1.3"]}),
            "every protocol in input.config.tls.protocols { protocol in {\"TLSv1.2\", \"TLSv1.3\"} }".into(),
        ),
        8 => (
            json!({"property": "name", "operator": "string_match", "value": "prod-*"}),
            "startswith(input.config.name, \"prod-\")".into(),
        ),
        _ => (
            json!({"property": "owner", "operator": "is_not_empty"}),
            "input.config.owner != null".into(),
        ),
    }
}

fn rego_set(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("\"{item}\"")).collect();
    format!("{{{}}}", quoted.join(", "))
}

/// The SCC rules and their Rego twins.
fn rules(generator: &mut Seeded) -> (Vec<Value>, Vec<Value>) {
    let target = json!({"service_name": "cloud-object-storage", "resource_kind": "bucket"});
    let mut scc = Vec::with_capacity(RULES);
    let mut rego = Vec::with_capacity(RULES);
    for index in 0..RULES {
        let count = 3 + generator.below(4) as usize;
        let (leaves, expressions): (Vec<Value>, Vec<String>) =
            (0..count).map(|_| condition(generator)).unzip();
        scc.push(json!({"id": format!("rule-{index}"), "target": target, "required_config": {"and": leaves}}));
        let body = expressions.join("\n  ");
        let source = format!(
            "package bench.rule_{index}\n\ncompliant if {{\n  {body}\n}}\n\ndeny contains \"rule-{index} failed\" if not compliant\n"
        );
        rego.push(json!({"id": format!("rego-{index}"), "type": "rego", "target": target, "rego": source}));
    }
    (scc, rego)
}

fn status_slot(status: Status) -> usize {
    match status {
        Status::Pass => 0,
        Status::Failure => 1,
        Status::Error => 2,
    }
}

/// Evaluates every resource in parallel on the hot path (`RuleSet::fold_batch`, verdicts with
/// details on demand), counting statuses.
fn evaluate_all(rule_set: &RuleSet, resources: &[Resource], now: DateTime<Utc>) -> [usize; 3] {
    rule_set.fold_batch(
        resources,
        now,
        || [0usize; 3],
        |mut counts, _, _, verdicts: &[Verdict]| {
            for verdict in verdicts {
                counts[status_slot(verdict.status)] += 1;
            }
            counts
        },
        |left, right| [left[0] + right[0], left[1] + right[1], left[2] + right[2]],
    )
}

/// As [`evaluate_all`], with every failure's details built (`RuleSet::evaluate_outcomes`, one
/// reused outcome buffer per worker) and then dropped, as a consumer storing them would.
fn evaluate_all_with_details(
    rule_set: &RuleSet,
    resources: &[Resource],
    now: DateTime<Utc>,
) -> [usize; 3] {
    resources
        .par_iter()
        .fold(
            || ([0usize; 3], Vec::<Outcome>::new()),
            |(mut counts, mut outcomes), resource| {
                outcomes.clear();
                rule_set.evaluate_outcomes(resource, now, &mut outcomes);
                for outcome in &outcomes {
                    counts[status_slot(outcome.status)] += 1;
                    black_box(&outcome.details);
                }
                (counts, outcomes)
            },
        )
        .map(|(counts, _)| counts)
        .reduce(
            || [0usize; 3],
            |left, right| [left[0] + right[0], left[1] + right[1], left[2] + right[2]],
        )
}

fn evaluate_all_owned(rule_set: &RuleSet, resources: &[Resource], now: DateTime<Utc>) -> usize {
    resources
        .chunks(CHUNK)
        .map(|chunk| black_box(rule_set.evaluate_batch(chunk, now)).len())
        .sum()
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (Linux; clock ticks
/// of 10 ms). On a shared, loaded machine the wall clock says more about the neighbours than
/// about the engine, so the summary also reports evaluations per CPU-second.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of the stat line (utime, stime) are at 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `run` `runs` times: the median wall-clock seconds of one run, and the CPU seconds one
/// run used on average (all threads).
fn measure(runs: usize, mut run: impl FnMut()) -> (f64, f64) {
    let cpu_before = cpu_seconds();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    let cpu_per_run = (cpu_seconds() - cpu_before) / runs as f64;
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], cpu_per_run)
}

fn main() {
    let mut generator = Seeded(0x5EED_CAFE_F00D_1234);
    let resources: Vec<Resource> = (0..RESOURCES)
        .map(|index| resource(&mut generator, index))
        .collect();
    let (scc_rules, rego_rules) = rules(&mut generator);
    let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc);
    let scc = RuleSet::from_json(&Value::Array(scc_rules), &ParameterValues::default())
        .expect("SCC rules valid");
    let rego = RuleSet::from_json(&Value::Array(rego_rules), &ParameterValues::default())
        .expect("Rego rules valid");
    let sample = &resources[..REGO_SAMPLE_RESOURCES];

    // Both forms must decide the same on the sample, or the comparison would be meaningless.
    let scc_counts = evaluate_all(&scc, sample, now);
    let rego_counts = evaluate_all(&rego, sample, now);
    assert_eq!(
        scc_counts, rego_counts,
        "SCC and Rego rules disagree on the sample"
    );

    // The criterion runs take minutes; `PALISADE_BENCH_SUMMARY_ONLY=1` skips them and prints
    // only the summary below (enough for a quick before/after comparison).
    if std::env::var_os("PALISADE_BENCH_SUMMARY_ONLY").is_none() {
        let mut criterion = Criterion::default()
            .configure_from_args()
            .sample_size(10)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(20));
        let mut group = criterion.benchmark_group("rules");
        group.throughput(Throughput::Elements((RESOURCES * RULES) as u64));
        group.bench_function("scc_100k_resources_x_200_rules", |bencher| {
            bencher.iter(|| black_box(evaluate_all(&scc, &resources, now)))
        });
        group.bench_function("scc_100k_resources_x_200_rules_with_details", |bencher| {
            bencher.iter(|| black_box(evaluate_all_with_details(&scc, &resources, now)))
        });
        group.bench_function(
            "scc_100k_resources_x_200_rules_owned_evaluations",
            |bencher| bencher.iter(|| black_box(evaluate_all_owned(&scc, &resources, now))),
        );
        group.throughput(Throughput::Elements((REGO_SAMPLE_RESOURCES * RULES) as u64));
        group.bench_function("rego_500_resources_x_200_rules", |bencher| {
            bencher.iter(|| black_box(evaluate_all(&rego, sample, now)))
        });
        group.finish();
        criterion.final_summary();
    }

    let pairs = (RESOURCES * RULES) as f64;
    let sample_pairs = (REGO_SAMPLE_RESOURCES * RULES) as f64;
    let (scc_seconds, scc_cpu) = measure(5, || {
        black_box(evaluate_all(&scc, &resources, now));
    });
    let (details_seconds, details_cpu) = measure(3, || {
        black_box(evaluate_all_with_details(&scc, &resources, now));
    });
    let (owned_seconds, owned_cpu) = measure(3, || {
        black_box(evaluate_all_owned(&scc, &resources, now));
    });
    let (rego_seconds, rego_cpu) = measure(3, || {
        black_box(evaluate_all(&rego, sample, now));
    });
    let full = evaluate_all(&scc, &resources, now);
    assert_eq!(
        full,
        evaluate_all_with_details(&scc, &resources, now),
        "verdicts and outcomes with details disagree"
    );
    let rate = |evaluations: f64, seconds: f64| evaluations / seconds / 1e6;
    println!(
        "summary (median of repeated runs, {} threads; per CPU-second from /proc/self/stat):",
        rayon::current_num_threads()
    );
    println!(
        "  scc, verdicts (fold_batch): {pairs:.0} evaluations in {scc_seconds:.3} s = {:.1} M evaluations/s \
         wall clock, {:.1} M per CPU-second (~{:.1} M/s on 2 dedicated cores) (pass {}, failure {}, error {})",
        rate(pairs, scc_seconds),
        rate(pairs, scc_cpu),
        2.0 * rate(pairs, scc_cpu),
        full[0],
        full[1],
        full[2]
    );
    println!(
        "  scc, outcomes with details (evaluate_outcomes): {:.1} M evaluations/s wall clock, {:.1} M per CPU-second",
        rate(pairs, details_seconds),
        rate(pairs, details_cpu)
    );
    println!(
        "  scc, owned Evaluation values (evaluate_batch): {:.1} M evaluations/s wall clock, {:.1} M per CPU-second",
        rate(pairs, owned_seconds),
        rate(pairs, owned_cpu)
    );
    println!(
        "  rego: {sample_pairs:.0} evaluations (sample of {REGO_SAMPLE_RESOURCES} resources) in {rego_seconds:.3} s = \
         {:.3} M evaluations/s, {:.3} M per CPU-second; the full workload would take ~{:.0} s (extrapolated)",
        rate(sample_pairs, rego_seconds),
        rate(sample_pairs, rego_cpu),
        pairs / (sample_pairs / rego_seconds)
    );
    println!(
        "  ratio scc verdicts / rego: {:.0}x wall clock, {:.0}x per CPU-second",
        rate(pairs, scc_seconds) / rate(sample_pairs, rego_seconds),
        rate(pairs, scc_cpu) / rate(sample_pairs, rego_cpu)
    );
}
