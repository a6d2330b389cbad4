//! Redis Cluster: sharded pub/sub. A frame is `SPUBLISH`ed to the shard
//! that owns its channel's slot and reaches the `SSUBSCRIBE`rs of that
//! shard only, so pub/sub traffic does not flood every node of the cluster
//! (plain `PUBLISH` would be broadcast over the cluster bus to all of them).
//! The cluster client routes by slot, follows `MOVED`, reconnects, and
//! subscribes again after a reconnect; pushed messages are handed to the
//! subscriptions without blocking the client.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use coord_core::Result;
use coord_core::transport::{LinkHealth, Subscription, until_closed};
use redis::cluster::{ClusterClientBuilder, NodeAddress};
use redis::cluster_async::ClusterConnection;
use redis::{ProtocolVersion, PushInfo, PushKind, TlsMode, Value};
use tokio::sync::watch;

use crate::config::RedisConfig;
use crate::errors::{redis_error, timed_out};
use crate::subscription::Routes;
use crate::tls::TlsFiles;

/// A cluster connection carrying publishes and sharded subscriptions.
pub(crate) struct ClusterLink {
    conn: ClusterConnection,
    routes: Routes,
    link: Arc<LinkHealth>,
    servers: String,
    config: RedisConfig,
}

/// Hands one pushed message to its channel's subscriptions.
fn route(routes: &Routes, link: &LinkHealth, push: PushInfo) {
    match push.kind {
        PushKind::SMessage | PushKind::Message => {
            let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
                (push.data.first(), push.data.get(1))
            else {
                return;
            };
            let Ok(channel) = std::str::from_utf8(channel) else {
                return;
            };
            routes.frame(channel, payload);
        }
        PushKind::Disconnection => {
            link.down("a connection to the Redis Cluster was lost; reconnecting");
            routes.lagged();
        }
        _ => {}
    }
}

/// `host:port` as the cluster client's node address.
fn node_address(address: &str) -> Option<NodeAddress> {
    let (host, port) = address.rsplit_once(':')?;
    Some(NodeAddress::new(host, port.parse().ok()?))
}

/// The configured address map, as the cluster client takes it.
fn node_address_map(config: &RedisConfig) -> HashMap<NodeAddress, NodeAddress> {
    config
        .address_map
        .iter()
        .filter_map(|(announced, to)| Some((node_address(announced)?, node_address(to)?)))
        .collect()
}

impl ClusterLink {
    /// Connects to the cluster through its seed nodes.
    pub(crate) async fn connect(config: &RedisConfig, link: Arc<LinkHealth>) -> Result<Self> {
        let servers = config.server_list();
        let routes = Routes::default();
        let seeds: Vec<String> = config.servers.iter().map(|s| format!("redis://{s}")).collect();
        let (pushes, pushed_link) = (routes.clone(), link.clone());
        let mut builder = ClusterClientBuilder::new(seeds)
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.command_timeout)
            .push_sender(move |push: PushInfo| {
                route(&pushes, &pushed_link, push);
                Ok::<(), std::convert::Infallible>(())
            });
        if !config.address_map.is_empty() {
            builder = builder.node_address_map(node_address_map(config));
        }
        if let Some(user) = &config.user {
            builder = builder.username(user);
        }
        if let Some(password) = &config.password {
            builder = builder.password(password);
        }
        if let Some(tls) = TlsFiles::read(config)? {
            builder = builder.tls(TlsMode::Secure).certs(tls.certificates());
        }
        let client = builder.build().map_err(|e| redis_error("redis connect", &servers, e))?;
        let conn = match tokio::time::timeout(config.connect_timeout, client.get_async_connection()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(error)) => return Err(redis_error("redis connect", &servers, error)),
            Err(_) => return Err(timed_out("redis connect", &servers, config.connect_timeout)),
        };
        Ok(ClusterLink {
            conn,
            routes,
            link,
            servers,
            config: config.clone(),
        })
    }

    /// `SPUBLISH`es a frame.
    pub(crate) async fn publish(&self, channel: &str, frame: Bytes) -> Result<()> {
        let mut conn = self.conn.clone();
        let bound = self.config.command_timeout;
        let sent = tokio::time::timeout(
            bound,
            redis::cmd("SPUBLISH")
                .arg(channel)
                .arg(frame.as_ref())
                .query_async::<i64>(&mut conn),
        )
        .await;
        let error = match sent {
            Ok(Ok(_receivers)) => {
                self.link.up();
                return Ok(());
            }
            Ok(Err(error)) => redis_error("redis publish", &self.servers, error),
            Err(_) => timed_out("redis publish", &self.servers, bound),
        };
        self.link.down(error.message().to_owned());
        Err(error)
    }

    /// `SSUBSCRIBE`s to `channel`; the stream ends when `closed` turns true.
    pub(crate) async fn subscribe(&self, channel: String, closed: watch::Receiver<bool>) -> Result<Subscription> {
        let stream = self.routes.add(&channel, self.config.subscription_capacity);
        let mut conn = self.conn.clone();
        let bound = self.config.connect_timeout;
        match tokio::time::timeout(bound, conn.ssubscribe(&channel)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(redis_error("redis subscribe", &self.servers, error)),
            Err(_) => return Err(timed_out("redis subscribe", &self.servers, bound)),
        }
        Ok(Box::pin(futures::StreamExt::take_until(stream, until_closed(closed))))
    }

    /// Ends every subscription.
    pub(crate) async fn close(&self) {
        self.routes.clear();
    }
}
