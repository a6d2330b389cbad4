//! [`Builder`]: the chaining way to start a [`Coordinator`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use coord_core::engine::{BatchConfig, HealthConfig, InboxConfig, OutboxConfig};
use coord_core::membership::MembershipConfig;
use coord_core::{Error, ErrorKind, Namespace, Node, NodeConfig, NodeId, Profile, Result, Secret, TransportDyn};

use crate::backend::{BackendConfig, BackendUri};
use crate::config::CoordinatorConfig;
use crate::coordinator::Coordinator;

/// Where the settings came from, so that an error names what the user wrote:
/// a builder method, a config key or a URI parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Builder,
    Config,
    Uri,
}

impl Origin {
    /// How to refer to setting `key` (kebab-case) for this origin.
    fn name(self, key: &str) -> String {
        match self {
            Origin::Builder => format!("`.{}(..)`", key.replace('-', "_")),
            Origin::Config if key == "profile" => "`coordinator.membership.profile`".to_owned(),
            Origin::Config => format!("`coordinator.{key}`"),
            Origin::Uri => format!("the URI parameter `{key}`"),
        }
    }
}

/// Starts a [`Coordinator`] step by step; made by [`Coordinator::builder`].
///
/// Every setting has the default of the engine ([`NodeConfig`]) except the
/// node id, which has none. Without a backend (a URI, a backend's settings
/// or a transport), a Zenoh peer with the default settings is started: the
/// embedded default, needing no server (with the `zenoh` feature, on by default).
/// Invalid values are reported by [`Builder::start`], with the setting named
/// and the fix, so the chain needs no `?` before the end.
///
/// The URI's `node-id`, `namespace` and `profile` parameters fill the
/// settings that were not set otherwise; a setting given both ways with
/// different values is an error.
#[must_use = "a builder does nothing until `.start().await`"]
pub struct Builder {
    origin: Origin,
    /// The first invalid value given, reported by `start`.
    error: Option<Error>,
    node_id: Option<NodeId>,
    namespace: Option<Namespace>,
    secret: Option<Secret>,
    profile: Option<Profile>,
    membership: MembershipConfig,
    outbox: OutboxConfig,
    batch: BatchConfig,
    inbox: InboxConfig,
    health: HealthConfig,
    version: String,
    roles: Vec<String>,
    addresses: Vec<String>,
    labels: BTreeMap<String, String>,
    uri: Option<BackendUri>,
    backend: Option<BackendConfig>,
    /// Backend tables given in a configuration file (more than one is an error).
    tables: usize,
    transport: Option<Arc<dyn TransportDyn>>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("node_id", &self.node_id)
            .field("namespace", &self.namespace)
            .field("secret", &self.secret)
            .field("profile", &self.profile)
            .field("uri", &self.uri)
            .field("backend", &self.backend)
            .field(
                "transport",
                &self.transport.as_ref().map(|t| t.capabilities_dyn().backend),
            )
            .finish_non_exhaustive()
    }
}

/// What [`Builder::prepare`] resolves: everything but the live transport.
pub(crate) struct Prepared {
    pub(crate) config: NodeConfig,
    pub(crate) backend: Backend,
}

/// The transport to start on.
pub(crate) enum Backend {
    Uri(BackendUri),
    Config(Box<BackendConfig>),
    Transport(Arc<dyn TransportDyn>),
}

impl Builder {
    pub(crate) fn new(origin: Origin) -> Self {
        Builder {
            origin,
            error: None,
            node_id: None,
            namespace: None,
            secret: None,
            profile: None,
            membership: MembershipConfig::default(),
            outbox: OutboxConfig::default(),
            batch: BatchConfig::default(),
            inbox: InboxConfig::default(),
            health: HealthConfig::default(),
            version: String::new(),
            roles: Vec::new(),
            addresses: Vec::new(),
            labels: BTreeMap::new(),
            uri: None,
            backend: None,
            tables: 0,
            transport: None,
        }
    }

    /// A builder holding every setting of `config`.
    pub(crate) fn from_config(config: &CoordinatorConfig) -> Self {
        let mut builder = Builder::new(Origin::Config);
        builder.node_id = config.node_id.clone();
        builder.namespace = config.namespace.clone();
        builder.secret = config.secret.clone();
        if let Some(membership) = &config.membership {
            builder.profile = Some(membership.profile);
            builder.membership = membership.clone();
        }
        builder.outbox = config.outbox.clone();
        builder.batch = config.batch.clone();
        builder.inbox = config.inbox.clone();
        builder.health = config.health.clone();
        builder.version = config.version.clone();
        builder.roles = config.roles.clone();
        builder.addresses = config.addresses.clone();
        builder.labels = config.labels.clone();
        builder.uri = config.backend.clone();
        builder.backend = config.backend_table();
        builder.tables = config.backend_tables();
        builder
    }

    fn keep_first_error<T>(&mut self, value: Result<T>) -> Option<T> {
        match value {
            Ok(value) => Some(value),
            Err(error) => {
                self.error.get_or_insert(error);
                None
            }
        }
    }

    /// This node's id: unique among the live nodes of the cluster, 1 to 64
    /// ASCII letters, digits, `-` or `_` (e.g. `mx1`). Required, here or as
    /// the URI's `node-id` parameter.
    pub fn node_id(mut self, node_id: impl AsRef<str>) -> Self {
        self.node_id = self.keep_first_error(NodeId::new(node_id));
        self
    }

    /// The cluster's namespace (default `coord`): clusters with different
    /// namespaces on one broker never see each other.
    pub fn namespace(mut self, namespace: impl AsRef<str>) -> Self {
        self.namespace = self.keep_first_error(Namespace::new(namespace));
        self
    }

    /// The cluster secret that signs and checks every frame. Without one the
    /// node logs a warning at start and accepts unsigned frames.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The failure-detection profile (default [`Profile::Default`]), keeping
    /// any overrides set by [`Builder::membership`].
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self.membership.profile = profile;
        self
    }

    /// Heartbeat and failure-detector settings: a profile plus overrides.
    pub fn membership(mut self, membership: MembershipConfig) -> Self {
        self.profile = Some(membership.profile);
        self.membership = membership;
        self
    }

    /// The outgoing queue's settings.
    pub fn outbox(mut self, outbox: OutboxConfig) -> Self {
        self.outbox = outbox;
        self
    }

    /// How events are grouped into frames.
    pub fn batch(mut self, batch: BatchConfig) -> Self {
        self.batch = batch;
        self
    }

    /// Incoming checks and local delivery.
    pub fn inbox(mut self, inbox: InboxConfig) -> Self {
        self.inbox = inbox;
        self
    }

    /// The end-to-end health probe.
    pub fn health(mut self, health: HealthConfig) -> Self {
        self.health = health;
        self
    }

    /// The application's version, announced to peers in heartbeats.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Roles this node plays (e.g. `imap`, `smtp-in`), announced in heartbeats.
    pub fn roles(mut self, roles: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Addresses where this node can be reached (hints for operators),
    /// announced in heartbeats.
    pub fn addresses(mut self, addresses: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.addresses = addresses.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a free-form label, announced in heartbeats.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The backend, as a URI such as `memory://cluster-a` (see
    /// [`BackendUri`] and [`crate::schemes`]).
    pub fn uri(mut self, uri: impl AsRef<str>) -> Self {
        self.uri = self.keep_first_error(BackendUri::parse(uri.as_ref()));
        self
    }

    /// The backend, as its own settings, e.g.
    /// `.backend(coord::nats::NatsConfig::new(["nats://127.0.0.1:4222"]))`.
    pub fn backend(mut self, backend: impl Into<BackendConfig>) -> Self {
        self.backend = Some(backend.into());
        self
    }

    /// The backend, as any transport: a custom [`coord_core::Transport`]
    /// implementation, or a memory transport made in a test. Use either this
    /// or [`Builder::uri`].
    pub fn transport(mut self, transport: Arc<dyn TransportDyn>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Resolves and checks every setting without connecting.
    pub(crate) fn prepare(&self) -> Result<Prepared> {
        if let Some(error) = &self.error {
            return Err(Error::new(error.kind(), error.operation(), error.message()));
        }
        let ways = [self.uri.is_some(), self.backend.is_some(), self.transport.is_some()];
        if ways.iter().filter(|set| **set).count() > 1 || self.tables > 1 {
            return Err(config_error(match self.origin {
                Origin::Config => MORE_THAN_ONE_IN_CONFIG.to_owned(),
                _ => "more than one backend is set: keep one of `.uri(..)`, `.backend(..)` and `.transport(..)`"
                    .to_owned(),
            }));
        }
        if let Some(backend) = &self.backend {
            backend.validate().map_err(|error| match self.origin {
                Origin::Config => config_error(format!("in `[{}]`: {}", backend.table(), error.message())),
                _ => error,
            })?;
        }
        let uri = self.uri.as_ref();
        let node_id = self.merge("node-id", self.node_id.as_ref(), uri.and_then(BackendUri::node_id))?;
        let Some(node_id) = node_id else {
            return Err(config_error(match self.origin {
                Origin::Builder => {
                    "the node id is missing: call `.node_id(..)` with this node's unique name".to_owned()
                }
                Origin::Config => {
                    "`coordinator.node-id` is missing: set it to this node's unique name, e.g. node-id = \"mx1\""
                        .to_owned()
                }
                Origin::Uri => "the URI has no `node-id` parameter: add `?node-id=` and this node's unique \
                                name, e.g. memory://cluster-a?node-id=mx1"
                    .to_owned(),
            }));
        };
        let backend = match (uri, &self.backend, &self.transport) {
            (Some(uri), _, _) => Backend::Uri(uri.clone()),
            (None, Some(backend), _) => Backend::Config(Box::new(backend.clone())),
            (None, None, Some(transport)) => Backend::Transport(transport.clone()),
            (None, None, None) => self.default_backend()?,
        };
        let namespace = self.merge(
            "namespace",
            self.namespace.as_ref(),
            uri.and_then(BackendUri::namespace),
        )?;
        let profile = self.merge("profile", self.profile.as_ref(), uri.and_then(|u| u.profile()).as_ref())?;

        let mut config = NodeConfig::new(node_id);
        config.namespace = namespace.unwrap_or_default();
        config.secret = self.secret.clone();
        config.membership = self.membership.clone();
        if let Some(profile) = profile {
            config.membership.profile = profile;
        }
        config.outbox = self.outbox.clone();
        config.batch = self.batch.clone();
        config.inbox = self.inbox.clone();
        config.health = self.health.clone();
        config.version = self.version.clone();
        config.roles = self.roles.clone();
        config.addresses = self.addresses.clone();
        config.labels = self.labels.clone();
        config.validate().map_err(|error| match self.origin {
            // The engine names keys relative to the `[coordinator]` table.
            Origin::Config => config_error(format!("in the `[coordinator]` table: {}", error.message())),
            _ => error,
        })?;
        Ok(Prepared { config, backend })
    }

    /// The backend when none is given: a Zenoh peer with the default
    /// settings (listening on `tcp/0.0.0.0:7447`, finding the others by
    /// multicast scouting), or an error without the `zenoh` feature.
    #[cfg(feature = "zenoh")]
    fn default_backend(&self) -> Result<Backend> {
        Ok(Backend::Config(Box::new(BackendConfig::Zenoh(
            coord_zenoh::ZenohConfig::default(),
        ))))
    }

    #[cfg(not(feature = "zenoh"))]
    fn default_backend(&self) -> Result<Backend> {
        Err(config_error(match self.origin {
            Origin::Config => "no backend is configured and this build has no default one (coord's `zenoh` \
                               feature is off): set `coordinator.backend` to a backend URI such as \
                               \"nats://127.0.0.1:4222\", or add a backend table such as `[coordinator.nats]`"
                .to_owned(),
            _ => "no backend is set and this build has no default one (coord's `zenoh` feature is off): call \
                  `.uri(\"nats://127.0.0.1:4222\")`, `.backend(..)` or `.transport(..)`"
                .to_owned(),
        }))
    }

    /// The value of setting `key`, from this builder or the URI; an error if
    /// both give it with different values.
    fn merge<T: Clone + PartialEq + fmt::Debug>(
        &self,
        key: &str,
        set: Option<&T>,
        from_uri: Option<&T>,
    ) -> Result<Option<T>> {
        match (set, from_uri) {
            (Some(a), Some(b)) if a != b => Err(config_error(format!(
                "{} is {a:?} but the backend URI's `{key}` parameter is {b:?}: keep one",
                self.origin.name(key)
            ))),
            (Some(v), _) | (None, Some(v)) => Ok(Some(v.clone())),
            (None, None) => Ok(None),
        }
    }

    /// Checks the settings, connects the backend and starts the node: it
    /// subscribes to its channels, then announces itself with heartbeats.
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// - `Config` for an invalid or missing setting: the message names the
    ///   setting (builder method, config key or URI parameter) and the fix.
    /// - The backend's error when it cannot connect or subscribe
    ///   (`Unavailable` is temporary: retrying may succeed).
    pub async fn start(self) -> Result<Coordinator> {
        let Prepared { config, backend } = self.prepare()?;
        let transport = match backend {
            Backend::Uri(uri) => uri.connect().await?,
            Backend::Config(backend) => backend.connect().await?,
            Backend::Transport(transport) => transport,
        };
        let node = Node::start(config, transport).await?;
        Ok(Coordinator::new(node))
    }
}

/// Two backends in one configuration file.
const MORE_THAN_ONE_IN_CONFIG: &str = "more than one backend is configured: keep one of `coordinator.backend` and \
                                       the backend tables such as `[coordinator.nats]` or `[coordinator.zenoh]`";

fn config_error(message: String) -> Error {
    Error::new(ErrorKind::Config, "config", message)
}
