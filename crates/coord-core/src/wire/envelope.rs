//! The envelope: who sent a frame, in which stream, and what it carries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::RawEvent;
use crate::identity::{Namespace, NodeId};

/// Everything a frame says, between its prefix and its MAC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The cluster's namespace; a frame of another namespace is dropped.
    pub namespace: Namespace,
    /// The sending node.
    pub sender: NodeId,
    /// The sender's incarnation: new on every start and increasing.
    pub incarnation: u64,
    /// Position in the sender's stream (see [`Body::stream`]), from 1.
    pub seq: u64,
    /// When the frame was sealed, in milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// What the frame carries.
    pub body: Body,
}

/// What a frame carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Events for every node.
    Broadcast(Vec<RawEvent>),
    /// Events for one node.
    Directed {
        /// The target node.
        to: NodeId,
        /// The events.
        events: Vec<RawEvent>,
    },
    /// "I am alive", with the sender's metadata.
    Heartbeat(NodeMeta),
    /// "I am leaving" (graceful shutdown).
    Leave,
    /// A health probe a node sends to itself to prove frames flow end to end.
    Probe {
        /// Identifies the probe.
        nonce: u64,
    },
}

/// Which sequence a frame belongs to: sequences are per sender, incarnation and stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream<'a> {
    /// Broadcast events: every node sees this stream whole, so a gap means lost events.
    Broadcast,
    /// Directed frames to one node.
    Directed(&'a NodeId),
    /// Heartbeats and leave: a gap loses no event, so it raises no `Lagged`.
    Membership,
    /// Probes: not sequence-checked.
    Probe,
}

impl Body {
    /// The stream the frame's sequence number counts in.
    pub fn stream(&self) -> Stream<'_> {
        match self {
            Body::Broadcast(_) => Stream::Broadcast,
            Body::Directed { to, .. } => Stream::Directed(to),
            Body::Heartbeat(_) | Body::Leave => Stream::Membership,
            Body::Probe { .. } => Stream::Probe,
        }
    }
}

/// What a node says about itself in every heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMeta {
    /// When the node started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// The application's version string.
    pub version: String,
    /// Roles the node plays (e.g. `imap`, `smtp-in`).
    pub roles: Vec<String>,
    /// Addresses where the node can be reached, as hints for operators.
    pub addresses: Vec<String>,
    /// Free-form labels.
    pub labels: BTreeMap<String, String>,
}
