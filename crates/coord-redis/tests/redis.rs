//! coord-redis against real `redis-server`s, on the three topologies that
//! `cargo xtask test` starts: the whole conformance suite on each, a
//! Sentinel failover under traffic (five in a row), ACL authentication, and
//! forged and replayed frames sent with `redis-cli`.
//!
//! Variables (set by xtask): `COORD_REDIS_URL`, `COORD_REDIS_CLUSTER_URL`,
//! `COORD_REDIS_SENTINEL_URL` and, for each, `…_SERVICE` naming its processes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coord_conformance::service::{ServiceSpec, TestServer};
use coord_conformance::{NetworkFixture, run_and_check, server_address, service_spec};
use coord_core::engine::DropReason;
use coord_core::transport::Received;
use coord_core::{
    Channel, ErrorKind, Event, HealthStatus, Incoming, LagReason, Namespace, Node, NodeConfig, NodeId, Secret,
    Transport, TransportDyn,
};
use coord_redis::{RedisConfig, RedisTransport};
use futures::StreamExt;
use tokio::sync::Mutex;

/// The suites and the failover share the servers: one at a time.
static SERVERS: Mutex<()> = Mutex::const_new(());

const MASTER_NAME: &str = "coordmaster";

/// Quick reconnects and timeouts, so that outages heal within the cases' bounds.
fn tuned(mut config: RedisConfig) -> RedisConfig {
    config.connect_timeout = Duration::from_secs(3);
    config.command_timeout = Duration::from_secs(2);
    config.reconnect_max_delay = Duration::from_millis(500);
    config
}

/// `host:port` of the first server in a URL of one of the three schemes.
fn first_addr(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let first = rest.split(['/', ',']).next().unwrap_or_default();
    first
        .parse()
        .unwrap_or_else(|_| panic!("{url} does not start with <ip>:<port>"))
}

fn transport(config: RedisConfig) -> futures::future::BoxFuture<'static, coord_core::Result<Arc<dyn TransportDyn>>> {
    Box::pin(async move {
        let transport: Arc<dyn TransportDyn> = Arc::new(RedisTransport::connect(&tuned(config)).await?);
        Ok(transport)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_passes_the_conformance_suite() {
    let Some(url) = server_address("redis", "COORD_REDIS_URL") else {
        return;
    };
    let _turn = SERVERS.lock().await;
    let fixture = NetworkFixture::new(
        "redis",
        first_addr(&url),
        service_spec("COORD_REDIS_SERVICE"),
        Box::new(|addr| transport(RedisConfig::standalone(addr.to_string()))),
    )
    .variant("standalone");
    run_and_check(&fixture).await;
}

/// Every `host:port` of a URL's server list.
fn all_addrs(url: &str) -> Vec<SocketAddr> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let hosts = rest.split('/').next().unwrap_or_default();
    hosts.split(',').map(|host| host.parse().unwrap()).collect()
}

/// The fixture of a deployment whose clients follow announced addresses
/// (cluster nodes, the master a sentinel names): with its processes known,
/// each node reaches every server through a proxy of its own, mapped with
/// `address-map`, so that a cut cuts it off for real; without them (external
/// servers), the connection-fault cases are declared n/a.
fn deployment_fixture(
    variant: &'static str,
    url: &str,
    service: Option<Vec<ServiceSpec>>,
    make: fn(Vec<String>) -> RedisConfig,
) -> NetworkFixture {
    let entry = all_addrs(url);
    let Some(specs) = service else {
        let fixture = NetworkFixture::new(
            "redis",
            entry[0],
            None,
            Box::new(move |addr| transport(make(vec![addr.to_string()]))),
        );
        return fixture.variant(variant).clients_bypass_the_proxy();
    };
    let servers: Vec<SocketAddr> = specs.iter().flat_map(|spec| spec.listens.clone()).collect();
    NetworkFixture::through_every_server(
        "redis",
        servers,
        Some(specs),
        Box::new(move |routes| {
            let via = |server: &SocketAddr| {
                routes
                    .iter()
                    .find(|(s, _)| s == server)
                    .map(|(_, proxy)| proxy.to_string())
            };
            let mut config = make(entry.iter().filter_map(via).collect());
            for (server, proxy) in routes {
                config = config.map_address(server.to_string(), proxy.to_string());
            }
            transport(config)
        }),
    )
    .variant(variant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_passes_the_conformance_suite() {
    let Some(url) = server_address("redis", "COORD_REDIS_CLUSTER_URL") else {
        return;
    };
    let _turn = SERVERS.lock().await;
    let service = service_spec("COORD_REDIS_CLUSTER_SERVICE");
    let fixture = deployment_fixture("cluster", &url, service, RedisConfig::cluster);
    run_and_check(&fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_passes_the_conformance_suite() {
    let Some(url) = server_address("redis", "COORD_REDIS_SENTINEL_URL") else {
        return;
    };
    let _turn = SERVERS.lock().await;
    let service = service_spec("COORD_REDIS_SENTINEL_SERVICE");
    let fixture = deployment_fixture("sentinel", &url, service, |sentinels| {
        RedisConfig::sentinel(sentinels, MASTER_NAME)
    });
    run_and_check(&fixture).await;
}

fn node_config(namespace: &Namespace, id: &str) -> NodeConfig {
    let mut config = NodeConfig::new(NodeId::new(id).unwrap());
    config.namespace = namespace.clone();
    config.secret = Some(Secret::new(b"redis-test-secret-of-32-bytes!!!").unwrap());
    config
}

fn fresh_namespace(prefix: &str) -> Namespace {
    Namespace::new(format!("{prefix}{}", std::process::id())).unwrap()
}

/// Waits until `check` holds, failing with `what` after `bound`.
async fn wait_until(what: &str, bound: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {bound:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The events (as numbers) and `Lagged` markers a node received.
#[derive(Clone, Default)]
struct Received2 {
    ids: Arc<std::sync::Mutex<Vec<u64>>>,
    lags: Arc<std::sync::Mutex<Vec<LagReason>>>,
}

impl Received2 {
    fn collect(node: &Node) -> Self {
        let log = Received2::default();
        let (ids, lags) = (log.ids.clone(), log.lags.clone());
        let mut feed = node.subscribe();
        tokio::spawn(async move {
            while let Some(item) = feed.next().await {
                match item {
                    Incoming::Event(delivery) => {
                        if let Event::Custom { payload, .. } = &delivery.event {
                            let id = u64::from_be_bytes(payload[..8].try_into().unwrap());
                            ids.lock().unwrap().push(id);
                        }
                    }
                    Incoming::Lagged(lagged) => lags.lock().unwrap().push(lagged.reason),
                }
            }
        });
        log
    }

    fn ids(&self) -> Vec<u64> {
        self.ids.lock().unwrap().clone()
    }

    fn lags(&self) -> usize {
        self.lags.lock().unwrap().len()
    }
}

fn numbered(id: u64) -> Event {
    Event::custom(1, Bytes::copy_from_slice(&id.to_be_bytes()))
}

/// The address the sentinel names as master now, if it answers.
async fn current_master(sentinel: SocketAddr) -> Option<SocketAddr> {
    let client = redis::Client::open(format!("redis://{sentinel}")).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let (host, port): (String, u16) = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(MASTER_NAME)
        .query_async(&mut conn)
        .await
        .ok()?;
    format!("{host}:{port}").parse().ok()
}

async fn sentinel_node(namespace: &Namespace, id: &str, sentinels: &[String]) -> Node {
    let config = tuned(RedisConfig::sentinel(sentinels.to_vec(), MASTER_NAME));
    let transport = RedisTransport::connect(&config).await.unwrap();
    Node::start(node_config(namespace, id), Arc::new(transport))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_keeps_delivering_five_times_in_a_row() {
    let Some(url) = server_address("redis", "COORD_REDIS_SENTINEL_URL") else {
        return;
    };
    let specs = service_spec("COORD_REDIS_SENTINEL_SERVICE").expect("the failover test needs the sentinel processes");
    let _turn = SERVERS.lock().await;
    let sentinels: Vec<String> = url
        .trim_start_matches("redis+sentinel://")
        .split('/')
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let sentinel = first_addr(&url);
    let namespace = fresh_namespace("failover");
    let sender = sentinel_node(&namespace, "sender", &sentinels).await;
    let receiver = sentinel_node(&namespace, "receiver", &sentinels).await;
    let log = Received2::collect(&receiver);
    let mut next = 0u64;
    let mut report = Vec::new();
    for run in 1..=5 {
        // Traffic flows before the failover.
        let before = next;
        sender.broadcast(numbered(next)).await.unwrap();
        next += 1;
        wait_until("delivery before the failover", Duration::from_secs(20), || {
            log.ids().contains(&before)
        })
        .await;
        let lags_before = log.lags();
        let master = current_master(sentinel).await.expect("the sentinel names a master");
        let victim: &ServiceSpec = specs
            .iter()
            .find(|spec| spec.listens.contains(&master))
            .unwrap_or_else(|| panic!("no process of ours listens on the master {master}"));
        let killed = Instant::now();
        victim.stop().unwrap();
        while current_master(sentinel).await.is_none_or(|now| now == master) {
            assert!(
                killed.elapsed() < Duration::from_secs(30),
                "run {run}: the sentinels promoted no new master within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let promoted = killed.elapsed();
        // Events sent during and after the promotion: the first ones may be
        // lost while no master takes them; the later ones must arrive.
        let after = next + 20;
        let sending = Instant::now();
        while !log.ids().contains(&after) {
            assert!(
                sending.elapsed() < Duration::from_secs(30),
                "run {run}: no delivery through the new master within 30 s"
            );
            let _ = sender.try_broadcast(numbered(next));
            next += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let healed = killed.elapsed();
        assert!(log.lags() > lags_before, "run {run}: no Lagged marked the failover");
        // Health must not be green unless frames flow (delivery stopped after
        // a failover while health stayed green is a known failure of others):
        // once both nodes say Healthy, a fresh event must arrive.
        wait_until("both nodes healthy after the failover", Duration::from_secs(30), || {
            [&sender, &receiver]
                .iter()
                .all(|node| node.health().status == HealthStatus::Healthy)
        })
        .await;
        let probe = next;
        sender.broadcast(numbered(probe)).await.unwrap();
        next += 1;
        wait_until("delivery while both report healthy", Duration::from_secs(10), || {
            log.ids().contains(&probe)
        })
        .await;
        // The old master comes back; the sentinels make it a replica.
        victim.start().unwrap();
        let got = log.ids();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(got, sorted, "run {run}: events out of order");
        report.push(format!(
            "run {run}: promoted after {} ms, delivering again after {} ms",
            promoted.as_millis(),
            healed.as_millis()
        ));
    }
    println!("{}", report.join("\n"));
    sender.shutdown().await.unwrap();
    receiver.shutdown().await.unwrap();
}

/// The redis-server and redis-cli the services use.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let Some(specs) = service_spec("COORD_REDIS_SERVICE") else {
        server_address("redis", "COORD_REDIS_URL")?;
        panic!("COORD_REDIS_SERVICE is not set: these tests need the redis-server binary xtask found");
    };
    let server = specs[0].program.clone();
    let cli = server.with_file_name("redis-cli");
    assert!(cli.is_file(), "{} is missing: install redis-tools", cli.display());
    Some((server, cli))
}

fn redis_server_args(port: u16, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args
}

async fn refused(config: RedisConfig, what: &str) {
    let started = Instant::now();
    let error = RedisTransport::connect(&config).await.expect_err(what);
    let text = error.to_string();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{what}: {text}");
    assert!(!error.is_temporary(), "{what}: {text}");
    assert!(
        text.contains("redis") && text.contains(&config.servers[0]),
        "{what}: {text}"
    );
    assert!(
        !text.contains("right-password") && !text.contains("wrong-password"),
        "{what}: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{what}: took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn acl_users_are_checked_by_the_server() {
    let Some((server, _)) = tools() else {
        return;
    };
    let acl = [
        "--user",
        "coord",
        "on",
        ">right-password",
        "~*",
        "&*",
        "+@all",
        "--user",
        "default",
        "off",
    ];
    let own = TestServer::start("redis-acl", &server, |port| redis_server_args(port, &acl));
    let addr = own.addr().to_string();
    let good = RedisTransport::connect(&tuned(
        RedisConfig::standalone(&addr).user_and_password("coord", "right-password"),
    ))
    .await
    .unwrap();
    let channel = Channel::all(&Namespace::new("aclcheck").unwrap());
    let mut subscription = good.subscribe(&channel).await.unwrap();
    good.publish(&channel, Bytes::from_static(b"hello")).await.unwrap();
    let item = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .unwrap();
    assert_eq!(item, Some(Received::Frame(Bytes::from_static(b"hello"))));
    good.close().await.unwrap();
    refused(
        tuned(RedisConfig::standalone(&addr).user_and_password("coord", "wrong-password")),
        "a wrong password",
    )
    .await;
    refused(tuned(RedisConfig::standalone(&addr)), "no credentials").await;
}

/// `redis-cli -p <port> PUBLISH <channel> <stdin>`.
fn cli_publish(cli: &PathBuf, port: u16, channel: &str, payload: &[u8]) {
    use std::io::Write;
    let mut child = Command::new(cli)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-x", "PUBLISH", channel])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    assert!(child.wait().unwrap().success(), "redis-cli PUBLISH failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_frames_from_redis_cli_are_dropped_and_counted() {
    let Some((server, cli)) = tools() else {
        return;
    };
    let own = TestServer::start("redis-forged", &server, |port| redis_server_args(port, &[]));
    let addr = own.addr();
    let namespace = fresh_namespace("forged");
    let channel = Channel::all(&namespace).to_string();
    // A plain subscriber captures a real frame of the sender to replay it.
    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    let mut spy = client.get_async_pubsub().await.unwrap();
    spy.subscribe(&channel).await.unwrap();
    let config = tuned(RedisConfig::standalone(addr.to_string()));
    let sender = Node::start(
        node_config(&namespace, "sender"),
        Arc::new(RedisTransport::connect(&config).await.unwrap()),
    )
    .await
    .unwrap();
    let receiver = Node::start(
        node_config(&namespace, "receiver"),
        Arc::new(RedisTransport::connect(&config).await.unwrap()),
    )
    .await
    .unwrap();
    let log = Received2::collect(&receiver);
    sender.broadcast(numbered(0)).await.unwrap();
    wait_until("the first event", Duration::from_secs(10), || log.ids() == [0]).await;
    let mut captured = None;
    let mut messages = spy.on_message();
    while captured.is_none() {
        let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .unwrap()
            .unwrap();
        let payload = message.get_payload_bytes().to_vec();
        // The broadcast is the frame that carries the event's payload.
        if payload.windows(8).any(|w| w == 0u64.to_be_bytes()) && payload.len() > 60 {
            captured = Some(payload);
        }
    }
    drop(messages);
    let captured = captured.unwrap();
    cli_publish(&cli, addr.port(), &channel, b"not a coord frame at all");
    cli_publish(&cli, addr.port(), &channel, &captured);
    let mut forged = captured.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    cli_publish(&cli, addr.port(), &channel, &forged);
    wait_until("the forged frames counted", Duration::from_secs(10), || {
        let stats = receiver.stats();
        stats.dropped(DropReason::NotAFrame) >= 1
            && stats.dropped(DropReason::Duplicate) >= 1
            && stats.dropped(DropReason::BadMac) >= 1
    })
    .await;
    sender.broadcast(numbered(1)).await.unwrap();
    wait_until("delivery after the forged frames", Duration::from_secs(10), || {
        log.ids() == [0, 1]
    })
    .await;
    sender.shutdown().await.unwrap();
    receiver.shutdown().await.unwrap();
}
