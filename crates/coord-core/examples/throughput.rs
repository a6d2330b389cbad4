//! A quick throughput run of the engine on the memory transport, beside the
//! raw memory transport in the same run (frames published and received with
//! no engine around them).
//!
//! ```text
//! cargo run --release -p coord-core --example throughput -- [events] [payload-bytes]
//! ```
//!
//! Prints events/s through the engine (one sender, one receiver, adaptive
//! batching), frames/s through the bare transport, and their ratio. Not a
//! benchmark suite (that is `benches/`); a sanity figure for the closing note.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coord_core::transport::memory::MemoryNetwork;
use coord_core::{Channel, Event, Incoming, Namespace, Node, NodeConfig, NodeId, Transport};
use futures::StreamExt;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> coord_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let payload: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    println!("{events} events of {payload} payload bytes, 1 sender → 1 receiver, release build expected");
    let raw = raw_transport(events, payload).await?;
    let engine = engine(events, payload).await?;
    println!("raw memory transport: {raw:>12.0} frames/s");
    println!(
        "coord engine:         {engine:>12.0} events/s  ({:.2}× raw)",
        engine / raw
    );
    Ok(())
}

/// Frames per second through the bare transport: publish `n` frames, receive them all.
async fn raw_transport(n: u64, payload: usize) -> coord_core::Result<f64> {
    let network = MemoryNetwork::with_limits(1 << 20, n as usize + 16);
    let (sender, receiver) = (network.connect(), network.connect());
    let channel = Channel::all(&Namespace::new("bench")?);
    let mut subscription = receiver.subscribe(&channel).await?;
    let frame = Bytes::from(vec![7u8; payload]);
    let start = Instant::now();
    let reader = tokio::spawn(async move {
        let mut got = 0u64;
        while got < n {
            match subscription.next().await {
                Some(_) => got += 1,
                None => break,
            }
        }
        got
    });
    for _ in 0..n {
        sender.publish(&channel, frame.clone()).await?;
    }
    let got = reader.await.expect("reader task");
    assert_eq!(got, n, "the raw transport lost frames");
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Events per second through two engine nodes.
async fn engine(n: u64, payload: usize) -> coord_core::Result<f64> {
    let network = MemoryNetwork::new();
    let config = |id: &str| {
        let mut config = NodeConfig::new(NodeId::new(id).expect("valid id"));
        config.inbox.subscriber_capacity = n as usize + 16;
        config
    };
    let sender = Node::start(config("sender"), Arc::new(network.connect())).await?;
    let receiver = Node::start(config("receiver"), Arc::new(network.connect())).await?;
    let mut inbox = receiver.subscribe();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sender.member(receiver.node_id()).is_none() || receiver.member(sender.node_id()).is_none() {
        assert!(Instant::now() < deadline, "the nodes did not see each other");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let body = Bytes::from(vec![7u8; payload]);
    let start = Instant::now();
    let reader = tokio::spawn(async move {
        let mut got = 0u64;
        let mut lagged = 0u64;
        while got < n {
            match inbox.next().await {
                Some(Incoming::Event(_)) => got += 1,
                Some(Incoming::Lagged(_)) => lagged += 1,
                None => break,
            }
        }
        (got, lagged)
    });
    for i in 0..n {
        sender.broadcast(Event::custom(i as u32, body.clone())).await?;
    }
    let (got, lagged) = reader.await.expect("reader task");
    let elapsed = start.elapsed();
    let stats = sender.stats();
    println!(
        "engine: {got}/{n} events in {} ms, {} frames sent ({:.0} events/frame), {lagged} lagged",
        elapsed.as_millis(),
        stats.frames_sent,
        stats.events_sent as f64 / stats.frames_sent.max(1) as f64
    );
    assert_eq!(got, n, "the engine lost events");
    sender.shutdown().await?;
    receiver.shutdown().await?;
    Ok(n as f64 / elapsed.as_secs_f64())
}
