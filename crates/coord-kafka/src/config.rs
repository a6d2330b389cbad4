//! [`KafkaConfig`]: where the brokers are, how to authenticate, and how the
//! librdkafka clients are tuned, as a serde table (`[coordinator.kafka]`), a
//! chaining builder, or URI parts.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use coord_core::{Error, ErrorKind, Result, params};
use serde::Deserialize;

/// The `[coordinator.kafka]` table.
///
/// Keys are kebab-case and durations strings (`"250ms"`); an unknown key is
/// an error. `Debug` hides the SASL password, the TLS key password and the
/// values of secret-looking raw `properties`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// `bootstrap-servers`: `host:port` of some brokers; the clients learn
    /// the rest of the cluster from them. Default `["127.0.0.1:9092"]`.
    #[serde(default = "default_servers")]
    pub bootstrap_servers: Vec<String>,
    /// `[coordinator.kafka.sasl]`: SASL authentication (PLAIN, SCRAM).
    #[serde(default)]
    pub sasl: Option<KafkaSasl>,
    /// `[coordinator.kafka.tls]`: TLS (librdkafka's `ssl.*`).
    #[serde(default)]
    pub tls: Option<KafkaTls>,
    /// `client-id`: the clients' `client.id`, shown in broker logs and
    /// quotas. Default `coord`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// `partitions`: partitions of `<ns>.all` when this node creates it
    /// (default 1; every node reads every partition, and each node publishes
    /// to one of them, so per-sender order holds with any count).
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// `replication-factor`: replicas of a topic this node creates (default
    /// 1; use 3 on a production Kafka cluster, `-1` for the broker's default).
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// `per-node-topics`: carry directed frames on a topic per node
    /// (`<ns>.node.<id>`, created at start and deleted at close) instead of
    /// on `<ns>.all`, where receivers filter them. Default false.
    #[serde(default)]
    pub per_node_topics: bool,
    /// `acks`: the producer's `acks`: `"0"`, `"1"` (default: the leader has
    /// the frame) or `"all"`.
    #[serde(default = "default_acks")]
    pub acks: String,
    /// `linger`: the producer's `linger.ms` (default 0 ms: the engine
    /// batches already, a linger only adds latency).
    #[serde(default = "default_linger", with = "humantime_serde")]
    pub linger: Duration,
    /// `fetch-wait-max`: the consumer's `fetch.wait.max.ms`, how long the
    /// broker may hold a fetch with no data (default 10 ms; librdkafka's own
    /// 500 ms default would delay every frame by up to that).
    #[serde(default = "default_fetch_wait_max", with = "humantime_serde")]
    pub fetch_wait_max: Duration,
    /// `connect-timeout`: bound of the first contact with the cluster and of
    /// each topic creation (default 5 s).
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `publish-timeout`: how long a frame may wait for room in the
    /// producer's queue and for the broker's acknowledgement before the
    /// publish fails as temporary (`message.timeout.ms`; default 2 s).
    #[serde(default = "default_publish_timeout", with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// `reconnect-max-delay`: bound of librdkafka's exponential reconnect
    /// backoff (`reconnect.backoff.max.ms`; default 2 s, starting at 10 ms).
    #[serde(default = "default_reconnect_max_delay", with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
    /// `health-interval`: how often the clients report their broker
    /// connections (`statistics.interval.ms`), which health reads (default 500 ms).
    #[serde(default = "default_health_interval", with = "humantime_serde")]
    pub health_interval: Duration,
    /// `queue-capacity`: frames the producer queues at most
    /// (`queue.buffering.max.messages`; default 100,000).
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// `subscription-capacity`: frames a subscription buffers before frames
    /// are dropped for it and it yields `Lagged` (default 65,536).
    #[serde(default = "default_subscription_capacity")]
    pub subscription_capacity: usize,
    /// `max-payload`: the largest frame, in bytes (default 1 MiB, Kafka's
    /// default `message.max.bytes`); larger ones fail with `TooLarge`.
    #[serde(default = "default_max_payload")]
    pub max_payload: usize,
    /// `properties`: raw librdkafka properties applied last, over everything
    /// above (for experts: `"socket.keepalive.enable" = "true"`, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// SASL mechanisms librdkafka implements itself (no Cyrus SASL needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN`: user and password in clear (use it with TLS).
    #[serde(rename = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256`.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The mechanism's name as librdkafka spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
            _ => None,
        }
    }
}

/// The `[coordinator.kafka.sasl]` table.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct KafkaSasl {
    /// `mechanism`: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (default `SCRAM-SHA-512`).
    #[serde(default = "default_mechanism")]
    pub mechanism: SaslMechanism,
    /// `user`.
    pub user: String,
    /// `password`.
    pub password: String,
}

impl fmt::Debug for KafkaSasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSasl")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The `[coordinator.kafka.tls]` table (librdkafka's `ssl.*` settings).
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct KafkaTls {
    /// `ca`: PEM file of the CA certificates that sign the brokers'
    /// certificates (`ssl.ca.location`; default: the system's).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// `cert`: PEM client certificate, for mutual TLS (with `key`).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// `key`: PEM private key of `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// `key-password`: the key's password, if it is encrypted.
    #[serde(default)]
    pub key_password: Option<String>,
    /// `verify-hostname`: check the broker's name against its certificate
    /// (default true).
    #[serde(default = "yes")]
    pub verify_hostname: bool,
}

impl fmt::Debug for KafkaTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaTls")
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("key_password", &self.key_password.as_ref().map(|_| "<redacted>"))
            .field("verify_hostname", &self.verify_hostname)
            .finish()
    }
}

fn default_servers() -> Vec<String> {
    vec!["127.0.0.1:9092".to_owned()]
}
fn default_partitions() -> i32 {
    1
}
fn default_replication() -> i32 {
    1
}
fn default_acks() -> String {
    "1".to_owned()
}
fn default_linger() -> Duration {
    Duration::ZERO
}
fn default_fetch_wait_max() -> Duration {
    Duration::from_millis(10)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_publish_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_reconnect_max_delay() -> Duration {
    Duration::from_secs(2)
}
fn default_health_interval() -> Duration {
    Duration::from_millis(500)
}
fn default_queue_capacity() -> usize {
    100_000
}
fn default_subscription_capacity() -> usize {
    65_536
}
fn default_max_payload() -> usize {
    1024 * 1024
}
fn default_mechanism() -> SaslMechanism {
    SaslMechanism::ScramSha512
}
fn yes() -> bool {
    true
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig::new(default_servers())
    }
}

impl KafkaConfig {
    /// Settings for these bootstrap servers (`host:port`), with every default.
    pub fn new<S: Into<String>>(bootstrap_servers: impl IntoIterator<Item = S>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into_iter().map(Into::into).collect(),
            sasl: None,
            tls: None,
            client_id: None,
            partitions: default_partitions(),
            replication_factor: default_replication(),
            per_node_topics: false,
            acks: default_acks(),
            linger: default_linger(),
            fetch_wait_max: default_fetch_wait_max(),
            connect_timeout: default_connect_timeout(),
            publish_timeout: default_publish_timeout(),
            reconnect_max_delay: default_reconnect_max_delay(),
            health_interval: default_health_interval(),
            queue_capacity: default_queue_capacity(),
            subscription_capacity: default_subscription_capacity(),
            max_payload: default_max_payload(),
            properties: BTreeMap::new(),
        }
    }

    /// Authenticates with SASL `mechanism`, `user` and `password`.
    pub fn sasl(mut self, mechanism: SaslMechanism, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.sasl = Some(KafkaSasl {
            mechanism,
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Uses TLS.
    pub fn tls(mut self, tls: KafkaTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets a raw librdkafka property, applied over every other setting.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// The broker list as librdkafka takes it.
    pub(crate) fn servers(&self) -> String {
        self.bootstrap_servers.join(",")
    }

    /// The settings of a `kafka://` URI, from its parts as the facade parses
    /// them: `target` is `[user:password@]host:port[,host:port…]`, `params`
    /// the backend's query parameters, already percent-decoded:
    /// `sasl-mechanism` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`), `tls`
    /// (`true`/`false`), `tls-ca`, `tls-cert`, `tls-key`, `client-id`,
    /// `partitions`, `replication-factor`, `per-node-topics`, `acks`,
    /// `linger`, `fetch-wait-max`, `connect-timeout`, `publish-timeout`,
    /// `reconnect-max-delay`, `health-interval` (durations like `250ms`),
    /// `queue-capacity`, `subscription-capacity`, `max-payload`, and
    /// `rdkafka.<property>` for a raw librdkafka property.
    ///
    /// # Errors
    /// `Config`, naming the part or parameter and what to write instead.
    pub fn from_uri_parts(target: &str, params: &[(String, String)]) -> Result<Self> {
        let (userinfo, hosts) = match target.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, target),
        };
        let hosts = hosts.trim_end_matches('/');
        if hosts.is_empty() {
            return Err(config(
                "kafka URI has no broker: write kafka://host:port, e.g. kafka://127.0.0.1:9092".to_owned(),
            ));
        }
        let mut cfg = KafkaConfig::new(hosts.split(','));
        if let Some(userinfo) = userinfo {
            let Some((user, password)) = userinfo.split_once(':') else {
                return Err(config(
                    "kafka URI has a user but no password: write kafka://user:password@host:port".to_owned(),
                ));
            };
            cfg = cfg.sasl(default_mechanism(), user, password);
        }
        for (key, value) in params {
            cfg.set_param(key, value)?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "sasl-mechanism" => {
                let mechanism = SaslMechanism::parse(value).ok_or_else(|| {
                    config(format!(
                        "URI parameter `sasl-mechanism` is {value:?}: write PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                    ))
                })?;
                match &mut self.sasl {
                    Some(sasl) => sasl.mechanism = mechanism,
                    None => {
                        return Err(config(
                            "URI parameter `sasl-mechanism` needs a user and password: write \
                             kafka://user:password@host:port?sasl-mechanism=…"
                                .to_owned(),
                        ));
                    }
                }
            }
            "tls" => {
                if params::flag(OPERATION, key, value)? {
                    self.tls.get_or_insert_with(KafkaTls::tls_default);
                } else {
                    self.tls = None;
                }
            }
            "tls-ca" => self.tls.get_or_insert_with(KafkaTls::tls_default).ca = Some(value.into()),
            "tls-cert" => self.tls.get_or_insert_with(KafkaTls::tls_default).cert = Some(value.into()),
            "tls-key" => self.tls.get_or_insert_with(KafkaTls::tls_default).key = Some(value.into()),
            "client-id" => self.client_id = Some(value.to_owned()),
            "partitions" => self.partitions = params::number(OPERATION, key, value)?,
            "replication-factor" => self.replication_factor = params::number(OPERATION, key, value)?,
            "per-node-topics" => self.per_node_topics = params::flag(OPERATION, key, value)?,
            "acks" => self.acks = value.to_owned(),
            "linger" => self.linger = params::duration(OPERATION, key, value)?,
            "fetch-wait-max" => self.fetch_wait_max = params::duration(OPERATION, key, value)?,
            "connect-timeout" => self.connect_timeout = params::duration(OPERATION, key, value)?,
            "publish-timeout" => self.publish_timeout = params::duration(OPERATION, key, value)?,
            "reconnect-max-delay" => self.reconnect_max_delay = params::duration(OPERATION, key, value)?,
            "health-interval" => self.health_interval = params::duration(OPERATION, key, value)?,
            "queue-capacity" => self.queue_capacity = params::number(OPERATION, key, value)?,
            "subscription-capacity" => self.subscription_capacity = params::number(OPERATION, key, value)?,
            "max-payload" => self.max_payload = params::number(OPERATION, key, value)?,
            other => match other.strip_prefix("rdkafka.") {
                Some(property) if !property.is_empty() => {
                    self.properties.insert(property.to_owned(), value.to_owned());
                }
                _ => {
                    return Err(config(format!(
                        "unknown URI parameter `{other}` for the kafka backend: use sasl-mechanism, tls, tls-ca, \
                         tls-cert, tls-key, client-id, partitions, replication-factor, per-node-topics, acks, \
                         linger, fetch-wait-max, connect-timeout, publish-timeout, reconnect-max-delay, \
                         health-interval, queue-capacity, subscription-capacity, max-payload or rdkafka.<property>"
                    )));
                }
            },
        }
        Ok(())
    }

    /// Checks the settings without connecting.
    ///
    /// # Errors
    /// `Config`, naming the key and the fix.
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap_servers.is_empty() {
            return Err(config(
                "`kafka.bootstrap-servers` is empty: list at least one broker, e.g. [\"127.0.0.1:9092\"]".to_owned(),
            ));
        }
        for server in &self.bootstrap_servers {
            if !params::is_host_port(server) {
                return Err(config(format!(
                    "`kafka.bootstrap-servers` entry {server:?} is not host:port: write e.g. \"10.0.0.5:9092\" \
                     (no scheme)"
                )));
            }
        }
        if let Some(sasl) = &self.sasl
            && sasl.user.is_empty()
        {
            return Err(config("`kafka.sasl.user` is empty: give the SASL user name".to_owned()));
        }
        if let Some(tls) = &self.tls
            && tls.cert.is_some() != tls.key.is_some()
        {
            return Err(config(
                "`kafka.tls.cert` and `kafka.tls.key` go together: set both for mutual TLS, or neither".to_owned(),
            ));
        }
        if !matches!(self.acks.as_str(), "0" | "1" | "-1" | "all") {
            return Err(config(format!(
                "`kafka.acks` is {:?}: write \"0\", \"1\" or \"all\"",
                self.acks
            )));
        }
        if self.partitions < 1 {
            return Err(config(format!(
                "`kafka.partitions` is {}: give at least 1",
                self.partitions
            )));
        }
        if self.replication_factor == 0 || self.replication_factor < -1 {
            return Err(config(format!(
                "`kafka.replication-factor` is {}: give at least 1, or -1 for the broker's default",
                self.replication_factor
            )));
        }
        for (key, value) in [
            ("connect-timeout", self.connect_timeout),
            ("publish-timeout", self.publish_timeout),
            ("reconnect-max-delay", self.reconnect_max_delay),
            ("health-interval", self.health_interval),
        ] {
            if value.is_zero() {
                return Err(config(format!(
                    "`kafka.{key}` is 0: give a positive duration such as \"2s\""
                )));
            }
        }
        if self.queue_capacity == 0 || self.subscription_capacity == 0 || self.max_payload == 0 {
            return Err(config(
                "`kafka.queue-capacity`, `kafka.subscription-capacity` and `kafka.max-payload` must be positive"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The librdkafka properties every client of this config shares.
    pub(crate) fn common_properties(&self) -> Vec<(String, String)> {
        let ms = |d: Duration| d.as_millis().max(1).to_string();
        let mut props: Vec<(String, String)> = vec![
            ("bootstrap.servers".into(), self.servers()),
            (
                "client.id".into(),
                self.client_id.clone().unwrap_or_else(|| "coord".into()),
            ),
            ("reconnect.backoff.ms".into(), "10".into()),
            ("reconnect.backoff.max.ms".into(), ms(self.reconnect_max_delay)),
            ("retry.backoff.ms".into(), "10".into()),
            ("retry.backoff.max.ms".into(), ms(self.reconnect_max_delay)),
            ("socket.connection.setup.timeout.ms".into(), ms(self.connect_timeout)),
            ("statistics.interval.ms".into(), ms(self.health_interval)),
            ("topic.metadata.refresh.interval.ms".into(), "5000".into()),
            ("socket.nagle.disable".into(), "true".into()),
            ("message.max.bytes".into(), (self.max_payload + 64 * 1024).to_string()),
        ];
        let protocol = match (&self.sasl, &self.tls) {
            (None, None) => "plaintext",
            (None, Some(_)) => "ssl",
            (Some(_), None) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        props.push(("security.protocol".into(), protocol.into()));
        if let Some(sasl) = &self.sasl {
            props.push(("sasl.mechanism".into(), sasl.mechanism.as_str().into()));
            props.push(("sasl.username".into(), sasl.user.clone()));
            props.push(("sasl.password".into(), sasl.password.clone()));
        }
        if let Some(tls) = &self.tls {
            let path = |p: &PathBuf| p.to_string_lossy().into_owned();
            if let Some(ca) = &tls.ca {
                props.push(("ssl.ca.location".into(), path(ca)));
            }
            if let Some(cert) = &tls.cert {
                props.push(("ssl.certificate.location".into(), path(cert)));
            }
            if let Some(key) = &tls.key {
                props.push(("ssl.key.location".into(), path(key)));
            }
            if let Some(password) = &tls.key_password {
                props.push(("ssl.key.password".into(), password.clone()));
            }
            let verify = if tls.verify_hostname { "https" } else { "none" };
            props.push(("ssl.endpoint.identification.algorithm".into(), verify.into()));
        }
        props
    }
}

impl KafkaTls {
    fn tls_default() -> Self {
        KafkaTls {
            verify_hostname: true,
            ..KafkaTls::default()
        }
    }
}

/// Whether a raw property's value must not be shown.
pub(crate) fn is_secret_property(key: &str) -> bool {
    ["password", "secret", "token", "jaas", ".pem", "key"]
        .iter()
        .any(|word| key.contains(word))
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret_property(key) { "<redacted>" } else { value };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls)
            .field("client_id", &self.client_id)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .field("per_node_topics", &self.per_node_topics)
            .field("acks", &self.acks)
            .field("linger", &self.linger)
            .field("fetch_wait_max", &self.fetch_wait_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("publish_timeout", &self.publish_timeout)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .field("health_interval", &self.health_interval)
            .field("queue_capacity", &self.queue_capacity)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("max_payload", &self.max_payload)
            .field("properties", &properties)
            .finish()
    }
}

/// The operation kafka configuration errors are raised as.
const OPERATION: &str = "kafka config";

fn config(message: String) -> Error {
    Error::new(ErrorKind::Config, OPERATION, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn uri_parts_give_brokers_credentials_and_options() {
        let cfg = KafkaConfig::from_uri_parts(
            "mx:s3cret@10.0.0.5:9092,10.0.0.6:9092",
            &params(&[
                ("sasl-mechanism", "scram-sha-256"),
                ("tls-ca", "/etc/ca.pem"),
                ("fetch-wait-max", "5ms"),
                ("partitions", "3"),
                ("rdkafka.socket.keepalive.enable", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.bootstrap_servers, ["10.0.0.5:9092", "10.0.0.6:9092"]);
        let sasl = cfg.sasl.as_ref().unwrap();
        assert_eq!((sasl.mechanism, sasl.user.as_str()), (SaslMechanism::ScramSha256, "mx"));
        assert_eq!(sasl.password, "s3cret");
        assert_eq!(cfg.fetch_wait_max, Duration::from_millis(5));
        assert_eq!(cfg.partitions, 3);
        assert_eq!(cfg.properties["socket.keepalive.enable"], "true");
        let props = cfg.common_properties();
        let get = |k: &str| props.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(get("ssl.ca.location"), Some("/etc/ca.pem"));
    }

    #[test]
    fn tables_parse_with_defaults() {
        let cfg: KafkaConfig = toml::from_str(
            r#"
            bootstrap-servers = ["k1:9092"]
            linger = "1ms"
            [sasl]
            mechanism = "PLAIN"
            user = "coord"
            password = "pw"
            [properties]
            "socket.keepalive.enable" = "true"
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.linger, Duration::from_millis(1));
        assert_eq!(cfg.publish_timeout, Duration::from_secs(2));
        assert_eq!(cfg.sasl.unwrap().mechanism, SaslMechanism::Plain);
        assert!(
            toml::from_str::<KafkaConfig>("colour = \"blue\"").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn debug_hides_every_secret() {
        let mut tls = KafkaTls::tls_default();
        tls.key_password = Some("keypw-4242".into());
        let cfg = KafkaConfig::default()
            .sasl(SaslMechanism::Plain, "mx", "pw-123456")
            .tls(tls)
            .property("sasl.oauthbearer.client.secret", "oauth-777");
        let shown = format!("{cfg:?}");
        for secret in ["pw-123456", "keypw-4242", "oauth-777"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("mx"), "{shown}");
    }

    #[test]
    fn bad_settings_name_the_key_and_the_fix() {
        for (target, list, expected) in [
            ("", vec![], "has no broker"),
            ("h", vec![], "is not host:port"),
            ("u@h:1", vec![], "no password"),
            ("h:1", vec![("tls", "maybe")], "write true or false"),
            ("h:1", vec![("publish-timeout", "soon")], "write a duration"),
            ("h:1", vec![("colour", "blue")], "unknown URI parameter `colour`"),
            ("h:1", vec![("sasl-mechanism", "PLAIN")], "needs a user and password"),
            (
                "u:p@h:1",
                vec![("sasl-mechanism", "GSSAPI")],
                "write PLAIN, SCRAM-SHA-256",
            ),
            ("h:1", vec![("tls-cert", "/c.pem")], "go together"),
            ("h:1", vec![("acks", "some")], "`kafka.acks`"),
            ("h:1", vec![("partitions", "0")], "`kafka.partitions` is 0"),
            ("h:1", vec![("publish-timeout", "0s")], "`kafka.publish-timeout` is 0"),
        ] {
            let err = KafkaConfig::from_uri_parts(target, &params(&list)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{target} {list:?}");
            assert!(err.message().contains(expected), "{target} {list:?}: {err}");
        }
        let table: KafkaConfig = toml::from_str("bootstrap-servers = [\"kafka://h:9092\"]").unwrap();
        assert!(table.validate().unwrap_err().message().contains("no scheme"));
    }
}
