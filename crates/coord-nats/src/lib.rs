#![doc = include_str!("../docs.md")]

mod config;
mod connection;
mod transport;

pub use config::{NatsConfig, NatsTls};
pub use transport::NatsTransport;
