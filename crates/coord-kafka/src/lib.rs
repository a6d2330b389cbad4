#![doc = include_str!("../docs.md")]

mod config;
mod connection;
mod transport;

pub use config::{KafkaConfig, KafkaSasl, KafkaTls, SaslMechanism};
pub use transport::KafkaTransport;
