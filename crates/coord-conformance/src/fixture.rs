//! What a backend gives the suite: connected transports, and hooks to inject
//! faults where the backend's test harness can.

use std::sync::Arc;

use coord_core::{Result, TransportDyn};
use futures::future::BoxFuture;

/// Identifies one connection made by [`Fixture::connect`], for fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A transport connected to the backend under test.
#[derive(Clone)]
pub struct Connection {
    /// Names this connection in [`Faults`] calls.
    pub id: ConnId,
    /// The transport.
    pub transport: Arc<dyn TransportDyn>,
}

/// What the backend's harness can do beyond connecting. A case that needs a
/// missing feature is reported `n/a` with the feature's name, never silently
/// skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Features {
    /// [`Fixture::connect_unreachable`] gives a transport aimed at an address
    /// where no server listens.
    pub unreachable_address: bool,
    /// [`Faults::server_down`] / [`Faults::server_up`] stop and restart the server.
    pub server_control: bool,
    /// [`Faults::cut`], [`Faults::mute`] and [`Faults::heal`] work.
    pub connection_faults: bool,
    /// [`Faults::drop_rate`] drops a fraction of frames.
    pub frame_loss: bool,
    /// [`Faults::silence`] makes a connection's subscriptions silent.
    pub silent_subscriptions: bool,
}

impl Features {
    /// Every feature (the memory transport has them all).
    pub fn all() -> Self {
        Features {
            unreachable_address: true,
            server_control: true,
            connection_faults: true,
            frame_loss: true,
            silent_subscriptions: true,
        }
    }

    /// No feature beyond connecting.
    pub fn none() -> Self {
        Features::default()
    }
}

/// Fault injection on the backend under test.
pub trait Faults: Send + Sync {
    /// Stops the server (every connection loses it).
    fn server_down(&self) -> BoxFuture<'_, Result<()>>;
    /// Starts the server again.
    fn server_up(&self) -> BoxFuture<'_, Result<()>>;
    /// Cuts `conn`: it can neither send nor receive until [`Faults::heal`].
    fn cut(&self, conn: ConnId);
    /// Makes `conn`'s outgoing frames vanish (a paused node) until [`Faults::heal`].
    fn mute(&self, conn: ConnId);
    /// Makes `conn`'s current subscriptions deliver nothing while they look healthy.
    fn silence(&self, conn: ConnId);
    /// Drops each frame with probability `rate` (0 turns loss off).
    fn drop_rate(&self, rate: f64);
    /// Undoes every cut and mute.
    fn heal(&self);
}

/// A backend under test: makes connected transports.
pub trait Fixture: Send + Sync {
    /// The backend's name, as in the matrix (`memory`, `nats`, ...).
    fn backend(&self) -> &'static str;

    /// Which deployment of the backend this is (`cluster`, `sentinel`, …),
    /// when a backend runs the suite on several; it heads its own column.
    fn variant(&self) -> Option<&'static str> {
        None
    }

    /// What the harness can do beyond connecting.
    fn features(&self) -> Features;

    /// A new transport connected to the live server.
    fn connect(&self) -> BoxFuture<'_, Result<Connection>>;

    /// A transport aimed at an address where no server listens (or its
    /// error, if making it already fails). Needs `unreachable_address`.
    fn connect_unreachable(&self) -> BoxFuture<'_, Result<Arc<dyn TransportDyn>>>;

    /// The fault hooks, when the harness has any.
    fn faults(&self) -> Option<&dyn Faults>;
}
