//! The crate's one integration-test binary: renders a scan of a built-in profile and checks
//! the PDF by extracting its text (printpdf's own parser) and the OSCAL document with
//! compliance-trestle.

mod common;
mod oscal;
#[cfg(feature = "pdf")]
mod pdf;
