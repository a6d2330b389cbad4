//! [`NatsTransport`]: coord frames as core NATS messages on the subjects
//! `<namespace>.all` and `<namespace>.node.<id>`.

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, ConnectErrorKind, ConnectOptions};
use bytes::Bytes;
use coord_core::transport::{Backoff, Capabilities, Channel, Received, Subscription, TransportHealth, until_closed};
use coord_core::{Error, ErrorKind, Result, Transport};
use futures::{StreamExt, stream};
use tokio::sync::watch;

use crate::config::NatsConfig;
use crate::connection::ConnectionState;

/// The backend's name in capabilities, errors and reports.
const BACKEND: &str = "nats";
/// First reconnect delay; doubles up to `reconnect-max-delay`.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(10);
/// How long `close` waits for queued frames to be flushed.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// A connected NATS client carrying coord frames.
///
/// Subscriptions survive outages: the client reconnects by itself with
/// bounded, jittered exponential backoff and re-sends its subscriptions, and
/// each subscription yields one `Lagged` per reconnect or slow-consumer
/// report. Frames are published with the client's echo on, because the
/// engine's health probe travels through the server back to the sender.
pub struct NatsTransport {
    client: Client,
    state: Arc<ConnectionState>,
    servers: String,
    max_payload: usize,
    publish_timeout: Duration,
    closed: watch::Sender<bool>,
}

impl std::fmt::Debug for NatsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsTransport")
            .field("servers", &self.servers)
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}

impl NatsTransport {
    /// Connects to the first reachable server of `config`.
    ///
    /// # Errors
    /// - `Config` for invalid settings or an unreadable credentials file.
    /// - `Unauthorized` when the server refuses the credentials or TLS fails.
    /// - `Unavailable` (temporary) when no server can be reached within
    ///   `connect-timeout`. The message names the servers and the cause.
    pub async fn connect(config: &NatsConfig) -> Result<Self> {
        config.validate()?;
        let servers = config.servers.join(",");
        let state = Arc::new(ConnectionState::connected());
        let options = options(config, &servers, state.clone()).await?;
        let client = options
            .connect(config.servers.as_slice())
            .await
            .map_err(|error| connect_error(&servers, error))?;
        let server_max = client.server_info().max_payload;
        let max_payload = match (server_max, config.max_payload) {
            (0, Some(mine)) => mine,
            (0, None) => 1024 * 1024,
            (server, Some(mine)) => server.min(mine),
            (server, None) => server,
        };
        tracing::info!(%servers, max_payload, "nats connected");
        Ok(NatsTransport {
            client,
            state,
            servers,
            max_payload,
            publish_timeout: config.publish_timeout,
            closed: watch::channel(false).0,
        })
    }

    fn subject(channel: &Channel) -> String {
        channel.joined('.')
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Returns once the server has processed everything this client sent
    /// before: `SUBSCRIBE` is not acknowledged, but the server handles a
    /// client's commands in order, so a message on a private inbox coming
    /// back proves that an earlier subscription is in place.
    async fn barrier(&self) -> Result<()> {
        let failed = |error: String| {
            unavailable(
                "nats subscribe",
                format!("the subscription was not confirmed by {}: {error}", self.servers),
            )
        };
        let inbox = self.client.new_inbox();
        let mut echo = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| failed(e.to_string()))?;
        self.client
            .publish(inbox, Bytes::new())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let confirmed = tokio::time::timeout(self.publish_timeout, echo.next()).await;
        let _ = echo.unsubscribe().await;
        match confirmed {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(failed("the connection closed".to_owned())),
            Err(_) => Err(failed(format!("no answer within {:?}", self.publish_timeout))),
        }
    }
}

/// The client options of `config`, reporting events to `state`.
async fn options(config: &NatsConfig, servers: &str, state: Arc<ConnectionState>) -> Result<ConnectOptions> {
    let mut options = ConnectOptions::new();
    if let Some(path) = &config.credentials_file {
        options = options.credentials_file(path).await.map_err(|error| {
            Error::new(
                ErrorKind::Config,
                "nats config",
                format!(
                    "cannot read `nats.credentials-file` {}: {error}: point it at a readable .creds file",
                    path.display()
                ),
            )
        })?;
    }
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &config.token {
        options = options.token(token.clone());
    }
    if let Some(seed) = &config.nkey_seed {
        options = options.nkey(seed.clone());
    }
    if let Some(tls) = &config.tls {
        options = options.require_tls(tls.required);
        if tls.handshake_first {
            options = options.tls_first();
        }
        if let Some(ca) = &tls.ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    if let Some(name) = &config.client_name {
        options = options.name(name);
    }
    let backoff = Backoff::new(FIRST_RECONNECT_DELAY, config.reconnect_max_delay);
    let servers = servers.to_owned();
    Ok(options
        .connection_timeout(config.connect_timeout)
        .ping_interval(config.ping_interval)
        .subscription_capacity(config.subscription_capacity)
        .max_reconnects(None)
        .reconnect_delay_callback(move |attempt| backoff.delay_for_attempt(attempt))
        .event_callback(move |event| {
            let (state, servers) = (state.clone(), servers.clone());
            async move { state.on_event(&servers, event) }
        }))
}

/// A connect failure as coord's error: the backend, the servers and the cause.
fn connect_error(servers: &str, error: async_nats::ConnectError) -> Error {
    // The client reports a certificate it does not trust as an I/O error.
    let certificate = error.to_string().contains("certificate");
    let (kind, temporary, hint) = match error.kind() {
        _ if certificate => (
            ErrorKind::Unauthorized,
            false,
            "the server's certificate is not trusted: set `nats.tls.ca` to the CA that signed it",
        ),
        ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => (
            ErrorKind::Unauthorized,
            false,
            "check the user/password, token or credentials file",
        ),
        ConnectErrorKind::Tls => (
            ErrorKind::Unauthorized,
            false,
            "check the TLS settings: CA, client certificate and whether the server offers TLS",
        ),
        ConnectErrorKind::ServerParse => (ErrorKind::Config, false, "fix the server URLs in `nats.servers`"),
        _ => (
            ErrorKind::Unavailable,
            true,
            "is nats-server running and listening there?",
        ),
    };
    let message = format!("cannot connect to the NATS server at {servers}: {error}; {hint}");
    let error = Error::new(kind, "nats connect", message).with_source(error);
    if temporary { error.temporary() } else { error }
}

fn unavailable(operation: &'static str, message: String) -> Error {
    Error::new(ErrorKind::Unavailable, operation, message).temporary()
}

impl Transport for NatsTransport {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(BACKEND, self.max_payload)
    }

    async fn publish(&self, channel: &Channel, frame: Bytes) -> Result<()> {
        if self.is_closed() {
            return Err(Error::new(ErrorKind::Closed, "nats publish", "the transport is closed"));
        }
        if frame.len() > self.max_payload {
            return Err(Error::new(
                ErrorKind::TooLarge,
                "nats publish",
                format!(
                    "a frame of {} bytes exceeds the server's max_payload of {} bytes",
                    frame.len(),
                    self.max_payload
                ),
            ));
        }
        if self.client.connection_state() != State::Connected {
            let health = self.state.health(false);
            let detail = health.detail.unwrap_or_default();
            return Err(unavailable("nats publish", format!("not connected: {detail}")));
        }
        let subject = Self::subject(channel);
        match tokio::time::timeout(self.publish_timeout, self.client.publish(subject, frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(unavailable(
                "nats publish",
                format!("publishing to {} failed: {error}", self.servers),
            )
            .with_source(error)),
            Err(_) => Err(unavailable(
                "nats publish",
                format!(
                    "the client's outgoing buffer stayed full for {:?} ({} unreachable?)",
                    self.publish_timeout, self.servers
                ),
            )),
        }
    }

    async fn subscribe(&self, channel: &Channel) -> Result<Subscription> {
        if self.is_closed() {
            return Err(Error::new(
                ErrorKind::Closed,
                "nats subscribe",
                "the transport is closed",
            ));
        }
        let losses = self.state.losses.markers();
        let subscriber = self.client.subscribe(Self::subject(channel)).await.map_err(|error| {
            unavailable(
                "nats subscribe",
                format!("subscribing to {channel} on {} failed: {error}", self.servers),
            )
            .with_source(error)
        })?;
        self.barrier().await?;
        let frames = subscriber.map(|message| Received::Frame(message.payload));
        let items = stream::select(frames, losses);
        Ok(Box::pin(items.take_until(until_closed(self.closed.subscribe()))))
    }

    fn health(&self) -> TransportHealth {
        if self.is_closed() {
            return TransportHealth::down("the transport is closed", 0, std::time::SystemTime::now());
        }
        self.state.health(self.client.connection_state() == State::Connected)
    }

    async fn close(&self) -> Result<()> {
        if self.closed.send_replace(true) {
            return Ok(());
        }
        if self.client.connection_state() == State::Connected {
            let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, self.client.flush()).await;
        }
        // Draining ends the client's connection task; wait for it, so that
        // nothing of this transport (a reconnect loop) outlives `close`.
        let drained = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, async {
            if self.client.drain().await.is_ok() {
                self.state.client_closed().await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(servers = %self.servers, "nats client did not close within {CLOSE_FLUSH_TIMEOUT:?}");
        }
        tracing::debug!(servers = %self.servers, "nats transport closed");
        Ok(())
    }
}
