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

impl Envelope {
    /// About the bytes the envelope encodes to: exact for its events, a
    /// bound for the fixed fields; heartbeat metadata is not counted.
    pub(super) fn encoded_len_hint(&self) -> usize {
        let names = self.namespace.as_ref().len() + self.sender.as_ref().len();
        let body = match &self.body {
            Body::Broadcast(events) => events.iter().map(RawEvent::encoded_len).sum(),
            Body::Directed { to, events } => {
                to.as_ref().len() + events.iter().map(RawEvent::encoded_len).sum::<usize>()
            }
            Body::Heartbeat(_) | Body::Leave | Body::Probe { .. } => 0,
        };
        // Two name lengths, three u64 varints, the variant and a list length.
        names + body + 2 * 10 + 3 * 10 + 10 + 10
    }
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

/// [`Envelope`] as decoded in place: the same fields in the same order (so
/// the same bytes), with event bodies borrowed from the frame until
/// [`EnvelopeRef::share`] turns each into a slice of the frame's buffer.
#[derive(Deserialize)]
pub(super) struct EnvelopeRef<'a> {
    namespace: Namespace,
    sender: NodeId,
    incarnation: u64,
    seq: u64,
    sent_at_ms: u64,
    #[serde(borrow)]
    body: BodyRef<'a>,
}

/// [`Body`] with borrowed events; the variants in [`Body`]'s order.
#[derive(Deserialize)]
enum BodyRef<'a> {
    Broadcast(#[serde(borrow)] Vec<RawEventRef<'a>>),
    Directed {
        to: NodeId,
        #[serde(borrow)]
        events: Vec<RawEventRef<'a>>,
    },
    Heartbeat(NodeMeta),
    Leave,
    Probe {
        nonce: u64,
    },
}

/// [`RawEvent`] with its body borrowed.
#[derive(Deserialize)]
struct RawEventRef<'a> {
    tag: u16,
    body: &'a [u8],
}

impl EnvelopeRef<'_> {
    /// The owned envelope, each event body a slice of `frame`, which holds
    /// the bytes this was decoded from: no event is copied.
    pub(super) fn share(self, frame: &bytes::Bytes) -> Envelope {
        let events = |events: Vec<RawEventRef<'_>>| {
            events
                .into_iter()
                .map(|event| RawEvent {
                    tag: event.tag,
                    body: frame.slice_ref(event.body),
                })
                .collect()
        };
        Envelope {
            namespace: self.namespace,
            sender: self.sender,
            incarnation: self.incarnation,
            seq: self.seq,
            sent_at_ms: self.sent_at_ms,
            body: match self.body {
                BodyRef::Broadcast(list) => Body::Broadcast(events(list)),
                BodyRef::Directed { to, events: list } => Body::Directed {
                    to,
                    events: events(list),
                },
                BodyRef::Heartbeat(meta) => Body::Heartbeat(meta),
                BodyRef::Leave => Body::Leave,
                BodyRef::Probe { nonce } => Body::Probe { nonce },
            },
        }
    }
}
