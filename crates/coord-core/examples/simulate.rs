//! Membership simulation on the real engine: many [`Node`]s over one
//! [`MemoryNetwork`] in a multi-thread Tokio runtime.
//!
//! ```text
//! cargo run --release -p coord-core --example simulate -- detection --profile fast --trials 50
//! cargo run --release -p coord-core --example simulate -- false-alarms --profile fast --loss 0.2 --seconds 60 --busy
//! cargo run --release -p coord-core --example simulate -- scale --nodes 256
//! ```
//!
//! Modes:
//! - `detection`: small clusters; in each trial one node crashes (`abort`, no
//!   leave) at a random phase of its heartbeat, and every observer's time from
//!   the crash to `MemberEvent::Failed` is measured.
//! - `false-alarms`: one cluster under injected frame loss (and optionally two
//!   OS threads burning both cores) where nobody crashes: every `Suspect` and
//!   `Failed` is a false alarm.
//! - `scale`: hundreds of nodes: steady-state heartbeat traffic and CPU, then
//!   the convergence of a join and of a crash.
//!
//! `docs/failure-detection.md` explains the detector and records the figures.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use coord_core::membership::{DetectorSettings, MembershipConfig};
use coord_core::transport::memory::MemoryNetwork;
use coord_core::wire::{Body, Envelope, NodeMeta};
use coord_core::{MemberEvent, MemberState, Namespace, Node, NodeConfig, NodeId, Profile, Secret};
use futures::StreamExt;
use rand::Rng;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

const USAGE: &str = "\
usage: simulate <mode> [options]

modes:
  detection      crash one node per trial, measure crash -> Failed on every observer
  false-alarms   nobody crashes; count Suspect/Failed under loss (and CPU load)
  scale          many nodes: heartbeat traffic, join and crash convergence

options:
  --profile fast|default   detector profile (default: default)
  --loss R[,R...]          frame drop rate(s), 0.0 to 1.0 (default: 0)
  --trials N               detection: trials per loss rate (default: 50)
  --cluster N              nodes per cluster (detection: 4, false-alarms: 8)
  --concurrency N          detection: clusters running at once (default: 10)
  --warmup SECONDS         detection: time the detectors learn the link before
                           the crash (default: 30 heartbeat intervals)
  --seconds N              false-alarms: run length per loss rate (default: 60);
                           scale: steady-state measuring interval (default: 10)
  --busy                   false-alarms: 2 OS threads spin for the whole run
  --nodes N                scale: nodes to start before the join (default: 256)
  --no-secret              frames unsigned (default: sealed with a secret)
";

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return Ok(());
    }
    let options = Options::parse(&args)?;
    let started = SystemTime::now();
    println!(
        "# coord membership simulation: {} (profile {}, {} worker threads, started {} s after the Unix epoch)",
        options.mode.name(),
        profile_name(options.profile),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    print_settings(options.profile);
    match options.mode {
        Mode::Detection => detection(&options).await,
        Mode::FalseAlarms => false_alarms(&options).await,
        Mode::Scale => scale(&options).await,
    }
}

// ---------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Detection,
    FalseAlarms,
    Scale,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Detection => "detection",
            Mode::FalseAlarms => "false-alarms",
            Mode::Scale => "scale",
        }
    }
}

#[derive(Clone, Debug)]
struct Options {
    mode: Mode,
    profile: Profile,
    loss: Vec<f64>,
    trials: usize,
    cluster: usize,
    concurrency: usize,
    warmup: Duration,
    seconds: u64,
    busy: bool,
    nodes: usize,
    secret: Option<Secret>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mode = match args[0].as_str() {
            "detection" => Mode::Detection,
            "false-alarms" => Mode::FalseAlarms,
            "scale" => Mode::Scale,
            other => {
                bail!("unknown mode {other:?}: use detection, false-alarms or scale\n\n{USAGE}")
            }
        };
        let mut profile = Profile::Default;
        let mut loss = vec![0.0];
        let mut trials = 50;
        let mut cluster = None;
        let mut concurrency = 10;
        let mut warmup = None;
        let mut seconds = None;
        let mut busy = false;
        let mut nodes = 256;
        let mut sealed = true;
        let mut rest = args[1..].iter();
        while let Some(flag) = rest.next() {
            let mut value = || rest.next().with_context(|| format!("option {flag} needs a value"));
            match flag.as_str() {
                "--profile" => {
                    profile = match value()?.as_str() {
                        "fast" => Profile::Fast,
                        "default" => Profile::Default,
                        other => bail!("unknown profile {other:?}: use fast or default"),
                    }
                }
                "--loss" => {
                    loss = value()?
                        .split(',')
                        .map(|r| {
                            let rate: f64 = r
                                .trim()
                                .parse()
                                .with_context(|| format!("--loss: {r:?} is not a number"))?;
                            if !(0.0..1.0).contains(&rate) {
                                bail!("--loss: {rate} is outside 0.0 to 1.0 (exclusive)");
                            }
                            Ok(rate)
                        })
                        .collect::<Result<_>>()?;
                }
                "--trials" => trials = parse_count(flag, value()?)?,
                "--cluster" => cluster = Some(parse_count(flag, value()?)?),
                "--concurrency" => concurrency = parse_count(flag, value()?)?,
                "--warmup" => {
                    let secs: f64 = value()?.parse().with_context(|| format!("{flag} needs seconds"))?;
                    warmup = Some(Duration::try_from_secs_f64(secs).with_context(|| format!("{flag}: bad duration"))?);
                }
                "--seconds" => seconds = Some(parse_count(flag, value()?)? as u64),
                "--busy" => busy = true,
                "--nodes" => nodes = parse_count(flag, value()?)?,
                "--no-secret" => sealed = false,
                other => bail!("unknown option {other:?}\n\n{USAGE}"),
            }
        }
        let cluster = cluster.unwrap_or(if mode == Mode::Detection { 4 } else { 8 });
        if cluster < 2 {
            bail!("--cluster: a cluster needs at least 2 nodes");
        }
        let interval = DetectorSettings::of(profile).heartbeat_interval;
        let secret = if sealed {
            Some(Secret::new("simulation-secret-0123456789").context("making the cluster secret")?)
        } else {
            None
        };
        Ok(Options {
            mode,
            profile,
            loss,
            trials,
            cluster,
            concurrency,
            warmup: warmup.unwrap_or(interval * 30),
            seconds: seconds.unwrap_or(if mode == Mode::Scale { 10 } else { 60 }),
            busy,
            nodes,
            secret,
        })
    }
}

fn parse_count(flag: &str, value: &str) -> Result<usize> {
    let n: usize = value
        .parse()
        .with_context(|| format!("{flag}: {value:?} is not a whole number"))?;
    if n == 0 {
        bail!("{flag}: must be at least 1");
    }
    Ok(n)
}

fn profile_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Fast => "fast",
        _ => "default",
    }
}

fn print_settings(profile: Profile) {
    let s = DetectorSettings::of(profile);
    println!(
        "# heartbeat {} ms, phi-threshold {}, suspect-phi {}, min-std-dev {} ms, acceptable-pause {} ms, window {}; \
         fastest verdict (expected_detection) {} ms after the last heartbeat; detector evaluated every {} ms",
        s.heartbeat_interval.as_millis(),
        s.phi_threshold,
        s.suspect_phi,
        s.min_std_dev.as_millis(),
        s.acceptable_pause.as_millis(),
        s.window,
        s.expected_detection().as_millis(),
        (s.heartbeat_interval / 4).as_millis(),
    );
}

// ---------------------------------------------------------------------------
// Nodes and their membership events

async fn start_node(network: &MemoryNetwork, name: &str, profile: Profile, secret: Option<&Secret>) -> Result<Node> {
    let id = NodeId::new(name).with_context(|| format!("node id {name:?}"))?;
    let mut config = NodeConfig::new(id).with_namespace(Namespace::new("sim").context("namespace")?);
    config.membership = MembershipConfig::profile(profile);
    if let Some(secret) = secret {
        config = config.with_secret(secret.clone());
    }
    Node::start(config, Arc::new(network.connect()))
        .await
        .with_context(|| format!("starting node {name}"))
}

/// A membership event as one observer's application saw it.
struct Observed {
    observer: usize,
    at: Instant,
    event: MemberEvent,
}

/// Collects every node's membership events, stamped on arrival.
struct Watcher {
    tx: mpsc::UnboundedSender<Observed>,
    rx: mpsc::UnboundedReceiver<Observed>,
}

impl Watcher {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Watcher { tx, rx }
    }

    /// Forwards `node`'s membership events, tagged with `observer`, until the node stops.
    fn watch(&self, observer: usize, node: &Node) {
        let mut feed = node.member_events();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(event) = feed.next().await {
                let observed = Observed {
                    observer,
                    at: Instant::now(),
                    event,
                };
                if tx.send(observed).is_err() {
                    break;
                }
            }
        });
    }

    async fn next_until(&mut self, deadline: Instant) -> Option<Observed> {
        tokio::time::timeout_at(deadline, self.rx.recv()).await.ok().flatten()
    }

    /// Counts every event already collected.
    fn drain(&mut self, alarms: &mut Alarms) {
        while let Ok(observed) = self.rx.try_recv() {
            alarms.count(&observed.event);
        }
    }
}

/// Membership events that would be false alarms when nobody crashed.
#[derive(Clone, Copy, Debug, Default)]
struct Alarms {
    suspect: u64,
    failed: u64,
    recovered: u64,
    lagged: u64,
}

impl Alarms {
    fn count(&mut self, event: &MemberEvent) {
        match event {
            MemberEvent::Suspect { .. } => self.suspect += 1,
            MemberEvent::Failed { .. } => self.failed += 1,
            MemberEvent::Recovered { .. } => self.recovered += 1,
            MemberEvent::Lagged { .. } => self.lagged += 1,
            _ => {}
        }
    }

    fn add(&mut self, other: Alarms) {
        self.suspect += other.suspect;
        self.failed += other.failed;
        self.recovered += other.recovered;
        self.lagged += other.lagged;
    }

    fn is_clear(&self) -> bool {
        self.suspect == 0 && self.failed == 0 && self.recovered == 0
    }
}

fn alive_peers(node: &Node) -> usize {
    node.members().iter().filter(|m| m.state == MemberState::Alive).count()
}

/// Waits until every node sees every other as alive; returns how long that
/// took, or the fewest live peers any node saw when the deadline passed.
async fn converge(
    nodes: &[Node],
    watcher: &mut Watcher,
    alarms: &mut Alarms,
    deadline: Instant,
    progress: bool,
) -> std::result::Result<Duration, usize> {
    let start = Instant::now();
    let poll = if nodes.len() > 32 {
        Duration::from_millis(250)
    } else {
        Duration::from_millis(10)
    };
    let mut next_report = start + Duration::from_secs(2);
    loop {
        watcher.drain(alarms);
        let fewest = nodes.iter().map(alive_peers).min().unwrap_or(0);
        if fewest + 1 >= nodes.len() {
            return Ok(start.elapsed());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(fewest);
        }
        if progress && now >= next_report {
            println!(
                "  converging: {:.1} s, fewest live peers seen by a node {fewest}/{}",
                start.elapsed().as_secs_f64(),
                nodes.len() - 1
            );
            next_report = now + Duration::from_secs(2);
        }
        tokio::time::sleep(poll).await;
    }
}

async fn abort_all(nodes: &[Node]) {
    for node in nodes {
        node.abort().await;
    }
}

// ---------------------------------------------------------------------------
// Measuring helpers

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentiles of a sample.
#[derive(Clone, Copy, Debug)]
struct Summary {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Summary {
    fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let r = (p / 100.0 * sorted.len() as f64).ceil() as usize;
            sorted[r.clamp(1, sorted.len()) - 1]
        };
        Some(Summary {
            n: sorted.len(),
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: sorted[sorted.len() - 1],
        })
    }
}

fn fmt_summary(s: Option<Summary>) -> String {
    match s {
        Some(s) => format!("{:7.0} {:7.0} {:7.0} {:7.0}", s.p50, s.p90, s.p99, s.max),
        None => format!("{:>7} {:>7} {:>7} {:>7}", "n/a", "n/a", "n/a", "n/a"),
    }
}

/// Measures how late Tokio timers fire: a task sleeps 10 ms in a loop and
/// records the overshoot. Scheduler delay shows up here before it shows up as
/// a false alarm.
struct LagProbe {
    samples: Arc<Mutex<Vec<f64>>>,
    stop: Arc<AtomicBool>,
}

impl LagProbe {
    fn start() -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        tokio::spawn(async move {
            let period = Duration::from_millis(10);
            while !st.load(Ordering::Relaxed) {
                let before = Instant::now();
                tokio::time::sleep(period).await;
                let late = ms(before.elapsed().saturating_sub(period));
                if let Ok(mut v) = s.lock() {
                    v.push(late);
                }
            }
        });
        LagProbe { samples, stop }
    }

    /// The overshoot since the last call, in ms.
    fn take(&self) -> Option<Summary> {
        let samples = self
            .samples
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        Summary::of(&samples)
    }
}

impl Drop for LagProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn fmt_lag(s: Option<Summary>) -> String {
    s.map_or_else(|| "n/a".to_owned(), |s| format!("{:.1}/{:.1}", s.p99, s.max))
}

/// CPU time of this process and of the whole machine, from `/proc` (Linux;
/// `None` elsewhere). Clock ticks are taken as 100 per second (USER_HZ).
#[derive(Clone, Copy)]
struct CpuMark {
    at: Instant,
    process_s: Option<f64>,
    machine: Option<(u64, u64)>,
}

/// CPU use between two marks.
#[derive(Clone, Copy, Debug)]
struct CpuUse {
    /// Cores this process kept busy on average.
    process_cores: Option<f64>,
    /// Share of all cores busy, whoever used them (other builds included).
    machine_busy: Option<f64>,
}

impl CpuMark {
    fn now() -> Self {
        let process_s = std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| {
            let after = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        });
        let machine = std::fs::read_to_string("/proc/stat").ok().and_then(|stat| {
            let line = stat.lines().next()?;
            let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
            let total: u64 = values.iter().take(8).sum();
            let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
            Some((total, idle))
        });
        CpuMark {
            at: Instant::now(),
            process_s,
            machine,
        }
    }

    fn since(&self) -> CpuUse {
        let now = CpuMark::now();
        let wall = now.at.duration_since(self.at).as_secs_f64();
        let process_cores = match (self.process_s, now.process_s) {
            (Some(a), Some(b)) if wall > 0.0 => Some((b - a) / wall),
            _ => None,
        };
        let machine_busy = match (self.machine, now.machine) {
            (Some((t0, i0)), Some((t1, i1))) if t1 > t0 => {
                Some(1.0 - (i1.saturating_sub(i0)) as f64 / (t1 - t0) as f64)
            }
            _ => None,
        };
        CpuUse {
            process_cores,
            machine_busy,
        }
    }
}

fn fmt_cpu(cpu: CpuUse) -> String {
    format!(
        "process {} cores, machine {} busy",
        cpu.process_cores
            .map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2}")),
        cpu.machine_busy
            .map_or_else(|| "n/a".to_owned(), |b| format!("{:.0} %", b * 100.0)),
    )
}

/// OS threads that burn CPU until dropped (a busy machine).
struct Spinners {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Spinners {
    fn start(count: usize) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for i in 0..count {
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("spinner-{i}"))
                .spawn(move || {
                    let mut x: u64 = i as u64 + 1;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = x
                                .wrapping_mul(6_364_136_223_846_793_005)
                                .wrapping_add(1_442_695_040_888_963_407);
                        }
                        std::hint::black_box(x);
                    }
                })
                .context("spawning a spinner thread")?;
            threads.push(thread);
        }
        Ok(Spinners { stop, threads })
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Mode: detection

/// What one crash trial measured.
struct TrialOutcome {
    trial: usize,
    /// Time from the victim's last scheduled heartbeat to the crash (nominal).
    phase_ms: f64,
    /// Per observer: crash → `Failed`.
    detect_ms: Vec<f64>,
    /// Per observer: crash → `Suspect`.
    suspect_ms: Vec<f64>,
    /// Per observer: last heartbeat it received from the victim → `Failed`.
    silence_ms: Vec<f64>,
    /// Observers that reported no `Failed` before the deadline.
    missed: usize,
    /// Suspect/Failed/Recovered about live nodes, or about the victim before the crash.
    false_alarms: Alarms,
}

#[derive(Clone)]
struct TrialSetup {
    profile: Profile,
    cluster: usize,
    loss: f64,
    warmup: Duration,
    secret: Option<Secret>,
}

async fn detection(options: &Options) -> Result<()> {
    let settings = DetectorSettings::of(options.profile);
    println!(
        "# {} trials per loss rate, clusters of {} nodes, up to {} clusters at once, warm-up {:.1} s, frames {}",
        options.trials,
        options.cluster,
        options.concurrency,
        options.warmup.as_secs_f64(),
        if options.secret.is_some() { "sealed" } else { "unsigned" },
    );
    let mut rows = Vec::new();
    for &loss in &options.loss {
        println!();
        println!("## loss {:.0} %", loss * 100.0);
        println!(
            "{:>5} {:>6} {:>9}  {:<24} {:<24} {:<24} {:>6}",
            "trial", "done", "phase ms", "crash->Failed ms", "crash->Suspect ms", "last hb->Failed ms", "alarms"
        );
        let lag = LagProbe::start();
        let cpu = CpuMark::now();
        let setup = TrialSetup {
            profile: options.profile,
            cluster: options.cluster,
            loss,
            warmup: options.warmup,
            secret: options.secret.clone(),
        };
        let permits = Arc::new(Semaphore::new(options.concurrency));
        let mut set = JoinSet::new();
        for trial in 0..options.trials {
            let (setup, permits) = (setup.clone(), permits.clone());
            set.spawn(async move {
                let _permit = permits.acquire_owned().await.context("trial semaphore closed")?;
                detection_trial(trial, &setup)
                    .await
                    .with_context(|| format!("trial {trial}"))
            });
        }
        let (mut detect, mut suspect, mut silence) = (Vec::new(), Vec::new(), Vec::new());
        let (mut missed, mut alarms, mut done) = (0, Alarms::default(), 0);
        while let Some(joined) = set.join_next().await {
            let outcome = joined.context("trial task panicked")??;
            done += 1;
            let list = |v: &[f64]| {
                v.iter().fold(String::new(), |mut s, x| {
                    let _ = write!(s, "{x:.0} ");
                    s
                })
            };
            println!(
                "{:>5} {:>3}/{:<2} {:>9.0}  {:<24} {:<24} {:<24} {:>6}{}",
                outcome.trial,
                done,
                options.trials,
                outcome.phase_ms,
                list(&outcome.detect_ms),
                list(&outcome.suspect_ms),
                list(&outcome.silence_ms),
                outcome.false_alarms.suspect + outcome.false_alarms.failed + outcome.false_alarms.recovered,
                if outcome.missed > 0 {
                    format!("  MISSED by {}", outcome.missed)
                } else {
                    String::new()
                },
            );
            detect.extend(outcome.detect_ms);
            suspect.extend(outcome.suspect_ms);
            silence.extend(outcome.silence_ms);
            missed += outcome.missed;
            alarms.add(outcome.false_alarms);
        }
        rows.push(DetectionRow {
            loss,
            detect: Summary::of(&detect),
            suspect: Summary::of(&suspect),
            silence: Summary::of(&silence),
            missed,
            alarms,
            lag: lag.take(),
            cpu: cpu.since(),
        });
    }
    println!();
    println!(
        "## summary: profile {}, {} trials x {} observers per loss rate (ms; p50 p90 p99 max)",
        profile_name(options.profile),
        options.trials,
        options.cluster - 1
    );
    println!(
        "{:>5} {:>6} {:>7}  {:<31}  {:<31}  {:<31}  {:>14}  {:>11}  cpu",
        "loss",
        "pairs",
        "missed",
        "crash->Failed",
        "crash->Suspect",
        "last heartbeat->Failed",
        "false S/F/R",
        "timer lag"
    );
    for row in &rows {
        println!(
            "{:>4.0}% {:>6} {:>7}  {}  {}  {}  {:>14}  {:>11}  {}",
            row.loss * 100.0,
            row.detect.map_or(0, |s| s.n),
            row.missed,
            fmt_summary(row.detect),
            fmt_summary(row.suspect),
            fmt_summary(row.silence),
            format!("{}/{}/{}", row.alarms.suspect, row.alarms.failed, row.alarms.recovered),
            fmt_lag(row.lag),
            fmt_cpu(row.cpu),
        );
    }
    if options.profile == Profile::Fast {
        if let Some(row) = rows.iter().find(|r| r.loss == 0.0) {
            let pass = row.missed == 0 && row.detect.is_some_and(|s| s.p99 <= 1000.0);
            println!(
                "acceptance (fast, no loss): crash detected in <= 1 s p99 over {} trials: {} (p99 {} ms, missed {})",
                options.trials,
                if pass { "PASS" } else { "FAIL" },
                row.detect.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.p99)),
                row.missed,
            );
        }
    }
    println!(
        "(expected: last heartbeat->Failed >= {} ms, the fastest verdict; crash->Failed is that minus the phase, plus up to one {} ms evaluation tick)",
        settings.expected_detection().as_millis(),
        (settings.heartbeat_interval / 4).as_millis()
    );
    Ok(())
}

struct DetectionRow {
    loss: f64,
    detect: Option<Summary>,
    suspect: Option<Summary>,
    silence: Option<Summary>,
    missed: usize,
    alarms: Alarms,
    lag: Option<Summary>,
    cpu: CpuUse,
}

async fn detection_trial(trial: usize, setup: &TrialSetup) -> Result<TrialOutcome> {
    let network = MemoryNetwork::new();
    network.set_drop_rate(setup.loss);
    let mut watcher = Watcher::new();
    let mut nodes = Vec::new();
    let mut started = Vec::new();
    let interval = DetectorSettings::of(setup.profile).heartbeat_interval;
    for i in 0..setup.cluster {
        // Random start offsets: heartbeat tickers and detector ticks of
        // different nodes are not aligned, as on real machines.
        if i > 0 {
            let offset = interval.mul_f64(rand::rng().random_range(0.0..1.0));
            tokio::time::sleep(offset).await;
        }
        let node = start_node(
            &network,
            &format!("t{trial:03}-n{i}"),
            setup.profile,
            setup.secret.as_ref(),
        )
        .await;
        let node = match node {
            Ok(node) => node,
            Err(error) => {
                abort_all(&nodes).await;
                return Err(error);
            }
        };
        started.push(Instant::now());
        watcher.watch(i, &node);
        nodes.push(node);
    }
    let outcome = run_trial(trial, setup, &nodes, &started, &mut watcher).await;
    abort_all(&nodes).await;
    outcome
}

async fn run_trial(
    trial: usize,
    setup: &TrialSetup,
    nodes: &[Node],
    started: &[Instant],
    watcher: &mut Watcher,
) -> Result<TrialOutcome> {
    let settings = DetectorSettings::of(setup.profile);
    let interval = settings.heartbeat_interval;
    let mut false_alarms = Alarms::default();
    let deadline = Instant::now() + Duration::from_secs(10) + interval * 20;
    if let Err(fewest) = converge(nodes, watcher, &mut false_alarms, deadline, false).await {
        bail!(
            "cluster did not converge: a node saw only {fewest} of {} peers alive",
            nodes.len() - 1
        );
    }
    tokio::time::sleep(setup.warmup).await;

    // Crash at a uniformly random phase of the victim's heartbeat ticker.
    let (victim, phase) = {
        let mut rng = rand::rng();
        (
            rng.random_range(0..nodes.len()),
            interval.mul_f64(rng.random_range(0.0..1.0)),
        )
    };
    let since_start = Instant::now().duration_since(started[victim]);
    let periods = (since_start.as_secs_f64() / interval.as_secs_f64()).ceil();
    tokio::time::sleep_until(started[victim] + interval.mul_f64(periods) + phase).await;
    watcher.drain(&mut false_alarms);
    let victim_id = nodes[victim].node_id().clone();
    let last_seen: Vec<Option<SystemTime>> = nodes
        .iter()
        .map(|n| n.member(&victim_id).map(|m| m.last_seen))
        .collect();
    let crash = Instant::now();
    let crash_wall = SystemTime::now();
    nodes[victim].abort().await;
    let interval_ms = ms(interval);
    let phase_ms = ms(crash.duration_since(started[victim])) % interval_ms;

    let observers = nodes.len() - 1;
    let mut failed: HashMap<usize, Instant> = HashMap::new();
    let mut suspected: HashMap<usize, Instant> = HashMap::new();
    let deadline = crash + settings.expected_detection() * 3 + Duration::from_secs(5);
    while failed.len() < observers {
        let Some(observed) = watcher.next_until(deadline).await else {
            break;
        };
        if observed.observer == victim {
            continue;
        }
        match &observed.event {
            MemberEvent::Failed { node } if *node == victim_id => {
                failed.entry(observed.observer).or_insert(observed.at);
            }
            MemberEvent::Suspect { node, .. } if *node == victim_id => {
                suspected.entry(observed.observer).or_insert(observed.at);
            }
            other => false_alarms.count(other),
        }
    }
    let mut detect_ms = Vec::new();
    let mut suspect_ms = Vec::new();
    let mut silence_ms = Vec::new();
    for observer in (0..nodes.len()).filter(|&o| o != victim) {
        if let Some(at) = failed.get(&observer) {
            let detect = ms(at.duration_since(crash));
            detect_ms.push(detect);
            if let Some(seen) = last_seen[observer] {
                let before_crash = crash_wall.duration_since(seen).map_or(0.0, ms);
                silence_ms.push(detect + before_crash);
            }
        }
        if let Some(at) = suspected.get(&observer) {
            suspect_ms.push(ms(at.duration_since(crash)));
        }
    }
    Ok(TrialOutcome {
        trial,
        phase_ms,
        detect_ms,
        suspect_ms,
        silence_ms,
        missed: observers - failed.len(),
        false_alarms,
    })
}

// ---------------------------------------------------------------------------
// Mode: false-alarms

struct FalseAlarmRow {
    loss: f64,
    seconds: f64,
    pairs: usize,
    alarms: Alarms,
    measured_loss: Option<f64>,
    max_phi: f64,
    lag: Option<Summary>,
    cpu: CpuUse,
}

async fn false_alarms(options: &Options) -> Result<()> {
    println!(
        "# cluster of {} nodes, {} s per loss rate, {}, frames {}",
        options.cluster,
        options.seconds,
        if options.busy {
            "2 OS threads spinning (both cores busy)"
        } else {
            "no added CPU load"
        },
        if options.secret.is_some() { "sealed" } else { "unsigned" },
    );
    let mut rows = Vec::new();
    for &loss in &options.loss {
        println!();
        println!("## loss {:.0} %", loss * 100.0);
        rows.push(false_alarm_run(options, loss).await?);
    }
    println!();
    println!(
        "## summary: profile {}, {} nodes ({} observer-peer pairs), {}",
        profile_name(options.profile),
        options.cluster,
        options.cluster * (options.cluster - 1),
        if options.busy {
            "busy (2 spinning threads)"
        } else {
            "idle"
        }
    );
    println!(
        "{:>5} {:>7} {:>8} {:>7} {:>7} {:>9} {:>16} {:>15} {:>8} {:>11}  cpu",
        "loss",
        "seconds",
        "measured",
        "Suspect",
        "Failed",
        "Recovered",
        "Suspect/pair-h",
        "Failed/pair-h",
        "max phi",
        "timer lag"
    );
    for row in &rows {
        let pair_hours = row.pairs as f64 * row.seconds / 3600.0;
        println!(
            "{:>4.0}% {:>7.0} {:>8} {:>7} {:>7} {:>9} {:>16.4} {:>15.4} {:>8.2} {:>11}  {}",
            row.loss * 100.0,
            row.seconds,
            row.measured_loss
                .map_or_else(|| "n/a".to_owned(), |l| format!("{:.1}%", l * 100.0)),
            row.alarms.suspect,
            row.alarms.failed,
            row.alarms.recovered,
            row.alarms.suspect as f64 / pair_hours,
            row.alarms.failed as f64 / pair_hours,
            row.max_phi,
            fmt_lag(row.lag),
            fmt_cpu(row.cpu),
        );
    }
    if options.profile == Profile::Fast && options.busy {
        if let Some(row) = rows.iter().find(|r| (r.loss - 0.2).abs() < 1e-9) {
            println!(
                "acceptance (fast, 20 % loss, both cores busy, {} s): zero false Failed: {} ({} Failed, {} Suspect)",
                row.seconds.round(),
                if row.alarms.failed == 0 && row.seconds >= 60.0 {
                    "PASS"
                } else {
                    "FAIL"
                },
                row.alarms.failed,
                row.alarms.suspect,
            );
        }
    }
    Ok(())
}

async fn false_alarm_run(options: &Options, loss: f64) -> Result<FalseAlarmRow> {
    let spinners = if options.busy { Some(Spinners::start(2)?) } else { None };
    let network = MemoryNetwork::new();
    network.set_drop_rate(loss);
    let mut watcher = Watcher::new();
    let mut nodes = Vec::new();
    for i in 0..options.cluster {
        match start_node(&network, &format!("f{i}"), options.profile, options.secret.as_ref()).await {
            Ok(node) => {
                watcher.watch(i, &node);
                nodes.push(node);
            }
            Err(error) => {
                abort_all(&nodes).await;
                return Err(error);
            }
        }
    }
    let row = measure_false_alarms(options, loss, &nodes, &mut watcher).await;
    abort_all(&nodes).await;
    drop(spinners);
    row
}

async fn measure_false_alarms(
    options: &Options,
    loss: f64,
    nodes: &[Node],
    watcher: &mut Watcher,
) -> Result<FalseAlarmRow> {
    let mut alarms = Alarms::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    let took = match converge(nodes, watcher, &mut alarms, deadline, true).await {
        Ok(took) => took,
        Err(fewest) => bail!(
            "cluster did not converge in 20 s: a node saw only {fewest} of {} peers",
            nodes.len() - 1
        ),
    };
    println!(
        "  converged in {:.0} ms; counting alarms for {} s",
        ms(took),
        options.seconds
    );
    let lag = LagProbe::start();
    let cpu = CpuMark::now();
    let sent_before: u64 = nodes.iter().map(|n| n.stats().heartbeats_sent).sum();
    let received_before: u64 = nodes.iter().map(|n| n.stats().heartbeats_received).sum();
    let start = Instant::now();
    let end = start + Duration::from_secs(options.seconds);
    let mut next_report = start + Duration::from_secs(10);
    let mut max_phi: f64 = 0.0;
    loop {
        watcher.drain(&mut alarms);
        for node in nodes {
            for member in node.members() {
                max_phi = max_phi.max(member.phi);
            }
        }
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= next_report {
            println!(
                "  {:>4.0} s: Suspect {}, Failed {}, Recovered {}, max phi so far {:.2}",
                now.duration_since(start).as_secs_f64(),
                alarms.suspect,
                alarms.failed,
                alarms.recovered,
                max_phi
            );
            next_report += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu.since();
    let sent: u64 = nodes.iter().map(|n| n.stats().heartbeats_sent).sum::<u64>() - sent_before;
    let received: u64 = nodes.iter().map(|n| n.stats().heartbeats_received).sum::<u64>() - received_before;
    let expected = sent as f64 * (nodes.len() - 1) as f64;
    let measured_loss = (expected > 0.0).then(|| 1.0 - received as f64 / expected);
    watcher.drain(&mut alarms);
    let row = FalseAlarmRow {
        loss,
        seconds,
        pairs: nodes.len() * (nodes.len() - 1),
        alarms,
        measured_loss,
        max_phi,
        lag: lag.take(),
        cpu,
    };
    println!(
        "  done: {:.0} s, Suspect {}, Failed {}, Recovered {}, measured heartbeat loss {}, max phi {:.2}, timer lag p99/max {} ms, {}",
        row.seconds,
        alarms.suspect,
        alarms.failed,
        alarms.recovered,
        measured_loss.map_or_else(|| "n/a".to_owned(), |l| format!("{:.1} %", l * 100.0)),
        max_phi,
        fmt_lag(row.lag),
        fmt_cpu(cpu)
    );
    Ok(row)
}

// ---------------------------------------------------------------------------
// Mode: scale

async fn scale(options: &Options) -> Result<()> {
    let settings = DetectorSettings::of(options.profile);
    let n = options.nodes;
    if n < 2 {
        bail!("--nodes: scale needs at least 2 nodes");
    }
    println!(
        "# {n} nodes on one memory network, frames {}, steady-state interval {} s",
        if options.secret.is_some() { "sealed" } else { "unsigned" },
        options.seconds
    );
    let network = MemoryNetwork::new();
    let mut watcher = Watcher::new();
    let mut nodes = Vec::new();
    let outcome = scale_run(options, &settings, &network, &mut watcher, &mut nodes).await;
    abort_all(&nodes).await;
    outcome
}

async fn scale_run(
    options: &Options,
    settings: &DetectorSettings,
    network: &MemoryNetwork,
    watcher: &mut Watcher,
    nodes: &mut Vec<Node>,
) -> Result<()> {
    let n = options.nodes;
    let lag = LagProbe::start();
    let mut alarms = Alarms::default();
    let begin = Instant::now();
    let cpu = CpuMark::now();
    for i in 0..n {
        let node = start_node(network, &format!("s{i:04}"), options.profile, options.secret.as_ref()).await?;
        watcher.watch(i, &node);
        nodes.push(node);
        if (i + 1) % 32 == 0 || i + 1 == n {
            watcher.drain(&mut alarms);
            println!(
                "  started {:>4}/{n} nodes in {:.1} s",
                i + 1,
                begin.elapsed().as_secs_f64()
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60) + settings.heartbeat_interval * 20;
    match converge(nodes, watcher, &mut alarms, deadline, true).await {
        Ok(took) => println!(
            "  converged: every node sees {} peers alive, {:.1} s after the last start ({:.1} s in all)",
            n - 1,
            took.as_secs_f64(),
            begin.elapsed().as_secs_f64()
        ),
        Err(fewest) => println!(
            "  NOT CONVERGED after {:.0} s: a node saw only {fewest} of {} peers alive; measuring anyway",
            begin.elapsed().as_secs_f64(),
            n - 1
        ),
    }
    println!(
        "  start-up: {}, timer lag p99/max {} ms, alarms so far S/F/R {}/{}/{}",
        fmt_cpu(cpu.since()),
        fmt_lag(lag.take()),
        alarms.suspect,
        alarms.failed,
        alarms.recovered
    );

    // Steady state: traffic, CPU, timer lag, alarms.
    tokio::time::sleep(settings.heartbeat_interval * 4).await;
    watcher.drain(&mut alarms);
    let steady_before = alarms;
    let before: Vec<_> = nodes.iter().map(|n| n.stats()).collect();
    let cpu = CpuMark::now();
    let _ = lag.take();
    let start = Instant::now();
    let end = start + Duration::from_secs(options.seconds);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(200).min(end.saturating_duration_since(Instant::now()))).await;
        watcher.drain(&mut alarms);
    }
    let secs = start.elapsed().as_secs_f64();
    let after: Vec<_> = nodes.iter().map(|n| n.stats()).collect();
    let steady_cpu = cpu.since();
    let steady_lag = lag.take();
    let rate = |f: &dyn Fn(&coord_core::engine::StatsSnapshot) -> u64| -> Vec<f64> {
        before
            .iter()
            .zip(&after)
            .map(|(b, a)| (f(a) - f(b)) as f64 / secs)
            .collect()
    };
    let columns: [(&str, Vec<f64>); 6] = [
        ("bytes sent/s", rate(&|s| s.bytes_sent)),
        ("frames sent/s", rate(&|s| s.frames_sent)),
        ("heartbeats sent/s", rate(&|s| s.heartbeats_sent)),
        ("bytes received/s", rate(&|s| s.bytes_received)),
        ("frames received/s", rate(&|s| s.frames_received)),
        ("heartbeats received/s", rate(&|s| s.heartbeats_received)),
    ];
    println!();
    println!("## steady state over {secs:.1} s, per node (min / mean / max over {n} nodes)");
    for (name, values) in &columns {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0, f64::max);
        println!("  {name:<22} {min:>10.1} {mean:>10.1} {max:>10.1}");
    }
    let frame = heartbeat_frame_len(&nodes[0], options.secret.as_ref());
    println!(
        "  one heartbeat frame is {frame} bytes here (node id {:?}, empty metadata); frames sent also include 1 probe/s",
        nodes[0].node_id().as_str()
    );
    let steady_alarms = Alarms {
        suspect: alarms.suspect - steady_before.suspect,
        failed: alarms.failed - steady_before.failed,
        recovered: alarms.recovered - steady_before.recovered,
        lagged: alarms.lagged - steady_before.lagged,
    };
    println!(
        "  {}, timer lag p99/max {} ms, false alarms in this interval S/F/R {}/{}/{}, lagged {}",
        fmt_cpu(steady_cpu),
        fmt_lag(steady_lag),
        steady_alarms.suspect,
        steady_alarms.failed,
        steady_alarms.recovered,
        steady_alarms.lagged
    );

    // Join: one more node; every other node should emit Joined for it.
    println!();
    let join_start = Instant::now();
    let joiner = start_node(network, &format!("s{n:04}"), options.profile, options.secret.as_ref()).await?;
    let joiner_id = joiner.node_id().clone();
    watcher.watch(n, &joiner);
    nodes.push(joiner);
    let mut joined: HashMap<usize, Instant> = HashMap::new();
    let deadline = join_start + Duration::from_secs(10) + settings.heartbeat_interval * 4;
    while joined.len() < n {
        let Some(observed) = watcher.next_until(deadline).await else {
            break;
        };
        match &observed.event {
            MemberEvent::Joined { node, .. } if *node == joiner_id && observed.observer < n => {
                joined.entry(observed.observer).or_insert(observed.at);
            }
            other => alarms.count(other),
        }
    }
    let join_ms: Vec<f64> = joined.values().map(|at| ms(at.duration_since(join_start))).collect();
    let join = Summary::of(&join_ms);
    println!(
        "## join of node {n}: Joined on {}/{n} nodes; ms from start: p50 {} max {}",
        joined.len(),
        join.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.p50)),
        join.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.max)),
    );

    // Crash: abort node 0 at a random phase; every other node (the joiner too) should report Failed.
    tokio::time::sleep(settings.heartbeat_interval * 4).await;
    let phase = settings.heartbeat_interval.mul_f64(rand::rng().random_range(0.0..1.0));
    tokio::time::sleep(phase).await;
    watcher.drain(&mut alarms);
    let victim_id = nodes[0].node_id().clone();
    let crash = Instant::now();
    nodes[0].abort().await;
    let observers = nodes.len() - 1;
    let mut failed: HashMap<usize, Instant> = HashMap::new();
    let deadline = crash + settings.expected_detection() * 3 + Duration::from_secs(10);
    let mut next_report = crash + Duration::from_secs(1);
    while failed.len() < observers {
        let Some(observed) = watcher.next_until(deadline.min(next_report)).await else {
            if Instant::now() >= deadline {
                break;
            }
            println!(
                "  {:.1} s after the crash: Failed on {}/{observers}",
                crash.elapsed().as_secs_f64(),
                failed.len()
            );
            next_report += Duration::from_secs(1);
            continue;
        };
        match &observed.event {
            MemberEvent::Failed { node } if *node == victim_id && observed.observer != 0 => {
                failed.entry(observed.observer).or_insert(observed.at);
            }
            MemberEvent::Suspect { node, .. } if *node == victim_id => {}
            other => alarms.count(other),
        }
    }
    let fail_ms: Vec<f64> = failed.values().map(|at| ms(at.duration_since(crash))).collect();
    let fail = Summary::of(&fail_ms);
    println!(
        "## crash of node 0: Failed on {}/{observers} observers; ms from crash: p50 {} max {}",
        failed.len(),
        fail.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.p50)),
        fail.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.max)),
    );
    watcher.drain(&mut alarms);

    println!();
    println!(
        "## summary: scale, profile {}, {n} nodes",
        profile_name(options.profile)
    );
    println!(
        "  join convergence (start -> Joined on every node): p50 {} ms, max {} ms, {}/{n} nodes",
        join.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.p50)),
        join.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.max)),
        joined.len()
    );
    println!(
        "  crash detection (abort -> Failed on every observer): p50 {} ms, max {} ms, {}/{observers} observers",
        fail.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.p50)),
        fail.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.max)),
        failed.len()
    );
    let mean = |i: usize| columns[i].1.iter().sum::<f64>() / n as f64;
    println!(
        "  per node: sent {:.0} B/s in {:.2} frames/s ({:.2} heartbeats/s); received {:.0} B/s in {:.1} frames/s ({:.1} heartbeats/s)",
        mean(0),
        mean(1),
        mean(2),
        mean(3),
        mean(4),
        mean(5)
    );
    println!(
        "  steady state: {}, timer lag p99/max {} ms, false alarms S/F/R {}/{}/{}",
        fmt_cpu(steady_cpu),
        fmt_lag(steady_lag),
        steady_alarms.suspect,
        steady_alarms.failed,
        steady_alarms.recovered
    );
    println!(
        "  whole run: false alarms (about nodes that did not crash) S/F/R {}/{}/{}, lagged {}",
        alarms.suspect, alarms.failed, alarms.recovered, alarms.lagged
    );
    if !steady_alarms.is_clear() || steady_cpu.process_cores.is_some_and(|c| c > 1.6) {
        println!("  NOTE: this machine does not carry this load cleanly (false alarms or CPU near its 2 cores)");
    }
    Ok(())
}

/// The size of one heartbeat frame of `node`, encoded as the engine encodes it.
fn heartbeat_frame_len(node: &Node, secret: Option<&Secret>) -> usize {
    let namespace = Namespace::new("sim").unwrap_or_default();
    let envelope = Envelope {
        namespace,
        sender: node.node_id().clone(),
        incarnation: node.incarnation(),
        seq: 1_000,
        sent_at_ms: node.incarnation() + 60_000,
        body: Body::Heartbeat(NodeMeta {
            started_at_ms: node.incarnation(),
            ..NodeMeta::default()
        }),
    };
    coord_core::wire::encode(&envelope, secret).len()
}
