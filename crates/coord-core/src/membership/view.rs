//! The membership view one observer keeps, and the events it emits.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio::time::Instant;

use super::config::DetectorSettings;
use super::detector::PhiDetector;
use crate::engine::fanout::{Fanout, Missed};
use crate::identity::NodeId;
use crate::wire::NodeMeta;

/// A peer's state as this observer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// Heartbeats arrive as expected.
    Alive,
    /// Heartbeats are late (phi above `suspect-phi`).
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
            if member.state == MemberState::Alive && phi >= self.settings.suspect_phi {
                member.state = MemberState::Suspect;
                events.push(MemberEvent::Suspect {
                    node: node.clone(),
                    phi,
                });
            }
            if member.state == MemberState::Suspect && phi >= self.settings.phi_threshold {
                member.state = MemberState::Failed;
                let silent = now.saturating_duration_since(record.detector.last());
                tracing::warn!(node = %node, silent_ms = silent.as_millis() as u64, "peer failed");
                events.push(MemberEvent::Failed { node: node.clone() });
            }
        }
        drop(table);
        for event in events {
            self.emit(event);
        }
    }
}
