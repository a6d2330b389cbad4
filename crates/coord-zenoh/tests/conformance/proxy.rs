//! A TCP proxy per pair of peers, owned by the suite: every Zenoh link of the
//! fixture runs through one, so faults are real network faults. A cut or a
//! partition closes the pair's connections and refuses new ones until
//! healed (Zenoh then reconnects by itself); a mute holds the bytes a node
//! sends, as a paused process would, and releases them on heal.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;

use coord_conformance::ConnId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// What is broken right now.
#[derive(Clone, Debug, Default)]
pub(crate) struct FaultState {
    pub(crate) cut: HashSet<ConnId>,
    pub(crate) muted: HashSet<ConnId>,
    pub(crate) partitions: HashSet<(ConnId, ConnId)>,
}

impl FaultState {
    fn blocked(&self, a: ConnId, b: ConnId) -> bool {
        self.cut.contains(&a) || self.cut.contains(&b) || self.partitions.contains(&(a.min(b), a.max(b)))
    }
}

/// The proxies, on a runtime of their own (so the suite's task and leak
/// counts see only the transports).
pub(crate) struct Proxies {
    runtime: Option<Runtime>,
    faults: watch::Sender<FaultState>,
    running: Mutex<HashMap<ConnId, Vec<JoinHandle<()>>>>,
}

impl Proxies {
    pub(crate) fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("coord-zenoh-proxy")
            .enable_all()
            .build()
            .expect("proxy runtime");
        Proxies {
            runtime: Some(runtime),
            faults: watch::channel(FaultState::default()).0,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the proxy through which `from` reaches `to` (listening at
    /// `upstream`); returns the port `from` connects to.
    pub(crate) fn open(&self, from: ConnId, to: ConnId, upstream: SocketAddr) -> std::io::Result<u16> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let faults = self.faults.subscribe();
        let runtime = self.runtime.as_ref().expect("runtime until drop");
        let task = runtime.spawn(serve(listener, from, to, upstream, faults));
        let mut running = self.running.lock().expect("proxy lock");
        running.entry(from).or_default().push(task);
        Ok(port)
    }

    /// Stops every proxy of `conn` (its transport was closed).
    pub(crate) fn forget(&self, conn: ConnId) {
        let tasks = self.running.lock().expect("proxy lock").remove(&conn);
        for task in tasks.into_iter().flatten() {
            task.abort();
        }
    }

    /// Changes the fault state.
    pub(crate) fn update(&self, change: impl FnOnce(&mut FaultState)) {
        self.faults.send_modify(change);
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    from: ConnId,
    to: ConnId,
    upstream: SocketAddr,
    faults: watch::Receiver<FaultState>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { return };
                if faults.borrow().blocked(from, to) {
                    continue;
                }
                connections.spawn(connection(client, from, to, upstream, faults.clone()));
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn connection(
    client: TcpStream,
    from: ConnId,
    to: ConnId,
    upstream: SocketAddr,
    faults: watch::Receiver<FaultState>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, from, (from, to), faults.clone()) => {}
        () = pump(server_read, client_write, to, (from, to), faults) => {}
    }
}

/// Copies bytes sent by `sender` until either side closes or the pair is blocked.
async fn pump(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    sender: ConnId,
    (a, b): (ConnId, ConnId),
    mut faults: watch::Receiver<FaultState>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            read = read.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = faults.wait_for(|f| f.blocked(a, b)) => return,
        };
        let go = match faults.wait_for(|f| f.blocked(a, b) || !f.muted.contains(&sender)).await {
            Ok(state) => !state.blocked(a, b),
            Err(_) => false,
        };
        if !go || write.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
