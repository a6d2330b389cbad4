//! What a local subscriber receives.

use crate::engine::fanout::Missed;
use crate::event::Event;
use crate::identity::NodeId;

/// One item of a subscriber's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// An event from a peer.
    Event(Delivery),
    /// Events may have been lost: resynchronise (re-read the store).
    Lagged(Lagged),
}

/// An event and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The sending node.
    pub from: NodeId,
    /// Whether it was sent to this node alone (`send_to`) rather than broadcast.
    pub directed: bool,
    /// The event.
    pub event: Event,
}

/// Events may have been lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lagged {
    /// The sender whose frames were lost, when known.
    pub from: Option<NodeId>,
    /// How many frames (for a gap) or deliveries (for a slow subscriber) were
    /// lost, when known.
    pub missed: Option<u64>,
    /// Why.
    pub reason: LagReason,
}

/// Why events may have been lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LagReason {
    /// A gap in a sender's sequence numbers.
    Gap,
    /// The transport reconnected or its buffer overflowed.
    Transport,
    /// The engine re-made a subscription that had gone silent.
    Resubscribed,
    /// This subscriber's own queue was full.
    SlowSubscriber,
}

impl Missed for Incoming {
    fn missed(n: u64) -> Self {
        Incoming::Lagged(Lagged {
            from: None,
            missed: Some(n),
            reason: LagReason::SlowSubscriber,
        })
    }
}
