//! Backends chosen by URI: parsing `scheme://target?key=value&…` and the
//! table of schemes this build can start.
//!
//! # Adding a backend
//!
//! There is no registration at run time. A backend crate is wired in by one
//! cargo feature of the facade (e.g. `nats = ["dep:coord-nats"]`) and one
//! entry in [`BACKENDS`] under `#[cfg(feature = "nats")]` whose `connect`
//! function hands the parsed [`BackendUri`] to the backend crate, one entry
//! in [`OPTIONAL`] so that a build without the feature names it, and one
//! variant of [`BackendConfig`] for its configuration table.

use std::fmt;
use std::sync::Arc;

use coord_core::transport::memory::MemoryNetwork;
use coord_core::{Error, ErrorKind, Namespace, NodeId, Profile, Result, TransportDyn};
use futures::future::BoxFuture;
use serde::{Deserialize, Deserializer};

/// Makes a connected transport from a parsed URI.
type Connect = fn(&BackendUri) -> BoxFuture<'_, Result<Arc<dyn TransportDyn>>>;

/// One backend compiled into this build.
struct Backend {
    /// The URI scheme that selects it.
    scheme: &'static str,
    /// Makes its transport.
    connect: Connect,
}

/// Every backend this build can start, in the order error messages list them.
const BACKENDS: &[Backend] = &[
    Backend {
        scheme: "memory",
        connect: connect_memory,
    },
    #[cfg(feature = "nats")]
    Backend {
        scheme: "nats",
        connect: connect_nats,
    },
    #[cfg(feature = "redis")]
    Backend {
        scheme: "redis",
        connect: connect_redis,
    },
    #[cfg(feature = "redis")]
    Backend {
        scheme: "rediss",
        connect: connect_redis,
    },
    #[cfg(feature = "redis")]
    Backend {
        scheme: "redis+cluster",
        connect: connect_redis,
    },
    #[cfg(feature = "redis")]
    Backend {
        scheme: "rediss+cluster",
        connect: connect_redis,
    },
    #[cfg(feature = "redis")]
    Backend {
        scheme: "redis+sentinel",
        connect: connect_redis,
    },
    #[cfg(feature = "redis")]
    Backend {
        scheme: "rediss+sentinel",
        connect: connect_redis,
    },
    #[cfg(feature = "kafka")]
    Backend {
        scheme: "kafka",
        connect: connect_kafka,
    },
    #[cfg(feature = "zenoh")]
    Backend {
        scheme: "zenoh",
        connect: connect_zenoh,
    },
];

/// Schemes of backends that exist behind a cargo feature of this crate.
const OPTIONAL: &[(&str, &str)] = &[
    ("nats", "nats"),
    ("redis", "redis"),
    ("rediss", "redis"),
    ("redis+cluster", "redis"),
    ("rediss+cluster", "redis"),
    ("redis+sentinel", "redis"),
    ("rediss+sentinel", "redis"),
    ("kafka", "kafka"),
    ("zenoh", "zenoh"),
];

/// A backend's own settings, for [`crate::Builder::backend`] and the
/// backend tables of the configuration file (`[coordinator.nats]`,
/// `[coordinator.zenoh]`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum BackendConfig {
    /// NATS ([`crate::nats::NatsConfig`]).
    #[cfg(feature = "nats")]
    Nats(coord_nats::NatsConfig),
    /// Zenoh peer-to-peer ([`crate::zenoh::ZenohConfig`]).
    #[cfg(feature = "zenoh")]
    Zenoh(coord_zenoh::ZenohConfig),
    /// Redis: standalone, Cluster or Sentinel ([`crate::redis::RedisConfig`]).
    #[cfg(feature = "redis")]
    Redis(coord_redis::RedisConfig),
    /// Kafka / Redpanda ([`crate::kafka::KafkaConfig`]).
    #[cfg(feature = "kafka")]
    Kafka(coord_kafka::KafkaConfig),
}

#[cfg(feature = "kafka")]
impl From<coord_kafka::KafkaConfig> for BackendConfig {
    fn from(config: coord_kafka::KafkaConfig) -> Self {
        BackendConfig::Kafka(config)
    }
}

#[cfg(feature = "redis")]
impl From<coord_redis::RedisConfig> for BackendConfig {
    fn from(config: coord_redis::RedisConfig) -> Self {
        BackendConfig::Redis(config)
    }
}

#[cfg(feature = "nats")]
impl From<coord_nats::NatsConfig> for BackendConfig {
    fn from(config: coord_nats::NatsConfig) -> Self {
        BackendConfig::Nats(config)
    }
}

#[cfg(feature = "zenoh")]
impl From<coord_zenoh::ZenohConfig> for BackendConfig {
    fn from(config: coord_zenoh::ZenohConfig) -> Self {
        BackendConfig::Zenoh(config)
    }
}

impl BackendConfig {
    /// The table's name in the configuration file.
    pub(crate) fn table(&self) -> &'static str {
        match *self {
            #[cfg(feature = "nats")]
            BackendConfig::Nats(_) => "coordinator.nats",
            #[cfg(feature = "zenoh")]
            BackendConfig::Zenoh(_) => "coordinator.zenoh",
            #[cfg(feature = "redis")]
            BackendConfig::Redis(_) => "coordinator.redis",
            #[cfg(feature = "kafka")]
            BackendConfig::Kafka(_) => "coordinator.kafka",
        }
    }

    /// Checks the settings without connecting.
    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            #[cfg(feature = "nats")]
            BackendConfig::Nats(config) => config.validate(),
            #[cfg(feature = "zenoh")]
            BackendConfig::Zenoh(config) => config.validate(),
            #[cfg(feature = "redis")]
            BackendConfig::Redis(config) => config.validate(),
            #[cfg(feature = "kafka")]
            BackendConfig::Kafka(config) => config.validate(),
        }
    }

    /// Connects the backend.
    pub(crate) async fn connect(&self) -> Result<Arc<dyn TransportDyn>> {
        match self {
            #[cfg(feature = "nats")]
            BackendConfig::Nats(config) => {
                let transport: Arc<dyn TransportDyn> = Arc::new(coord_nats::NatsTransport::connect(config).await?);
                Ok(transport)
            }
            #[cfg(feature = "zenoh")]
            BackendConfig::Zenoh(config) => {
                let transport: Arc<dyn TransportDyn> =
                    Arc::new(coord_zenoh::ZenohTransport::open(config.clone()).await?);
                Ok(transport)
            }
            #[cfg(feature = "redis")]
            BackendConfig::Redis(config) => {
                let transport: Arc<dyn TransportDyn> = Arc::new(coord_redis::RedisTransport::connect(config).await?);
                Ok(transport)
            }
            #[cfg(feature = "kafka")]
            BackendConfig::Kafka(config) => {
                let transport: Arc<dyn TransportDyn> = Arc::new(coord_kafka::KafkaTransport::connect(config).await?);
                Ok(transport)
            }
        }
    }
}

/// The URI parameters the facade itself reads; every other parameter belongs
/// to the backend.
const FACADE_PARAMS: &[&str] = &["node-id", "namespace", "profile"];

/// The URI schemes this build can start a coordinator on (`memory`, and
/// each backend whose feature is on).
pub fn schemes() -> impl Iterator<Item = &'static str> {
    BACKENDS.iter().map(|b| b.scheme)
}

fn scheme_list() -> String {
    schemes().collect::<Vec<_>>().join(", ")
}

fn config_error(message: String) -> Error {
    Error::new(ErrorKind::Config, "config", message)
}

/// A parsed backend URI such as `memory://cluster-a?node-id=mx1`.
///
/// The scheme selects the backend and must be one of [`schemes`]. The
/// parameters `node-id`, `namespace` and `profile` (`fast` or `default`)
/// are read by the facade, as a shorthand for the settings of the same name;
/// every other parameter is the backend's. Values are percent-decoded.
///
/// `Display` and `Debug` hide the password of a `user:password@` part and
/// the values of the backend's parameters (they may be credentials), so a
/// URI can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendUri {
    scheme: String,
    target: String,
    node_id: Option<NodeId>,
    namespace: Option<Namespace>,
    profile: Option<Profile>,
    params: Vec<(String, String)>,
}

impl BackendUri {
    /// Parses and checks `uri`.
    ///
    /// # Errors
    /// `Config` when `uri` is not of the form `scheme://target?key=value&…`,
    /// names a scheme this build cannot start, or has an invalid `node-id`,
    /// `namespace` or `profile` parameter; the message says what to write
    /// instead.
    pub fn parse(uri: &str) -> Result<Self> {
        let shown = redact(uri);
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(config_error(format!(
                "`{shown}` is not a backend URI: write scheme://target, e.g. \"memory://cluster-a\" (schemes: {})",
                scheme_list()
            )));
        };
        let scheme = scheme.to_ascii_lowercase();
        let backend = BACKENDS.iter().find(|b| b.scheme == scheme);
        if backend.is_none() {
            let why = if let Some((_, feature)) = OPTIONAL.iter().find(|(name, _)| *name == scheme) {
                format!("the `{scheme}` backend is not compiled into this build: enable coord's `{feature}` feature")
            } else {
                format!("unknown backend scheme `{scheme}`")
            };
            return Err(config_error(format!("{why}: use one of {}", scheme_list())));
        }
        let (target, query) = match rest.split_once('?') {
            Some((target, query)) => (target, Some(query)),
            None => (rest, None),
        };
        let mut parsed = BackendUri {
            scheme,
            target: target.to_owned(),
            node_id: None,
            namespace: None,
            profile: None,
            params: Vec::new(),
        };
        for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(config_error(format!(
                    "URI parameter `{}` has no value: write key=value",
                    percent_decode(pair)?
                )));
            };
            let (key, value) = (percent_decode(key)?, percent_decode(value)?);
            if FACADE_PARAMS.contains(&key.as_str()) {
                parsed.set_facade_param(&key, &value)?;
            } else {
                parsed.params.push((key, value));
            }
        }
        Ok(parsed)
    }

    fn set_facade_param(&mut self, key: &str, value: &str) -> Result<()> {
        let duplicate = match key {
            "node-id" => self.node_id.replace(NodeId::new(value)?).is_some(),
            "namespace" => self.namespace.replace(Namespace::new(value)?).is_some(),
            _ => {
                let deserializer = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(value);
                let profile = Profile::deserialize(deserializer).map_err(|_| {
                    config_error(format!("URI parameter `profile` is {value:?}: use `fast` or `default`"))
                })?;
                self.profile.replace(profile).is_some()
            }
        };
        if duplicate {
            return Err(config_error(format!("URI parameter `{key}` is given twice: keep one")));
        }
        Ok(())
    }

    /// The scheme, lowercase (`memory`).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// What lies between `://` and `?`: the memory network's name, or a
    /// backend's hosts and path.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The `node-id` parameter, if any.
    pub fn node_id(&self) -> Option<&NodeId> {
        self.node_id.as_ref()
    }

    /// The `namespace` parameter, if any.
    pub fn namespace(&self) -> Option<&Namespace> {
        self.namespace.as_ref()
    }

    /// The `profile` parameter, if any.
    pub fn profile(&self) -> Option<Profile> {
        self.profile
    }

    /// The backend's own parameters, decoded, in order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// Connects the backend this URI names.
    pub(crate) async fn connect(&self) -> Result<Arc<dyn TransportDyn>> {
        let backend = BACKENDS
            .iter()
            .find(|b| b.scheme == self.scheme)
            .expect("the scheme was checked when the URI was parsed");
        (backend.connect)(self).await
    }
}

impl std::str::FromStr for BackendUri {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self> {
        BackendUri::parse(uri)
    }
}

impl fmt::Display for BackendUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, redact(&self.target))?;
        let facade = [
            ("node-id", self.node_id.as_ref().map(NodeId::as_str)),
            ("namespace", self.namespace.as_ref().map(Namespace::as_str)),
            (
                "profile",
                self.profile.map(|p| match p {
                    Profile::Fast => "fast",
                    Profile::Default => "default",
                }),
            ),
        ];
        let pairs = facade
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .chain(self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for (i, (key, value)) in pairs.enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            // Parameter values may be credentials of a backend: never shown.
            let value = if FACADE_PARAMS.contains(&key) { value } else { "…" };
            write!(f, "{sep}{key}={value}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BackendUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackendUri({self})")
    }
}

impl<'de> Deserialize<'de> for BackendUri {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let uri = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        BackendUri::parse(&uri).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

/// `uri` with the password of any `user:password@` part replaced by `***`.
fn redact(uri: &str) -> String {
    let (prefix, rest) = match uri.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), uri),
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{prefix}{user}{hidden}@{host}{tail}")
        }
        None => format!("{prefix}{rest}"),
    }
}

/// Decodes `%XX` escapes.
fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                return Err(config_error(format!(
                    "URI part {text:?} has a bad %-escape: write % followed by two hex digits"
                )));
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| config_error(format!("URI part {text:?} decodes to invalid UTF-8")))
}

/// `memory://<name>`: the process-wide in-memory network of that name.
fn connect_memory(uri: &BackendUri) -> BoxFuture<'_, Result<Arc<dyn TransportDyn>>> {
    Box::pin(async move {
        let name = uri.target();
        if name.is_empty() || name.contains('/') {
            return Err(config_error(format!(
                "memory URI target {name:?} is not a network name: write memory://<name>, e.g. memory://cluster-a"
            )));
        }
        if let Some((key, _)) = uri.params().first() {
            return Err(config_error(format!(
                "unknown URI parameter `{key}` for the memory backend: it takes only {}",
                FACADE_PARAMS.join(", ")
            )));
        }
        let transport: Arc<dyn TransportDyn> = Arc::new(MemoryNetwork::named(name).connect());
        Ok(transport)
    })
}

/// `nats://[user:password@]host:port[,host:port…]?…`: see [`coord_nats::NatsConfig::from_uri_parts`].
#[cfg(feature = "nats")]
fn connect_nats(uri: &BackendUri) -> BoxFuture<'_, Result<Arc<dyn TransportDyn>>> {
    Box::pin(async move {
        let config = coord_nats::NatsConfig::from_uri_parts(uri.target(), uri.params())?;
        BackendConfig::Nats(config).connect().await
    })
}

/// `zenoh://[host:port[,host:port…]]?…`: see [`coord_zenoh::ZenohConfig::from_uri_parts`].
#[cfg(feature = "zenoh")]
fn connect_zenoh(uri: &BackendUri) -> BoxFuture<'_, Result<Arc<dyn TransportDyn>>> {
    Box::pin(async move {
        let config = coord_zenoh::ZenohConfig::from_uri_parts(uri.target(), uri.params())?;
        BackendConfig::Zenoh(config).connect().await
    })
}

/// `redis://`, `rediss://`, `redis+cluster://`, `redis+sentinel://` (and
/// their TLS forms): see [`coord_redis::RedisConfig::from_uri_parts`].
#[cfg(feature = "redis")]
fn connect_redis(uri: &BackendUri) -> BoxFuture<'_, Result<Arc<dyn TransportDyn>>> {
    Box::pin(async move {
        let config = coord_redis::RedisConfig::from_uri_parts(uri.scheme(), uri.target(), uri.params())?;
        BackendConfig::Redis(config).connect().await
    })
}

/// `kafka://[user:password@]host:port[,host:port…]?…`: see [`coord_kafka::KafkaConfig::from_uri_parts`].
#[cfg(feature = "kafka")]
fn connect_kafka(uri: &BackendUri) -> BoxFuture<'_, Result<Arc<dyn TransportDyn>>> {
    Box::pin(async move {
        let config = coord_kafka::KafkaConfig::from_uri_parts(uri.target(), uri.params())?;
        BackendConfig::Kafka(config).connect().await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scheme_target_and_facade_parameters() {
        let uri = BackendUri::parse("MEMORY://cluster-a?node-id=mx1&namespace=mail&profile=fast").unwrap();
        assert_eq!(uri.scheme(), "memory");
        assert_eq!(uri.target(), "cluster-a");
        assert_eq!(uri.node_id().map(NodeId::as_str), Some("mx1"));
        assert_eq!(uri.namespace().map(Namespace::as_str), Some("mail"));
        assert_eq!(uri.profile(), Some(Profile::Fast));
        assert!(uri.params().is_empty());
        assert_eq!(
            uri.to_string(),
            "memory://cluster-a?node-id=mx1&namespace=mail&profile=fast"
        );
    }

    #[test]
    fn backend_parameters_are_kept_decoded_and_hidden_when_shown() {
        let uri = BackendUri::parse("memory://a?token=s%3Dcret&node-id=mx%31").unwrap();
        assert_eq!(uri.params(), &[("token".to_owned(), "s=cret".to_owned())]);
        assert_eq!(uri.node_id().map(NodeId::as_str), Some("mx1"));
        let shown = format!("{uri} {uri:?}");
        assert!(!shown.contains("cret"), "{shown}");
    }

    #[test]
    fn unknown_scheme_names_the_scheme_and_the_available_ones() {
        let err = BackendUri::parse("foo://x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(
            err.message(),
            format!("unknown backend scheme `foo`: use one of {}", scheme_list())
        );
    }

    #[cfg(feature = "nats")]
    #[tokio::test]
    async fn nats_uri_errors_name_the_parameter_or_the_server() {
        let Err(err) = BackendUri::parse("nats://127.0.0.1:1?colour=blue")
            .unwrap()
            .connect()
            .await
        else {
            panic!("an unknown nats parameter was accepted");
        };
        assert!(err.message().contains("unknown URI parameter `colour`"), "{err}");
        let Err(err) = BackendUri::parse("nats://u:pw@127.0.0.1:1").unwrap().connect().await else {
            panic!("a nats server was found on port 1");
        };
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("nats://127.0.0.1:1"), "{err}");
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[cfg(feature = "zenoh")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zenoh_uri_starts_a_peer_and_names_bad_parameters() {
        let Err(err) = BackendUri::parse("zenoh://?colour=blue").unwrap().connect().await else {
            panic!("an unknown zenoh parameter was accepted");
        };
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.message().contains("colour"), "{err}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let uri = format!("zenoh://?listen=tcp/127.0.0.1:{port}&scouting=off&gossip=off");
        let transport = BackendUri::parse(&uri).unwrap().connect().await.unwrap();
        assert_eq!(transport.capabilities_dyn().backend, "zenoh");
        transport.close_dyn().await.unwrap();
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn redis_uris_choose_the_topology() {
        let Err(err) = BackendUri::parse("redis+sentinel://127.0.0.1:1")
            .unwrap()
            .connect()
            .await
        else {
            panic!("a sentinel URI without a master name was accepted");
        };
        assert!(err.message().contains("master-name"), "{err}");
        let Err(err) = BackendUri::parse("redis://u:pw@127.0.0.1:1/0").unwrap().connect().await else {
            panic!("a redis server was found on port 1");
        };
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(
            err.to_string().contains("127.0.0.1:1") && !err.to_string().contains("pw"),
            "{err}"
        );
    }

    #[cfg(not(feature = "kafka"))]
    #[test]
    fn kafka_without_its_feature_names_the_feature() {
        let err = BackendUri::parse("kafka://user:pw@127.0.0.1:9092").unwrap_err();
        assert!(err.message().contains("enable coord's `kafka` feature"), "{err}");
        assert!(!err.message().contains("pw"), "{err}");
    }

    #[cfg(feature = "kafka")]
    #[tokio::test]
    async fn kafka_uri_errors_name_the_parameter_or_the_broker() {
        let Err(err) = BackendUri::parse("kafka://127.0.0.1:1?colour=blue")
            .unwrap()
            .connect()
            .await
        else {
            panic!("an unknown kafka parameter was accepted");
        };
        assert!(err.message().contains("unknown URI parameter `colour`"), "{err}");
        let Err(err) = BackendUri::parse("kafka://127.0.0.1:1?connect-timeout=1s")
            .unwrap()
            .connect()
            .await
        else {
            panic!("a kafka broker was found on port 1");
        };
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(
            err.to_string().contains("kafka") && err.to_string().contains("127.0.0.1:1"),
            "{err}"
        );
    }

    #[test]
    fn malformed_uris_say_what_to_write() {
        for (uri, expected) in [
            ("cluster-a", "is not a backend URI"),
            ("memory://a?node-id", "`node-id` has no value"),
            ("memory://a?node-id=a.b", "node id \"a.b\" is invalid"),
            ("memory://a?profile=slow", "use `fast` or `default`"),
            ("memory://a?node-id=a&node-id=b", "`node-id` is given twice"),
            ("memory://a?x=%zz", "bad %-escape"),
        ] {
            let err = BackendUri::parse(uri).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{uri}");
            assert!(err.message().contains(expected), "{uri}: {err}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://u:pw@h:6379/0?x=1"), "redis://u:***@h:6379/0?x=1");
        assert_eq!(redact("redis://tok@h"), "redis://tok@h");
        assert_eq!(redact("memory://a"), "memory://a");
        let err = BackendUri::parse("nope:pw@host").unwrap_err();
        assert!(!err.message().contains("pw@"), "{err}");
    }

    #[tokio::test]
    async fn memory_backend_checks_name_and_parameters() {
        let Err(err) = BackendUri::parse("memory://").unwrap().connect().await else {
            panic!("an empty memory network name was accepted");
        };
        assert!(err.message().contains("not a network name"), "{err}");
        let Err(err) = BackendUri::parse("memory://a?tls=1").unwrap().connect().await else {
            panic!("an unknown memory parameter was accepted");
        };
        assert!(err.message().contains("unknown URI parameter `tls`"), "{err}");
        let transport = BackendUri::parse("memory://a").unwrap().connect().await.unwrap();
        assert_eq!(transport.capabilities_dyn().backend, "memory");
    }
}
