//! `cargo xtask`: the project's developer tasks, written in Rust so that they
//! run wherever cargo does. CI runs the same `cargo xtask test` (see `.ci/run`).
//!
//! Run `cargo xtask help` for the list of tasks.

mod cmd;
mod conformance;
mod matrix;
mod table;
mod test;

use std::process::ExitCode;

use anyhow::{Result, bail};

/// What `cargo xtask help` prints, before the list of backends.
const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test                          rustfmt check, clippy, every test with all backends
                                required, then the conformance matrix
  ci                            the same as `test` (what .ci/run runs)
  conformance [--backend NAME]  the conformance suite for one backend (the flag may
                                be repeated) or, without the flag, for every backend
  help                          this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Dispatches to the task named by the first argument; no argument means `help`.
fn run(args: &[String]) -> Result<()> {
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    match task {
        "help" | "-h" | "--help" => {
            print_usage();
            Ok(())
        }
        "test" | "ci" => {
            if !rest.is_empty() {
                bail!("`{task}` takes no arguments, got `{}`", rest.join(" "));
            }
            test::run()
        }
        "conformance" => conformance::run(rest),
        other => bail!("unknown task `{other}`; `cargo xtask help` lists the tasks"),
    }
}

/// Prints the usage text and the backends `conformance` knows.
fn print_usage() {
    print!("{USAGE}");
    println!("\nbackends: {}", conformance::known_names());
}
