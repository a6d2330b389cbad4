//! Checks, before the session opens, that every file the configuration
//! names can be read, so a typo is a `Config` error naming the key.

use std::path::Path;

use coord_core::Result;

use crate::config::{ZenohConfig, config_error};

/// Fails with a `Config` error naming the first unreadable file and its key.
pub(crate) fn check(config: &ZenohConfig) -> Result<()> {
    let mut files: Vec<(&str, &Path)> = Vec::new();
    if let Some(tls) = &config.tls {
        files.push(("tls.ca", &tls.ca));
        files.extend(tls.cert.as_deref().map(|cert| ("tls.cert", cert)));
        files.extend(tls.key.as_deref().map(|key| ("tls.key", key)));
    }
    if let Some(auth) = &config.auth {
        files.push(("auth.credentials-file", &auth.credentials_file));
    }
    for (key, path) in files {
        if let Err(error) = std::fs::File::open(path) {
            return Err(config_error(format!(
                "{key} = \"{}\" cannot be read: {error}; fix the path or the file's permissions",
                path.display()
            )));
        }
    }
    Ok(())
}
