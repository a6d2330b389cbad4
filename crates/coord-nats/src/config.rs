//! [`NatsConfig`]: where the servers are and how to authenticate, as a serde
//! table (`[coordinator.nats]`), a chaining builder, or URI parts.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use coord_core::{Error, ErrorKind, Result, params};

/// The operation named in configuration errors.
const OPERATION: &str = "nats config";
use serde::Deserialize;

/// The `[coordinator.nats]` table.
///
/// Keys are kebab-case and durations strings (`"250ms"`); an unknown key is
/// an error. `Debug` hides the password, the token and the NKey seed.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct NatsConfig {
    /// `servers`: server URLs (`nats://host:port`, `tls://host:port`); the
    /// client fails over between them. Default `["nats://127.0.0.1:4222"]`.
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// `user`: user name, with `password`.
    #[serde(default)]
    pub user: Option<String>,
    /// `password`: the user's password.
    #[serde(default)]
    pub password: Option<String>,
    /// `token`: an authentication token.
    #[serde(default)]
    pub token: Option<String>,
    /// `credentials-file`: a `.creds` file holding a user JWT and its NKey seed.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// `nkey-seed`: an NKey seed (`SU…`), for NKey authentication.
    #[serde(default)]
    pub nkey_seed: Option<String>,
    /// `[coordinator.nats.tls]`: TLS settings.
    #[serde(default)]
    pub tls: Option<NatsTls>,
    /// `client-name`: the connection's name, shown by the server's monitoring.
    #[serde(default)]
    pub client_name: Option<String>,
    /// `connect-timeout`: bound of one connection attempt (default 5 s).
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `ping-interval`: how often the client pings the server to detect a
    /// dead connection (default 5 s; two unanswered pings drop it).
    #[serde(default = "default_ping_interval", with = "humantime_serde")]
    pub ping_interval: Duration,
    /// `reconnect-max-delay`: bound of the exponential backoff between
    /// reconnect attempts (default 2 s; starts at 10 ms, with jitter).
    #[serde(default = "default_reconnect_max_delay", with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
    /// `publish-timeout`: how long a publish may wait for room in the
    /// client's outgoing buffer before failing as temporary (default 2 s).
    #[serde(default = "default_publish_timeout", with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// `subscription-capacity`: messages a subscription buffers before the
    /// client drops and reports a slow consumer (default 65,536).
    #[serde(default = "default_subscription_capacity")]
    pub subscription_capacity: usize,
    /// `max-payload`: a lower frame size bound than the server's
    /// `max_payload` (which applies anyway).
    #[serde(default)]
    pub max_payload: Option<usize>,
}

/// The `[coordinator.nats.tls]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct NatsTls {
    /// `ca`: PEM file of the CA certificates that sign the server's certificate.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// `cert`: PEM client certificate, for mutual TLS (with `key`).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// `key`: PEM private key of `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// `required`: refuse a server that does not offer TLS (default true).
    #[serde(default = "yes")]
    pub required: bool,
    /// `handshake-first`: start TLS before the server's INFO (servers with
    /// `handshake_first`).
    #[serde(default)]
    pub handshake_first: bool,
}

fn default_servers() -> Vec<String> {
    vec!["nats://127.0.0.1:4222".to_owned()]
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_ping_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_reconnect_max_delay() -> Duration {
    Duration::from_secs(2)
}
fn default_publish_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_subscription_capacity() -> usize {
    65_536
}
fn yes() -> bool {
    true
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig::new(default_servers())
    }
}

impl NatsConfig {
    /// Settings for these servers, with every default.
    pub fn new<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Self {
        NatsConfig {
            servers: servers.into_iter().map(Into::into).collect(),
            user: None,
            password: None,
            token: None,
            credentials_file: None,
            nkey_seed: None,
            tls: None,
            client_name: None,
            connect_timeout: default_connect_timeout(),
            ping_interval: default_ping_interval(),
            reconnect_max_delay: default_reconnect_max_delay(),
            publish_timeout: default_publish_timeout(),
            subscription_capacity: default_subscription_capacity(),
            max_payload: None,
        }
    }

    /// Authenticates with a user name and password.
    pub fn user_and_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self.password = Some(password.into());
        self
    }

    /// Authenticates with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Authenticates with a `.creds` file (user JWT and NKey seed).
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// Uses TLS.
    pub fn tls(mut self, tls: NatsTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The settings of a `nats://` URI, from its parts as the facade parses
    /// them: `target` is `[user:password@ | token@]host:port[,host:port…]`,
    /// `params` the backend's query parameters, already percent-decoded:
    /// `token`, `credentials-file`, `nkey-seed`, `tls-ca`, `tls-cert`,
    /// `tls-key`, `tls-required` (`true`/`false`), `client-name`,
    /// `connect-timeout`, `ping-interval`, `reconnect-max-delay`,
    /// `publish-timeout` (durations like `250ms`), `subscription-capacity`,
    /// `max-payload`.
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
                "nats URI has no server: write nats://host:port, e.g. nats://127.0.0.1:4222".to_owned(),
            ));
        }
        let mut cfg = NatsConfig::new(hosts.split(',').map(|host| format!("nats://{host}")));
        match userinfo.map(|u| u.split_once(':').map_or((u, None), |(user, pw)| (user, Some(pw)))) {
            Some((user, Some(password))) => cfg = cfg.user_and_password(user, password),
            Some((token, None)) => cfg = cfg.token(token),
            None => {}
        }
        for (key, value) in params {
            cfg.set_param(key, value)?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        let tls = || NatsTls {
            required: true,
            ..NatsTls::default()
        };
        match key {
            "token" => self.token = Some(value.to_owned()),
            "credentials-file" => self.credentials_file = Some(value.into()),
            "nkey-seed" => self.nkey_seed = Some(value.to_owned()),
            "client-name" => self.client_name = Some(value.to_owned()),
            "tls-ca" => self.tls.get_or_insert_with(tls).ca = Some(value.into()),
            "tls-cert" => self.tls.get_or_insert_with(tls).cert = Some(value.into()),
            "tls-key" => self.tls.get_or_insert_with(tls).key = Some(value.into()),
            "tls-required" => self.tls.get_or_insert_with(tls).required = params::flag(OPERATION, key, value)?,
            "connect-timeout" => self.connect_timeout = params::duration(OPERATION, key, value)?,
            "ping-interval" => self.ping_interval = params::duration(OPERATION, key, value)?,
            "reconnect-max-delay" => self.reconnect_max_delay = params::duration(OPERATION, key, value)?,
            "publish-timeout" => self.publish_timeout = params::duration(OPERATION, key, value)?,
            "subscription-capacity" => self.subscription_capacity = params::number(OPERATION, key, value)?,
            "max-payload" => self.max_payload = Some(params::number(OPERATION, key, value)?),
            other => {
                return Err(config(format!(
                    "unknown URI parameter `{other}` for the nats backend: use token, credentials-file, nkey-seed, \
                     tls-ca, tls-cert, tls-key, tls-required, client-name, connect-timeout, ping-interval, \
                     reconnect-max-delay, publish-timeout, subscription-capacity or max-payload"
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
                "`nats.servers` is empty: list at least one server, e.g. [\"nats://127.0.0.1:4222\"]".to_owned(),
            ));
        }
        for server in &self.servers {
            if !(server.starts_with("nats://") || server.starts_with("tls://")) || server.contains(' ') {
                return Err(config(format!(
                    "`nats.servers` entry {server:?} is not a server URL: write nats://host:port or tls://host:port"
                )));
            }
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(config(
                "`nats.user` and `nats.password` go together: set both or neither".to_owned(),
            ));
        }
        let methods = [
            self.user.is_some(),
            self.token.is_some(),
            self.credentials_file.is_some(),
            self.nkey_seed.is_some(),
        ];
        if methods.iter().filter(|set| **set).count() > 1 {
            return Err(config(
                "more than one NATS authentication method is set: keep one of user/password, token, \
                 credentials-file and nkey-seed"
                    .to_owned(),
            ));
        }
        if let Some(tls) = &self.tls
            && tls.cert.is_some() != tls.key.is_some()
        {
            return Err(config(
                "`nats.tls.cert` and `nats.tls.key` go together: set both for mutual TLS, or neither".to_owned(),
            ));
        }
        for (key, value) in [
            ("connect-timeout", self.connect_timeout),
            ("ping-interval", self.ping_interval),
            ("publish-timeout", self.publish_timeout),
        ] {
            if value.is_zero() {
                return Err(config(format!(
                    "`nats.{key}` is 0: give a positive duration such as \"2s\""
                )));
            }
        }
        if self.subscription_capacity == 0 || self.max_payload == Some(0) {
            return Err(config(
                "`nats.subscription-capacity` and `nats.max-payload` must be positive".to_owned(),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |set: bool| if set { Some("<redacted>") } else { None };
        f.debug_struct("NatsConfig")
            .field("servers", &self.servers)
            .field("user", &self.user)
            .field("password", &hidden(self.password.is_some()))
            .field("token", &hidden(self.token.is_some()))
            .field("credentials_file", &self.credentials_file)
            .field("nkey_seed", &hidden(self.nkey_seed.is_some()))
            .field("tls", &self.tls)
            .field("client_name", &self.client_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .field("publish_timeout", &self.publish_timeout)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("max_payload", &self.max_payload)
            .finish()
    }
}

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
    fn uri_parts_give_servers_credentials_and_options() {
        let cfg = NatsConfig::from_uri_parts(
            "mx:s3cret@127.0.0.1:4222,127.0.0.2:4222",
            &params(&[("tls-ca", "/etc/ca.pem"), ("ping-interval", "2s")]),
        )
        .unwrap();
        assert_eq!(cfg.servers, ["nats://127.0.0.1:4222", "nats://127.0.0.2:4222"]);
        assert_eq!(cfg.user.as_deref(), Some("mx"));
        assert_eq!(cfg.password.as_deref(), Some("s3cret"));
        assert_eq!(cfg.ping_interval, Duration::from_secs(2));
        let tls = cfg.tls.as_ref().unwrap();
        assert!(tls.required);
        assert_eq!(tls.ca.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        let token = NatsConfig::from_uri_parts("t0ken@h:4222", &[]).unwrap();
        assert_eq!(token.token.as_deref(), Some("t0ken"));
    }

    #[test]
    fn debug_hides_every_secret() {
        let cfg = NatsConfig::new(["nats://h:4222"]).user_and_password("mx", "pw-123456");
        let mut with_seed = cfg.clone();
        with_seed.password = None;
        with_seed.user = None;
        with_seed.nkey_seed = Some("SUSECRETSEED".into());
        let shown = format!("{cfg:?} {:?} {:?}", NatsConfig::default().token("tok-9876"), with_seed);
        for secret in ["pw-123456", "tok-9876", "SUSECRETSEED"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn bad_settings_name_the_key_and_the_fix() {
        for (target, list, expected) in [
            ("", vec![], "has no server"),
            ("h:1", vec![("tls-required", "maybe")], "write true or false"),
            ("h:1", vec![("publish-timeout", "soon")], "write a duration"),
            ("h:1", vec![("colour", "blue")], "unknown URI parameter `colour`"),
            (
                "u:p@h:1",
                vec![("token", "t")],
                "more than one NATS authentication method",
            ),
            ("h:1", vec![("tls-cert", "/c.pem")], "go together"),
            ("h:1", vec![("publish-timeout", "0s")], "`nats.publish-timeout` is 0"),
        ] {
            let err = NatsConfig::from_uri_parts(target, &params(&list)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{target} {list:?}");
            assert!(err.message().contains(expected), "{target} {list:?}: {err}");
        }
        let table: NatsConfig = toml::from_str("servers = [\"redis://h\"]").unwrap();
        assert!(table.validate().unwrap_err().message().contains("is not a server URL"));
    }
}
