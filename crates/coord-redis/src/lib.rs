#![doc = include_str!("../docs.md")]

mod cluster;
mod config;
mod errors;
mod locator;
mod subscription;
mod tls;
mod transport;

pub use config::{RedisConfig, RedisTls, Topology};
pub use transport::RedisTransport;
