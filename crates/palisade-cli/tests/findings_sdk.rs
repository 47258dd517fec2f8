//! IBM SDK acceptance of the Findings and Notifications APIs: `tests/sdk/test_findings.py` and
//! `tests/sdk/test_notifications.py` drive every method of `ibm_scc.findings_v1.FindingsV1` and
//! `ibm_scc.notifications_v1.NotificationsV1` (ibm-scc 1.1.2) against a real `palisade serve`.

use crate::sdk::{Sdk, run_sdk_tests, run_sdk_tests_with_server_args};

#[test]
fn ibm_findings_sdk_drives_every_method() {
    run_sdk_tests(Sdk::Scc1, "test_findings.py");
}

#[test]
fn ibm_notifications_sdk_drives_every_method() {
    // The test's webhook receiver listens on plain http on 127.0.0.1, which the default policy
    // refuses, as it should in production.
    run_sdk_tests_with_server_args(
        Sdk::Scc1,
        "test_notifications.py",
        &["--allow-insecure-webhooks"],
    );
}
