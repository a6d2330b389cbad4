//! The node's configuration: identity, secret and every tuning knob, with
//! defaults fit for a mail cluster. Deserializes from kebab-case TOML keys
//! with durations as strings (`"250ms"`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::identity::{Namespace, NodeId, Secret};
use crate::membership::MembershipConfig;

/// Everything the engine needs besides a transport.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeConfig {
    /// This node's id, unique among live nodes.
    pub node_id: NodeId,
    /// The cluster's namespace (default `coord`).
    #[serde(default)]
    pub namespace: Namespace,
    /// The cluster secret. Without one, frames are neither signed nor checked
    /// and the node logs a warning at start.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// The application's version, announced in heartbeats.
    #[serde(default)]
    pub version: String,
    /// Roles this node plays, announced in heartbeats.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Addresses where this node can be reached, announced in heartbeats.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Free-form labels, announced in heartbeats.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The outgoing queue.
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// How events are grouped into frames.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Incoming checks and local delivery.
    #[serde(default)]
    pub inbox: InboxConfig,
    /// Heartbeats and failure detection.
    #[serde(default)]
    pub membership: MembershipConfig,
    /// The end-to-end health probe.
    #[serde(default)]
    pub health: HealthConfig,
}

/// The outgoing queue.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OutboxConfig {
    /// Events the outbox holds before `broadcast` waits (default 65536).
    pub capacity: usize,
    /// How long `broadcast` and `send_to` wait for room before failing with
    /// `Overflow` (default 1s). `try_broadcast` never waits.
    #[serde(with = "humantime_serde")]
    pub enqueue_timeout: Duration,
    /// How long a frame is retried while the transport is down before its
    /// events are dropped and counted as `publish-failed` (default 5s); at
    /// shutdown, the bound of the whole final flush.
    #[serde(with = "humantime_serde")]
    pub retry_for: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            capacity: 65_536,
            enqueue_timeout: Duration::from_secs(1),
            retry_for: Duration::from_secs(5),
        }
    }
}

/// How events are grouped into frames. A lone event goes out at once; events
/// that pile up while a send is in flight go together in the next frame.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BatchConfig {
    /// Most events in one frame (default 1024).
    pub max_events: usize,
    /// Most bytes of events in one frame (default 64 KiB; never more than the
    /// transport's maximum payload).
    pub max_bytes: usize,
    /// Extra time to wait for more events before sending a frame that is not
    /// full (default 0: no added latency).
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: 1024,
            max_bytes: 64 * 1024,
            linger: Duration::ZERO,
        }
    }
}

/// Incoming checks and local delivery.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
#[non_exhaustive]
pub struct InboxConfig {
    /// Items each local subscriber queues before it starts missing them
    /// (default 16384).
    pub subscriber_capacity: usize,
    /// With a secret: how far a frame's send time may be from our clock
    /// (default 10 minutes; clocks are only NTP-synchronised).
    #[serde(with = "humantime_serde")]
    pub replay_window: Duration,
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            subscriber_capacity: 16_384,
            replay_window: Duration::from_secs(600),
        }
    }
}

/// The end-to-end health probe: the node sends itself a probe frame through
/// the transport and expects it back.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthConfig {
    /// How often a probe is sent (default 1s).
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// Probes missed in a row before health turns degraded and the engine
    /// re-makes its subscriptions (default 3).
    pub probe_misses: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            probe_interval: Duration::from_secs(1),
            probe_misses: 3,
        }
    }
}

impl NodeConfig {
    /// A configuration for `node_id` with every default.
    pub fn new(node_id: NodeId) -> Self {
        NodeConfig {
            node_id,
            namespace: Namespace::default(),
            secret: None,
            version: String::new(),
            roles: Vec::new(),
            addresses: Vec::new(),
            labels: BTreeMap::new(),
            outbox: OutboxConfig::default(),
            batch: BatchConfig::default(),
            inbox: InboxConfig::default(),
            membership: MembershipConfig::default(),
            health: HealthConfig::default(),
        }
    }

    /// Sets the namespace.
    pub fn with_namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Sets the cluster secret.
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Checks every value; the error names the key and the fix.
    pub fn validate(&self) -> Result<()> {
        fn positive(key: &str, value: usize) -> Result<()> {
            if value == 0 {
                return Err(Error::new(
                    ErrorKind::Config,
                    "config",
                    format!("`{key}` is 0: set it to at least 1"),
                ));
            }
            Ok(())
        }
        positive("outbox.capacity", self.outbox.capacity)?;
        positive("batch.max-events", self.batch.max_events)?;
        positive("batch.max-bytes", self.batch.max_bytes)?;
        positive("inbox.subscriber-capacity", self.inbox.subscriber_capacity)?;
        positive("health.probe-misses", self.health.probe_misses as usize)?;
        if self.health.probe_interval.is_zero() {
            return Err(Error::new(
                ErrorKind::Config,
                "config",
                "`health.probe-interval` is 0: set a duration such as \"1s\"",
            ));
        }
        self.membership.validate()
    }
}
