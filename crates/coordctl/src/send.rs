//! `coordctl send`: inject one event into a running cluster.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use coord::{MemberState, NodeId};

use crate::event_arg::EventArg;
use crate::observer;

/// The options of `coordctl send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The TOML config file of the cluster.
    #[arg(long, short)]
    config: std::path::PathBuf,
    /// Send to this node alone instead of broadcasting.
    #[arg(long)]
    to: Option<String>,
    /// How long to wait for `--to`'s node to be heard.
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
    let coordinator = observer::join(&config).await?;
    let result = async {
        match &args.to {
            None => {
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
