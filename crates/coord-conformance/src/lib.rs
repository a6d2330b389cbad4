//! The conformance suite of coord: every contract line of `CONFORMANCE.md`
//! written once as a `pub async fn` over a [`Fixture`], run against every
//! backend.
//!
//! A backend crate calls [`run_and_check`] from one integration test with a
//! fixture that makes connected transports (and, where its harness can, fault
//! hooks). Cases needing a feature the fixture lacks are reported `n/a` with
//! the feature's name. The runner prints a matrix (case × result × time) and,
//! under `cargo xtask`, writes a JSON report the matrix of every backend is
//! built from.
//!
//! ```no_run
//! # async fn example() {
//! use coord_conformance::{MemoryFixture, run_and_check};
//! run_and_check(&MemoryFixture::new()).await;
//! # }
//! ```

pub mod cases;
pub mod certs;
mod environment;
mod faulty;
mod fixture;
pub mod harness;
mod logs;
mod memory;
mod network;
pub mod proxy;
mod runner;
pub mod service;

pub use environment::{server_address, service_spec};
pub use faulty::{FaultyTransport, FrameLoss, Silence};
pub use fixture::{ConnId, Connection, Faults, Features, Fixture};
pub use memory::MemoryFixture;
pub use network::{Connector, NetworkFixture, RoutedConnector};
pub use runner::{CASES_ENV, CaseReport, Outcome, REPORT_DIR_ENV, Report, run, run_and_check};

/// Whether a backend's suite must run: true when `COORD_REQUIRE_BACKENDS` is
/// `all` or names `backend` (comma-separated). A backend test whose server
/// address is missing fails instead of skipping when this is true.
pub fn backend_required(backend: &str) -> bool {
    std::env::var("COORD_REQUIRE_BACKENDS")
        .is_ok_and(|v| v.split(',').any(|name| name.trim() == "all" || name.trim() == backend))
}
