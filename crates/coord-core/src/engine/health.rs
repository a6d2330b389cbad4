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
    /// Time since the last probe came back through the transport.
    pub probe_age: Option<Duration>,
    /// Round trip of the last probe.
    pub probe_rtt: Option<Duration>,
    /// The node's counters.
    pub stats: StatsSnapshot,
}

/// Probe bookkeeping shared by the outbox (sends) and inbox (receives).
#[derive(Debug)]
pub(crate) struct ProbeState {
    inner: Mutex<ProbeTimes>,
}

#[derive(Debug)]
struct ProbeTimes {
    sent: Option<(u64, Instant)>,
    last_ok: Instant,
    rtt: Option<Duration>,
    seen_any: bool,
}

impl ProbeState {
    pub(crate) fn new() -> Self {
        ProbeState {
            inner: Mutex::new(ProbeTimes {
                sent: None,
                last_ok: Instant::now(),
                rtt: None,
                seen_any: false,
            }),
        }
    }

    pub(crate) fn sent(&self, nonce: u64) {
        self.inner.lock().expect("probe lock").sent = Some((nonce, Instant::now()));
    }

    /// A probe came back.
    pub(crate) fn returned(&self, nonce: u64) {
        let mut p = self.inner.lock().expect("probe lock");
        let now = Instant::now();
        if let Some((sent_nonce, at)) = p.sent {
            if sent_nonce == nonce {
                p.rtt = Some(now - at);
            }
        }
        p.last_ok = now;
        p.seen_any = true;
    }

    /// Restarts the grace period (after re-making subscriptions).
    pub(crate) fn reset(&self) {
        self.inner.lock().expect("probe lock").last_ok = Instant::now();
    }

    /// Time since the last probe came back (or since start / the last reset).
    pub(crate) fn age(&self) -> Duration {
        self.inner.lock().expect("probe lock").last_ok.elapsed()
    }

    pub(crate) fn report(&self) -> (Option<Duration>, Option<Duration>) {
        let p = self.inner.lock().expect("probe lock");
        (p.seen_any.then(|| p.last_ok.elapsed()), p.rtt)
    }
}
