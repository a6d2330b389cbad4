//! The frame tap: every frame the inbox receives, with what it made of it,
//! for tools that show the traffic (`coordctl watch`). Reports are built
//! only while somebody watches.

use crate::engine::fanout::Missed;
use crate::engine::stats::DropReason;
use crate::event::Event;
use crate::identity::NodeId;
use crate::wire::NodeMeta;

/// One frame the inbox received, and its verdict (see [`crate::Node::frames`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameReport {
    /// A frame that passed every check and was acted on.
    Accepted(AcceptedFrame),
    /// A frame dropped, and why.
    Rejected(RejectedFrame),
    /// This many reports were lost because the watcher read too slowly.
    Missed(u64),
}

impl Missed for FrameReport {
    fn missed(n: u64) -> Self {
        FrameReport::Missed(n)
    }
}

/// A frame that passed the checks (version, MAC, namespace, replay window,
/// sequence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedFrame {
    /// The sending node.
    pub sender: NodeId,
    /// The sender's incarnation.
    pub incarnation: u64,
    /// The frame's sequence number on its stream.
    pub seq: u64,
    /// The frame's size on the wire, in bytes.
    pub bytes: usize,
    /// What it carried.
    pub content: FrameContent,
}

/// What an accepted frame carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameContent {
    /// A heartbeat with the sender's metadata.
    Heartbeat(NodeMeta),
    /// A graceful leave.
    Leave,
    /// Events, broadcast or sent to this node alone.
    Events {
        /// Sent to this node alone (`send_to`) rather than broadcast.
        directed: bool,
        /// The events that decoded.
        events: Vec<Event>,
        /// Events skipped (unknown kind or bad body); the others were kept.
        skipped: usize,
    },
}

/// A frame the inbox dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedFrame {
    /// The sender the frame names, when it decoded that far.
    pub sender: Option<NodeId>,
    /// Its sequence number, when it decoded that far.
    pub seq: Option<u64>,
    /// The frame's size on the wire, in bytes.
    pub bytes: usize,
    /// Why it was dropped (the same reason its drop was counted under).
    pub reason: DropReason,
    /// The decoder's message, for frames that do not decode.
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use futures::StreamExt;

    use super::*;
    use crate::engine::{Node, NodeConfig};
    use crate::identity::Secret;
    use crate::transport::memory::MemoryNetwork;
    use crate::transport::{Channel, Transport};

    fn config(name: &str) -> NodeConfig {
        let mut config = NodeConfig::new(NodeId::new(name).unwrap());
        config.secret = Some(Secret::new("a test secret of 32 bytes or more").unwrap());
        config
    }

    /// The next report matching `pick`, within 5 s.
    async fn next<T>(
        frames: &mut crate::engine::Feed<FrameReport>,
        mut pick: impl FnMut(FrameReport) -> Option<T>,
    ) -> T {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(found) = pick(frames.next().await.expect("the feed lives")) {
                    return found;
                }
            }
        })
        .await
        .expect("the report came within 5 s")
    }

    #[tokio::test]
    async fn the_tap_reports_accepted_events_and_rejected_frames_with_their_reason() {
        let network = MemoryNetwork::new();
        let watcher = Node::start(config("watcher"), Arc::new(network.connect()))
            .await
            .unwrap();
        let sender = Node::start(config("sender"), Arc::new(network.connect()))
            .await
            .unwrap();
        let mut frames = watcher.frames();

        let heartbeat = next(&mut frames, |report| match report {
            FrameReport::Accepted(frame) if matches!(frame.content, FrameContent::Heartbeat(_)) => Some(frame),
            _ => None,
        })
        .await;
        assert_eq!(heartbeat.sender.as_str(), "sender");

        let event = crate::Event::Reload(crate::Reload::Settings);
        sender.broadcast(event.clone()).await.unwrap();
        let events = next(&mut frames, |report| match report {
            FrameReport::Accepted(AcceptedFrame {
                content:
                    FrameContent::Events {
                        events,
                        directed,
                        skipped,
                    },
                ..
            }) => Some((events, directed, skipped)),
            _ => None,
        })
        .await;
        assert_eq!(events, (vec![event], false, 0));

        let raw = network.connect();
        let all = Channel::all(&crate::Namespace::default());
        raw.publish(&all, Bytes::from_static(b"not a frame at all"))
            .await
            .unwrap();
        let rejected = next(&mut frames, |report| match report {
            FrameReport::Rejected(frame) => Some(frame),
            _ => None,
        })
        .await;
        assert_eq!(rejected.reason, crate::engine::DropReason::NotAFrame);
        assert_eq!(rejected.bytes, 18);
        assert!(rejected.sender.is_none() && rejected.detail.is_some(), "{rejected:?}");
        assert_eq!(watcher.stats().dropped(crate::engine::DropReason::NotAFrame), 1);

        sender.shutdown().await.unwrap();
        next(&mut frames, |report| match report {
            FrameReport::Accepted(frame) if frame.content == FrameContent::Leave => Some(()),
            _ => None,
        })
        .await;
        watcher.shutdown().await.unwrap();
        let rest = tokio::time::timeout(Duration::from_secs(5), frames.count()).await;
        assert!(rest.is_ok(), "the feed ends when the node shuts down");
    }
}
