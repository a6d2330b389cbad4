//! Zenoh peers beyond the shared suite: three OS processes and a crash,
//! TLS with mutual authentication, user/password, liveliness, and the
//! transport's own contract (close, too large).

mod child;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use coord_conformance::certs;
use coord_conformance::proxy::{FaultProxy, ProxyMode};
use coord_core::transport::{Channel, Received, Subscription, Transport};
use coord_core::{ErrorKind, Namespace, NodeId};
use coord_zenoh::{Presence, TlsConfig, UserPassword, ZenohConfig, ZenohTransport};
use futures::StreamExt;
use rand::Rng;
use tokio::time::{Instant, timeout};

/// A port nothing listens on right now.
fn free_port() -> u16 {
    coord_conformance::service::free_port().expect("a free loopback port")
}

/// A namespace no other test uses.
fn fresh_namespace() -> Namespace {
    Namespace::new(format!("t{:016x}", rand::rng().random::<u64>())).expect("hex names are valid")
}

/// A scratch directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "coord-zenoh-{name}-{}-{:08x}",
        std::process::id(),
        rand::rng().random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A loopback peer: scouting off, quick reconnects, a short lease.
fn loopback(listen: Option<String>, connect: Option<String>) -> ZenohConfig {
    ZenohConfig::new()
        .listen(listen)
        .connect(connect)
        .multicast_scouting(false)
        .gossip(false)
        .retry(Duration::from_millis(50), Duration::from_millis(400))
        .lease(Duration::from_secs(1))
}

async fn wait_until(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < bound, "timed out after {bound:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The next frame on `sub` (skipping `Lagged`), within `bound`.
async fn next_frame(sub: &mut Subscription, bound: Duration) -> Option<Bytes> {
    timeout(bound, async {
        while let Some(item) = sub.next().await {
            if let Received::Frame(frame) = item {
                return Some(frame);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[test]
fn three_processes_detect_a_killed_peer() {
    if child::is_child() {
        child::run();
        return;
    }
    child::three_processes_detect_a_killed_peer();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_streams_refuses_publish_and_too_large_frames() {
    let transport = ZenohTransport::open(loopback(Some(format!("tcp/127.0.0.1:{}", free_port())), None))
        .await
        .unwrap();
    let channel = Channel::all(&fresh_namespace());
    let health = transport.health();
    assert!(!health.connected, "a lone peer has nobody to talk to");
    assert!(health.detail.unwrap().contains("no Zenoh peer connected"));
    let mut sub = transport.subscribe(&channel).await.unwrap();
    transport.publish(&channel, Bytes::from_static(b"self")).await.unwrap();
    assert_eq!(
        next_frame(&mut sub, Duration::from_secs(5)).await.as_deref(),
        Some(&b"self"[..])
    );
    let max = transport.capabilities().max_payload;
    let too_large = transport
        .publish(&channel, Bytes::from(vec![0; max + 1]))
        .await
        .unwrap_err();
    assert_eq!(too_large.kind(), ErrorKind::TooLarge);
    transport.close().await.unwrap();
    transport.close().await.unwrap();
    assert_eq!(timeout(Duration::from_secs(5), sub.next()).await.unwrap(), None);
    let after = transport.publish(&channel, Bytes::new()).await.unwrap_err();
    assert_eq!(after.kind(), ErrorKind::Closed);
    assert!(transport.subscribe(&channel).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_is_reported_then_healed_with_lagged() {
    let port = free_port();
    let a = ZenohTransport::open(loopback(Some(format!("tcp/127.0.0.1:{port}")), None))
        .await
        .unwrap();
    let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let b = ZenohTransport::open(loopback(None, Some(format!("tcp/{}", proxy.addr()))))
        .await
        .unwrap();
    let channel = Channel::all(&fresh_namespace());
    let mut sub = b.subscribe(&channel).await.unwrap();
    wait_until("b to connect", Duration::from_secs(10), || b.health().connected).await;
    proxy.set(ProxyMode::Cut);
    wait_until("b to report the lost link", Duration::from_secs(5), || {
        !b.health().connected
    })
    .await;
    let down = b.health();
    assert!(down.detail.unwrap().contains("lost every Zenoh peer"));
    proxy.set(ProxyMode::Pass { delay: Duration::ZERO });
    wait_until("b to reconnect", Duration::from_secs(10), || b.health().connected).await;
    assert_eq!(b.health().reconnects, 1);
    let lagged = timeout(Duration::from_secs(5), sub.next()).await.unwrap();
    assert_eq!(lagged, Some(Received::Lagged), "the reconnect is marked");
    let frame = Bytes::from_static(b"after the cut");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        a.publish(&channel, frame.clone()).await.unwrap();
        if let Some(got) = next_frame(&mut sub, Duration::from_millis(200)).await {
            assert_eq!(got, frame);
            break;
        }
        assert!(Instant::now() < deadline, "no frame after the reconnect");
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_and_a_missing_file_fail_clearly() {
    let port = free_port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let first = ZenohTransport::open(loopback(Some(endpoint.clone()), None))
        .await
        .unwrap();
    let Err(taken) = ZenohTransport::open(loopback(Some(endpoint.clone()), None)).await else {
        panic!("a second peer listened on a taken port");
    };
    assert_eq!(taken.kind(), ErrorKind::Unavailable);
    assert!(
        taken.to_string().contains("zenoh") && taken.message().contains(&endpoint),
        "{taken}"
    );
    let missing = TlsConfig::trusting("/nonexistent/coord/ca.pem");
    let Err(error) = ZenohTransport::open(loopback(None, Some(endpoint)).tls(missing)).await else {
        panic!("a missing CA file was accepted");
    };
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.message().contains("tls.ca"), "{error}");
    println!("taken port: {taken}\nmissing file: {error}");
    first.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveliness_tokens_come_and_go_with_the_session() {
    let namespace = fresh_namespace();
    let port = free_port();
    let a = ZenohTransport::open(loopback(Some(format!("tcp/127.0.0.1:{port}")), None))
        .await
        .unwrap();
    let b = ZenohTransport::open(loopback(None, Some(format!("tcp/127.0.0.1:{port}"))))
        .await
        .unwrap();
    let node_b = NodeId::new("b").unwrap();
    let mut presence = a.watch_presence(&namespace).await.unwrap();
    let token = b.declare_alive(&namespace, &node_b).await.unwrap();
    assert_eq!(token.key(), format!("{namespace}/alive/b"));
    let seen = timeout(Duration::from_secs(5), presence.next()).await.unwrap();
    assert_eq!(seen, Some(Presence::Alive(node_b.clone())));
    let closed_at = Instant::now();
    b.close().await.unwrap();
    let gone = timeout(Duration::from_secs(5), presence.next()).await.unwrap();
    assert_eq!(gone, Some(Presence::Gone(node_b)));
    println!(
        "token gone {} ms after the peer closed",
        closed_at.elapsed().as_millis()
    );
    a.close().await.unwrap();
    assert_eq!(timeout(Duration::from_secs(5), presence.next()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_peers_exchange_frames_and_refuse_a_peer_without_a_certificate() {
    let dir = scratch("tls");
    let files = certs::write(&dir);
    let tls = TlsConfig::new(&files.ca, &files.cert, &files.key).mutual(true);
    let port = free_port();
    let endpoint = format!("tls/127.0.0.1:{port}");
    let a = ZenohTransport::open(loopback(Some(endpoint.clone()), None).tls(tls.clone()))
        .await
        .unwrap();
    let b = ZenohTransport::open(loopback(None, Some(endpoint.clone())).tls(tls))
        .await
        .unwrap();
    let channel = Channel::all(&fresh_namespace());
    let mut sub = a.subscribe(&channel).await.unwrap();
    wait_until("the TLS peers to connect", Duration::from_secs(10), || {
        a.health().connected && b.health().connected
    })
    .await;
    let frame = Bytes::from_static(b"over tls");
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        b.publish(&channel, frame.clone()).await.unwrap();
        if let Some(got) = next_frame(&mut sub, Duration::from_millis(200)).await {
            break got;
        }
        assert!(Instant::now() < deadline, "no frame over TLS");
    };
    assert_eq!(got, frame);

    let no_cert = TlsConfig::trusting(&files.ca);
    let stranger = ZenohTransport::open(loopback(None, Some(endpoint)).tls(no_cert))
        .await
        .unwrap();
    for _ in 0..20 {
        stranger
            .publish(&channel, Bytes::from_static(b"stranger"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !stranger.health().connected,
        "a peer without a client certificate joined"
    );
    while let Ok(Some(item)) = timeout(Duration::from_millis(200), sub.next()).await {
        assert_ne!(item, Received::Frame(Bytes::from_static(b"stranger")));
    }
    for transport in [a, b, stranger] {
        transport.close().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_wrong_password_cannot_join() {
    let dir = scratch("auth");
    let users = dir.join("users");
    std::fs::write(&users, "coord:right-password\n").unwrap();
    let port = free_port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let right = UserPassword::new("coord", "right-password", &users);
    let a = ZenohTransport::open(loopback(Some(endpoint.clone()), None).auth(right.clone()))
        .await
        .unwrap();
    let b = ZenohTransport::open(loopback(None, Some(endpoint.clone())).auth(right))
        .await
        .unwrap();
    let wrong = UserPassword::new("coord", "wrong-password", &users);
    let intruder = ZenohTransport::open(loopback(None, Some(endpoint)).auth(wrong))
        .await
        .unwrap();
    let channel = Channel::all(&fresh_namespace());
    let mut sub = a.subscribe(&channel).await.unwrap();
    wait_until(
        "the peers with the right password to connect",
        Duration::from_secs(10),
        || a.health().connected && b.health().connected,
    )
    .await;
    for _ in 0..20 {
        intruder
            .publish(&channel, Bytes::from_static(b"intruder"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!intruder.health().connected, "the intruder joined");
    let frame = Bytes::from_static(b"member");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        b.publish(&channel, frame.clone()).await.unwrap();
        match next_frame(&mut sub, Duration::from_millis(200)).await {
            Some(got) => {
                assert_eq!(got, frame, "a frame of the intruder arrived");
                break;
            }
            None => assert!(Instant::now() < deadline, "no frame from the member"),
        }
    }
    for transport in [a, b, intruder] {
        transport.close().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}
