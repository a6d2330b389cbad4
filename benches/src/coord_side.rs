//! The coord half: the full stack on any backend URI.

use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use coord::{BackendUri, Coordinator, Event, Feed, InboxConfig, Incoming, MemberState, Profile, Secret};
use futures::future::{BoxFuture, FutureExt, ready};
use futures::stream::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::load::{self, Burst, EVENT_BYTES, Payloads, Rig, Sink};
use crate::stats::Spread;
use crate::{CoordFigures, Detection, Error, Memory, Options};

/// Items each benchmark subscriber may queue: more than the send window, so
/// the throughput runs measure the stack, not a subscriber's overflow.
const SUBSCRIBER_CAPACITY: usize = 1 << 17;
/// Events in flight at most during a throughput run.
const WINDOW: u64 = 32_768;
/// Longest nodes may take to see each other.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a crash may take to be detected before the run fails.
const DETECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the stalled-receiver run may take to send its events.
const STALLED_SEND_TIMEOUT: Duration = Duration::from_secs(180);

/// A namespace of its own for each cluster this process starts, so that runs
/// never see each other's nodes on a shared server.
fn namespace() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("bench{}n{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `uri` with this node's id and namespace added.
fn node_uri(uri: &str, node: &str, namespace: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}node-id={node}&namespace={namespace}")
}

/// The cluster secret: frames are sealed and verified, as in production.
fn secret() -> Secret {
    Secret::new(b"coord-bench: a secret of thirty-two bytes or more").expect("a valid secret")
}

/// A started node of `namespace` on `uri`.
async fn start(
    uri: &str,
    node: &str,
    namespace: &str,
    profile: Profile,
    subscriber_capacity: usize,
) -> Result<Coordinator, Error> {
    let mut inbox = InboxConfig::default();
    inbox.subscriber_capacity = subscriber_capacity;
    Ok(Coordinator::builder()
        .uri(node_uri(uri, node, namespace))
        .secret(secret())
        .profile(profile)
        .inbox(inbox)
        .start()
        .await?)
}

/// Waits until, for each pair, the first node sees the second alive.
async fn wait_alive(pairs: &[(&Coordinator, &Coordinator)]) -> Result<(), Error> {
    let started = Instant::now();
    while !pairs.iter().all(|(viewer, seen)| {
        viewer
            .member(seen.node_id())
            .is_some_and(|m| m.state == MemberState::Alive)
    }) {
        if started.elapsed() > JOIN_TIMEOUT {
            return Err(Error::Stalled(format!(
                "the nodes did not see each other within {JOIN_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Broadcasts each message as a custom event.
struct CoordSink(Arc<Coordinator>);

impl Sink for CoordSink {
    fn send(&mut self, payload: Bytes) -> BoxFuture<'_, Result<(), Error>> {
        async move { Ok(self.0.broadcast(Event::custom(1, payload)).await?) }.boxed()
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), Error>> {
        ready(Ok(())).boxed()
    }
}

/// The payloads of the custom events a subscriber gets.
fn payloads(feed: Feed<Incoming>) -> Payloads {
    feed.filter_map(|item| {
        ready(match item {
            Incoming::Event(delivery) => match delivery.event {
                Event::Custom { payload, .. } => Some(payload),
                _ => None,
            },
            Incoming::Lagged(_) => None,
        })
    })
    .boxed()
}

/// Runs the coord half against the server `uri` names (any URI
/// [`Coordinator::from_uri`] takes, without `node-id` and `namespace`,
/// which are set here: each cluster gets a namespace of its own):
///
/// 1. one sender and two receivers, cluster secret set (every frame sealed
///    and verified), 64-byte custom events: throughput after a warm-up, then
///    one-way latency at 10 % and 50 % of the median throughput;
/// 2. per profile (fast, default): three idle nodes, the control bytes per
///    second one of them publishes, then one aborted (a crash: no leave) and
///    the time until both others report it failed;
/// 3. with [`Options::stalled_helper`] and a backend that reaches across
///    processes: the peak RSS of a helper node whose one subscriber never
///    reads while [`Options::stalled_events`] events are sent to it.
///
/// The nodes other than the sender use [`Options::peer_uri`] when it is set.
/// Every run is bounded in events and time.
pub async fn coord_half(uri: &str, options: &Options) -> Result<CoordFigures, Error> {
    let backend = BackendUri::parse(uri)?.scheme().to_owned();
    let peer = options.peer_uri.as_deref().unwrap_or(uri);
    let ns = namespace();
    let sender = Arc::new(start(uri, "bench-tx", &ns, Profile::Default, SUBSCRIBER_CAPACITY).await?);
    let first = start(peer, "bench-rx1", &ns, Profile::Default, SUBSCRIBER_CAPACITY).await?;
    let second = start(peer, "bench-rx2", &ns, Profile::Default, SUBSCRIBER_CAPACITY).await?;
    wait_alive(&[
        (&sender, &first),
        (&sender, &second),
        (&first, &sender),
        (&second, &sender),
    ])
    .await?;
    let feeds = vec![payloads(first.subscribe()), payloads(second.subscribe())];
    let mut rig = Rig::new(Box::new(CoordSink(sender.clone())), feeds);
    let burst = Burst {
        events: options.events(),
        max_time: options.max_burst_time(),
        window: WINDOW,
        flush_every: u64::MAX,
    };
    let throughput = load::throughput(&mut rig, options, burst).await?;
    let latency = load::latencies(&mut rig, options, throughput.per_s.median).await?;
    drop(rig);
    for node in [&*sender, &first, &second] {
        node.shutdown().await?;
    }
    let mut detection = Vec::new();
    for profile in [Profile::Fast, Profile::Default] {
        detection.push(detect(uri, peer, profile, options).await?);
    }
    let memory = match (&options.stalled_helper, backend.as_str()) {
        // One process's memory network does not reach a helper process.
        (None, _) | (_, "memory") => None,
        (Some(helper), _) => Some(stalled(uri, peer, helper, options).await?),
    };
    Ok(CoordFigures {
        backend,
        throughput,
        latency,
        detection,
        memory,
    })
}

/// Crash detection and idle control traffic under `profile`.
async fn detect(uri: &str, peer: &str, profile: Profile, options: &Options) -> Result<Detection, Error> {
    let idle = Duration::from_secs(if options.quick { 1 } else { 2 });
    let (mut times, mut control) = (Vec::new(), Vec::new());
    for _ in 0..options.crashes() {
        let ns = namespace();
        let a = start(uri, "bench-a", &ns, profile, InboxConfig::default().subscriber_capacity).await?;
        let b = start(
            peer,
            "bench-b",
            &ns,
            profile,
            InboxConfig::default().subscriber_capacity,
        )
        .await?;
        let c = start(
            peer,
            "bench-c",
            &ns,
            profile,
            InboxConfig::default().subscriber_capacity,
        )
        .await?;
        wait_alive(&[(&a, &b), (&b, &a), (&a, &c), (&b, &c)]).await?;
        let before = a.stats().bytes_sent;
        tokio::time::sleep(idle).await;
        control.push((a.stats().bytes_sent - before) as f64 / idle.as_secs_f64());
        let crashed = Instant::now();
        c.node().abort().await;
        let failed = |node: &Coordinator| node.member(c.node_id()).is_some_and(|m| m.state == MemberState::Failed);
        while !(failed(&a) && failed(&b)) {
            if crashed.elapsed() > DETECT_TIMEOUT {
                return Err(Error::Stalled(format!(
                    "a crash went undetected for {DETECT_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(crashed.elapsed().as_secs_f64() * 1e3);
        a.shutdown().await?;
        b.shutdown().await?;
    }
    Ok(Detection {
        profile: format!("{profile:?}").to_lowercase(),
        detect_ms: Spread::of(&times),
        control_bytes_per_s: Spread::of(&control),
    })
}

/// The peak RSS of a helper node whose one subscriber never reads.
///
/// The node runs in a process of its own, so that its VmHWM (the kernel's
/// high-water mark of resident memory, from `/proc/self/status`) is the
/// node's alone: in this process it would include the sender, the other
/// benchmarks' leftovers and the allocator's cached memory.
async fn stalled(uri: &str, peer: &str, helper: &[OsString], options: &Options) -> Result<Memory, Error> {
    let helper_error = |what: &str, error: &dyn std::fmt::Display| Error::Helper(format!("{what}: {error}"));
    let (program, args) = helper
        .split_first()
        .ok_or_else(|| Error::Helper("empty command line".into()))?;
    let ns = namespace();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .arg(peer)
        .arg("bench-stalled")
        .arg(&ns)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| helper_error("cannot start it", &e))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut read = async || -> Result<Vec<u64>, Error> {
        let line = tokio::time::timeout(JOIN_TIMEOUT, lines.next_line())
            .await
            .map_err(|e| helper_error("no answer", &e))?
            .map_err(|e| helper_error("reading its output", &e))?
            .ok_or_else(|| Error::Helper("it exited".into()))?;
        Ok(line.split_whitespace().filter_map(|word| word.parse().ok()).collect())
    };
    let idle_kib = read().await?.first().copied().unwrap_or(0);
    let sender = start(uri, "bench-stalled-tx", &ns, Profile::Default, SUBSCRIBER_CAPACITY).await?;
    let stalled_id = coord::NodeId::new("bench-stalled")?;
    let started = Instant::now();
    while !sender
        .member(&stalled_id)
        .is_some_and(|m| m.state == MemberState::Alive)
    {
        if started.elapsed() > JOIN_TIMEOUT {
            return Err(Error::Stalled("the stalled-receiver node did not join".into()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let payload = Bytes::from(vec![0u8; EVENT_BYTES]);
    let sending = Instant::now();
    for _ in 0..options.stalled_events {
        if sending.elapsed() > STALLED_SEND_TIMEOUT {
            break;
        }
        sender.broadcast(Event::custom(1, payload.clone())).await?;
    }
    // Until the helper's engine has taken every event, or takes no more.
    let (mut peak_kib, mut received) = (0, 0);
    let settling = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        stdin
            .write_all(b"report\n")
            .await
            .map_err(|e| helper_error("writing to it", &e))?;
        let figures = read().await?;
        let (hwm, now) = (
            figures.first().copied().unwrap_or(0),
            figures.get(1).copied().unwrap_or(0),
        );
        peak_kib = peak_kib.max(hwm);
        if now >= options.stalled_events || (now == received && now > 0) || settling.elapsed() > JOIN_TIMEOUT {
            received = now;
            break;
        }
        received = now;
    }
    drop(stdin);
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        child.kill().await.map_err(|e| helper_error("stopping it", &e))?;
    }
    sender.shutdown().await?;
    Ok(Memory {
        events: options.stalled_events,
        received,
        idle_kib,
        peak_kib,
    })
}

/// The helper process of the memory measurement: starts node `node_id` of
/// `namespace` on `uri` with one subscriber that never reads (default
/// subscriber capacity), prints `ready <VmHWM KiB>`, then answers each
/// `report` line on standard input with `<VmHWM KiB> <events received>`,
/// and shuts down when standard input closes.
pub async fn stalled_node(uri: &str, node_id: &str, namespace: &str) -> Result<(), Error> {
    let node = start(
        uri,
        node_id,
        namespace,
        Profile::Default,
        InboxConfig::default().subscriber_capacity,
    )
    .await?;
    let _never_read = node.subscribe();
    println!("ready {}", peak_rss_kib());
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "report" {
            println!("{} {}", peak_rss_kib(), node.stats().events_received);
        }
    }
    Ok(node.shutdown().await?)
}

/// This process's VmHWM in KiB (0 where `/proc` has none).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
