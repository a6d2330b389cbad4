//! `coordctl send`: inject one event into a running cluster.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use coord::{MemberState, NodeId};

use crate::event_arg::EventArg;
use crate::observer;

/// The shortest quiet time before a broadcast: long enough for a fresh
/// observer's links to every peer to come up on a busy host.
const SETTLE_AT_LEAST: Duration = Duration::from_secs(1);

/// The options of `coordctl send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The TOML config file of the cluster.
    #[arg(long, short)]
    config: std::path::PathBuf,
    /// Send to this node alone instead of broadcasting.
    #[arg(long)]
    to: Option<String>,
    /// How long to wait for the cluster (or `--to`'s node) to be heard.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    wait: Duration,
    /// The event.
    #[command(subcommand)]
    event: EventArg,
}

/// Joins as an observer, sends the event, and leaves once it is flushed.
pub(crate) async fn run(args: SendArgs) -> Result<()> {
    let event = args.event.to_event()?;
    let config = observer::as_observer(observer::load(&args.config)?, "send")?;
    let heartbeat = config
        .coordinator
        .membership
        .clone()
        .unwrap_or_default()
        .settings()
        .heartbeat_interval;
    let coordinator = observer::join(&config).await?;
    let result = async {
        match &args.to {
            None => {
                settle(&coordinator, (heartbeat * 2).max(SETTLE_AT_LEAST), args.wait).await?;
                coordinator.broadcast(event.clone()).await?;
                println!("broadcast: {}", crate::show::describe(&event));
            }
            Some(to) => {
                let to = NodeId::new(to).context("--to is not a valid node id")?;
                wait_for(&coordinator, &to, args.wait).await?;
                coordinator.send_to(&to, event.clone()).await?;
                println!("sent to {to}: {}", crate::show::describe(&event));
            }
        }
        anyhow::Ok(())
    }
    .await;
    // Flushes the event before the leave.
    coordinator.shutdown().await?;
    result
}

/// Waits until the live nodes heard stay the same for `quiet` (at least two
/// heartbeat intervals: every live node is heard in that time), for at most `wait`: a broadcast sent
/// at once would miss nodes a fresh observer is not connected to yet (Zenoh
/// peers reach each other only once gossip has told them where).
async fn settle(coordinator: &coord::Coordinator, quiet: Duration, wait: Duration) -> Result<()> {
    let alive = || -> Vec<NodeId> {
        coordinator
            .members()
            .into_iter()
            .filter(|member| member.state == MemberState::Alive)
            .map(|member| member.node)
            .collect()
    };
    let deadline = tokio::time::Instant::now() + wait;
    let (mut seen, mut since) = (alive(), tokio::time::Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = tokio::time::Instant::now();
        let current = alive();
        if current != seen {
            (seen, since) = (current, now);
        } else if !seen.is_empty() && now - since >= quiet {
            return Ok(());
        }
        if now >= deadline {
            if seen.is_empty() {
                bail!(
                    "no node of the cluster was heard within {}: nothing would receive the event \
                     (is the cluster running with this config's backend and namespace?)",
                    humantime::format_duration(wait)
                );
            }
            return Ok(());
        }
    }
}

/// Waits until `node` is alive in the view (a fresh observer has heard
/// nobody yet), for at most `wait`.
async fn wait_for(coordinator: &coord::Coordinator, node: &NodeId, wait: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match coordinator.member(node).map(|member| member.state) {
            Some(MemberState::Alive) => return Ok(()),
            Some(state) if tokio::time::Instant::now() >= deadline => {
                bail!("{node} is {state:?}, not alive: it cannot be sent to")
            }
            None if tokio::time::Instant::now() >= deadline => {
                let heard: Vec<String> = coordinator
                    .members()
                    .into_iter()
                    .map(|member| member.node.as_str().to_owned())
                    .collect();
                bail!(
                    "no node `{node}` was heard within {}: the nodes heard are [{}]",
                    humantime::format_duration(wait),
                    heard.join(", ")
                )
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
