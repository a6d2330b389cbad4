//! A wrapper around a real transport that loses received frames on purpose:
//! a fraction of them at random (frame loss), or all of a connection's
//! current subscriptions while they look healthy (a silent subscription).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use coord_core::transport::{Capabilities, Channel, PresenceStream, Received, Subscription, TransportHealth};
use coord_core::{Namespace, NodeId, Result, Transport, TransportDyn};
use futures::StreamExt;
use rand::Rng;

/// A loss rate shared by every connection of a fixture.
#[derive(Debug, Default)]
pub struct FrameLoss(AtomicU64);

impl FrameLoss {
    /// Sets the probability of dropping each received frame (0 turns loss off).
    pub fn set(&self, rate: f64) {
        self.0.store(rate.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }

    fn rate(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// One connection's silencing: subscriptions made before the last
/// [`Silence::silence_current`] deliver nothing.
#[derive(Debug, Default)]
pub struct Silence {
    made: AtomicU64,
    silent_below: AtomicU64,
}

impl Silence {
    /// Silences every subscription made so far; later ones work.
    pub fn silence_current(&self) {
        self.silent_below
            .store(self.made.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// A transport whose subscriptions lose frames as told, and that owns what
/// its connection runs through (a proxy), ending it when closed.
pub struct FaultyTransport {
    inner: Arc<dyn TransportDyn>,
    loss: Arc<FrameLoss>,
    silence: Arc<Silence>,
    path: Mutex<Option<Box<dyn Send>>>,
}

impl FaultyTransport {
    /// Wraps `inner`; `path` is dropped once the transport is closed.
    pub fn new(
        inner: Arc<dyn TransportDyn>,
        loss: Arc<FrameLoss>,
        silence: Arc<Silence>,
        path: Option<Box<dyn Send>>,
    ) -> Self {
        FaultyTransport {
            inner,
            loss,
            silence,
            path: Mutex::new(path),
        }
    }
}

impl Transport for FaultyTransport {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities_dyn()
    }

    async fn publish(&self, channel: &Channel, frame: Bytes) -> Result<()> {
        self.inner.publish_dyn(channel, frame).await
    }

    async fn subscribe(&self, channel: &Channel) -> Result<Subscription> {
        let subscription = self.inner.subscribe_dyn(channel).await?;
        let number = self.silence.made.fetch_add(1, Ordering::SeqCst) + 1;
        let (loss, silence) = (self.loss.clone(), self.silence.clone());
        let filtered = subscription.filter(move |item| {
            let silenced = number <= silence.silent_below.load(Ordering::SeqCst);
            let lost = matches!(item, Received::Frame(_)) && rand::rng().random_bool(loss.rate());
            futures::future::ready(!silenced && !lost)
        });
        Ok(Box::pin(filtered))
    }

    fn health(&self) -> TransportHealth {
        self.inner.health_dyn()
    }

    async fn close(&self) -> Result<()> {
        let closed = self.inner.close_dyn().await;
        drop(self.path.lock().expect("faulty transport lock").take());
        closed
    }

    /// The inner transport's presence, untouched: loss and silence apply to
    /// frames only (a backend's liveness signal runs beside them).
    async fn presence(&self, namespace: &Namespace, me: &NodeId) -> Result<Option<PresenceStream>> {
        self.inner.presence_dyn(namespace, me).await
    }
}
