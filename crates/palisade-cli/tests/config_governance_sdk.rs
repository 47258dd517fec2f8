//! IBM SDK acceptance of Configuration Governance v1: `tests/sdk/test_config_governance.py`
//! drives every method of `ibm_scc.configuration_governance_v1.ConfigurationGovernanceV1`
//! (ibm-scc 1.1.2) against a real `palisade serve`, plus templates and admission decisions over
//! raw HTTP.

use crate::sdk::{Sdk, run_sdk_tests};

#[test]
fn ibm_configuration_governance_sdk_drives_every_method() {
    run_sdk_tests(Sdk::Scc1, "test_config_governance.py");
}
