//! [`RedisConfig`]: the topology (standalone, Cluster, Sentinel), where its
//! servers are and how to authenticate, as a serde table
//! (`[coordinator.redis]`), a builder, or URI parts.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use coord_core::{Error, ErrorKind, Result, params};

/// The operation named in configuration errors.
const OPERATION: &str = "redis config";
use serde::Deserialize;

/// How the Redis servers are deployed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// One server (`servers` holds it): `PUBLISH` / `SUBSCRIBE`.
    #[default]
    Standalone,
    /// Redis Cluster (`servers` are seed nodes): sharded pub/sub,
    /// `SPUBLISH` / `SSUBSCRIBE`, so a channel lives on one shard only.
    Cluster,
    /// A master watched by Sentinel (`servers` are the sentinels,
    /// `master-name` names the master): the master is asked of the
    /// sentinels on every connect, so a failover is followed.
    Sentinel,
}

/// The `[coordinator.redis]` table.
///
/// Keys are kebab-case and durations strings (`"250ms"`); an unknown key is
/// an error. `Debug` hides the passwords.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `topology`: `standalone` (default), `cluster` or `sentinel`.
    #[serde(default)]
    pub topology: Topology,
    /// `servers`: `host:port` of the server, the cluster's seed nodes or the
    /// sentinels. Default `["127.0.0.1:6379"]`.
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// `master-name`: the master's name in Sentinel (topology `sentinel`).
    #[serde(default)]
    pub master_name: Option<String>,
    /// `user`: ACL user name (default: the `default` user).
    #[serde(default)]
    pub user: Option<String>,
    /// `password`: the user's password.
    #[serde(default)]
    pub password: Option<String>,
    /// `sentinel-password`: the sentinels' own password, when they have one.
    #[serde(default)]
    pub sentinel_password: Option<String>,
    /// `db`: the database number (pub/sub ignores it; standalone only).
    #[serde(default)]
    pub db: i64,
    /// `[coordinator.redis.tls]`: TLS (`rediss://`).
    #[serde(default)]
    pub tls: Option<RedisTls>,
    /// `connect-timeout`: bound of one connection attempt (default 5 s).
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `command-timeout`: bound of one command such as a publish (default 2 s).
    #[serde(default = "default_command_timeout", with = "humantime_serde")]
    pub command_timeout: Duration,
    /// `reconnect-max-delay`: bound of the exponential backoff between
    /// reconnect attempts (default 2 s; starts at 10 ms, with jitter).
    #[serde(default = "default_reconnect_max_delay", with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
    /// `subscription-capacity`: frames a subscription buffers for the
    /// engine before it drops and reports `Lagged` (default 65,536).
    #[serde(default = "default_subscription_capacity")]
    pub subscription_capacity: usize,
    /// `max-payload`: the largest frame (default 1 MiB; Redis itself takes
    /// up to 512 MiB, but large frames stall everyone's pub/sub).
    #[serde(default = "default_max_payload")]
    pub max_payload: usize,
    /// `[coordinator.redis.address-map]`: `"host:port" = "host:port"` pairs
    /// that replace an address the servers announce (cluster nodes, the
    /// master a sentinel names) by the one to connect to, for servers behind
    /// NAT, port forwarding or containers that announce unreachable addresses.
    #[serde(default)]
    pub address_map: BTreeMap<String, String>,
}

/// The `[coordinator.redis.tls]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisTls {
    /// `ca`: PEM file of the CA that signs the servers' certificates
    /// (default: the system's roots).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// `cert`: PEM client certificate, for mutual TLS (with `key`).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// `key`: PEM private key of `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

fn default_servers() -> Vec<String> {
    vec!["127.0.0.1:6379".to_owned()]
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_reconnect_max_delay() -> Duration {
    Duration::from_secs(2)
}
fn default_subscription_capacity() -> usize {
    65_536
}
fn default_max_payload() -> usize {
    1024 * 1024
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig::standalone("127.0.0.1:6379")
    }
}

impl RedisConfig {
    fn with(topology: Topology, servers: Vec<String>) -> Self {
        RedisConfig {
            topology,
            servers,
            master_name: None,
            user: None,
            password: None,
            sentinel_password: None,
            db: 0,
            tls: None,
            connect_timeout: default_connect_timeout(),
            command_timeout: default_command_timeout(),
            reconnect_max_delay: default_reconnect_max_delay(),
            subscription_capacity: default_subscription_capacity(),
            max_payload: default_max_payload(),
            address_map: BTreeMap::new(),
        }
    }

    /// Connects to `to` wherever the servers announce `announced`.
    pub fn map_address(mut self, announced: impl Into<String>, to: impl Into<String>) -> Self {
        self.address_map.insert(announced.into(), to.into());
        self
    }

    /// Where to connect for an address the servers announce.
    pub(crate) fn reachable<'a>(&'a self, announced: &'a str) -> &'a str {
        self.address_map.get(announced).map_or(announced, String::as_str)
    }

    /// One server at `host:port`.
    pub fn standalone(server: impl Into<String>) -> Self {
        RedisConfig::with(Topology::Standalone, vec![server.into()])
    }

    /// A Redis Cluster reached through these seed nodes (`host:port`).
    pub fn cluster<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> Self {
        RedisConfig::with(Topology::Cluster, seeds.into_iter().map(Into::into).collect())
    }

    /// The master `master_name` watched by these sentinels (`host:port`).
    pub fn sentinel<S: Into<String>>(sentinels: impl IntoIterator<Item = S>, master_name: impl Into<String>) -> Self {
        let mut config = RedisConfig::with(Topology::Sentinel, sentinels.into_iter().map(Into::into).collect());
        config.master_name = Some(master_name.into());
        config
    }

    /// Authenticates as ACL `user` with `password`.
    pub fn user_and_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self.password = Some(password.into());
        self
    }

    /// Authenticates the `default` user with `password` (`requirepass`).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Uses TLS.
    pub fn tls(mut self, tls: RedisTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The settings of a URI, from its parts as the facade parses them.
    ///
    /// - `scheme` is `redis` or `rediss` (TLS) for one server,
    ///   `redis+cluster` / `rediss+cluster` for a Cluster, and
    ///   `redis+sentinel` / `rediss+sentinel` for Sentinel;
    /// - `target` is `[user:password@]host:port[,host:port…][/path]`, where
    ///   the path is the database number (standalone) or the master's name
    ///   (Sentinel), e.g. `redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster`;
    /// - `params`: `user`, `password`, `sentinel-password`, `tls-ca`,
    ///   `tls-cert`, `tls-key`, `connect-timeout`, `command-timeout`,
    ///   `reconnect-max-delay` (durations like `250ms`),
    ///   `subscription-capacity`, `max-payload`.
    ///
    /// # Errors
    /// `Config`, naming the part or parameter and what to write instead.
    pub fn from_uri_parts(scheme: &str, target: &str, params: &[(String, String)]) -> Result<Self> {
        let (topology, tls) = match scheme {
            "redis" => (Topology::Standalone, false),
            "rediss" => (Topology::Standalone, true),
            "redis+cluster" => (Topology::Cluster, false),
            "rediss+cluster" => (Topology::Cluster, true),
            "redis+sentinel" => (Topology::Sentinel, false),
            "rediss+sentinel" => (Topology::Sentinel, true),
            other => {
                return Err(config(format!(
                    "`{other}` is not a Redis scheme: use redis, rediss, redis+cluster or redis+sentinel"
                )));
            }
        };
        let (userinfo, rest) = match target.rsplit_once('@') {
            Some((userinfo, rest)) => (Some(userinfo), rest),
            None => (None, target),
        };
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        if hosts.is_empty() {
            return Err(config(format!(
                "{scheme} URI has no server: write {scheme}://host:port, e.g. {scheme}://127.0.0.1:6379"
            )));
        }
        let mut cfg = RedisConfig::with(topology, hosts.split(',').map(str::to_owned).collect());
        match userinfo.map(|u| u.split_once(':').map_or((None, u), |(user, pw)| (Some(user), pw))) {
            Some((Some(user), password)) if !user.is_empty() => cfg = cfg.user_and_password(user, password),
            Some((_, password)) => cfg = cfg.password(password),
            None => {}
        }
        match (topology, path) {
            (_, "") => {}
            (Topology::Standalone, db) => {
                cfg.db = db
                    .parse()
                    .map_err(|_| config(format!("the URI path {db:?} is not a database number: write e.g. /0")))?;
            }
            (Topology::Sentinel, name) => cfg.master_name = Some(name.to_owned()),
            (Topology::Cluster, other) => {
                return Err(config(format!(
                    "a Redis Cluster URI takes no path, got /{other}: remove it (a cluster has one database)"
                )));
            }
        }
        if tls {
            cfg.tls = Some(RedisTls::default());
        }
        for (key, value) in params {
            cfg.set_param(key, value)?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "user" => self.user = Some(value.to_owned()),
            "password" => self.password = Some(value.to_owned()),
            "sentinel-password" => self.sentinel_password = Some(value.to_owned()),
            "tls-ca" => self.tls.get_or_insert_with(RedisTls::default).ca = Some(value.into()),
            "tls-cert" => self.tls.get_or_insert_with(RedisTls::default).cert = Some(value.into()),
            "tls-key" => self.tls.get_or_insert_with(RedisTls::default).key = Some(value.into()),
            "connect-timeout" => self.connect_timeout = params::duration(OPERATION, key, value)?,
            "command-timeout" => self.command_timeout = params::duration(OPERATION, key, value)?,
            "reconnect-max-delay" => self.reconnect_max_delay = params::duration(OPERATION, key, value)?,
            "subscription-capacity" => self.subscription_capacity = params::number(OPERATION, key, value)?,
            "max-payload" => self.max_payload = params::number(OPERATION, key, value)?,
            other => {
                return Err(config(format!(
                    "unknown URI parameter `{other}` for the redis backend: use user, password, \
                     sentinel-password, tls-ca, tls-cert, tls-key, connect-timeout, command-timeout, \
                     reconnect-max-delay, subscription-capacity or max-payload"
                )));
            }
        }
        Ok(())
    }

    /// Checks the settings without connecting.
    ///
    /// # Errors
    /// `Config`, naming the key and the fix.
    pub fn validate(&self) -> Result<()> {
        if self.servers.is_empty() {
            return Err(config(
                "`redis.servers` is empty: list at least one host:port, e.g. [\"127.0.0.1:6379\"]".to_owned(),
            ));
        }
        for server in &self.servers {
            if !params::is_host_port(server) {
                return Err(config(format!(
                    "`redis.servers` entry {server:?} is not host:port: write e.g. \"127.0.0.1:6379\""
                )));
            }
        }
        if self.topology == Topology::Standalone && self.servers.len() > 1 {
            return Err(config(format!(
                "`redis.servers` lists {} servers for topology standalone: keep one, or set topology = \
                 \"cluster\" or \"sentinel\"",
                self.servers.len()
            )));
        }
        if self.topology == Topology::Sentinel && self.master_name.as_deref().is_none_or(str::is_empty) {
            return Err(config(
                "topology sentinel needs `redis.master-name`: the name the sentinels know the master by".to_owned(),
            ));
        }
        if self.user.is_some() && self.password.is_none() {
            return Err(config(
                "`redis.user` is set without `redis.password`: set both, or neither".to_owned(),
            ));
        }
        if let Some(tls) = &self.tls
            && tls.cert.is_some() != tls.key.is_some()
        {
            return Err(config(
                "`redis.tls.cert` and `redis.tls.key` go together: set both for mutual TLS, or neither".to_owned(),
            ));
        }
        for (key, value) in [
            ("connect-timeout", self.connect_timeout),
            ("command-timeout", self.command_timeout),
        ] {
            if value.is_zero() {
                return Err(config(format!(
                    "`redis.{key}` is 0: give a positive duration such as \"2s\""
                )));
            }
        }
        for (announced, to) in &self.address_map {
            for address in [announced, to] {
                if !params::is_host_port(address) {
                    return Err(config(format!(
                        "`redis.address-map` entry {announced:?} = {to:?}: {address:?} is not host:port"
                    )));
                }
            }
        }
        if self.subscription_capacity == 0 || self.max_payload == 0 {
            return Err(config(
                "`redis.subscription-capacity` and `redis.max-payload` must be positive".to_owned(),
            ));
        }
        Ok(())
    }

    /// The servers, comma-separated, for messages.
    pub(crate) fn server_list(&self) -> String {
        self.servers.join(",")
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |set: bool| if set { Some("<redacted>") } else { None };
        f.debug_struct("RedisConfig")
            .field("topology", &self.topology)
            .field("servers", &self.servers)
            .field("master_name", &self.master_name)
            .field("user", &self.user)
            .field("password", &hidden(self.password.is_some()))
            .field("sentinel_password", &hidden(self.sentinel_password.is_some()))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("max_payload", &self.max_payload)
            .field("address_map", &self.address_map)
            .finish()
    }
}

pub(crate) fn config(message: String) -> Error {
    Error::new(ErrorKind::Config, OPERATION, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn uri_parts_give_topology_servers_and_credentials() {
        let cfg = RedisConfig::from_uri_parts("rediss", "coord:s3cret@10.0.0.1:6380/2", &[]).unwrap();
        assert_eq!(cfg.topology, Topology::Standalone);
        assert_eq!(cfg.servers, ["10.0.0.1:6380"]);
        assert_eq!(
            (cfg.user.as_deref(), cfg.password.as_deref()),
            (Some("coord"), Some("s3cret"))
        );
        assert_eq!(cfg.db, 2);
        assert!(cfg.tls.is_some());
        let cfg = RedisConfig::from_uri_parts("redis", ":pw@h:1", &[]).unwrap();
        assert_eq!((cfg.user.as_deref(), cfg.password.as_deref()), (None, Some("pw")));
        let cfg = RedisConfig::from_uri_parts(
            "redis+cluster",
            "h1:7000,h2:7001",
            &params(&[("command-timeout", "1s")]),
        )
        .unwrap();
        assert_eq!(cfg.topology, Topology::Cluster);
        assert_eq!(cfg.servers.len(), 2);
        assert_eq!(cfg.command_timeout, Duration::from_secs(1));
        let cfg = RedisConfig::from_uri_parts("redis+sentinel", "s1:26379,s2:26379/mymaster", &[]).unwrap();
        assert_eq!(cfg.topology, Topology::Sentinel);
        assert_eq!(cfg.master_name.as_deref(), Some("mymaster"));
    }

    #[test]
    fn debug_hides_passwords() {
        let mut cfg = RedisConfig::standalone("h:1").user_and_password("coord", "pw-123456");
        cfg.sentinel_password = Some("sentinel-pw-42".into());
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("pw-123456") && !shown.contains("sentinel-pw-42"),
            "{shown}"
        );
    }

    #[test]
    fn bad_settings_name_the_key_and_the_fix() {
        for (scheme, target, list, expected) in [
            ("redis", "", vec![], "has no server"),
            ("redis", "h:1/x", vec![], "not a database number"),
            (
                "redis",
                "h:1",
                vec![("colour", "blue")],
                "unknown URI parameter `colour`",
            ),
            ("redis", "h:1,h:2", vec![], "keep one"),
            ("redis+sentinel", "h:1", vec![], "needs `redis.master-name`"),
            ("redis+cluster", "h:1/0", vec![], "takes no path"),
            ("redis", "h", vec![], "is not host:port"),
            ("redis", "h:1", vec![("tls-cert", "/c.pem")], "go together"),
            ("redis", "h:1", vec![("command-timeout", "0s")], "is 0"),
            ("redis", "h:1", vec![("connect-timeout", "soon")], "write a duration"),
        ] {
            let err = RedisConfig::from_uri_parts(scheme, target, &params(&list)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{scheme}://{target} {list:?}");
            assert!(err.message().contains(expected), "{scheme}://{target} {list:?}: {err}");
        }
        let table: RedisConfig = toml::from_str("topology = \"sentinel\"\nservers = [\"h:26379\"]").unwrap();
        assert!(table.validate().unwrap_err().message().contains("master-name"));
        let table: RedisConfig = toml::from_str("[address-map]\n\"10.0.0.1:6379\" = \"nowhere\"").unwrap();
        assert!(table.validate().unwrap_err().message().contains("is not host:port"));
    }

    #[test]
    fn announced_addresses_are_mapped() {
        let cfg = RedisConfig::standalone("h:1").map_address("10.1.0.7:6379", "127.0.0.1:16379");
        assert_eq!(cfg.reachable("10.1.0.7:6379"), "127.0.0.1:16379");
        assert_eq!(cfg.reachable("10.1.0.8:6379"), "10.1.0.8:6379");
    }
}
