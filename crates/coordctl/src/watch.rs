//! `coordctl watch`: every frame an observer receives, with its verdict.

use anyhow::Result;

use crate::ConfigArgs;
use crate::observer;
use crate::show::Printer;

/// Joins as an observer and prints every frame report and membership
/// change until Ctrl-C, then leaves.
pub(crate) async fn run(args: ConfigArgs) -> Result<()> {
    let config = observer::as_observer(observer::load(&args.config)?, "watch")?;
    let coordinator = observer::join(&config).await?;
    let printer = Printer { json: args.json };
    let frames = coordinator.frames();
    let members = coordinator.membership();
    if !args.json {
        println!(
            "watching as {} on {}: frames to every node and to this observer; Ctrl-C to stop",
            coordinator.node_id(),
            coordinator.backend()
        );
    }
    crate::node::print_until_stopped(
        frames,
        |report| printer.frame(report),
        members,
        |change| printer.member(change),
    )
    .await?;
    coordinator.shutdown().await?;
    Ok(())
}
