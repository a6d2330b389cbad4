//! Three nodes of one cluster on the in-memory backend: they see each other
//! join, exchange a broadcast and a directed send, and one leaves gracefully.
//!
//! ```sh
//! cargo run -p coord-facade --example three_nodes
//! ```
//!
//! Each node prints what it sees as `[node] …`. The program exits by itself
//! within a few seconds (it fails if an expected step takes longer than 5 s).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use coord::{Coordinator, DataTypes, Event, Incoming, MemberEvent, NodeId, Profile};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Longest any step may take before the example gives up.
const STEP_DEADLINE: Duration = Duration::from_secs(5);

/// Something one node saw.
#[derive(Debug)]
enum Seen {
    Member(MemberEvent),
    Item(Incoming),
}

/// Starts a node of the `memory://three-nodes` cluster, and a task that
/// reports everything it sees on `report`, prefixed with its name.
async fn start(name: &str, report: mpsc::UnboundedSender<(NodeId, Seen)>) -> coord::Result<Coordinator> {
    let node = Coordinator::builder()
        .node_id(name)
        .namespace("demo")
        .secret(coord::Secret::new("demo-cluster-secret-32-bytes-ok!")?)
        .profile(Profile::Fast)
        .roles(["imap", "smtp"])
        .version(env!("CARGO_PKG_VERSION"))
        .uri("memory://three-nodes")
        .start()
        .await?;
    let me = node.node_id().clone();
    let mut members = node.membership();
    let mut inbox = node.subscribe();
    // Both streams end when the node shuts down, and so does this task.
    tokio::spawn(async move {
        let (mut members_open, mut inbox_open) = (true, true);
        while members_open || inbox_open {
            let seen = tokio::select! {
                change = members.next(), if members_open => match change {
                    Some(change) => Seen::Member(change),
                    None => { members_open = false; continue }
                },
                item = inbox.next(), if inbox_open => match item {
                    Some(item) => Seen::Item(item),
                    None => { inbox_open = false; continue }
                },
            };
            if report.send((me.clone(), seen)).is_err() {
                return;
            }
        }
    });
    Ok(node)
}

/// Prints reports until `done` says the awaited step is complete.
async fn until(
    reports: &mut mpsc::UnboundedReceiver<(NodeId, Seen)>,
    step: &str,
    mut done: impl FnMut(&NodeId, &Seen) -> bool,
) {
    let waited = timeout(STEP_DEADLINE, async {
        while let Some((node, seen)) = reports.recv().await {
            match &seen {
                Seen::Member(MemberEvent::Joined { node: peer, meta, .. }) => {
                    println!(
                        "[{node}] {peer} joined (roles {:?}, version {})",
                        meta.roles, meta.version
                    )
                }
                Seen::Member(change) => println!("[{node}] membership: {change:?}"),
                Seen::Item(Incoming::Event(delivery)) => println!(
                    "[{node}] {} from {}: {:?}",
                    if delivery.directed {
                        "direct message"
                    } else {
                        "broadcast"
                    },
                    delivery.from,
                    delivery.event
                ),
                Seen::Item(Incoming::Lagged(lagged)) => {
                    println!("[{node}] events may be lost: {lagged:?}")
                }
            }
            if done(&node, &seen) {
                return;
            }
        }
    })
    .await;
    if waited.is_err() {
        eprintln!("step `{step}` took longer than {STEP_DEADLINE:?}");
        std::process::exit(1);
    }
}

fn received(seen: &Seen, event: &Event) -> bool {
    matches!(seen, Seen::Item(Incoming::Event(d)) if d.event == *event)
}

#[tokio::main]
async fn main() -> coord::Result<()> {
    let began = Instant::now();
    let (report, mut reports) = mpsc::unbounded_channel();
    let mx1 = start("mx1", report.clone()).await?;
    let mx2 = start("mx2", report.clone()).await?;
    let mx3 = start("mx3", report).await?;
    println!("started mx1, mx2, mx3 on memory://three-nodes");

    // Everyone sees the two others join: 6 joins in all.
    let mut joins = BTreeSet::new();
    until(&mut reports, "joins", |node, seen| {
        if let Seen::Member(MemberEvent::Joined { node: peer, .. }) = seen {
            joins.insert((node.clone(), peer.clone()));
        }
        joins.len() == 6
    })
    .await;

    println!("\nmx1 broadcasts a mailbox change of account 42");
    let change = Event::state_change(42, 1001, DataTypes::EMAIL | DataTypes::MAILBOX);
    mx1.broadcast(change.clone()).await?;
    let mut got = 0;
    until(&mut reports, "broadcast", |_, seen| {
        got += usize::from(received(seen, &change));
        got == 2
    })
    .await;

    println!("\nmx2 sends a push notification route to mx3 alone");
    let push = Event::custom(1, "push: account 42, subscription 7");
    mx2.send_to(mx3.node_id(), push.clone()).await?;
    until(&mut reports, "directed send", |_, seen| received(seen, &push)).await;

    println!("\nmx3 blocks an IP address for the whole cluster");
    let block = Event::IpBlocked {
        ip: "192.0.2.66".parse().expect("a valid IP address"),
        expires_at_ms: None,
    };
    mx3.broadcast(block.clone()).await?;
    let mut got = 0;
    until(&mut reports, "second broadcast", |_, seen| {
        got += usize::from(received(seen, &block));
        got == 2
    })
    .await;

    println!("\nmx3 shuts down gracefully");
    mx3.shutdown().await?;
    let mut left = 0;
    until(&mut reports, "leave", |_, seen| {
        left += usize::from(matches!(seen, Seen::Member(MemberEvent::Left { .. })));
        left == 2
    })
    .await;
    println!(
        "mx1 now sees: {:?}",
        mx1.members().iter().map(|m| (&m.node, m.state)).collect::<Vec<_>>()
    );

    let stats = mx1.stats();
    println!(
        "mx1 sent {} events in {} frames, {} heartbeats; health {:?}",
        stats.events_sent,
        stats.frames_sent,
        stats.heartbeats_sent,
        mx1.health().status
    );
    mx1.shutdown().await?;
    mx2.shutdown().await?;
    println!("done in {:?}", began.elapsed());
    Ok(())
}
