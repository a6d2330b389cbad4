//! `coordctl bench`: the coord half of the benchmarks against any
//! reachable server, for operators sizing a deployment.

use anyhow::{Context, Result, bail};
use clap::Args;
use coord_bench::{BackendReport, Options, coord_half, markdown, stalled_node};

/// The hidden subcommand the memory figure's helper process runs.
pub(crate) const STALLED_NODE: &str = "bench-stalled-node";

/// The options of `coordctl bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The backend URI of the sender, e.g. `nats://10.0.0.5:4222` (node id
    /// and namespace are set by the benchmark: a namespace of its own).
    #[arg(long)]
    backend: String,
    /// The URI of the two receivers when it differs: for Zenoh peers the
    /// sender listens (`zenoh://?listen=tcp/127.0.0.1:7500&scouting=off`)
    /// and the receivers connect (`zenoh://127.0.0.1:7500?scouting=off`).
    #[arg(long)]
    peer: Option<String>,
    /// Shorter runs and fewer repetitions (about a minute).
    #[arg(long)]
    quick: bool,
    /// Events per throughput run (default 300,000 with --quick, else 1,000,000).
    #[arg(long)]
    events: Option<u64>,
    /// Print the figures as JSON instead of the markdown table.
    #[arg(long)]
    json: bool,
}

/// Measures throughput, latency at 10 % and 50 % load, crash detection on
/// both profiles, control traffic and the stalled receiver's peak RSS.
pub(crate) async fn run(args: BenchArgs) -> Result<()> {
    let mut options = Options::new(args.quick);
    options.events = args.events;
    options.peer_uri = args.peer;
    let me = std::env::current_exe().context("finding this program for the stalled-node helper")?;
    options.stalled_helper = Some(vec![me.into(), STALLED_NODE.into()]);
    let name = coord::BackendUri::parse(&args.backend)?.scheme().to_owned();
    eprintln!(
        "measuring coord on {} ({} run; every run is bounded in events and time)",
        args.backend,
        if args.quick { "quick" } else { "full" }
    );
    let figures = coord_half(&args.backend, &options).await?;
    let report = BackendReport::new(name, None, figures);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", markdown(&[report]));
    }
    Ok(())
}

/// The helper process of the memory figure: `bench-stalled-node URI NODE NAMESPACE`.
pub(crate) async fn stalled(args: Vec<String>) -> Result<()> {
    let [uri, node, namespace] = args.as_slice() else {
        bail!("{STALLED_NODE} takes URI NODE_ID NAMESPACE");
    };
    Ok(stalled_node(uri, node, namespace).await?)
}
