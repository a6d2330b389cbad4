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
    /// The deployments it runs the suite on, each its own report
    /// `<name>-<variant>` and its own server; empty for one plain report.
    /// A test function of each variant has the variant in its name.
    variants: &'static [&'static str],
}

impl Backend {
    /// The report labels this backend must produce (`redis-cluster`, …).
    pub(crate) fn labels(&self) -> Vec<String> {
        if self.variants.is_empty() {
            return vec![self.name.to_owned()];
        }
        self.variants.iter().map(|v| format!("{}-{v}", self.name)).collect()
    }
}

/// A backend, narrowed to one variant by `--variant`.
#[derive(Debug)]
pub(crate) struct Selected {
    /// The backend.
    pub(crate) backend: &'static Backend,
    /// The one variant to run, if narrowed.
    variant: Option<String>,
}

impl Selected {
    fn labels(&self) -> Vec<String> {
        match &self.variant {
            Some(variant) => vec![format!("{}-{variant}", self.backend.name)],
            None => self.backend.labels(),
        }
    }
}

/// Every backend the suite runs against. `cargo xtask test` fails unless each
/// of them wrote a report.
pub(crate) const BACKENDS: &[Backend] = &[
    Backend {
        name: "memory",
        package: "coord-conformance",
        test: "memory",
        variants: &[],
    },
    Backend {
        name: "nats",
        package: "coord-nats",
        test: "nats",
        variants: &[],
    },
    Backend {
        name: "redis",
        package: "coord-redis",
        test: "redis",
        variants: &["standalone", "cluster", "sentinel"],
    },
    Backend {
        name: "kafka",
        package: "coord-kafka",
        test: "kafka",
        variants: &[],
    },
    // Peers on loopback: no server to start.
    Backend {
        name: "zenoh",
        package: "coord-zenoh",
        test: "conformance",
        variants: &[],
    },
];

/// The servers the chosen backends need.
pub(crate) fn servers_for(backends: &[Selected]) -> Vec<&'static Server> {
    SERVERS
        .iter()
        .filter(|server| {
            backends.iter().any(|chosen| {
                chosen.backend.name == server.backend
                    && chosen
                        .variant
                        .as_ref()
                        .is_none_or(|variant| server.name == format!("{}-{variant}", server.backend))
            })
        })
        .collect()
}

/// Every backend, whole.
pub(crate) fn all_backends() -> Vec<Selected> {
    BACKENDS
        .iter()
        .map(|backend| Selected { backend, variant: None })
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
        .map(|chosen| {
            let (package, test) = (chosen.backend.package, chosen.backend.test);
            let mut args = vec!["test", "-p", package, "--test", test, "--", "--nocapture"];
            if let Some(variant) = &chosen.variant {
                args.push(variant);
            }
            with_suite_env(Cargo::new(&args).envs(&running.env), &reports).into_step()
        })
        .collect();
    steps.push(matrix_step(reports, &backends));
    let result = cmd::run_steps(steps);
    drop(running);
    result
}

/// The backends named by `--backend NAME` / `--backend=NAME` flags, each
/// narrowed by a `--variant NAME` that follows it, or all of them when there
/// is no flag.
fn select(args: &[String]) -> Result<Vec<Selected>> {
    let mut chosen: Vec<Selected> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || -> Result<String> {
            match &inline {
                Some(value) => Ok(value.clone()),
                None => args.next().cloned().with_context(|| format!("`{flag}` needs a name")),
            }
        };
        match flag {
            "--backend" => chosen.push(Selected {
                backend: find(&value()?)?,
                variant: None,
            }),
            "--variant" => {
                let variant = value()?;
                let Some(last) = chosen.last_mut() else {
                    bail!("`--variant {variant}` must follow the `--backend` it narrows");
                };
                if !last.backend.variants.contains(&variant.as_str()) {
                    let known = match last.backend.variants {
                        [] => "none".to_owned(),
                        variants => variants.join(", "),
                    };
                    bail!(
                        "backend `{}` has no variant `{variant}`; its variants: {known}",
                        last.backend.name
                    );
                }
                last.variant = Some(variant);
            }
            _ => bail!(
                "unexpected argument `{arg}`; usage: cargo xtask conformance [--backend NAME [--variant NAME]] \
                 [--services MODE]"
            ),
        }
    }
    if chosen.is_empty() {
        chosen = all_backends();
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
pub(crate) fn matrix_step(reports: PathBuf, expected: &[Selected]) -> Step {
    let labels: Vec<String> = expected.iter().flat_map(Selected::labels).collect();
    Step::new("conformance matrix", move || {
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        matrix::check(&reports, &labels)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns string literals into owned arguments.
    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| arg.to_string()).collect()
    }

    /// Names of the selected backends.
    fn names(backends: &[Selected]) -> Vec<&'static str> {
        backends.iter().map(|chosen| chosen.backend.name).collect()
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
        assert!(
            message.contains("known backends: memory, nats, redis, kafka, zenoh"),
            "{message}"
        );
    }

    #[test]
    fn a_variant_narrows_the_backend_before_it() {
        let chosen = select(&args(&["--backend", "redis", "--variant", "cluster"])).unwrap();
        assert_eq!(chosen[0].labels(), ["redis-cluster"]);
        let servers: Vec<&str> = servers_for(&chosen).iter().map(|s| s.name).collect();
        assert_eq!(servers, ["redis-cluster"]);
        let whole = select(&args(&["--backend=redis"])).unwrap();
        assert_eq!(
            whole[0].labels(),
            ["redis-standalone", "redis-cluster", "redis-sentinel"]
        );
        assert!(
            select(&args(&["--variant", "cluster"])).is_err(),
            "no backend to narrow"
        );
        let err = select(&args(&["--backend", "nats", "--variant", "x"])).unwrap_err();
        assert!(err.to_string().contains("has no variant `x`"), "{err}");
    }

    #[test]
    fn flag_without_name_and_stray_arguments_are_errors() {
        assert!(select(&args(&["--backend"])).is_err());
        assert!(select(&args(&["memory"])).is_err());
    }
}
