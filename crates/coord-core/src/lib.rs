#![doc = include_str!("../README.md")]

pub mod engine;
mod error;
pub mod event;
mod identity;
pub mod membership;
pub mod params;
pub mod transport;
pub mod wire;

pub use engine::{
    AcceptedFrame, Delivery, Feed, FrameContent, FrameReport, Health, HealthStatus, Incoming, LagReason, Lagged, Node,
    NodeConfig, RejectedFrame,
};
pub use error::{Error, ErrorKind, Result};
pub use event::{CacheKind, DataTypes, Event, Invalidation, QueueEvent, Reload, StateChange};
pub use identity::{MAX_NAME_LEN, Namespace, NodeId, Secret};
pub use membership::{Member, MemberEvent, MemberState, Profile};
pub use transport::{Capabilities, Channel, Transport, TransportDyn};
