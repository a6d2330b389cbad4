//! B. Delivery: completeness, order, isolation, directed sends, fan-out, batching.

use std::time::Duration;

use coord_core::{Event, Incoming, NodeId};

use crate::fixture::Fixture;
use crate::harness::{CaseResult, Cluster, ensure, payload, sequence_problems, tagged, wait_for};

/// Bytes a frame needs besides one event's body (generous).
const ENVELOPE_ROOM: usize = 512;

/// B5. Ready barrier, then 1,000 broadcasts: every other node gets all of
/// them, payloads byte-identical (empty, small, and near the configured max size).
pub async fn b5_broadcast(fx: &dyn Fixture) -> CaseResult {
    let cluster = Cluster::start(fx, 3, |_| {}).await?;
    let sender = &cluster.peers[0];
    let near_max = sender.node.capabilities().max_payload.saturating_sub(ENVELOPE_ROOM);
    let size = |id: u64| match id % 100 {
        0 => 0,
        50 => near_max,
        _ => (id % 7 * 20) as usize,
    };
    const N: u64 = 1000;
    for id in 0..N {
        sender.node.broadcast(tagged(id, size(id))).await?;
    }
    for receiver in &cluster.peers[1..] {
        wait_for("every broadcast at every other node", Duration::from_secs(30), || {
            receiver.ids_from(None).len() as u64 >= N
        })
        .await
        .map_err(|_| {
            crate::harness::Verdict::Fail(format!(
                "{}: {}",
                receiver.id(),
                sequence_problems(&receiver.ids_from(None), N).unwrap_or_default()
            ))
        })?;
        if let Some(problem) = sequence_problems(&receiver.ids_from(None), N) {
            return Err(crate::harness::Verdict::Fail(format!("{}: {problem}", receiver.id())));
        }
        let corrupt: Vec<u64> = receiver.received.with(|items| {
            items
                .iter()
                .filter_map(|item| match item {
                    Incoming::Event(d) => match &d.event {
                        Event::Custom { kind, payload: p }
                            if *p != payload(u64::from(*kind), size(u64::from(*kind))) =>
                        {
                            Some(u64::from(*kind))
                        }
                        _ => None,
                    },
                    Incoming::Lagged(_) => None,
                })
                .collect()
        });
        ensure!(
            corrupt.is_empty(),
            "{}: payloads differ for ids {corrupt:?}",
            receiver.id()
        );
    }
    cluster.shutdown().await;
    Ok(format!("{N} events × 2 receivers, sizes 0 to {near_max} bytes"))
}

/// B6. Per-sender order holds for 10,000 events over 16 interleaved senders.
pub async fn b6_order(fx: &dyn Fixture) -> CaseResult {
    const SENDERS: usize = 16;
    const PER_SENDER: u64 = 625;
    let cluster = Cluster::start(fx, SENDERS + 1, |_| {}).await?;
    let receiver = &cluster.peers[SENDERS];
    let sends = cluster.peers[..SENDERS].iter().map(|peer| async move {
        for id in 0..PER_SENDER {
            peer.node.broadcast(tagged(id, 8)).await?;
            if id % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        Ok::<(), coord_core::Error>(())
    });
    for result in futures::future::join_all(sends).await {
        result?;
    }
    let total = SENDERS as u64 * PER_SENDER;
    wait_for("all 10,000 events", Duration::from_secs(60), || {
        receiver.ids_from(None).len() as u64 >= total
    })
    .await
    .ok();
    for sender in &cluster.peers[..SENDERS] {
        if let Some(problem) = sequence_problems(&receiver.ids_from(Some(sender.id())), PER_SENDER) {
            return Err(crate::harness::Verdict::Fail(format!(
                "from {}: {problem}",
                sender.id()
            )));
        }
    }
    cluster.shutdown().await;
    Ok(format!("{total} events from {SENDERS} senders in order"))
}

/// B7. Namespace isolation: two clusters on one server see none of each other's frames.
pub async fn b7_isolation(fx: &dyn Fixture) -> CaseResult {
    let x = Cluster::start(fx, 2, |_| {}).await?;
    let y = Cluster::start(fx, 2, |_| {}).await?;
    ensure!(x.namespace != y.namespace, "the suite made the same namespace twice");
    for id in 0..100 {
        x.peers[0].node.broadcast(tagged(id, 8)).await?;
    }
    y.peers[0].node.broadcast(tagged(1000, 8)).await?;
    wait_for("cluster x's events inside x", Duration::from_secs(10), || {
        x.peers[1].ids_from(None).len() >= 100
    })
    .await?;
    wait_for("cluster y's marker inside y", Duration::from_secs(10), || {
        !y.peers[1].ids_from(None).is_empty()
    })
    .await?;
    let leaked_y = y.peers[1].ids_from(None);
    ensure!(
        leaked_y == vec![1000],
        "cluster y received {leaked_y:?}, expected only its own marker"
    );
    let x_members = x.peers[0].node.members().len();
    ensure!(
        x_members == 1,
        "a node of cluster x knows {x_members} members, expected 1 (its peer only)"
    );
    let y_members = y.peers[0].node.members().len();
    ensure!(
        y_members == 1,
        "a node of cluster y knows {y_members} members, expected 1 (its peer only)"
    );
    x.shutdown().await;
    y.shutdown().await;
    Ok("no event or heartbeat crossed namespaces".into())
}

/// B8. Own broadcasts are not delivered back to the sender.
pub async fn b8_no_echo(fx: &dyn Fixture) -> CaseResult {
    let cluster = Cluster::start(fx, 2, |_| {}).await?;
    let [a, b] = &cluster.peers[..] else {
        unreachable!("two peers")
    };
    for id in 0..10 {
        a.node.broadcast(tagged(id, 8)).await?;
    }
    wait_for("the other node to get all 10", Duration::from_secs(10), || {
        b.ids_from(None).len() >= 10
    })
    .await?;
    b.node.broadcast(tagged(99, 8)).await?;
    wait_for(
        "the sender to get the other node's marker",
        Duration::from_secs(10),
        || a.ids_from(None).contains(&99),
    )
    .await?;
    let own = a.ids_from(Some(a.id()));
    ensure!(own.is_empty(), "the sender received its own events {own:?}");
    let all = a.ids_from(None);
    ensure!(all == vec![99], "the sender received {all:?}, expected only the marker");
    cluster.shutdown().await;
    Ok("no echo".into())
}

/// B9. Directed send reaches exactly its target; to an unknown node it is reported.
pub async fn b9_directed(fx: &dyn Fixture) -> CaseResult {
    let cluster = Cluster::start(fx, 3, |_| {}).await?;
    let [a, b, c] = &cluster.peers[..] else {
        unreachable!("three peers")
    };
    const N: u64 = 50;
    for id in 0..N {
        a.node.send_to(b.id(), tagged(id, 8)).await?;
    }
    wait_for(
        "the target to get every directed event",
        Duration::from_secs(10),
        || b.ids_from(None).len() as u64 >= N,
    )
    .await?;
    let directed = b
        .received
        .with(|items| items.iter().all(|i| matches!(i, Incoming::Event(d) if d.directed)));
    ensure!(directed, "the target got events not marked directed");
    ensure!(
        b.ids_from(None) == (0..N).collect::<Vec<_>>(),
        "directed events lost or reordered"
    );
    a.node.broadcast(tagged(1000, 8)).await?;
    wait_for(
        "the bystander to get a later broadcast",
        Duration::from_secs(10),
        || c.ids_from(None).contains(&1000),
    )
    .await?;
    let leaked = c.ids_from(None);
    ensure!(leaked == vec![1000], "the bystander received {leaked:?}");
    let ghost = NodeId::new("ghost").expect("valid id");
    let error = a.node.send_to(&ghost, tagged(0, 0)).await;
    ensure!(
        error
            .as_ref()
            .is_err_and(|e| e.kind() == coord_core::ErrorKind::UnknownNode),
        "send_to an unknown node returned {error:?}, not UnknownNode"
    );
    cluster.shutdown().await;
    Ok(format!(
        "{N} directed events reached only their target; unknown node reported"
    ))
}

/// B10. Fan-out: 3 senders × 5,000 events to 5 receivers, nothing lost on loopback.
pub async fn b10_fan_out(fx: &dyn Fixture) -> CaseResult {
    const SENDERS: usize = 3;
    const PER_SENDER: u64 = 5000;
    let cluster = Cluster::start(fx, SENDERS + 5, |_| {}).await?;
    let sends = cluster.peers[..SENDERS].iter().map(|peer| async move {
        for id in 0..PER_SENDER {
            peer.node.broadcast(tagged(id, 16)).await?;
        }
        Ok::<(), coord_core::Error>(())
    });
    for result in futures::future::join_all(sends).await {
        result?;
    }
    let total = SENDERS as u64 * PER_SENDER;
    for receiver in &cluster.peers[SENDERS..] {
        wait_for("every event at every receiver", Duration::from_secs(60), || {
            receiver.ids_from(None).len() as u64 >= total
        })
        .await
        .ok();
        for sender in &cluster.peers[..SENDERS] {
            if let Some(problem) = sequence_problems(&receiver.ids_from(Some(sender.id())), PER_SENDER) {
                return Err(crate::harness::Verdict::Fail(format!(
                    "{} from {}: {problem}",
                    receiver.id(),
                    sender.id()
                )));
            }
        }
    }
    cluster.shutdown().await;
    Ok(format!("{total} events × 5 receivers"))
}

/// B11. Batching: 100,000 small events from one node arrive in far fewer
/// frames, within the linger bound.
pub async fn b11_batching(fx: &dyn Fixture) -> CaseResult {
    const N: u64 = 100_000;
    // The receiving test subscriber may fall behind a burst this size; its
    // queue holds the whole burst so that only the transport could lose events.
    let cluster = Cluster::start(fx, 2, |c| c.inbox.subscriber_capacity = N as usize).await?;
    let [a, b] = &cluster.peers[..] else {
        unreachable!("two peers")
    };
    let before = a.node.stats();
    let start = tokio::time::Instant::now();
    for id in 0..N {
        a.node.broadcast(tagged(id, 4)).await?;
    }
    wait_for("all 100,000 events", Duration::from_secs(60), || {
        b.ids_from(None).len() as u64 >= N
    })
    .await
    .ok();
    let took = start.elapsed();
    if let Some(problem) = sequence_problems(&b.ids_from(None), N) {
        let dropped = b.node.stats().dropped;
        return Err(crate::harness::Verdict::Fail(format!(
            "{problem}; receiver drop counters {dropped:?}"
        )));
    }
    let after = a.node.stats();
    let control = after.heartbeats_sent - before.heartbeats_sent;
    let frames = (after.frames_sent - before.frames_sent).saturating_sub(control);
    ensure!(frames > 0, "no event frame counted as sent");
    ensure!(
        frames * 10 <= N,
        "{N} events went out in {frames} frames: batching is not working"
    );
    cluster.shutdown().await;
    Ok(format!(
        "{N} events in ~{frames} frames ({:.0} events/frame), {} ms end to end",
        N as f64 / frames as f64,
        took.as_millis()
    ))
}
