//! The transport: opaque frames on named channels. It knows no events.
//!
//! Everything that must behave the same on every backend (schema, sealing,
//! batching, ordering and gap checks, membership) lives in the engine; a
//! transport only moves bytes, reconnects, and reports its health.

mod backoff;
mod channel;
mod dynamic;
mod link;
pub mod memory;

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures::Stream;

pub use backoff::Backoff;
pub use channel::{Channel, Target};
pub use dynamic::TransportDyn;
pub use link::{LinkHealth, LossSignal, until_closed};

use crate::error::Result;
use crate::identity::{Namespace, NodeId};

/// One item of a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A frame published on the channel, byte for byte.
    Frame(Bytes),
    /// Frames may have been lost here: the connection was re-established, or
    /// the client's buffer overflowed. The engine turns it into `Lagged`.
    Lagged,
}

/// A subscription: an endless stream of [`Received`] items; it ends only when
/// the transport is closed.
pub type Subscription = Pin<Box<dyn Stream<Item = Received> + Send + 'static>>;

/// A change in another node's presence, as a backend with its own liveness
/// signal sees it (Zenoh liveliness tokens). The engine reads it as an extra,
/// faster hint; the heartbeat detector stays the source of truth.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Presence {
    /// The node is present: its session is up (also reported for nodes
    /// already present when the stream starts).
    Alive(NodeId),
    /// The node is gone: its last session closed, its process died or its
    /// link lease expired.
    Gone(NodeId),
}

impl Presence {
    /// The node the change is about.
    pub fn node(&self) -> &NodeId {
        match self {
            Presence::Alive(node) | Presence::Gone(node) => node,
        }
    }
}

/// A stream of [`Presence`] changes; it ends when the transport is closed.
pub type PresenceStream = Pin<Box<dyn Stream<Item = Presence> + Send + 'static>>;

/// What a transport can do; the engine and the conformance suite read it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The backend's name (`memory`, `nats`, …), for errors and reports.
    pub backend: &'static str,
    /// Largest frame the transport carries, in bytes.
    pub max_payload: usize,
    /// Whether per-node channels are cheap. When `false`, the engine sends
    /// directed frames on the broadcast channel and receivers filter them.
    pub per_node_channels: bool,
    /// Whether [`Transport::presence`] gives a liveness signal of the
    /// backend's own, which the membership detector reads beside the heartbeats.
    pub presence: bool,
}

impl Capabilities {
    /// Capabilities of `backend` carrying frames up to `max_payload` bytes on
    /// cheap per-node channels.
    pub fn new(backend: &'static str, max_payload: usize) -> Self {
        Capabilities {
            backend,
            max_payload,
            per_node_channels: true,
            presence: false,
        }
    }
}

/// How the transport's connection is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportHealth {
    /// Whether the transport believes it is connected.
    pub connected: bool,
    /// Why not, when not connected (the last error).
    pub detail: Option<String>,
    /// Times the transport re-established its connection.
    pub reconnects: u64,
    /// Since when the current state holds.
    pub since: SystemTime,
}

impl TransportHealth {
    /// A connected transport.
    pub fn up(reconnects: u64, since: SystemTime) -> Self {
        TransportHealth {
            connected: true,
            detail: None,
            reconnects,
            since,
        }
    }

    /// A disconnected transport, with the reason.
    pub fn down(detail: impl Into<String>, reconnects: u64, since: SystemTime) -> Self {
        TransportHealth {
            connected: false,
            detail: Some(detail.into()),
            reconnects,
            since,
        }
    }
}

/// Moves opaque frames on named channels.
///
/// Backends implement this trait with plain async methods; the engine holds
/// them as `Arc<dyn TransportDyn>` (see [`TransportDyn`]).
pub trait Transport: Send + Sync + 'static {
    /// What this transport can do.
    ///
    /// # Behavior
    /// - Returns the same value for the transport's whole life.
    fn capabilities(&self) -> Capabilities;

    /// Publishes one frame on `channel`.
    ///
    /// # Behavior
    /// - Delivers the frame, byte for byte, to every subscription of
    ///   `channel` that is live when it is published, including subscriptions
    ///   of this same transport; at most once, and in publish order per publisher.
    /// - Never blocks forever: returns an error of kind `Unavailable` marked
    ///   temporary while the backend cannot be reached.
    /// - Returns an error of kind `TooLarge` for a frame above `max_payload`.
    fn publish(&self, channel: &Channel, frame: Bytes) -> impl Future<Output = Result<()>> + Send;

    /// Subscribes to `channel`.
    ///
    /// # Behavior
    /// - When it returns, frames published afterwards on `channel` are delivered.
    /// - The stream survives outages: the transport reconnects and resubscribes
    ///   by itself, with bounded exponential backoff and jitter, and yields one
    ///   [`Received::Lagged`] when frames may have been lost.
    /// - The stream ends only after [`Transport::close`].
    fn subscribe(&self, channel: &Channel) -> impl Future<Output = Result<Subscription>> + Send;

    /// The connection's current health.
    ///
    /// # Behavior
    /// - Reports `connected: false` with the cause while the backend is unreachable.
    fn health(&self) -> TransportHealth;

    /// Closes the transport.
    ///
    /// # Behavior
    /// - Idempotent. Ends every subscription stream; later publishes fail with `Closed`.
    fn close(&self) -> impl Future<Output = Result<()>> + Send;

    /// Announces `me` in `namespace` and watches the other nodes' presence,
    /// for a backend that has a liveness signal of its own.
    ///
    /// # Behavior
    /// - Returns `Ok(None)` when the backend has no such signal (the default).
    /// - Otherwise `me` is announced while the stream lives, and the stream
    ///   yields [`Presence::Alive`] for every other node of `namespace`
    ///   already present, then each change; never `me`'s own.
    /// - [`Presence::Gone`] means no session of that node remains: a node
    ///   restarted before its old session ended is never reported gone.
    /// - Never blocks the backend: a stream that is not read loses changes.
    /// - Fails with `Closed` after [`Transport::close`]; the stream ends when
    ///   the transport is closed.
    fn presence(
        &self,
        namespace: &Namespace,
        me: &NodeId,
    ) -> impl Future<Output = Result<Option<PresenceStream>>> + Send {
        let _ = (namespace, me);
        std::future::ready(Ok(None))
    }
}
