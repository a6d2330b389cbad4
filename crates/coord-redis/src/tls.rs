//! The TLS files of a configuration, read once, as the client wants them.

use coord_core::{Error, ErrorKind, Result};
use redis::{ClientTlsConfig, TlsCertificates};

use crate::config::RedisConfig;

/// PEM contents of the CA and of the client certificate and key.
#[derive(Clone, Debug)]
pub(crate) struct TlsFiles {
    root: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

fn read(path: &std::path::Path, key: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| {
        Error::new(
            ErrorKind::Config,
            "redis config",
            format!("cannot read `redis.tls.{key}` {}: {error}", path.display()),
        )
    })
}

impl TlsFiles {
    /// The files of `config`'s TLS table, if it has one.
    ///
    /// # Errors
    /// `Config` when a file cannot be read.
    pub(crate) fn read(config: &RedisConfig) -> Result<Option<TlsFiles>> {
        let Some(tls) = &config.tls else {
            return Ok(None);
        };
        Ok(Some(TlsFiles {
            root: tls.ca.as_deref().map(|p| read(p, "ca")).transpose()?,
            client: match (&tls.cert, &tls.key) {
                (Some(cert), Some(key)) => Some((read(cert, "cert")?, read(key, "key")?)),
                _ => None,
            },
        }))
    }

    /// As the client takes them.
    pub(crate) fn certificates(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: self.client.clone().map(|(client_cert, client_key)| ClientTlsConfig {
                client_cert,
                client_key,
            }),
            root_cert: self.root.clone(),
        }
    }
}
