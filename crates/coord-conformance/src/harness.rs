//! What the cases share: verdicts, clusters of nodes on the backend under
//! test with a ready barrier, logs of what each node received, and polling
//! with a deadline (cases never sleep to wait for a condition).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use coord_core::membership::{DetectorSettings, MembershipConfig};
use coord_core::wire::{self, Body, Envelope};
use coord_core::{
    Channel, Event, Feed, Incoming, MemberEvent, MemberState, Namespace, Node, NodeConfig, NodeId, Profile, Secret,
    TransportDyn,
};
use futures::StreamExt;
use rand::Rng;
use tokio::time::Instant;

use crate::fixture::{ConnId, Faults, Features, Fixture};

/// Why a case did not pass.
#[derive(Debug)]
pub enum Verdict {
    /// The backend broke the contract; the text says how.
    Fail(String),
    /// The backend's harness lacks a feature the case needs; the text names it.
    NotApplicable(String),
}

impl From<coord_core::Error> for Verdict {
    fn from(error: coord_core::Error) -> Self {
        Verdict::Fail(format!("unexpected error: {error}"))
    }
}

/// A case's result: on success, a note for the matrix (what was measured).
pub type CaseResult<T = String> = Result<T, Verdict>;

/// Fails the case with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::harness::Verdict::Fail(format!($($arg)+)));
        }
    };
}
pub(crate) use ensure;

/// The fault hooks, or `n/a` naming the missing `feature`.
pub(crate) fn faults<'a>(fx: &'a dyn Fixture, feature: &str, has: fn(&Features) -> bool) -> CaseResult<&'a dyn Faults> {
    match fx.faults() {
        Some(faults) if has(&fx.features()) => Ok(faults),
        _ => Err(Verdict::NotApplicable(format!(
            "the {} harness declares no `{feature}` feature",
            fx.backend()
        ))),
    }
}

/// A namespace no other run or case uses.
pub(crate) fn fresh_namespace() -> Namespace {
    let n: u64 = rand::rng().random();
    Namespace::new(format!("t{n:016x}")).expect("hex names are valid")
}

/// The suite's node configuration: the `fast` profile and a quick probe.
pub(crate) fn config(namespace: &Namespace, id: &str) -> NodeConfig {
    let mut config =
        NodeConfig::new(NodeId::new(id).expect("case node ids are valid")).with_namespace(namespace.clone());
    config.membership = MembershipConfig::profile(Profile::Fast);
    config.health.probe_interval = Duration::from_millis(200);
    config
}

/// The detector settings nodes of the suite run with.
pub(crate) fn settings() -> DetectorSettings {
    DetectorSettings::of(Profile::Fast)
}

/// The secret of sealed cases (a test value).
pub(crate) fn secret(byte: u8) -> Secret {
    Secret::new([byte; 32]).expect("32 bytes is long enough")
}

/// Everything a stream yielded, collected by a background task.
pub(crate) struct Log<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log {
            items: self.items.clone(),
        }
    }
}

impl<T: Clone + Send + 'static> Log<T> {
    /// Collects `feed` until it ends.
    pub(crate) fn collect(mut feed: Feed<T>) -> Self
    where
        Feed<T>: futures::Stream<Item = T> + Unpin + Send + 'static,
    {
        let log = Log {
            items: Arc::new(Mutex::new(Vec::new())),
        };
        let items = log.items.clone();
        tokio::spawn(async move {
            while let Some(item) = feed.next().await {
                items.lock().expect("log lock").push(item);
            }
        });
        log
    }

    /// A copy of what was collected so far.
    pub(crate) fn items(&self) -> Vec<T> {
        self.items.lock().expect("log lock").clone()
    }

    /// Applies `f` to what was collected so far.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&[T]) -> R) -> R {
        f(&self.items.lock().expect("log lock"))
    }
}

/// One node of a case's cluster, with logs of everything it received.
pub(crate) struct Peer {
    pub(crate) node: Node,
    pub(crate) conn: ConnId,
    pub(crate) received: Log<Incoming>,
    pub(crate) members: Log<MemberEvent>,
}

impl Peer {
    /// Starts a node with `config` on a new connection.
    pub(crate) async fn start(fx: &dyn Fixture, config: NodeConfig) -> CaseResult<Peer> {
        let connection = fx.connect().await?;
        let node = Node::start(config, connection.transport).await?;
        let received = Log::collect(node.subscribe());
        let members = Log::collect(node.member_events());
        Ok(Peer {
            node,
            conn: connection.id,
            received,
            members,
        })
    }

    pub(crate) fn id(&self) -> &NodeId {
        self.node.node_id()
    }

    /// Ids of the custom events received from `from` (all senders if `None`), in order.
    pub(crate) fn ids_from(&self, from: Option<&NodeId>) -> Vec<u64> {
        self.received.with(|items| {
            items
                .iter()
                .filter_map(|item| match item {
                    Incoming::Event(d) if from.is_none_or(|f| *f == d.from) => id_of(&d.event),
                    _ => None,
                })
                .collect()
        })
    }

    /// Membership events about `node` this peer emitted.
    pub(crate) fn events_about(&self, node: &NodeId) -> Vec<MemberEvent> {
        self.members
            .with(|items| items.iter().filter(|e| about(e) == Some(node)).cloned().collect())
    }

    /// Whether this peer sees `node` in `state`.
    pub(crate) fn sees(&self, node: &NodeId, state: MemberState) -> bool {
        self.node.member(node).is_some_and(|m| m.state == state)
    }
}

/// The node a membership event is about.
pub(crate) fn about(event: &MemberEvent) -> Option<&NodeId> {
    match event {
        MemberEvent::Joined { node, .. }
        | MemberEvent::Suspect { node, .. }
        | MemberEvent::Failed { node }
        | MemberEvent::Recovered { node }
        | MemberEvent::Left { node }
        | MemberEvent::Rejoined { node, .. }
        | MemberEvent::Conflict { node, .. } => Some(node),
        _ => None,
    }
}

/// A short name of a membership event's kind.
pub(crate) fn kind(event: &MemberEvent) -> &'static str {
    event.kind()
}

/// Counts `kind` among `events`.
pub(crate) fn count(events: &[MemberEvent], which: &str) -> usize {
    events.iter().filter(|e| kind(e) == which).count()
}

/// Nodes of one namespace started by a case.
pub(crate) struct Cluster {
    pub(crate) namespace: Namespace,
    pub(crate) peers: Vec<Peer>,
}

impl Cluster {
    /// Starts `n` nodes `n0..` in a fresh namespace, each configured by
    /// `tweak`, and waits for the ready barrier.
    pub(crate) async fn start(fx: &dyn Fixture, n: usize, tweak: impl Fn(&mut NodeConfig)) -> CaseResult<Cluster> {
        let namespace = fresh_namespace();
        let mut peers = Vec::with_capacity(n);
        for i in 0..n {
            let mut config = config(&namespace, &format!("n{i}"));
            tweak(&mut config);
            peers.push(Peer::start(fx, config).await?);
        }
        let cluster = Cluster { namespace, peers };
        cluster.ready().await?;
        Ok(cluster)
    }

    /// The ready barrier: every running node sees every other as alive, so
    /// frames flow between every pair end to end.
    pub(crate) async fn ready(&self) -> CaseResult<Duration> {
        wait_for("every node to see every other alive", Duration::from_secs(20), || {
            self.peers.iter().all(|p| {
                self.peers
                    .iter()
                    .filter(|q| q.id() != p.id())
                    .all(|q| p.sees(q.id(), MemberState::Alive))
            })
        })
        .await
    }

    /// Shuts every node down.
    pub(crate) async fn shutdown(self) {
        for peer in &self.peers {
            let _ = peer.node.shutdown().await;
        }
    }
}

/// Polls `cond` every few milliseconds until it holds; fails naming `what`
/// after `timeout`. Returns how long it took.
pub(crate) async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> CaseResult<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            return Err(Verdict::Fail(format!("timed out after {timeout:?} waiting for {what}")));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A custom event carrying `id` (as its kind) and a payload of `len` bytes
/// derived from `id`, so receivers can check it byte for byte.
pub(crate) fn tagged(id: u64, len: usize) -> Event {
    Event::custom(id as u32, payload(id, len))
}

/// The payload [`tagged`] puts in event `id`.
pub(crate) fn payload(id: u64, len: usize) -> Bytes {
    (0..len)
        .map(|i| (id as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

/// The id of an event made by [`tagged`].
pub(crate) fn id_of(event: &Event) -> Option<u64> {
    match event {
        Event::Custom { kind, .. } => Some(u64::from(*kind)),
        _ => None,
    }
}

/// What went wrong with a received id sequence, against `0..n` in order.
pub(crate) fn sequence_problems(got: &[u64], n: u64) -> Option<String> {
    let mut seen = vec![0u32; n as usize];
    let mut out_of_order = Vec::new();
    let mut unexpected = Vec::new();
    let mut last = None;
    for &id in got {
        match seen.get_mut(id as usize) {
            Some(count) => *count += 1,
            None => unexpected.push(id),
        }
        if last.is_some_and(|l| id < l) {
            out_of_order.push(id);
        }
        last = Some(id);
    }
    let missing: Vec<u64> = (0..n).filter(|&i| seen[i as usize] == 0).collect();
    let duplicated: Vec<u64> = (0..n).filter(|&i| seen[i as usize] > 1).collect();
    if missing.is_empty() && duplicated.is_empty() && out_of_order.is_empty() && unexpected.is_empty() {
        return None;
    }
    let show = |v: &[u64]| {
        let head: Vec<String> = v.iter().take(10).map(u64::to_string).collect();
        format!(
            "{} [{}{}]",
            v.len(),
            head.join(", "),
            if v.len() > 10 { ", ..." } else { "" }
        )
    };
    Some(format!(
        "missing {}, duplicated {}, out of order {}, unexpected {}",
        show(&missing),
        show(&duplicated),
        show(&out_of_order),
        show(&unexpected)
    ))
}

/// Publishes hand-made frames on a cluster's channels, as a forger or a
/// broken client would.
pub(crate) struct Injector {
    transport: Arc<dyn TransportDyn>,
    namespace: Namespace,
    sender: NodeId,
    incarnation: u64,
    seq: u64,
}

impl Injector {
    /// An injector on a new connection, posing as node `sender`.
    pub(crate) async fn new(fx: &dyn Fixture, namespace: &Namespace, sender: &str) -> CaseResult<Injector> {
        let connection = fx.connect().await?;
        Ok(Injector {
            transport: connection.transport,
            namespace: namespace.clone(),
            sender: NodeId::new(sender).expect("case node ids are valid"),
            incarnation: 1,
            seq: 0,
        })
    }

    /// The next envelope of the sender's broadcast stream, with sequence
    /// number `seq` (or the next one) and send time `sent_at_ms` (or now).
    pub(crate) fn envelope(&mut self, body: Body, seq: Option<u64>) -> Envelope {
        self.seq = seq.unwrap_or(self.seq + 1);
        Envelope {
            namespace: self.namespace.clone(),
            sender: self.sender.clone(),
            incarnation: self.incarnation,
            seq: self.seq,
            sent_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_millis() as u64,
            body,
        }
    }

    /// Publishes raw bytes on the broadcast channel.
    pub(crate) async fn publish(&self, frame: Bytes) -> CaseResult<()> {
        self.transport
            .publish_dyn(&Channel::all(&self.namespace), frame)
            .await?;
        Ok(())
    }

    /// Encodes `envelope` (sealed with `secret` if given) and publishes it.
    pub(crate) async fn send(&self, envelope: &Envelope, secret: Option<&Secret>) -> CaseResult<()> {
        self.publish(wire::encode(envelope, secret)).await
    }

    /// Closes the injector's connection.
    pub(crate) async fn close(self) {
        let _ = self.transport.close_dyn().await;
    }
}
