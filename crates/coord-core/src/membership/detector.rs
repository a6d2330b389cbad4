//! The phi-accrual failure detector (Hayashibara et al., 2004), one per peer.
//!
//! It keeps a window of recent heartbeat inter-arrival times and, at any
//! moment, computes `phi = -log10(P(a heartbeat arrives later than now))`
//! under a normal distribution with the window's mean (plus the acceptable
//! pause) and standard deviation (at least `min_std_dev`). Phi 1 means a 10 %
//! chance the peer is still alive and merely late, phi 8 one in 10^8. The
//! normal tail uses the logistic approximation also used by Akka and Cassandra.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::config::DetectorSettings;

/// Arrival statistics of one peer.
#[derive(Clone, Debug)]
pub(crate) struct PhiDetector {
    intervals: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    last: Instant,
}

impl PhiDetector {
    /// A detector whose first heartbeat arrived at `now`; until real intervals
    /// arrive it assumes the configured interval with a quarter of it as spread.
    pub(crate) fn new(now: Instant, settings: &DetectorSettings) -> Self {
        let mut detector = PhiDetector {
            intervals: VecDeque::with_capacity(settings.window),
            sum: 0.0,
            sum_sq: 0.0,
            last: now,
        };
        let interval = settings.heartbeat_interval.as_secs_f64() * 1000.0;
        detector.push(interval - interval / 4.0, settings.window);
        detector.push(interval + interval / 4.0, settings.window);
        detector
    }

    fn push(&mut self, interval_ms: f64, window: usize) {
        if self.intervals.len() >= window {
            if let Some(old) = self.intervals.pop_front() {
                self.sum -= old;
                self.sum_sq -= old * old;
            }
        }
        self.intervals.push_back(interval_ms);
        self.sum += interval_ms;
        self.sum_sq += interval_ms * interval_ms;
    }

    /// Records a heartbeat arriving at `now`.
    pub(crate) fn heartbeat(&mut self, now: Instant, settings: &DetectorSettings) {
        let interval = now.saturating_duration_since(self.last).as_secs_f64() * 1000.0;
        self.last = now;
        self.push(interval, settings.window);
    }

    /// When the last heartbeat arrived.
    pub(crate) fn last(&self) -> Instant {
        self.last
    }

    /// Phi at `now`.
    pub(crate) fn phi(&self, now: Instant, settings: &DetectorSettings) -> f64 {
        let n = self.intervals.len() as f64;
        let mean = self.sum / n;
        let variance = (self.sum_sq / n - mean * mean).max(0.0);
        let std_dev = variance.sqrt().max(ms(settings.min_std_dev));
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64() * 1000.0;
        phi(elapsed, mean + ms(settings.acceptable_pause), std_dev)
    }
}

impl DetectorSettings {
    /// Silence after a peer's last heartbeat until it is reported failed,
    /// when its earlier heartbeats were perfectly regular (the detector's
    /// fastest verdict; irregular arrivals make it later).
    pub fn expected_detection(&self) -> Duration {
        let mean = ms(self.heartbeat_interval) + ms(self.acceptable_pause);
        let std_dev = ms(self.min_std_dev);
        let mut elapsed = mean;
        while phi(elapsed, mean, std_dev) < self.phi_threshold {
            elapsed += 1.0;
        }
        Duration::from_millis(elapsed as u64)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Phi of a silence of `elapsed` ms given the mean and standard deviation of
/// arrivals, with the logistic approximation of the normal tail.
pub(crate) fn phi(elapsed: f64, mean: f64, std_dev: f64) -> f64 {
    let y = (elapsed - mean) / std_dev;
    // P(later) = 1 / (1 + e^a); phi = log10(1 + e^a), computed without overflow.
    let a = y * (1.5976 + 0.070566 * y * y);
    (a.max(0.0) + (-a.abs()).exp().ln_1p()) / std::f64::consts::LN_10
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::config::Profile;

    #[test]
    fn phi_grows_with_silence() {
        assert!(phi(0.0, 100.0, 10.0) < 0.01);
        assert!(
            (phi(100.0, 100.0, 10.0) - 0.301).abs() < 0.01,
            "half chance at the mean"
        );
        let mut last = 0.0;
        for elapsed in [110.0, 130.0, 150.0, 200.0, 400.0, 10_000.0] {
            let p = phi(elapsed, 100.0, 10.0);
            assert!(p > last, "phi({elapsed}) = {p}");
            assert!(p.is_finite());
            last = p;
        }
    }

    #[test]
    fn fast_profile_fails_a_silent_peer_in_about_a_second() {
        let settings = DetectorSettings::of(Profile::Fast);
        let start = Instant::now();
        let mut d = PhiDetector::new(start, &settings);
        let mut t = start;
        for _ in 0..50 {
            t += settings.heartbeat_interval;
            d.heartbeat(t, &settings);
        }
        let after = |ms: u64| d.phi(t + Duration::from_millis(ms), &settings);
        assert!(
            after(300) < settings.suspect_phi,
            "no alarm inside the acceptable pause"
        );
        assert!(
            after(1000) >= settings.phi_threshold,
            "failed within a second of silence"
        );
    }
}
