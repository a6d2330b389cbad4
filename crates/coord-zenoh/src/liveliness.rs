//! Liveliness: each node declares the token `<ns>/alive/<node-id>`; Zenoh
//! removes it when the node's session ends or its link lease expires, which
//! tells peers of a crash faster than missed heartbeats.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use coord_core::{Error, ErrorKind, Namespace, NodeId, Result};
use futures::Stream;
use tokio::sync::mpsc;
use zenoh::liveliness::LivelinessToken;
use zenoh::sample::SampleKind;

use crate::cause::cause;
use crate::inlet;
use crate::transport::ZenohTransport;

/// Presence changes buffered before further ones are dropped (and counted).
const PRESENCE_CAPACITY: usize = 1024;

/// What a liveliness subscriber sees.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Presence {
    /// The node's token exists: its session is up (also reported for tokens
    /// already there when the stream starts).
    Alive(NodeId),
    /// The node's token vanished: it closed its session, or its link lease expired.
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

/// A declared liveliness token: peers see the node alive while it exists.
/// Dropping it (or closing the transport) withdraws it.
pub struct AliveToken {
    key: String,
    _token: LivelinessToken,
}

impl AliveToken {
    /// The token's key expression, `<ns>/alive/<node-id>`.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl std::fmt::Debug for AliveToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliveToken").field("key", &self.key).finish()
    }
}

/// The liveliness key of `node` in `namespace`: `<ns>/alive/<node-id>`.
pub fn alive_key(namespace: &Namespace, node: &NodeId) -> String {
    format!("{namespace}/alive/{node}")
}

impl ZenohTransport {
    /// Declares `node`'s liveliness token in `namespace`.
    ///
    /// # Behavior
    /// - While the token lives, every peer's [`ZenohTransport::presence`]
    ///   stream reports `Alive(node)`; when it is dropped, the transport is
    ///   closed, the process dies or its link lease expires, they report `Gone(node)`.
    /// - Fails with `Closed` after [`coord_core::Transport::close`].
    pub async fn declare_alive(&self, namespace: &Namespace, node: &NodeId) -> Result<AliveToken> {
        self.ensure_open("zenoh liveliness")?;
        let key = alive_key(namespace, node);
        let token = self
            .session()
            .liveliness()
            .declare_token(key.clone())
            .await
            .map_err(|error| {
                Error::new(
                    ErrorKind::Unavailable,
                    "zenoh liveliness",
                    format!("cannot declare the liveliness token `{key}`: {}", cause(&error)),
                )
                .temporary()
            })?;
        Ok(AliveToken { key, _token: token })
    }

    /// Watches the liveliness tokens of `namespace` (this node's own included).
    ///
    /// # Behavior
    /// - First reports `Alive` for every token already declared, then each change.
    /// - Never blocks Zenoh: changes beyond a bounded buffer of 1024 are
    ///   dropped, with a warning in the log.
    /// - The stream ends when the transport is closed.
    pub async fn presence(&self, namespace: &Namespace) -> Result<PresenceStream> {
        self.watch(namespace, None, ()).await
    }

    /// Announces `me` in `namespace` and watches the other nodes: what the
    /// engine would call to use liveliness as a failure signal.
    ///
    /// # Behavior
    /// - `me` is announced (its token declared) while the stream lives;
    ///   dropping the stream withdraws it.
    /// - Yields [`Presence`] changes of every other node of the namespace,
    ///   as [`ZenohTransport::presence`] does; never `me`'s own.
    /// - Fails with `Closed` after close; the stream ends when the transport is closed.
    pub async fn announce(&self, namespace: &Namespace, me: &NodeId) -> Result<PresenceStream> {
        let token = self.declare_alive(namespace, me).await?;
        self.watch(namespace, Some(me.clone()), token).await
    }

    /// Watches `namespace`'s tokens, skipping `except`'s, holding `guard`
    /// as long as the stream.
    async fn watch<G: Send + 'static>(
        &self,
        namespace: &Namespace,
        except: Option<NodeId>,
        guard: G,
    ) -> Result<PresenceStream> {
        self.ensure_open("zenoh liveliness")?;
        let pattern = format!("{namespace}/alive/*");
        let (tx, rx) = mpsc::channel(PRESENCE_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let subscriber = self
            .session()
            .liveliness()
            .declare_subscriber(pattern.clone())
            .history(true)
            .callback(move |sample| {
                let Some(node) = sample
                    .key_expr()
                    .as_str()
                    .rsplit('/')
                    .next()
                    .and_then(|id| NodeId::new(id).ok())
                    .filter(|node| except.as_ref() != Some(node))
                else {
                    return;
                };
                let change = match sample.kind() {
                    SampleKind::Put => Presence::Alive(node),
                    SampleKind::Delete => Presence::Gone(node),
                };
                if tx.try_send(change).is_err() && dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("zenoh presence stream is not read: dropping liveliness changes");
                }
            })
            .await
            .map_err(|error| {
                Error::new(
                    ErrorKind::Unavailable,
                    "zenoh liveliness",
                    format!(
                        "cannot subscribe to the liveliness tokens `{pattern}`: {}",
                        cause(&error)
                    ),
                )
                .temporary()
            })?;
        Ok(inlet::stream(rx, self.closed_signal(), (subscriber, guard)))
    }
}
