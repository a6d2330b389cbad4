//! Side-by-side benchmarks of coord and the backends' own clients.
//!
//! A plain harness, not criterion or divan: what is measured is end to end
//! (a sender task, receiver tasks, a server process, the network stack) and
//! open loop at set rates, with figures that only mean something as ratios
//! taken in one run. Criterion's and divan's model (a closure timed over
//! many iterations on one thread, its own statistics) fits neither, and the
//! coord half must also run from `coordctl bench` against any server, so the
//! measurement lives in this library and the binary only chooses backends.
//!
//! - [`coord_half`]: the full coord stack (encode, seal, batch, publish,
//!   receive, verify, decode, dispatch) on any backend URI: one sender, two
//!   receivers; throughput, latency at 10 % and 50 % of the measured
//!   maximum, crash detection and control traffic per profile, and the peak
//!   RSS of a node with a stalled receiver.
//! - [`raw_half`]: the backend's own client with 64-byte messages, unbatched
//!   and with its own batching or pipelining.
//! - [`markdown`]: the table of [`BackendReport`]s, with the coord/raw ratios.

mod coord_side;
mod load;
mod raw;
mod report;
mod stats;

use std::ffi::OsString;
use std::time::Duration;

pub use coord_side::{coord_half, stalled_node};
pub use load::EVENT_BYTES;
pub use raw::raw_half;
pub use report::{BackendReport, markdown};
pub use stats::Spread;

use serde::Serialize;

/// What can stop a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// coord itself failed (start, send, shutdown).
    #[error("coord: {0}")]
    Coord(#[from] coord::Error),
    /// A raw client failed.
    #[error("{client}: {message}")]
    Client {
        /// The client: `async-nats`, `redis-rs`, `rdkafka`, `zenoh`.
        client: &'static str,
        /// What went wrong.
        message: String,
    },
    /// Receivers stopped receiving, or nodes did not see each other in time.
    #[error("stalled: {0}")]
    Stalled(String),
    /// The helper process of the memory measurement failed.
    #[error("stalled-receiver helper: {0}")]
    Helper(String),
    /// The URI names no backend this benchmark knows.
    #[error("unsupported backend URI `{0}`")]
    Unsupported(String),
}

impl Error {
    pub(crate) fn client(client: &'static str, error: impl std::fmt::Display) -> Error {
        Error::Client {
            client,
            message: error.to_string(),
        }
    }
}

/// How long and how often to measure.
#[derive(Clone, Debug)]
pub struct Options {
    /// Short runs and fewer repetitions (about a minute per backend).
    pub quick: bool,
    /// Events per throughput run (default 300,000 quick, 1,000,000 full).
    pub events: Option<u64>,
    /// Events sent to the node with the stalled receiver (default 1,000,000).
    pub stalled_events: u64,
    /// The URI of the nodes other than the sender, when they need another
    /// one (Zenoh peers: the sender listens, the others connect to it).
    pub peer_uri: Option<String>,
    /// The command line (program and leading arguments) of a process that
    /// runs [`stalled_node`] with the URI, node id and namespace appended;
    /// without it the memory figure is not measured. `coord-bench` passes
    /// itself with `stalled-node`.
    pub stalled_helper: Option<Vec<OsString>>,
}

impl Options {
    /// The quick (`true`) or full settings, with no helper and no peer URI.
    pub fn new(quick: bool) -> Options {
        Options {
            quick,
            events: None,
            stalled_events: 1_000_000,
            peer_uri: None,
            stalled_helper: None,
        }
    }

    pub(crate) fn events(&self) -> u64 {
        self.events.unwrap_or(if self.quick { 300_000 } else { 1_000_000 })
    }

    pub(crate) fn repetitions(&self) -> usize {
        if self.quick { 3 } else { 5 }
    }

    /// How long each paced latency run lasts.
    pub(crate) fn latency_time(&self) -> Duration {
        Duration::from_millis(if self.quick { 500 } else { 2_000 })
    }

    /// The bound of each throughput run's sending.
    pub(crate) fn max_burst_time(&self) -> Duration {
        Duration::from_secs(if self.quick { 2 } else { 10 })
    }

    /// Crashes timed per profile: each takes seconds of joining and waiting.
    pub(crate) fn crashes(&self) -> usize {
        if self.quick { 2 } else { 5 }
    }
}

/// Throughput of one configuration, over the repetitions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Throughput {
    /// Messages (events) per second each receiver got.
    pub per_s: Spread,
    /// Payload bytes per second each receiver got (64 per message).
    pub bytes_per_s: Spread,
    /// The smallest share of sent messages a receiver got in a repetition.
    pub delivered: f64,
}

/// One-way latency at one load, over the repetitions, in microseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// The load as a share of the measured maximum (0.1, 0.5).
    pub load: f64,
    /// The paced rate, messages per second.
    pub rate: f64,
    /// Median latency.
    pub p50_us: Spread,
    /// 99th percentile.
    pub p99_us: Spread,
    /// 99.9th percentile.
    pub p999_us: Spread,
    /// Samples in all.
    pub samples: usize,
}

/// Crash detection and control traffic under one membership profile.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Detection {
    /// `fast` or `default`.
    pub profile: String,
    /// From `abort()` of one of three nodes until both others report it failed.
    pub detect_ms: Spread,
    /// Bytes per second one idle node publishes: heartbeats and health probes.
    pub control_bytes_per_s: Spread,
}

/// Memory of a node with a stalled local subscriber.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Memory {
    /// Events sent to it.
    pub events: u64,
    /// Events its engine received.
    pub received: u64,
    /// Its peak RSS once started, before any event (VmHWM), KiB.
    pub idle_kib: u64,
    /// Its peak RSS after all events (VmHWM), KiB.
    pub peak_kib: u64,
}

/// The coord half of one backend.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CoordFigures {
    /// The backend (URI scheme), e.g. `nats`.
    pub backend: String,
    /// One sender to two receivers, adaptive batching, HMAC on.
    pub throughput: Throughput,
    /// At 10 % and 50 % of the median throughput.
    pub latency: Vec<Latency>,
    /// Per profile.
    pub detection: Vec<Detection>,
    /// The stalled-receiver node, when a helper was given and the backend
    /// reaches across processes.
    pub memory: Option<Memory>,
}

/// The raw-client half of one backend.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RawFigures {
    /// The client, e.g. `async-nats 0.51`.
    pub client: String,
    /// Each message awaited before the next.
    pub unbatched: Throughput,
    /// With the client's own batching or pipelining.
    pub batched: Throughput,
    /// How the batched mode batches.
    pub batching: String,
    /// The batched mode at 10 % and 50 % of its median throughput.
    pub latency: Vec<Latency>,
}
