//! coord-kafka against a real Kafka-protocol broker (tansu): the whole
//! conformance suite, true broadcast to every node, and start-up errors.
//!
//! `cargo xtask test` starts the broker and sets `COORD_KAFKA_URL` (its
//! address) and `COORD_KAFKA_SERVICE` (how to stop and restart it).

#[path = "kafka/advertise.rs"]
mod advertise;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use coord_conformance::service::{TestServer, free_port};
use coord_conformance::{NetworkFixture, run_and_check, server_address, service_spec};
use coord_core::transport::{Capabilities, Received, Subscription, TransportHealth};
use coord_core::{Channel, ErrorKind, Namespace, NodeId, Result, Transport, TransportDyn};
use coord_kafka::{KafkaConfig, KafkaTransport, SaslMechanism};
use futures::StreamExt;

use advertise::AdvertisingRelay;

const URL_VAR: &str = "COORD_KAFKA_URL";
const SERVICE_VAR: &str = "COORD_KAFKA_SERVICE";

fn socket_addr(url: &str) -> SocketAddr {
    let hostport = url.trim_start_matches("kafka://").trim_end_matches('/');
    hostport
        .parse()
        .unwrap_or_else(|_| panic!("{URL_VAR}={url} is not kafka://<ip>:<port>"))
}

/// Runs the tests with per-node topics for directed frames when set to
/// `true` (the default carries them on `<ns>.all`).
const PER_NODE_TOPICS_VAR: &str = "COORD_KAFKA_PER_NODE_TOPICS";

/// Test settings: quick reconnects so outages heal within the cases' bounds.
fn config(addr: SocketAddr) -> KafkaConfig {
    let mut config = KafkaConfig::new([addr.to_string()]);
    config.per_node_topics = std::env::var(PER_NODE_TOPICS_VAR).is_ok_and(|v| v == "true");
    config.connect_timeout = Duration::from_secs(3);
    config.reconnect_max_delay = Duration::from_millis(500);
    config.health_interval = Duration::from_millis(250);
    config
}

/// A Kafka transport whose every connection runs through an
/// [`AdvertisingRelay`] (and so through the suite's fault proxy behind it);
/// closing it stops the relay.
struct Relayed {
    inner: KafkaTransport,
    relay: Mutex<Option<AdvertisingRelay>>,
}

impl Transport for Relayed {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn publish(&self, channel: &Channel, frame: Bytes) -> Result<()> {
        self.inner.publish(channel, frame).await
    }

    async fn subscribe(&self, channel: &Channel) -> Result<Subscription> {
        self.inner.subscribe(channel).await
    }

    fn health(&self) -> TransportHealth {
        self.inner.health()
    }

    async fn close(&self) -> Result<()> {
        let closed = self.inner.close().await;
        drop(self.relay.lock().unwrap().take());
        closed
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_passes_the_conformance_suite() {
    let Some(url) = server_address("kafka", URL_VAR) else {
        return;
    };
    let broker = socket_addr(&url);
    let fixture = NetworkFixture::new(
        "kafka",
        broker,
        service_spec(SERVICE_VAR),
        Box::new(move |proxy| {
            Box::pin(async move {
                let relay = AdvertisingRelay::start(proxy, broker)
                    .await
                    .map_err(|error| coord_core::Error::new(ErrorKind::Unexpected, "kafka relay", error.to_string()))?;
                let inner = KafkaTransport::connect(&config(relay.addr())).await?;
                let transport: Arc<dyn TransportDyn> = Arc::new(Relayed {
                    inner,
                    relay: Mutex::new(Some(relay)),
                });
                Ok(transport)
            })
        }),
    );
    run_and_check(&fixture).await;
}

fn fresh_channel() -> Channel {
    let n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Channel::all(&Namespace::new(format!("k{n:x}")).unwrap())
}

async fn frames(subscription: &mut Subscription, n: usize) -> Vec<Bytes> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), subscription.next()).await {
            Ok(Some(Received::Frame(frame))) => got.push(frame),
            Ok(Some(Received::Lagged)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_receives_every_broadcast() {
    let Some(url) = server_address("kafka", URL_VAR) else {
        return;
    };
    let addr = socket_addr(&url);
    let mut partitioned = config(addr);
    partitioned.partitions = 3;
    let channel = fresh_channel();
    let a = KafkaTransport::connect(&partitioned).await.unwrap();
    let b = KafkaTransport::connect(&partitioned).await.unwrap();
    let sender = KafkaTransport::connect(&partitioned).await.unwrap();
    let mut at_a = a.subscribe(&channel).await.unwrap();
    let mut at_b = b.subscribe(&channel).await.unwrap();
    const N: usize = 200;
    let sent: Vec<Bytes> = (0..N).map(|i| Bytes::from(format!("frame-{i}"))).collect();
    for frame in &sent {
        sender.publish(&channel, frame.clone()).await.unwrap();
    }
    let (got_a, got_b) = tokio::join!(frames(&mut at_a, N), frames(&mut at_b, N));
    assert_eq!(got_a, sent, "node a got every frame, in order (not a share of them)");
    assert_eq!(got_b, sent, "node b got every frame, in order (not a share of them)");
    for transport in [&a, &b, &sender] {
        transport.close().await.unwrap();
        transport.close().await.unwrap();
    }
    assert_eq!(at_a.next().await, None, "close ends the subscriptions");
    let closed = sender.publish(&channel, Bytes::new()).await.unwrap_err();
    assert_eq!(closed.kind(), ErrorKind::Closed, "{closed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_above_max_payload_are_refused() {
    let Some(url) = server_address("kafka", URL_VAR) else {
        return;
    };
    let mut small = config(socket_addr(&url));
    small.max_payload = 4096;
    let transport = KafkaTransport::connect(&small).await.unwrap();
    assert_eq!(transport.capabilities().max_payload, 4096);
    assert_eq!(
        transport.capabilities().per_node_channels,
        small.per_node_topics,
        "directed frames ride on <ns>.all unless per-node topics are on"
    );
    let channel = fresh_channel();
    let mut subscription = transport.subscribe(&channel).await.unwrap();
    let error = transport
        .publish(&channel, Bytes::from(vec![0u8; 4097]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge, "{error}");
    let largest = Bytes::from(vec![7u8; 4096]);
    transport.publish(&channel, largest.clone()).await.unwrap();
    assert_eq!(frames(&mut subscription, 1).await, [largest], "own frames come back");
    transport.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_node_topics_carry_directed_frames_and_are_deleted() {
    let Some(url) = server_address("kafka", URL_VAR) else {
        return;
    };
    let mut per_node = config(socket_addr(&url));
    per_node.per_node_topics = true;
    let transport = KafkaTransport::connect(&per_node).await.unwrap();
    assert!(transport.capabilities().per_node_channels);
    let namespace = fresh_channel().namespace;
    let mine = Channel::node(&namespace, &NodeId::new("n1").unwrap());
    let mut subscription = transport.subscribe(&mine).await.unwrap();
    let sender = KafkaTransport::connect(&per_node).await.unwrap();
    sender.publish(&mine, Bytes::from_static(b"to n1")).await.unwrap();
    assert_eq!(frames(&mut subscription, 1).await, [Bytes::from_static(b"to n1")]);
    transport.close().await.unwrap();
    sender.close().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_fails_fast_naming_backend_address_and_cause() {
    let port = free_port().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut unreachable = config(addr);
    unreachable.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let error = KafkaTransport::connect(&unreachable).await.unwrap_err();
    let took = started.elapsed();
    let text = error.to_string();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{text}");
    assert!(error.is_temporary(), "{text}");
    assert!(text.contains("kafka"), "names the backend: {text}");
    assert!(text.contains(&addr.to_string()), "names the address: {text}");
    assert!(text.contains("Connection refused"), "names the cause: {text}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[tokio::test]
async fn bad_settings_fail_before_connecting() {
    let error = KafkaTransport::connect(&KafkaConfig::new(["kafka://h:9092"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(error.to_string().contains("bootstrap-servers"), "{error}");
    let unknown = KafkaConfig::new(["127.0.0.1:1"]).property("no.such.property", "1");
    let error = KafkaTransport::connect(&unknown).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(error.to_string().contains("no.such.property"), "{error}");
}

/// Median and 99th percentile of `samples`.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

/// Publish → receive latency of `n` frames, one at a time.
async fn latency(from: &KafkaTransport, channel: &Channel, subscription: &mut Subscription, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        from.publish(channel, Bytes::from(format!("ping-{i}"))).await.unwrap();
        assert_eq!(frames(subscription, 1).await.len(), 1);
        samples.push(started.elapsed());
    }
    samples
}

/// Rough figures behind the backend's choices (run by hand:
/// `cargo test -p coord-kafka --test kafka -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run by hand against a broker"]
async fn measure_latency_and_directed_cost() {
    let Some(url) = server_address("kafka", URL_VAR) else {
        return;
    };
    let addr = socket_addr(&url);
    let channel = fresh_channel();
    let receiver = KafkaTransport::connect(&config(addr)).await.unwrap();
    let sender = KafkaTransport::connect(&config(addr)).await.unwrap();
    let mut subscription = receiver.subscribe(&channel).await.unwrap();
    let (p50, p99) = percentiles(latency(&sender, &channel, &mut subscription, 300).await);
    println!("broadcast topic: publish→receive p50 {p50:?}, p99 {p99:?}");
    for wait in [Duration::from_millis(1), Duration::from_millis(100)] {
        let mut tuned = config(addr);
        tuned.fetch_wait_max = wait;
        let other = KafkaTransport::connect(&tuned).await.unwrap();
        let mut at_other = other.subscribe(&channel).await.unwrap();
        let (p50, p99) = percentiles(latency(&sender, &channel, &mut at_other, 100).await);
        println!("broadcast topic, fetch-wait-max {wait:?}: publish→receive p50 {p50:?}, p99 {p99:?}");
        other.close().await.unwrap();
    }

    const N: usize = 3000;
    let frame = Bytes::from(vec![1u8; 256]);
    let started = Instant::now();
    for _ in 0..N {
        sender.publish(&channel, frame.clone()).await.unwrap();
    }
    assert_eq!(frames(&mut subscription, N).await.len(), N);
    let took = started.elapsed();
    println!(
        "sequential publishes (each awaiting its ack), 256 B: {N} in {took:?} = {:.0} frames/s",
        N as f64 / took.as_secs_f64()
    );

    let mut per_node = config(addr);
    per_node.per_node_topics = true;
    let target = KafkaTransport::connect(&per_node).await.unwrap();
    let node = Channel::node(&channel.namespace, &NodeId::new("target").unwrap());
    let started = Instant::now();
    let mut directed = target.subscribe(&node).await.unwrap();
    println!(
        "per-node topic: create + assign at start {:?} (a second consumer per node)",
        started.elapsed()
    );
    let (p50, p99) = percentiles(latency(&sender, &node, &mut directed, 300).await);
    println!("per-node topic: publish→receive p50 {p50:?}, p99 {p99:?}");
    let started = Instant::now();
    target.close().await.unwrap();
    println!("per-node topic: close with topic deletion {:?}", started.elapsed());
    for transport in [&receiver, &sender] {
        transport.close().await.unwrap();
    }
}

/// A tansu broker of this test's own, started with extra arguments and
/// stopped (by its pid) when dropped; `None` when the suite skips.
fn own_broker(name: &str, extra: &[&str]) -> Option<TestServer> {
    let program = match service_spec(SERVICE_VAR) {
        Some(specs) => specs[0].program.clone(),
        None => {
            server_address("kafka", URL_VAR)?;
            panic!("{SERVICE_VAR} is not set: the auth test needs the tansu binary xtask found");
        }
    };
    Some(TestServer::start(&format!("kafka-{name}"), &program, |port| {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut args: Vec<String> = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    }))
}

/// A broker that requires SASL refuses unknown credentials at once, with an
/// error naming the backend and the address and showing no secret. (tansu
/// keeps its users in its storage, which is memory here, and refuses user
/// creation before authentication, so a successful login cannot be set up.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_sasl_credentials_fail_fast_and_name_the_cause() {
    let Some(broker) = own_broker("sasl", &["--authentication"]) else {
        return;
    };
    for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
        let config = config(broker.addr()).sasl(mechanism, "coord", "wrong-password");
        let started = Instant::now();
        let error = KafkaTransport::connect(&config).await.unwrap_err();
        let text = error.to_string();
        assert_eq!(error.kind(), ErrorKind::Unauthorized, "{text}");
        assert!(!error.is_temporary(), "{text}");
        assert!(
            text.contains("kafka") && text.contains(&broker.addr().to_string()),
            "{text}"
        );
        assert!(text.contains("SASL"), "names the cause: {text}");
        assert!(!text.contains("wrong-password"), "the error shows the password: {text}");
        assert!(
            started.elapsed() < config.connect_timeout,
            "took {:?}, not failing fast",
            started.elapsed()
        );
    }
}
