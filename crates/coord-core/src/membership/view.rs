//! The membership view one observer keeps, and the events it emits.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio::time::Instant;

use super::config::DetectorSettings;
use super::detector::PhiDetector;
use crate::engine::fanout::{Fanout, Missed};
use crate::identity::NodeId;
use crate::transport::Presence;
use crate::wire::NodeMeta;

/// A peer's state as this observer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// Heartbeats arrive as expected.
    Alive,
    /// Heartbeats are late (phi above `suspect-phi`), or the transport
    /// reported the peer gone (a liveliness signal) and no heartbeat came since.
    Suspect,
    /// Heartbeats stopped (phi above `phi-threshold`): the peer is presumed crashed.
    Failed,
    /// The peer shut down gracefully.
    Left,
}

/// One peer in the view.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Member {
    /// The peer's node id.
    pub node: NodeId,
    /// The incarnation currently tracked.
    pub incarnation: u64,
    /// Its state.
    pub state: MemberState,
    /// What its last heartbeat said about it.
    pub meta: NodeMeta,
    /// When its last heartbeat arrived.
    pub last_seen: SystemTime,
    /// Phi when the view was last evaluated.
    pub phi: f64,
}

/// A change in the membership view. Each change is emitted once per observer.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MemberEvent {
    /// A node was seen for the first time.
    Joined {
        /// The node.
        node: NodeId,
        /// Its incarnation.
        incarnation: u64,
        /// What it says about itself.
        meta: NodeMeta,
    },
    /// A node's heartbeats are late.
    Suspect {
        /// The node.
        node: NodeId,
        /// Phi when it turned suspect.
        phi: f64,
    },
    /// A node's heartbeats stopped: it is presumed crashed.
    Failed {
        /// The node.
        node: NodeId,
    },
    /// A suspect or failed node's heartbeats arrive again (same incarnation).
    Recovered {
        /// The node.
        node: NodeId,
    },
    /// A node shut down gracefully.
    Left {
        /// The node.
        node: NodeId,
    },
    /// A node restarted: a new incarnation replaces the old one.
    Rejoined {
        /// The node.
        node: NodeId,
        /// The incarnation that ended.
        previous: u64,
        /// The new incarnation.
        incarnation: u64,
        /// What it says about itself now.
        meta: NodeMeta,
    },
    /// Two live processes use the same node id (a configuration error).
    Conflict {
        /// The contested node id.
        node: NodeId,
        /// The two incarnations seen alive.
        incarnations: [u64; 2],
    },
    /// This observer's queue overflowed and `missed` events were lost: re-read
    /// the snapshot.
    Lagged {
        /// How many events were lost.
        missed: u64,
    },
}

impl MemberEvent {
    /// The event's kind in one lowercase word (`joined`, `suspect`, …), for
    /// logs and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            MemberEvent::Joined { .. } => "joined",
            MemberEvent::Suspect { .. } => "suspect",
            MemberEvent::Failed { .. } => "failed",
            MemberEvent::Recovered { .. } => "recovered",
            MemberEvent::Left { .. } => "left",
            MemberEvent::Rejoined { .. } => "rejoined",
            MemberEvent::Conflict { .. } => "conflict",
            MemberEvent::Lagged { .. } => "lagged",
        }
    }
}

impl Missed for MemberEvent {
    fn missed(n: u64) -> Self {
        MemberEvent::Lagged { missed: n }
    }
}

/// Detector state of one peer, beside its public [`Member`] entry.
struct Record {
    detector: PhiDetector,
    /// The incarnation this one replaced, the last sequence number seen from
    /// it since, and how many fresh heartbeats it sent: an old incarnation
    /// still sending means a conflict.
    previous: Option<(u64, u64, u32)>,
    conflict_reported: bool,
    /// The transport reported the peer gone while this incarnation was tracked.
    gone: Option<Gone>,
}

/// A transport's report that a peer is gone, waiting for its deadlines.
#[derive(Clone, Copy)]
struct Gone {
    /// The incarnation tracked when the report came: a newer one is not gone.
    incarnation: u64,
    /// When the peer turns suspect if no leave or heartbeat came first.
    suspect_at: Instant,
    /// When it fails if no heartbeat came first.
    fail_at: Instant,
}

impl Gone {
    fn of(&self, incarnation: u64) -> bool {
        self.incarnation == incarnation
    }
}

/// The shared, readable side of the view.
pub(crate) type MemberTable = Arc<RwLock<BTreeMap<NodeId, Member>>>;

/// The membership view of one node, owned by its inbox task.
pub(crate) struct Membership {
    me: NodeId,
    my_incarnation: u64,
    settings: DetectorSettings,
    records: BTreeMap<NodeId, Record>,
    table: MemberTable,
    events: Arc<Fanout<MemberEvent>>,
    /// Another process with this node's id: its incarnation, last sequence
    /// number and fresh heartbeats counted.
    twin: Option<(u64, u64, u32)>,
    self_conflict_reported: bool,
    /// Member events that overflowed a subscriber queue, not yet counted.
    overflow: u64,
}

impl Membership {
    pub(crate) fn new(
        me: NodeId,
        my_incarnation: u64,
        settings: DetectorSettings,
        table: MemberTable,
        events: Arc<Fanout<MemberEvent>>,
    ) -> Self {
        Membership {
            me,
            my_incarnation,
            settings,
            records: BTreeMap::new(),
            table,
            events,
            twin: None,
            self_conflict_reported: false,
            overflow: 0,
        }
    }

    fn emit(&mut self, event: MemberEvent) {
        tracing::info!(node = %self.me, ?event, "membership change");
        self.overflow += self.events.send_all(&[event]);
    }

    /// Member events dropped for full subscriber queues since the last call.
    pub(crate) fn take_overflow(&mut self) -> u64 {
        std::mem::take(&mut self.overflow)
    }

    /// Whether `node` is known and failed or left.
    pub(crate) fn is_gone(&self, node: &NodeId) -> bool {
        let table = self.table.read().expect("membership lock");
        table
            .get(node)
            .is_some_and(|m| matches!(m.state, MemberState::Failed | MemberState::Left))
    }

    /// A heartbeat from `node`'s `incarnation`, with sequence number `seq`.
    pub(crate) fn heartbeat(&mut self, node: &NodeId, incarnation: u64, seq: u64, meta: NodeMeta) {
        let now = Instant::now();
        let mut table = self.table.write().expect("membership lock");
        let Some(member) = table.get_mut(node) else {
            table.insert(
                node.clone(),
                Member {
                    node: node.clone(),
                    incarnation,
                    state: MemberState::Alive,
                    meta: meta.clone(),
                    last_seen: SystemTime::now(),
                    phi: 0.0,
                },
            );
            drop(table);
            self.records.insert(
                node.clone(),
                Record {
                    detector: PhiDetector::new(now, &self.settings),
                    previous: None,
                    conflict_reported: false,
                    gone: None,
                },
            );
            return self.emit(MemberEvent::Joined {
                node: node.clone(),
                incarnation,
                meta,
            });
        };
        let gone = matches!(member.state, MemberState::Failed | MemberState::Left);
        if incarnation < member.incarnation && !gone {
            drop(table);
            return self.stale_heartbeat(node, incarnation, seq);
        }
        let record = self.records.get_mut(node).expect("every member has a record");
        if member.state != MemberState::Left {
            record.gone = None;
        }
        let mut event = None;
        if incarnation != member.incarnation {
            let previous = member.incarnation;
            record.previous = Some((previous, 0, 0));
            record.detector = PhiDetector::new(now, &self.settings);
            member.incarnation = incarnation;
            member.state = MemberState::Alive;
            event = Some(MemberEvent::Rejoined {
                node: node.clone(),
                previous,
                incarnation,
                meta: meta.clone(),
            });
        } else {
            match member.state {
                MemberState::Left => return,
                MemberState::Suspect | MemberState::Failed => {
                    member.state = MemberState::Alive;
                    record.detector = PhiDetector::new(now, &self.settings);
                    event = Some(MemberEvent::Recovered { node: node.clone() });
                }
                MemberState::Alive => record.detector.heartbeat(now, &self.settings),
            }
        }
        if member.meta != meta {
            member.meta = meta;
        }
        member.last_seen = SystemTime::now();
        member.phi = 0.0;
        drop(table);
        if let Some(event) = event {
            self.emit(event);
        }
    }

    /// A heartbeat from an incarnation older than the one tracked. The old
    /// incarnation still sending fresh heartbeats means two live processes
    /// share the node id.
    pub(crate) fn stale_heartbeat(&mut self, node: &NodeId, incarnation: u64, seq: u64) {
        let Some(record) = self.records.get_mut(node) else {
            return;
        };
        let fresh = match record.previous.as_mut() {
            Some((previous, last_seq, fresh)) if *previous == incarnation => {
                if seq <= *last_seq {
                    return;
                }
                *last_seq = seq;
                *fresh += 1;
                fresh
            }
            // An older incarnation first heard after the newer one.
            _ => &mut record.previous.insert((incarnation, seq, 1)).2,
        };
        if *fresh >= 2 && !record.conflict_reported {
            record.conflict_reported = true;
            let current = self.table.read().expect("membership lock")[node].incarnation;
            self.emit(MemberEvent::Conflict {
                node: node.clone(),
                incarnations: [incarnation, current],
            });
        }
    }

    /// A heartbeat carrying our own node id from another incarnation. A newer
    /// one is another live process at once; an older one only after two fresh
    /// heartbeats (a single late frame of our previous run is no conflict).
    pub(crate) fn conflict_with_me(&mut self, incarnation: u64, seq: u64) {
        if self.self_conflict_reported {
            return;
        }
        let conflict = if incarnation > self.my_incarnation {
            true
        } else {
            match self.twin.as_mut() {
                Some((twin, last_seq, fresh)) if *twin == incarnation => {
                    if seq > *last_seq {
                        *last_seq = seq;
                        *fresh += 1;
                    }
                    *fresh >= 2
                }
                _ => {
                    self.twin = Some((incarnation, seq, 1));
                    false
                }
            }
        };
        if conflict {
            self.self_conflict_reported = true;
            self.emit(MemberEvent::Conflict {
                node: self.me.clone(),
                incarnations: [self.my_incarnation, incarnation],
            });
        }
    }

    /// A leave frame from `node`'s `incarnation`.
    pub(crate) fn leave(&mut self, node: &NodeId, incarnation: u64) {
        let mut table = self.table.write().expect("membership lock");
        let Some(member) = table.get_mut(node) else {
            return;
        };
        if incarnation < member.incarnation || member.state == MemberState::Left {
            return;
        }
        member.incarnation = incarnation;
        member.state = MemberState::Left;
        drop(table);
        self.emit(MemberEvent::Left { node: node.clone() });
    }

    /// A presence change reported by the transport (Zenoh liveliness): an
    /// extra, faster hint beside the heartbeats, which stay the source of truth.
    ///
    /// `Gone` makes an alive peer suspect a quarter heartbeat interval later
    /// (at the next evaluation after that), unless a leave or a heartbeat
    /// arrives first: a transport may report the withdrawal ahead of the
    /// leave frame the peer sent just before (Zenoh sends declarations at a
    /// higher priority than data). The peer fails if no heartbeat of the same
    /// incarnation arrives within two heartbeat intervals, and a heartbeat
    /// before or after that brings it back (`Recovered`). A `Gone` binds to
    /// the incarnation tracked when it arrives, so it never fails a newer
    /// incarnation (which rejoins as usual); it is ignored for an unknown,
    /// failed or left peer. `Alive` changes nothing: only a heartbeat makes a
    /// peer alive.
    pub(crate) fn presence(&mut self, change: Presence) {
        let Presence::Gone(node) = change else {
            return;
        };
        let now = Instant::now();
        let table = self.table.read().expect("membership lock");
        let Some(member) = table.get(&node) else {
            return;
        };
        if !matches!(member.state, MemberState::Alive | MemberState::Suspect) {
            return;
        }
        let incarnation = member.incarnation;
        drop(table);
        let record = self.records.get_mut(&node).expect("every member has a record");
        if record.gone.is_none_or(|gone| !gone.of(incarnation)) {
            tracing::info!(node = %node, incarnation, "transport reports the peer gone");
            record.gone = Some(Gone {
                incarnation,
                suspect_at: now + self.settings.heartbeat_interval / 4,
                fail_at: now + self.settings.heartbeat_interval * 2,
            });
        }
    }

    /// Re-evaluates every peer's phi and emits the transitions.
    pub(crate) fn evaluate(&mut self) {
        let now = Instant::now();
        let mut events = Vec::new();
        let mut table = self.table.write().expect("membership lock");
        for (node, record) in &self.records {
            let Some(member) = table.get_mut(node) else {
                continue;
            };
            if matches!(member.state, MemberState::Left | MemberState::Failed) {
                continue;
            }
            let phi = record.detector.phi(now, &self.settings);
            member.phi = phi;
            let gone = record.gone.filter(|gone| gone.of(member.incarnation));
            let gone_suspect = gone.is_some_and(|gone| now >= gone.suspect_at);
            if member.state == MemberState::Alive && (phi >= self.settings.suspect_phi || gone_suspect) {
                member.state = MemberState::Suspect;
                events.push(MemberEvent::Suspect {
                    node: node.clone(),
                    phi,
                });
            }
            let gone_expired = gone.is_some_and(|gone| now >= gone.fail_at);
            if member.state == MemberState::Suspect && (phi >= self.settings.phi_threshold || gone_expired) {
                member.state = MemberState::Failed;
                let silent = now.saturating_duration_since(record.detector.last());
                tracing::warn!(
                    node = %node,
                    silent_ms = silent.as_millis() as u64,
                    reported_gone = gone_expired,
                    "peer failed"
                );
                events.push(MemberEvent::Failed { node: node.clone() });
            }
        }
        drop(table);
        for event in events {
            self.emit(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::{FutureExt, StreamExt};

    use super::*;
    use crate::engine::fanout::Feed;
    use crate::membership::config::Profile;

    struct Observer {
        view: Membership,
        feed: Feed<MemberEvent>,
        settings: DetectorSettings,
        seq: u64,
    }

    fn node(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    impl Observer {
        fn new() -> Self {
            let settings = DetectorSettings::of(Profile::Fast);
            let events = Arc::new(Fanout::new(64));
            let feed = events.subscribe();
            let table = Arc::new(RwLock::new(BTreeMap::new()));
            Observer {
                view: Membership::new(node("me"), 1, settings.clone(), table, events),
                feed,
                settings,
                seq: 0,
            }
        }

        fn heartbeat(&mut self, name: &str, incarnation: u64) {
            self.seq += 1;
            self.view
                .heartbeat(&node(name), incarnation, self.seq, NodeMeta::default());
        }

        /// `n` heartbeats of `name`, one interval apart, evaluating as the engine does.
        async fn regular(&mut self, name: &str, incarnation: u64, n: usize) {
            for _ in 0..n {
                self.heartbeat(name, incarnation);
                tokio::time::advance(self.settings.heartbeat_interval).await;
                self.view.evaluate();
            }
        }

        /// Time passes, evaluated every quarter interval.
        async fn wait(&mut self, duration: Duration) {
            let step = self.settings.heartbeat_interval / 4;
            let mut waited = Duration::ZERO;
            while waited < duration {
                tokio::time::advance(step).await;
                self.view.evaluate();
                waited += step;
            }
        }

        fn gone(&mut self, name: &str) {
            self.view.presence(Presence::Gone(node(name)));
        }

        fn state(&self, name: &str) -> Option<MemberState> {
            self.view.table.read().unwrap().get(&node(name)).map(|m| m.state)
        }

        /// The kinds of the events emitted so far.
        fn events(&mut self) -> Vec<&'static str> {
            let mut kinds = Vec::new();
            while let Some(Some(event)) = self.feed.next().now_or_never() {
                kinds.push(event.kind());
            }
            kinds
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gone_makes_a_live_peer_suspect_a_quarter_interval_later_and_failed_after_two_intervals() {
        let mut o = Observer::new();
        o.regular("b", 7, 20).await;
        assert_eq!(o.events(), ["joined"]);
        o.gone("b");
        o.view.evaluate();
        assert_eq!(
            o.state("b"),
            Some(MemberState::Alive),
            "a leave in flight may still come"
        );
        o.wait(o.settings.heartbeat_interval / 4).await;
        assert_eq!(o.state("b"), Some(MemberState::Suspect), "a quarter interval later");
        assert_eq!(o.events(), ["suspect"]);
        o.wait(o.settings.heartbeat_interval * 5 / 4).await;
        assert_eq!(o.state("b"), Some(MemberState::Suspect), "not before two intervals");
        o.wait(o.settings.heartbeat_interval / 2).await;
        assert_eq!(o.state("b"), Some(MemberState::Failed));
        assert!(
            o.settings.heartbeat_interval * 3 < o.settings.expected_detection(),
            "faster than the heartbeats alone"
        );
        o.wait(o.settings.expected_detection() * 2).await;
        assert_eq!(o.events(), ["failed"], "failed once, whatever phi says later");
        o.heartbeat("b", 7);
        assert_eq!(o.state("b"), Some(MemberState::Alive));
        assert_eq!(o.events(), ["recovered"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leave_right_after_gone_is_left_without_suspect() {
        let mut o = Observer::new();
        o.regular("b", 7, 20).await;
        o.gone("b");
        o.view.leave(&node("b"), 7);
        o.wait(o.settings.heartbeat_interval * 4).await;
        assert_eq!(o.state("b"), Some(MemberState::Left));
        assert_eq!(o.events(), ["joined", "left"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_after_gone_recovers_and_clears_the_deadline() {
        let mut o = Observer::new();
        o.regular("b", 7, 20).await;
        o.gone("b");
        o.wait(o.settings.heartbeat_interval / 2).await;
        o.heartbeat("b", 7);
        assert_eq!(o.state("b"), Some(MemberState::Alive));
        o.regular("b", 7, 10).await;
        assert_eq!(o.state("b"), Some(MemberState::Alive), "the old deadline is void");
        assert_eq!(o.events(), ["joined", "suspect", "recovered"]);
    }

    #[tokio::test(start_paused = true)]
    async fn gone_of_a_suspect_peer_fails_it_early_and_repeats_change_nothing() {
        let mut o = Observer::new();
        o.regular("b", 7, 20).await;
        while o.state("b") == Some(MemberState::Alive) {
            o.wait(o.settings.heartbeat_interval / 4).await;
        }
        assert_eq!(o.events(), ["joined", "suspect"]);
        o.gone("b");
        o.gone("b");
        assert_eq!(o.events(), Vec::<&str>::new(), "already suspect");
        o.wait(o.settings.heartbeat_interval * 2).await;
        assert_eq!(o.state("b"), Some(MemberState::Failed));
        o.gone("b");
        assert_eq!(o.events(), ["failed"], "gone of a failed peer is ignored");
    }

    #[tokio::test(start_paused = true)]
    async fn gone_never_fails_a_newer_incarnation() {
        let mut o = Observer::new();
        o.regular("b", 7, 20).await;
        o.gone("b");
        // The node restarted: its new incarnation is heard before the deadline.
        o.heartbeat("b", 8);
        assert_eq!(o.state("b"), Some(MemberState::Alive));
        o.regular("b", 8, 10).await;
        assert_eq!(o.state("b"), Some(MemberState::Alive));
        assert_eq!(o.events(), ["joined", "rejoined"]);
        let incarnation = o.view.table.read().unwrap()[&node("b")].incarnation;
        assert_eq!(incarnation, 8);
    }

    #[tokio::test(start_paused = true)]
    async fn gone_is_ignored_after_left_for_unknown_peers_and_alive_changes_nothing() {
        let mut o = Observer::new();
        o.regular("b", 7, 5).await;
        o.view.leave(&node("b"), 7);
        o.gone("b");
        o.gone("stranger");
        o.view.presence(Presence::Alive(node("stranger")));
        o.wait(o.settings.heartbeat_interval * 4).await;
        assert_eq!(o.state("b"), Some(MemberState::Left));
        assert_eq!(o.state("stranger"), None, "only a heartbeat makes a member");
        assert_eq!(o.events(), ["joined", "left"]);
    }
}
