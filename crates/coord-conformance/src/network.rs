//! The fixture of a backend with real servers: each connection goes
//! through proxies of its own ([`FaultProxy`]: cut, paused) and [`FaultyTransport`]
//! (frame loss, silent subscriptions), and the server itself is stopped and
//! restarted through its processes' [`ServiceSpec`]s when they are given.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use coord_core::{Error, ErrorKind, Result, TransportDyn};
use futures::future::BoxFuture;

use crate::faulty::{FaultyTransport, FrameLoss, Silence};
use crate::fixture::{ConnId, Connection, Faults, Features, Fixture};
use crate::proxy::{FaultProxy, ProxyControl, ProxyMode};
use crate::service::{ServiceSpec, free_port};

/// Connects a backend transport to a server at the given address.
pub type Connector = Box<dyn Fn(SocketAddr) -> BoxFuture<'static, Result<Arc<dyn TransportDyn>>> + Send + Sync>;

/// Connects a backend transport given, for each server of the deployment,
/// `(server, address to use instead)`: the node's own proxy to it.
pub type RoutedConnector =
    Box<dyn Fn(&[(SocketAddr, SocketAddr)]) -> BoxFuture<'static, Result<Arc<dyn TransportDyn>>> + Send + Sync>;

/// What the fixture keeps per connection.
struct Link {
    proxies: Vec<ProxyControl>,
    silence: Arc<Silence>,
}

/// A [`Fixture`] for a backend whose server listens on one TCP address.
pub struct NetworkFixture {
    backend: &'static str,
    variant: Option<&'static str>,
    /// Whether every connection runs through the proxy (false when the
    /// client finds further addresses by itself and bypasses it).
    proxied: bool,
    /// The servers a node talks to, each through a proxy of its own.
    servers: Vec<SocketAddr>,
    service: Option<Vec<ServiceSpec>>,
    connector: RoutedConnector,
    loss: Arc<FrameLoss>,
    links: Mutex<HashMap<ConnId, Link>>,
    next: Mutex<u64>,
}

impl NetworkFixture {
    /// A fixture for `backend`'s server at `server`; `connector` makes a
    /// transport connected to the address it is given (a proxy's). With the
    /// server's processes (`service`), the fixture can stop (all, last
    /// first) and restart (all, in order) the server.
    pub fn new(
        backend: &'static str,
        server: SocketAddr,
        service: Option<Vec<ServiceSpec>>,
        connector: Connector,
    ) -> Self {
        let connector: RoutedConnector = Box::new(move |routes| connector(routes[0].1));
        NetworkFixture::through_every_server(backend, vec![server], service, connector)
    }

    /// A fixture for a deployment of several servers (`servers`), whose
    /// clients connect to addresses the servers announce: each node gets a
    /// proxy to every server, and `connector` is told which proxy stands for
    /// which server (the backend maps announced addresses to them), so that
    /// cutting a node cuts all of its connections.
    pub fn through_every_server(
        backend: &'static str,
        servers: Vec<SocketAddr>,
        service: Option<Vec<ServiceSpec>>,
        connector: RoutedConnector,
    ) -> Self {
        NetworkFixture {
            backend,
            variant: None,
            proxied: true,
            servers,
            service,
            connector,
            loss: Arc::new(FrameLoss::default()),
            links: Mutex::new(HashMap::new()),
            next: Mutex::new(0),
        }
    }

    /// Names the deployment (`cluster`, `sentinel`, …) in the report.
    pub fn variant(mut self, variant: &'static str) -> Self {
        self.variant = Some(variant);
        self
    }

    /// Declares that cutting or pausing the proxy does not cut the node off:
    /// its client connects to further addresses the servers announce (cluster
    /// nodes, the master named by sentinels), so the cases that need
    /// `connection_faults` report `n/a` instead of testing nothing.
    pub fn clients_bypass_the_proxy(mut self) -> Self {
        self.proxied = false;
        self
    }

    fn with_links(&self, f: impl FnOnce(&mut HashMap<ConnId, Link>)) {
        f(&mut self.links.lock().expect("fixture lock"));
    }

    fn set_mode(&self, conn: ConnId, mode: ProxyMode) {
        self.with_links(|links| {
            for proxy in links.get(&conn).into_iter().flat_map(|link| &link.proxies) {
                proxy.set(mode);
            }
        });
    }

    fn service(&self) -> Result<Vec<ServiceSpec>> {
        self.service.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                "fixture",
                format!("the {} fixture has no service to control", self.backend),
            )
        })
    }
}

fn io_error(operation: &'static str, error: std::io::Error) -> Error {
    Error::new(ErrorKind::Unexpected, operation, error.to_string())
}

impl Fixture for NetworkFixture {
    fn backend(&self) -> &'static str {
        self.backend
    }

    fn variant(&self) -> Option<&'static str> {
        self.variant
    }

    fn features(&self) -> Features {
        Features {
            unreachable_address: true,
            server_control: self.service.is_some(),
            connection_faults: self.proxied,
            frame_loss: true,
            silent_subscriptions: true,
        }
    }

    fn connect(&self) -> BoxFuture<'_, Result<Connection>> {
        Box::pin(async move {
            let mut proxies = Vec::with_capacity(self.servers.len());
            for server in &self.servers {
                proxies.push(
                    FaultProxy::start(*server)
                        .await
                        .map_err(|e| io_error("fault proxy", e))?,
                );
            }
            let routes: Vec<(SocketAddr, SocketAddr)> = self
                .servers
                .iter()
                .zip(&proxies)
                .map(|(server, proxy)| (*server, proxy.addr()))
                .collect();
            let inner = (self.connector)(&routes).await?;
            let silence = Arc::new(Silence::default());
            let controls = proxies.iter().map(FaultProxy::control).collect();
            let transport = FaultyTransport::new(inner, self.loss.clone(), silence.clone(), Some(Box::new(proxies)));
            let id = {
                let mut next = self.next.lock().expect("fixture lock");
                *next += 1;
                ConnId(*next)
            };
            self.with_links(|links| {
                links.insert(
                    id,
                    Link {
                        proxies: controls,
                        silence,
                    },
                );
            });
            Ok(Connection {
                id,
                transport: Arc::new(transport),
            })
        })
    }

    fn connect_unreachable(&self) -> BoxFuture<'_, Result<Arc<dyn TransportDyn>>> {
        Box::pin(async move {
            let mut routes = Vec::with_capacity(self.servers.len());
            for server in &self.servers {
                let port = free_port().map_err(|e| io_error("free port", e))?;
                routes.push((*server, SocketAddr::from(([127, 0, 0, 1], port))));
            }
            (self.connector)(&routes).await
        })
    }

    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
}

impl Faults for NetworkFixture {
    fn server_down(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let service = self.service()?;
            tokio::task::spawn_blocking(move || service.iter().rev().try_for_each(|spec| spec.stop().map(drop)))
                .await
                .map_err(|e| Error::new(ErrorKind::Unexpected, "server down", e.to_string()))?
                .map_err(|e| io_error("server down", e))?;
            Ok(())
        })
    }

    fn server_up(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let service = self.service()?;
            tokio::task::spawn_blocking(move || service.iter().try_for_each(|spec| spec.start().map(drop)))
                .await
                .map_err(|e| Error::new(ErrorKind::Unexpected, "server up", e.to_string()))?
                .map_err(|e| io_error("server up", e))?;
            Ok(())
        })
    }

    fn cut(&self, conn: ConnId) {
        self.set_mode(conn, ProxyMode::Cut);
    }

    fn mute(&self, conn: ConnId) {
        self.set_mode(conn, ProxyMode::Blackhole);
    }

    fn silence(&self, conn: ConnId) {
        self.with_links(|links| {
            if let Some(link) = links.get(&conn) {
                link.silence.silence_current();
            }
        });
    }

    fn drop_rate(&self, rate: f64) {
        self.loss.set(rate);
    }

    fn heal(&self) {
        self.with_links(|links| {
            for proxy in links.values().flat_map(|link| &link.proxies) {
                proxy.set(ProxyMode::Pass {
                    delay: std::time::Duration::ZERO,
                });
            }
        });
    }
}
