//! Subscriptions on a standalone or Sentinel-managed server: one pub/sub
//! connection per transport carries every channel (a connection in
//! subscribe mode takes no other command, so publishing has its own). When
//! it drops it is made again with backoff (through the sentinels, so a new
//! master is found), every channel is subscribed again, and each
//! subscription yields one `Lagged`. Frames reach the engine through a
//! bounded queue per subscription: what does not fit is dropped, and a
//! `Lagged` takes its place as soon as there is room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use coord_core::transport::{Backoff, LinkHealth, Received, Subscription};
use coord_core::{Error, ErrorKind, Result};
use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, watch};

use crate::errors::{redis_error, timed_out};
use crate::locator::Locator;

/// First reconnect delay; doubles up to `reconnect-max-delay`.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(10);

/// One subscription's queue to the engine.
struct Outlet {
    tx: mpsc::Sender<Received>,
    lost: bool,
}

impl Outlet {
    /// A queue of `capacity` items and the stream that drains it (it ends
    /// once the outlet is dropped).
    fn new(capacity: usize) -> (Self, Subscription) {
        let (tx, rx) = mpsc::channel(capacity);
        let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        (Outlet { tx, lost: false }, Box::pin(stream))
    }

    fn offer(&mut self, item: Received) -> std::result::Result<(), mpsc::error::TrySendError<Received>> {
        self.tx.try_send(item)
    }

    /// Hands on a frame; false once the engine dropped the subscription.
    fn frame(&mut self, frame: Bytes) -> bool {
        if self.lost {
            match self.offer(Received::Lagged) {
                Ok(()) => self.lost = false,
                Err(mpsc::error::TrySendError::Full(_)) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        match self.offer(Received::Frame(frame)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.lost {
                    tracing::warn!("redis subscription queue full: frames dropped until the engine catches up");
                }
                self.lost = true;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Frames may have been lost; false once the engine dropped the subscription.
    fn lagged(&mut self) -> bool {
        match self.offer(Received::Lagged) {
            Ok(()) => {
                self.lost = false;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lost = true;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// The subscriptions of one transport, by channel: where received frames
/// and loss notices go. Cloning shares them.
#[derive(Clone, Default)]
pub(crate) struct Routes(Arc<Mutex<HashMap<String, Vec<Outlet>>>>);

impl Routes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Outlet>>> {
        self.0.lock().expect("redis routes lock")
    }

    /// A new subscription of `channel`, with a queue of `capacity` frames.
    pub(crate) fn add(&self, channel: &str, capacity: usize) -> Subscription {
        let (outlet, stream) = Outlet::new(capacity);
        self.lock().entry(channel.to_owned()).or_default().push(outlet);
        stream
    }

    /// Hands a frame received on `channel` to its subscriptions (dropping
    /// those the engine let go).
    pub(crate) fn frame(&self, channel: &str, payload: &[u8]) {
        if let Some(outlets) = self.lock().get_mut(channel) {
            let frame = Bytes::copy_from_slice(payload);
            outlets.retain_mut(|outlet| outlet.frame(frame.clone()));
        }
    }

    /// Tells every subscription that frames may have been lost.
    pub(crate) fn lagged(&self) {
        for outlets in self.lock().values_mut() {
            outlets.retain_mut(Outlet::lagged);
        }
    }

    /// The channels subscribed to.
    fn channels(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Ends every subscription.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

/// The transport's pub/sub connection and its subscriptions.
pub(crate) struct Subscriber {
    locator: Arc<Locator>,
    /// Where to send `SUBSCRIBE`; `None` while reconnecting.
    sink: Arc<tokio::sync::Mutex<Option<(PubSubSink, String)>>>,
    routes: Routes,
    /// The pub/sub connection's health.
    pub(crate) link: Arc<LinkHealth>,
}

impl Subscriber {
    /// Opens the pub/sub connection; it is followed until `closed` turns true.
    pub(crate) async fn connect(locator: Arc<Locator>, closed: watch::Receiver<bool>) -> Result<Self> {
        let (sink, stream, server) = open(&locator).await?;
        let subscriber = Subscriber {
            locator,
            sink: Arc::new(tokio::sync::Mutex::new(Some((sink, server.clone())))),
            routes: Routes::default(),
            link: Arc::new(LinkHealth::connected()),
        };
        tokio::spawn(follow(
            subscriber.locator.clone(),
            subscriber.sink.clone(),
            subscriber.routes.clone(),
            subscriber.link.clone(),
            (stream, server),
            closed,
        ));
        Ok(subscriber)
    }

    /// Subscribes to `channel`.
    pub(crate) async fn subscribe(&self, channel: String) -> Result<Subscription> {
        let mut slot = self.sink.lock().await;
        let Some((sink, server)) = slot.as_mut() else {
            let detail = self.link.health().detail.unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Unavailable,
                "redis subscribe",
                format!("reconnecting: {detail}"),
            )
            .temporary());
        };
        let stream = self.routes.add(&channel, self.locator.config().subscription_capacity);
        let bound = self.locator.config().command_timeout;
        match tokio::time::timeout(bound, sink.subscribe(&channel)).await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(error)) => Err(redis_error("redis subscribe", server, error)),
            Err(_) => Err(timed_out("redis subscribe", server, bound)),
        }
    }

    /// Ends every subscription.
    pub(crate) fn close(&self) {
        self.routes.clear();
    }
}

/// A new pub/sub connection to the current server, split.
async fn open(locator: &Locator) -> Result<(PubSubSink, PubSubStream, String)> {
    let server = locator.server().await?;
    let client = locator.client_for(&server, true)?;
    let bound = locator.config().connect_timeout;
    match tokio::time::timeout(bound, client.get_async_pubsub()).await {
        Ok(Ok(pubsub)) => {
            let (sink, stream) = pubsub.split();
            Ok((sink, stream, server))
        }
        Ok(Err(error)) => Err(redis_error("redis subscribe", &server, error)),
        Err(_) => Err(timed_out("redis subscribe", &server, bound)),
    }
}

/// Reconnects and subscribes to every channel again.
async fn reopen(locator: &Locator, channels: &[String]) -> Result<(PubSubSink, PubSubStream, String)> {
    let (mut sink, stream, server) = open(locator).await?;
    for channel in channels {
        sink.subscribe(channel)
            .await
            .map_err(|error| redis_error("redis subscribe", &server, error))?;
    }
    Ok((sink, stream, server))
}

async fn follow(
    locator: Arc<Locator>,
    sink: Arc<tokio::sync::Mutex<Option<(PubSubSink, String)>>>,
    routes: Routes,
    link: Arc<LinkHealth>,
    first: (PubSubStream, String),
    mut closed: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(FIRST_RECONNECT_DELAY, locator.config().reconnect_max_delay);
    let (mut stream, mut server) = first;
    loop {
        loop {
            tokio::select! {
                _ = closed.wait_for(|closed| *closed) => return,
                message = stream.next() => match message {
                    Some(message) => routes.frame(message.get_channel_name(), message.get_payload_bytes()),
                    None => break,
                }
            }
        }
        *sink.lock().await = None;
        link.down(format!(
            "pub/sub connection to the Redis server at {server} lost; reconnecting"
        ));
        tracing::warn!(%server, "redis pub/sub connection lost");
        loop {
            tokio::select! {
                _ = closed.wait_for(|closed| *closed) => return,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
            let channels = routes.channels();
            match reopen(&locator, &channels).await {
                Ok((new_sink, new_stream, new_server)) => {
                    backoff.reset();
                    *sink.lock().await = Some((new_sink, new_server.clone()));
                    (stream, server) = (new_stream, new_server);
                    link.up();
                    tracing::info!(%server, channels = channels.len(), "redis resubscribed");
                    routes.lagged();
                    break;
                }
                Err(error) => {
                    link.note(error.message().to_owned());
                    tracing::debug!(%error, "redis resubscribe failed");
                }
            }
        }
    }
}
