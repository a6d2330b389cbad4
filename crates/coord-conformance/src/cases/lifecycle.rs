//! A. Lifecycle: start, health, shutdown, repeated cycles.

use std::time::Duration;

use coord_core::{HealthStatus, Incoming, MemberState, Node};
use futures::StreamExt;
use tokio::time::Instant;

use crate::fixture::{Features, Fixture};
use crate::harness::{CaseResult, Cluster, Peer, Verdict, config, ensure, faults, fresh_namespace, tagged, wait_for};

/// A1. Start succeeds against a live server; a wrong address fails fast with
/// an error that names the backend, the address and the cause.
pub async fn a1_start(fx: &dyn Fixture) -> CaseResult {
    let namespace = fresh_namespace();
    let good = Peer::start(fx, config(&namespace, "n0")).await?;
    good.node.shutdown().await?;
    if !fx.features().unreachable_address {
        return Err(Verdict::NotApplicable(format!(
            "the {} harness declares no `unreachable_address` feature",
            fx.backend()
        )));
    }
    let start = Instant::now();
    let attempt = async {
        let transport = fx.connect_unreachable().await?;
        Node::start(config(&namespace, "n1"), transport).await
    };
    let result = tokio::time::timeout(Duration::from_secs(15), attempt).await;
    let took = start.elapsed();
    let error = match result {
        Err(_) => {
            return Err(Verdict::Fail(
                "start against an unreachable server hung for 15 s".into(),
            ));
        }
        Ok(Ok(node)) => {
            node.abort().await;
            return Err(Verdict::Fail("start against an unreachable server succeeded".into()));
        }
        Ok(Err(error)) => error,
    };
    let text = error.to_string();
    ensure!(
        text.contains(fx.backend()),
        "the error does not name the backend `{}`: {text}",
        fx.backend()
    );
    ensure!(
        error.kind() == coord_core::ErrorKind::Unavailable,
        "error kind is {:?}, not Unavailable: {text}",
        error.kind()
    );
    Ok(format!("failed in {} ms: {text}", took.as_millis()))
}

/// A2. Health is OK while frames flow and reports the outage while the server is down.
pub async fn a2_health(fx: &dyn Fixture) -> CaseResult {
    let faults = faults(fx, "server_control", |f: &Features| f.server_control)?;
    let cluster = Cluster::start(fx, 2, |_| {}).await?;
    let node = &cluster.peers[0].node;
    wait_for("health to be Healthy", Duration::from_secs(10), || {
        node.health().status == HealthStatus::Healthy
    })
    .await?;
    faults.server_down().await?;
    let down = wait_for("health to report the outage", Duration::from_secs(30), || {
        let health = node.health();
        health.status == HealthStatus::Down && !health.transport.connected && health.transport.detail.is_some()
    })
    .await;
    let detail = node.health().transport.detail.unwrap_or_default();
    faults.server_up().await?;
    let down = down?;
    let up = wait_for("health to be Healthy again", Duration::from_secs(30), || {
        node.health().status == HealthStatus::Healthy
    })
    .await?;
    cluster.shutdown().await;
    Ok(format!(
        "outage seen after {} ms (\"{detail}\"), healthy again after {} ms",
        down.as_millis(),
        up.as_millis()
    ))
}

/// A3. Shutdown is idempotent, flushes queued events, sends `leave`, and ends
/// every stream, also while a subscriber is blocked or never read.
pub async fn a3_shutdown(fx: &dyn Fixture) -> CaseResult {
    let cluster = Cluster::start(fx, 2, |c| {
        if c.node_id.as_str() == "n0" {
            c.inbox.subscriber_capacity = 16;
        }
    })
    .await?;
    let [leaving, staying] = &cluster.peers[..] else {
        unreachable!("two peers")
    };
    let never_read = leaving.node.subscribe();
    let never_read_members = leaving.node.member_events();
    const N: u64 = 200;
    for id in 0..N {
        leaving.node.broadcast(tagged(id, 16)).await?;
    }
    leaving.node.shutdown().await?;
    leaving.node.shutdown().await?;
    let after = leaving.node.broadcast(tagged(N, 0)).await;
    ensure!(
        after.as_ref().is_err_and(|e| e.kind() == coord_core::ErrorKind::Closed),
        "broadcast after shutdown returned {after:?}, not a Closed error"
    );
    wait_for("all queued events at the other node", Duration::from_secs(10), || {
        staying.ids_from(None).len() as u64 >= N
    })
    .await?;
    ensure!(
        staying.ids_from(None) == (0..N).collect::<Vec<_>>(),
        "events lost or reordered in the flush"
    );
    wait_for("`left` at the other node", Duration::from_secs(10), || {
        staying.sees(leaving.id(), MemberState::Left)
    })
    .await?;
    let ends = async {
        let items = never_read.collect::<Vec<Incoming>>().await;
        let members = never_read_members.collect::<Vec<_>>().await;
        (items.len(), members.len())
    };
    let (items, _) = tokio::time::timeout(Duration::from_secs(10), ends)
        .await
        .map_err(|_| Verdict::Fail("a never-read stream did not end after shutdown".into()))?;
    ensure!(
        items <= 16,
        "the never-read stream held {items} items, more than its capacity 16"
    );
    cluster.shutdown().await;
    Ok(format!("{N} queued events flushed, leave seen, streams ended"))
}

/// A4. Ten start/subscribe/shutdown cycles in a row leak nothing (tasks,
/// sockets), and a fresh node afterwards still gets everything.
pub async fn a4_cycles(fx: &dyn Fixture) -> CaseResult {
    let namespace = fresh_namespace();
    let observer = Peer::start(fx, config(&namespace, "observer")).await?;
    let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let fds = || std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let (tasks_before, fds_before) = (tasks(), fds());
    for cycle in 0..10 {
        let peer = Peer::start(fx, config(&namespace, "cycler")).await?;
        wait_for("the observer to see the cycling node", Duration::from_secs(10), || {
            observer.sees(peer.id(), MemberState::Alive)
        })
        .await
        .map_err(|v| match v {
            Verdict::Fail(why) => Verdict::Fail(format!("cycle {cycle}: {why}")),
            other => other,
        })?;
        peer.node.shutdown().await?;
    }
    wait_for(
        "tasks to return to their count before the cycles",
        Duration::from_secs(10),
        || tasks() <= tasks_before,
    )
    .await
    .map_err(|_| {
        Verdict::Fail(format!(
            "{} tasks alive after 10 cycles, {tasks_before} before",
            tasks()
        ))
    })?;
    wait_for(
        "open file descriptors to return to their count",
        Duration::from_secs(10),
        || fds() <= fds_before,
    )
    .await
    .map_err(|_| {
        Verdict::Fail(format!(
            "{} file descriptors open after 10 cycles, {fds_before} before",
            fds()
        ))
    })?;
    let fresh = Peer::start(fx, config(&namespace, "fresh")).await?;
    wait_for(
        "the fresh node and the observer to see each other",
        Duration::from_secs(10),
        || fresh.sees(observer.id(), MemberState::Alive) && observer.sees(fresh.id(), MemberState::Alive),
    )
    .await?;
    const N: u64 = 100;
    for id in 0..N {
        observer.node.broadcast(tagged(id, 8)).await?;
    }
    wait_for("the fresh node to get every event", Duration::from_secs(10), || {
        fresh.ids_from(None).len() as u64 >= N
    })
    .await?;
    ensure!(
        fresh.ids_from(None) == (0..N).collect::<Vec<_>>(),
        "the fresh node's events are incomplete or reordered"
    );
    observer.node.shutdown().await?;
    fresh.node.shutdown().await?;
    Ok(format!(
        "tasks {tasks_before} → {}, fds {fds_before} → {}",
        tasks(),
        fds()
    ))
}
