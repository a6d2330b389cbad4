#![doc = include_str!("../docs.md")]

mod cause;
mod config;
mod endpoint;
mod files;
mod inlet;
mod link;
mod liveliness;
mod native;
mod reach;
mod transport;
mod uri;

pub use config::{DEFAULT_MAX_PAYLOAD, DEFAULT_SUBSCRIPTION_CAPACITY, TlsConfig, UserPassword, ZenohConfig};
pub use coord_core::transport::{Presence, PresenceStream};
pub use liveliness::{AliveToken, alive_key};
pub use transport::{BACKEND, ZenohTransport};
pub use uri::SCHEME;
