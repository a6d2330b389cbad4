//! Running a task's steps: a numbered header as each one starts, every step
//! run even after one fails, then a summary table.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::table;

/// The workspace root: the parent of this crate's directory.
pub(crate) fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in a directory of the workspace")
}

/// Set on Ctrl-C or SIGTERM: the steps not yet started are skipped.
pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// One step of a task: the label shown in its header and in the summary, and
/// the work itself.
pub(crate) struct Step {
    /// What the header and the summary call the step.
    label: String,
    /// The work; an error marks the step failed.
    work: Box<dyn FnOnce() -> Result<()>>,
}

impl Step {
    /// A step called `label` that does `work`.
    pub(crate) fn new(label: impl Into<String>, work: impl FnOnce() -> Result<()> + 'static) -> Self {
        Self {
            label: label.into(),
            work: Box::new(work),
        }
    }
}

/// Runs every step in order, going on after a failure so that the summary is
/// complete, then prints the summary; fails if any step failed.
pub(crate) fn run_steps(steps: Vec<Step>) -> Result<()> {
    let total = steps.len();
    let mut rows = Vec::with_capacity(total);
    let mut failed = Vec::new();
    for (index, step) in steps.into_iter().enumerate() {
        let number = index + 1;
        if INTERRUPTED.load(Ordering::SeqCst) {
            failed.push(step.label.clone());
            rows.push(vec![
                format!("{number}. {}", step.label),
                "skipped (interrupted)".into(),
                "-".into(),
            ]);
            continue;
        }
        println!("\n==> step {number}/{total}: {}", step.label);
        let started = Instant::now();
        let result = (step.work)();
        let seconds = started.elapsed().as_secs_f64();
        let verdict = match result {
            Ok(()) => "ok",
            Err(err) => {
                eprintln!("==> step {number}/{total} failed: {err:#}");
                failed.push(step.label.clone());
                "FAILED"
            }
        };
        rows.push(vec![
            format!("{number}. {}", step.label),
            verdict.into(),
            format!("{seconds:.1}"),
        ]);
    }
    println!(
        "\n==> summary\n{}",
        table::render(&["step", "result", "seconds"], &rows)
    );
    if !failed.is_empty() {
        bail!("{} of {total} steps failed: {}", failed.len(), failed.join("; "));
    }
    Ok(())
}

/// A `cargo` command line with extra environment variables, run with this
/// process's standard streams.
pub(crate) struct Cargo {
    /// The arguments after `cargo`.
    args: Vec<String>,
    /// Variables set for the child on top of this process's environment.
    envs: Vec<(String, OsString)>,
}

impl Cargo {
    /// `cargo` with these arguments.
    pub(crate) fn new(args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|arg| arg.to_string()).collect(),
            envs: Vec::new(),
        }
    }

    /// Sets `key` to `value` in the child's environment.
    pub(crate) fn env(mut self, key: impl Into<String>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Sets each of `vars` in the child's environment.
    pub(crate) fn envs(self, vars: &[(String, String)]) -> Self {
        vars.iter()
            .fold(self, |cargo, (key, value)| cargo.env(key.clone(), value))
    }

    /// This command as a step labelled with its command line.
    pub(crate) fn into_step(self) -> Step {
        Step::new(self.to_string(), move || self.run())
    }

    /// Prints the extra environment, then runs the command to completion;
    /// fails if it cannot start or exits unsuccessfully.
    fn run(&self) -> Result<()> {
        for (key, value) in &self.envs {
            println!("    {key}={}", value.to_string_lossy());
        }
        // Under `cargo xtask`, CARGO names the cargo that runs us: use the same one.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(&self.args)
            .envs(self.envs.iter().map(|(key, value)| (key, value)))
            .status()
            .with_context(|| format!("could not start `{self}`"))?;
        if !status.success() {
            bail!("`{self}` failed ({status})");
        }
        Ok(())
    }
}

impl fmt::Display for Cargo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cargo {}", self.args.join(" "))
    }
}
