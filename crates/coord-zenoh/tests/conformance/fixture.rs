//! The Zenoh fixture: in-process peers on loopback, each listening on its
//! own port and reaching every live peer through a [`FaultProxy`] of the
//! suite, one per pair.
//!
//! Network faults (cut, mute) switch the proxies of a node's pairs. Frame
//! loss and silent subscriptions cannot be made on a TCP byte stream without
//! breaking Zenoh's framing, so the fixture injects them at the transport
//! boundary with the suite's [`FaultyTransport`].

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use coord_conformance::proxy::{FaultProxy, ProxyControl, ProxyMode};
use coord_conformance::service::free_port;
use coord_conformance::{ConnId, Connection, Faults, FaultyTransport, Features, Fixture, FrameLoss, Silence};
use coord_core::{Error, ErrorKind, Result, TransportDyn};
use coord_zenoh::{ZenohConfig, ZenohTransport};
use futures::FutureExt;
use futures::future::BoxFuture;

/// The configuration of a fixture peer: loopback only, no scouting, quick
/// reconnects and a short lease.
fn peer_config(listen_port: Option<u16>, connect: Vec<String>) -> ZenohConfig {
    ZenohConfig::new()
        .listen(listen_port.map(|port| format!("tcp/127.0.0.1:{port}")))
        .connect(connect)
        .multicast_scouting(false)
        .gossip(false)
        .retry(Duration::from_millis(50), Duration::from_millis(400))
        .lease(Duration::from_secs(1))
}

fn fixture_error(what: &str, error: std::io::Error) -> Error {
    Error::new(ErrorKind::Unexpected, "zenoh fixture", format!("{what}: {error}"))
}

/// A live peer of the fixture.
struct Peer {
    conn: ConnId,
    port: u16,
    transport: Weak<ZenohTransport>,
    silence: Arc<Silence>,
}

/// The proxy one pair of peers talks through.
struct Link {
    ends: (ConnId, ConnId),
    proxy: ProxyControl,
}

#[derive(Default)]
struct State {
    peers: Vec<Peer>,
    links: Vec<Link>,
}

impl State {
    /// Forgets peers whose transport was closed, and their links.
    fn prune(&mut self) {
        self.peers
            .retain(|peer| peer.transport.upgrade().is_some_and(|t| !t.is_closed()));
        let live: Vec<ConnId> = self.peers.iter().map(|peer| peer.conn).collect();
        self.links
            .retain(|link| live.contains(&link.ends.0) && live.contains(&link.ends.1));
    }

    /// Switches every link of `conn` (or every link, for `None`) to `mode`.
    fn set(&self, conn: Option<ConnId>, mode: ProxyMode) {
        let touches = |link: &&Link| conn.is_none_or(|conn| link.ends.0 == conn || link.ends.1 == conn);
        for link in self.links.iter().filter(touches) {
            link.proxy.set(mode);
        }
    }
}

/// Runs the suite on in-process Zenoh peers.
pub(crate) struct ZenohFixture {
    state: Mutex<State>,
    next: AtomicU64,
    loss: Arc<FrameLoss>,
}

impl ZenohFixture {
    pub(crate) fn new() -> Self {
        ZenohFixture {
            state: Mutex::new(State::default()),
            next: AtomicU64::new(0),
            loss: Arc::new(FrameLoss::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fixture lock")
    }

    async fn connect_peer(&self) -> Result<Connection> {
        let conn = ConnId(self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let port = free_port().map_err(|e| fixture_error("free port", e))?;
        let upstreams: Vec<(ConnId, u16)> = {
            let mut state = self.state();
            state.prune();
            state.peers.iter().map(|peer| (peer.conn, peer.port)).collect()
        };
        // The new peer reaches each live one through a proxy of its own,
        // which its transport owns and stops when closed.
        let mut proxies = Vec::new();
        let mut links = Vec::new();
        for (other, other_port) in upstreams {
            let proxy = FaultProxy::start(SocketAddr::from((Ipv4Addr::LOCALHOST, other_port)))
                .await
                .map_err(|e| fixture_error("fault proxy", e))?;
            links.push(Link {
                ends: (conn, other),
                proxy: proxy.control(),
            });
            proxies.push(proxy);
        }
        let connect = proxies.iter().map(|proxy| format!("tcp/{}", proxy.addr())).collect();
        let zenoh = Arc::new(ZenohTransport::open(peer_config(Some(port), connect)).await?);
        let silence = Arc::new(Silence::default());
        let transport = Arc::downgrade(&zenoh);
        let faulty = FaultyTransport::new(zenoh, self.loss.clone(), silence.clone(), Some(Box::new(proxies)));
        let mut state = self.state();
        state.peers.push(Peer {
            conn,
            port,
            transport,
            silence,
        });
        state.links.extend(links);
        Ok(Connection {
            id: conn,
            transport: Arc::new(faulty),
        })
    }
}

impl Fixture for ZenohFixture {
    fn backend(&self) -> &'static str {
        coord_zenoh::BACKEND
    }

    fn features(&self) -> Features {
        let mut features = Features::all();
        // Peers talk to each other: there is no server to stop.
        features.server_control = false;
        features
    }

    fn connect(&self) -> BoxFuture<'_, Result<Connection>> {
        self.connect_peer().boxed()
    }

    fn connect_unreachable(&self) -> BoxFuture<'_, Result<Arc<dyn TransportDyn>>> {
        async {
            let port = free_port().map_err(|e| fixture_error("free port", e))?;
            let config =
                peer_config(None, vec![format!("tcp/127.0.0.1:{port}")]).require_connect(Duration::from_secs(2));
            let transport: Arc<dyn TransportDyn> = Arc::new(ZenohTransport::open(config).await?);
            Ok(transport)
        }
        .boxed()
    }

    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
}

impl Faults for ZenohFixture {
    fn server_down(&self) -> BoxFuture<'_, Result<()>> {
        futures::future::ready(Err(Error::new(
            ErrorKind::Unexpected,
            "zenoh fixture",
            "there is no server in a peer-to-peer cluster",
        )))
        .boxed()
    }

    fn server_up(&self) -> BoxFuture<'_, Result<()>> {
        self.server_down()
    }

    fn cut(&self, conn: ConnId) {
        self.state().set(Some(conn), ProxyMode::Cut);
    }

    fn mute(&self, conn: ConnId) {
        self.state().set(Some(conn), ProxyMode::Blackhole);
    }

    fn silence(&self, conn: ConnId) {
        let state = self.state();
        if let Some(peer) = state.peers.iter().find(|peer| peer.conn == conn) {
            peer.silence.silence_current();
        }
    }

    fn drop_rate(&self, rate: f64) {
        self.loss.set(rate);
    }

    fn heal(&self) {
        self.state().set(None, ProxyMode::Pass { delay: Duration::ZERO });
    }
}
