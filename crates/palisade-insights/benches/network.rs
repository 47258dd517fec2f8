//! Network insights benchmark: generated AWS VPC flow logs (default version 2 format, 10 million
//! records, written to a temporary file that is removed afterwards) decoded by `palisade-logs` and
//! run through all five detectors with a one-million-entry threat-intelligence feed, on one thread
//! and with [`ParallelScan`] on all of rayon's threads (the run checks that both give the same
//! findings).
//!
//! `cargo bench -p palisade-insights --bench network`; set `PALISADE_BENCH_RECORDS` to change the
//! size, `PALISADE_BENCH_THREADS` the threads of the parallel scan, `PALISADE_BENCH_SPLIT=1` to
//! also time the detectors alone, `PALISADE_BENCH_QUICK=1` to skip criterion. Criterion reports
//! records/s (`thrpt`); MB/s is records/s × the bytes per record printed at start. The peak
//! resident memory of the process is printed at the end.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_insights::network::generator::{self, GeneratorConfig};
use palisade_insights::network::{
    NetworkDetectorConfig, NetworkDetectors, NetworkFinding, ParallelScan, ThreatIntel,
};
use palisade_logs::flow::{FlowFormat, decode_flows, decode_flows_compact};

struct BenchInput {
    path: PathBuf,
    records: u64,
    bytes: u64,
    intel: ThreatIntel,
}

impl Drop for BenchInput {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn prepare() -> BenchInput {
    let records: u64 = std::env::var("PALISADE_BENCH_RECORDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000_000);
    let path = std::env::temp_dir().join(format!("palisade-netbench-{}.log", std::process::id()));
    let config = GeneratorConfig {
        seed: 42,
        duration_seconds: 24 * 3600,
        background_records: records,
        internal_hosts: 500,
        external_peers: 50_000,
        ..GeneratorConfig::default()
    };
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&path).expect("temp file"));
    let traffic = generator::generate(&config, |record| {
        palisade_logs::flow::aws::write_default_format_line(record, &mut out)
            .expect("temp file is writable");
    });
    out.flush().expect("temp file is writable");
    drop(out);
    let bytes = std::fs::metadata(&path).expect("written").len();
    let mut feed = traffic.intel.clone();
    feed.extend(generator::decoy_intel(42, 1_000_000 - feed.len()));
    let intel = ThreatIntel::build([("bench", &feed[..])]);
    eprintln!(
        "input: {} records, {} bytes ({:.1} bytes/record), intel entries: {}",
        traffic.records,
        bytes,
        bytes as f64 / traffic.records as f64,
        intel.len()
    );
    BenchInput {
        path,
        records: traffic.records,
        bytes,
        intel,
    }
}

fn run_all_detectors(
    input: &BenchInput,
    detectors: &NetworkDetectors,
    threads: usize,
) -> (u64, Vec<NetworkFinding>, u64) {
    let file = File::open(&input.path).expect("temp file");
    let reader = BufReader::with_capacity(1 << 20, file);
    if threads == 0 {
        // One thread, no parallel machinery: decode to compact flows and detect in turn.
        let mut state = detectors.new_state();
        let mut findings = Vec::new();
        let summary = decode_flows_compact(reader, "bench", FlowFormat::AwsVpcText, |flow| {
            detectors.process_compact(&mut state, &input.intel, flow, &mut findings);
        });
        detectors.flush(&mut state, &mut findings);
        let left = state
            .stats()
            .iter()
            .map(|(_, stats)| stats.open_keys)
            .sum::<u64>()
            + state.baseline_pairs() as u64;
        return (summary.records, findings, left);
    }
    let mut scan = ParallelScan::new(detectors, &input.intel, threads);
    let summary = scan.scan(reader, "bench", FlowFormat::AwsVpcText);
    let (findings, stats) = scan.finish();
    let left = stats.iter().map(|(_, stats)| stats.open_keys).sum::<u64>();
    (summary.records, findings, left)
}

fn peak_resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat`; the machine is
/// shared, so CPU time says more about the code than wall time does.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the stat line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn cpu_timed<T>(label: &str, input: &BenchInput, run: impl FnOnce() -> T) -> T {
    let cpu_before = cpu_seconds();
    let wall_before = std::time::Instant::now();
    let result = run();
    let cpu = cpu_seconds() - cpu_before;
    let wall = wall_before.elapsed().as_secs_f64();
    eprintln!(
        "{label}: {:.2} M records/s and {:.0} MB/s on CPU time ({cpu:.2} s), {:.2} M records/s wall ({wall:.2} s)",
        input.records as f64 / cpu / 1e6,
        input.bytes as f64 / cpu / 1e6,
        input.records as f64 / wall / 1e6
    );
    result
}

fn network_insights(criterion: &mut Criterion) {
    let input = prepare();
    let detectors =
        NetworkDetectors::new(NetworkDetectorConfig::default()).expect("default config is valid");
    let threads = std::env::var("PALISADE_BENCH_THREADS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(rayon::current_num_threads);
    cpu_timed("decode only, records", &input, || {
        let file = File::open(&input.path).expect("temp file");
        decode_flows(
            BufReader::with_capacity(1 << 20, file),
            "bench",
            FlowFormat::AwsVpcText,
            |record| {
                black_box(record);
            },
        )
    });
    cpu_timed("decode only, compact flows", &input, || {
        let file = File::open(&input.path).expect("temp file");
        decode_flows_compact(
            BufReader::with_capacity(1 << 20, file),
            "bench",
            FlowFormat::AwsVpcText,
            |flow| {
                black_box(flow);
            },
        )
    });
    if std::env::var_os("PALISADE_BENCH_SPLIT").is_some() {
        let file = File::open(&input.path).expect("temp file");
        let mut flows = Vec::with_capacity(input.records as usize);
        decode_flows_compact(
            BufReader::with_capacity(1 << 20, file),
            "bench",
            FlowFormat::AwsVpcText,
            |flow| flows.push(*flow),
        );
        let empty = ThreatIntel::default();
        for (label, intel) in [
            ("detectors only, no intel", &empty),
            ("detectors only, 1M intel", &input.intel),
        ] {
            cpu_timed(label, &input, || {
                let mut state = detectors.new_state();
                let mut findings = Vec::new();
                for flow in &flows {
                    detectors.process_compact(&mut state, intel, flow, &mut findings);
                }
                findings.len()
            });
        }
    }
    let (_, single, _) = cpu_timed("end to end, one thread", &input, || {
        run_all_detectors(&input, &detectors, 0)
    });
    let (records, findings, remaining) = cpu_timed(
        &format!("end to end, ParallelScan on {threads} threads"),
        &input,
        || run_all_detectors(&input, &detectors, threads),
    );
    eprintln!(
        "check run: {records} records decoded, {} findings, {remaining} keys/baselines left after flush",
        findings.len()
    );
    assert_eq!(records, input.records);
    assert!(
        findings == single,
        "the parallel scan must find exactly what one thread finds"
    );
    if std::env::var_os("PALISADE_BENCH_QUICK").is_some() {
        eprintln!(
            "peak resident memory: {} KiB",
            peak_resident_kib().unwrap_or(0)
        );
        return;
    }

    let mut group = criterion.benchmark_group("network_insights");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(40));
    group.warm_up_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(input.records));
    group.bench_function("aws_v2_decode_only", |bencher| {
        bencher.iter(|| {
            let file = File::open(&input.path).expect("temp file");
            let mut ports = 0u64;
            let summary = decode_flows_compact(
                BufReader::with_capacity(1 << 20, file),
                "bench",
                FlowFormat::AwsVpcText,
                |flow| {
                    ports = ports.wrapping_add(u64::from(flow.dst_port));
                },
            );
            black_box((summary.records, ports))
        });
    });
    group.bench_function("aws_v2_all_detectors_1m_intel", |bencher| {
        bencher.iter(|| black_box(run_all_detectors(&input, &detectors, threads).0));
    });
    group.finish();

    let mut lookups = criterion.benchmark_group("threat_intel_lookup");
    let addresses: Vec<std::net::IpAddr> = (0..1_000_000u32)
        .map(|index| {
            std::net::IpAddr::V4(std::net::Ipv4Addr::from(index.wrapping_mul(2_654_435_761)))
        })
        .collect();
    lookups.throughput(Throughput::Elements(addresses.len() as u64));
    lookups.sample_size(10);
    lookups.bench_function("lookup_1m_entries", |bencher| {
        bencher.iter(|| {
            addresses
                .iter()
                .filter(|address| input.intel.lookup(**address).is_some())
                .count()
        });
    });
    lookups.finish();
    eprintln!(
        "input size: {} bytes; peak resident memory: {} KiB",
        input.bytes,
        peak_resident_kib().unwrap_or(0)
    );
}

criterion_group!(benches, network_insights);
criterion_main!(benches);
