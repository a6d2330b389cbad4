//! The URI shorthand: `zenoh://[host:port[,host:port…]][?key=value&…]`.
//!
//! The target lists the peers to connect to (`tcp/`, or `tls/` once
//! `tls-ca` is given); the parameters set the other keys of
//! [`ZenohConfig`], spelled as in TOML (see the crate docs for the table).

use std::path::PathBuf;
use std::time::Duration;

use coord_core::{Result, params};

use crate::config::{OPERATION, TlsConfig, UserPassword, ZenohConfig, config_error};

/// The URI scheme of this backend.
pub const SCHEME: &str = "zenoh";

/// Every parameter the URI form accepts.
const KEYS: &[&str] = &[
    "listen",
    "scouting",
    "gossip",
    "require-connect",
    "connect-timeout",
    "retry-initial",
    "retry-max",
    "lease",
    "liveliness",
    "publish-timeout",
    "max-payload",
    "subscription-capacity",
    "tls-ca",
    "tls-cert",
    "tls-key",
    "mtls",
    "tls-verify-name",
    "user",
    "password",
    "credentials-file",
];

impl ZenohConfig {
    /// Parses a whole URI, e.g.
    /// `zenoh://10.0.0.2:7447,10.0.0.3:7447?listen=tcp/0.0.0.0:7447&scouting=off`.
    /// Parameter values may be percent-encoded.
    pub fn from_uri(uri: &str) -> Result<ZenohConfig> {
        let Some(rest) = uri.strip_prefix("zenoh://") else {
            return Err(config_error(format!(
                "\"{uri}\" is not a zenoh URI: write zenoh://[host:port,…][?key=value&…]"
            )));
        };
        let (target, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut params = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            params.push((decode(key)?, decode(value)?));
        }
        ZenohConfig::from_uri_parts(target, &params)
    }

    /// Builds a configuration from the parts of a URI, as the facade splits
    /// it: `target` is what follows `zenoh://` up to `?` (comma-separated
    /// `host:port` peers to connect to, possibly empty), `params` the decoded
    /// query pairs in order. A repeated `listen` adds endpoints.
    ///
    /// # Behavior
    /// - Unknown keys, bad values and inconsistent settings fail with kind
    ///   `Config`; the message names the key and the fix.
    pub fn from_uri_parts(target: &str, params: &[(String, String)]) -> Result<ZenohConfig> {
        let mut config = ZenohConfig::default();
        let mut listen: Option<Vec<String>> = None;
        let mut tls = TlsParts::default();
        let mut auth = AuthParts::default();
        for (key, value) in params {
            let value = value.as_str();
            match key.as_str() {
                "listen" => {
                    let list = listen.get_or_insert_with(Vec::new);
                    if value != "none" {
                        list.extend(value.split(',').filter(|e| !e.is_empty()).map(str::to_owned));
                    }
                }
                "scouting" => config.multicast_scouting = switch(key, value)?,
                "gossip" => config.gossip = switch(key, value)?,
                "require-connect" => config.require_connect = switch(key, value)?,
                "connect-timeout" => config.connect_timeout = duration(key, value)?,
                "retry-initial" => config.retry_initial = duration(key, value)?,
                "retry-max" => config.retry_max = duration(key, value)?,
                "lease" => config.lease = duration(key, value)?,
                "liveliness" => config.liveliness = switch(key, value)?,
                "publish-timeout" => config.publish_timeout = duration(key, value)?,
                "max-payload" => config.max_payload = number(key, value)?,
                "subscription-capacity" => config.subscription_capacity = number(key, value)?,
                "tls-ca" => tls.ca = Some(PathBuf::from(value)),
                "tls-cert" => tls.cert = Some(PathBuf::from(value)),
                "tls-key" => tls.key = Some(PathBuf::from(value)),
                "mtls" => tls.mutual = switch(key, value)?,
                "tls-verify-name" => tls.verify_name = Some(switch(key, value)?),
                "user" => auth.user = Some(value.to_owned()),
                "password" => auth.password = Some(value.to_owned()),
                "credentials-file" => auth.file = Some(PathBuf::from(value)),
                other => {
                    return Err(config_error(format!(
                        "unknown zenoh URI parameter `{other}`: use one of {}",
                        KEYS.join(", ")
                    )));
                }
            }
        }
        if let Some(listen) = listen {
            config.listen = listen;
        }
        config.tls = tls.build()?;
        config.auth = auth.build()?;
        let protocol = if config.tls.is_some() { "tls" } else { "tcp" };
        for peer in target.split(',').map(str::trim).filter(|peer| !peer.is_empty()) {
            if peer.contains('/') {
                return Err(config_error(format!(
                    "zenoh URI target `{peer}`: write peers as host:port (the protocol is tcp, or tls with `tls-ca`)"
                )));
            }
            config.connect.push(format!("{protocol}/{peer}"));
        }
        config.validate()?;
        Ok(config)
    }
}

#[derive(Default)]
struct TlsParts {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    mutual: bool,
    verify_name: Option<bool>,
}

impl TlsParts {
    fn build(self) -> Result<Option<TlsConfig>> {
        let Some(ca) = self.ca else {
            if self.cert.is_some() || self.key.is_some() || self.mutual || self.verify_name.is_some() {
                return Err(config_error(
                    "zenoh URI: `tls-cert`, `tls-key`, `mtls` and `tls-verify-name` need `tls-ca` (the CA's PEM file)",
                ));
            }
            return Ok(None);
        };
        Ok(Some(TlsConfig {
            ca,
            cert: self.cert,
            key: self.key,
            mutual: self.mutual,
            verify_name: self.verify_name.unwrap_or(true),
        }))
    }
}

#[derive(Default)]
struct AuthParts {
    user: Option<String>,
    password: Option<String>,
    file: Option<PathBuf>,
}

impl AuthParts {
    fn build(self) -> Result<Option<UserPassword>> {
        match (self.user, self.password, self.file) {
            (None, None, None) => Ok(None),
            (Some(user), Some(password), Some(file)) => Ok(Some(UserPassword::new(user, password, file))),
            _ => Err(config_error(
                "zenoh URI: `user`, `password` and `credentials-file` go together: set all three",
            )),
        }
    }
}

fn switch(key: &str, value: &str) -> Result<bool> {
    match value {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(config_error(format!("`{key}={value}`: use on or off"))),
    }
}

fn duration(key: &str, value: &str) -> Result<Duration> {
    params::duration(OPERATION, key, value)
}

fn number(key: &str, value: &str) -> Result<usize> {
    params::number(OPERATION, key, value)
}

/// Decodes `%XX` escapes (and `+` as a space) in a URI component.
fn decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(byte) = hex else {
                    return Err(config_error(format!("zenoh URI: bad percent escape in `{text}`")));
                };
                out.push(byte);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| config_error(format!("zenoh URI: `{text}` is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use coord_core::ErrorKind;

    use super::*;

    #[test]
    fn target_and_params_make_a_config() {
        let config =
            ZenohConfig::from_uri("zenoh://127.0.0.1:7447,127.0.0.1:7448?listen=tcp/127.0.0.1:0&scouting=off&lease=1s")
                .unwrap();
        assert_eq!(config.connect, ["tcp/127.0.0.1:7447", "tcp/127.0.0.1:7448"]);
        assert_eq!(config.listen, ["tcp/127.0.0.1:0"]);
        assert!(!config.multicast_scouting);
        assert_eq!(config.lease, Duration::from_secs(1));
        let scouted = ZenohConfig::from_uri("zenoh://").unwrap();
        assert!(scouted.connect.is_empty() && scouted.multicast_scouting);
    }

    #[test]
    fn tls_switches_the_protocol_and_auth_needs_all_parts() {
        let params = [
            ("tls-ca".to_owned(), "/etc/coord/ca.pem".to_owned()),
            ("tls-cert".to_owned(), "/etc/coord/node.pem".to_owned()),
            ("tls-key".to_owned(), "/etc/coord/node.key".to_owned()),
            ("listen".to_owned(), "tls/0.0.0.0:7447".to_owned()),
        ];
        let config = ZenohConfig::from_uri_parts("10.0.0.2:7447", &params).unwrap();
        assert_eq!(config.connect, ["tls/10.0.0.2:7447"]);
        let partial = ZenohConfig::from_uri_parts("", &[("user".to_owned(), "coord".to_owned())]).unwrap_err();
        assert!(partial.message().contains("credentials-file"), "{partial}");
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let unknown = ZenohConfig::from_uri("zenoh://?scoutin=off").unwrap_err();
        assert_eq!(unknown.kind(), ErrorKind::Config);
        assert!(
            unknown.message().contains("scoutin") && unknown.message().contains("scouting"),
            "{unknown}"
        );
        let lease = ZenohConfig::from_uri("zenoh://?lease=soon").unwrap_err();
        assert_eq!(
            lease.message(),
            "URI parameter `lease` is \"soon\": write a duration such as 250ms or 2s"
        );
        assert_eq!(lease.operation(), "zenoh config");
        let scheme = ZenohConfig::from_uri("nats://x").unwrap_err();
        assert!(scheme.message().contains("zenoh://"), "{scheme}");
        let slash = ZenohConfig::from_uri("zenoh://tcp/1.2.3.4:7447").unwrap_err();
        assert!(slash.message().contains("host:port"), "{slash}");
        let password = ZenohConfig::from_uri("zenoh://?password=p%40ss&user=u&credentials-file=/f").unwrap();
        assert_eq!(password.auth.unwrap().password, "p@ss");
    }
}
