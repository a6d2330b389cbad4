//! Finding the tools a server needs, installing what is missing: Debian
//! packages with apt-get, crates with `cargo install`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Install, Tool};

/// The path of `tool`, installing it first when missing: a Debian package
/// with apt-get (as root; otherwise the error gives the exact command), a
/// crate with `cargo install` (skipped when that version is installed).
pub(super) fn binary(backend: &str, tool: &Tool) -> Result<PathBuf> {
    match &tool.install {
        Install::Apt { package } => {
            if let Some(found) = find(tool) {
                return Ok(found);
            }
            apt_install(backend, tool.binary, package)?;
        }
        Install::Cargo {
            krate,
            version,
            features,
        } => {
            if installed_crate_version(krate).as_deref() == Some(*version)
                && let Some(found) = find(tool)
            {
                return Ok(found);
            }
            cargo_install(backend, krate, version, features)?;
        }
    }
    find(tool).with_context(|| format!("{} still not found after installing it", tool.binary))
}

fn apt_install(backend: &str, binary: &str, package: &str) -> Result<()> {
    let install = format!("apt-get update && apt-get install -y {package}");
    if !is_root() {
        bail!(
            "{binary} is not installed and this is not root, so xtask cannot install it: run `sudo sh -c '{install}'`"
        );
    }
    println!("==> {backend}: {binary} missing; installing: {install}");
    for args in [&["update"][..], &["install", "-y", package][..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status})", args.join(" "));
        }
    }
    Ok(())
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The version of `krate` that `cargo install` put on this machine, if any.
fn installed_crate_version(krate: &str) -> Option<String> {
    let out = Command::new(cargo()).args(["install", "--list"]).output().ok()?;
    let prefix = format!("{krate} v");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split([':', ' ']).next())
        .map(str::to_owned)
}

fn cargo_install(backend: &str, krate: &str, version: &str, features: &[&str]) -> Result<()> {
    let features = features.join(",");
    let mut args = vec!["install", krate, "--version", version, "--locked"];
    if !features.is_empty() {
        args.extend(["--features", &features]);
    }
    println!(
        "==> {backend}: installing {krate} {version}: cargo {} (long on a cold machine; cached afterwards)",
        args.join(" ")
    );
    // Its own target directory, so that the install neither uses nor
    // invalidates the workspace's build.
    let status = Command::new(cargo())
        .args(&args)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn find(tool: &Tool) -> Option<PathBuf> {
    if let Some(installed) = tool.installed_at.iter().map(Path::new).find(|path| path.is_file()) {
        return Some(installed.to_owned());
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(cargo_bin)
        .map(|dir| dir.join(tool.binary))
        .find(|candidate| candidate.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
