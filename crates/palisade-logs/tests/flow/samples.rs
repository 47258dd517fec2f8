//! One test per sample file under `tests/data/flowlogs`: decode it and compare with its
//! `.expected.json` (counts, error positions, records). `PALISADE_BLESS=1` rewrites the expected
//! files instead, for review in the diff.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use palisade_logs::flow::{FlowFormat, decode_flows, decompress_if_gzipped};
use serde_json::{Value, json};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flowlogs")
}

fn check_sample(relative: &str) {
    let path = data_dir().join(relative);
    let file =
        std::fs::File::open(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let reader = decompress_if_gzipped(BufReader::new(file)).expect("readable");
    let mut records = Vec::new();
    let summary = decode_flows(reader, relative, FlowFormat::Auto, |record| {
        records.push(serde_json::to_value(record).expect("serialises"));
    });
    let actual = json!({ "summary": summary, "records": records });
    let expected_path = data_dir().join(format!("{relative}.expected.json"));
    if std::env::var_os("PALISADE_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&actual).expect("serialises") + "\n";
        std::fs::write(&expected_path, text).expect("writable");
        return;
    }
    let expected_text = std::fs::read_to_string(&expected_path).unwrap_or_else(|error| {
        panic!(
            "{}: {error} (bless with PALISADE_BLESS=1)",
            expected_path.display()
        )
    });
    let expected: Value = serde_json::from_str(&expected_text).expect("expected file is JSON");
    assert_eq!(
        actual,
        expected,
        "{relative} decodes differently from {}",
        expected_path.display()
    );
}

macro_rules! sample_cases {
    ($($name:ident => $file:literal,)+) => {
        $(
            #[test]
            fn $name() {
                check_sample($file);
            }
        )+

        const CASE_FILES: &[&str] = &[$($file),+];
    };
}

sample_cases! {
    aws_v2_default => "aws-v2-default.log",
    aws_v5_custom => "aws-v5-custom.log",
    azure_nsg_v2 => "azure-nsg-v2.json",
    handmade_aws_bad_lines => "handmade/aws-bad-lines.log",
    handmade_aws_v8_custom_gzipped => "handmade/aws-v8-custom.log.gz",
    handmade_azure_nsg_v1_records => "handmade/azure-nsg-v1-records.json",
    handmade_gcp_vpc => "handmade/gcp-vpc.jsonl",
    handmade_ibm_vpc_object => "handmade/ibm-vpc-object.json",
    handmade_ibm_vpc_skip_data => "handmade/ibm-vpc-skip-data.json",
}

fn sample_files(directory: &Path, prefix: &str, found: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(directory)
        .expect("readable")
        .map(|entry| entry.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .expect("UTF-8 name")
            .to_owned();
        if path.is_dir() {
            sample_files(&path, &format!("{prefix}{name}/"), found);
        } else if !name.ends_with(".expected.json") && !name.ends_with(".md") {
            found.push(format!("{prefix}{name}"));
        }
    }
}

#[test]
fn every_sample_file_has_a_case() {
    let mut found = Vec::new();
    sample_files(&data_dir(), "", &mut found);
    let mut listed: Vec<String> = CASE_FILES.iter().map(|file| (*file).to_owned()).collect();
    listed.sort();
    found.sort();
    assert_eq!(
        found, listed,
        "add a `sample_cases!` line for each new sample file"
    );
}
