//! `coordctl demo`: three nodes in this process show what coord does, with
//! timings: a mailbox change reaching an IDLE watcher, a blocked IP reaching
//! every node, a push routed to one node, a crash detected, a graceful leave.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use coord::{Coordinator, DataTypes, Event, Feed, Incoming, MemberEvent, MemberState, NodeId, Profile, Secret};
use futures::StreamExt;

/// Longest any step may take before the demo gives up (crash detection on
/// the `fast` profile takes about one second).
const STEP_DEADLINE: Duration = Duration::from_secs(10);

/// How long the node that was not addressed is watched for a stray copy of
/// the directed push.
const STRAY_WATCH: Duration = Duration::from_millis(200);

/// The IMAP account whose mailbox changes.
const ACCOUNT: u32 = 42;

/// The options of `coordctl demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// A backend URI for the three nodes, e.g. `nats://127.0.0.1:4222`,
    /// `redis://127.0.0.1:6379` or `memory://demo`. Without it the nodes
    /// are Zenoh peers on loopback: nothing to install or start.
    #[arg(long)]
    backend: Option<String>,
}

/// One node of the demo and what it receives.
struct DemoNode {
    name: &'static str,
    coordinator: Coordinator,
    events: Feed<Incoming>,
    members: Feed<MemberEvent>,
}

/// A step's line in the closing summary.
struct Step {
    what: String,
    took: Duration,
}

/// Runs the demo; fails naming the step that did not happen in time.
pub(crate) async fn run(args: DemoArgs) -> Result<()> {
    let uris = backend_uris(args.backend.as_deref())?;
    let namespace = format!("demo-{}", std::process::id());
    let secret = Secret::new(format!("coordctl-demo-secret-{namespace}"))?;
    println!("coord demo: three nodes of one mail cluster, `fast` failure-detection profile");
    println!("backend: {}", shown_backend(args.backend.as_deref()));
    let began = Instant::now();
    let mut nodes = Vec::new();
    for (name, uri) in ["mx1", "mx2", "mx3"].into_iter().zip(uris) {
        let coordinator = Coordinator::builder()
            .node_id(name)
            .namespace(&namespace)
            .secret(secret.clone())
            .profile(Profile::Fast)
            .roles(["imap", "jmap", "smtp"])
            .version(env!("CARGO_PKG_VERSION"))
            .uri(&uri)
            .start()
            .await
            .with_context(|| format!("starting {name} on {uri}"))?;
        let events = coordinator.subscribe();
        let members = coordinator.membership();
        nodes.push(DemoNode {
            name,
            coordinator,
            events,
            members,
        });
    }
    let mut steps = Vec::new();

    let took = step("the three nodes see each other", formed(&nodes)).await?;
    say(&format!(
        "cluster formed: every node sees the two others alive after {}",
        ms(took)
    ));
    steps.push(Step {
        what: "cluster formed (each node sees 2 peers alive)".into(),
        took,
    });

    let change = Event::state_change(ACCOUNT, 1001, DataTypes::EMAIL | DataTypes::MAILBOX);
    let sent = Instant::now();
    nodes[1].coordinator.broadcast(change.clone()).await?;
    let [mx1, ..] = &mut nodes[..] else { unreachable!() };
    step("mx1 hears the mailbox change", received(&mut mx1.events, &change)).await?;
    let took = sent.elapsed();
    say(&format!(
        "new mail for account {ACCOUNT} delivered on mx2 -> the IMAP IDLE session on mx1 is told after {}: \
         it sends `* EXISTS` to its client",
        ms(took)
    ));
    steps.push(Step {
        what: "mailbox change mx2 -> IDLE watcher on mx1".into(),
        took,
    });

    let blocked = Event::IpBlocked {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        expires_at_ms: None,
    };
    let sent = Instant::now();
    nodes[0].coordinator.broadcast(blocked.clone()).await?;
    for index in [1, 2] {
        let node = &mut nodes[index];
        step(
            &format!("{} hears the blocked IP", node.name),
            received(&mut node.events, &blocked),
        )
        .await?;
        say(&format!(
            "192.0.2.7 blocked by the SMTP server on mx1 -> enforced on {} after {}",
            node.name,
            ms(sent.elapsed())
        ));
    }
    steps.push(Step {
        what: "blocked IP mx1 -> mx2 and mx3".into(),
        took: sent.elapsed(),
    });

    let push = Event::PushSubscriptionChanged { account_id: ACCOUNT };
    let mx3_id = nodes[2].coordinator.node_id().clone();
    let sent = Instant::now();
    nodes[0].coordinator.send_to(&mx3_id, push.clone()).await?;
    step("mx3 receives the directed push", received(&mut nodes[2].events, &push)).await?;
    let took = sent.elapsed();
    if tokio::time::timeout(STRAY_WATCH, received(&mut nodes[1].events, &push))
        .await
        .is_ok()
    {
        bail!("mx2 received the push meant for mx3 alone");
    }
    say(&format!(
        "push subscription of account {ACCOUNT} changed -> routed from mx1 to mx3 alone after {} \
         (mx2 got nothing in {} of watching)",
        ms(took),
        ms(STRAY_WATCH)
    ));
    steps.push(Step {
        what: "directed push mx1 -> mx3 only".into(),
        took,
    });

    let crashed = Instant::now();
    nodes[2].coordinator.node().abort().await;
    say("mx3 killed: no leave sent, as if its process had crashed");
    let mut detected = Vec::new();
    for index in [0, 1] {
        let node = &mut nodes[index];
        step(
            &format!("{} reports mx3 failed", node.name),
            member_event(
                &mut node.members,
                |change| matches!(change, MemberEvent::Failed { node } if *node == mx3_id),
            ),
        )
        .await?;
        let took = crashed.elapsed();
        say(&format!("{} reports mx3 FAILED after {}", node.name, ms(took)));
        detected.push(took);
    }
    let slowest = detected.into_iter().max().unwrap_or_default();
    steps.push(Step {
        what: "crash of mx3 detected by mx1 and mx2".into(),
        took: slowest,
    });

    let mx2_id = nodes[1].coordinator.node_id().clone();
    let left = Instant::now();
    nodes[1].coordinator.shutdown().await?;
    step(
        "mx1 sees mx2 leave",
        member_event(
            &mut nodes[0].members,
            |change| matches!(change, MemberEvent::Left { node } if *node == mx2_id),
        ),
    )
    .await?;
    let took = left.elapsed();
    say(&format!(
        "mx2 shut down gracefully -> mx1 reports it left (not failed) after {}",
        ms(took)
    ));
    steps.push(Step {
        what: "graceful leave of mx2 seen by mx1".into(),
        took,
    });
    nodes[0].coordinator.shutdown().await?;

    println!();
    print!("{}", summary(&steps));
    println!(
        "failure detection: {} from crash to `failed` ({} in all)",
        ms(slowest),
        ms(began.elapsed())
    );
    Ok(())
}

/// The backend URI of each of the three nodes.
fn backend_uris(backend: Option<&str>) -> Result<[String; 3]> {
    match backend {
        Some(uri) if uri.starts_with("zenoh:") => bail!(
            "--backend zenoh://… would make the three nodes listen on one address: leave --backend out \
             and the demo starts three Zenoh peers on loopback ports of its own"
        ),
        Some(uri) => Ok([uri.to_owned(), uri.to_owned(), uri.to_owned()]),
        None => {
            let ports = [free_port()?, free_port()?, free_port()?];
            Ok([0, 1, 2].map(|me| {
                let peers: Vec<String> = (0..3)
                    .filter(|other| *other != me)
                    .map(|other| format!("127.0.0.1:{}", ports[other]))
                    .collect();
                format!(
                    "zenoh://{}?listen=tcp/127.0.0.1:{}&scouting=off",
                    peers.join(","),
                    ports[me]
                )
            }))
        }
    }
}

fn shown_backend(backend: Option<&str>) -> String {
    match backend {
        Some(uri) => coord::BackendUri::parse(uri).map_or_else(|_| uri.to_owned(), |uri| uri.to_string()),
        None => "Zenoh peers on 127.0.0.1 (the embedded default: no server)".to_owned(),
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Runs `work` within [`STEP_DEADLINE`], returning how long it took.
async fn step<T>(what: &str, work: impl Future<Output = Result<T>>) -> Result<Duration> {
    let began = Instant::now();
    match tokio::time::timeout(STEP_DEADLINE, work).await {
        Ok(result) => result.map(|_| began.elapsed()),
        Err(_) => bail!("step failed: {what} did not happen within {}", ms(STEP_DEADLINE)),
    }
}

/// Until every node sees the two others alive.
async fn formed(nodes: &[DemoNode]) -> Result<()> {
    loop {
        let all = nodes.iter().all(|node| {
            let me = node.coordinator.node_id();
            nodes
                .iter()
                .map(|peer| peer.coordinator.node_id())
                .filter(|peer| *peer != me)
                .all(|peer| alive(&node.coordinator, peer))
        });
        if all {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn alive(coordinator: &Coordinator, peer: &NodeId) -> bool {
    coordinator
        .member(peer)
        .is_some_and(|member| member.state == MemberState::Alive)
}

/// Until `event` arrives on `events`.
async fn received(events: &mut Feed<Incoming>, event: &Event) -> Result<()> {
    while let Some(item) = events.next().await {
        if matches!(&item, Incoming::Event(delivery) if delivery.event == *event) {
            return Ok(());
        }
    }
    bail!("the node stopped")
}

/// Until a membership change matching `wanted` arrives.
async fn member_event(members: &mut Feed<MemberEvent>, wanted: impl Fn(&MemberEvent) -> bool) -> Result<()> {
    while let Some(change) = members.next().await {
        if wanted(&change) {
            return Ok(());
        }
    }
    bail!("the node stopped")
}

fn say(line: &str) {
    println!("  {line}");
}

/// A duration in milliseconds with a precision that suits it.
fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// The closing table: one line per step.
fn summary(steps: &[Step]) -> String {
    let width = steps.iter().map(|step| step.what.len()).max().unwrap_or(0).max(4);
    let mut out = format!(
        "{:<width$}  {:>10}\n{}  {}\n",
        "step",
        "time",
        "-".repeat(width),
        "-".repeat(10)
    );
    for step in steps {
        out.push_str(&format!("{:<width$}  {:>10}\n", step.what, ms(step.took)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_runs_on_the_memory_backend() {
        run(DemoArgs {
            backend: Some("memory://coordctl-demo-test".into()),
        })
        .await
        .unwrap();
    }

    #[test]
    fn zenoh_peers_connect_to_each_other_on_their_own_ports() {
        let uris = backend_uris(None).unwrap();
        let listen = |uri: &str| {
            uri.split("listen=tcp/")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_owned()
        };
        let targets = |uri: &str| uri["zenoh://".len()..].split('?').next().unwrap().to_owned();
        for me in &uris {
            for other in &uris {
                let connects = targets(other).split(',').any(|peer| peer == listen(me));
                assert_eq!(connects, me != other, "{uris:?}");
            }
        }
        assert!(backend_uris(Some("zenoh://127.0.0.1:7447")).is_err());
    }
}
