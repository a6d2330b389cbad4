//! The environment contract between `cargo xtask` and a backend's test: the
//! server's address, and the spec of the process running it.

use std::path::Path;

use crate::backend_required;
use crate::service::ServiceSpec;

/// The server address of `backend` from the variable `var` (set by `cargo
/// xtask test` or `cargo xtask services up`). Without it the test skips,
/// saying so; when the backend is required (`COORD_REQUIRE_BACKENDS`) it
/// panics instead, so that a missing server fails the run.
pub fn server_address(backend: &str, var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(address) if !address.is_empty() => Some(address),
        _ if backend_required(backend) => panic!(
            "the {backend} suite is required (COORD_REQUIRE_BACKENDS) but {var} is not set: \
             run `cargo xtask test`, or `cargo xtask services up {backend}` and export what it prints"
        ),
        _ => {
            eprintln!(
                "SKIPPED: the {backend} suite needs a server; set {var} (see `cargo xtask services up {backend}`)"
            );
            None
        }
    }
}

/// The processes of the server named by the variable `var` (a file of
/// [`ServiceSpec::save_all`]), if set: with them the suite can stop and
/// restart the server. Panics if the variable names a file that cannot be
/// read: a broken harness must not pass as "no control".
pub fn service_spec(var: &str) -> Option<Vec<ServiceSpec>> {
    let path = std::env::var_os(var)?;
    let path = Path::new(&path);
    match ServiceSpec::load_all(path) {
        Ok(specs) if !specs.is_empty() => Some(specs),
        Ok(_) => panic!("{var}={} lists no process", path.display()),
        Err(error) => panic!("{var}={} cannot be read as a service file: {error}", path.display()),
    }
}
