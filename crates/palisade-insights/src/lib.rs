//! Detection runtime over event batches: [`activity`] (Sigma packs over audit events) and
//! [`network`] (detectors over flows with threat intelligence), and the built-in Sigma [`packs`].
//! Pure: state goes in and out.

pub mod activity;
pub mod network;
pub mod packs;
