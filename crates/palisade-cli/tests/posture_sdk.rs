//! The SCC v3 posture API driven by IBM's `ibm-scc` 5.0.0 SDK (tests/sdk/test_posture_*.py).

use crate::sdk::{Sdk, run_sdk_tests};

#[test]
fn ibm_sdk_v3_configuration_methods() {
    run_sdk_tests(Sdk::Scc5, "test_posture_config.py");
}

#[test]
fn ibm_sdk_v3_scans_and_reports() {
    run_sdk_tests(Sdk::Scc5, "test_posture_scans.py");
}
