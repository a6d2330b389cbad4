//! Turns a [`ZenohConfig`] into the configuration of a Zenoh peer session.

use std::path::Path;

use coord_core::Result;
use serde::Serialize;

use crate::cause::cause;
use crate::config::{ZenohConfig, config_error};

impl ZenohConfig {
    /// The Zenoh configuration this node's session opens with: the raw
    /// `zenoh-json5` base (if any) with coord's settings applied on top.
    pub fn to_zenoh(&self) -> Result<zenoh::Config> {
        self.validate()?;
        let mut native = match &self.zenoh_json5 {
            Some(raw) => zenoh::Config::from_json5(raw).map_err(|error| {
                config_error(format!(
                    "`zenoh-json5` is not a valid Zenoh configuration: {}; check it against Zenoh's \
                     DEFAULT_CONFIG.json5",
                    cause(&error)
                ))
            })?,
            None => zenoh::Config::default(),
        };
        let mut set = |key: &str, value: String| -> Result<()> {
            native.insert_json5(key, &value).map_err(|error| {
                config_error(format!(
                    "cannot set Zenoh key `{key}`: {}; remove it from `zenoh-json5`",
                    cause(&error)
                ))
            })
        };
        set("mode", json(&"peer"))?;
        set("listen/endpoints", json(&self.listen))?;
        set("connect/endpoints", json(&self.connect))?;
        // Start never waits for `connect` endpoints: peers come and go, and the
        // transport itself checks `require-connect` after the session opened.
        set("connect/timeout_ms", json(&-1i64))?;
        set("connect/exit_on_failure", json(&false))?;
        let retry = serde_json::json!({
            "period_init_ms": millis(self.retry_initial),
            "period_max_ms": millis(self.retry_max),
            "period_increase_factor": 2.0,
        });
        set("connect/retry", json(&retry))?;
        set("scouting/multicast/enabled", json(&self.multicast_scouting))?;
        set("scouting/gossip/enabled", json(&self.gossip))?;
        set("transport/link/tx/lease", json(&(millis(self.lease) as u64)))?;
        set("transport/link/tx/keep_alive", json(&4u64))?;
        set(
            "transport/link/tx/queue/congestion_control/block/wait_before_close",
            json(&(self.publish_timeout.as_micros() as i64)),
        )?;
        if let Some(tls) = &self.tls {
            set("transport/link/tls/root_ca_certificate", json(&path(&tls.ca)))?;
            if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
                set("transport/link/tls/listen_certificate", json(&path(cert)))?;
                set("transport/link/tls/listen_private_key", json(&path(key)))?;
                if tls.mutual {
                    set("transport/link/tls/connect_certificate", json(&path(cert)))?;
                    set("transport/link/tls/connect_private_key", json(&path(key)))?;
                }
            }
            set("transport/link/tls/enable_mtls", json(&tls.mutual))?;
            set("transport/link/tls/verify_name_on_connect", json(&tls.verify_name))?;
        }
        if let Some(auth) = &self.auth {
            set("transport/auth/usrpwd/user", json(&auth.user))?;
            set("transport/auth/usrpwd/password", json(&auth.password))?;
            set(
                "transport/auth/usrpwd/dictionary_file",
                json(&path(&auth.credentials_file)),
            )?;
        }
        Ok(native)
    }
}

fn millis(duration: std::time::Duration) -> i64 {
    duration.as_millis().min(i64::MAX as u128) as i64
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

/// A value as JSON text, as `insert_json5` takes it.
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UserPassword;

    #[test]
    fn sets_peer_mode_endpoints_scouting_and_auth() {
        let config = ZenohConfig::new()
            .listen(["tcp/127.0.0.1:0"])
            .connect(["tcp/127.0.0.1:7447"])
            .multicast_scouting(false)
            .auth(UserPassword::new("coord", "pw", "/tmp/users"));
        let native = config.to_zenoh().unwrap();
        assert_eq!(native.get_json("mode").unwrap(), "\"peer\"");
        assert!(
            native
                .get_json("connect/endpoints")
                .unwrap()
                .contains("tcp/127.0.0.1:7447")
        );
        assert_eq!(native.get_json("scouting/multicast/enabled").unwrap(), "false");
        assert_eq!(native.get_json("transport/link/tx/lease").unwrap(), "3000");
        assert_eq!(native.get_json("transport/auth/usrpwd/user").unwrap(), "\"coord\"");
    }

    #[test]
    fn raw_json5_is_the_base_and_its_errors_are_config_errors() {
        let native = ZenohConfig::new()
            .zenoh_json5("{ queries_default_timeout: 1234 }")
            .to_zenoh()
            .unwrap();
        assert_eq!(native.get_json("queries_default_timeout").unwrap(), "1234");
        let bad = ZenohConfig::new()
            .zenoh_json5("{ no_such_key: 1 }")
            .to_zenoh()
            .unwrap_err();
        assert_eq!(bad.kind(), coord_core::ErrorKind::Config);
        assert!(bad.message().contains("zenoh-json5"), "{bad}");
    }
}
