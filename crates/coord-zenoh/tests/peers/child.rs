//! Three OS processes on loopback: the test binary runs itself three times
//! as cluster nodes, kills one with SIGKILL, and checks that the other two
//! report it failed within the detector's bound: once with Zenoh liveliness
//! feeding the detector, once with heartbeats alone, printing both times.
//!
//! A child ends by itself: when its stdin closes (the parent is gone or
//! done) or after [`LIFETIME`], whichever comes first.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coord_core::membership::{DetectorSettings, MembershipConfig};
use coord_core::{MemberEvent, Namespace, Node, NodeConfig, NodeId, Profile};
use coord_zenoh::ZenohTransport;
use futures::StreamExt;

use crate::{free_port, fresh_namespace, loopback};

/// Tells a child process which node it is (0, 1 or 2).
const CHILD_ENV: &str = "COORD_ZENOH_TEST_NODE";
const PORTS_ENV: &str = "COORD_ZENOH_TEST_PORTS";
const NAMESPACE_ENV: &str = "COORD_ZENOH_TEST_NAMESPACE";
/// `on` or `off`: the nodes' `liveliness` setting.
const LIVELINESS_ENV: &str = "COORD_ZENOH_TEST_LIVELINESS";
/// The longest a child lives.
const LIFETIME: Duration = Duration::from_secs(60);
/// What the children print for the parent starts with this.
const PREFIX: &str = "coord-node:";
const TEST_NAME: &str = "three_processes_detect_a_killed_peer";

/// A line a child printed: which node, what, when it arrived.
type Line = (usize, String, Instant);

pub(crate) fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// The child's side: one cluster node printing its membership events.
pub(crate) fn run() {
    let index: usize = std::env::var(CHILD_ENV).expect("node index").parse().expect("a number");
    let ports: Vec<u16> = std::env::var(PORTS_ENV)
        .expect("ports")
        .split(',')
        .map(|p| p.parse().expect("a port"))
        .collect();
    let namespace = Namespace::new(std::env::var(NAMESPACE_ENV).expect("namespace")).expect("valid namespace");
    let liveliness = std::env::var(LIVELINESS_ENV).expect("liveliness") == "on";
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = eof_tx.send(());
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("child runtime");
    runtime.block_on(async move {
        let me = NodeId::new(format!("n{index}")).expect("valid node id");
        let connect = ports[..index].iter().map(|port| format!("tcp/127.0.0.1:{port}"));
        let config = loopback(Some(format!("tcp/127.0.0.1:{}", ports[index])), None)
            .connect(connect)
            .liveliness(liveliness);
        let transport = ZenohTransport::open(config).await.expect("zenoh peer");
        let mut node_config = NodeConfig::new(me.clone()).with_namespace(namespace.clone());
        node_config.membership = MembershipConfig::profile(Profile::Fast);
        let node = Node::start(node_config, Arc::new(transport)).await.expect("node");
        let mut members = node.member_events();
        let lifetime = tokio::time::sleep(LIFETIME);
        tokio::pin!(lifetime);
        tokio::pin!(eof_rx);
        let mut out = std::io::stdout();
        loop {
            let line = tokio::select! {
                _ = &mut lifetime => break,
                _ = &mut eof_rx => break,
                Some(event) = members.next() => match event {
                    MemberEvent::Joined { node, .. } => format!("joined {node}"),
                    MemberEvent::Suspect { node, .. } => format!("suspect {node}"),
                    MemberEvent::Failed { node } => format!("failed {node}"),
                    MemberEvent::Left { node } => format!("left {node}"),
                    _ => continue,
                },
            };
            if writeln!(out, "{PREFIX} {line}").and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        let _ = node.shutdown().await;
    });
}

/// Kills what is still running of the children when dropped (a failed assertion).
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// How long after the kill each survivor reported the victim suspect, then failed.
struct Detection {
    suspect: [u128; 2],
    failed: [u128; 2],
}

/// The parent's side: the same crash with and without liveliness.
pub(crate) fn three_processes_detect_a_killed_peer() {
    let bound = DetectorSettings::of(Profile::Fast).expected_detection() * 3;
    let without = kill_one_of_three(false, bound);
    let with = kill_one_of_three(true, bound);
    println!(
        "n2 killed (SIGKILL, Fast profile: heartbeat 100 ms, bound {} ms): failed at n0/n1 after {:?} ms with \
         liveliness (suspect after {:?} ms), after {:?} ms with heartbeats alone (suspect after {:?} ms)",
        bound.as_millis(),
        with.failed,
        with.suspect,
        without.failed,
        without.suspect,
    );
}

/// Starts three nodes, kills the third, and measures how the others see it.
fn kill_one_of_three(liveliness: bool, bound: Duration) -> Detection {
    let ports: Vec<String> = (0..3).map(|_| free_port().to_string()).collect();
    let namespace = fresh_namespace();
    let exe = std::env::current_exe().expect("test binary");
    let (tx, rx) = mpsc::channel::<(usize, String)>();
    let mut children = Children(Vec::new());
    for index in 0..3 {
        let mut child = Command::new(&exe)
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, index.to_string())
            .env(PORTS_ENV, ports.join(","))
            .env(NAMESPACE_ENV, namespace.as_str())
            .env(LIVELINESS_ENV, if liveliness { "on" } else { "off" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a node process");
        let stdout = child.stdout.take().expect("piped stdout");
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Not at the start of the line: the test harness prints
                // `test <name> ... ` before the child's first line.
                if let Some((_, rest)) = line.split_once(PREFIX) {
                    let _ = tx.send((index, rest.trim().to_owned()));
                }
            }
        });
        children.0.push(child);
    }
    let mut seen: Vec<Line> = Vec::new();
    let mut wait_for = |what: &str, bound: Duration, done: &dyn Fn(&[Line]) -> bool| {
        let deadline = Instant::now() + bound;
        while !done(&seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((index, line)) => seen.push((index, line, Instant::now())),
                Err(_) => panic!("timed out after {bound:?} waiting for {what}; seen: {:?}", lines(&seen)),
            }
        }
    };
    wait_for(
        "every node to see the two others join",
        Duration::from_secs(30),
        &|seen| {
            (0..3).all(|i| {
                (0..3)
                    .filter(|&j| j != i)
                    .all(|j| has(seen, i, &format!("joined n{j}")))
            })
        },
    );
    let victim = &mut children.0[2];
    let killed_at = Instant::now();
    victim.kill().expect("SIGKILL the third node");
    victim.wait().expect("reap the third node");
    wait_for("the two others to report n2 failed", bound, &|seen| {
        (0..2).all(|i| has(seen, i, "suspect n2") && has(seen, i, "failed n2"))
    });
    let took = |index: usize, line: &str| {
        seen.iter()
            .find(|(i, l, _)| *i == index && l == line)
            .map(|(_, _, at)| at.duration_since(killed_at).as_millis())
    };
    let detection = Detection {
        suspect: [0, 1].map(|i| took(i, "suspect n2").expect("seen above")),
        failed: [0, 1].map(|i| took(i, "failed n2").expect("seen above")),
    };
    for child in &mut children.0[..2] {
        drop(child.stdin.take());
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for child in &mut children.0[..2] {
        while child.try_wait().expect("child status").is_none() {
            assert!(Instant::now() < deadline, "a node did not end after its stdin closed");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    detection
}

fn has(seen: &[Line], index: usize, line: &str) -> bool {
    seen.iter().any(|(i, l, _)| *i == index && l == line)
}

fn lines(seen: &[Line]) -> Vec<String> {
    seen.iter().map(|(i, l, _)| format!("n{i}: {l}")).collect()
}
