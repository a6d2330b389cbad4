//! [`ZenohTransport`]: a Zenoh peer session moving coord's frames.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use coord_core::transport::{Capabilities, Channel, PresenceStream, Subscription, Transport, TransportHealth};
use coord_core::{Error, ErrorKind, Namespace, NodeId, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zenoh::Wait;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;

use crate::cause::cause;
use crate::config::ZenohConfig;
use crate::inlet::{self, Inlet};
use crate::link::{self, Links};
use crate::{files, reach};

/// The backend's name, as errors and reports show it.
pub const BACKEND: &str = "zenoh";

/// One node's Zenoh peer: publishes and subscribes coord's frames on the key
/// expressions `<ns>/all` and `<ns>/node/<id>`.
///
/// Cloning is cheap and shares the session.
#[derive(Clone)]
pub struct ZenohTransport {
    inner: Arc<Inner>,
}

struct Inner {
    session: zenoh::Session,
    config: ZenohConfig,
    /// One publisher per channel, declared on first use and reused.
    publishers: Mutex<HashMap<String, Arc<Publisher<'static>>>>,
    links: Arc<Links>,
    closed: watch::Sender<bool>,
    monitor: Mutex<Option<JoinHandle<()>>>,
    dropped: Arc<AtomicU64>,
}

impl ZenohTransport {
    /// Opens a Zenoh session in peer mode with `config`.
    ///
    /// # Behavior
    /// - Fails with kind `Config` when the configuration (or a file it names) is invalid.
    /// - Fails with kind `Unavailable` when the session cannot open (e.g. a
    ///   listen port is taken), or, with `require-connect`, when no `connect`
    ///   endpoint answers within `connect-timeout`; the message names the cause.
    /// - Otherwise returns at once: peers that are not up yet are retried in
    ///   the background, and [`Transport::health`] reports them missing.
    /// - Must run inside a Tokio runtime (as the whole engine does): it
    ///   spawns the task that watches the session's links.
    pub async fn open(config: ZenohConfig) -> Result<ZenohTransport> {
        let native = config.to_zenoh()?;
        files::check(&config)?;
        let session = zenoh::open(native).await.map_err(|error| {
            Error::new(
                ErrorKind::Unavailable,
                "zenoh open",
                format!(
                    "cannot open the Zenoh session (listen: [{}]): {}",
                    config.listen.join(", "),
                    cause(&error)
                ),
            )
            .temporary()
        })?;
        let links = Links::new(&config.connect, config.multicast_scouting);
        links.poll(&session);
        if config.require_connect && !links.connected() {
            let deadline = tokio::time::Instant::now() + config.connect_timeout;
            while !links.connected() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(link::POLL).await;
                links.poll(&session);
            }
            if !links.connected() {
                let cause = reach::diagnose(&config.connect).await;
                let _ = session.close().await;
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "zenoh connect",
                    format!(
                        "no peer reached within {:?} (require-connect is on): {cause}",
                        config.connect_timeout
                    ),
                )
                .temporary());
            }
        }
        let (closed, closed_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            session,
            config,
            publishers: Mutex::new(HashMap::new()),
            links,
            closed,
            monitor: Mutex::new(None),
            dropped: Arc::new(AtomicU64::new(0)),
        });
        let monitor = tokio::spawn(monitor(Arc::downgrade(&inner), closed_rx));
        *inner.monitor.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(monitor);
        Ok(ZenohTransport { inner })
    }

    /// The Zenoh session, for liveliness and expert use.
    pub(crate) fn session(&self) -> &zenoh::Session {
        &self.inner.session
    }

    /// A receiver that turns `true` when the transport is closed.
    pub(crate) fn closed_signal(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    /// Whether [`Transport::close`] was called.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// Frames dropped because a subscription's queue was full (each loss is
    /// also reported on the stream as `Lagged`).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// This session's Zenoh id.
    pub fn zid(&self) -> String {
        self.inner.session.zid().to_string()
    }

    /// The configuration the transport was opened with.
    pub fn config(&self) -> &ZenohConfig {
        &self.inner.config
    }

    pub(crate) fn ensure_open(&self, operation: &'static str) -> Result<()> {
        if self.is_closed() {
            return Err(Error::new(
                ErrorKind::Closed,
                operation,
                "the zenoh transport is closed",
            ));
        }
        Ok(())
    }

    async fn publisher(&self, key: String) -> Result<Arc<Publisher<'static>>> {
        if let Some(publisher) = self.publishers().get(&key) {
            return Ok(publisher.clone());
        }
        // Block, not Drop: a frame lost to local congestion would be a gap
        // every receiver resynchronises from; Zenoh bounds the wait by
        // closing a link stuck longer than `publish-timeout`.
        let publisher = self
            .inner
            .session
            .declare_publisher(key.clone())
            .congestion_control(CongestionControl::Block)
            .await
            .map_err(|error| {
                self.failure(
                    "zenoh publish",
                    format!("cannot declare a publisher on `{key}`: {}", cause(&error)),
                )
            })?;
        let publisher = Arc::new(publisher);
        Ok(self.publishers().entry(key).or_insert(publisher).clone())
    }

    fn publishers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Publisher<'static>>>> {
        self.inner
            .publishers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An error for a failed Zenoh call: `Closed` after close, else a temporary `Unavailable`.
    fn failure(&self, operation: &'static str, message: String) -> Error {
        if self.is_closed() {
            Error::new(ErrorKind::Closed, operation, "the zenoh transport is closed")
        } else {
            Error::new(ErrorKind::Unavailable, operation, message).temporary()
        }
    }
}

impl Transport for ZenohTransport {
    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::new(BACKEND, self.inner.config.max_payload);
        capabilities.presence = self.inner.config.liveliness;
        capabilities
    }

    async fn publish(&self, channel: &Channel, frame: Bytes) -> Result<()> {
        self.ensure_open("zenoh publish")?;
        let max = self.inner.config.max_payload;
        if frame.len() > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                "zenoh publish",
                format!("frame of {} bytes exceeds max payload {max}", frame.len()),
            ));
        }
        let publisher = self.publisher(channel.joined('/')).await?;
        // A blocking put may wait for room in a congested link: keep it off
        // the async workers.
        let put = tokio::task::spawn_blocking(move || publisher.put(frame).wait());
        let bound = self.inner.config.publish_timeout + Duration::from_secs(1);
        match tokio::time::timeout(bound, put).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => {
                Err(self.failure("zenoh publish", format!("put on `{channel}` failed: {}", cause(&error))))
            }
            Ok(Err(join)) => {
                Err(Error::new(ErrorKind::Unexpected, "zenoh publish", "the put task failed").with_source(join))
            }
            Err(_) => Err(self.failure(
                "zenoh publish",
                format!("put on `{channel}` still waiting after {bound:?}"),
            )),
        }
    }

    async fn subscribe(&self, channel: &Channel) -> Result<Subscription> {
        self.ensure_open("zenoh subscribe")?;
        let key = channel.joined('/');
        let (inlet, rx) = Inlet::new(self.inner.config.subscription_capacity, self.inner.dropped.clone());
        let handler = inlet.clone();
        let subscriber = self
            .inner
            .session
            .declare_subscriber(key.clone())
            .callback(move |sample| {
                handler.offer(coord_core::transport::Received::Frame(Bytes::from(
                    sample.payload().to_bytes().into_owned(),
                )))
            })
            .await
            .map_err(|error| {
                self.failure(
                    "zenoh subscribe",
                    format!("cannot subscribe to `{key}`: {}", cause(&error)),
                )
            })?;
        self.inner.links.register(&inlet);
        Ok(inlet::stream(rx, self.closed_signal(), (subscriber, inlet)))
    }

    fn health(&self) -> TransportHealth {
        self.inner.links.health()
    }

    async fn close(&self) -> Result<()> {
        if self.inner.closed.send_replace(true) {
            return Ok(());
        }
        let monitor = self
            .inner
            .monitor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(monitor) = monitor {
            let _ = monitor.await;
        }
        // After the monitor ended, so that no last poll says "connected".
        self.inner.links.close();
        self.publishers().clear();
        self.inner.session.close().await.map_err(|error| {
            Error::new(
                ErrorKind::Unexpected,
                "zenoh close",
                format!("closing the Zenoh session failed: {}", cause(&error)),
            )
        })
    }

    /// [`ZenohTransport::announce`], unless `liveliness` is off.
    async fn presence(&self, namespace: &Namespace, me: &NodeId) -> Result<Option<PresenceStream>> {
        if !self.inner.config.liveliness {
            return Ok(None);
        }
        self.announce(namespace, me).await.map(Some)
    }
}

/// Polls the session's links every [`link::POLL`] until the transport is
/// closed or dropped.
async fn monitor(inner: Weak<Inner>, mut closed: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(link::POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = closed.wait_for(|closed| *closed) => return,
            _ = tick.tick() => match inner.upgrade() {
                Some(inner) => inner.links.poll(&inner.session),
                None => return,
            },
        }
    }
}
