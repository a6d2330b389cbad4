//! The fixture of the in-memory transport: a fresh [`MemoryNetwork`] with
//! every fault hook.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use coord_core::transport::memory::{EndpointId, MemoryNetwork};
use coord_core::{Result, TransportDyn};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::fixture::{ConnId, Connection, Faults, Features, Fixture};

/// Runs the suite on one in-process [`MemoryNetwork`].
pub struct MemoryFixture {
    network: MemoryNetwork,
    endpoints: Mutex<HashMap<ConnId, EndpointId>>,
    next: Mutex<u64>,
}

impl MemoryFixture {
    /// A fixture on a fresh network.
    pub fn new() -> Self {
        MemoryFixture {
            network: MemoryNetwork::new(),
            endpoints: Mutex::new(HashMap::new()),
            next: Mutex::new(0),
        }
    }

    fn endpoint(&self, conn: ConnId) -> Option<EndpointId> {
        self.endpoints.lock().expect("fixture lock").get(&conn).copied()
    }
}

impl Default for MemoryFixture {
    fn default() -> Self {
        MemoryFixture::new()
    }
}

impl Fixture for MemoryFixture {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn features(&self) -> Features {
        Features::all()
    }

    fn connect(&self) -> BoxFuture<'_, Result<Connection>> {
        let transport = self.network.connect();
        let id = {
            let mut next = self.next.lock().expect("fixture lock");
            *next += 1;
            ConnId(*next)
        };
        self.endpoints
            .lock()
            .expect("fixture lock")
            .insert(id, transport.endpoint());
        futures::future::ready(Ok(Connection {
            id,
            transport: Arc::new(transport),
        }))
        .boxed()
    }

    fn connect_unreachable(&self) -> BoxFuture<'_, Result<Arc<dyn TransportDyn>>> {
        // A network nobody serves: the memory transport's "server is down".
        let network = MemoryNetwork::new();
        network.set_down(true);
        let transport: Arc<dyn TransportDyn> = Arc::new(network.connect());
        futures::future::ready(Ok(transport)).boxed()
    }

    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
}

impl Faults for MemoryFixture {
    fn server_down(&self) -> BoxFuture<'_, Result<()>> {
        self.network.set_down(true);
        futures::future::ready(Ok(())).boxed()
    }

    fn server_up(&self) -> BoxFuture<'_, Result<()>> {
        self.network.set_down(false);
        futures::future::ready(Ok(())).boxed()
    }

    fn cut(&self, conn: ConnId) {
        if let Some(endpoint) = self.endpoint(conn) {
            self.network.cut(endpoint);
        }
    }

    fn mute(&self, conn: ConnId) {
        if let Some(endpoint) = self.endpoint(conn) {
            self.network.mute(endpoint);
        }
    }

    fn silence(&self, conn: ConnId) {
        if let Some(endpoint) = self.endpoint(conn) {
            self.network.silence(endpoint);
        }
    }

    fn drop_rate(&self, rate: f64) {
        self.network.set_drop_rate(rate);
    }

    fn heal(&self) {
        self.network.heal();
    }
}
