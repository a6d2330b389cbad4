//! What librdkafka's callbacks tell about the connections: each client's
//! broker state (from its statistics) and last error for `health()`, and a
//! signal to the subscriptions when frames may have been lost (a consumer
//! that lost its brokers and got them back).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use coord_core::transport::TransportHealth;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use tokio::sync::watch;

/// Which of the transport's clients a context belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The producer (publishes every frame).
    Producer,
    /// A consumer (reads one topic).
    Consumer,
    /// The admin client (creates and deletes topics).
    Admin,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Admin => "admin client",
        }
    }
}

/// The transport's connection bookkeeping, shared by every client context.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    servers: String,
    inner: Mutex<Inner>,
    /// Bumped each time a consumer got its brokers back after losing them.
    lost: watch::Sender<u64>,
    /// Set when a broker refused the credentials or the TLS handshake
    /// failed: retrying will not help.
    refused: watch::Sender<Option<String>>,
}

#[derive(Debug)]
struct Inner {
    producer: Link,
    consumer: Link,
    /// The last error any client reported (the broker's own failure:
    /// refused, authentication…).
    last_error: Option<String>,
    /// What the last statistics said about the brokers, while down.
    brokers: Option<String>,
    reconnects: u64,
    since: SystemTime,
}

/// One client's view of its brokers.
#[derive(Clone, Copy, Debug)]
struct Link {
    connected: bool,
}

impl ConnectionState {
    /// The state of clients that have just reached the cluster at `servers`.
    pub(crate) fn new(servers: &str) -> Arc<Self> {
        Arc::new(ConnectionState {
            servers: servers.to_owned(),
            inner: Mutex::new(Inner {
                producer: Link { connected: true },
                consumer: Link { connected: true },
                last_error: None,
                brokers: None,
                reconnects: 0,
                since: SystemTime::now(),
            }),
            lost: watch::channel(0).0,
            refused: watch::channel(None).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("kafka connection state lock")
    }

    /// A context for one client of `role`.
    pub(crate) fn context(self: &Arc<Self>, role: Role) -> KafkaContext {
        KafkaContext {
            role,
            state: self.clone(),
        }
    }

    /// A receiver whose value changes each time frames may have been lost.
    pub(crate) fn watch_losses(&self) -> watch::Receiver<u64> {
        self.lost.subscribe()
    }

    /// Resolves with the cause once a broker refused the credentials or the
    /// TLS handshake failed.
    pub(crate) async fn refused(&self) -> String {
        let mut refused = self.refused.subscribe();
        let cause = refused.wait_for(Option::is_some).await.map(|cause| cause.clone());
        match cause {
            Ok(cause) => cause.unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// The last error reported, for messages.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    fn set(&self, role: Role, connected: bool, brokers: Option<String>) {
        let mut inner = self.lock();
        let was_up = inner.producer.connected && inner.consumer.connected;
        let link = match role {
            Role::Producer => &mut inner.producer,
            Role::Consumer => &mut inner.consumer,
            Role::Admin => return,
        };
        let came_back = connected && !link.connected;
        link.connected = connected;
        if brokers.is_some() || connected {
            inner.brokers = brokers;
        }
        let is_up = inner.producer.connected && inner.consumer.connected;
        if was_up != is_up {
            inner.since = SystemTime::now();
            if is_up {
                inner.reconnects += 1;
            }
        }
        drop(inner);
        if came_back {
            tracing::info!(servers = %self.servers, role = role.name(), "kafka brokers reachable again");
            if role == Role::Consumer {
                self.frames_lost();
            }
        }
    }

    /// Tells every subscription that frames may have been lost.
    pub(crate) fn frames_lost(&self) {
        self.lost.send_modify(|n| *n += 1);
    }

    /// Takes one statistics report of a client: connected when one of its
    /// brokers is up; down when none is and it has tried (brokers it has
    /// never needed stay in `INIT` with sparse connections).
    fn on_stats(&self, role: Role, stats: &Statistics) {
        let brokers: Vec<_> = stats.brokers.values().filter(|b| b.source != "internal").collect();
        if brokers.iter().any(|b| b.state == "UP") {
            self.set(role, true, None);
            return;
        }
        if brokers.iter().all(|b| b.state == "INIT") {
            return;
        }
        let states: Vec<String> = brokers.iter().map(|b| format!("{} {}", b.name, b.state)).collect();
        self.set(role, false, Some(format!("no broker is up ({})", states.join(", "))));
    }

    fn on_error(&self, role: Role, error: &KafkaError, reason: &str) {
        let text = format!("{} of {}: {error}: {reason}", role.name(), self.servers);
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            tracing::warn!(servers = %self.servers, role = role.name(), %reason, "kafka: all brokers down");
            // Keep the broker's own failure (refused, authentication…) as
            // the cause: "all brokers down" only sums it up.
            self.lock().last_error.get_or_insert(text);
            self.set(role, false, Some(reason.to_owned()));
            return;
        }
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed | RDKafkaErrorCode::SSL)
        ) {
            self.refused.send_replace(Some(text.clone()));
        }
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::BrokerTransportFailure) {
            tracing::debug!(servers = %self.servers, role = role.name(), %reason, "kafka broker connection failed");
        } else {
            tracing::warn!(servers = %self.servers, role = role.name(), %error, %reason, "kafka client error");
        }
        self.lock().last_error = Some(text);
    }

    /// Health as last reported by the clients.
    pub(crate) fn health(&self) -> TransportHealth {
        let inner = self.lock();
        if inner.producer.connected && inner.consumer.connected {
            TransportHealth::up(inner.reconnects, inner.since)
        } else {
            let side = match (inner.producer.connected, inner.consumer.connected) {
                (false, false) => "producer and consumer",
                (false, true) => "producer",
                _ => "consumer",
            };
            let brokers = inner.brokers.as_deref().unwrap_or("no broker reachable");
            let detail = match &inner.last_error {
                Some(error) => format!(
                    "kafka {side} not connected to {}: {brokers}; last error: {error}",
                    self.servers
                ),
                None => format!("kafka {side} not connected to {}: {brokers}", self.servers),
            };
            TransportHealth::down(detail, inner.reconnects, inner.since)
        }
    }
}

/// The librdkafka client context of one client: routes its statistics,
/// errors and logs to the shared [`ConnectionState`] and to `tracing`.
pub(crate) struct KafkaContext {
    role: Role,
    state: Arc<ConnectionState>,
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let servers = &self.state.servers;
        let role = self.role.name();
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", %servers, role, fac, "{message}");
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", %servers, role, fac, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", %servers, role, fac, "{message}");
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", %servers, role, fac, "{message}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        self.state.on_stats(self.role, &statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.state.on_error(self.role, &error, reason);
    }
}

impl ConsumerContext for KafkaContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_that_comes_back_signals_lost_frames() {
        let state = ConnectionState::new("k:9092");
        let losses = state.watch_losses();
        state.set(Role::Consumer, true, None);
        assert!(!losses.has_changed().unwrap(), "staying up loses nothing");
        state.on_error(
            Role::Consumer,
            &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        let down = state.health();
        assert!(!down.connected);
        assert!(down.detail.as_deref().unwrap().contains("k:9092"), "{down:?}");
        assert!(down.detail.as_deref().unwrap().contains("brokers are down"), "{down:?}");
        state.set(Role::Consumer, true, None);
        assert!(losses.has_changed().unwrap());
        let up = state.health();
        assert!(up.connected);
        assert_eq!(up.reconnects, 1);
        state.set(Role::Producer, false, Some("gone".into()));
        let down = state.health();
        assert!(!down.connected);
        assert!(down.detail.unwrap().contains("producer not connected"));
    }
}
