//! Detection runtime over event batches: [`activity`] (Sigma packs over audit events) and
//! [`network`] (detectors over flows with threat intelligence). Pure: state goes in and out.

pub mod activity;
pub mod network;
