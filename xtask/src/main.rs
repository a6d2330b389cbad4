//! `cargo xtask`: the project's developer tasks, written in Rust so that they
//! run wherever cargo does. CI runs the same `cargo xtask test` (see `.ci/run`).
//!
//! Run `cargo xtask help` for the list of tasks.

mod bench;
mod cmd;
mod conformance;
mod matrix;
mod services;
mod table;
mod test;

use std::process::ExitCode;

use anyhow::{Result, bail};

/// What `cargo xtask help` prints, before the list of backends.
const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test                          start the servers, rustfmt check, clippy, every test
                                with all backends required, the conformance matrix,
                                then stop the servers it started
  ci                            the same as `test` (what .ci/run runs)
  conformance [--backend NAME]  the conformance suite for one backend (the flag may
                                be repeated) or, without the flag, for every backend
  bench [--backend NAME]... [--quick]
                                coord beside each backend's own client, in one run
                                (release build; table on stdout, JSON in target/bench)
  services up|down|status [BACKEND...]
                                the real servers alone, on free loopback ports
  help                          this text

options of test, ci, conformance, bench and services:
  --services native             install (apt-get) and start the servers here (default)
  --services external           start nothing; read COORD_<BACKEND>_URL from the environment
  --services docker             docker compose with the official images (xtask/compose.yaml)
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
            let mut rest = rest.to_vec();
            let mode = services::take_mode(&mut rest)?;
            if !rest.is_empty() {
                bail!("`{task}` takes only --services, got `{}`", rest.join(" "));
            }
            watch_interrupts();
            test::run(mode)
        }
        "conformance" => {
            watch_interrupts();
            conformance::run(rest)
        }
        "bench" => {
            watch_interrupts();
            bench::run(rest)
        }
        "services" => services::run(rest),
        other => bail!("unknown task `{other}`; `cargo xtask help` lists the tasks"),
    }
}

/// On Ctrl-C or SIGTERM, lets the running step fail (the signal reaches it
/// too) so that the servers this run started are still stopped.
fn watch_interrupts() {
    let installed = ctrlc::set_handler(|| {
        cmd::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!("\n==> interrupted: stopping the servers this run started once the current step ends");
    });
    if let Err(error) = installed {
        eprintln!("==> cannot watch for Ctrl-C ({error}); an interrupt may leave servers running");
    }
}

/// Prints the usage text and the backends `conformance` knows.
fn print_usage() {
    print!("{USAGE}");
    println!("\nbackends: {}", conformance::known_names());
}
