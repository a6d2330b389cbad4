//! Typed values of a backend URI's parameters (`?connect-timeout=2s&…`),
//! with `Config` errors that name the parameter and what to write instead;
//! shared by every backend's URI parser.

use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

fn invalid(operation: &'static str, key: &str, value: &str, write: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        operation,
        format!("URI parameter `{key}` is {value:?}: write {write}"),
    )
}

/// A whole number.
///
/// # Errors
/// `Config`, raised as `operation`, naming `key`.
pub fn number<T: FromStr>(operation: &'static str, key: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| invalid(operation, key, value, "a whole number"))
}

/// `true` or `false`.
///
/// # Errors
/// `Config`, raised as `operation`, naming `key`.
pub fn flag(operation: &'static str, key: &str, value: &str) -> Result<bool> {
    value
        .parse()
        .map_err(|_| invalid(operation, key, value, "true or false"))
}

/// A duration such as `250ms`, `2s` or `1m`.
///
/// # Errors
/// `Config`, raised as `operation`, naming `key`.
pub fn duration(operation: &'static str, key: &str, value: &str) -> Result<Duration> {
    humantime_serde::re::humantime::parse_duration(value)
        .map_err(|_| invalid(operation, key, value, "a duration such as 250ms or 2s"))
}

/// Whether `address` is `host:port` with a host, a port number and no
/// scheme, as the broker backends' server lists and Zenoh endpoints take them.
pub fn is_host_port(address: &str) -> bool {
    !address.contains("://")
        && address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_needs_a_host_a_port_and_no_scheme() {
        assert!(is_host_port("127.0.0.1:6379") && is_host_port("[::1]:9092") && is_host_port("broker-1:9092"));
        for bad in ["127.0.0.1", ":6379", "host:port", "host:70000", "redis://host:6379"] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn values_parse_and_errors_name_the_parameter() {
        assert_eq!(number::<usize>("x config", "capacity", "42").unwrap(), 42);
        assert!(flag("x config", "tls", "true").unwrap());
        assert_eq!(
            duration("x config", "timeout", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        let err = duration("x config", "timeout", "soon").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(err.operation(), "x config");
        assert_eq!(
            err.message(),
            "URI parameter `timeout` is \"soon\": write a duration such as 250ms or 2s"
        );
        assert!(number::<usize>("x config", "n", "-1").is_err() && flag("x config", "f", "yes").is_err());
    }
}
