//! `cargo xtask test` (alias `ci`): everything CI checks, in one command.

use anyhow::Result;

use crate::cmd::{self, Cargo};
use crate::conformance::{self, BACKENDS};

/// Runs rustfmt's check, clippy, every test of the workspace with every backend
/// required, and prints the conformance matrix; fails if any of these fails or
/// a backend produced no report.
pub(crate) fn run() -> Result<()> {
    let reports = conformance::fresh_report_dir()?;
    cmd::run_steps(vec![
        Cargo::new(&["fmt", "--all", "--", "--check"]).into_step(),
        Cargo::new(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]).into_step(),
        conformance::with_suite_env(Cargo::new(&["test", "--workspace"]), &reports).into_step(),
        conformance::matrix_step(reports, BACKENDS.iter().collect()),
    ])
}
