//! What the client's event callback learns about the connection: its state
//! and last error for `health()`, and a signal to every subscription when
//! frames may have been lost (a reconnect, a slow consumer).

use async_nats::Event;
use coord_core::transport::{LinkHealth, LossSignal, TransportHealth};
use tokio::sync::watch;

/// Connection bookkeeping shared by the transport and the client's event callback.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    link: LinkHealth,
    /// Told on every reconnect and slow-consumer report.
    pub(crate) losses: LossSignal,
    /// Set once the client has closed its connection for good.
    closed: watch::Sender<bool>,
}

impl ConnectionState {
    /// The state of a client that has just connected.
    pub(crate) fn connected() -> Self {
        ConnectionState {
            link: LinkHealth::connected(),
            losses: LossSignal::default(),
            closed: watch::channel(false).0,
        }
    }

    /// Takes one event of the client.
    pub(crate) fn on_event(&self, servers: &str, event: Event) {
        match event {
            Event::Connected => {
                if self.link.up() {
                    tracing::info!(servers, "nats reconnected; subscriptions restored");
                    self.losses.notify();
                }
            }
            Event::Disconnected => {
                self.link
                    .down(format!("connection to the NATS server at {servers} lost; reconnecting"));
                tracing::warn!(servers, "nats disconnected");
            }
            Event::Closed => {
                self.link.down(format!("connection to {servers} closed"));
                self.closed.send_replace(true);
            }
            Event::SlowConsumer(sid) => {
                tracing::warn!(servers, sid, "nats slow consumer: the client dropped messages");
                self.losses.notify();
            }
            Event::ServerError(error) => {
                tracing::warn!(servers, %error, "nats server error");
                self.link.note(format!("server error from {servers}: {error}"));
            }
            Event::ClientError(error) => {
                tracing::warn!(servers, %error, "nats client error");
                self.link.note(format!("client error talking to {servers}: {error}"));
            }
            Event::LameDuckMode | Event::Draining => {
                tracing::info!(servers, %event, "nats server going away");
            }
        }
    }

    /// Resolves once the client has closed its connection for good.
    pub(crate) async fn client_closed(&self) {
        let _ = self.closed.subscribe().wait_for(|closed| *closed).await;
    }

    /// Health as last reported by the client; `client_connected` is the
    /// client's own view, which wins when it says "not connected".
    pub(crate) fn health(&self, client_connected: bool) -> TransportHealth {
        let health = self.link.health();
        if health.connected && !client_connected {
            return TransportHealth::down("the NATS client is not connected", health.reconnects, health.since);
        }
        health
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use coord_core::transport::Received;

    #[tokio::test]
    async fn a_reconnect_counts_and_signals_lost_frames() {
        let state = ConnectionState::connected();
        let mut losses = Box::pin(state.losses.markers());
        state.on_event("nats://h:1", Event::Connected);
        state.on_event("nats://h:1", Event::Disconnected);
        let down = state.health(false);
        assert!(!down.connected);
        assert!(down.detail.unwrap().contains("nats://h:1"));
        state.on_event("nats://h:1", Event::Connected);
        assert_eq!(
            losses.next().await,
            Some(Received::Lagged),
            "the reconnect, not the first connect"
        );
        let up = state.health(true);
        assert!(up.connected);
        assert_eq!(up.reconnects, 1);
        state.on_event("nats://h:1", Event::SlowConsumer(3));
        assert_eq!(losses.next().await, Some(Received::Lagged));
        assert!(!state.health(false).connected, "the client's own view wins");
    }
}
