//! The one error type of `coord-core` (and the one every backend reports through).

use std::fmt;

/// What went wrong, coarsely: callers branch on this, humans read the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid; the message names the key and the fix.
    Config,
    /// The backend cannot be reached right now (down, refusing, timing out).
    Unavailable,
    /// The backend refused our credentials or certificates.
    Unauthorized,
    /// An event or frame is larger than the transport can carry.
    TooLarge,
    /// A bounded queue is full and the item was not accepted.
    Overflow,
    /// The target node of a directed send is not a live member.
    UnknownNode,
    /// The node (or transport) has been shut down.
    Closed,
    /// Bytes that are not a valid frame or event.
    Malformed,
    /// Anything else: a bug or an unexpected answer from a backend.
    Unexpected,
}

impl ErrorKind {
    /// A short lowercase name, stable for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::TooLarge => "too-large",
            ErrorKind::Overflow => "overflow",
            ErrorKind::UnknownNode => "unknown-node",
            ErrorKind::Closed => "closed",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Unexpected => "unexpected",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from coord: a kind, whether retrying may help, what was being
/// done, a message and the underlying cause.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {message} ({kind}{})", if *.temporary { ", temporary" } else { "" })]
pub struct Error {
    kind: ErrorKind,
    temporary: bool,
    operation: &'static str,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new permanent error of `kind` raised while doing `operation`.
    pub fn new(kind: ErrorKind, operation: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            temporary: false,
            operation,
            message: message.into(),
            source: None,
        }
    }

    /// Marks the error as temporary: the same call may succeed later.
    pub fn temporary(mut self) -> Self {
        self.temporary = true;
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What went wrong, coarsely.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether retrying the same call later may succeed (an outage, a full
    /// queue), as opposed to a permanent cause (bad config, bad credentials).
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// The operation that failed, e.g. `"publish"` or `"nats connect"`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn closed(operation: &'static str) -> Self {
        Error::new(ErrorKind::Closed, operation, "the node has been shut down")
    }
}

/// `Result` with coord's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_operation_kind_and_temporariness() {
        let e = Error::new(ErrorKind::Unavailable, "publish", "server down").temporary();
        assert_eq!(e.to_string(), "publish: server down (unavailable, temporary)");
        assert!(e.is_temporary());
        let e = Error::new(ErrorKind::Config, "config", "bad key");
        assert_eq!(e.to_string(), "config: bad key (config)");
        assert!(!e.is_temporary());
    }
}
