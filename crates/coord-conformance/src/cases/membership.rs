//! F. Membership: join, leave, crash, pauses and loss, restarts, conflicts, exactly-once events.

use std::time::Duration;

use crate::fixture::{Features, Fixture};
use crate::harness::{CaseResult, Cluster, Log, Peer, about, config, count, ensure, faults, kind, settings, wait_for};
use coord_core::{MemberEvent, MemberState, NodeId};

/// F22. A joining node is visible on every node within two heartbeats.
pub async fn f22_join(fx: &dyn Fixture) -> CaseResult {
    let mut cluster = Cluster::start(fx, 3, |_| {}).await?;
    let joiner = Peer::start(fx, config(&cluster.namespace, "joiner")).await?;
    let heartbeat = settings().heartbeat_interval;
    let bound = heartbeat * 2 * 5;
    let took = wait_for("every node to see the joiner and the joiner every node", bound, || {
        cluster
            .peers
            .iter()
            .all(|p| p.sees(joiner.id(), MemberState::Alive) && joiner.sees(p.id(), MemberState::Alive))
    })
    .await?;
    for peer in &cluster.peers {
        let joined = count(&peer.events_about(joiner.id()), "joined");
        ensure!(joined == 1, "{} emitted joined ×{joined} for the joiner", peer.id());
    }
    cluster.peers.push(joiner);
    cluster.shutdown().await;
    Ok(format!(
        "visible everywhere after {} ms (two heartbeats = {} ms)",
        took.as_millis(),
        (heartbeat * 2).as_millis()
    ))
}

/// F23. A graceful leave is seen within one heartbeat as `left`, not `failed`.
pub async fn f23_leave(fx: &dyn Fixture) -> CaseResult {
    let cluster = Cluster::start(fx, 3, |_| {}).await?;
    let leaver = &cluster.peers[2];
    let others = &cluster.peers[..2];
    leaver.node.shutdown().await?;
    let bound = settings().heartbeat_interval * 5;
    let took = wait_for("the others to see the node left", bound, || {
        others.iter().all(|p| p.sees(leaver.id(), MemberState::Left))
    })
    .await?;
    tokio::time::sleep(settings().expected_detection() * 2).await;
    for peer in others {
        let events = peer.events_about(leaver.id());
        ensure!(
            count(&events, "left") == 1 && count(&events, "failed") == 0 && count(&events, "suspect") == 0,
            "{} saw {:?}",
            peer.id(),
            events.iter().map(kind).collect::<Vec<_>>()
        );
    }
    cluster.shutdown().await;
    Ok(format!("left seen after {} ms, no failed", took.as_millis()))
}

/// F24. A crashed node (no leave) is reported failed within the configured bound.
pub async fn f24_crash(fx: &dyn Fixture) -> CaseResult {
    let cluster = Cluster::start(fx, 3, |_| {}).await?;
    let victim = &cluster.peers[2];
    let others = &cluster.peers[..2];
    let expected = settings().expected_detection();
    victim.node.abort().await;
    // The view turns failed just before the event reaches the subscriber:
    // wait for both, then check the event came once.
    let took = wait_for("the others to report the crashed node failed", expected * 3, || {
        others
            .iter()
            .all(|p| p.sees(victim.id(), MemberState::Failed) && count(&p.events_about(victim.id()), "failed") >= 1)
    })
    .await?;
    for peer in others {
        let events = peer.events_about(victim.id());
        ensure!(
            count(&events, "failed") == 1,
            "{} saw {:?}",
            peer.id(),
            events.iter().map(kind).collect::<Vec<_>>()
        );
        ensure!(count(&events, "left") == 0, "{} saw a crash as a leave", peer.id());
    }
    cluster.shutdown().await;
    Ok(format!(
        "failed after {} ms (detector's fastest verdict {} ms)",
        took.as_millis(),
        expected.as_millis()
    ))
}

/// F25. No false `failed` for a node that is alive but paused up to the
/// acceptable pause, and none under 20 % frame loss for 30 s.
pub async fn f25_no_false_alarms(fx: &dyn Fixture) -> CaseResult {
    let faults = faults(fx, "connection_faults and frame_loss", |f: &Features| {
        f.connection_faults && f.frame_loss
    })?;
    let cluster = Cluster::start(fx, 4, |_| {}).await?;
    // Let the detectors learn the regular interval first.
    tokio::time::sleep(settings().heartbeat_interval * 20).await;
    let paused = &cluster.peers[3];
    let pause = settings().acceptable_pause;
    faults.mute(paused.conn);
    tokio::time::sleep(pause).await;
    faults.heal();
    tokio::time::sleep(settings().expected_detection()).await;
    faults.drop_rate(0.2);
    tokio::time::sleep(Duration::from_secs(30)).await;
    faults.drop_rate(0.0);
    let mut alarms = Vec::new();
    for peer in &cluster.peers {
        for event in peer.members.items() {
            if matches!(event, MemberEvent::Failed { .. }) {
                alarms.push(format!("{} → {:?}", peer.id(), about(&event)));
            }
        }
    }
    ensure!(alarms.is_empty(), "false failed: {alarms:?}");
    let suspects: usize = cluster.peers.iter().map(|p| count(&p.members.items(), "suspect")).sum();
    cluster.shutdown().await;
    Ok(format!(
        "0 failed after a {} ms pause and 30 s at 20 % loss ({suspects} suspect)",
        pause.as_millis()
    ))
}

/// F26. A restarted node (new incarnation) is reported once as rejoined; no
/// ghosts, no flapping.
pub async fn f26_restart(fx: &dyn Fixture) -> CaseResult {
    let mut cluster = Cluster::start(fx, 3, |_| {}).await?;
    let victim = cluster.peers.remove(2);
    let id = victim.id().clone();
    let old = victim.node.incarnation();
    victim.node.abort().await;
    let restarted = Peer::start(fx, config(&cluster.namespace, id.as_str())).await?;
    let new = restarted.node.incarnation();
    ensure!(new > old, "the new incarnation {new} is not above the old {old}");
    wait_for("every node to see the new incarnation", Duration::from_secs(10), || {
        cluster.peers.iter().all(|p| {
            p.node
                .member(&id)
                .is_some_and(|m| m.incarnation == new && m.state == MemberState::Alive)
        })
    })
    .await?;
    // Long enough for a ghost of the old incarnation to be declared failed.
    tokio::time::sleep(settings().expected_detection() * 2).await;
    for peer in &cluster.peers {
        let kinds: Vec<&str> = peer.events_about(&id).iter().map(kind).collect();
        // A backend with a presence signal (Zenoh liveliness) tells the
        // observers within milliseconds that the old process is gone, and fails it two
        // heartbeats later: when the new process takes longer to start, the
        // old one was rightly `suspect` (and `failed`) before the rejoin.
        // Nothing may follow the rejoin, and nothing may recover.
        let told_gone = peer.node.capabilities().presence
            && (kinds == ["joined", "suspect", "rejoined"] || kinds == ["joined", "suspect", "failed", "rejoined"]);
        ensure!(
            kinds == ["joined", "rejoined"] || told_gone,
            "{} saw {kinds:?} for the restarted node",
            peer.id()
        );
        let entries = peer.node.members().iter().filter(|m| m.node == id).count();
        ensure!(entries == 1, "{} lists the node {entries} times", peer.id());
        ensure!(
            peer.sees(&id, MemberState::Alive),
            "{} does not see the restarted node alive",
            peer.id()
        );
    }
    cluster.peers.push(restarted);
    cluster.shutdown().await;
    Ok(format!("one rejoined, incarnation {old} → {new}"))
}

/// F27. Two live nodes with the same node id are reported as a conflict.
pub async fn f27_conflict(fx: &dyn Fixture) -> CaseResult {
    let mut cluster = Cluster::start(fx, 2, |_| {}).await?;
    let first = Peer::start(fx, config(&cluster.namespace, "twin")).await?;
    let second = Peer::start(fx, config(&cluster.namespace, "twin")).await?;
    let twin = NodeId::new("twin").expect("valid id");
    let conflicts = |p: &Peer| count(&p.events_about(&twin), "conflict");
    wait_for(
        "every node and both twins to report the conflict",
        Duration::from_secs(10),
        || cluster.peers.iter().all(|p| conflicts(p) >= 1) && conflicts(&first) >= 1 && conflicts(&second) >= 1,
    )
    .await?;
    tokio::time::sleep(settings().heartbeat_interval * 10).await;
    for peer in cluster.peers.iter().chain([&first, &second]) {
        let n = conflicts(peer);
        ensure!(n == 1, "{} reported the conflict {n} times", peer.id());
    }
    cluster.peers.push(first);
    cluster.peers.push(second);
    cluster.shutdown().await;
    Ok("conflict reported once by each observer and by both twins".into())
}

/// F28. Each membership change is emitted exactly once per observer.
pub async fn f28_exactly_once(fx: &dyn Fixture) -> CaseResult {
    let mut cluster = Cluster::start(fx, 2, |_| {}).await?;
    let second_logs: Vec<Log<MemberEvent>> = cluster
        .peers
        .iter()
        .map(|p| Log::collect(p.node.member_events()))
        .collect();
    let joiner = Peer::start(fx, config(&cluster.namespace, "joiner")).await?;
    let crasher = Peer::start(fx, config(&cluster.namespace, "crasher")).await?;
    let all_see = |id: &NodeId, state: MemberState| cluster.peers.iter().all(|p| p.sees(id, state));
    wait_for("the joiners to be seen", Duration::from_secs(10), || {
        all_see(joiner.id(), MemberState::Alive) && all_see(crasher.id(), MemberState::Alive)
    })
    .await?;
    joiner.node.shutdown().await?;
    crasher.node.abort().await;
    wait_for(
        "the leave and the crash to be seen",
        settings().expected_detection() * 3,
        || all_see(joiner.id(), MemberState::Left) && all_see(crasher.id(), MemberState::Failed),
    )
    .await?;
    let restarted = Peer::start(fx, config(&cluster.namespace, "crasher")).await?;
    wait_for("the restart to be seen", Duration::from_secs(10), || {
        all_see(restarted.id(), MemberState::Alive)
    })
    .await?;
    tokio::time::sleep(settings().heartbeat_interval * 10).await;
    for (peer, second) in cluster.peers.iter().zip(&second_logs) {
        let watched = |events: Vec<MemberEvent>| -> Vec<MemberEvent> {
            events
                .into_iter()
                .filter(|e| about(e) == Some(joiner.id()) || about(e) == Some(crasher.id()))
                .collect()
        };
        let first = watched(peer.members.items());
        ensure!(
            first == watched(second.items()),
            "two subscribers of {} saw different sequences",
            peer.id()
        );
        for node in [joiner.id(), crasher.id()] {
            let kinds: Vec<&str> = first.iter().filter(|e| about(e) == Some(node)).map(kind).collect();
            let want: &[&str] = if node == joiner.id() {
                &["joined", "left"]
            } else {
                &["joined", "suspect", "failed", "rejoined"]
            };
            ensure!(
                kinds == want,
                "{} saw {kinds:?} for {node}, expected {want:?}",
                peer.id()
            );
        }
    }
    cluster.peers.push(restarted);
    cluster.shutdown().await;
    Ok("join, leave, crash and restart each emitted once per observer and subscriber".into())
}
