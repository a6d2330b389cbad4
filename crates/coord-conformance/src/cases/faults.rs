//! E. Faults: server restarts, cut connections, silent subscriptions.

use std::time::Duration;

use coord_core::{HealthStatus, Incoming, LagReason, MemberState};

use crate::fixture::{Features, Fixture};
use crate::harness::{CaseResult, Cluster, count, ensure, faults, sequence_problems, settings, tagged, wait_for};

/// E19. The server is stopped and restarted twice during 10,000 broadcasts:
/// nodes reconnect and resubscribe by themselves, `Lagged` marks the outage,
/// delivery resumes, no panic, no stuck task.
pub async fn e19_server_restart(fx: &dyn Fixture) -> CaseResult {
    let faults = faults(fx, "server_control", |f: &Features| f.server_control)?;
    let cluster = Cluster::start(fx, 2, |_| {}).await?;
    let [sender, receiver] = &cluster.peers[..] else {
        unreachable!("two peers")
    };
    const PHASE: u64 = 2500;
    let mut next = 0u64;
    let mut outages = Vec::new();
    for _ in 0..2 {
        for _ in 0..PHASE {
            sender.node.broadcast(tagged(next, 8)).await?;
            next += 1;
        }
        faults.server_down().await?;
        for _ in 0..PHASE / 5 {
            sender.node.try_broadcast(tagged(next, 8)).ok();
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        faults.server_up().await?;
        let healed = wait_for("both nodes healthy after the restart", Duration::from_secs(60), || {
            cluster
                .peers
                .iter()
                .all(|p| p.node.health().status == HealthStatus::Healthy)
        })
        .await?;
        outages.push(healed.as_millis());
    }
    let last_start = next;
    let last = 10_000 - next;
    for _ in 0..last {
        sender.node.broadcast(tagged(next, 8)).await?;
        next += 1;
    }
    wait_for("the events sent after the restarts", Duration::from_secs(30), || {
        receiver.ids_from(None).last().is_some_and(|&id| id == next - 1)
    })
    .await?;
    let tail: Vec<u64> = receiver
        .ids_from(None)
        .into_iter()
        .filter(|&id| id >= last_start)
        .map(|id| id - last_start)
        .collect();
    if let Some(problem) = sequence_problems(&tail, last) {
        return Err(crate::harness::Verdict::Fail(format!("after the restarts: {problem}")));
    }
    let lags = receiver.received.with(|items| {
        items
            .iter()
            .filter(|i| matches!(i, Incoming::Lagged(l) if l.reason == LagReason::Transport))
            .count()
    });
    ensure!(lags >= 2, "{lags} transport Lagged markers for 2 outages");
    let got = receiver.ids_from(None).len();
    cluster.shutdown().await;
    Ok(format!(
        "{got}/{next} delivered, {lags} Lagged, healthy again after {outages:?} ms"
    ))
}

/// E20. A connection is cut for longer than the failure timeout: peers mark
/// the node failed, then alive again once it heals, with one event each way.
pub async fn e20_cut(fx: &dyn Fixture) -> CaseResult {
    let faults = faults(fx, "connection_faults", |f: &Features| f.connection_faults)?;
    let cluster = Cluster::start(fx, 3, |_| {}).await?;
    let cut = &cluster.peers[2];
    let others = &cluster.peers[..2];
    faults.cut(cut.conn);
    let bound = settings().expected_detection() * 3;
    // Failure is detected on both sides of the cut, each by its own
    // detector: heal only once both sides have seen it.
    let failed = wait_for("both sides of the cut to mark the other failed", bound, || {
        others
            .iter()
            .all(|p| p.sees(cut.id(), MemberState::Failed) && cut.sees(p.id(), MemberState::Failed))
    })
    .await;
    faults.heal();
    let failed = failed?;
    // The view changes just before the event reaches the subscriber: wait
    // for both, then check that each event came once.
    let recovered = |observer: &crate::harness::Peer, node: &coord_core::NodeId| {
        observer.sees(node, MemberState::Alive) && count(&observer.events_about(node), "recovered") >= 1
    };
    let healed = wait_for("the others to see it alive again", Duration::from_secs(10), || {
        others.iter().all(|p| recovered(p, cut.id()))
    })
    .await?;
    wait_for(
        "the cut node to see the others alive again",
        Duration::from_secs(10),
        || others.iter().all(|p| recovered(cut, p.id())),
    )
    .await?;
    for observer in others {
        let events = observer.events_about(cut.id());
        let (f, r) = (count(&events, "failed"), count(&events, "recovered"));
        ensure!(
            f == 1 && r == 1,
            "{} saw failed ×{f}, recovered ×{r} for the cut node: {events:?}",
            observer.id()
        );
    }
    for peer in others {
        let events = cut.events_about(peer.id());
        let (f, r) = (count(&events, "failed"), count(&events, "recovered"));
        ensure!(
            f == 1 && r == 1,
            "the cut node saw failed ×{f}, recovered ×{r} for {}: {events:?}",
            peer.id()
        );
    }
    cluster.shutdown().await;
    Ok(format!(
        "failed after {} ms, alive {} ms after healing",
        failed.as_millis(),
        healed.as_millis()
    ))
}

/// E21. A "silent" subscription (connected, delivering nothing) is detected
/// by the health probe and healed.
pub async fn e21_silent_subscription(fx: &dyn Fixture) -> CaseResult {
    let faults = faults(fx, "silent_subscriptions", |f: &Features| f.silent_subscriptions)?;
    let cluster = Cluster::start(fx, 2, |_| {}).await?;
    let [sender, silent] = &cluster.peers[..] else {
        unreachable!("two peers")
    };
    faults.silence(silent.conn);
    let healed = wait_for(
        "the engine to re-make the silent subscriptions",
        Duration::from_secs(30),
        || silent.node.stats().resubscribes >= 1,
    )
    .await?;
    // The counter moves just before the marker is handed to the subscriber
    // streams, and the peer's collector reads them a moment later.
    wait_for("a Lagged marking the resubscription", Duration::from_secs(5), || {
        silent.received.with(|items| {
            items
                .iter()
                .any(|i| matches!(i, Incoming::Lagged(l) if l.reason == LagReason::Resubscribed))
        })
    })
    .await?;
    sender.node.broadcast(tagged(0, 8)).await?;
    wait_for("events through the new subscriptions", Duration::from_secs(10), || {
        silent.ids_from(None).contains(&0)
    })
    .await?;
    wait_for("health Healthy again", Duration::from_secs(10), || {
        silent.node.health().status == HealthStatus::Healthy
    })
    .await?;
    cluster.shutdown().await;
    Ok(format!("silence detected and healed in {} ms", healed.as_millis()))
}
