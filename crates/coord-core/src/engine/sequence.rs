//! Per-sender sequence tracking: duplicates, gaps and stale incarnations.

use std::collections::HashMap;

use crate::identity::NodeId;

/// Which of a sender's streams a frame belongs to (for this receiver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// Broadcast events, heartbeats and leave.
    Broadcast,
    /// Frames directed to this node.
    Directed,
}

/// Where a frame falls in its sender's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// The next frame (or the first seen from this sender).
    Next,
    /// `n` frames are missing before this one.
    Gap(u64),
    /// Already seen: a duplicate or a replay.
    Duplicate,
    /// From an incarnation older than the newest seen for the sender.
    Stale,
}

#[derive(Debug)]
struct Streams {
    incarnation: u64,
    broadcast: Option<u64>,
    directed: Option<u64>,
}

/// The last sequence number seen per sender, incarnation and stream.
#[derive(Debug, Default)]
pub(crate) struct Sequences {
    senders: HashMap<NodeId, Streams>,
}

impl Sequences {
    /// Records frame `seq` of `sender`'s `incarnation` in `stream`.
    pub(crate) fn check(&mut self, sender: &NodeId, incarnation: u64, stream: StreamKind, seq: u64) -> Order {
        let streams = self.senders.entry(sender.clone()).or_insert(Streams {
            incarnation,
            broadcast: None,
            directed: None,
        });
        if incarnation < streams.incarnation {
            return Order::Stale;
        }
        if incarnation > streams.incarnation {
            // A known sender restarted while we listened: its new streams start at 1.
            *streams = Streams {
                incarnation,
                broadcast: Some(0),
                directed: Some(0),
            };
        }
        let last = match stream {
            StreamKind::Broadcast => &mut streams.broadcast,
            StreamKind::Directed => &mut streams.directed,
        };
        match *last {
            None => {
                *last = Some(seq);
                Order::Next
            }
            Some(l) if seq <= l => Order::Duplicate,
            Some(l) => {
                *last = Some(seq);
                if seq == l + 1 {
                    Order::Next
                } else {
                    Order::Gap(seq - l - 1)
                }
            }
        }
    }

    /// Forgets every position (after frames may have been lost in bulk): the
    /// next frame of each sender sets a new baseline.
    pub(crate) fn reset(&mut self) {
        for streams in self.senders.values_mut() {
            streams.broadcast = None;
            streams.directed = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_gaps_duplicates_and_stale_incarnations() {
        let mut s = Sequences::default();
        let a = NodeId::new("a").unwrap();
        assert_eq!(
            s.check(&a, 10, StreamKind::Broadcast, 5),
            Order::Next,
            "first contact sets a baseline"
        );
        assert_eq!(s.check(&a, 10, StreamKind::Broadcast, 6), Order::Next);
        assert_eq!(s.check(&a, 10, StreamKind::Broadcast, 6), Order::Duplicate);
        assert_eq!(s.check(&a, 10, StreamKind::Broadcast, 9), Order::Gap(2));
        assert_eq!(
            s.check(&a, 10, StreamKind::Directed, 1),
            Order::Next,
            "streams are separate"
        );
        assert_eq!(
            s.check(&a, 11, StreamKind::Broadcast, 3),
            Order::Gap(2),
            "a restart starts at 1"
        );
        assert_eq!(s.check(&a, 10, StreamKind::Broadcast, 10), Order::Stale);
        s.reset();
        assert_eq!(s.check(&a, 11, StreamKind::Broadcast, 9), Order::Next);
    }
}
