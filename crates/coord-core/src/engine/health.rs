//! The node's health: transport status plus the end-to-end probe.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::stats::StatsSnapshot;
use crate::transport::TransportHealth;

/// Overall status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// Connected, and probes go through end to end.
    Healthy,
    /// Connected, but probes have not come back lately.
    Degraded,
    /// The transport is disconnected, or the node was shut down.
    Down,
}

/// A health snapshot.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Health {
    /// Overall status.
    pub status: HealthStatus,
    /// The backend's name.
    pub backend: &'static str,
    /// What the transport reports.
    pub transport: TransportHealth,
    /// Time since frames were last proven to flow end to end on every
    /// channel the node listens to (`None` until they have been).
    pub probe_age: Option<Duration>,
    /// Round trip of the last probe.
    pub probe_rtt: Option<Duration>,
    /// The node's counters.
    pub stats: StatsSnapshot,
}

/// Proof that frames flow end to end, on both channels a node listens to:
/// its probes come back on its own channel, and its heartbeats come back on
/// the broadcast channel (transports deliver a node's frames to its own
/// subscriptions too). Written by the outbox (sends) and inbox (receives).
#[derive(Debug)]
pub(crate) struct ProbeState {
    inner: Mutex<ProbeTimes>,
}

#[derive(Debug)]
struct ProbeTimes {
    started: Instant,
    sent: Option<(u64, Instant)>,
    /// When a probe last came back.
    probe_ok: Option<Instant>,
    /// When an own heartbeat last came back on the broadcast channel.
    echo_ok: Option<Instant>,
    rtt: Option<Duration>,
}

impl ProbeTimes {
    /// When both paths had last proven themselves (the start until they have).
    fn proven_at(&self) -> Instant {
        match (self.probe_ok, self.echo_ok) {
            (Some(probe), Some(echo)) => probe.min(echo),
            _ => self.started,
        }
    }
}

impl ProbeState {
    pub(crate) fn new() -> Self {
        ProbeState {
            inner: Mutex::new(ProbeTimes {
                started: Instant::now(),
                sent: None,
                probe_ok: None,
                echo_ok: None,
                rtt: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProbeTimes> {
        self.inner.lock().expect("probe lock")
    }

    pub(crate) fn sent(&self, nonce: u64) {
        self.lock().sent = Some((nonce, Instant::now()));
    }

    /// A probe came back on this node's own channel.
    pub(crate) fn returned(&self, nonce: u64) {
        let mut p = self.lock();
        let now = Instant::now();
        if let Some((sent_nonce, at)) = p.sent {
            if sent_nonce == nonce {
                p.rtt = Some(now - at);
            }
        }
        p.probe_ok = Some(now);
    }

    /// An own heartbeat came back on the broadcast channel.
    pub(crate) fn echoed(&self) {
        self.lock().echo_ok = Some(Instant::now());
    }

    /// Time since both paths last proved themselves (since start if they
    /// never have).
    pub(crate) fn silence(&self) -> Duration {
        self.lock().proven_at().elapsed()
    }

    /// The age of the proof (once there is one) and the last probe round trip.
    pub(crate) fn report(&self) -> (Option<Duration>, Option<Duration>) {
        let p = self.lock();
        let proven = p.probe_ok.is_some() && p.echo_ok.is_some();
        (proven.then(|| p.proven_at().elapsed()), p.rtt)
    }
}
