//! C. Flow control and errors: slow subscribers, failing handlers, gaps.

use std::time::Duration;

use coord_core::engine::DropReason;
use coord_core::wire::Body;
use coord_core::{Incoming, LagReason, Lagged};
use futures::StreamExt;

use crate::fixture::Fixture;
use crate::harness::{CaseResult, Cluster, Injector, Log, ensure, sequence_problems, tagged, wait_for};

/// C12. A receiver that never reads: the sender's memory stays bounded,
/// overflow is counted, the other receivers are unaffected.
pub async fn c12_slow_subscriber(fx: &dyn Fixture) -> CaseResult {
    const CAPACITY: usize = 256;
    const N: u64 = 2000;
    let cluster = Cluster::start(fx, 3, |c| c.inbox.subscriber_capacity = CAPACITY).await?;
    let [sender, slow, other] = &cluster.peers[..] else {
        unreachable!("three peers")
    };
    let never_read = slow.node.subscribe();
    for burst in 0..N / 100 {
        for id in burst * 100..(burst + 1) * 100 {
            sender.node.broadcast(tagged(id, 32)).await?;
        }
        let want = ((burst + 1) * 100) as usize;
        wait_for("the reading subscribers to keep up", Duration::from_secs(10), || {
            slow.ids_from(None).len() >= want && other.ids_from(None).len() >= want
        })
        .await?;
    }
    for peer in [slow, other] {
        if let Some(problem) = sequence_problems(&peer.ids_from(None), N) {
            return Err(crate::harness::Verdict::Fail(format!(
                "reading subscriber of {}: {problem}",
                peer.id()
            )));
        }
    }
    let overflow = slow.node.stats().dropped(DropReason::SubscriberOverflow);
    ensure!(
        overflow >= N - CAPACITY as u64,
        "overflow counted {overflow}, expected at least {} for the never-read queue of {CAPACITY}",
        N - CAPACITY as u64
    );
    let outbox = sender.node.stats().dropped(DropReason::OutboxOverflow);
    ensure!(
        outbox == 0,
        "the sender dropped {outbox} events although only a remote subscriber was slow"
    );
    slow.node.shutdown().await?;
    let held = tokio::time::timeout(Duration::from_secs(10), never_read.count())
        .await
        .map_err(|_| crate::harness::Verdict::Fail("the never-read stream did not end".into()))?;
    ensure!(
        held <= CAPACITY,
        "the never-read queue held {held} items, above its bound {CAPACITY}"
    );
    cluster.shutdown().await;
    Ok(format!(
        "never-read queue held {held}, {overflow} overflowed and counted; others got all {N}"
    ))
}

/// C13. A panicking or erroring application handler does not stall delivery.
pub async fn c13_failing_handler(fx: &dyn Fixture) -> CaseResult {
    let cluster = Cluster::start(fx, 2, |_| {}).await?;
    let [sender, receiver] = &cluster.peers[..] else {
        unreachable!("two peers")
    };
    let mut doomed = receiver.node.subscribe();
    let handler = tokio::spawn(async move {
        if let Some(Incoming::Event(_)) = doomed.next().await {
            panic!("application handler fails on purpose (conformance case C13)");
        }
    });
    let mut erroring = receiver.node.subscribe();
    let errors = tokio::spawn(async move {
        let mut failed = 0u64;
        while let Some(item) = erroring.next().await {
            let handled: Result<(), String> = match item {
                Incoming::Event(_) => Err("handler error".into()),
                Incoming::Lagged(_) => Ok(()),
            };
            if handled.is_err() {
                failed += 1;
            }
        }
        failed
    });
    const N: u64 = 500;
    for id in 0..N {
        sender.node.broadcast(tagged(id, 8)).await?;
    }
    wait_for(
        "delivery to continue after the handler panicked",
        Duration::from_secs(10),
        || receiver.ids_from(None).len() as u64 >= N,
    )
    .await?;
    ensure!(
        handler.await.is_err_and(|e| e.is_panic()),
        "the failing handler did not panic as set up"
    );
    let late = Log::collect(receiver.node.subscribe());
    sender.node.broadcast(tagged(N, 8)).await?;
    wait_for(
        "a subscriber made after the panic to get events",
        Duration::from_secs(10),
        || late.with(|items| !items.is_empty()),
    )
    .await?;
    cluster.shutdown().await;
    let failed = errors
        .await
        .map_err(|e| crate::harness::Verdict::Fail(format!("erroring handler task: {e}")))?;
    ensure!(
        failed == N + 1,
        "the erroring handler saw {failed} events, expected {}",
        N + 1
    );
    Ok(format!("{N} events delivered past a panicking and an erroring handler"))
}

/// C14. A sequence gap (frames lost) produces exactly one `Lagged` per gap.
pub async fn c14_gap(fx: &dyn Fixture) -> CaseResult {
    let cluster = Cluster::start(fx, 1, |_| {}).await?;
    let receiver = &cluster.peers[0];
    let mut forger = Injector::new(fx, &cluster.namespace, "gappy").await?;
    // Frames 1-3, then 4-6 lost, 7-8, then 9-11 lost, 12.
    for (seq, id) in [(1, 0), (2, 1), (3, 2), (7, 3), (8, 4), (12, 5)] {
        let envelope = forger.envelope(Body::Broadcast(vec![tagged(id, 4).encode()]), Some(seq));
        forger.send(&envelope, None).await?;
    }
    wait_for("the six delivered events", Duration::from_secs(10), || {
        receiver.ids_from(None).len() >= 6
    })
    .await?;
    ensure!(
        receiver.ids_from(None) == vec![0, 1, 2, 3, 4, 5],
        "events {:?}",
        receiver.ids_from(None)
    );
    let lags: Vec<Lagged> = receiver.received.with(|items| {
        items
            .iter()
            .filter_map(|i| match i {
                Incoming::Lagged(l) => Some(l.clone()),
                Incoming::Event(_) => None,
            })
            .collect()
    });
    ensure!(lags.len() == 2, "{} Lagged markers for 2 gaps: {lags:?}", lags.len());
    for lag in &lags {
        ensure!(
            lag.reason == LagReason::Gap
                && lag.missed == Some(3)
                && lag.from.as_ref().is_some_and(|f| f.as_str() == "gappy"),
            "unexpected marker {lag:?}"
        );
    }
    let order: Vec<Option<u64>> = receiver.received.with(|items| {
        items
            .iter()
            .map(|i| match i {
                Incoming::Event(d) => crate::harness::id_of(&d.event),
                Incoming::Lagged(_) => None,
            })
            .collect()
    });
    ensure!(
        order == vec![Some(0), Some(1), Some(2), None, Some(3), Some(4), None, Some(5)],
        "markers not at the gaps: {order:?}"
    );
    forger.close().await;
    cluster.shutdown().await;
    Ok("2 gaps → 2 Lagged, each where its gap is".into())
}
