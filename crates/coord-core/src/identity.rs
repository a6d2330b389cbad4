//! Names: node ids, namespaces and the cluster secret.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, ErrorKind, Result};

/// Longest node id or namespace accepted, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Checks that `name` can be used in every backend's channel syntax (NATS
/// subject token, Redis channel, Zenoh key chunk, Kafka topic): 1 to 64
/// ASCII letters, digits, `-` or `_`.
fn validate_name(what: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Config,
            "config",
            format!("{what} {name:?} is invalid: use 1 to {MAX_NAME_LEN} ASCII letters, digits, '-' or '_'"),
        ))
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(Arc<str>);

        impl $ty {
            #[doc = concat!("A ", $what, ", checked to be usable in every backend's channel names.")]
            pub fn new(name: impl AsRef<str>) -> Result<Self> {
                let name = name.as_ref();
                validate_name($what, name)?;
                Ok($ty(Arc::from(name)))
            }

            #[doc = concat!("The ", $what, " as a string.")]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $ty::new(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $ty::new(&*s).map_err(|e| serde::de::Error::custom(e.message()))
            }
        }
    };
}

name_type!(
    /// The id of one node of the cluster (e.g. `mx1`), unique among live nodes.
    NodeId,
    "node id"
);

name_type!(
    /// A cluster's namespace: clusters with different namespaces sharing one
    /// broker never see each other's frames. Defaults to `coord`.
    Namespace,
    "namespace"
);

impl Default for Namespace {
    fn default() -> Self {
        Namespace(Arc::from("coord"))
    }
}

/// The cluster secret that signs every frame. Its bytes never appear in
/// `Debug` output, `Display` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    /// Shortest secret accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// A secret from raw bytes; at least [`Secret::MIN_LEN`] bytes.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self> {
        let bytes = bytes.as_ref();
        if bytes.len() < Self::MIN_LEN {
            return Err(Error::new(
                ErrorKind::Config,
                "config",
                format!(
                    "secret is {} bytes long: use at least {} random bytes (e.g. `openssl rand -hex 32`)",
                    bytes.len(),
                    Self::MIN_LEN
                ),
            ));
        }
        Ok(Secret(Arc::from(bytes)))
    }

    /// The key bytes, for the MAC only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Secret::new(s.as_bytes()).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_channel_safe_ascii_only() {
        assert!(NodeId::new("mx1").is_ok());
        assert!(NodeId::new("node_2-b").is_ok());
        for bad in ["", "a.b", "a/b", "a*", "a b", "é", &"x".repeat(65)] {
            let err = NodeId::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
            assert!(err.message().contains("node id"));
        }
    }

    #[test]
    fn secret_is_redacted_everywhere() {
        let s = Secret::new("super-secret-value-123").unwrap();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        assert!(Secret::new("short").is_err());
    }
}
