//! `--services docker`: the official images via `docker compose`, from
//! `xtask/compose.yaml`. For machines with a Docker engine; this project's CI
//! has none and runs `native`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

fn compose_file() -> PathBuf {
    crate::cmd::workspace_root().join("xtask/compose.yaml")
}

fn compose(args: &[&str]) -> Result<()> {
    let file = compose_file();
    println!("==> docker compose -f {} {}", file.display(), args.join(" "));
    let status = Command::new("docker")
        .arg("compose")
        .arg("-f")
        .arg(&file)
        .args(args)
        .status()
        .context("running `docker compose` (is Docker installed?)")?;
    if !status.success() {
        bail!(
            "`docker compose {}` failed ({status}); is a Docker engine running?",
            args.join(" ")
        );
    }
    Ok(())
}

/// Starts every service and waits until each is healthy.
pub(super) fn up() -> Result<()> {
    compose(&["up", "-d", "--wait"])
}

/// Stops and removes the services.
pub(super) fn down() -> Result<()> {
    compose(&["down", "--volumes"])
}

/// Lists the services.
pub(super) fn status() -> Result<()> {
    compose(&["ps"])
}
