//! Activity insights benchmark: real CloudTrail samples (the ones committed under
//! `crates/palisade-logs/tests/data/cloudtrail`) repeated to at least 1 GB — each copy shifted by
//! one day so correlation windows do not merge — written as S3-style `{"Records":[…]}` objects
//! to a temporary directory (removed afterwards), then hunted with all 57 SigmaHQ CloudTrail
//! rules plus the Palisade correlation pack, files in parallel (rayon), exactly as
//! `palisade hunt` does.
//!
//! `cargo bench -p palisade-insights --bench activity`; `PALISADE_BENCH_MB` changes the size.
//! Criterion reports MB/s (`thrpt`); events/s is printed with the setup. Peak resident memory
//! is printed at the end.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_insights::activity::{
    ActivityState, ScanOptions, ScanOutput, correlate, scan_records,
};
use palisade_logs::audit::{decompress_if_gzip, parse_time};
use palisade_sigma::{CompiledPack, PackParameters, RuleSource, load_pack};
use rayon::prelude::*;
use serde_json::Value;

const FILES_PER_BATCH: usize = 256;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn walk(root: &Path, extensions: &[&str], files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("readable directory")
        .map(|entry| entry.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, extensions, files);
        } else if extensions
            .iter()
            .any(|extension| path.to_string_lossy().ends_with(extension))
        {
            files.push(path);
        }
    }
}

fn load_bench_pack() -> CompiledPack {
    let mut files = Vec::new();
    walk(
        &repository().join("content/sigma/cloud/aws/cloudtrail"),
        &[".yml"],
        &mut files,
    );
    let sigmahq = files.len();
    walk(
        &repository().join("content/sigma/palisade"),
        &[".yml"],
        &mut files,
    );
    let sources: Vec<RuleSource> = files
        .iter()
        .map(|path| RuleSource {
            name: path.display().to_string(),
            text: std::fs::read_to_string(path).expect("rule readable"),
        })
        .collect();
    let (pack, errors) = load_pack(&sources, &PackParameters::default());
    assert!(errors.is_empty(), "{errors:?}");
    eprintln!(
        "rules: {sigmahq} SigmaHQ CloudTrail files + Palisade pack = {} detection and {} correlation rules ({} prefiltered)",
        pack.detection_rules().len(),
        pack.correlation_rules().len(),
        pack.prefiltered_rule_count()
    );
    pack
}

/// Reads every sample record.
fn sample_records() -> Vec<Value> {
    let mut files = Vec::new();
    walk(
        &repository().join("crates/palisade-logs/tests/data/cloudtrail"),
        &[".json", ".json.gz"],
        &mut files,
    );
    let mut records = Vec::new();
    for path in files {
        let mut text = String::new();
        decompress_if_gzip(BufReader::new(File::open(&path).expect("opens")))
            .expect("peeks")
            .read_to_string(&mut text)
            .expect("reads");
        match serde_json::from_str::<Value>(&text).expect("sample is JSON") {
            Value::Array(array) => records.extend(array),
            Value::Object(mut object) => {
                if let Some(Value::Array(array)) = object.remove("Records") {
                    records.extend(array);
                }
            }
            _ => {}
        }
    }
    records
}

struct BenchInput {
    directory: tempfile::TempDir,
    files: Vec<PathBuf>,
    bytes: u64,
    events: u64,
}

fn shifted(record: &Value, days: i64) -> Value {
    let mut copy = record.clone();
    if let Some(time) = copy
        .get("eventTime")
        .and_then(Value::as_str)
        .and_then(parse_time)
    {
        let moved: DateTime<Utc> = time + chrono::Duration::days(days);
        copy["eventTime"] = Value::String(moved.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    copy
}

fn prepare() -> BenchInput {
    let target_bytes: u64 = std::env::var("PALISADE_BENCH_MB")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1024)
        * 1024
        * 1024;
    let records = sample_records();
    let directory = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    let mut bytes = 0u64;
    let mut events = 0u64;
    let mut copy = 0i64;
    while bytes < target_bytes {
        // One copy of the samples per day, split into objects of about 2,000 records (~3 MB), the
        // size of busy CloudTrail deliveries.
        for (part, chunk) in records.chunks(2000).enumerate() {
            let path = directory.path().join(format!(
                "AWSLogs/123456789012/CloudTrail/us-east-1/copy{copy:04}/part{part}.json"
            ));
            std::fs::create_dir_all(path.parent().expect("has parent")).expect("creates");
            let mut writer = BufWriter::new(File::create(&path).expect("creates"));
            writer.write_all(b"{\"Records\":[").expect("writes");
            for (index, record) in chunk.iter().enumerate() {
                if index > 0 {
                    writer.write_all(b",").expect("writes");
                }
                serde_json::to_writer(&mut writer, &shifted(record, copy)).expect("writes");
            }
            writer.write_all(b"]}").expect("writes");
            writer.flush().expect("flushes");
            drop(writer);
            bytes += std::fs::metadata(&path).expect("written").len();
            events += chunk.len() as u64;
            files.push(path);
        }
        copy += 1;
    }
    eprintln!(
        "input: {} events, {:.1} MB in {} files ({} copies of {} sample records)",
        events,
        bytes as f64 / 1e6,
        files.len(),
        copy,
        records.len()
    );
    BenchInput {
        directory,
        files,
        bytes,
        events,
    }
}

/// Hunts every file like `palisade hunt`; returns (hits, events).
fn hunt(pack: &CompiledPack, files: &[PathBuf]) -> (usize, u64, u64) {
    let options = ScanOptions::default();
    let mut state = ActivityState::new(pack);
    let mut hits = 0;
    let mut events = 0;
    let mut evaluated = 0;
    for batch in files.chunks(FILES_PER_BATCH) {
        let results: Vec<(usize, u64, u64, Vec<_>)> = batch
            .par_iter()
            .map(|path| {
                let reader = BufReader::with_capacity(256 * 1024, File::open(path).expect("opens"));
                let mut findings = 0;
                let mut inputs = Vec::new();
                let stats = scan_records(
                    pack,
                    reader,
                    "bench",
                    &options,
                    &mut |output| match output {
                        ScanOutput::Finding(_) => findings += 1,
                        ScanOutput::CorrelationInput(input) => inputs.push(*input),
                        ScanOutput::DecodeError(error) => panic!("{error}"),
                        ScanOutput::Progress(_) => {}
                    },
                );
                (findings, stats.records, stats.records_evaluated, inputs)
            })
            .collect();
        let mut inputs = Vec::new();
        for (findings, records, records_evaluated, file_inputs) in results {
            hits += findings;
            events += records;
            evaluated += records_evaluated;
            inputs.extend(file_inputs);
        }
        hits += correlate(pack, &mut state, inputs).len();
    }
    (hits, events, evaluated)
}

/// User plus system CPU time of the process (all threads), from `/proc/self/stat`.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after_name` starts at field 3.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

fn peak_resident_megabytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes / 1024.0)
}

fn activity(criterion: &mut Criterion) {
    let pack = load_bench_pack();
    let input = prepare();
    let start = std::time::Instant::now();
    let cpu_start = process_cpu_seconds();
    let (hits, events, evaluated) = hunt(&pack, &input.files);
    let elapsed = start.elapsed().as_secs_f64();
    if let (Some(cpu_start), Some(cpu_end)) = (cpu_start, process_cpu_seconds()) {
        // The machine is shared: CPU time says what two idle cores would do.
        let cpu = cpu_end - cpu_start;
        eprintln!(
            "warm-up CPU time: {cpu:.1} s for {:.0} MB = {:.0} MB/s per core busy, {:.0} MB/s on 2 idle cores",
            input.bytes as f64 / 1e6,
            input.bytes as f64 / 1e6 / cpu,
            2.0 * input.bytes as f64 / 1e6 / cpu
        );
    }
    assert_eq!(events, input.events, "every record is read");
    eprintln!(
        "warm-up run: {hits} hits; {evaluated} events parsed and evaluated ({:.1}%); {:.0} events/s, {:.0} MB/s on {} threads",
        evaluated as f64 * 100.0 / events as f64,
        events as f64 / elapsed,
        input.bytes as f64 / 1e6 / elapsed,
        rayon::current_num_threads()
    );
    let mut group = criterion.benchmark_group("activity");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(40));
    group.throughput(Throughput::Bytes(input.bytes));
    group.bench_function("cloudtrail_57_sigmahq_plus_palisade_pack", |bencher| {
        bencher.iter(|| black_box(hunt(&pack, &input.files)));
    });
    group.finish();
    if let Some(peak) = peak_resident_megabytes() {
        eprintln!(
            "peak resident memory: {peak:.0} MB (input on disk: {:.0} MB)",
            input.bytes as f64 / 1e6
        );
    }
    eprintln!(
        "events per MB: {:.0}",
        input.events as f64 / (input.bytes as f64 / 1e6)
    );
    drop(input.directory);
}

criterion_group!(benches, activity);
criterion_main!(benches);
