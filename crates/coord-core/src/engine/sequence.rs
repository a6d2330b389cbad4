//! Per-sender sequence tracking: duplicates, gaps and stale incarnations.

use std::collections::HashMap;

use crate::identity::NodeId;

/// Which of a sender's streams a frame belongs to (for this receiver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// Broadcast events.
    Broadcast,
    /// Frames directed to this node.
    Directed,
    /// Heartbeats and leave.
    Membership,
}

/// Where a frame falls in its sender's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// The next frame (or the first seen from this sender, or the first after a resync).
    Next,
    /// `n` frames are missing before this one.
    Gap(u64),
    /// Already seen: a duplicate or a replay.
    Duplicate,
    /// From an incarnation older than the newest seen for the sender.
    Stale,
}

/// The last sequence number seen on one stream.
#[derive(Clone, Copy, Debug, Default)]
struct Position {
    last: Option<u64>,
    /// Frames may have been lost in bulk (reported already): the next higher
    /// number is accepted without a gap; lower ones remain duplicates.
    resync: bool,
}

impl Position {
    fn check(&mut self, seq: u64) -> Order {
        match self.last {
            None => {
                self.last = Some(seq);
                Order::Next
            }
            Some(last) if seq <= last => Order::Duplicate,
            Some(last) => {
                self.last = Some(seq);
                if std::mem::take(&mut self.resync) || seq == last + 1 {
                    Order::Next
                } else {
                    Order::Gap(seq - last - 1)
                }
            }
        }
    }
}

#[derive(Debug)]
struct Streams {
    incarnation: u64,
    positions: [Position; 3],
}

impl Streams {
    /// Streams of an incarnation whose frames start at 1.
    fn fresh(incarnation: u64) -> Self {
        let start = Position {
            last: Some(0),
            resync: false,
        };
        Streams {
            incarnation,
            positions: [start; 3],
        }
    }
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
            positions: [Position::default(); 3],
        });
        if incarnation < streams.incarnation {
            return Order::Stale;
        }
        if incarnation > streams.incarnation {
            // A known sender restarted while we listened: its new streams start at 1.
            *streams = Streams::fresh(incarnation);
        }
        streams.positions[stream as usize].check(seq)
    }

    /// Follows `sender`'s `incarnation` from now on, even if it is older than
    /// the one tracked (the newer one is gone: a restart with a clock that
    /// went back).
    pub(crate) fn restart(&mut self, sender: &NodeId, incarnation: u64) {
        self.senders.insert(
            sender.clone(),
            Streams {
                incarnation,
                positions: [Position::default(); 3],
            },
        );
    }

    /// After frames may have been lost in bulk (already reported): the next
    /// frame of each stream is accepted without a gap, replays of earlier
    /// ones are still duplicates.
    pub(crate) fn resync(&mut self) {
        for streams in self.senders.values_mut() {
            for position in &mut streams.positions {
                position.resync = true;
            }
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
            s.check(&a, 10, StreamKind::Membership, 1),
            Order::Next,
            "streams are separate"
        );
        assert_eq!(
            s.check(&a, 11, StreamKind::Broadcast, 3),
            Order::Gap(2),
            "a restart starts at 1"
        );
        assert_eq!(s.check(&a, 10, StreamKind::Broadcast, 10), Order::Stale);
    }

    #[test]
    fn a_resync_accepts_the_next_frame_but_not_replays() {
        let mut s = Sequences::default();
        let a = NodeId::new("a").unwrap();
        assert_eq!(s.check(&a, 1, StreamKind::Broadcast, 1), Order::Next);
        assert_eq!(s.check(&a, 1, StreamKind::Broadcast, 2), Order::Next);
        s.resync();
        assert_eq!(
            s.check(&a, 1, StreamKind::Broadcast, 1),
            Order::Duplicate,
            "a replay stays a replay"
        );
        assert_eq!(
            s.check(&a, 1, StreamKind::Broadcast, 9),
            Order::Next,
            "the loss was reported already"
        );
        assert_eq!(
            s.check(&a, 1, StreamKind::Broadcast, 11),
            Order::Gap(1),
            "then gaps count again"
        );
    }

    #[test]
    fn a_restart_may_follow_an_older_incarnation() {
        let mut s = Sequences::default();
        let a = NodeId::new("a").unwrap();
        assert_eq!(s.check(&a, 20, StreamKind::Membership, 7), Order::Next);
        assert_eq!(s.check(&a, 19, StreamKind::Membership, 1), Order::Stale);
        s.restart(&a, 19);
        assert_eq!(s.check(&a, 19, StreamKind::Membership, 2), Order::Next);
    }
}
