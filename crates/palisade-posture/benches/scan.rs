//! Scan throughput: 100,000 resources against a 200-rule profile, in memory, chunk by chunk
//! as the server does (2,048 resources per chunk, rayon inside a chunk), then the roll-up.
//!
//! The 200 rules are the built-in rules plus copies of them under new ids (same targets, so
//! every resource meets as many rules as a real 200-rule profile would give it); the profile
//! has one control per rule. Resources are the compliant and non-compliant fixture resources
//! of `content/fixtures`, repeated with fresh ids. One chunk is kept in memory and renamed for
//! each step, so memory stays at one chunk as in the server.
//!
//! Run: `cargo bench -p palisade-posture --bench scan`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_model::resource::Resource;
use palisade_posture::content::builtin;
use palisade_posture::model::{ControlLibrary, Profile};
use palisade_posture::scan::{ScanInput, ScanPlan};
use palisade_posture::{RollupBuilder, ScanEvaluation};
use palisade_rules::Rule;
use palisade_rules::cases::Case;
use serde_json::json;

const RESOURCES: usize = 100_000;
const RULES: usize = 200;
const CHUNK: usize = 2_048;

fn fixture_resources() -> Vec<Resource> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../content/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&directory)
        .expect("fixtures")
        .map(|entry| entry.expect("entry").path())
        .collect();
    paths.sort();
    let mut resources = Vec::new();
    for path in paths {
        let case = Case::parse(&std::fs::read_to_string(&path).expect("read")).expect("case");
        for value in case.resources {
            resources.push(serde_json::from_value(value).expect("resource"));
        }
    }
    resources
}

fn profile_of_200_rules() -> (Vec<Rule>, ControlLibrary, Profile) {
    let content = builtin().expect("content");
    let mut rules = content.rules.clone();
    let mut copy = 0;
    while rules.len() < RULES {
        let mut rule = content.rules[copy % content.rules.len()].clone();
        rule.id = format!("{}-copy-{copy}", rule.id);
        rules.push(rule);
        copy += 1;
    }
    let controls: Vec<_> = rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            json!({
                "control_id": format!("c-{index}"), "control_name": format!("C-{index}"),
                "control_specifications": [{"id": "s", "component_id": rule.target.service_name,
                    "assessments": [{"assessment_id": rule.id}]}]
            })
        })
        .collect();
    let library: ControlLibrary = serde_json::from_value(json!({
        "id": "bench", "control_library_name": "Bench", "controls": controls
    }))
    .expect("library");
    let profile: Profile = serde_json::from_value(json!({
        "profile_name": "200 rules",
        "controls": (0..rules.len()).map(|index| json!({"control_library_id": "bench", "control_id": format!("c-{index}")})).collect::<Vec<_>>()
    }))
    .expect("profile");
    (rules, library, profile)
}

fn scan(c: &mut Criterion) {
    let (rules, library, profile) = profile_of_200_rules();
    let now = "2026-01-01T00:00:00Z".parse().expect("time");
    let libraries = [library];
    let plan = ScanPlan::new(ScanInput {
        profile: &profile,
        libraries: &libraries,
        rules: &rules,
        attachment_parameters: &[],
        attestations: &[],
        now,
    })
    .expect("plan");
    assert_eq!(plan.rules.len(), RULES);
    let templates = fixture_resources();
    let mut chunk: Vec<Resource> = (0..CHUNK)
        .map(|index| templates[index % templates.len()].clone())
        .collect();
    let chunks = RESOURCES.div_ceil(CHUNK);
    let rename = |chunk: &mut Vec<Resource>, chunk_index: usize| {
        for (index, resource) in chunk.iter_mut().enumerate() {
            resource.id = format!("r-{chunk_index}-{index}");
        }
    };
    // Count the evaluations once, for the throughput.
    let mut evaluation_count = 0u64;
    for chunk_index in 0..chunks {
        rename(&mut chunk, chunk_index);
        evaluation_count += plan.evaluate_chunk(&chunk, now).len() as u64;
    }
    eprintln!("{RESOURCES} resources × {RULES} rules → {evaluation_count} evaluations per scan");

    let mut group = c.benchmark_group("posture_scan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(evaluation_count));
    group.bench_function("scan_100k_resources_200_rules_with_rollup", |bencher| {
        bencher.iter(|| {
            let mut builder = RollupBuilder::new(&plan);
            for chunk_index in 0..chunks {
                rename(&mut chunk, chunk_index);
                let evaluations = plan.evaluate_chunk(&chunk, now);
                builder.add_chunk(&chunk, &evaluations);
            }
            black_box(builder.finish())
        })
    });
    // The roll-up alone: counting every evaluation of a scan and building the report.
    let mut all: Vec<(Vec<Resource>, Vec<ScanEvaluation>)> = Vec::new();
    for chunk_index in 0..chunks.min(8) {
        rename(&mut chunk, chunk_index);
        all.push((chunk.clone(), plan.evaluate_chunk(&chunk, now)));
    }
    let per_chunk: u64 = all
        .iter()
        .map(|(_, evaluations)| evaluations.len() as u64)
        .sum();
    group.throughput(Throughput::Elements(per_chunk));
    group.bench_function("rollup_of_8_chunks", |bencher| {
        bencher.iter(|| {
            let mut builder = RollupBuilder::new(&plan);
            for (resources, evaluations) in &all {
                builder.add_chunk(resources, evaluations);
            }
            black_box(builder.finish())
        })
    });
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
