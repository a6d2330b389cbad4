//! What the client's event callback learns about the connection: its state
//! and last error for `health()`, and a signal to every subscription when
//! frames may have been lost (a reconnect, a slow consumer).

use std::sync::Mutex;
use std::time::SystemTime;

use async_nats::Event;
use coord_core::transport::TransportHealth;
use tokio::sync::{broadcast, watch};

/// Connection bookkeeping shared by the transport and the client's event callback.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    inner: Mutex<Inner>,
    lost: broadcast::Sender<()>,
    /// Set once the client has closed its connection for good.
    closed: watch::Sender<bool>,
}

#[derive(Debug)]
struct Inner {
    connected: bool,
    detail: Option<String>,
    reconnects: u64,
    since: SystemTime,
}

impl ConnectionState {
    /// The state of a client that has just connected.
    pub(crate) fn connected() -> Self {
        ConnectionState {
            inner: Mutex::new(Inner {
                connected: true,
                detail: None,
                reconnects: 0,
                since: SystemTime::now(),
            }),
            lost: broadcast::channel(16).0,
            closed: watch::channel(false).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("nats connection state lock")
    }

    /// Takes one event of the client.
    pub(crate) fn on_event(&self, servers: &str, event: Event) {
        match event {
            Event::Connected => {
                let mut inner = self.lock();
                if !inner.connected {
                    inner.connected = true;
                    inner.detail = None;
                    inner.reconnects += 1;
                    inner.since = SystemTime::now();
                    drop(inner);
                    tracing::info!(servers, "nats reconnected; subscriptions restored");
                    self.frames_lost();
                }
            }
            Event::Disconnected => {
                self.down(format!("connection to the NATS server at {servers} lost; reconnecting"));
                tracing::warn!(servers, "nats disconnected");
            }
            Event::Closed => {
                self.down(format!("connection to {servers} closed"));
                self.closed.send_replace(true);
            }
            Event::SlowConsumer(sid) => {
                tracing::warn!(servers, sid, "nats slow consumer: the client dropped messages");
                self.frames_lost();
            }
            Event::ServerError(error) => {
                tracing::warn!(servers, %error, "nats server error");
                self.note(format!("server error from {servers}: {error}"));
            }
            Event::ClientError(error) => {
                tracing::warn!(servers, %error, "nats client error");
                self.note(format!("client error talking to {servers}: {error}"));
            }
            Event::LameDuckMode | Event::Draining => {
                tracing::info!(servers, %event, "nats server going away");
            }
        }
    }

    fn down(&self, detail: String) {
        let mut inner = self.lock();
        if inner.connected {
            inner.since = SystemTime::now();
        }
        inner.connected = false;
        inner.detail = Some(detail);
    }

    /// Keeps an error as the reason shown while disconnected.
    fn note(&self, detail: String) {
        let mut inner = self.lock();
        if !inner.connected {
            inner.detail = Some(detail);
        }
    }

    fn frames_lost(&self) {
        // No subscription listening is fine: nothing to tell.
        let _ = self.lost.send(());
    }

    /// A receiver told each time frames may have been lost.
    pub(crate) fn watch_losses(&self) -> broadcast::Receiver<()> {
        self.lost.subscribe()
    }

    /// Resolves once the client has closed its connection for good.
    pub(crate) async fn client_closed(&self) {
        let _ = self.closed.subscribe().wait_for(|closed| *closed).await;
    }

    /// Health as last reported by the client; `client_connected` is the
    /// client's own view, which wins when the two disagree.
    pub(crate) fn health(&self, client_connected: bool) -> TransportHealth {
        let inner = self.lock();
        if inner.connected && client_connected {
            TransportHealth::up(inner.reconnects, inner.since)
        } else {
            let detail = inner
                .detail
                .clone()
                .unwrap_or_else(|| "the NATS client is not connected".to_owned());
            TransportHealth::down(detail, inner.reconnects, inner.since)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_counts_and_signals_lost_frames() {
        let state = ConnectionState::connected();
        let mut losses = state.watch_losses();
        state.on_event("nats://h:1", Event::Connected);
        assert!(losses.try_recv().is_err(), "the first connection loses nothing");
        state.on_event("nats://h:1", Event::Disconnected);
        let down = state.health(false);
        assert!(!down.connected);
        assert!(down.detail.unwrap().contains("nats://h:1"));
        state.on_event("nats://h:1", Event::Connected);
        assert!(losses.try_recv().is_ok());
        let up = state.health(true);
        assert!(up.connected);
        assert_eq!(up.reconnects, 1);
        state.on_event("nats://h:1", Event::SlowConsumer(3));
        assert!(losses.try_recv().is_ok());
        assert!(!state.health(false).connected, "the client's own view wins");
    }
}
