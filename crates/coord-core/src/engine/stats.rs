//! Counters for everything sent, received and dropped, mirrored to the
//! `metrics` facade (names in `docs/operations.md`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::identity::NodeId;

/// Why a frame, event or delivery was dropped. Each reason has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// Bytes that are not a coord frame (no magic).
    NotAFrame,
    /// A wire format version this build does not know.
    UnknownVersion,
    /// A frame that does not decode.
    Malformed,
    /// A frame without a MAC while a secret is configured.
    Unsigned,
    /// A frame whose MAC does not verify (another key, or altered bytes).
    BadMac,
    /// A frame of another namespace.
    ForeignNamespace,
    /// A sealed frame whose send time is outside the replay window.
    OutsideWindow,
    /// A frame from an incarnation older than the newest seen for its sender.
    StaleIncarnation,
    /// A frame whose sequence number was already seen (a replay or duplicate).
    Duplicate,
    /// A directed frame or probe meant for another node.
    NotForMe,
    /// An event with a tag this build does not know (the rest of its frame is kept).
    UnknownEvent,
    /// An event whose body does not decode (the rest of its frame is kept).
    BadEvent,
    /// An event refused because the outbox was full.
    OutboxOverflow,
    /// An event given up after publishing failed for longer than the retry bound.
    PublishFailed,
    /// A delivery not queued because a subscriber's queue was full.
    SubscriberOverflow,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 15] = [
        DropReason::NotAFrame,
        DropReason::UnknownVersion,
        DropReason::Malformed,
        DropReason::Unsigned,
        DropReason::BadMac,
        DropReason::ForeignNamespace,
        DropReason::OutsideWindow,
        DropReason::StaleIncarnation,
        DropReason::Duplicate,
        DropReason::NotForMe,
        DropReason::UnknownEvent,
        DropReason::BadEvent,
        DropReason::OutboxOverflow,
        DropReason::PublishFailed,
        DropReason::SubscriberOverflow,
    ];

    /// The reason's label in metrics and snapshots.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NotAFrame => "not-a-frame",
            DropReason::UnknownVersion => "unknown-version",
            DropReason::Malformed => "malformed",
            DropReason::Unsigned => "unsigned",
            DropReason::BadMac => "bad-mac",
            DropReason::ForeignNamespace => "foreign-namespace",
            DropReason::OutsideWindow => "outside-window",
            DropReason::StaleIncarnation => "stale-incarnation",
            DropReason::Duplicate => "duplicate",
            DropReason::NotForMe => "not-for-me",
            DropReason::UnknownEvent => "unknown-event",
            DropReason::BadEvent => "bad-event",
            DropReason::OutboxOverflow => "outbox-overflow",
            DropReason::PublishFailed => "publish-failed",
            DropReason::SubscriberOverflow => "subscriber-overflow",
        }
    }
}

/// One counter, kept locally (for snapshots) and in the `metrics` facade.
struct Metric {
    value: AtomicU64,
    counter: metrics::Counter,
}

impl Metric {
    fn new(name: &'static str, node: &NodeId, extra: Option<(&'static str, &'static str)>) -> Self {
        let node = node.to_string();
        let counter = match extra {
            Some((key, value)) => metrics::counter!(name, "node" => node, key => value),
            None => metrics::counter!(name, "node" => node),
        };
        Metric {
            value: AtomicU64::new(0),
            counter,
        }
    }

    fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
        self.counter.increment(n);
    }

    fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// The node's counters. Cheap to update from any task.
pub(crate) struct Stats {
    frames_sent: Metric,
    frames_received: Metric,
    events_sent: Metric,
    events_received: Metric,
    bytes_sent: Metric,
    bytes_received: Metric,
    heartbeats_sent: Metric,
    heartbeats_received: Metric,
    lagged: Metric,
    resubscribes: Metric,
    dropped: Vec<Metric>,
}

/// A copy of the node's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Frames published.
    pub frames_sent: u64,
    /// Frames received from the transport (before any check).
    pub frames_received: u64,
    /// Events published.
    pub events_sent: u64,
    /// Events delivered to local subscribers' fan-out.
    pub events_received: u64,
    /// Bytes published.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Heartbeats published.
    pub heartbeats_sent: u64,
    /// Heartbeats accepted from peers.
    pub heartbeats_received: u64,
    /// `Lagged` notifications emitted (gaps and reconnects).
    pub lagged: u64,
    /// Times the engine dropped and re-made its subscriptions (silent subscription healed).
    pub resubscribes: u64,
    /// Drops by reason (label of [`DropReason::as_str`] → count); zero counts included.
    pub dropped: BTreeMap<&'static str, u64>,
}

impl StatsSnapshot {
    /// Drops counted for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(reason.as_str()).copied().unwrap_or(0)
    }
}

impl Stats {
    pub(crate) fn new(node: &NodeId) -> Self {
        let m = |name| Metric::new(name, node, None);
        Stats {
            frames_sent: m("coord_frames_sent_total"),
            frames_received: m("coord_frames_received_total"),
            events_sent: m("coord_events_sent_total"),
            events_received: m("coord_events_received_total"),
            bytes_sent: m("coord_bytes_sent_total"),
            bytes_received: m("coord_bytes_received_total"),
            heartbeats_sent: m("coord_heartbeats_sent_total"),
            heartbeats_received: m("coord_heartbeats_received_total"),
            lagged: m("coord_lagged_total"),
            resubscribes: m("coord_resubscribes_total"),
            dropped: DropReason::ALL
                .iter()
                .map(|r| Metric::new("coord_dropped_total", node, Some(("reason", r.as_str()))))
                .collect(),
        }
    }

    pub(crate) fn sent(&self, frame_bytes: usize, events: usize) {
        self.frames_sent.add(1);
        self.bytes_sent.add(frame_bytes as u64);
        self.events_sent.add(events as u64);
    }

    pub(crate) fn heartbeat_sent(&self) {
        self.heartbeats_sent.add(1);
    }

    pub(crate) fn received(&self, frame_bytes: usize) {
        self.frames_received.add(1);
        self.bytes_received.add(frame_bytes as u64);
    }

    pub(crate) fn events_received(&self, n: usize) {
        self.events_received.add(n as u64);
    }

    pub(crate) fn heartbeat_received(&self) {
        self.heartbeats_received.add(1);
    }

    pub(crate) fn lagged(&self) {
        self.lagged.add(1);
    }

    pub(crate) fn resubscribed(&self) {
        self.resubscribes.add(1);
    }

    pub(crate) fn drop(&self, reason: DropReason, n: u64) {
        let index = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is listed");
        self.dropped[index].add(n);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            frames_sent: self.frames_sent.get(),
            frames_received: self.frames_received.get(),
            events_sent: self.events_sent.get(),
            events_received: self.events_received.get(),
            bytes_sent: self.bytes_sent.get(),
            bytes_received: self.bytes_received.get(),
            heartbeats_sent: self.heartbeats_sent.get(),
            heartbeats_received: self.heartbeats_received.get(),
            lagged: self.lagged.get(),
            resubscribes: self.resubscribes.get(),
            dropped: DropReason::ALL
                .iter()
                .zip(&self.dropped)
                .map(|(r, m)| (r.as_str(), m.get()))
                .collect(),
        }
    }
}
