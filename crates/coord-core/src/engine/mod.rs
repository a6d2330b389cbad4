//! The engine: one [`Node`] per process, written once above every transport.
//!
//! ```text
//! broadcast / send_to ──► outbox (bounded) ──► batcher ──► seal ──► Transport::publish
//! Transport::subscribe ──► inbox: open ──► drop own ──► sequence check ──► fan-out
//!                                  └──► membership (heartbeats, leave) ──► MemberEvent
//! ```

mod config;
pub(crate) mod fanout;
mod frames;
mod health;
mod inbox;
mod incoming;
mod outbox;
mod sequence;
mod stats;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use config::{BatchConfig, HealthConfig, InboxConfig, NodeConfig, OutboxConfig};
pub use fanout::{Feed, Missed};
pub use frames::{AcceptedFrame, FrameContent, FrameReport, RejectedFrame};
pub use health::{Health, HealthStatus};
pub use incoming::{Delivery, Incoming, LagReason, Lagged};
pub use stats::{DropReason, StatsSnapshot};

use self::fanout::Fanout;
use self::health::ProbeState;
use self::inbox::{Inbox, InboxTiming, Outlets};
use self::outbox::{FRAME_OVERHEAD, Outbox, OutboxTiming, Outgoing};
use self::stats::Stats;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, RawEvent};
use crate::identity::{Namespace, NodeId, Secret};
use crate::membership::{Member, MemberEvent, MemberState, Membership};
use crate::transport::{Capabilities, Channel, TransportDyn};
use crate::wire::NodeMeta;

/// What the outbox and inbox tasks share.
pub(crate) struct Core {
    me: NodeId,
    incarnation: u64,
    namespace: Namespace,
    secret: Option<Secret>,
    transport: Arc<dyn TransportDyn>,
    capabilities: Capabilities,
    stats: Stats,
    probe: ProbeState,
    /// The broadcast channel.
    all: Channel,
    /// The channel frames for this node arrive on (its own, or the broadcast
    /// channel when the transport has no per-node channels).
    mine: Channel,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Transport `Lagged` markers this close together, with no frame between
/// them, are one outage: a reconnect tells every subscription at about the
/// same moment, and two real outages are never this close.
const LAG_WINDOW: Duration = Duration::from_millis(100);

/// Resolves once `stop` is set (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stop| stop).await;
}

/// A new incarnation: the start time in ms, strictly increasing within a process.
fn next_incarnation() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = unix_ms();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

struct Tasks {
    outbox: JoinHandle<()>,
    inbox: JoinHandle<()>,
}

/// One member of a cluster: sends and receives events over a transport and
/// keeps the membership view.
///
/// Dropping a `Node` without [`Node::shutdown`] stops it in the background
/// (queued events are still flushed and `leave` is sent).
pub struct Node {
    core: Arc<Core>,
    outbox: mpsc::Sender<Outgoing>,
    enqueue_timeout: Duration,
    deliveries: Arc<Fanout<Incoming>>,
    member_events: Arc<Fanout<MemberEvent>>,
    frames: Arc<Fanout<FrameReport>>,
    members: Arc<RwLock<BTreeMap<NodeId, Member>>>,
    probe_silence: Duration,
    closed: AtomicBool,
    stop_outbox: watch::Sender<bool>,
    stop_inbox: watch::Sender<bool>,
    tasks: Mutex<Option<Tasks>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.core.me)
            .field("incarnation", &self.core.incarnation)
            .field("namespace", &self.core.namespace)
            .field("backend", &self.core.capabilities.backend)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Starts a node on `transport`: subscribes to its channels, then starts
    /// sending heartbeats. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// `Config` when `config` is invalid; the transport's error when a
    /// subscription fails.
    pub async fn start(config: NodeConfig, transport: Arc<dyn TransportDyn>) -> Result<Node> {
        config.validate()?;
        let settings = config.membership.settings();
        let capabilities = transport.capabilities_dyn();
        let incarnation = next_incarnation();
        let all = Channel::all(&config.namespace);
        let mine = if capabilities.per_node_channels {
            Channel::node(&config.namespace, &config.node_id)
        } else {
            all.clone()
        };
        if config.secret.is_none() {
            tracing::warn!(
                node = %config.node_id,
                "no cluster secret configured: frames are not signed and anyone who can reach the \
                 transport can inject events; set `secret` in production"
            );
        }
        // Announced before the first heartbeat leaves, so peers know the
        // presence of this incarnation before they hear it.
        let presence = match transport.presence_dyn(&config.namespace, &config.node_id).await {
            Ok(presence) => presence,
            Err(error) => {
                tracing::warn!(
                    node = %config.node_id,
                    %error,
                    "the transport's presence signal is unavailable; heartbeats alone detect failures"
                );
                None
            }
        };
        let mut subscriptions = Vec::new();
        for channel in [all.clone(), mine.clone()] {
            if subscriptions.iter().any(|(c, _)| *c == channel) {
                continue;
            }
            let subscription = transport.subscribe_dyn(&channel).await?;
            subscriptions.push((channel, subscription));
        }
        let core = Arc::new(Core {
            stats: Stats::new(&config.node_id),
            me: config.node_id.clone(),
            incarnation,
            namespace: config.namespace.clone(),
            secret: config.secret.clone(),
            transport,
            capabilities,
            probe: ProbeState::new(),
            all,
            mine,
        });
        let deliveries = Arc::new(Fanout::new(config.inbox.subscriber_capacity));
        let member_events = Arc::new(Fanout::new(config.inbox.subscriber_capacity));
        let frames = Arc::new(Fanout::new(config.inbox.subscriber_capacity));
        let members = Arc::new(RwLock::new(BTreeMap::new()));
        let membership = Membership::new(
            config.node_id.clone(),
            incarnation,
            settings.clone(),
            members.clone(),
            member_events.clone(),
        );
        let probe_silence = config.health.probe_interval * config.health.probe_misses;
        let (stop_outbox, outbox_stopped) = watch::channel(false);
        let (stop_inbox, inbox_stopped) = watch::channel(false);
        let inbox = Inbox::new(
            core.clone(),
            inbox_stopped,
            subscriptions,
            presence,
            membership,
            Outlets {
                deliveries: deliveries.clone(),
                frames: frames.clone(),
            },
            InboxTiming {
                evaluate_every: settings.heartbeat_interval / 4,
                replay_window: config.inbox.replay_window,
                probe_silence,
                lag_window: LAG_WINDOW,
            },
        );
        let (tx, rx) = mpsc::channel(config.outbox.capacity);
        let outbox = Outbox::new(
            core.clone(),
            rx,
            outbox_stopped,
            config.batch.clone(),
            OutboxTiming {
                heartbeat_interval: settings.heartbeat_interval,
                probe_interval: config.health.probe_interval,
                retry_for: config.outbox.retry_for,
            },
            NodeMeta {
                started_at_ms: incarnation,
                version: config.version.clone(),
                roles: config.roles.clone(),
                addresses: config.addresses.clone(),
                labels: config.labels.clone(),
            },
        );
        let span = tracing::info_span!("coord", node = %config.node_id, incarnation);
        let tasks = Tasks {
            inbox: tokio::spawn(inbox.run().instrument(span.clone())),
            outbox: tokio::spawn(outbox.run().instrument(span)),
        };
        tracing::info!(node = %config.node_id, incarnation, backend = core.capabilities.backend, "node started");
        Ok(Node {
            core,
            outbox: tx,
            enqueue_timeout: config.outbox.enqueue_timeout,
            deliveries,
            member_events,
            frames,
            members,
            probe_silence,
            closed: AtomicBool::new(false),
            stop_outbox,
            stop_inbox,
            tasks: Mutex::new(Some(tasks)),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        &self.core.me
    }

    /// This run's incarnation (its start time in ms, increasing across restarts).
    pub fn incarnation(&self) -> u64 {
        self.core.incarnation
    }

    /// The transport's capabilities.
    pub fn capabilities(&self) -> &Capabilities {
        &self.core.capabilities
    }

    /// Queues `event` for every other node.
    ///
    /// # Behavior
    /// - At most once, in order per sender; the sender itself does not receive it.
    /// - Waits up to `outbox.enqueue-timeout` for room in the outbox, then
    ///   fails with a temporary `Overflow` error (counted as `outbox-overflow`).
    /// - An event too large for any frame fails with `TooLarge`.
    /// - After shutdown, fails with `Closed`.
    pub async fn broadcast(&self, event: Event) -> Result<()> {
        let raw = self.prepare("broadcast", &event)?;
        self.enqueue(Outgoing::Broadcast(raw)).await
    }

    /// Like [`Node::broadcast`], but fails at once with `Overflow` when the
    /// outbox is full instead of waiting.
    pub fn try_broadcast(&self, event: Event) -> Result<()> {
        let raw = self.prepare("broadcast", &event)?;
        match self.outbox.try_send(Outgoing::Broadcast(raw)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(self.overflow("broadcast")),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::closed("broadcast")),
        }
    }

    /// Queues `event` for `node` alone.
    ///
    /// # Behavior
    /// - Only `node` receives it, marked `directed`.
    /// - Fails with `UnknownNode` when `node` is this node, has never been
    ///   seen, has failed or has left.
    /// - Otherwise as [`Node::broadcast`].
    pub async fn send_to(&self, node: &NodeId, event: Event) -> Result<()> {
        let raw = self.prepare("send_to", &event)?;
        if *node == self.core.me {
            return Err(Error::new(
                ErrorKind::UnknownNode,
                "send_to",
                format!("`{node}` is this node: deliver locally instead"),
            ));
        }
        let state = self.members.read().expect("membership lock").get(node).map(|m| m.state);
        let reason = match state {
            Some(MemberState::Alive | MemberState::Suspect) => None,
            Some(MemberState::Failed) => Some("has failed"),
            Some(MemberState::Left) => Some("has left the cluster"),
            None => Some("is not a known member (no heartbeat seen)"),
        };
        if let Some(reason) = reason {
            return Err(Error::new(
                ErrorKind::UnknownNode,
                "send_to",
                format!("node `{node}` {reason}"),
            ));
        }
        self.enqueue(Outgoing::Directed(node.clone(), raw)).await
    }

    fn prepare(&self, operation: &'static str, event: &Event) -> Result<RawEvent> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed(operation));
        }
        let raw = event.encode();
        let limit = self.core.capabilities.max_payload.saturating_sub(FRAME_OVERHEAD);
        if raw.encoded_len() > limit {
            return Err(Error::new(
                ErrorKind::TooLarge,
                operation,
                format!(
                    "event of {} bytes exceeds the {limit} bytes a {} frame can carry; send an id and let receivers load the data",
                    raw.encoded_len(),
                    self.core.capabilities.backend
                ),
            ));
        }
        Ok(raw)
    }

    async fn enqueue(&self, item: Outgoing) -> Result<()> {
        let operation = match item {
            Outgoing::Broadcast(_) => "broadcast",
            Outgoing::Directed(..) => "send_to",
        };
        // Room in the outbox: queued without arming a timer (no clock read).
        let item = match self.outbox.try_send(item) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::closed(operation)),
            Err(mpsc::error::TrySendError::Full(item)) => item,
        };
        match self.outbox.send_timeout(item, self.enqueue_timeout).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(self.overflow(operation)),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(Error::closed(operation)),
        }
    }

    fn overflow(&self, operation: &'static str) -> Error {
        self.core.stats.drop(DropReason::OutboxOverflow, 1);
        Error::new(
            ErrorKind::Overflow,
            operation,
            "outbox is full (the transport is slower than the event rate); event dropped",
        )
        .temporary()
    }

    /// A new stream of events from other nodes, and [`Incoming::Lagged`]
    /// markers where events may have been lost.
    ///
    /// Each subscriber has its own bounded queue (`inbox.subscriber-capacity`).
    /// When it is full, new deliveries to that subscriber are dropped and
    /// counted (`subscriber-overflow`), other subscribers are unaffected, and
    /// one `Lagged` with reason `SlowSubscriber` marks the place of the loss.
    /// The stream ends when the node shuts down.
    pub fn subscribe(&self) -> Feed<Incoming> {
        self.deliveries.subscribe()
    }

    /// A new stream of membership changes (same queueing as [`Node::subscribe`]).
    pub fn member_events(&self) -> Feed<MemberEvent> {
        self.member_events.subscribe()
    }

    /// A new stream of every frame this node receives from others, with its
    /// verdict: accepted (sender, sequence, content) or rejected (the reason
    /// its drop was counted under), for tools that show the traffic.
    ///
    /// # Behavior
    /// - Reports are built only while at least one such stream lives, so an
    ///   unwatched node pays nothing.
    /// - Frames carrying this node's own id (its echoes and probes, or a
    ///   twin's) and probes of others are not reported.
    /// - Same queueing as [`Node::subscribe`]: a slow reader misses reports
    ///   and gets one [`FrameReport::Missed`] where they were lost.
    /// - The stream ends when the node shuts down.
    pub fn frames(&self) -> Feed<FrameReport> {
        self.frames.subscribe()
    }

    /// The current membership view: every peer ever seen, with its state.
    pub fn members(&self) -> Vec<Member> {
        self.members
            .read()
            .expect("membership lock")
            .values()
            .cloned()
            .collect()
    }

    /// One peer's entry in the membership view.
    pub fn member(&self, node: &NodeId) -> Option<Member> {
        self.members.read().expect("membership lock").get(node).cloned()
    }

    /// The node's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.core.stats.snapshot()
    }

    /// A health snapshot: transport status, probe age and round trip, counters.
    pub fn health(&self) -> Health {
        let transport = self.core.transport.health_dyn();
        let (probe_age, probe_rtt) = self.core.probe.report();
        let status = if self.closed.load(Ordering::Acquire) || !transport.connected {
            HealthStatus::Down
        } else if self.core.probe.silence() > self.probe_silence {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        Health {
            status,
            backend: self.core.capabilities.backend,
            transport,
            probe_age,
            probe_rtt,
            stats: self.stats(),
        }
    }

    /// Shuts down gracefully.
    ///
    /// # Behavior
    /// - Flushes the events already queued, sends `leave`, closes the
    ///   transport, and ends every subscriber and membership stream.
    /// - A temporary publish failure during the flush is retried, for at most
    ///   `outbox.retry-for` in all, so a backend that is down delays shutdown
    ///   by that much at worst; what still fails is dropped and counted.
    /// - Idempotent: later calls return `Ok` at once.
    pub async fn shutdown(&self) -> Result<()> {
        let Some(tasks) = self.tasks.lock().await.take() else {
            return Ok(());
        };
        self.closed.store(true, Ordering::Release);
        let _ = self.stop_outbox.send(true);
        let _ = tasks.outbox.await;
        let _ = self.stop_inbox.send(true);
        let _ = tasks.inbox.await;
        let closed = self.core.transport.close_dyn().await;
        self.deliveries.close();
        self.member_events.close();
        self.frames.close();
        tracing::info!(node = %self.core.me, "node shut down");
        closed
    }

    /// Stops at once, as a crash would: queued events are dropped and no
    /// `leave` is sent, so peers detect the node as failed. For tests and
    /// emergency exits. Idempotent.
    pub async fn abort(&self) {
        let Some(tasks) = self.tasks.lock().await.take() else {
            return;
        };
        self.closed.store(true, Ordering::Release);
        tasks.outbox.abort();
        tasks.inbox.abort();
        let _ = tasks.outbox.await;
        let _ = tasks.inbox.await;
        let _ = self.core.transport.close_dyn().await;
        self.deliveries.close();
        self.member_events.close();
        self.frames.close();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.stop_outbox.send(true);
        let _ = self.stop_inbox.send(true);
    }
}
