//! `coordctl node`: one node from a config file, logging what it sees.

use anyhow::Result;
use futures::{Stream, StreamExt};

use crate::ConfigArgs;
use crate::observer;
use crate::show::Printer;

/// Runs the node until Ctrl-C (or SIGTERM), then shuts it down gracefully:
/// queued events are flushed and a leave is sent.
pub(crate) async fn run(args: ConfigArgs) -> Result<()> {
    let config = observer::load(&args.config)?;
    let coordinator = observer::join(&config).await?;
    let printer = Printer { json: args.json };
    if !args.json {
        println!(
            "node {} (incarnation {}) running on {}; Ctrl-C to leave",
            coordinator.node_id(),
            coordinator.incarnation(),
            coordinator.backend()
        );
    }
    let members = coordinator.membership();
    let events = coordinator.subscribe();
    print_until_stopped(
        members,
        |change| printer.member(change),
        events,
        |item| printer.incoming(item),
    )
    .await?;
    coordinator.shutdown().await?;
    if !args.json {
        println!("node {} left the cluster", coordinator.node_id());
    }
    Ok(())
}

/// Prints what two streams yield, with `first` and `second`, until Ctrl-C
/// or SIGTERM (or both streams end).
pub(crate) async fn print_until_stopped<A, B>(
    mut one: impl Stream<Item = A> + Unpin,
    first: impl Fn(&A),
    mut other: impl Stream<Item = B> + Unpin,
    second: impl Fn(&B),
) -> Result<()> {
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            signal = &mut stop => return signal,
            Some(item) = one.next() => first(&item),
            Some(item) = other.next() => second(&item),
            else => return Ok(()),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM (what a service manager sends).
pub(crate) async fn stop_signal() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
