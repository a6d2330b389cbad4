//! A TCP proxy the suite puts between a node and its server, to cut,
//! blackhole or delay that one node's connection while the server and the
//! other nodes carry on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Bytes flow both ways, each chunk held back by the delay.
    Pass {
        /// Added to every chunk, each way.
        delay: Duration,
    },
    /// Connections stay open but no byte moves either way until the mode
    /// changes (what a paused process or a black-holed route looks like);
    /// what was sent meanwhile flows once it is lifted.
    Blackhole,
    /// Every connection is closed, and new ones are closed at once.
    Cut,
}

/// A running proxy from a loopback port to `upstream`; stops (closing its
/// connections) when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    control: ProxyControl,
    accept: JoinHandle<()>,
}

/// Sets a proxy's mode; a clone outlives the proxy harmlessly.
#[derive(Clone, Debug)]
pub struct ProxyControl(Arc<watch::Sender<ProxyMode>>);

impl ProxyControl {
    /// Switches every connection, current and future, to `mode`.
    pub fn set(&self, mode: ProxyMode) {
        self.0.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.0.borrow()
    }
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, watching) = watch::channel(ProxyMode::Pass { delay: Duration::ZERO });
        let accept = tokio::spawn(accept_loop(listener, upstream, watching));
        Ok(FaultProxy {
            addr,
            control: ProxyControl(Arc::new(mode)),
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that sets this proxy's mode.
    pub fn control(&self) -> ProxyControl {
        self.control.clone()
    }

    /// Switches every connection, current and future, to `mode`.
    pub fn set(&self, mode: ProxyMode) {
        self.control.set(mode);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.control.set(ProxyMode::Cut);
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, mode: watch::Receiver<ProxyMode>) {
    while let Ok((client, _)) = listener.accept().await {
        if *mode.borrow() == ProxyMode::Cut {
            continue;
        }
        let mode = mode.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let up = tokio::spawn(pump(client_read, server_write, mode.clone()));
            let down = tokio::spawn(pump(server_read, client_write, mode));
            let _ = tokio::join!(up, down);
        });
    }
}

/// Copies `from` to `to` as the mode allows; returns when either side
/// closes or the mode turns to `Cut` (dropping both halves closes them).
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<ProxyMode>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let delay = loop {
            match *mode.borrow_and_update() {
                ProxyMode::Cut => return,
                ProxyMode::Pass { delay } => break delay,
                ProxyMode::Blackhole => {}
            }
            if mode.changed().await.is_err() {
                return;
            }
        };
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if *mode.borrow() == ProxyMode::Cut || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        stream.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        match tokio::time::timeout(within, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => Some(buf.to_vec()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn passes_blackholes_delays_and_cuts() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut stream, Duration::from_secs(5)).await.unwrap(), b"ping");

        proxy.set(ProxyMode::Blackhole);
        assert_eq!(
            round_trip(&mut stream, Duration::from_millis(200)).await,
            None,
            "nothing moves"
        );
        proxy.set(ProxyMode::Pass { delay: Duration::ZERO });
        let mut held = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut held))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&held, b"ping", "what was held flows once healed");

        proxy.set(ProxyMode::Pass {
            delay: Duration::from_millis(100),
        });
        let started = std::time::Instant::now();
        round_trip(&mut stream, Duration::from_secs(5)).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200), "delayed each way");

        proxy.set(ProxyMode::Cut);
        let mut buf = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(closed, Ok(0) | Err(_)), "the connection is closed");
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(
            round_trip(&mut fresh, Duration::from_millis(300)).await,
            None,
            "new ones are refused"
        );
        proxy.set(ProxyMode::Pass { delay: Duration::ZERO });
        let mut healed = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut healed, Duration::from_secs(5)).await.unwrap(), b"ping");
    }
}
