//! The fixture of a backend with a real server: each connection goes
//! through its own [`FaultProxy`] (cut, paused) and [`FaultyTransport`]
//! (frame loss, silent subscriptions), and the server itself is stopped and
//! restarted through its [`ServiceSpec`] when one is given.

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

/// What the fixture keeps per connection.
struct Link {
    proxy: ProxyControl,
    silence: Arc<Silence>,
}

/// A [`Fixture`] for a backend whose server listens on one TCP address.
pub struct NetworkFixture {
    backend: &'static str,
    server: SocketAddr,
    service: Option<ServiceSpec>,
    connector: Connector,
    loss: Arc<FrameLoss>,
    links: Mutex<HashMap<ConnId, Link>>,
    next: Mutex<u64>,
}

impl NetworkFixture {
    /// A fixture for `backend`'s server at `server`; `connector` makes a
    /// transport connected to the address it is given (a proxy's). With a
    /// `service`, the fixture can stop and restart the server.
    pub fn new(backend: &'static str, server: SocketAddr, service: Option<ServiceSpec>, connector: Connector) -> Self {
        NetworkFixture {
            backend,
            server,
            service,
            connector,
            loss: Arc::new(FrameLoss::default()),
            links: Mutex::new(HashMap::new()),
            next: Mutex::new(0),
        }
    }

    fn with_links(&self, f: impl FnOnce(&mut HashMap<ConnId, Link>)) {
        f(&mut self.links.lock().expect("fixture lock"));
    }

    fn set_mode(&self, conn: ConnId, mode: ProxyMode) {
        self.with_links(|links| {
            if let Some(link) = links.get(&conn) {
                link.proxy.set(mode);
            }
        });
    }

    fn service(&self) -> Result<ServiceSpec> {
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

    fn features(&self) -> Features {
        Features {
            unreachable_address: true,
            server_control: self.service.is_some(),
            connection_faults: true,
            frame_loss: true,
            silent_subscriptions: true,
        }
    }

    fn connect(&self) -> BoxFuture<'_, Result<Connection>> {
        Box::pin(async move {
            let proxy = FaultProxy::start(self.server)
                .await
                .map_err(|e| io_error("fault proxy", e))?;
            let inner = (self.connector)(proxy.addr()).await?;
            let silence = Arc::new(Silence::default());
            let control = proxy.control();
            let transport = FaultyTransport::new(inner, self.loss.clone(), silence.clone(), Some(Box::new(proxy)));
            let id = {
                let mut next = self.next.lock().expect("fixture lock");
                *next += 1;
                ConnId(*next)
            };
            self.with_links(|links| {
                links.insert(
                    id,
                    Link {
                        proxy: control,
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
            let port = free_port().map_err(|e| io_error("free port", e))?;
            (self.connector)(SocketAddr::from(([127, 0, 0, 1], port))).await
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
            tokio::task::spawn_blocking(move || service.stop())
                .await
                .map_err(|e| Error::new(ErrorKind::Unexpected, "server down", e.to_string()))?
                .map_err(|e| io_error("server down", e))?;
            Ok(())
        })
    }

    fn server_up(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let service = self.service()?;
            tokio::task::spawn_blocking(move || service.start())
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
            for link in links.values() {
                link.proxy.set(ProxyMode::Pass {
                    delay: std::time::Duration::ZERO,
                });
            }
        });
    }
}
