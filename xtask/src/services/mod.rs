//! `cargo xtask services up|down|status [BACKEND…]`: the real servers the
//! conformance suite talks to, each on a free loopback port, and the
//! environment that tells the tests where they are.
//!
//! Three modes (`--services MODE`, default `native`):
//! - `native`: install the Debian package if the binary is missing, start
//!   the server as a detached process of its own, record its pid; stop only
//!   processes so recorded.
//! - `external`: start nothing; the addresses come from the environment.
//! - `docker`: `docker compose` with the official images (`xtask/compose.yaml`),
//!   for machines with a Docker engine (not exercised by this project's CI).

mod docker;
mod native;
mod provision;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use coord_conformance::service::ServiceSpec;

use crate::conformance::target_dir;

/// A server backend the suite needs, and how to run it natively.
#[derive(Debug)]
pub(crate) struct Server {
    /// The backend it serves (`nats`).
    pub(crate) backend: &'static str,
    /// The executable's name.
    binary: &'static str,
    /// Where the Debian package installs it.
    installed_at: &'static str,
    /// The Debian package holding it.
    package: &'static str,
    /// The variable the tests read the server's URL from.
    url_var: &'static str,
    /// The variable naming the service spec (for stop/restart in tests).
    service_var: &'static str,
    /// The URL clients use to reach a server on `port`.
    url: fn(u16) -> String,
    /// The arguments that start it on `port`.
    args: fn(u16) -> Vec<String>,
    /// The port of the server under `--services docker`.
    docker_port: u16,
}

/// Every server the suite runs against.
pub(crate) const SERVERS: &[Server] = &[Server {
    backend: "nats",
    binary: "nats-server",
    installed_at: "/usr/sbin/nats-server",
    package: "nats-server",
    url_var: "COORD_NATS_URL",
    service_var: "COORD_NATS_SERVICE",
    url: |port| format!("nats://127.0.0.1:{port}"),
    args: |port| {
        ["-a", "127.0.0.1", "-p", &port.to_string(), "--no_advertise"]
            .map(String::from)
            .to_vec()
    },
    docker_port: 14222,
}];

/// How the services are provided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Started here from the Debian packages.
    Native,
    /// Already running; addresses from the environment.
    External,
    /// Started with `docker compose`.
    Docker,
}

impl Mode {
    fn parse(text: &str) -> Result<Mode> {
        match text {
            "native" => Ok(Mode::Native),
            "external" => Ok(Mode::External),
            "docker" => Ok(Mode::Docker),
            other => bail!("unknown services mode `{other}`: use native, external or docker"),
        }
    }
}

/// Takes `--services MODE` / `--services=MODE` out of `args`.
pub(crate) fn take_mode(args: &mut Vec<String>) -> Result<Mode> {
    let mut mode = Mode::Native;
    let mut rest = Vec::new();
    let mut iter = std::mem::take(args).into_iter();
    while let Some(arg) = iter.next() {
        if arg == "--services" {
            mode = Mode::parse(&iter.next().context("`--services` needs native, external or docker")?)?;
        } else if let Some(value) = arg.strip_prefix("--services=") {
            mode = Mode::parse(value)?;
        } else {
            rest.push(arg);
        }
    }
    *args = rest;
    Ok(mode)
}

/// The directory holding the specs, pid files and logs of native services.
fn state_dir() -> Result<PathBuf> {
    Ok(target_dir()?.join("services"))
}

/// The servers named by `names`, or all of them.
fn chosen(names: &[String]) -> Result<Vec<&'static Server>> {
    if names.is_empty() {
        return Ok(SERVERS.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            SERVERS.iter().find(|s| s.backend == name).with_context(|| {
                let known: Vec<&str> = SERVERS.iter().map(|s| s.backend).collect();
                format!(
                    "no service for backend `{name}`; backends with a server: {}",
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// Services brought up for a run: the environment for the tests, and the
/// processes this run started, stopped when it is dropped.
#[derive(Debug, Default)]
pub(crate) struct Running {
    /// Variables the tests need.
    pub(crate) env: Vec<(String, String)>,
    /// Native services this run started (stopped on drop).
    started: Vec<ServiceSpec>,
    /// Whether this run started the compose project (taken down on drop).
    compose: bool,
}

impl Running {
    /// Leaves every service running past this process (for `services up`).
    fn keep(mut self) -> Vec<(String, String)> {
        self.started.clear();
        self.compose = false;
        std::mem::take(&mut self.env)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for spec in self.started.drain(..).rev() {
            match spec.stop() {
                Ok(Some(pid)) => println!("==> stopped {} (pid {pid})", spec.name),
                Ok(None) => println!("==> {} had already stopped", spec.name),
                Err(error) => eprintln!("==> could not stop {}: {error}", spec.name),
            }
        }
        if self.compose
            && let Err(error) = docker::down()
        {
            eprintln!("==> docker compose down failed: {error:#}");
        }
    }
}

/// Brings up the servers of `backends` in `mode` for a run.
pub(crate) fn up(mode: Mode, backends: &[&'static Server]) -> Result<Running> {
    let mut running = Running::default();
    match mode {
        Mode::External => {
            for server in backends {
                let url = std::env::var(server.url_var).with_context(|| {
                    format!(
                        "--services external: {} is not set; point it at the {} server",
                        server.url_var, server.backend
                    )
                })?;
                println!("==> {}: using {url} (external, not started here)", server.backend);
                running.env.push((server.url_var.into(), url));
                if let Ok(spec) = std::env::var(server.service_var) {
                    running.env.push((server.service_var.into(), spec));
                }
            }
        }
        Mode::Docker => {
            docker::up()?;
            running.compose = true;
            for server in backends {
                running
                    .env
                    .push((server.url_var.into(), (server.url)(server.docker_port)));
            }
        }
        Mode::Native => {
            let dir = state_dir()?;
            for server in backends {
                let (spec, started) = native::ensure_running(server, &dir)?;
                running
                    .env
                    .push((server.url_var.into(), (server.url)(spec.listens[0].port())));
                running.env.push((
                    server.service_var.into(),
                    native::spec_path(&dir, server).display().to_string(),
                ));
                if started {
                    running.started.push(spec);
                }
            }
        }
    }
    Ok(running)
}

/// `cargo xtask services up|down|status [BACKEND…] [--services MODE]`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut args = args.to_vec();
    let mode = take_mode(&mut args)?;
    let Some((action, names)) = args.split_first() else {
        bail!("usage: cargo xtask services up|down|status [BACKEND…] [--services native|external|docker]");
    };
    let servers = chosen(names)?;
    match (action.as_str(), mode) {
        ("up", _) => {
            let env = up(mode, &servers)?.keep();
            println!("\nservices are up; to run a backend's tests by hand:");
            for (key, value) in env {
                println!("export {key}={value}");
            }
            Ok(())
        }
        ("down", Mode::Native) => native::down(&state_dir()?, &servers),
        ("down", Mode::Docker) => docker::down(),
        ("status", Mode::Native) => native::status(&state_dir()?, &servers),
        ("status", Mode::Docker) => docker::status(),
        ("down" | "status", Mode::External) => {
            bail!("--services external starts nothing, so there is nothing to {action}")
        }
        (other, _) => bail!("unknown services action `{other}`: use up, down or status"),
    }
}
