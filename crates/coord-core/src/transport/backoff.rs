//! Bounded exponential backoff with jitter, for every reconnect and retry loop.

use std::time::Duration;

use rand::Rng;

/// Delays that double from `initial` up to `max`, each with up to 50 % random
/// jitter subtracted, so a fleet of nodes does not retry in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// A backoff from `initial` doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            current: initial,
        }
    }

    /// The next delay to wait.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        jittered(base)
    }

    /// The delay before retry number `attempt` (1 for the first retry), for
    /// clients that count attempts themselves: `initial · 2^(attempt-1)`,
    /// bounded by `max`, with the same jitter as [`Backoff::next_delay`].
    pub fn delay_for_attempt(&self, attempt: usize) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32) as u32;
        let base = self.initial.saturating_mul(1u32 << doublings.min(31)).min(self.max);
        jittered(base)
    }

    /// Starts again from `initial` (after a success).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

/// `base` less up to 50 % random jitter.
fn jittered(base: Duration) -> Duration {
    let jitter = rand::rng().random_range(0.0..0.5);
    base.mul_f64(1.0 - jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_bounded() {
        let max = Duration::from_secs(2);
        let mut b = Backoff::new(Duration::from_millis(10), max);
        let delays: Vec<_> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays[0] <= Duration::from_millis(10));
        assert!(delays[0] >= Duration::from_millis(5));
        assert!(delays.iter().all(|d| *d <= max));
        assert!(delays[19] >= max / 2, "reaches the bound: {:?}", delays[19]);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(10));
    }

    #[test]
    fn attempts_double_up_to_the_bound() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(2));
        assert!(b.delay_for_attempt(1) <= Duration::from_millis(10));
        let third = b.delay_for_attempt(3);
        assert!(
            third >= Duration::from_millis(20) && third <= Duration::from_millis(40),
            "{third:?}"
        );
        for attempt in [20, 1000, usize::MAX] {
            let delay = b.delay_for_attempt(attempt);
            assert!(
                delay <= Duration::from_secs(2) && delay >= Duration::from_secs(1),
                "{attempt}: {delay:?}"
            );
        }
    }
}
