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
mod redis;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use coord_conformance::service::ServiceSpec;

use crate::conformance::target_dir;

/// A program a server needs, and how to get it when it is missing.
#[derive(Debug)]
pub(crate) struct Tool {
    /// The executable's name.
    pub(crate) binary: &'static str,
    /// Where its package installs it (searched before the `PATH`).
    pub(crate) installed_at: &'static [&'static str],
    /// How to install it.
    pub(crate) install: Install,
}

/// How a tool is installed.
#[derive(Debug)]
pub(crate) enum Install {
    /// A Debian package, with apt-get.
    Apt {
        /// The package's name.
        package: &'static str,
    },
    /// A crate, with `cargo install --locked`; skipped when this version is
    /// installed already (`cargo install --list`).
    Cargo {
        /// The crate's name.
        krate: &'static str,
        /// The exact version.
        version: &'static str,
        /// Features to enable.
        features: &'static [&'static str],
    },
}

/// What a server's processes are made from: the state directory and the
/// paths of its tools, in the order of [`Server::tools`].
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    /// Where pid files, logs and data go.
    pub(crate) dir: &'a std::path::Path,
    /// The tools' paths.
    pub(crate) tools: &'a [PathBuf],
}

/// A server backend the suite needs, and how to run it natively.
#[derive(Debug)]
pub(crate) struct Server {
    /// Its name: the backend it serves (`nats`), or backend and variant
    /// (`redis-cluster`).
    pub(crate) name: &'static str,
    /// The backend it serves.
    pub(crate) backend: &'static str,
    /// The programs it needs; the first runs its processes.
    pub(crate) tools: &'static [Tool],
    /// The variable the tests read the server's URL from.
    pub(crate) url_var: &'static str,
    /// The variable naming the service file (for stop/restart in tests).
    pub(crate) service_var: &'static str,
    /// The processes to start, in order, each on free loopback ports.
    pub(crate) processes: fn(&Launch<'_>) -> Result<Vec<ServiceSpec>>,
    /// Run once every process listens (e.g. joining nodes into a cluster);
    /// it may add the check that tells a restarted deployment is ready.
    pub(crate) setup: fn(&mut [ServiceSpec], &[PathBuf]) -> Result<()>,
    /// The URL clients use, from the running processes.
    pub(crate) url: fn(&[ServiceSpec]) -> String,
    /// The URL under `--services docker`, if `xtask/compose.yaml` has it.
    pub(crate) docker_url: Option<&'static str>,
}

/// A [`Server::setup`] with nothing to do.
pub(crate) fn no_setup(_: &mut [ServiceSpec], _: &[PathBuf]) -> Result<()> {
    Ok(())
}

/// A loopback address on a free port.
pub(crate) fn free_addr() -> Result<std::net::SocketAddr> {
    let port = coord_conformance::service::free_port().context("looking for a free loopback port")?;
    Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

/// One process of a server: `program args…`, listening on `listens`, its
/// pid file and log named after `name` in the state directory.
pub(crate) fn process(
    launch: &Launch<'_>,
    name: &str,
    program: &std::path::Path,
    args: Vec<String>,
    listens: Vec<std::net::SocketAddr>,
) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        program: program.to_owned(),
        args,
        listens,
        pid_file: launch.dir.join(format!("{name}.pid")),
        log_file: launch.dir.join(format!("{name}.log")),
        ready: None,
    }
}

/// Every server the suite runs against.
pub(crate) const SERVERS: &[Server] = &[NATS, redis::STANDALONE, redis::CLUSTER, redis::SENTINEL, KAFKA];

/// `nats-server` from the Debian package.
const NATS: Server = Server {
    name: "nats",
    backend: "nats",
    tools: &[Tool {
        binary: "nats-server",
        installed_at: &["/usr/sbin/nats-server"],
        install: Install::Apt { package: "nats-server" },
    }],
    url_var: "COORD_NATS_URL",
    service_var: "COORD_NATS_SERVICE",
    processes: |launch| {
        let addr = free_addr()?;
        let args = ["-a", "127.0.0.1", "-p", &addr.port().to_string(), "--no_advertise"];
        Ok(vec![process(
            launch,
            "nats",
            &launch.tools[0],
            args.map(String::from).to_vec(),
            vec![addr],
        )])
    },
    setup: no_setup,
    url: |specs| format!("nats://{}", specs[0].listens[0]),
    docker_url: Some("nats://127.0.0.1:14222"),
};

/// tansu, a Kafka-protocol broker in Rust, from crates.io, with memory storage.
const KAFKA: Server = Server {
    name: "kafka",
    backend: "kafka",
    tools: &[Tool {
        binary: "tansu",
        installed_at: &[],
        install: Install::Cargo {
            krate: "tansu",
            version: "0.6.0",
            features: &["dynostore"],
        },
    }],
    url_var: "COORD_KAFKA_URL",
    service_var: "COORD_KAFKA_SERVICE",
    processes: |launch| {
        let addr = free_addr()?;
        let url = format!("tcp://{addr}");
        let args = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ];
        Ok(vec![process(
            launch,
            "kafka",
            &launch.tools[0],
            args.map(String::from).to_vec(),
            vec![addr],
        )])
    },
    setup: no_setup,
    url: |specs| format!("kafka://{}", specs[0].listens[0]),
    docker_url: Some("kafka://127.0.0.1:19092"),
};

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
            let matching: Vec<&'static Server> =
                SERVERS.iter().filter(|s| s.name == name || s.backend == name).collect();
            if matching.is_empty() {
                let known: Vec<&str> = SERVERS.iter().map(|s| s.name).collect();
                bail!("no service called `{name}`; services: {}", known.join(", "));
            }
            Ok(matching)
        })
        .collect::<Result<Vec<_>>>()
        .map(|lists| lists.concat())
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
                        server.url_var, server.name
                    )
                })?;
                println!("==> {}: using {url} (external, not started here)", server.name);
                running.env.push((server.url_var.into(), url));
                if let Ok(spec) = std::env::var(server.service_var) {
                    running.env.push((server.service_var.into(), spec));
                }
            }
        }
        Mode::Docker => {
            for server in backends {
                let url = server.docker_url.with_context(|| {
                    format!(
                        "{} has no service in xtask/compose.yaml: use --services native",
                        server.name
                    )
                })?;
                running.env.push((server.url_var.into(), url.to_owned()));
            }
            docker::up()?;
            running.compose = true;
        }
        Mode::Native => {
            let dir = state_dir()?;
            for server in backends {
                let (specs, started) = native::ensure_running(server, &dir)?;
                running.env.push((server.url_var.into(), (server.url)(&specs)));
                let file = native::spec_path(&dir, server).display().to_string();
                running.env.push((server.service_var.into(), file));
                if started {
                    running.started.extend(specs);
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
