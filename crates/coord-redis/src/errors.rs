//! Redis client errors as coord's error: the backend, the server and the
//! cause, with the kind callers branch on.

use coord_core::{Error, ErrorKind};
use redis::RedisError;

/// Whether the server refused our credentials or permissions.
fn is_auth(error: &RedisError) -> bool {
    if error.kind() == redis::ErrorKind::AuthenticationFailed {
        return true;
    }
    let text = error.to_string();
    [
        "WRONGPASS",
        "NOAUTH",
        "NOPERM",
        "invalid password",
        "invalid username-password",
    ]
    .iter()
    .any(|marker| text.contains(marker))
}

/// A failure of `operation` talking to `server`.
pub(crate) fn redis_error(operation: &'static str, server: &str, error: RedisError) -> Error {
    if is_auth(&error) {
        let message = format!(
            "the Redis server at {server} refused the credentials: {error}; check `redis.user` and `redis.password` \
             (and the user's ACL: it needs +publish, +subscribe/+ssubscribe and the coord channels)"
        );
        return Error::new(ErrorKind::Unauthorized, operation, message).with_source(error);
    }
    let message = format!("cannot talk to the Redis server at {server}: {error}; is it running and reachable?");
    Error::new(ErrorKind::Unavailable, operation, message)
        .with_source(error)
        .temporary()
}

/// `operation` took longer than `bound` against `server`.
pub(crate) fn timed_out(operation: &'static str, server: &str, bound: std::time::Duration) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        operation,
        format!("the Redis server at {server} did not answer within {bound:?}"),
    )
    .temporary()
}
