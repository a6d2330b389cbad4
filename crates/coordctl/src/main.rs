//! `coordctl`: the operator's command line for coord.
//!
//! - `demo`: a three-node cluster in this process, showing what coord does;
//! - `node`: one node from a TOML config, logging what it sees;
//! - `watch`: every frame an observer receives, with its verdict;
//! - `send`: one event, broadcast or to one node;
//! - `members`: the membership view as a table;
//! - `bench`: coord's throughput, latency and detection times on a server.

mod bench;
mod demo;
mod event_arg;
mod members;
mod node;
mod observer;
mod send;
mod show;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// coord's command line: try it, run a node, watch and poke a cluster.
#[derive(Debug, Parser)]
#[command(name = "coordctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Starts a three-node cluster in this process and shows events,
    /// a directed push and crash detection, with timings. Exits 0 only if
    /// every step happened.
    Demo(demo::DemoArgs),
    /// Runs one node from a config file, logging membership changes and
    /// received events; Ctrl-C shuts it down gracefully (a leave is sent).
    Node(ConfigArgs),
    /// Joins as an observer and prints every frame received, decoded and
    /// verified, and every rejected frame with the reason.
    Watch(ConfigArgs),
    /// Injects one event, broadcast or to one node (`--to`).
    Send(send::SendArgs),
    /// Prints the current membership view as a table.
    Members(members::MembersArgs),
    /// Measures coord on a reachable server: throughput, latency at 10 % and
    /// 50 % load, crash detection, control traffic and a stalled receiver's
    /// memory, for sizing a deployment.
    Bench(bench::BenchArgs),
    /// The helper process of `bench`'s memory figure.
    #[command(name = bench::STALLED_NODE, hide = true)]
    BenchStalledNode {
        /// URI, node id and namespace.
        args: Vec<String>,
    },
}

/// The options of every command that joins a configured cluster.
#[derive(Debug, Args)]
struct ConfigArgs {
    /// The TOML config file (a `[coordinator]` table, as the server reads).
    #[arg(long, short)]
    config: PathBuf,
    /// One JSON object per line instead of human-readable lines.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's own lines tell its story; the library's warnings (a peer
    // failed, Zenoh's scouting) would only repeat it.
    init_logging(if matches!(cli.command, Command::Demo(_)) {
        "error"
    } else {
        "warn"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the Tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Node(args) => node::run(args).await,
            Command::Watch(args) => watch::run(args).await,
            Command::Send(args) => send::run(args).await,
            Command::Members(args) => members::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::BenchStalledNode { args } => bench::stalled(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, leaving out a cause that its
/// parent's message already quotes (coord's errors include their source).
fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// Logs to stderr from `level` up unless `RUST_LOG` says otherwise, so that
/// stdout carries the command's own output.
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
