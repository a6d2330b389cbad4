//! `cargo xtask test` (alias `ci`): everything CI checks, in one command.

use anyhow::Result;

use crate::cmd::{self, Cargo};
use crate::conformance;
use crate::services::{self, Mode};

/// Switches on the facade's optional backends too (Kafka is off by default),
/// so that its Kafka code, `coordctl` and the docs check are built with it.
const ALL_BACKENDS: &str = "--features=coord-facade/kafka";

/// Starts the servers every backend needs (in `mode`), runs rustfmt's check,
/// clippy, every test of the workspace with every backend required, and
/// prints the conformance matrix; stops the servers it started; fails if any
/// of these fails or a backend produced no report.
pub(crate) fn run(mode: Mode) -> Result<()> {
    let reports = conformance::fresh_report_dir()?;
    let backends = conformance::all_backends();
    println!("==> services ({mode:?})");
    let running = services::up(mode, &conformance::servers_for(&backends))?;
    let result = cmd::run_steps(vec![
        Cargo::new(&["fmt", "--all", "--", "--check"]).into_step(),
        Cargo::new(&[
            "clippy",
            "--workspace",
            "--all-targets",
            ALL_BACKENDS,
            "--",
            "-D",
            "warnings",
        ])
        .into_step(),
        conformance::with_suite_env(
            Cargo::new(&["test", "--workspace", ALL_BACKENDS, "--no-fail-fast"]).envs(&running.env),
            &reports,
        )
        .into_step(),
        conformance::matrix_step(reports, &backends),
    ]);
    drop(running);
    result
}
