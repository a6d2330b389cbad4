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
pub use link::{LinkHealth, LossSignal};

use crate::error::Result;

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
}

impl Capabilities {
    /// Capabilities of `backend` carrying frames up to `max_payload` bytes on
    /// cheap per-node channels.
    pub fn new(backend: &'static str, max_payload: usize) -> Self {
        Capabilities {
            backend,
            max_payload,
            per_node_channels: true,
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
}
