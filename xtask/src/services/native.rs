//! Native services: each server's processes run detached on free loopback
//! ports; their specs (one JSON array per server), pid files and logs live
//! under `<target>/services/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use coord_conformance::service::{ServiceSpec, accepts};

use super::{Launch, Server, provision};

/// Where `server`'s service file is kept.
pub(super) fn spec_path(dir: &Path, server: &Server) -> PathBuf {
    dir.join(format!("{}.json", server.name))
}

fn all_up(specs: &[ServiceSpec]) -> bool {
    specs
        .iter()
        .all(|spec| spec.running_pid().is_some() && spec.listens.iter().all(|addr| accepts(*addr)))
}

/// Reuses `server` if the processes recorded by an earlier `services up`
/// still run, or starts it. Returns its processes and whether they were
/// started here.
pub(super) fn ensure_running(server: &Server, dir: &Path) -> Result<(Vec<ServiceSpec>, bool)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = spec_path(dir, server);
    if let Ok(specs) = ServiceSpec::load_all(&path)
        && all_up(&specs)
    {
        println!(
            "==> {}: already running ({}), left running afterwards",
            server.name,
            (server.url)(&specs)
        );
        return Ok((specs, false));
    }
    if let Ok(stale) = ServiceSpec::load_all(&path) {
        stop_all(server, &stale)?;
    }
    let tools = server
        .tools
        .iter()
        .map(|tool| provision::binary(server.name, tool))
        .collect::<Result<Vec<_>>>()?;
    let mut specs = (server.processes)(&Launch { dir, tools: &tools })?;
    let mut started = Vec::new();
    for spec in &specs {
        println!(
            "==> {}: starting {} {} (log {})",
            server.name,
            spec.program.display(),
            spec.args.join(" "),
            spec.log_file.display()
        );
        match spec.start() {
            Ok(pid) => {
                println!("==> {}: {} up as pid {pid}", server.name, spec.name);
                started.push(spec.clone());
            }
            Err(error) => {
                stop_all(server, &started)?;
                return Err(error).with_context(|| format!("starting {} for {}", spec.name, server.name));
            }
        }
    }
    if let Err(error) = (server.setup)(&mut specs, &tools) {
        stop_all(server, &specs)?;
        return Err(error).with_context(|| format!("setting up {}", server.name));
    }
    ServiceSpec::save_all(&specs, &path).with_context(|| format!("writing {}", path.display()))?;
    println!("==> {}: up at {}", server.name, (server.url)(&specs));
    Ok((specs, true))
}

fn stop_all(server: &Server, specs: &[ServiceSpec]) -> Result<()> {
    for spec in specs.iter().rev() {
        match spec
            .stop()
            .with_context(|| format!("stopping {} of {}", spec.name, server.name))?
        {
            Some(pid) => println!("==> {}: stopped {} (pid {pid})", server.name, spec.name),
            None => println!("==> {}: {} was not running", server.name, spec.name),
        }
    }
    Ok(())
}

/// Stops the recorded processes of `servers`.
pub(super) fn down(dir: &Path, servers: &[&Server]) -> Result<()> {
    for server in servers {
        let path = spec_path(dir, server);
        let Ok(specs) = ServiceSpec::load_all(&path) else {
            println!("==> {}: not started by xtask", server.name);
            continue;
        };
        stop_all(server, &specs)?;
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// Prints whether each server's processes run and accept connections.
pub(super) fn status(dir: &Path, servers: &[&Server]) -> Result<()> {
    for server in servers {
        let Ok(specs) = ServiceSpec::load_all(&spec_path(dir, server)) else {
            println!("{:<16} not started by xtask", server.name);
            continue;
        };
        for spec in &specs {
            let line = match spec.running_pid() {
                Some(pid) if spec.listens.iter().all(|addr| accepts(*addr)) => {
                    format!("running, pid {pid}, {:?}", spec.listens)
                }
                Some(pid) => format!("pid {pid} runs but does not accept connections at {:?}", spec.listens),
                None => format!("stopped (was at {:?})", spec.listens),
            };
            println!("{:<16} {:<20} {line}", server.name, spec.name);
        }
    }
    Ok(())
}
