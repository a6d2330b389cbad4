//! Liveliness: each node declares the token `<ns>/alive/<node-id>`; Zenoh
//! removes it when the node's session ends or its link lease expires, which
//! tells peers of a crash faster than missed heartbeats. The engine reads it
//! through [`coord_core::Transport::presence`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use coord_core::transport::{Presence, PresenceStream};
use coord_core::{Error, ErrorKind, Namespace, NodeId, Result};
use tokio::sync::mpsc;
use zenoh::liveliness::LivelinessToken;
use zenoh::sample::SampleKind;

use crate::cause::cause;
use crate::inlet;
use crate::transport::ZenohTransport;

/// Presence changes buffered before further ones are dropped (and counted).
const PRESENCE_CAPACITY: usize = 1024;

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
    /// - While the token lives, every peer's [`ZenohTransport::watch_presence`]
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
    /// - First reports `Alive` for every node whose token is already
    ///   declared, then each change.
    /// - A node is `Alive` while at least one of its tokens exists and `Gone`
    ///   once the last one vanished: a restarted node whose new session
    ///   declared its token before the old session's lease expired is never
    ///   reported gone.
    /// - Never blocks Zenoh: changes beyond a bounded buffer of 1024 are
    ///   dropped, with a warning in the log.
    /// - The stream ends when the transport is closed.
    pub async fn watch_presence(&self, namespace: &Namespace) -> Result<PresenceStream> {
        self.watch(namespace, None, ()).await
    }

    /// Announces `me` in `namespace` and watches the other nodes: what the
    /// engine would call to use liveliness as a failure signal.
    ///
    /// # Behavior
    /// - `me` is announced (its token declared) while the stream lives;
    ///   dropping the stream withdraws it.
    /// - Yields [`Presence`] changes of every other node of the namespace,
    ///   as [`ZenohTransport::watch_presence`] does; never `me`'s own.
    /// - [`coord_core::Node::start`] calls it (through
    ///   [`coord_core::Transport::presence`]) unless `liveliness` is off.
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
        // Tokens per node: a node may hold two for a moment (a restart).
        let tokens = Mutex::new(HashMap::<NodeId, usize>::new());
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
                let change = {
                    let mut tokens = tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    let count = tokens.entry(node.clone()).or_default();
                    match sample.kind() {
                        SampleKind::Put => {
                            *count += 1;
                            if *count > 1 {
                                return;
                            }
                            Presence::Alive(node)
                        }
                        SampleKind::Delete => {
                            *count = count.saturating_sub(1);
                            if *count > 0 {
                                return;
                            }
                            tokens.remove(&node);
                            Presence::Gone(node)
                        }
                    }
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
