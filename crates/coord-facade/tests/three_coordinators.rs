//! End to end through the facade: three coordinators on one `memory://`
//! network, started the three ways (builder, config, URI).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coord::{
    Config, Coordinator, DataTypes, ErrorKind, Event, Feed, Incoming, MemberEvent, MemberState, NodeId, Profile,
};
use futures::StreamExt;
use tokio::time::timeout;

/// How long any one expected thing may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(5);

/// A memory network name no other test (or test run) uses.
fn fresh_network() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!(
        "facade-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn id(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

/// The next event (skipping `Lagged` markers) within the deadline.
async fn next_event(feed: &mut Feed<Incoming>) -> coord::Delivery {
    timeout(DEADLINE, async {
        loop {
            match feed.next().await.expect("the feed ended early") {
                Incoming::Event(delivery) => return delivery,
                Incoming::Lagged(_) => continue,
            }
        }
    })
    .await
    .expect("no event within the deadline")
}

/// Waits until every node of `expected` has joined `node`'s view: reported
/// on `feed`, or already in the view when the feed was made (a node hears a
/// peer's heartbeat as soon as it starts, maybe before the test subscribed).
async fn joins(node: &Coordinator, feed: &mut Feed<MemberEvent>, expected: &[&str]) {
    let mut missing: BTreeSet<NodeId> = expected.iter().map(|n| id(n)).collect();
    for member in node.members() {
        missing.remove(&member.node);
    }
    timeout(DEADLINE, async {
        while !missing.is_empty() {
            if let MemberEvent::Joined { node, .. } = feed.next().await.expect("the feed ended early") {
                missing.remove(&node);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("joins still missing after {DEADLINE:?}: {missing:?}"));
}

/// Waits until `feed` reports `node` as left.
async fn left(feed: &mut Feed<MemberEvent>, node: &NodeId) {
    timeout(DEADLINE, async {
        loop {
            match feed.next().await.expect("the feed ended early") {
                MemberEvent::Left { node: n } if n == *node => return,
                MemberEvent::Failed { node: n } if n == *node => {
                    panic!("{n} was reported failed, not left")
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{node} not reported as left within {DEADLINE:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_coordinators_exchange_events_see_joins_and_leave() {
    let network = fresh_network();
    let secret = "a-test-secret-of-32-bytes-length";

    let a = Coordinator::builder()
        .node_id("a")
        .namespace("facade-test")
        .secret(coord::Secret::new(secret).unwrap())
        .profile(Profile::Fast)
        .uri(format!("memory://{network}"))
        .start()
        .await
        .unwrap();
    let mut a_members = a.membership();
    let mut a_inbox = a.subscribe();

    let config = Config::from_toml(&format!(
        "[coordinator]\nnode-id = \"b\"\nnamespace = \"facade-test\"\nsecret = \"{secret}\"\n\
         backend = \"memory://{network}\"\n[coordinator.membership]\nprofile = \"fast\"\n"
    ))
    .unwrap();
    let b = Coordinator::from_config(&config).await.unwrap();
    let mut b_members = b.membership();
    let mut b_inbox = b.subscribe();

    // The URI sets no secret: unsigned frames must not be accepted by a
    // signed cluster, so this node joins through the builder with the same
    // secret, its node id and profile coming from the URI.
    let c = Coordinator::builder()
        .namespace("facade-test")
        .secret(coord::Secret::new(secret).unwrap())
        .uri(format!("memory://{network}?node-id=c&profile=fast"))
        .start()
        .await
        .unwrap();
    let mut c_members = c.membership();
    let mut c_inbox = c.subscribe();

    assert_eq!((a.node_id(), b.node_id(), c.node_id()), (&id("a"), &id("b"), &id("c")));
    assert_eq!(c.backend(), "memory");

    joins(&a, &mut a_members, &["b", "c"]).await;
    joins(&b, &mut b_members, &["a", "c"]).await;
    joins(&c, &mut c_members, &["a", "b"]).await;
    let alive: Vec<_> = a.members().into_iter().map(|m| (m.node, m.state)).collect();
    assert_eq!(alive, [(id("b"), MemberState::Alive), (id("c"), MemberState::Alive)]);

    // A broadcast reaches both others, not the sender.
    let change = Event::state_change(42, 7, DataTypes::EMAIL | DataTypes::MAILBOX);
    a.broadcast(change.clone()).await.unwrap();
    for inbox in [&mut b_inbox, &mut c_inbox] {
        let delivery = next_event(inbox).await;
        assert_eq!(
            (&delivery.from, delivery.directed, &delivery.event),
            (&id("a"), false, &change)
        );
    }

    // A directed send reaches its target alone.
    let push = Event::custom(9, &b"route to c"[..]);
    b.send_to(&id("c"), push.clone()).await.unwrap();
    let delivery = next_event(&mut c_inbox).await;
    assert_eq!(
        (&delivery.from, delivery.directed, &delivery.event),
        (&id("b"), true, &push)
    );

    // `a` got neither its own broadcast nor the send to `c`: the next thing
    // it receives is this marker from `b`.
    let marker = Event::custom(10, &b"marker"[..]);
    b.try_broadcast(marker.clone()).unwrap();
    let delivery = next_event(&mut a_inbox).await;
    assert_eq!((&delivery.from, &delivery.event), (&id("b"), &marker));
    assert_eq!(next_event(&mut c_inbox).await.event, marker);

    // A graceful shutdown is seen as `Left`; it is idempotent, and the node
    // refuses work afterwards.
    c.shutdown().await.unwrap();
    c.shutdown().await.unwrap();
    left(&mut a_members, &id("c")).await;
    left(&mut b_members, &id("c")).await;
    assert_eq!(c.broadcast(change.clone()).await.unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(c.health().status, coord::HealthStatus::Down);
    let err = a.send_to(&id("c"), push).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownNode, "{err}");
    // The closed node's streams end.
    assert!(timeout(DEADLINE, c_inbox.next()).await.unwrap().is_none());

    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn from_uri_requires_a_node_id_and_a_known_scheme() {
    let err = Coordinator::from_uri("memory://somewhere").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(
        err.message(),
        "the URI has no `node-id` parameter: add `?node-id=` and this node's unique name, e.g. \
         memory://cluster-a?node-id=mx1"
    );

    let err = Coordinator::from_uri("foo://x?node-id=mx1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let schemes: Vec<&str> = coord::schemes().collect();
    assert_eq!(
        err.message(),
        format!("unknown backend scheme `foo`: use one of {}", schemes.join(", "))
    );

    #[cfg(not(feature = "kafka"))]
    {
        let err = Coordinator::from_uri("kafka://127.0.0.1:9092?node-id=mx1")
            .await
            .unwrap_err();
        assert!(err.message().contains("enable coord's `kafka` feature"), "{err}");
    }

    let err = Coordinator::from_uri("memory://x?node-id=mx1&colour=blue")
        .await
        .unwrap_err();
    assert!(err.message().contains("unknown URI parameter `colour`"), "{err}");

    let err = Coordinator::from_uri("memory://x?node-id=a.b").await.unwrap_err();
    assert!(err.message().contains("node id \"a.b\" is invalid"), "{err}");
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn builder_errors_name_the_method_and_the_fix() {
    let err = Coordinator::builder().uri("memory://x").start().await.unwrap_err();
    assert_eq!(
        err.message(),
        "the node id is missing: call `.node_id(..)` with this node's unique name"
    );

    // The first invalid value is reported, even when later calls are fine.
    let err = Coordinator::builder()
        .node_id("not valid")
        .uri("memory://x")
        .start()
        .await
        .unwrap_err();
    assert!(err.message().contains("node id \"not valid\" is invalid"), "{err}");

    let err = Coordinator::builder()
        .node_id("mx1")
        .uri("memory://x?node-id=mx2")
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "`.node_id(..)` is \"mx1\" but the backend URI's `node-id` parameter is \"mx2\": keep one"
    );

    let network = coord::memory::MemoryNetwork::new();
    let err = Coordinator::builder()
        .node_id("mx1")
        .uri("memory://x")
        .transport(std::sync::Arc::new(network.connect()))
        .start()
        .await
        .unwrap_err();
    assert!(err.message().starts_with("more than one backend is set"), "{err}");
}

#[tokio::test]
async fn a_custom_transport_is_accepted() {
    let network = coord::memory::MemoryNetwork::new();
    let one = Coordinator::builder()
        .node_id("one")
        .profile(Profile::Fast)
        .transport(std::sync::Arc::new(network.connect()))
        .start()
        .await
        .unwrap();
    let two = Coordinator::builder()
        .node_id("two")
        .profile(Profile::Fast)
        .transport(std::sync::Arc::new(network.connect()))
        .start()
        .await
        .unwrap();
    let mut inbox = two.subscribe();
    one.broadcast(Event::custom(1, &b"hi"[..])).await.unwrap();
    assert_eq!(next_event(&mut inbox).await.from, id("one"));
    one.shutdown().await.unwrap();
    two.shutdown().await.unwrap();
}

/// Without a backend, the builder starts a Zenoh peer with the default
/// settings: the embedded default, needing no server.
#[cfg(feature = "zenoh")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_backend_the_builder_starts_a_default_zenoh_peer() {
    let coordinator = Coordinator::builder().node_id("mx1").start().await.unwrap();
    assert_eq!(coordinator.backend(), "zenoh");
    coordinator.shutdown().await.unwrap();
}

#[cfg(not(feature = "zenoh"))]
#[tokio::test]
async fn without_a_backend_and_zenoh_the_builder_says_what_to_set() {
    let err = Coordinator::builder().node_id("mx1").start().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(
        err.message(),
        "no backend is set and this build has no default one (coord's `zenoh` feature is off): call \
         `.uri(\"nats://127.0.0.1:4222\")`, `.backend(..)` or `.transport(..)`"
    );
}
