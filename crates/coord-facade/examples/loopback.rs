//! A quick loopback run of two coordinators on any backend: throughput of
//! broadcasts (adaptive batching on) and one-way latency of lone events.
//!
//! ```sh
//! cargo run --release -p coord-facade --example loopback -- nats://127.0.0.1:4222 [events]
//! cargo run --release -p coord-facade --example loopback -- \
//!     "zenoh://?listen=tcp/127.0.0.1:7447&scouting=off" "zenoh://127.0.0.1:7447?scouting=off" [events]
//! ```
//!
//! The URI names the backend as `Coordinator::from_uri` takes it, without
//! `node-id` (the two nodes are `loop-a` and `loop-b`); a second URI, if
//! given, is `loop-b`'s (peers need different endpoints). Both nodes run in
//! this process, so the latency is measured on one clock. A sanity figure for
//! a closing note, not a benchmark: bounded in events and time, it stops by
//! itself.

use std::time::{Duration, Instant};

use coord::{Coordinator, Event, Incoming, MemberState};
use futures::StreamExt;

/// Longest the whole run may take.
const DEADLINE: Duration = Duration::from_secs(120);
/// Lone events timed for latency.
const PINGS: usize = 500;

fn numbered(id: u64, len: usize) -> Event {
    let mut payload = vec![0u8; len.max(16)];
    payload[..8].copy_from_slice(&id.to_be_bytes());
    let sent = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    payload[8..16].copy_from_slice(&sent.to_be_bytes());
    Event::custom(1, payload)
}

fn decode(event: &Event) -> Option<(u64, u64)> {
    let Event::Custom { payload, .. } = event else {
        return None;
    };
    let id = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let sent = u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?);
    Some((id, sent))
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> coord::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let uri_a = args.first().cloned().unwrap_or_else(|| "memory://loopback".to_owned());
    let (uri_b, rest) = match args.get(1) {
        Some(second) if second.contains("://") => (second.clone(), &args[2.min(args.len())..]),
        _ => (uri_a.clone(), &args[1.min(args.len())..]),
    };
    let events: u64 = rest.first().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let namespace = format!("loop{}", std::process::id());
    let with = |uri: &str, node: &str| {
        let sep = if uri.contains('?') { '&' } else { '?' };
        format!("{uri}{sep}node-id={node}&namespace={namespace}")
    };
    let a = Coordinator::from_uri(&with(&uri_a, "loop-a")).await?;
    let b = Coordinator::from_uri(&with(&uri_b, "loop-b")).await?;
    let started = Instant::now();
    while !a.member(b.node_id()).is_some_and(|m| m.state == MemberState::Alive)
        || !b.member(a.node_id()).is_some_and(|m| m.state == MemberState::Alive)
    {
        assert!(started.elapsed() < DEADLINE, "the two nodes did not see each other");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut inbox = b.subscribe();
    println!("backend {}: {events} events of 64 bytes, loop-a → loop-b", a.backend());

    let sending = Instant::now();
    // Read while sending, and keep at most WINDOW events in flight: a
    // subscriber that falls further behind overflows its bounded queue (the
    // engine counts that and reports `Lagged`), which measures the reader.
    const WINDOW: u64 = 4096;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = received.clone();
    let reader = tokio::spawn(async move {
        let (mut got, mut lagged) = (0u64, 0u64);
        while got < events {
            match tokio::time::timeout(Duration::from_secs(10), inbox.next()).await {
                Ok(Some(Incoming::Event(delivery))) if decode(&delivery.event).is_some() => {
                    got += 1;
                    count.store(got, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Some(Incoming::Lagged(_))) => lagged += 1,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        (got, lagged, inbox)
    });
    for id in 0..events {
        while id - received.load(std::sync::atomic::Ordering::Relaxed).min(id) > WINDOW {
            if reader.is_finished() || sending.elapsed() > DEADLINE {
                break;
            }
            tokio::task::yield_now().await;
        }
        a.broadcast(numbered(id, 64)).await?;
    }
    let (got, lagged, mut inbox) = reader.await.expect("the reader task");
    let took = sending.elapsed();
    println!(
        "throughput: {got}/{events} events in {} ms = {:.0} events/s ({lagged} lagged)",
        took.as_millis(),
        got as f64 / took.as_secs_f64()
    );

    let mut latencies = Vec::with_capacity(PINGS);
    for id in 0..PINGS as u64 {
        a.broadcast(numbered(events + id, 64)).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), inbox.next()).await {
                Ok(Some(Incoming::Event(delivery))) => {
                    if let Some((seen, sent)) = decode(&delivery.event)
                        && seen == events + id
                    {
                        latencies.push(Duration::from_nanos(now_ns().saturating_sub(sent)));
                        break;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    if !latencies.is_empty() {
        println!(
            "latency of a lone event ({} samples): p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    a.shutdown().await?;
    b.shutdown().await?;
    Ok(())
}
