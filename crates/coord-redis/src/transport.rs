//! [`RedisTransport`]: coord frames as Redis pub/sub messages on the
//! channels `<namespace>.all` and `<namespace>.node.<id>`.

use std::sync::Arc;

use bytes::Bytes;
use coord_core::transport::{Capabilities, Channel, LinkHealth, Subscription, TransportHealth};
use coord_core::{Error, ErrorKind, Result, Transport};
use redis::aio::MultiplexedConnection;
use tokio::sync::{Mutex, watch};

use crate::cluster::ClusterLink;
use crate::config::{RedisConfig, Topology};
use crate::errors::{redis_error, timed_out};
use crate::locator::Locator;
use crate::subscription::Subscriber;

/// The backend's name in capabilities, errors and reports.
const BACKEND: &str = "redis";

/// A Redis client carrying coord frames, on any of the three topologies.
///
/// Standalone and Sentinel: publishes go through one multiplexed
/// connection, and each subscription has a pub/sub connection of its own
/// (a connection in subscribe mode takes no other command); a dropped
/// connection is made again with bounded, jittered backoff, through the
/// sentinels when there are some, and the subscription yields `Lagged`.
/// Cluster: sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE`) through the cluster
/// client, which follows the slots and resubscribes after a reconnect.
pub struct RedisTransport {
    /// The publishing side's health (and the cluster connection's).
    link: Arc<LinkHealth>,
    side: Side,
    max_payload: usize,
    servers: String,
    closed: watch::Sender<bool>,
}

enum Side {
    Pubsub {
        locator: Arc<Locator>,
        publisher: Mutex<Option<(MultiplexedConnection, String)>>,
        subscriber: Subscriber,
    },
    Cluster(ClusterLink),
}

impl std::fmt::Debug for RedisTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTransport")
            .field("servers", &self.servers)
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}

impl RedisTransport {
    /// Connects to the server (standalone), the master the sentinels name
    /// (Sentinel) or the cluster (Cluster).
    ///
    /// # Errors
    /// - `Config` for invalid settings or unreadable TLS files.
    /// - `Unauthorized` when the server refuses the credentials.
    /// - `Unavailable` (temporary) when it cannot be reached within
    ///   `connect-timeout`. The message names the servers and the cause.
    pub async fn connect(config: &RedisConfig) -> Result<Self> {
        config.validate()?;
        let servers = config.server_list();
        let link = Arc::new(LinkHealth::connected());
        let closed = watch::channel(false).0;
        let side = match config.topology {
            Topology::Cluster => Side::Cluster(ClusterLink::connect(config, link.clone()).await?),
            Topology::Standalone | Topology::Sentinel => {
                let locator = Arc::new(Locator::new(config.clone())?);
                let publisher = locator.publisher().await?;
                let subscriber = Subscriber::connect(locator.clone(), closed.subscribe()).await?;
                Side::Pubsub {
                    locator,
                    publisher: Mutex::new(Some(publisher)),
                    subscriber,
                }
            }
        };
        tracing::info!(%servers, topology = ?config.topology, "redis connected");
        Ok(RedisTransport {
            link,
            side,
            max_payload: config.max_payload,
            servers,
            closed,
        })
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    fn closed_error(operation: &'static str) -> Error {
        Error::new(ErrorKind::Closed, operation, "the transport is closed")
    }

    /// `PUBLISH` on the current connection, making one first if needed; a
    /// failed connection is dropped so that the next publish makes a new one.
    async fn publish_pubsub(
        &self,
        locator: &Locator,
        publisher: &Mutex<Option<(MultiplexedConnection, String)>>,
        channel: &str,
        frame: Bytes,
    ) -> Result<()> {
        let mut slot = publisher.lock().await;
        if slot.is_none() {
            match locator.publisher().await {
                Ok(connected) => {
                    self.link.up();
                    *slot = Some(connected);
                }
                Err(error) => {
                    self.link.down(error.message().to_owned());
                    return Err(error);
                }
            }
        }
        let (conn, server) = slot.as_mut().expect("a connection was just made");
        let bound = locator.config().command_timeout;
        let sent = tokio::time::timeout(
            bound,
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(frame.as_ref())
                .query_async::<i64>(conn),
        )
        .await;
        let error = match sent {
            Ok(Ok(_receivers)) => return Ok(()),
            Ok(Err(error)) => redis_error("redis publish", server, error),
            Err(_) => timed_out("redis publish", server, bound),
        };
        self.link.down(error.message().to_owned());
        *slot = None;
        Err(error)
    }
}

impl Transport for RedisTransport {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(BACKEND, self.max_payload)
    }

    async fn publish(&self, channel: &Channel, frame: Bytes) -> Result<()> {
        if self.is_closed() {
            return Err(Self::closed_error("redis publish"));
        }
        if frame.len() > self.max_payload {
            return Err(Error::new(
                ErrorKind::TooLarge,
                "redis publish",
                format!(
                    "a frame of {} bytes exceeds `redis.max-payload` ({} bytes)",
                    frame.len(),
                    self.max_payload
                ),
            ));
        }
        let name = channel.joined('.');
        match &self.side {
            Side::Pubsub { locator, publisher, .. } => self.publish_pubsub(locator, publisher, &name, frame).await,
            Side::Cluster(cluster) => cluster.publish(&name, frame).await,
        }
    }

    async fn subscribe(&self, channel: &Channel) -> Result<Subscription> {
        if self.is_closed() {
            return Err(Self::closed_error("redis subscribe"));
        }
        let name = channel.joined('.');
        match &self.side {
            Side::Pubsub { subscriber, .. } => subscriber.subscribe(name).await,
            Side::Cluster(cluster) => cluster.subscribe(name, self.closed.subscribe()).await,
        }
    }

    fn health(&self) -> TransportHealth {
        let health = self.link.health();
        if self.is_closed() {
            return TransportHealth::down("the transport is closed", health.reconnects, health.since);
        }
        // Up only when subscriptions are up too: a publisher that reconnected
        // first does not make frames flow in.
        match &self.side {
            Side::Pubsub { subscriber, .. } if health.connected => subscriber.link.health(),
            _ => health,
        }
    }

    async fn close(&self) -> Result<()> {
        if self.closed.send_replace(true) {
            return Ok(());
        }
        match &self.side {
            Side::Pubsub {
                publisher, subscriber, ..
            } => {
                drop(publisher.lock().await.take());
                subscriber.close();
            }
            Side::Cluster(cluster) => cluster.close().await,
        }
        tracing::debug!(servers = %self.servers, "redis transport closed");
        Ok(())
    }
}
