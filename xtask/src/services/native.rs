//! Native services: the Debian package's binary run as a detached process
//! on a free loopback port, its spec, pid file and log under
//! `<target>/services/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use coord_conformance::service::{ServiceSpec, accepts, free_port};

use super::{Server, provision};

/// Where `server`'s spec is kept.
pub(super) fn spec_path(dir: &Path, server: &Server) -> PathBuf {
    dir.join(format!("{}.json", server.backend))
}

/// The spec of a new server on a free port.
fn new_spec(server: &Server, program: PathBuf, dir: &Path) -> Result<ServiceSpec> {
    let port = free_port().context("looking for a free loopback port")?;
    Ok(ServiceSpec {
        name: server.backend.to_owned(),
        program,
        args: (server.args)(port),
        listens: vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))],
        pid_file: dir.join(format!("{}.pid", server.backend)),
        log_file: dir.join(format!("{}.log", server.backend)),
    })
}

/// Reuses `server` if a process recorded by an earlier `services up` still
/// runs it, or starts it. Returns its spec and whether it was started here.
pub(super) fn ensure_running(server: &Server, dir: &Path) -> Result<(ServiceSpec, bool)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = spec_path(dir, server);
    if let Ok(spec) = ServiceSpec::load(&path)
        && let Some(pid) = spec.running_pid()
        && spec.listens.iter().all(|addr| accepts(*addr))
    {
        println!(
            "==> {}: already running (pid {pid}, {}), left running afterwards",
            server.backend,
            (server.url)(spec.listens[0].port())
        );
        return Ok((spec, false));
    }
    let program = provision::binary(server)?;
    let spec = new_spec(server, program, dir)?;
    println!(
        "==> {}: starting {} {} (log {})",
        server.backend,
        spec.program.display(),
        spec.args.join(" "),
        spec.log_file.display()
    );
    let pid = spec
        .start()
        .with_context(|| format!("starting the {} server", server.backend))?;
    spec.save(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "==> {}: up as pid {pid} at {}",
        server.backend,
        (server.url)(spec.listens[0].port())
    );
    Ok((spec, true))
}

/// Stops the recorded processes of `servers`.
pub(super) fn down(dir: &Path, servers: &[&Server]) -> Result<()> {
    for server in servers {
        let path = spec_path(dir, server);
        let Ok(spec) = ServiceSpec::load(&path) else {
            println!("==> {}: not started by xtask", server.backend);
            continue;
        };
        match spec.stop().with_context(|| format!("stopping {}", server.backend))? {
            Some(pid) => println!("==> {}: stopped pid {pid}", server.backend),
            None => println!("==> {}: was not running", server.backend),
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// Prints whether each server runs and accepts connections.
pub(super) fn status(dir: &Path, servers: &[&Server]) -> Result<()> {
    for server in servers {
        let line = match ServiceSpec::load(&spec_path(dir, server)) {
            Err(_) => "not started by xtask".to_owned(),
            Ok(spec) => {
                let url = (server.url)(spec.listens[0].port());
                match spec.running_pid() {
                    Some(pid) if spec.listens.iter().all(|addr| accepts(*addr)) => {
                        format!("running, pid {pid}, {url}")
                    }
                    Some(pid) => format!("pid {pid} runs but does not accept connections at {url}"),
                    None => format!("stopped (was at {url})"),
                }
            }
        };
        println!("{:<8} {line}", server.backend);
    }
    Ok(())
}
