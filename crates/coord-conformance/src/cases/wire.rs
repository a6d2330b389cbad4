//! D. Wire and security: garbage, unknown tags, forged and replayed frames, secrets.

use std::time::Duration;

use bytes::Bytes;
use coord_core::engine::DropReason;
use coord_core::event::RawEvent;
use coord_core::wire::{self, Body, MAGIC};
use rand::{Rng, SeedableRng};

use crate::fixture::Fixture;
use crate::harness::{CaseResult, Cluster, Injector, config, ensure, fresh_namespace, secret, tagged, wait_for};

/// D15. Unknown format version, truncated frames and random bytes on the
/// channel are counted and skipped; the node keeps running and keeps delivering.
pub async fn d15_garbage(fx: &dyn Fixture) -> CaseResult {
    let cluster = Cluster::start(fx, 2, |_| {}).await?;
    let [sender, receiver] = &cluster.peers[..] else {
        unreachable!("two peers")
    };
    let mut forger = Injector::new(fx, &cluster.namespace, "forger").await?;
    let valid = wire::encode(
        &forger.envelope(Body::Broadcast(vec![tagged(0, 16).encode()]), None),
        None,
    );
    let mut future_version = valid.to_vec();
    future_version[2] = 99;
    forger.publish(Bytes::from(future_version)).await?;
    forger.publish(valid.slice(..valid.len() / 2)).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    for _ in 0..20 {
        let len = rng.random_range(0..200);
        let mut junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if junk.first() == Some(&MAGIC[0]) {
            junk[0] = 0;
        }
        forger.publish(Bytes::from(junk)).await?;
    }
    let good = forger.envelope(Body::Broadcast(vec![tagged(1, 16).encode()]), None);
    forger.send(&good, None).await?;
    sender.node.broadcast(tagged(2, 16)).await?;
    wait_for("valid events after the garbage", Duration::from_secs(10), || {
        receiver.ids_from(None).len() >= 2
    })
    .await?;
    let mut got = receiver.ids_from(None);
    got.sort_unstable();
    ensure!(
        got == vec![1, 2],
        "received {got:?}, expected the two valid events 1 and 2"
    );
    let stats = receiver.node.stats();
    let (version, malformed, junk) = (
        stats.dropped(DropReason::UnknownVersion),
        stats.dropped(DropReason::Malformed),
        stats.dropped(DropReason::NotAFrame),
    );
    ensure!(version == 1, "unknown-version counted {version}, expected 1");
    ensure!(
        malformed == 1,
        "malformed counted {malformed}, expected 1 (the truncated frame)"
    );
    ensure!(junk == 20, "not-a-frame counted {junk}, expected 20");
    forger.close().await;
    cluster.shutdown().await;
    Ok("1 unknown version, 1 truncated, 20 random frames counted; delivery went on".into())
}

/// D16. An unknown event tag inside a batch is skipped alone; the rest is delivered.
pub async fn d16_unknown_tag(fx: &dyn Fixture) -> CaseResult {
    let cluster = Cluster::start(fx, 1, |_| {}).await?;
    let receiver = &cluster.peers[0];
    let mut forger = Injector::new(fx, &cluster.namespace, "newer").await?;
    let unknown = RawEvent {
        tag: 999,
        body: Bytes::from_static(b"from a later version"),
    };
    let events = vec![tagged(0, 8).encode(), unknown, tagged(1, 8).encode()];
    let envelope = forger.envelope(Body::Broadcast(events), None);
    forger.send(&envelope, None).await?;
    wait_for("the known events of the batch", Duration::from_secs(10), || {
        receiver.ids_from(None).len() >= 2
    })
    .await?;
    ensure!(
        receiver.ids_from(None) == vec![0, 1],
        "received {:?}",
        receiver.ids_from(None)
    );
    let skipped = receiver.node.stats().dropped(DropReason::UnknownEvent);
    ensure!(skipped == 1, "unknown-event counted {skipped}, expected 1");
    forger.close().await;
    cluster.shutdown().await;
    Ok("tag 999 skipped alone, 2 neighbours delivered".into())
}

/// D17. With a secret: unsigned frames, frames signed with another key, and
/// replays of a valid frame are all dropped and counted.
pub async fn d17_sealed(fx: &dyn Fixture) -> CaseResult {
    let key = secret(7);
    let cluster = Cluster::start(fx, 2, |c| c.secret = Some(secret(7))).await?;
    let [sender, receiver] = &cluster.peers[..] else {
        unreachable!("two peers")
    };
    let mut forger = Injector::new(fx, &cluster.namespace, "forger").await?;
    let event = |id| Body::Broadcast(vec![tagged(id, 8).encode()]);
    let unsigned = forger.envelope(event(100), None);
    forger.send(&unsigned, None).await?;
    let wrong_key = forger.envelope(event(101), None);
    forger.send(&wrong_key, Some(&secret(8))).await?;
    let mut stale = forger.envelope(event(102), None);
    stale.sent_at_ms -= 24 * 3600 * 1000;
    forger.send(&stale, Some(&key)).await?;
    let valid = wire::encode(&forger.envelope(event(1), None), Some(&key));
    forger.publish(valid.clone()).await?;
    forger.publish(valid.clone()).await?;
    forger.publish(valid).await?;
    sender.node.broadcast(tagged(2, 8)).await?;
    wait_for("the valid events", Duration::from_secs(10), || {
        receiver.ids_from(None).len() >= 2
    })
    .await?;
    let mut got = receiver.ids_from(None);
    got.sort_unstable();
    ensure!(
        got == vec![1, 2],
        "received {got:?}, expected only the valid event 1 (once) and the peer's 2"
    );
    let stats = receiver.node.stats();
    for (reason, want) in [
        (DropReason::Unsigned, 1),
        (DropReason::BadMac, 1),
        (DropReason::OutsideWindow, 1),
        (DropReason::Duplicate, 2),
    ] {
        let counted = stats.dropped(reason);
        ensure!(
            counted == want,
            "{} counted {counted}, expected {want}",
            reason.as_str()
        );
    }
    forger.close().await;
    cluster.shutdown().await;
    Ok("unsigned, wrong key, outside window and 2 replays dropped and counted".into())
}

/// D18. Secrets never appear in `Debug` output or log lines.
pub async fn d18_secret_hidden(fx: &dyn Fixture) -> CaseResult {
    const TEXT: &str = "conformance-secret-d18-do-not-print";
    let key = coord_core::Secret::new(TEXT)?;
    let mut node_config = config(&fresh_namespace(), "n0");
    node_config.secret = Some(key.clone());
    for shown in [format!("{key:?}"), format!("{key}"), format!("{node_config:?}")] {
        ensure!(!shown.contains(TEXT), "the secret appears in: {shown}");
    }
    if crate::logs::start().is_none() {
        return Err(crate::harness::Verdict::NotApplicable(
            "another tracing subscriber is installed; the suite cannot see log lines".into(),
        ));
    }
    let result = async {
        let cluster = Cluster::start(fx, 2, |c| c.secret = Some(key.clone())).await?;
        cluster.peers[0].node.broadcast(tagged(0, 8)).await?;
        let mut forger = Injector::new(fx, &cluster.namespace, "forger").await?;
        let forged = forger.envelope(Body::Broadcast(vec![tagged(1, 8).encode()]), None);
        forger.send(&forged, Some(&secret(9))).await?;
        wait_for("the event", Duration::from_secs(10), || {
            !cluster.peers[1].ids_from(None).is_empty()
        })
        .await?;
        let shown = format!("{:?} {:?}", cluster.peers[0].node, cluster.peers[0].node.health());
        forger.close().await;
        cluster.shutdown().await;
        Ok::<_, crate::harness::Verdict>(shown)
    }
    .await;
    let logs = crate::logs::stop();
    let shown = result?;
    ensure!(!shown.contains(TEXT), "the secret appears in Debug output: {shown}");
    ensure!(
        logs.lines().count() > 5,
        "too few log lines captured ({}) to judge",
        logs.lines().count()
    );
    let hex: String = TEXT.bytes().map(|b| format!("{b:02x}")).collect();
    let leaked = logs.lines().find(|l| l.contains(TEXT) || l.contains(&hex));
    ensure!(
        leaked.is_none(),
        "the secret appears in a log line: {}",
        leaked.unwrap_or_default()
    );
    Ok(format!("checked Debug output and {} log lines", logs.lines().count()))
}
