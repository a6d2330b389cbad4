//! The Zenoh fixture: in-process peers on loopback, each listening on its
//! own port and reaching every live peer through a proxy of the suite.
//!
//! Network faults (cut, partition, mute) happen in the proxies. Frame loss
//! and silent subscriptions cannot be made on a TCP byte stream without
//! breaking Zenoh's framing, so the fixture injects them at the transport
//! boundary: each transport is wrapped, and the wrapper drops received frames.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use coord_conformance::{ConnId, Connection, Faults, Features, Fixture};
use coord_core::transport::{Capabilities, Channel, Received, Subscription, Transport, TransportHealth};
use coord_core::{Error, ErrorKind, Result, TransportDyn};
use coord_zenoh::{ZenohConfig, ZenohTransport};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use rand::Rng;

use crate::proxy::Proxies;

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

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

struct Peer {
    conn: ConnId,
    port: u16,
    transport: Weak<Faulty>,
}

/// What the wrappers share with the fixture.
struct Shared {
    drop_rate: Mutex<f64>,
    /// Per connection, subscriptions numbered up to this one are silent.
    silenced: Mutex<HashMap<ConnId, u64>>,
    next_subscription: AtomicU64,
    proxies: Proxies,
}

/// Runs the suite on in-process Zenoh peers.
pub(crate) struct ZenohFixture {
    peers: Mutex<Vec<Peer>>,
    next: AtomicU64,
    shared: Arc<Shared>,
}

impl ZenohFixture {
    pub(crate) fn new() -> Self {
        ZenohFixture {
            peers: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
            shared: Arc::new(Shared {
                drop_rate: Mutex::new(0.0),
                silenced: Mutex::new(HashMap::new()),
                next_subscription: AtomicU64::new(0),
                proxies: Proxies::new(),
            }),
        }
    }

    async fn connect_peer(&self) -> Result<Connection> {
        let conn = ConnId(self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let port = free_port();
        let mut connect = Vec::new();
        {
            let mut peers = self.peers.lock().expect("fixture lock");
            peers.retain(|peer| {
                let live = peer.transport.upgrade().is_some_and(|t| !t.inner.is_closed());
                if !live {
                    self.shared.proxies.forget(peer.conn);
                }
                live
            });
            for peer in peers.iter() {
                let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, peer.port));
                let proxy =
                    self.shared.proxies.open(conn, peer.conn, upstream).map_err(|error| {
                        Error::new(ErrorKind::Unexpected, "zenoh fixture", format!("proxy: {error}"))
                    })?;
                connect.push(format!("tcp/127.0.0.1:{proxy}"));
            }
        }
        let transport = ZenohTransport::open(peer_config(Some(port), connect)).await?;
        let faulty = Arc::new(Faulty {
            inner: transport,
            conn,
            shared: self.shared.clone(),
        });
        self.peers.lock().expect("fixture lock").push(Peer {
            conn,
            port,
            transport: Arc::downgrade(&faulty),
        });
        Ok(Connection {
            id: conn,
            transport: faulty,
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
            let config = peer_config(None, vec![format!("tcp/127.0.0.1:{}", free_port())])
                .require_connect(Duration::from_secs(2));
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
        self.shared.proxies.update(|f| {
            f.cut.insert(conn);
        });
    }

    fn mute(&self, conn: ConnId) {
        self.shared.proxies.update(|f| {
            f.muted.insert(conn);
        });
    }

    fn silence(&self, conn: ConnId) {
        let last = self.shared.next_subscription.load(Ordering::SeqCst);
        self.shared.silenced.lock().expect("fixture lock").insert(conn, last);
    }

    fn drop_rate(&self, rate: f64) {
        *self.shared.drop_rate.lock().expect("fixture lock") = rate.clamp(0.0, 1.0);
    }

    fn heal(&self) {
        self.shared.proxies.update(|f| {
            f.cut.clear();
            f.muted.clear();
            f.partitions.clear();
        });
    }
}

/// A [`ZenohTransport`] whose received frames the fixture can drop.
struct Faulty {
    inner: ZenohTransport,
    conn: ConnId,
    shared: Arc<Shared>,
}

impl Transport for Faulty {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn publish(&self, channel: &Channel, frame: Bytes) -> Result<()> {
        self.inner.publish(channel, frame).await
    }

    async fn subscribe(&self, channel: &Channel) -> Result<Subscription> {
        let stream = self.inner.subscribe(channel).await?;
        let id = self.shared.next_subscription.fetch_add(1, Ordering::SeqCst) + 1;
        let (shared, conn) = (self.shared.clone(), self.conn);
        let kept = stream.filter(move |item| {
            let keep = match item {
                Received::Lagged => true,
                Received::Frame(_) => {
                    let silent = shared
                        .silenced
                        .lock()
                        .expect("fixture lock")
                        .get(&conn)
                        .is_some_and(|&last| id <= last);
                    let rate = *shared.drop_rate.lock().expect("fixture lock");
                    let lost = silent || (rate > 0.0 && rand::rng().random_bool(rate));
                    !lost
                }
            };
            futures::future::ready(keep)
        });
        Ok(kept.boxed())
    }

    fn health(&self) -> TransportHealth {
        self.inner.health()
    }

    async fn close(&self) -> Result<()> {
        let closed = self.inner.close().await;
        self.shared.proxies.forget(self.conn);
        closed
    }
}
