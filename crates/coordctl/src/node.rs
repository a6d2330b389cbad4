//! `coordctl node`: one node from a config file, logging what it sees.

use anyhow::Result;
use futures::StreamExt;

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
    let mut members = coordinator.membership();
    let mut events = coordinator.subscribe();
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            signal = &mut stop => {
                signal?;
                break;
            }
            Some(change) = members.next() => printer.member(&change),
            Some(item) = events.next() => printer.incoming(&item),
        }
    }
    coordinator.shutdown().await?;
    if !args.json {
        println!("node {} left the cluster", coordinator.node_id());
    }
    Ok(())
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
