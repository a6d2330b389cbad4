//! Link state: whether the session has peers, since when, how often links
//! came back; a background task polls the session and marks every
//! subscription `Lagged` when a peer it knew reconnects.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use coord_core::transport::TransportHealth;
use zenoh::Wait;
use zenoh::session::ZenohId;

use crate::inlet::Inlet;

/// How often the session's peers are polled.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// What the monitor knows of the session's links.
pub(crate) struct Links {
    state: Mutex<State>,
    /// Every live subscription, to mark `Lagged` on reconnects.
    inlets: Mutex<Vec<Weak<Inlet>>>,
    /// Said when no peer is connected.
    alone: String,
}

struct State {
    connected: bool,
    since: SystemTime,
    reconnects: u64,
    current: HashSet<ZenohId>,
    /// Peers ever connected: one seen again has reconnected.
    known: HashSet<ZenohId>,
    detail: String,
}

impl Links {
    /// Link state of a session just opened with `connect` endpoints.
    pub(crate) fn new(connect: &[String], multicast: bool) -> Arc<Links> {
        let alone = format!(
            "no Zenoh peer connected (connect: [{}], multicast scouting {})",
            connect.join(", "),
            if multicast { "on" } else { "off" }
        );
        Arc::new(Links {
            state: Mutex::new(State {
                connected: false,
                since: SystemTime::now(),
                reconnects: 0,
                current: HashSet::new(),
                known: HashSet::new(),
                detail: alone.clone(),
            }),
            inlets: Mutex::new(Vec::new()),
            alone,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a subscription for reconnect `Lagged` markers.
    pub(crate) fn register(&self, inlet: &Arc<Inlet>) {
        let mut inlets = self.inlets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inlets.retain(|weak| weak.strong_count() > 0);
        inlets.push(Arc::downgrade(inlet));
    }

    /// Reads the session's peers and routers once and updates the state.
    pub(crate) fn poll(&self, session: &zenoh::Session) {
        let info = session.info();
        let now: HashSet<ZenohId> = info.peers_zid().wait().chain(info.routers_zid().wait()).collect();
        let mut state = self.state();
        let returned = now
            .iter()
            .any(|zid| !state.current.contains(zid) && state.known.contains(zid));
        let connected = !now.is_empty();
        if connected != state.connected {
            state.connected = connected;
            state.since = SystemTime::now();
            if !connected {
                state.detail = if state.known.is_empty() {
                    self.alone.clone()
                } else {
                    format!("lost every Zenoh peer; {}", self.alone)
                };
            }
        }
        if returned {
            state.reconnects += 1;
        }
        state.known.extend(now.iter().copied());
        state.current = now;
        drop(state);
        if returned {
            tracing::info!("a zenoh peer reconnected: marking subscriptions lagged");
            let inlets = self.inlets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for inlet in inlets.iter().filter_map(Weak::upgrade) {
                inlet.lagged();
            }
        }
    }

    /// The health as last polled.
    pub(crate) fn health(&self) -> TransportHealth {
        let state = self.state();
        if state.connected {
            TransportHealth::up(state.reconnects, state.since)
        } else {
            TransportHealth::down(state.detail.clone(), state.reconnects, state.since)
        }
    }

    /// Whether some peer or router is connected, as last polled.
    pub(crate) fn connected(&self) -> bool {
        self.state().connected
    }

    /// Marks the session closed.
    pub(crate) fn close(&self) {
        let mut state = self.state();
        state.connected = false;
        state.since = SystemTime::now();
        state.detail = "the zenoh transport is closed".to_owned();
    }
}
