//! The in-memory transport: many nodes in one process, with injectable faults.
//!
//! A [`MemoryNetwork`] plays the broker; each [`MemoryTransport`] is one node's
//! connection to it. Faults (frame loss, delay, partitions, outages, cut or
//! silent connections) are switched on the network, so tests can reproduce
//! what real networks do to the engine.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use super::{Capabilities, Channel, Received, Subscription, Transport, TransportHealth};
use crate::error::{Error, ErrorKind, Result};

/// Largest frame the memory transport carries by default (as NATS and Kafka).
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
/// Frames buffered per subscription by default before it overflows.
pub const DEFAULT_SUBSCRIPTION_CAPACITY: usize = 8192;

/// Identifies one connection to a [`MemoryNetwork`], for fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(u64);

/// The in-process broker that [`MemoryTransport`]s connect to.
#[derive(Clone)]
pub struct MemoryNetwork {
    inner: Arc<Network>,
}

struct Network {
    state: Mutex<State>,
    max_payload: usize,
    capacity: usize,
    dropped: AtomicU64,
}

#[derive(Default)]
struct State {
    channels: HashMap<String, Vec<Sub>>,
    next_id: u64,
    drop_rate: f64,
    delay: Duration,
    /// The whole network is down (as a stopped server).
    down: bool,
    /// Pairs of endpoints that cannot reach each other, smaller id first.
    partitions: HashSet<(EndpointId, EndpointId)>,
    /// Endpoints whose connection is cut: they can neither send nor receive.
    cut: HashSet<EndpointId>,
    /// Endpoints whose outgoing frames vanish (a paused or muted node).
    muted: HashSet<EndpointId>,
    /// Subscriptions that look connected but deliver nothing.
    silenced: HashSet<u64>,
    reconnects: HashMap<EndpointId, u64>,
    since: HashMap<EndpointId, SystemTime>,
}

struct Sub {
    id: u64,
    endpoint: EndpointId,
    tx: mpsc::Sender<(Instant, Received)>,
    /// A frame was lost for lack of room; report `Lagged` before the next one.
    lost: Arc<AtomicBool>,
}

impl Sub {
    /// Queues `item`, preceded by a `Lagged` marker if frames were lost since
    /// the last successful delivery.
    fn offer(&self, at: Instant, item: Received) -> bool {
        if self.lost.load(Ordering::Relaxed) {
            if self.tx.capacity() < 2 {
                return false;
            }
            self.lost.store(false, Ordering::Relaxed);
            // Room for two was checked, and only this network sends.
            let _ = self.tx.try_send((at, Received::Lagged));
        }
        match self.tx.try_send((at, item)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lost.store(true, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

fn registry() -> &'static Mutex<HashMap<String, Weak<Network>>> {
    static NAMED: OnceLock<Mutex<HashMap<String, Weak<Network>>>> = OnceLock::new();
    NAMED.get_or_init(Default::default)
}

impl Default for MemoryNetwork {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryNetwork {
    /// A new, private network with default limits.
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_PAYLOAD, DEFAULT_SUBSCRIPTION_CAPACITY)
    }

    /// A new network carrying frames up to `max_payload` bytes, buffering up
    /// to `capacity` frames per subscription.
    pub fn with_limits(max_payload: usize, capacity: usize) -> Self {
        MemoryNetwork {
            inner: Arc::new(Network {
                state: Mutex::new(State::default()),
                max_payload,
                capacity: capacity.max(2),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// The process-wide network called `name` (what `memory://name` means):
    /// every call with the same name while one is alive returns the same network.
    pub fn named(name: &str) -> Self {
        let mut named = registry().lock().expect("registry lock");
        if let Some(inner) = named.get(name).and_then(Weak::upgrade) {
            return MemoryNetwork { inner };
        }
        let network = MemoryNetwork::new();
        named.insert(name.to_owned(), Arc::downgrade(&network.inner));
        named.retain(|_, weak| weak.strong_count() > 0);
        network
    }

    /// A new connection to this network.
    pub fn connect(&self) -> MemoryTransport {
        let mut state = self.state();
        state.next_id += 1;
        let endpoint = EndpointId(state.next_id);
        state.since.insert(endpoint, SystemTime::now());
        MemoryTransport {
            network: self.inner.clone(),
            endpoint,
            closed: AtomicBool::new(false),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("memory network lock")
    }

    /// Drops each frame with probability `rate` (0.0 to 1.0), independently.
    pub fn set_drop_rate(&self, rate: f64) {
        self.state().drop_rate = rate.clamp(0.0, 1.0);
    }

    /// Delays every frame by `delay` (order is kept).
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// Takes the whole network down (as a stopped server) or brings it back;
    /// on the way back every subscription reports `Lagged`.
    pub fn set_down(&self, down: bool) {
        let mut state = self.state();
        if state.down == down {
            return;
        }
        state.down = down;
        let now = SystemTime::now();
        for since in state.since.values_mut() {
            *since = now;
        }
        if !down {
            let endpoints: Vec<EndpointId> = state.since.keys().copied().collect();
            for endpoint in endpoints {
                Self::reconnected(&mut state, endpoint);
            }
        }
    }

    /// Frames between `a` and `b` vanish, both ways.
    pub fn partition(&self, a: EndpointId, b: EndpointId) {
        self.state().partitions.insert((a.min(b), a.max(b)));
    }

    /// Cuts `endpoint`'s connection: it can neither publish nor receive, and
    /// its health says so.
    pub fn cut(&self, endpoint: EndpointId) {
        let mut state = self.state();
        state.cut.insert(endpoint);
        state.since.insert(endpoint, SystemTime::now());
    }

    /// Makes `endpoint`'s outgoing frames vanish silently (a paused node).
    pub fn mute(&self, endpoint: EndpointId) {
        self.state().muted.insert(endpoint);
    }

    /// Makes `endpoint`'s current subscriptions deliver nothing while they
    /// look healthy (a silent subscription); new subscriptions work.
    pub fn silence(&self, endpoint: EndpointId) {
        let mut state = self.state();
        let ids: Vec<u64> = state
            .channels
            .values()
            .flatten()
            .filter(|sub| sub.endpoint == endpoint)
            .map(|sub| sub.id)
            .collect();
        state.silenced.extend(ids);
    }

    /// Removes every partition, cut and mute; cut endpoints reconnect and
    /// report `Lagged`. Loss, delay and outage settings stay.
    pub fn heal(&self) {
        let mut state = self.state();
        state.partitions.clear();
        state.muted.clear();
        let cut: Vec<EndpointId> = state.cut.drain().collect();
        for endpoint in cut {
            Self::reconnected(&mut state, endpoint);
        }
    }

    fn reconnected(state: &mut State, endpoint: EndpointId) {
        *state.reconnects.entry(endpoint).or_default() += 1;
        state.since.insert(endpoint, SystemTime::now());
        let now = Instant::now();
        for sub in state.channels.values().flatten() {
            if sub.endpoint == endpoint && !sub.offer(now, Received::Lagged) {
                sub.lost.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Frames this network dropped: injected loss, partitions, cuts and full
    /// subscription buffers.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

/// One node's connection to a [`MemoryNetwork`].
pub struct MemoryTransport {
    network: Arc<Network>,
    endpoint: EndpointId,
    closed: AtomicBool,
}

impl MemoryTransport {
    /// This connection's id on its network, for fault injection.
    pub fn endpoint(&self) -> EndpointId {
        self.endpoint
    }

    fn unavailable(&self, operation: &'static str, state: &State) -> Option<Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Some(Error::closed(operation));
        }
        if state.down || state.cut.contains(&self.endpoint) {
            return Some(Error::new(ErrorKind::Unavailable, operation, "memory network is down").temporary());
        }
        None
    }
}

impl Transport for MemoryTransport {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("memory", self.network.max_payload)
    }

    async fn publish(&self, channel: &Channel, frame: Bytes) -> Result<()> {
        if frame.len() > self.network.max_payload {
            return Err(Error::new(
                ErrorKind::TooLarge,
                "memory publish",
                format!(
                    "frame of {} bytes exceeds max payload {}",
                    frame.len(),
                    self.network.max_payload
                ),
            ));
        }
        let state = self.network.state.lock().expect("memory network lock");
        if let Some(error) = self.unavailable("memory publish", &state) {
            return Err(error);
        }
        let Some(subs) = state.channels.get(&channel.to_string()) else {
            return Ok(());
        };
        let at = Instant::now() + state.delay;
        let mut rng = rand::rng();
        let muted = state.muted.contains(&self.endpoint);
        let mut dropped = 0;
        for sub in subs {
            let pair = (self.endpoint.min(sub.endpoint), self.endpoint.max(sub.endpoint));
            let lost = muted
                || state.cut.contains(&sub.endpoint)
                || state.silenced.contains(&sub.id)
                || state.partitions.contains(&pair)
                || (state.drop_rate > 0.0 && rng.random_bool(state.drop_rate));
            if lost || !sub.offer(at, Received::Frame(frame.clone())) {
                dropped += 1;
            }
        }
        self.network.dropped.fetch_add(dropped, Ordering::Relaxed);
        Ok(())
    }

    async fn subscribe(&self, channel: &Channel) -> Result<Subscription> {
        let mut state = self.network.state.lock().expect("memory network lock");
        if let Some(error) = self.unavailable("memory subscribe", &state) {
            return Err(error);
        }
        state.next_id += 1;
        let (tx, rx) = mpsc::channel(self.network.capacity);
        let sub = Sub {
            id: state.next_id,
            endpoint: self.endpoint,
            tx,
            lost: Arc::new(AtomicBool::new(false)),
        };
        state.channels.entry(channel.to_string()).or_default().push(sub);
        Ok(Box::pin(MemorySubscription { rx, delayed: None }))
    }

    fn health(&self) -> TransportHealth {
        let state = self.network.state.lock().expect("memory network lock");
        let reconnects = state.reconnects.get(&self.endpoint).copied().unwrap_or(0);
        let since = state
            .since
            .get(&self.endpoint)
            .copied()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        match self.unavailable("memory health", &state) {
            None => TransportHealth::up(reconnects, since),
            Some(error) => TransportHealth::down(error.message(), reconnects, since),
        }
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Relaxed);
        let mut state = self.network.state.lock().expect("memory network lock");
        for subs in state.channels.values_mut() {
            subs.retain(|sub| sub.endpoint != self.endpoint);
        }
        state.channels.retain(|_, subs| !subs.is_empty());
        Ok(())
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        if let Ok(mut state) = self.network.state.lock() {
            for subs in state.channels.values_mut() {
                subs.retain(|sub| sub.endpoint != self.endpoint);
            }
            state.since.remove(&self.endpoint);
            state.reconnects.remove(&self.endpoint);
        }
    }
}

/// A subscription's stream: frames in order, each released at its delivery time.
struct MemorySubscription {
    rx: mpsc::Receiver<(Instant, Received)>,
    delayed: Option<(Pin<Box<Sleep>>, Received)>,
}

impl Stream for MemorySubscription {
    type Item = Received;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Received>> {
        loop {
            if let Some((sleep, _)) = &mut self.delayed {
                ready!(sleep.as_mut().poll(cx));
                let (_, item) = self.delayed.take().expect("delayed item present");
                return Poll::Ready(Some(item));
            }
            match ready!(self.rx.poll_recv(cx)) {
                None => return Poll::Ready(None),
                Some((at, item)) if at <= Instant::now() => return Poll::Ready(Some(item)),
                Some((at, item)) => {
                    self.delayed = Some((Box::pin(tokio::time::sleep_until(at)), item));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::identity::{Namespace, NodeId};

    fn channels() -> (Channel, Channel) {
        let ns = Namespace::new("t").unwrap();
        (Channel::all(&ns), Channel::node(&ns, &NodeId::new("b").unwrap()))
    }

    #[tokio::test]
    async fn delivers_to_every_subscription_including_own() {
        let net = MemoryNetwork::new();
        let (a, b) = (net.connect(), net.connect());
        let (all, _) = channels();
        let mut sa = a.subscribe(&all).await.unwrap();
        let mut sb = b.subscribe(&all).await.unwrap();
        a.publish(&all, Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(sa.next().await, Some(Received::Frame(Bytes::from_static(b"x"))));
        assert_eq!(sb.next().await, Some(Received::Frame(Bytes::from_static(b"x"))));
    }

    #[tokio::test]
    async fn overflow_is_reported_as_lagged_at_the_point_of_loss() {
        let net = MemoryNetwork::with_limits(1024, 2);
        let a = net.connect();
        let (all, _) = channels();
        let mut sub = a.subscribe(&all).await.unwrap();
        for i in 0..4u8 {
            a.publish(&all, Bytes::from(vec![i])).await.unwrap();
        }
        assert_eq!(sub.next().await, Some(Received::Frame(Bytes::from(vec![0]))));
        assert_eq!(sub.next().await, Some(Received::Frame(Bytes::from(vec![1]))));
        a.publish(&all, Bytes::from(vec![9])).await.unwrap();
        assert_eq!(sub.next().await, Some(Received::Lagged));
        assert_eq!(sub.next().await, Some(Received::Frame(Bytes::from(vec![9]))));
        assert_eq!(net.dropped(), 2);
    }

    #[tokio::test]
    async fn outage_fails_publish_and_reports_lagged_after() {
        let net = MemoryNetwork::new();
        let a = net.connect();
        let (all, _) = channels();
        let mut sub = a.subscribe(&all).await.unwrap();
        net.set_down(true);
        let err = a.publish(&all, Bytes::new()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_temporary());
        assert!(!a.health().connected);
        net.set_down(false);
        assert!(a.health().connected);
        a.publish(&all, Bytes::new()).await.unwrap();
        assert_eq!(sub.next().await, Some(Received::Lagged));
        assert_eq!(sub.next().await, Some(Received::Frame(Bytes::new())));
    }

    #[tokio::test]
    async fn partition_cut_and_silence_drop_frames() {
        let net = MemoryNetwork::new();
        let (a, b) = (net.connect(), net.connect());
        let (all, _) = channels();
        let mut sb = b.subscribe(&all).await.unwrap();
        net.partition(a.endpoint(), b.endpoint());
        a.publish(&all, Bytes::from_static(b"lost")).await.unwrap();
        net.heal();
        net.silence(b.endpoint());
        a.publish(&all, Bytes::from_static(b"silenced")).await.unwrap();
        let mut fresh = b.subscribe(&all).await.unwrap();
        a.publish(&all, Bytes::from_static(b"ok")).await.unwrap();
        assert_eq!(fresh.next().await, Some(Received::Frame(Bytes::from_static(b"ok"))));
        b.close().await.unwrap();
        assert_eq!(
            sb.next().await,
            None,
            "closing ends the stream without delivering lost frames"
        );
    }

    #[tokio::test]
    async fn close_ends_streams_and_refuses_publish() {
        let net = MemoryNetwork::new();
        let a = net.connect();
        let (_, node) = channels();
        let mut sub = a.subscribe(&node).await.unwrap();
        a.close().await.unwrap();
        a.close().await.unwrap();
        assert_eq!(sub.next().await, None);
        assert_eq!(
            a.publish(&node, Bytes::new()).await.unwrap_err().kind(),
            ErrorKind::Closed
        );
    }

    #[tokio::test(start_paused = true)]
    async fn delay_keeps_order() {
        let net = MemoryNetwork::new();
        let a = net.connect();
        let (all, _) = channels();
        let mut sub = a.subscribe(&all).await.unwrap();
        net.set_delay(Duration::from_millis(50));
        let start = Instant::now();
        a.publish(&all, Bytes::from_static(b"1")).await.unwrap();
        a.publish(&all, Bytes::from_static(b"2")).await.unwrap();
        assert_eq!(sub.next().await, Some(Received::Frame(Bytes::from_static(b"1"))));
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(sub.next().await, Some(Received::Frame(Bytes::from_static(b"2"))));
    }
}
