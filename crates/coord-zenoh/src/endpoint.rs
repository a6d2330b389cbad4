//! Checks endpoint strings (`tcp/host:port`, `tls/host:port`) before Zenoh sees them.

use std::str::FromStr;

use coord_core::Result;
use zenoh::config::EndPoint;

use crate::cause::cause;
use crate::config::config_error;

/// Link protocols this crate is built with.
pub(crate) const PROTOCOLS: &[&str] = &["tcp", "tls"];

/// Checks the endpoint `text` found at `key`; returns its protocol.
pub(crate) fn check(key: &str, text: &str) -> Result<&'static str> {
    let endpoint = EndPoint::from_str(text).map_err(|error| {
        config_error(format!(
            "{key} = \"{text}\" is not a Zenoh endpoint ({}): write <protocol>/<host>:<port>, \
             e.g. \"tcp/10.0.0.2:7447\"",
            cause(&error)
        ))
    })?;
    let protocol = endpoint.protocol();
    let Some(known) = PROTOCOLS.iter().find(|p| **p == protocol.as_str()) else {
        return Err(config_error(format!(
            "{key} = \"{text}\": protocol `{protocol}` is not built into coord-zenoh; use one of {}",
            PROTOCOLS.join(", ")
        )));
    };
    let address = endpoint.address();
    if !coord_core::params::is_host_port(address.as_str()) {
        return Err(config_error(format!(
            "{key} = \"{text}\": the address must be <host>:<port>, e.g. \"{known}/127.0.0.1:7447\""
        )));
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_tcp_and_tls_and_names_the_key_otherwise() {
        assert_eq!(check("listen[0]", "tcp/127.0.0.1:0").unwrap(), "tcp");
        assert_eq!(check("connect[1]", "tls/node-b.example:7447").unwrap(), "tls");
        let quic = check("connect[2]", "quic/1.2.3.4:7447").unwrap_err();
        assert!(
            quic.message().contains("connect[2]") && quic.message().contains("quic"),
            "{quic}"
        );
        let port = check("listen[0]", "tcp/127.0.0.1").unwrap_err();
        assert!(port.message().contains("<host>:<port>"), "{port}");
    }
}
