//! IBM SDK acceptance: pytest files under `tests/sdk/` drive IBM's own Python SDKs against a real
//! `palisade serve`. Each test here starts a fresh server and runs one pytest file with the
//! interpreter of the matching virtual environment (`scripts/test` creates them).
//!
//! Without the environment variable naming the interpreter the test skips, saying so — unless
//! `PALISADE_REQUIRE_SDK=1` (set by CI), which makes a skip a failure.

use std::path::PathBuf;
use std::process::Command;

use crate::support::ServerProcess;

/// Which SDK generation a pytest file needs.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)]
pub enum Sdk {
    /// `ibm-scc` 1.1.2: findings, notifications, configuration governance.
    Scc1,
    /// `ibm-scc` 5.0.0: the SCC v3 posture API.
    Scc5,
}

/// Starts a server and runs `tests/sdk/<file>` against it with pytest; panics on failure.
#[allow(dead_code)]
pub fn run_sdk_tests(sdk: Sdk, file: &str) {
    run_sdk_tests_with_server_args(sdk, file, &[]);
}

/// Like [`run_sdk_tests`], starting the server with more `serve` flags.
#[allow(dead_code)]
pub fn run_sdk_tests_with_server_args(sdk: Sdk, file: &str, server_args: &[&str]) {
    let variable = match sdk {
        Sdk::Scc1 => "PALISADE_SDK1_PYTHON",
        Sdk::Scc5 => "PALISADE_SDK5_PYTHON",
    };
    let Ok(python) = std::env::var(variable) else {
        let required = std::env::var("PALISADE_REQUIRE_SDK").is_ok_and(|value| value == "1");
        assert!(
            !required,
            "PALISADE_REQUIRE_SDK=1 but {variable} is unset: run the tests through scripts/test"
        );
        eprintln!("SKIPPED {file}: {variable} is unset (scripts/test sets it up)");
        return;
    };
    let data_dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start_with_args(data_dir.path(), server_args);
    let (admin_key, instance_id) = server.bootstrap();
    let tests_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk");
    let output = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"])
        .arg(tests_dir.join(file))
        .env("PALISADE_URL", &server.url)
        .env("PALISADE_KEY", &admin_key)
        .env("PALISADE_INSTANCE_ID", &instance_id)
        .output()
        .expect("run pytest");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "pytest {file} failed:\n{report}");
    eprintln!("{report}");
}
