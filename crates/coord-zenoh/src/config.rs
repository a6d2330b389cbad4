//! [`ZenohConfig`]: what an operator writes under `[coordinator.zenoh]`, and
//! how it becomes a Zenoh peer configuration.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use coord_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use crate::endpoint;

/// Largest frame carried by default, in bytes (as NATS and Kafka).
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
/// Largest message a Zenoh peer reassembles by default (1 GiB).
const MAX_MESSAGE_SIZE: usize = 1 << 30;
/// Frames buffered per subscription by default before it overflows.
pub const DEFAULT_SUBSCRIPTION_CAPACITY: usize = 8192;

/// Configuration of one node's Zenoh peer.
///
/// Every field has a default, so an empty table is a valid configuration: a
/// peer that listens on `tcp/0.0.0.0:7447` and finds the others by multicast
/// scouting.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ZenohConfig {
    /// Endpoints this peer listens on, e.g. `tcp/0.0.0.0:7447` or `tls/0.0.0.0:7447`.
    pub listen: Vec<String>,
    /// Endpoints of other peers (or routers) to connect to, e.g. `tcp/10.0.0.2:7447`.
    pub connect: Vec<String>,
    /// Multicast scouting: peers on the LAN find each other without `connect`.
    pub multicast_scouting: bool,
    /// Gossip scouting: peers tell each other the endpoints they know, so a
    /// node listing one seed in `connect` learns of the rest.
    pub gossip: bool,
    /// Fail start when no `connect` endpoint answers within `connect-timeout`,
    /// instead of retrying in the background (a lone first node is normal in
    /// a peer cluster, hence off by default).
    pub require_connect: bool,
    /// How long start waits for a `connect` endpoint when `require-connect` is on.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// First wait before reconnecting to a lost `connect` endpoint; doubles up to `retry-max`.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Longest wait between reconnection attempts.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Zenoh link lease: a peer silent this long is disconnected and its
    /// liveliness token vanishes (four keep-alives are sent per lease).
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Declare this node's liveliness token and feed the loss of the others'
    /// to the membership detector, as a faster signal beside the heartbeats.
    pub liveliness: bool,
    /// How long a publish may wait for room in a congested link before it
    /// fails with a temporary `Unavailable` error.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// Largest frame, in bytes, declared in the transport's capabilities.
    pub max_payload: usize,
    /// Frames buffered per subscription before further ones are dropped,
    /// counted and reported as `Lagged`.
    pub subscription_capacity: usize,
    /// TLS for `tls/` endpoints.
    pub tls: Option<TlsConfig>,
    /// User/password authentication of every link.
    pub auth: Option<UserPassword>,
    /// For experts: a raw Zenoh configuration in JSON5, used as the base on
    /// which the settings above are applied (see the crate docs for the keys
    /// coord sets).
    pub zenoh_json5: Option<String>,
}

/// TLS settings: the CA that signs every node's certificate, and this node's
/// certificate and key.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM file of the CA that peers' certificates must chain to.
    pub ca: PathBuf,
    /// PEM file of this node's certificate (needed to listen on `tls/`, and with `mutual`).
    pub cert: Option<PathBuf>,
    /// PEM file of this node's private key.
    pub key: Option<PathBuf>,
    /// Mutual TLS: peers must present a certificate too, and this node presents its own.
    #[serde(default)]
    pub mutual: bool,
    /// Check that the peer's certificate names the host it was reached at.
    #[serde(default = "yes")]
    pub verify_name: bool,
}

/// User/password authentication: what this node presents, and the file of
/// the credentials it accepts from others.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct UserPassword {
    /// The user this node authenticates as.
    pub user: String,
    /// Its password.
    pub password: String,
    /// File of `<user>:<password>` lines this node accepts from its peers
    /// (usually one line: the cluster's own credentials).
    pub credentials_file: PathBuf,
}

fn yes() -> bool {
    true
}

impl Default for ZenohConfig {
    fn default() -> Self {
        ZenohConfig {
            listen: vec!["tcp/0.0.0.0:7447".to_owned()],
            connect: Vec::new(),
            multicast_scouting: true,
            gossip: true,
            require_connect: false,
            connect_timeout: Duration::from_secs(5),
            retry_initial: Duration::from_millis(250),
            retry_max: Duration::from_secs(4),
            lease: Duration::from_secs(3),
            liveliness: true,
            publish_timeout: Duration::from_secs(5),
            max_payload: DEFAULT_MAX_PAYLOAD,
            subscription_capacity: DEFAULT_SUBSCRIPTION_CAPACITY,
            tls: None,
            auth: None,
            zenoh_json5: None,
        }
    }
}

impl fmt::Debug for ZenohConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZenohConfig")
            .field("listen", &self.listen)
            .field("connect", &self.connect)
            .field("multicast_scouting", &self.multicast_scouting)
            .field("gossip", &self.gossip)
            .field("require_connect", &self.require_connect)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry_initial", &self.retry_initial)
            .field("retry_max", &self.retry_max)
            .field("lease", &self.lease)
            .field("liveliness", &self.liveliness)
            .field("publish_timeout", &self.publish_timeout)
            .field("max_payload", &self.max_payload)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .field("zenoh_json5", &self.zenoh_json5.as_ref().map(|raw| Redacted(raw.len())))
            .finish()
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key.as_ref().map(|_| Redacted(0)))
            .field("mutual", &self.mutual)
            .field("verify_name", &self.verify_name)
            .finish()
    }
}

impl fmt::Debug for UserPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserPassword")
            .field("user", &self.user)
            .field("password", &Redacted(0))
            .field("credentials_file", &self.credentials_file)
            .finish()
    }
}

/// Stands for a secret in `Debug` output.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("<redacted>"),
            n => write!(f, "<redacted, {n} bytes>"),
        }
    }
}

impl TlsConfig {
    /// TLS trusting the CA in `ca`, presenting `cert` and `key` (PEM files).
    pub fn new(ca: impl Into<PathBuf>, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsConfig {
            ca: ca.into(),
            cert: Some(cert.into()),
            key: Some(key.into()),
            mutual: false,
            verify_name: true,
        }
    }

    /// TLS trusting the CA in `ca` with no certificate of its own: enough to
    /// connect to peers that do not require mutual TLS.
    pub fn trusting(ca: impl Into<PathBuf>) -> Self {
        TlsConfig {
            ca: ca.into(),
            cert: None,
            key: None,
            mutual: false,
            verify_name: true,
        }
    }

    /// Requires (and presents) client certificates: mutual TLS.
    pub fn mutual(mut self, on: bool) -> Self {
        self.mutual = on;
        self
    }
}

impl UserPassword {
    /// Authenticates as `user`/`password`, accepting the credentials listed in `credentials_file`.
    pub fn new(user: impl Into<String>, password: impl Into<String>, credentials_file: impl Into<PathBuf>) -> Self {
        UserPassword {
            user: user.into(),
            password: password.into(),
            credentials_file: credentials_file.into(),
        }
    }
}

impl ZenohConfig {
    /// The default configuration (see [`ZenohConfig`]); chain the setters below.
    pub fn new() -> Self {
        ZenohConfig::default()
    }

    /// Listens on these endpoints instead of the default `tcp/0.0.0.0:7447`.
    pub fn listen<S: Into<String>>(mut self, endpoints: impl IntoIterator<Item = S>) -> Self {
        self.listen = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Connects to these endpoints.
    pub fn connect<S: Into<String>>(mut self, endpoints: impl IntoIterator<Item = S>) -> Self {
        self.connect = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Turns multicast scouting on or off.
    pub fn multicast_scouting(mut self, on: bool) -> Self {
        self.multicast_scouting = on;
        self
    }

    /// Turns gossip scouting on or off.
    pub fn gossip(mut self, on: bool) -> Self {
        self.gossip = on;
        self
    }

    /// Makes start fail when no `connect` endpoint answers within `timeout`.
    pub fn require_connect(mut self, timeout: Duration) -> Self {
        self.require_connect = true;
        self.connect_timeout = timeout;
        self
    }

    /// Waits between reconnection attempts: from `initial`, doubling up to `max`.
    pub fn retry(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial;
        self.retry_max = max;
        self
    }

    /// Sets the link lease.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Turns the liveliness signal of the membership detector on or off.
    pub fn liveliness(mut self, on: bool) -> Self {
        self.liveliness = on;
        self
    }

    /// Sets the largest frame.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Sets the frames buffered per subscription.
    pub fn subscription_capacity(mut self, frames: usize) -> Self {
        self.subscription_capacity = frames;
        self
    }

    /// Enables TLS.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Enables user/password authentication.
    pub fn auth(mut self, auth: UserPassword) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Uses a raw Zenoh JSON5 configuration as the base.
    pub fn zenoh_json5(mut self, raw: impl Into<String>) -> Self {
        self.zenoh_json5 = Some(raw.into());
        self
    }

    /// Checks the configuration; the error names the key and the fix.
    pub fn validate(&self) -> Result<()> {
        for (key, list) in [("listen", &self.listen), ("connect", &self.connect)] {
            for (i, text) in list.iter().enumerate() {
                let protocol = endpoint::check(&format!("{key}[{i}]"), text)?;
                if protocol == "tls" && self.tls.is_none() {
                    return Err(config_error(format!(
                        "{key}[{i}] = \"{text}\" is a tls/ endpoint but no [tls] table is set: add `tls.ca` \
                         (and `tls.cert`/`tls.key` to listen), or use a tcp/ endpoint"
                    )));
                }
            }
        }
        if self.listen.is_empty() && self.connect.is_empty() && !self.multicast_scouting {
            return Err(config_error(
                "no `listen` or `connect` endpoint and `multicast-scouting` is off: this peer could never meet \
                 another; add a `connect` endpoint, a `listen` endpoint or turn scouting on",
            ));
        }
        for (key, value) in [
            ("retry-initial", self.retry_initial),
            ("retry-max", self.retry_max),
            ("lease", self.lease),
            ("publish-timeout", self.publish_timeout),
            ("connect-timeout", self.connect_timeout),
        ] {
            if value < Duration::from_millis(1) {
                return Err(config_error(format!(
                    "`{key}` is {value:?}: use at least 1ms, e.g. \"250ms\""
                )));
            }
        }
        if self.retry_max < self.retry_initial {
            return Err(config_error(format!(
                "`retry-max` ({:?}) is below `retry-initial` ({:?}): make it at least as long",
                self.retry_max, self.retry_initial
            )));
        }
        if self.lease < Duration::from_millis(100) {
            return Err(config_error(format!(
                "`lease` is {:?}: Zenoh sends four keep-alives per lease, use at least \"100ms\"",
                self.lease
            )));
        }
        if self.max_payload == 0 || self.max_payload > MAX_MESSAGE_SIZE {
            return Err(config_error(format!(
                "`max-payload` is {}: use 1 to {MAX_MESSAGE_SIZE} bytes (Zenoh's reassembly limit), e.g. 1048576",
                self.max_payload
            )));
        }
        if self.subscription_capacity < 2 {
            return Err(config_error(
                "`subscription-capacity` must be at least 2 frames (one frame and one Lagged marker)",
            ));
        }
        if let Some(tls) = &self.tls {
            tls.validate(self.listen.iter().any(|e| e.starts_with("tls/")))?;
        }
        if let Some(auth) = &self.auth {
            if auth.user.is_empty() || auth.password.is_empty() {
                return Err(config_error(
                    "`auth.user` and `auth.password` must both be set (non-empty) when [auth] is present",
                ));
            }
            if auth.user.contains(':') {
                return Err(config_error(
                    "`auth.user` must not contain `:` (the credentials file separator)",
                ));
            }
        }
        Ok(())
    }
}

impl TlsConfig {
    fn validate(&self, listens: bool) -> Result<()> {
        if self.cert.is_some() != self.key.is_some() {
            return Err(config_error(
                "`tls.cert` and `tls.key` go together: set both or neither",
            ));
        }
        if (listens || self.mutual) && self.cert.is_none() {
            return Err(config_error(
                "listening on a tls/ endpoint or mutual TLS needs this node's certificate: set `tls.cert` and `tls.key`",
            ));
        }
        Ok(())
    }
}

/// An error of kind `Config` from the Zenoh backend.
/// The operation configuration errors name.
pub(crate) const OPERATION: &str = "zenoh config";

pub(crate) fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, OPERATION, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_debug_hides_secrets() {
        ZenohConfig::default().validate().unwrap();
        let config = ZenohConfig::new()
            .auth(UserPassword::new("coord", "hunter2", "/etc/coord/users"))
            .zenoh_json5("{ transport: { auth: { usrpwd: { password: \"s3cret\" } } } }");
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2") && !text.contains("s3cret"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn parses_kebab_case_with_durations_and_rejects_unknown_keys() {
        let config: ZenohConfig = serde_json::from_str(
            r#"{"listen": ["tcp/127.0.0.1:0"], "multicast-scouting": false, "lease": "500ms", "retry-max": "1s"}"#,
        )
        .unwrap();
        assert_eq!(config.lease, Duration::from_millis(500));
        assert!(!config.multicast_scouting);
        let unknown = serde_json::from_str::<ZenohConfig>(r#"{"scouting": false}"#).unwrap_err();
        assert!(unknown.to_string().contains("scouting"), "{unknown}");
    }

    #[test]
    fn the_toml_examples_of_the_docs_parse_and_validate() {
        #[derive(Deserialize)]
        struct File {
            coordinator: Coordinator,
        }
        #[derive(Deserialize)]
        struct Coordinator {
            zenoh: ZenohConfig,
        }
        let docs = include_str!("../docs.md");
        let examples: Vec<&str> = docs
            .split("```toml\n")
            .skip(1)
            .filter_map(|block| block.split("```").next())
            .collect();
        assert_eq!(examples.len(), 3);
        for example in examples {
            let file: File = toml::from_str(example).unwrap_or_else(|error| panic!("{error}\n{example}"));
            file.coordinator.zenoh.validate().unwrap();
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        let tls_without_table = ZenohConfig::new().listen(["tls/0.0.0.0:7447"]).validate().unwrap_err();
        assert_eq!(tls_without_table.kind(), ErrorKind::Config);
        assert!(tls_without_table.message().contains("listen[0]"), "{tls_without_table}");
        let isolated = ZenohConfig::new()
            .listen(Vec::<String>::new())
            .multicast_scouting(false)
            .validate()
            .unwrap_err();
        assert!(isolated.message().contains("connect"), "{isolated}");
        let bad = ZenohConfig::new().connect(["127.0.0.1:7447"]).validate().unwrap_err();
        assert!(
            bad.message().contains("connect[0]") && bad.message().contains("tcp/"),
            "{bad}"
        );
    }
}
