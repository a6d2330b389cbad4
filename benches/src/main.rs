//! `coord-bench`: the raw client and coord side by side on each backend
//! named on the command line, in one run; a markdown table on standard
//! output and, with `--json`, the figures as JSON. `cargo xtask bench`
//! starts the servers and runs this.
//!
//! ```text
//! coord-bench [--quick] [--events N] [--json PATH] [--coord-only] --backend NAME=URI [--peer NAME=URI]…
//! coord-bench stalled-node URI NODE_ID NAMESPACE    (the helper of the memory figure)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use coord_bench::{BackendReport, Options, coord_half, markdown, raw_half, stalled_node};

/// One backend to measure.
struct Target {
    name: String,
    uri: String,
    peer: Option<String>,
}

/// The parsed command line of a run.
struct Run {
    options: Options,
    json: Option<PathBuf>,
    coord_only: bool,
    targets: Vec<Target>,
}

fn parse(args: &[String]) -> Result<Run> {
    let mut run = Run {
        options: Options::new(false),
        json: None,
        coord_only: false,
        targets: Vec::new(),
    };
    let mut args = args.iter();
    let named = |value: Option<&String>, flag: &str| -> Result<(String, String)> {
        let value = value.with_context(|| format!("{flag} needs NAME=URI"))?;
        let (name, uri) = value
            .split_once('=')
            .with_context(|| format!("{flag} {value}: write NAME=URI"))?;
        Ok((name.to_owned(), uri.to_owned()))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => run.options.quick = true,
            "--coord-only" => run.coord_only = true,
            "--events" => {
                let n = args.next().context("--events needs a number")?;
                run.options.events = Some(n.parse().with_context(|| format!("--events {n}"))?);
            }
            "--json" => run.json = Some(args.next().context("--json needs a path")?.into()),
            "--backend" => {
                let (name, uri) = named(args.next(), "--backend")?;
                run.targets.push(Target { name, uri, peer: None });
            }
            "--peer" => {
                let (name, uri) = named(args.next(), "--peer")?;
                let target = run
                    .targets
                    .iter_mut()
                    .find(|t| t.name == name)
                    .with_context(|| format!("--peer {name}=…: give --backend {name}=… first"))?;
                target.peer = Some(uri);
            }
            other => bail!("unexpected argument `{other}`; see the usage in the crate docs"),
        }
    }
    if run.targets.is_empty() {
        bail!("name at least one --backend NAME=URI");
    }
    Ok(run)
}

/// The machine, for the report: CPU model, cores, kernel.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|k| k.trim().to_owned());
    serde_json::json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "kernel": kernel.ok(),
    })
}

async fn bench(run: Run) -> Result<bool> {
    let exe = std::env::current_exe().context("finding this program for the stalled-node helper")?;
    let mut reports = Vec::new();
    let mut all_ok = true;
    for target in &run.targets {
        let mut options = run.options.clone();
        options.peer_uri = target.peer.clone();
        options.stalled_helper = Some(vec![exe.clone().into(), "stalled-node".into()]);
        eprintln!("==> {}: {}", target.name, target.uri);
        let raw = if run.coord_only {
            None
        } else {
            match raw_half(&target.uri, &options).await {
                Ok(raw) => Some(raw),
                Err(error) => {
                    eprintln!("==> {}: raw client failed: {error}", target.name);
                    all_ok = false;
                    None
                }
            }
        };
        match coord_half(&target.uri, &options).await {
            Ok(coord) => reports.push(BackendReport::new(target.name.clone(), raw, coord)),
            Err(error) => {
                eprintln!("==> {}: coord failed: {error}", target.name);
                all_ok = false;
            }
        }
    }
    println!("{}", markdown(&reports));
    if let Some(path) = &run.json {
        let json = serde_json::json!({
            "quick": run.options.quick,
            "machine": machine(),
            "reports": reports,
        });
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("==> figures written to {}", path.display());
    }
    Ok(all_ok)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("stalled-node") => match &args[1..] {
            [uri, node, namespace] => stalled_node(uri, node, namespace)
                .await
                .map(|()| true)
                .map_err(Into::into),
            _ => Err(anyhow::anyhow!("usage: coord-bench stalled-node URI NODE_ID NAMESPACE")),
        },
        _ => match parse(&args) {
            Ok(run) => bench(run).await,
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
