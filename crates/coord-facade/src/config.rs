//! [`Config`]: a coordinator's settings as a file (TOML, or any serde format).

use std::collections::BTreeMap;

use coord_core::engine::{BatchConfig, HealthConfig, InboxConfig, OutboxConfig};
use coord_core::membership::MembershipConfig;
use coord_core::{Error, ErrorKind, Namespace, NodeId, Result, Secret};
use serde::Deserialize;

use crate::backend::{BackendConfig, BackendUri};
use crate::builder::Builder;

/// A configuration file: one `[coordinator]` table.
///
/// Keys are kebab-case, durations are strings (`"250ms"`, `"1s"`), and an
/// unknown key is an error naming it. An application with a configuration
/// file of its own embeds [`CoordinatorConfig`] as one of its tables instead.
///
/// `Debug` shows no secret: the cluster secret and any password or parameter
/// value in the backend URI are redacted.
///
/// ```toml
/// [coordinator]
/// node-id = "mx1"                   # required: unique among live nodes
/// namespace = "mail-prod"           # default "coord"
/// secret = "at-least-16-bytes-of-random" # signs every frame; optional
/// backend = "memory://cluster-a"    # a backend URI; default: a Zenoh peer
/// version = "1.4.2"                 # announced in heartbeats
/// roles = ["imap", "smtp-in"]
///
/// [coordinator.membership]
/// profile = "fast"                  # or "default"
/// heartbeat-interval = "100ms"      # overrides the profile's value
///
/// [coordinator.outbox]
/// capacity = 65536
/// enqueue-timeout = "1s"
/// retry-for = "5s"
///
/// [coordinator.batch]
/// max-events = 1024
/// max-bytes = 65536
/// linger = "0ms"
///
/// [coordinator.inbox]
/// subscriber-capacity = 16384
/// replay-window = "10m"
///
/// [coordinator.health]
/// probe-interval = "1s"
/// probe-misses = 3
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The `[coordinator]` table.
    #[serde(default)]
    pub coordinator: CoordinatorConfig,
}

/// The `[coordinator]` table: identity, backend and the engine's tuning
/// tables (each defaults to the engine's defaults, see
/// [`coord_core::NodeConfig`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct CoordinatorConfig {
    /// `node-id`: this node's id, unique among live nodes. Required here or
    /// as the backend URI's `node-id` parameter.
    pub node_id: Option<NodeId>,
    /// `namespace`: the cluster's namespace (default `coord`).
    pub namespace: Option<Namespace>,
    /// `secret`: the cluster secret (its UTF-8 bytes, at least 16), redacted
    /// in `Debug`.
    pub secret: Option<Secret>,
    /// `backend`: the backend URI, e.g. `memory://cluster-a`. Without it and
    /// without a backend table, a Zenoh peer with the default settings is
    /// started (with the `zenoh` feature).
    pub backend: Option<BackendUri>,
    /// `version`: the application's version, announced in heartbeats.
    #[serde(default)]
    pub version: String,
    /// `roles`: roles this node plays, announced in heartbeats.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `addresses`: where this node can be reached, announced in heartbeats.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// `[coordinator.labels]`: free-form labels, announced in heartbeats.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `[coordinator.outbox]`: the outgoing queue.
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// `[coordinator.batch]`: how events are grouped into frames.
    #[serde(default)]
    pub batch: BatchConfig,
    /// `[coordinator.inbox]`: incoming checks and local delivery.
    #[serde(default)]
    pub inbox: InboxConfig,
    /// `[coordinator.membership]`: heartbeats and failure detection (the
    /// `default` profile when absent).
    pub membership: Option<MembershipConfig>,
    /// `[coordinator.health]`: the end-to-end health probe.
    #[serde(default)]
    pub health: HealthConfig,
    /// `[coordinator.nats]`: the NATS backend's settings, instead of a
    /// `backend` URI (see [`crate::nats::NatsConfig`]).
    #[cfg(feature = "nats")]
    #[serde(default)]
    pub nats: Option<coord_nats::NatsConfig>,
    /// `[coordinator.redis]`: the Redis backend's settings (standalone,
    /// Cluster or Sentinel), instead of a `backend` URI (see
    /// [`crate::redis::RedisConfig`]).
    #[cfg(feature = "redis")]
    #[serde(default)]
    pub redis: Option<coord_redis::RedisConfig>,
    /// `[coordinator.kafka]`: the Kafka / Redpanda backend's settings,
    /// instead of a `backend` URI (see [`crate::kafka::KafkaConfig`]).
    #[cfg(feature = "kafka")]
    #[serde(default)]
    pub kafka: Option<coord_kafka::KafkaConfig>,
    /// `[coordinator.zenoh]`: the Zenoh backend's settings, instead of a
    /// `backend` URI (see [`crate::zenoh::ZenohConfig`]). Without either,
    /// a Zenoh peer with the default settings is started.
    #[cfg(feature = "zenoh")]
    #[serde(default)]
    pub zenoh: Option<coord_zenoh::ZenohConfig>,
}

impl CoordinatorConfig {
    /// The backends given as tables, in the order of the fields.
    fn tables(&self) -> Vec<BackendConfig> {
        #[allow(unused_mut)]
        let mut tables = Vec::new();
        #[cfg(feature = "nats")]
        tables.extend(self.nats.clone().map(BackendConfig::Nats));
        #[cfg(feature = "redis")]
        tables.extend(self.redis.clone().map(BackendConfig::Redis));
        #[cfg(feature = "kafka")]
        tables.extend(self.kafka.clone().map(BackendConfig::Kafka));
        #[cfg(feature = "zenoh")]
        tables.extend(self.zenoh.clone().map(BackendConfig::Zenoh));
        tables
    }

    /// The backend given as a table, if any.
    pub(crate) fn backend_table(&self) -> Option<BackendConfig> {
        self.tables().into_iter().next()
    }

    /// How many backend tables are given (more than one is an error).
    pub(crate) fn backend_tables(&self) -> usize {
        self.tables().len()
    }
}

impl Config {
    /// Parses a TOML document and checks it ([`Config::validate`]).
    ///
    /// # Errors
    /// `Config`, with a message that names the key (its line and column for
    /// syntax and type errors) and says what to write instead.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: Config = toml::from_str(text)
            .map_err(|error| Error::new(ErrorKind::Config, "config", describe_toml_error(text, &error)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that a coordinator can be started from this configuration:
    /// the required keys are set, every value is in range and the backend's
    /// scheme is built in. Connects nothing.
    ///
    /// # Errors
    /// `Config`, naming the key and the fix, e.g. "`coordinator.node-id` is
    /// missing: set it to this node's unique name".
    pub fn validate(&self) -> Result<()> {
        Builder::from_config(&self.coordinator).prepare().map(drop)
    }
}

/// A TOML error as one line: where (key path, line and column) and what.
///
/// toml's own `Display` quotes the offending line of the file, which would
/// put a secret's value in logs; this names the key instead.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    let Some(span) = error.span() else {
        return format!("invalid TOML configuration: {message}");
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_number = text[..line_start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or_default().trim();
    let key = if line.starts_with('[') {
        Some(line.trim_matches(['[', ']']).trim().to_owned())
    } else {
        line.split_once('=').map(|(key, _)| {
            let key = key.trim();
            let table = text[..line_start]
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('['))
                .map(|header| header.trim_matches(['[', ']']).trim());
            match table {
                Some(table) => format!("{table}.{key}"),
                None => key.to_owned(),
            }
        })
    };
    let at = format!("line {line_number}, column {column}");
    match key {
        Some(key) => format!("invalid TOML configuration at `{key}` ({at}): {message}"),
        None => format!("invalid TOML configuration at {at}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use coord_core::Profile;

    use super::*;

    /// The example of the `Config` docs, in full.
    const FULL: &str = r#"
[coordinator]
node-id = "mx1"
namespace = "mail-prod"
secret = "at-least-16-bytes-of-random"
backend = "memory://cluster-a"
version = "1.4.2"
roles = ["imap", "smtp-in"]
addresses = ["10.0.0.1:143"]

[coordinator.labels]
zone = "eu-1"

[coordinator.membership]
profile = "fast"
heartbeat-interval = "100ms"
acceptable-pause = "1s 500ms"

[coordinator.outbox]
capacity = 100
enqueue-timeout = "250ms"
retry-for = "5s"

[coordinator.batch]
max-events = 64
max-bytes = 32768
linger = "2ms"

[coordinator.inbox]
subscriber-capacity = 512
replay-window = "10m"

[coordinator.health]
probe-interval = "2s"
probe-misses = 5
"#;

    fn config_error(text: &str) -> String {
        let err = Config::from_toml(text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(!err.is_temporary());
        err.message().to_owned()
    }

    #[test]
    fn full_example_parses_every_key() {
        let config = Config::from_toml(FULL).unwrap();
        let c = &config.coordinator;
        assert_eq!(c.node_id.as_ref().map(NodeId::as_str), Some("mx1"));
        assert_eq!(c.namespace.as_ref().map(Namespace::as_str), Some("mail-prod"));
        assert_eq!(c.secret, Some(Secret::new("at-least-16-bytes-of-random").unwrap()));
        let backend = c.backend.as_ref().unwrap();
        assert_eq!((backend.scheme(), backend.target()), ("memory", "cluster-a"));
        assert_eq!(c.version, "1.4.2");
        assert_eq!(c.roles, ["imap", "smtp-in"]);
        assert_eq!(c.addresses, ["10.0.0.1:143"]);
        assert_eq!(c.labels.get("zone").map(String::as_str), Some("eu-1"));
        let membership = c.membership.as_ref().unwrap();
        assert_eq!(membership.profile, Profile::Fast);
        assert_eq!(membership.heartbeat_interval, Some(Duration::from_millis(100)));
        assert_eq!(membership.acceptable_pause, Some(Duration::from_millis(1500)));
        assert_eq!(membership.phi_threshold, None);
        assert_eq!(c.outbox.capacity, 100);
        assert_eq!(c.outbox.enqueue_timeout, Duration::from_millis(250));
        assert_eq!(c.outbox.retry_for, Duration::from_secs(5));
        assert_eq!(c.batch.max_events, 64);
        assert_eq!(c.batch.max_bytes, 32768);
        assert_eq!(c.batch.linger, Duration::from_millis(2));
        assert_eq!(c.inbox.subscriber_capacity, 512);
        assert_eq!(c.inbox.replay_window, Duration::from_secs(600));
        assert_eq!(c.health.probe_interval, Duration::from_secs(2));
        assert_eq!(c.health.probe_misses, 5);
    }

    #[test]
    fn minimal_config_takes_the_engine_defaults() {
        let config = Config::from_toml("[coordinator]\nnode-id = \"mx1\"\nbackend = \"memory://a\"\n").unwrap();
        let c = &config.coordinator;
        assert!(c.secret.is_none() && c.namespace.is_none() && c.membership.is_none());
        assert_eq!(c.outbox.enqueue_timeout, OutboxConfig::default().enqueue_timeout);
        assert_eq!(c.health.probe_misses, HealthConfig::default().probe_misses);
    }

    #[test]
    fn node_id_may_come_from_the_backend_uri() {
        Config::from_toml("[coordinator]\nbackend = \"memory://a?node-id=mx1\"\n").unwrap();
        let message = config_error("[coordinator]\nnode-id = \"mx1\"\nbackend = \"memory://a?node-id=mx2\"\n");
        assert_eq!(
            message,
            "`coordinator.node-id` is \"mx1\" but the backend URI's `node-id` parameter is \"mx2\": keep one"
        );
    }

    #[test]
    fn profile_may_come_from_the_backend_uri() {
        let config = Config::from_toml("[coordinator]\nbackend = \"memory://a?node-id=mx1&profile=fast\"\n").unwrap();
        let prepared = Builder::from_config(&config.coordinator).prepare().unwrap();
        assert_eq!(prepared.config.membership.profile, Profile::Fast);
        assert_eq!(prepared.config.node_id.as_str(), "mx1");

        let message = config_error(
            "[coordinator]\nbackend = \"memory://a?node-id=mx1&profile=fast\"\n[coordinator.membership]\nprofile = \"default\"\n",
        );
        assert_eq!(
            message,
            "`coordinator.membership.profile` is Default but the backend URI's `profile` parameter is Fast: keep one"
        );
    }

    #[test]
    fn missing_node_id_names_the_key_and_the_fix() {
        let message = config_error("[coordinator]\nbackend = \"memory://a\"\n");
        assert_eq!(
            message,
            "`coordinator.node-id` is missing: set it to this node's unique name, e.g. node-id = \"mx1\""
        );
        // An empty file reports the same key.
        assert_eq!(config_error(""), message);
    }

    #[cfg(feature = "zenoh")]
    #[test]
    fn without_a_backend_a_default_zenoh_peer_is_prepared() {
        let config = Config::from_toml("[coordinator]\nnode-id = \"mx1\"\n").unwrap();
        let prepared = Builder::from_config(&config.coordinator).prepare().unwrap();
        match prepared.backend {
            crate::builder::Backend::Config(backend) => match *backend {
                BackendConfig::Zenoh(zenoh) => assert_eq!(zenoh, coord_zenoh::ZenohConfig::default()),
                other => panic!("the default backend is {other:?}"),
            },
            _ => panic!("the default backend is not a backend configuration"),
        }
    }

    #[cfg(not(feature = "zenoh"))]
    #[test]
    fn missing_backend_names_the_key_and_the_fix() {
        let message = config_error("[coordinator]\nnode-id = \"mx1\"\n");
        assert!(message.starts_with("no backend is configured"), "{message}");
        assert!(message.contains("`zenoh` feature is off"), "{message}");
        assert!(
            message.contains("`coordinator.backend`") && message.contains("[coordinator.nats]"),
            "{message}"
        );
    }

    #[cfg(feature = "zenoh")]
    #[test]
    fn a_zenoh_table_is_read_and_checked() {
        let ok = Config::from_toml(
            "[coordinator]\nnode-id = \"mx1\"\n[coordinator.zenoh]\nlisten = [\"tcp/127.0.0.1:7448\"]\n\
             connect = [\"tcp/127.0.0.1:7447\"]\nmulticast-scouting = false\nlease = \"2s\"\n\
             [coordinator.zenoh.auth]\nuser = \"coord\"\npassword = \"pw-4711\"\ncredentials-file = \"/etc/users\"\n",
        )
        .unwrap();
        let zenoh = ok.coordinator.zenoh.as_ref().unwrap();
        assert_eq!(zenoh.lease, Duration::from_secs(2));
        assert!(!zenoh.multicast_scouting);
        assert!(!format!("{ok:?}").contains("pw-4711"), "the password is hidden");
        let message =
            config_error("[coordinator]\nnode-id = \"mx1\"\n[coordinator.zenoh]\nlisten = [\"tcp127.0.0.1\"]\n");
        assert!(
            message.contains("in `[coordinator.zenoh]`") && message.contains("listen[0]"),
            "{message}"
        );
        let message = config_error("[coordinator]\nnode-id = \"mx1\"\nbackend = \"memory://a\"\n[coordinator.zenoh]\n");
        assert!(message.starts_with("more than one backend is configured"), "{message}");
    }

    #[cfg(all(feature = "zenoh", feature = "nats"))]
    #[test]
    fn two_backend_tables_are_refused() {
        let message = config_error(
            "[coordinator]\nnode-id = \"mx1\"\n[coordinator.nats]\nservers = [\"nats://127.0.0.1:4222\"]\n\
             [coordinator.zenoh]\n",
        );
        assert!(message.starts_with("more than one backend is configured"), "{message}");
        assert!(message.contains("[coordinator.zenoh]"), "{message}");
    }

    #[test]
    fn a_backend_table_is_read_and_checked() {
        let ok = Config::from_toml(
            "[coordinator]\nnode-id = \"mx1\"\n[coordinator.nats]\nservers = [\"nats://127.0.0.1:4222\"]\n\
             user = \"coord\"\npassword = \"pw-4711\"\nping-interval = \"2s\"\n",
        )
        .unwrap();
        let nats = ok.coordinator.nats.as_ref().unwrap();
        assert_eq!(nats.ping_interval, std::time::Duration::from_secs(2));
        assert!(!format!("{ok:?}").contains("pw-4711"), "the password is hidden");
        let message = config_error("[coordinator]\nnode-id = \"mx1\"\n[coordinator.nats]\nuser = \"coord\"\n");
        assert!(
            message.contains("in `[coordinator.nats]`") && message.contains("go together"),
            "{message}"
        );
        let message = config_error(
            "[coordinator]\nnode-id = \"mx1\"\nbackend = \"memory://a\"\n[coordinator.nats]\nservers = []\n",
        );
        assert!(message.starts_with("more than one backend is configured"), "{message}");
        let message = config_error(
            "[coordinator]\nnode-id = \"mx1\"\n[coordinator.nats]\n[coordinator.redis]\ntopology = \"cluster\"\n",
        );
        assert!(message.starts_with("more than one backend is configured"), "{message}");
    }

    #[test]
    fn unknown_key_error_names_the_key_and_where_it_is() {
        let message = config_error("[coordinator]\nnode-id = \"mx1\"\nbackend = \"memory://a\"\nnode_id = \"x\"\n");
        assert!(message.contains("unknown field `node_id`"), "{message}");
        assert!(message.contains("line 4"), "{message}");
        assert!(message.contains("`node-id`"), "the expected keys are listed: {message}");

        let message = config_error(
            "[coordinator]\nnode-id = \"mx1\"\nbackend = \"memory://a\"\n[coordinator.outbox]\ncapasity = 1\n",
        );
        assert!(message.contains("unknown field `capasity`"), "{message}");
        assert!(message.contains("line 5"), "{message}");

        let message = config_error("[coordinater]\nnode-id = \"mx1\"\n");
        assert!(message.contains("unknown field `coordinater`"), "{message}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let message = config_error(
            "[coordinator]\nnode-id = \"mx1\"\nbackend = \"memory://a\"\n[coordinator.batch]\nlinger = \"soon\"\n",
        );
        assert!(message.contains("linger"), "{message}");
        assert!(message.contains("line 5"), "{message}");

        let message = config_error("[coordinator]\nnode-id = \"mx.1\"\nbackend = \"memory://a\"\n");
        assert!(message.contains("node id \"mx.1\" is invalid"), "{message}");
        assert!(message.contains("line 2"), "{message}");

        let message = config_error("[coordinator]\nnode-id = \"mx1\"\nbackend = \"foo://a\"\n");
        assert!(
            message.contains("unknown backend scheme `foo`: use one of memory"),
            "{message}"
        );
        assert!(message.contains("line 3"), "{message}");

        let message = config_error("[coordinator]\nnode-id = \"mx1\"\nbackend = \"memory://a\"\nsecret = \"short\"\n");
        assert!(message.contains("secret is 5 bytes long"), "{message}");
        assert!(!message.contains("short\""), "the secret is not echoed: {message}");

        let message = config_error(
            "[coordinator]\nnode-id = \"mx1\"\nbackend = \"memory://a\"\n[coordinator.outbox]\ncapacity = 0\n",
        );
        assert_eq!(
            message,
            "in the `[coordinator]` table: `outbox.capacity` is 0: set it to at least 1"
        );
    }

    #[test]
    fn debug_redacts_the_secret_and_backend_credentials() {
        let mut config = Config::from_toml(FULL).unwrap();
        config.coordinator.backend = Some(BackendUri::parse("memory://cluster-a?token=hunter2hunter2").unwrap());
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("at-least-16-bytes-of-random"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Secret(<redacted>)"), "{shown}");
        assert!(shown.contains("memory://cluster-a"), "{shown}");
    }
}
