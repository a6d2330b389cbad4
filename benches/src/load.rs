//! The load driver both halves share: one sink sends stamped 64-byte
//! messages, one task per receiver counts them and, while a latency run is
//! on, records each one's one-way latency. Sender and receivers run in one
//! process, so send and receive times come from one monotonic clock.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::stats::{Spread, quantile};
use crate::{Error, Latency, Options, Throughput};

/// The size of every message and event payload.
pub const EVENT_BYTES: usize = 64;

/// The tag of messages sent for throughput (no latency recorded).
const BULK: u8 = 0;

/// What a receiver hands the driver: the payload of each message.
pub(crate) type Payloads = BoxStream<'static, Bytes>;

/// The sending side of a client under test.
pub(crate) trait Sink: Send {
    /// Sends (or, for a batching client, queues) one message.
    fn send(&mut self, payload: Bytes) -> BoxFuture<'_, Result<(), Error>>;
    /// Pushes out what a batching client has queued; a no-op otherwise.
    fn flush(&mut self) -> BoxFuture<'_, Result<(), Error>>;
}

/// Nanoseconds since the first call, on the monotonic clock.
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A message: sequence number, send time (only where latency is recorded:
/// a clock read per message would weigh on the throughput runs), tag, zero
/// padding to 64 bytes.
fn stamped(seq: u64, tag: u8) -> Bytes {
    let mut buf = [0u8; EVENT_BYTES];
    buf[..8].copy_from_slice(&seq.to_be_bytes());
    if tag != BULK {
        buf[8..16].copy_from_slice(&now_ns().to_be_bytes());
    }
    buf[16] = tag;
    Bytes::copy_from_slice(&buf)
}

/// One receiver's counters.
#[derive(Default)]
struct Tally {
    /// Messages received in all.
    count: AtomicU64,
    /// The tag whose latencies are being recorded (0: none).
    recording: AtomicU8,
    /// Latencies of the recorded tag, in nanoseconds.
    samples: Mutex<Vec<u64>>,
}

impl Tally {
    fn take(&self, payload: &[u8]) {
        if let Some(tag) = payload.get(16).copied()
            && tag != BULK
            && tag == self.recording.load(Ordering::Relaxed)
        {
            let sent = u64::from_be_bytes(payload[8..16].try_into().expect("8 bytes"));
            let latency = now_ns().saturating_sub(sent);
            self.samples.lock().expect("samples lock").push(latency);
        }
        self.count.fetch_add(1, Ordering::Release);
    }
}

/// Bounds of one throughput run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Burst {
    /// Messages to send.
    pub(crate) events: u64,
    /// Longest the sending may take; what was sent by then counts.
    pub(crate) max_time: Duration,
    /// Most messages sent and not yet received by every receiver.
    pub(crate) window: u64,
    /// Messages between two flushes.
    pub(crate) flush_every: u64,
}

/// What one throughput run measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rate {
    /// Messages received per second by each receiver (the slowest).
    pub(crate) per_s: f64,
    /// The share of sent messages the slowest receiver got.
    pub(crate) delivered: f64,
}

/// One-way latencies of one paced run, in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Percentiles {
    pub(crate) p50: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) samples: usize,
}

/// No message for this long: what was sent and not received is lost.
const IDLE: Duration = Duration::from_secs(2);

/// A sink and its receivers, measured together.
pub(crate) struct Rig {
    sink: Box<dyn Sink>,
    tallies: Vec<Arc<Tally>>,
    readers: Vec<JoinHandle<()>>,
    seq: u64,
    next_tag: u8,
}

impl Rig {
    /// Starts a reader task per receiver.
    pub(crate) fn new(sink: Box<dyn Sink>, receivers: Vec<Payloads>) -> Rig {
        let tallies: Vec<Arc<Tally>> = receivers.iter().map(|_| Arc::default()).collect();
        let readers = receivers
            .into_iter()
            .zip(&tallies)
            .map(|(mut stream, tally)| {
                let tally = tally.clone();
                tokio::spawn(async move {
                    while let Some(payload) = stream.next().await {
                        tally.take(&payload);
                    }
                })
            })
            .collect();
        Rig {
            sink,
            tallies,
            readers,
            seq: 0,
            next_tag: 1,
        }
    }

    fn counts(&self) -> Vec<u64> {
        self.tallies.iter().map(|t| t.count.load(Ordering::Acquire)).collect()
    }

    /// The fewest messages any receiver got since `base`.
    fn slowest_since(&self, base: &[u64]) -> u64 {
        self.counts()
            .iter()
            .zip(base)
            .map(|(now, then)| now - then)
            .min()
            .unwrap_or(0)
    }

    async fn send(&mut self, tag: u8) -> Result<(), Error> {
        self.seq += 1;
        self.sink.send(stamped(self.seq, tag)).await
    }

    /// Waits until every receiver got `sent` messages since `base`, or none
    /// came for [`IDLE`]; returns the count then and when the last came.
    async fn drain(&self, base: &[u64], sent: u64) -> (u64, Instant) {
        let mut last = (self.slowest_since(base), Instant::now());
        loop {
            let got = self.slowest_since(base);
            if got != last.0 {
                last = (got, Instant::now());
            }
            if got >= sent || last.1.elapsed() > IDLE {
                return last;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Sends as fast as the sink and the window allow; the rate is what the
    /// slowest receiver got, over the time from the first send to its last
    /// receive.
    pub(crate) async fn throughput(&mut self, burst: Burst) -> Result<Rate, Error> {
        let base = self.counts();
        let started = Instant::now();
        let mut sent = 0u64;
        // The clock is read every 256 messages only.
        while sent < burst.events && (!sent.is_multiple_of(256) || started.elapsed() < burst.max_time) {
            if sent - self.slowest_since(&base).min(sent) > burst.window {
                let waited = Instant::now();
                while sent - self.slowest_since(&base).min(sent) > burst.window / 2 {
                    if waited.elapsed() > IDLE {
                        return Err(Error::Stalled(format!(
                            "receivers stopped at {} of {sent} messages",
                            self.slowest_since(&base)
                        )));
                    }
                    // A timer, not a spin: the servers under test need the cores.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            self.send(BULK).await?;
            sent += 1;
            if sent.is_multiple_of(burst.flush_every) {
                self.sink.flush().await?;
            }
        }
        self.sink.flush().await?;
        let (got, at) = self.drain(&base, sent).await;
        let seconds = at.duration_since(started).as_secs_f64().max(1e-6);
        Ok(Rate {
            per_s: got as f64 / seconds,
            delivered: if sent == 0 { 0.0 } else { got as f64 / sent as f64 },
        })
    }

    /// Sends `rate` messages a second for `duration`, paced in 1 ms ticks
    /// (the messages due in a tick go out together, as a bursty application
    /// would send them), and returns the one-way latency percentiles of every
    /// receiver's samples together.
    pub(crate) async fn latency(&mut self, rate: f64, duration: Duration) -> Result<Percentiles, Error> {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        for tally in &self.tallies {
            tally.samples.lock().expect("samples lock").clear();
            tally.recording.store(tag, Ordering::Relaxed);
        }
        let base = self.counts();
        let total = (rate * duration.as_secs_f64()).ceil().max(1.0) as u64;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let started = Instant::now();
        let mut sent = 0u64;
        while sent < total && started.elapsed() < duration * 2 {
            tick.tick().await;
            let due = ((started.elapsed().as_secs_f64() * rate) as u64).clamp(1, total);
            while sent < due {
                self.send(tag).await?;
                sent += 1;
            }
            self.sink.flush().await?;
        }
        self.drain(&base, sent).await;
        let mut samples = Vec::new();
        for tally in &self.tallies {
            tally.recording.store(0, Ordering::Relaxed);
            samples.append(&mut tally.samples.lock().expect("samples lock"));
        }
        samples.sort_unstable();
        Ok(Percentiles {
            p50: quantile(&samples, 0.5),
            p99: quantile(&samples, 0.99),
            p999: quantile(&samples, 0.999),
            samples: samples.len(),
        })
    }
}

/// A warm-up run (a tenth of the events, not counted), then the
/// repetitions; their median and spread.
pub(crate) async fn throughput(rig: &mut Rig, options: &Options, burst: Burst) -> Result<Throughput, Error> {
    rig.throughput(Burst {
        events: (burst.events / 10).max(1),
        ..burst
    })
    .await?;
    let mut rates = Vec::new();
    let mut delivered = 1.0f64;
    for _ in 0..options.repetitions() {
        let rate = rig.throughput(burst).await?;
        rates.push(rate.per_s);
        delivered = delivered.min(rate.delivered);
    }
    let bytes: Vec<f64> = rates.iter().map(|r| r * EVENT_BYTES as f64).collect();
    Ok(Throughput {
        per_s: Spread::of(&rates),
        bytes_per_s: Spread::of(&bytes),
        delivered,
    })
}

/// Latency at 10 % and 50 % of `max_rate`, each repeated.
pub(crate) async fn latencies(rig: &mut Rig, options: &Options, max_rate: f64) -> Result<Vec<Latency>, Error> {
    let mut out = Vec::new();
    for load in [0.1, 0.5] {
        let rate = max_rate * load;
        let (mut p50, mut p99, mut p999, mut samples) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for _ in 0..options.repetitions() {
            let run = rig.latency(rate, options.latency_time()).await?;
            p50.push(run.p50 as f64 / 1e3);
            p99.push(run.p99 as f64 / 1e3);
            p999.push(run.p999 as f64 / 1e3);
            samples += run.samples;
        }
        out.push(Latency {
            load,
            rate,
            p50_us: Spread::of(&p50),
            p99_us: Spread::of(&p99),
            p999_us: Spread::of(&p999),
            samples,
        });
    }
    Ok(out)
}

impl Drop for Rig {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_64_bytes_and_carries_its_tag() {
        let payload = stamped(7, 3);
        assert_eq!(payload.len(), EVENT_BYTES);
        assert_eq!(u64::from_be_bytes(payload[..8].try_into().unwrap()), 7);
        let tally = Tally::default();
        tally.recording.store(3, Ordering::Relaxed);
        tally.take(&payload);
        tally.take(&stamped(8, BULK));
        assert_eq!(tally.count.load(Ordering::Relaxed), 2);
        assert_eq!(tally.samples.lock().unwrap().len(), 1);
    }
}
