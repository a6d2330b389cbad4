//! A Kafka-protocol-aware TCP relay that keeps a client on its path.
//!
//! A Kafka client uses its bootstrap address only to learn the cluster: it
//! then connects to the addresses the brokers *advertise* (in `Metadata` and
//! `FindCoordinator` responses). Behind the suite's per-node fault proxy that
//! would bypass the proxy, so that cutting or pausing it would not touch the
//! node. This relay sits in front of a node's fault proxy and rewrites the
//! advertised address of the broker under test to its own, so that every
//! connection of that node runs through relay → fault proxy → broker; what
//! the fault proxy does to the node's bytes, it does to all of them.
//! Everything else passes byte for byte.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
const METADATA: i16 = 3;
const FIND_COORDINATOR: i16 = 10;
const API_VERSIONS: i16 = 18;
/// The newest `Produce` and `Fetch` versions the relay lets a client use:
/// the last ones before KIP-951's leader-discovery tags (Produce v10, Fetch
/// v16), which carry broker addresses past the rewriting (and which tansu
/// 0.6 fills in a way that crashes librdkafka 2.12 after a broker restart,
/// see the crate docs); Fetch stays at v12, before topic ids.
const CAPS: &[(i16, i16)] = &[(PRODUCE, 9), (FETCH, 12)];
/// Frames larger than this are not Kafka traffic of ours.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// A running relay; stops (closing every connection) when dropped.
pub(crate) struct AdvertisingRelay {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl AdvertisingRelay {
    /// Listens on a free loopback port, forwards to `upstream` (the node's
    /// fault proxy), and advertises itself in place of `broker` (the address
    /// the broker under test advertises).
    pub(crate) async fn start(upstream: SocketAddr, broker: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let rewrite = Arc::new(Rewrite {
            broker_host: broker.ip().to_string(),
            broker_port: i32::from(broker.port()),
            host: addr.ip().to_string(),
            port: i32::from(addr.port()),
        });
        let accept = tokio::spawn(accept_loop(listener, upstream, rewrite, stopped));
        Ok(AdvertisingRelay { addr, stop, accept })
    }

    /// Where the node connects (its bootstrap address).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AdvertisingRelay {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, rewrite: Arc<Rewrite>, stop: watch::Receiver<bool>) {
    while let Ok((client, _)) = listener.accept().await {
        let (rewrite, mut stop) = (rewrite.clone(), stop.clone());
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let pending = Arc::new(Mutex::new(HashMap::new()));
            tokio::select! {
                _ = requests(client_read, server_write, pending.clone()) => {}
                _ = responses(server_read, client_write, pending, rewrite) => {}
                _ = stop.wait_for(|stop| *stop) => {}
            }
        });
    }
}

/// Correlation id → (api key, api version) of the requests in flight.
type Pending = Arc<Mutex<HashMap<i32, (i16, i16)>>>;

async fn read_frame(from: &mut OwnedReadHalf) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len).await.ok()?;
    let len = usize::try_from(i32::from_be_bytes(len)).ok()?;
    if len > MAX_FRAME {
        return None;
    }
    let mut body = vec![0u8; len];
    from.read_exact(&mut body).await.ok()?;
    Some(body)
}

async fn write_frame(to: &mut OwnedWriteHalf, body: &[u8]) -> Option<()> {
    let len = i32::try_from(body.len()).ok()?;
    to.write_all(&len.to_be_bytes()).await.ok()?;
    to.write_all(body).await.ok()
}

/// Client → broker: remembers what each request is, forwards it unchanged.
async fn requests(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, pending: Pending) {
    while let Some(body) = read_frame(&mut from).await {
        if body.len() >= 8 {
            let key = i16::from_be_bytes([body[0], body[1]]);
            let version = i16::from_be_bytes([body[2], body[3]]);
            let correlation = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
            pending.lock().unwrap().insert(correlation, (key, version));
        }
        if write_frame(&mut to, &body).await.is_none() {
            return;
        }
    }
}

/// Broker → client: rewrites the advertised address in `Metadata` and
/// `FindCoordinator` responses, forwards the rest unchanged.
async fn responses(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, pending: Pending, rewrite: Arc<Rewrite>) {
    while let Some(body) = read_frame(&mut from).await {
        let request = (body.len() >= 4)
            .then(|| i32::from_be_bytes([body[0], body[1], body[2], body[3]]))
            .and_then(|correlation| pending.lock().unwrap().remove(&correlation));
        let body = match request {
            Some((METADATA, version)) => rewrite.metadata(&body, version).unwrap_or(body),
            Some((FIND_COORDINATOR, version)) => rewrite.find_coordinator(&body, version).unwrap_or(body),
            Some((API_VERSIONS, version)) => cap_api_versions(&body, version).unwrap_or(body),
            _ => body,
        };
        if write_frame(&mut to, &body).await.is_none() {
            return;
        }
    }
}

/// Which advertised address becomes which.
struct Rewrite {
    broker_host: String,
    broker_port: i32,
    host: String,
    port: i32,
}

/// Copies a response while parsing it, replacing some fields.
struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    flexible: bool,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a [u8], flexible: bool) -> Self {
        Cursor {
            input,
            pos: 0,
            out: Vec::with_capacity(input.len() + 64),
            flexible,
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.input.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(bytes)
    }

    fn copy(&mut self, n: usize) -> Option<()> {
        let bytes = self.take(n)?;
        self.out.extend_from_slice(bytes);
        Some(())
    }

    fn read_i32(&mut self) -> Option<i32> {
        let b = self.take(4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn copy_i32(&mut self) -> Option<i32> {
        let value = self.read_i32()?;
        self.out.extend_from_slice(&value.to_be_bytes());
        Some(value)
    }

    fn read_uvarint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn write_uvarint(&mut self, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.out.push(byte);
                return;
            }
            self.out.push(byte | 0x80);
        }
    }

    fn copy_uvarint(&mut self) -> Option<u64> {
        let value = self.read_uvarint()?;
        self.write_uvarint(value);
        Some(value)
    }

    /// An array's length (compact arrays store length + 1).
    fn copy_array_len(&mut self) -> Option<usize> {
        if self.flexible {
            Some(usize::try_from(self.copy_uvarint()?.checked_sub(1)?).ok()?)
        } else {
            usize::try_from(self.copy_i32()?).ok()
        }
    }

    /// A (nullable) string, as bytes (`None` for null).
    fn read_string(&mut self) -> Option<Option<&'a [u8]>> {
        let len: i64 = if self.flexible {
            self.read_uvarint()? as i64 - 1
        } else {
            let b = self.take(2)?;
            i64::from(i16::from_be_bytes([b[0], b[1]]))
        };
        if len < 0 {
            return Some(None);
        }
        Some(Some(self.take(usize::try_from(len).ok()?)?))
    }

    fn write_string(&mut self, value: Option<&[u8]>) {
        match (value, self.flexible) {
            (None, true) => self.write_uvarint(0),
            (None, false) => self.out.extend_from_slice(&(-1i16).to_be_bytes()),
            (Some(s), true) => {
                self.write_uvarint(s.len() as u64 + 1);
                self.out.extend_from_slice(s);
            }
            (Some(s), false) => {
                self.out.extend_from_slice(&(s.len() as i16).to_be_bytes());
                self.out.extend_from_slice(s);
            }
        }
    }

    fn copy_string(&mut self) -> Option<()> {
        let value = self.read_string()?;
        self.write_string(value);
        Some(())
    }

    fn copy_tagged_fields(&mut self) -> Option<()> {
        if !self.flexible {
            return Some(());
        }
        let count = self.copy_uvarint()?;
        for _ in 0..count {
            self.copy_uvarint()?;
            let size = self.copy_uvarint()?;
            self.copy(usize::try_from(size).ok()?)?;
        }
        Some(())
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&self.input[self.pos..]);
        self.out
    }
}

impl Rewrite {
    /// Copies `host` then `port`, advertising the relay instead of the broker.
    fn endpoint(&self, cursor: &mut Cursor<'_>) -> Option<()> {
        let host = cursor.read_string()?;
        let port = cursor.read_i32()?;
        let ours = host == Some(self.broker_host.as_bytes()) && port == self.broker_port;
        if ours {
            cursor.write_string(Some(self.host.as_bytes()));
            cursor.out.extend_from_slice(&self.port.to_be_bytes());
        } else {
            cursor.write_string(host);
            cursor.out.extend_from_slice(&port.to_be_bytes());
        }
        Some(())
    }

    /// The response header: the correlation id, and tagged fields when flexible.
    fn header(cursor: &mut Cursor<'_>) -> Option<()> {
        cursor.copy(4)?;
        cursor.copy_tagged_fields()
    }

    /// `Metadata` responses: throttle time (v3+), then the brokers
    /// (node id, host, port, rack from v1), then the rest untouched.
    fn metadata(&self, body: &[u8], version: i16) -> Option<Vec<u8>> {
        let mut cursor = Cursor::new(body, version >= 9);
        Self::header(&mut cursor)?;
        if version >= 3 {
            cursor.copy(4)?;
        }
        for _ in 0..cursor.copy_array_len()? {
            cursor.copy(4)?;
            self.endpoint(&mut cursor)?;
            if version >= 1 {
                cursor.copy_string()?;
            }
            cursor.copy_tagged_fields()?;
        }
        Some(cursor.finish())
    }

    /// `FindCoordinator` responses: one coordinator (v0–v3) or an array of
    /// them (v4+).
    fn find_coordinator(&self, body: &[u8], version: i16) -> Option<Vec<u8>> {
        let mut cursor = Cursor::new(body, version >= 3);
        Self::header(&mut cursor)?;
        if version >= 1 {
            cursor.copy(4)?;
        }
        if version < 4 {
            cursor.copy(2)?;
            if version >= 1 {
                cursor.copy_string()?;
            }
            cursor.copy(4)?;
            self.endpoint(&mut cursor)?;
            return Some(cursor.finish());
        }
        for _ in 0..cursor.copy_array_len()? {
            cursor.copy_string()?;
            cursor.copy(4)?;
            self.endpoint(&mut cursor)?;
            cursor.copy(2)?;
            cursor.copy_string()?;
            cursor.copy_tagged_fields()?;
        }
        Some(cursor.finish())
    }
}

/// `ApiVersions` responses (whose header is never flexible): the error
/// code, then (key, min, max) per API, with the maxima of [`CAPS`] lowered.
fn cap_api_versions(body: &[u8], version: i16) -> Option<Vec<u8>> {
    let mut cursor = Cursor::new(body, false);
    cursor.copy(4)?;
    cursor.copy(2)?;
    cursor.flexible = version >= 3;
    for _ in 0..cursor.copy_array_len()? {
        let b = cursor.take(6)?;
        let key = i16::from_be_bytes([b[0], b[1]]);
        let max = i16::from_be_bytes([b[4], b[5]]);
        let capped = CAPS
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(max, |(_, cap)| max.min(*cap));
        cursor.out.extend_from_slice(&b[..4]);
        cursor.out.extend_from_slice(&capped.to_be_bytes());
        cursor.copy_tagged_fields()?;
    }
    Some(cursor.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite() -> Rewrite {
        Rewrite {
            broker_host: "127.0.0.1".into(),
            broker_port: 9092,
            host: "127.0.0.1".into(),
            port: 40000,
        }
    }

    #[test]
    fn flexible_metadata_advertises_the_relay() {
        // Header: correlation 7, no tags; throttle 0; one broker: id 1,
        // "127.0.0.1":9092, rack null, no tags; then a trailing byte.
        let mut body = vec![0, 0, 0, 7, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 10];
        body.extend_from_slice(b"127.0.0.1");
        body.extend_from_slice(&9092i32.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0xAB]);
        let out = rewrite().metadata(&body, 12).unwrap();
        let mut expected = body.clone();
        let at = expected.len() - 7;
        expected[at..at + 4].copy_from_slice(&40000i32.to_be_bytes());
        assert_eq!(out, expected);
    }

    #[test]
    fn api_versions_are_capped_before_leader_discovery() {
        // v3: correlation, error 0, 2 APIs (compact: 3): Fetch 0..17, Metadata 0..12.
        let mut body = vec![0, 0, 0, 1, 0, 0, 3];
        body.extend_from_slice(&[0, 1, 0, 0, 0, 17, 0]);
        body.extend_from_slice(&[0, 3, 0, 0, 0, 12, 0]);
        body.extend_from_slice(&[0, 0, 0, 0, 0]);
        let out = cap_api_versions(&body, 3).unwrap();
        let mut expected = body.clone();
        expected[12] = 12;
        assert_eq!(out, expected);
    }

    #[test]
    fn classic_find_coordinator_advertises_the_relay() {
        // v2: correlation, throttle, error 0, message null, node 1, host, port.
        let mut body = vec![0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1, 0, 9];
        body.extend_from_slice(b"127.0.0.1");
        body.extend_from_slice(&9092i32.to_be_bytes());
        let out = rewrite().find_coordinator(&body, 2).unwrap();
        assert_eq!(&out[out.len() - 4..], &40000i32.to_be_bytes());
        assert_eq!(out.len(), body.len());
    }
}
