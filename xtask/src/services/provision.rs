//! Finding a server's binary, installing its Debian package when missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::Server;

/// The binary of `server`: on the `PATH`, where its package installs it,
/// or installed now with apt-get (as root; otherwise the error gives the
/// exact command to run).
pub(super) fn binary(server: &Server) -> Result<PathBuf> {
    if let Some(found) = find(server) {
        return Ok(found);
    }
    let install = format!("apt-get update && apt-get install -y {}", server.package);
    if !is_root() {
        bail!(
            "{} is not installed and this is not root, so xtask cannot install it: run `sudo sh -c '{install}'`",
            server.binary
        );
    }
    println!(
        "==> {}: {} missing; installing: {install}",
        server.backend, server.binary
    );
    for args in [&["update"][..], &["install", "-y", server.package][..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status})", args.join(" "));
        }
    }
    find(server).with_context(|| format!("{} still not found after installing {}", server.binary, server.package))
}

fn find(server: &Server) -> Option<PathBuf> {
    let installed = Path::new(server.installed_at);
    if installed.is_file() {
        return Some(installed.to_owned());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(server.binary))
            .find(|candidate| candidate.is_file())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
