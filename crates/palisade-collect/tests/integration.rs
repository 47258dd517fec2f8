//! The crate's one integration-test binary.
//!
//! - `importers`: every file under `tests/import/<kind>/` is imported and compared with its
//!   golden `<file>.expected.json` (`PALISADE_BLESS=1` rewrites the goldens); every kind a
//!   golden holds must be in the `/v3/services` catalogue.
//! - `host`: the host collector over the fixture tree `tests/host/` (golden too), and once over
//!   the real machine, checking structure only.
//! - `host_ssh`: the host collector over SSH against a real `sshd` on a free port.
//! - `aws_moto`: the AWS collector against the moto emulator seeded with compliant and
//!   non-compliant resources; the built-in rules must find every seeded misconfiguration.

mod aws_moto;
mod host;
mod host_ssh;
mod importers;
mod support;
