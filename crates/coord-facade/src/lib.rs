#![doc = include_str!("../README.md")]

mod backend;
mod builder;
mod config;
mod coordinator;

pub use backend::{BackendConfig, BackendUri, schemes};
pub use builder::Builder;
pub use config::{Config, CoordinatorConfig};
pub use coordinator::Coordinator;

/// The error type of coord, re-used from `coord-core` rather than wrapped.
///
/// Every error a coordinator can return already is a [`coord_core::Error`]:
/// the engine's and the backends' at run time, and the facade's own
/// configuration errors, which fit its [`ErrorKind::Config`] and whose
/// message names the key and the fix. It has the kind to branch on and
/// [`Error::is_temporary`] to decide on retries, so a second type would only
/// add a layer of conversion for callers to unwrap.
pub use coord_core::{Error, ErrorKind, Result};

pub use coord_core::engine::{BatchConfig, DropReason, HealthConfig, InboxConfig, OutboxConfig, StatsSnapshot};
pub use coord_core::membership::{DetectorSettings, MembershipConfig};
pub use coord_core::transport::TransportHealth;
pub use coord_core::wire::NodeMeta;
pub use coord_core::{
    AcceptedFrame, CacheKind, Capabilities, Channel, DataTypes, Delivery, Event, Feed, FrameContent, FrameReport,
    Health, HealthStatus, Incoming, Invalidation, LagReason, Lagged, Member, MemberEvent, MemberState, Namespace, Node,
    NodeConfig, NodeId, Profile, QueueEvent, RejectedFrame, Reload, Secret, StateChange, Transport, TransportDyn,
};

/// The in-memory backend (`memory://<name>`): many nodes in one process, with
/// fault injection for tests.
pub use coord_core::transport::memory;

/// The NATS backend (`nats://…`, `[coordinator.nats]`), with the `nats` feature.
#[cfg(feature = "nats")]
pub use coord_nats as nats;

/// The Redis backend (`redis://…`, `redis+cluster://…`, `redis+sentinel://…`,
/// `[coordinator.redis]`), with the `redis` feature.
#[cfg(feature = "redis")]
pub use coord_redis as redis;
/// The Zenoh peer-to-peer backend (`zenoh://…`, `[coordinator.zenoh]`), with
/// the `zenoh` feature; the backend started when none is configured.
#[cfg(feature = "zenoh")]
pub use coord_zenoh as zenoh;

/// The Kafka / Redpanda backend (`kafka://…`, `[coordinator.kafka]`), with
/// the `kafka` feature (off by default: it builds librdkafka from C).
#[cfg(feature = "kafka")]
pub use coord_kafka as kafka;

/// The engine crate, for what the facade does not re-export (the wire
/// format, the membership detector).
pub use coord_core;

/// The repository's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
