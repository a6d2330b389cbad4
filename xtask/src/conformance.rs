//! `cargo xtask conformance [--backend NAME]`: the conformance suite alone, for
//! one or every backend, and the environment contract with the suite's runner.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cmd::{self, Cargo, Step};
use crate::matrix;
use crate::services::{self, SERVERS, Server};

/// A backend the conformance suite runs against, and the integration test
/// that runs it.
#[derive(Debug)]
pub(crate) struct Backend {
    /// The backend's name: `--backend NAME` and the `backend` field of its report.
    pub(crate) name: &'static str,
    /// The package holding the backend's conformance test.
    package: &'static str,
    /// The name of that integration test (`cargo test --test NAME`).
    test: &'static str,
}

/// Every backend the suite runs against. `cargo xtask test` fails unless each
/// of them wrote a report.
pub(crate) const BACKENDS: &[Backend] = &[
    Backend {
        name: "memory",
        package: "coord-conformance",
        test: "memory",
    },
    Backend {
        name: "nats",
        package: "coord-nats",
        test: "nats",
    },
    // Peers on loopback: no server to start.
    Backend {
        name: "zenoh",
        package: "coord-zenoh",
        test: "conformance",
    },
];

/// The servers the chosen backends need.
pub(crate) fn servers_for(backends: &[&Backend]) -> Vec<&'static Server> {
    SERVERS
        .iter()
        .filter(|server| backends.iter().any(|backend| backend.name == server.backend))
        .collect()
}

/// Tells the suite that a skipped backend is a failure.
const REQUIRE_BACKENDS: &str = "COORD_REQUIRE_BACKENDS";
/// Tells the suite's runner the directory to write its JSON reports to.
const REPORT_DIR: &str = "COORD_CONFORMANCE_REPORT_DIR";

/// Runs the conformance test of each backend chosen by `args`, then prints
/// their matrix; fails if a run or a case failed or a report is missing.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut args = args.to_vec();
    let mode = services::take_mode(&mut args)?;
    let backends = select(&args)?;
    let reports = fresh_report_dir()?;
    let running = services::up(mode, &servers_for(&backends))?;
    let mut steps: Vec<Step> = backends
        .iter()
        .map(|backend| {
            let (package, test) = (backend.package, backend.test);
            let args = ["test", "-p", package, "--test", test, "--", "--nocapture"];
            with_suite_env(Cargo::new(&args).envs(&running.env), &reports).into_step()
        })
        .collect();
    steps.push(matrix_step(reports, backends));
    let result = cmd::run_steps(steps);
    drop(running);
    result
}

/// The backends named by `--backend NAME` / `--backend=NAME` flags, or all of
/// them when there is no flag.
fn select(args: &[String]) -> Result<Vec<&'static Backend>> {
    let mut chosen = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let name = if arg == "--backend" {
            args.next().context("`--backend` needs a backend name")?
        } else if let Some(name) = arg.strip_prefix("--backend=") {
            name
        } else {
            bail!("unexpected argument `{arg}`; usage: cargo xtask conformance [--backend NAME] [--services MODE]");
        };
        chosen.push(find(name)?);
    }
    if chosen.is_empty() {
        chosen.extend(BACKENDS);
    }
    Ok(chosen)
}

/// The backend called `name`, or an error listing the known ones.
fn find(name: &str) -> Result<&'static Backend> {
    BACKENDS
        .iter()
        .find(|backend| backend.name == name)
        .with_context(|| format!("unknown backend `{name}`; known backends: {}", known_names()))
}

/// The names of every known backend, comma-separated.
pub(crate) fn known_names() -> String {
    let names: Vec<&str> = BACKENDS.iter().map(|backend| backend.name).collect();
    names.join(", ")
}

/// The report directory, emptied of earlier reports so that only this run's
/// are read: `$CARGO_TARGET_DIR/conformance` if that variable is set, else
/// `<workspace>/target/conformance`.
pub(crate) fn fresh_report_dir() -> Result<PathBuf> {
    let dir = target_dir()?.join("conformance");
    matrix::clear(&dir)?;
    Ok(dir)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else
/// `<workspace>/target`.
pub(crate) fn target_dir() -> Result<PathBuf> {
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => std::path::absolute(&dir)
            .with_context(|| format!("resolving CARGO_TARGET_DIR={}", Path::new(&dir).display()))?,
        _ => cmd::workspace_root().join("target"),
    })
}

/// Adds the suite's environment to `cargo`: every backend required, reports
/// written to `reports`.
pub(crate) fn with_suite_env(cargo: Cargo, reports: &Path) -> Cargo {
    cargo.env(REQUIRE_BACKENDS, "all").env(REPORT_DIR, reports)
}

/// The step that prints the matrix of the reports in `reports` and fails if a
/// case failed or one of `expected` wrote no report.
pub(crate) fn matrix_step(reports: PathBuf, expected: Vec<&'static Backend>) -> Step {
    let names: Vec<&str> = expected.iter().map(|backend| backend.name).collect();
    Step::new("conformance matrix", move || matrix::check(&reports, &names))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns string literals into owned arguments.
    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| arg.to_string()).collect()
    }

    /// Names of the selected backends.
    fn names(backends: &[&Backend]) -> Vec<&'static str> {
        backends.iter().map(|backend| backend.name).collect()
    }

    #[test]
    fn no_flag_selects_every_backend() {
        let all: Vec<&str> = BACKENDS.iter().map(|backend| backend.name).collect();
        assert_eq!(names(&select(&[]).unwrap()), all);
    }

    #[test]
    fn both_flag_spellings_select_a_backend() {
        assert_eq!(names(&select(&args(&["--backend", "memory"])).unwrap()), ["memory"]);
        assert_eq!(names(&select(&args(&["--backend=memory"])).unwrap()), ["memory"]);
    }

    #[test]
    fn unknown_backend_lists_the_known_ones() {
        let err = select(&args(&["--backend", "carrier-pigeon"])).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("unknown backend `carrier-pigeon`"), "{message}");
        assert!(message.contains("known backends: memory, nats, zenoh"), "{message}");
    }

    #[test]
    fn flag_without_name_and_stray_arguments_are_errors() {
        assert!(select(&args(&["--backend"])).is_err());
        assert!(select(&args(&["memory"])).is_err());
    }
}
