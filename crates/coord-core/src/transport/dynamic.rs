//! The object-safe twin of [`Transport`], so the engine can hold any backend
//! as `Arc<dyn TransportDyn>`.

use bytes::Bytes;
use futures::future::BoxFuture;

use super::{Capabilities, Channel, PresenceStream, Subscription, Transport, TransportHealth};
use crate::error::Result;
use crate::identity::{Namespace, NodeId};

/// [`Transport`] with boxed futures; implemented for every `Transport`.
pub trait TransportDyn: Send + Sync + 'static {
    /// See [`Transport::capabilities`].
    fn capabilities_dyn(&self) -> Capabilities;
    /// See [`Transport::publish`].
    fn publish_dyn<'a>(&'a self, channel: &'a Channel, frame: Bytes) -> BoxFuture<'a, Result<()>>;
    /// See [`Transport::subscribe`].
    fn subscribe_dyn<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, Result<Subscription>>;
    /// See [`Transport::health`].
    fn health_dyn(&self) -> TransportHealth;
    /// See [`Transport::close`].
    fn close_dyn(&self) -> BoxFuture<'_, Result<()>>;
    /// See [`Transport::presence`].
    fn presence_dyn<'a>(
        &'a self,
        namespace: &'a Namespace,
        me: &'a NodeId,
    ) -> BoxFuture<'a, Result<Option<PresenceStream>>>;
}

impl<T: Transport> TransportDyn for T {
    fn capabilities_dyn(&self) -> Capabilities {
        self.capabilities()
    }
    fn publish_dyn<'a>(&'a self, channel: &'a Channel, frame: Bytes) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.publish(channel, frame))
    }
    fn subscribe_dyn<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, Result<Subscription>> {
        Box::pin(self.subscribe(channel))
    }
    fn health_dyn(&self) -> TransportHealth {
        self.health()
    }
    fn close_dyn(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.close())
    }
    fn presence_dyn<'a>(
        &'a self,
        namespace: &'a Namespace,
        me: &'a NodeId,
    ) -> BoxFuture<'a, Result<Option<PresenceStream>>> {
        Box::pin(self.presence(namespace, me))
    }
}
