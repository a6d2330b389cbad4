//! [`Coordinator`]: one node of a coord cluster, as applications use it.

use coord_core::engine::StatsSnapshot;
use coord_core::{Event, Feed, FrameReport, Health, Incoming, Member, MemberEvent, Node, NodeId, Result};

use crate::builder::{Builder, Origin};
use crate::config::Config;

/// One node of a coord cluster: sends events to every other node or to one,
/// receives theirs, and knows who is alive.
///
/// A thin layer over [`coord_core::Node`], whose documentation states each
/// contract in full; the facade adds only the ways to start one (a
/// [builder](Coordinator::builder), a [config](Coordinator::from_config) or a
/// [URI](Coordinator::from_uri)).
///
/// Call [`Coordinator::shutdown`] before exiting so peers see the node leave
/// at once. Dropping a coordinator without it stops it in the background
/// (queued events are still flushed and `leave` is still sent).
#[derive(Debug)]
pub struct Coordinator {
    node: Node,
}

impl Coordinator {
    pub(crate) fn new(node: Node) -> Self {
        Coordinator { node }
    }

    /// A [`Builder`] with every engine default and no node id or backend yet.
    pub fn builder() -> Builder {
        Builder::new(Origin::Builder)
    }

    /// Starts a coordinator from a loaded [`Config`].
    ///
    /// # Errors
    /// As [`Builder::start`]; configuration errors name the key, e.g.
    /// "`coordinator.node-id` is missing: set it to this node's unique name".
    pub async fn from_config(config: &Config) -> Result<Self> {
        Builder::from_config(&config.coordinator).start().await
    }

    /// Starts a coordinator from a backend URI alone, e.g.
    /// `memory://cluster-a?node-id=mx1`: the node id comes from the
    /// `node-id` parameter, and `namespace` and `profile` may be given the
    /// same way (see [`crate::BackendUri`]); every other setting keeps its default.
    ///
    /// # Errors
    /// `Config` when the URI is malformed, its scheme is not one of
    /// [`crate::schemes`], or `node-id` is missing; otherwise as
    /// [`Builder::start`].
    pub async fn from_uri(uri: &str) -> Result<Self> {
        Builder::new(Origin::Uri).uri(uri).start().await
    }

    /// This node's id.
    pub fn node_id(&self) -> &NodeId {
        self.node.node_id()
    }

    /// This run's incarnation: the start time in ms, increasing across
    /// restarts, so peers tell a restart from a late heartbeat.
    pub fn incarnation(&self) -> u64 {
        self.node.incarnation()
    }

    /// The name of the backend this node runs on (`memory`, …).
    pub fn backend(&self) -> &'static str {
        self.node.capabilities().backend
    }

    /// Queues `event` for every other node ([`Node::broadcast`]).
    ///
    /// # Behavior
    /// - At most once, in order per sender; this node does not receive it.
    /// - Waits up to `outbox.enqueue-timeout` for room in the outbox, then
    ///   fails with a temporary `Overflow` error.
    /// - An event too large for any frame fails with `TooLarge`.
    /// - After shutdown, fails with `Closed`.
    pub async fn broadcast(&self, event: Event) -> Result<()> {
        self.node.broadcast(event).await
    }

    /// Like [`Coordinator::broadcast`], but never waits: fails at once with
    /// a temporary `Overflow` error when the outbox is full
    /// ([`Node::try_broadcast`]).
    pub fn try_broadcast(&self, event: Event) -> Result<()> {
        self.node.try_broadcast(event)
    }

    /// Queues `event` for `node` alone ([`Node::send_to`]).
    ///
    /// # Behavior
    /// - Only `node` receives it, marked `directed`.
    /// - Fails with `UnknownNode` when `node` is this node, has never been
    ///   seen, has failed or has left: a send to a dead node is reported,
    ///   not lost silently.
    /// - Otherwise as [`Coordinator::broadcast`].
    pub async fn send_to(&self, node: &NodeId, event: Event) -> Result<()> {
        self.node.send_to(node, event).await
    }

    /// A new stream of events from other nodes, with [`Incoming::Lagged`]
    /// markers where events may have been lost: resynchronise then (re-read
    /// the shared store). Each stream has its own bounded queue
    /// (`inbox.subscriber-capacity`); a slow one loses its own items only.
    /// The stream ends when the node shuts down ([`Node::subscribe`]).
    pub fn subscribe(&self) -> Feed<Incoming> {
        self.node.subscribe()
    }

    /// A new stream of membership changes: joins, suspects, failures,
    /// recoveries, graceful leaves, restarts and id conflicts, each once per
    /// observer; [`MemberEvent::Lagged`] means changes were lost and
    /// [`Coordinator::members`] should be re-read ([`Node::member_events`]).
    pub fn membership(&self) -> Feed<MemberEvent> {
        self.node.member_events()
    }

    /// A new stream of every frame received from other nodes with its
    /// verdict, accepted or rejected with the reason, for tools that show
    /// the traffic; built only while watched ([`Node::frames`]).
    pub fn frames(&self) -> Feed<FrameReport> {
        self.node.frames()
    }

    /// A snapshot of the membership view: every peer seen, with its state.
    pub fn members(&self) -> Vec<Member> {
        self.node.members()
    }

    /// One peer's entry in the membership view.
    pub fn member(&self, node: &NodeId) -> Option<Member> {
        self.node.member(node)
    }

    /// A health snapshot: `Healthy` only while probe frames really make the
    /// round trip through the backend, `Degraded` when they stop coming
    /// back, `Down` when the transport is disconnected or the node is shut
    /// down; plus the transport's own report and the counters
    /// ([`Node::health`]).
    pub fn health(&self) -> Health {
        self.node.health()
    }

    /// The node's counters: frames, events, bytes, heartbeats, lags and
    /// drops by reason ([`Node::stats`]).
    pub fn stats(&self) -> StatsSnapshot {
        self.node.stats()
    }

    /// Shuts down gracefully ([`Node::shutdown`]).
    ///
    /// # Behavior
    /// - Flushes the events already queued, sends `leave` (peers report the
    ///   node as left, not failed), closes the transport, and ends every
    ///   stream from [`Coordinator::subscribe`] and
    ///   [`Coordinator::membership`].
    /// - Idempotent: later calls return `Ok` at once.
    pub async fn shutdown(&self) -> Result<()> {
        self.node.shutdown().await
    }

    /// The engine node underneath, for what the facade does not wrap (e.g.
    /// [`Node::abort`] to simulate a crash in tests, or its capabilities).
    pub fn node(&self) -> &Node {
        &self.node
    }
}
