//! Bookkeeping every network backend needs for [`Transport::health`] and
//! for telling its subscriptions that frames may have been lost; written
//! once here so that backends only report what their client sees.
//!
//! [`Transport::health`]: super::Transport::health

use std::sync::Mutex;
use std::time::SystemTime;

use futures::Stream;
use tokio::sync::{broadcast, watch};

use super::{Received, TransportHealth};

/// The state of a backend's connection: up or down with the cause, how
/// often it came back, and since when the current state holds.
#[derive(Debug)]
pub struct LinkHealth {
    inner: Mutex<LinkState>,
}

#[derive(Debug)]
struct LinkState {
    connected: bool,
    detail: Option<String>,
    reconnects: u64,
    since: SystemTime,
}

impl LinkHealth {
    /// The state of a connection that has just been made.
    pub fn connected() -> Self {
        LinkHealth {
            inner: Mutex::new(LinkState {
                connected: true,
                detail: None,
                reconnects: 0,
                since: SystemTime::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.inner.lock().expect("link health lock")
    }

    /// The connection is up. Returns whether this is a reconnect (it was
    /// down), which counts one more reconnect.
    pub fn up(&self) -> bool {
        let mut state = self.lock();
        if state.connected {
            return false;
        }
        state.connected = true;
        state.detail = None;
        state.reconnects += 1;
        state.since = SystemTime::now();
        true
    }

    /// The connection is down, because of `detail`.
    pub fn down(&self, detail: impl Into<String>) {
        let mut state = self.lock();
        if state.connected {
            state.since = SystemTime::now();
        }
        state.connected = false;
        state.detail = Some(detail.into());
    }

    /// A later, more precise cause while the connection is down (ignored
    /// while it is up).
    pub fn note(&self, detail: impl Into<String>) {
        let mut state = self.lock();
        if !state.connected {
            state.detail = Some(detail.into());
        }
    }

    /// Whether the connection is up.
    pub fn is_up(&self) -> bool {
        self.lock().connected
    }

    /// The current health.
    pub fn health(&self) -> TransportHealth {
        let state = self.lock();
        if state.connected {
            TransportHealth::up(state.reconnects, state.since)
        } else {
            let detail = state.detail.clone().unwrap_or_else(|| "not connected".to_owned());
            TransportHealth::down(detail, state.reconnects, state.since)
        }
    }
}

/// Tells every subscription of a transport that frames may have been lost
/// (a reconnect, a client buffer overflow): each yields one
/// [`Received::Lagged`] per notice.
#[derive(Debug)]
pub struct LossSignal {
    sender: broadcast::Sender<()>,
}

impl Default for LossSignal {
    fn default() -> Self {
        LossSignal {
            sender: broadcast::channel(16).0,
        }
    }
}

impl LossSignal {
    /// Frames may have been lost.
    pub fn notify(&self) {
        // No subscription listening is fine: nothing to tell.
        let _ = self.sender.send(());
    }

    /// `Lagged` for each notice from now on; ends when the signal is dropped.
    pub fn markers(&self) -> impl Stream<Item = Received> + Send + 'static {
        futures::stream::unfold(self.sender.subscribe(), |mut notices| async move {
            match notices.recv().await {
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => Some((Received::Lagged, notices)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }
}

/// Resolves once a transport's `closed` flag turns true (or its sender is
/// gone): what a subscription stream ends on (`take_until`).
pub async fn until_closed(mut closed: watch::Receiver<bool>) {
    let _ = closed.wait_for(|closed| *closed).await;
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[test]
    fn reconnects_are_counted_and_the_cause_is_kept() {
        let link = LinkHealth::connected();
        assert!(!link.up(), "already up: no reconnect");
        link.down("connection refused");
        link.note("server error: LOADING");
        let down = link.health();
        assert!(!down.connected);
        assert_eq!(down.detail.as_deref(), Some("server error: LOADING"));
        assert!(link.up());
        link.note("ignored while up");
        let up = link.health();
        assert!(up.connected && up.detail.is_none());
        assert_eq!(up.reconnects, 1);
    }

    #[tokio::test]
    async fn every_subscription_hears_each_notice() {
        let signal = LossSignal::default();
        let (mut a, mut b) = (Box::pin(signal.markers()), Box::pin(signal.markers()));
        signal.notify();
        assert_eq!(a.next().await, Some(Received::Lagged));
        assert_eq!(b.next().await, Some(Received::Lagged));
        drop(signal);
        assert_eq!(a.next().await, None, "ends with the signal");
    }
}
