//! The `coordctl` binary end to end: the demo, and `node`, `members`,
//! `send` and `watch` as separate processes on Zenoh peers (loopback, no
//! server) and on the real redis-server `cargo xtask test` starts.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coord_conformance::{server_address, service_spec};
use serde_json::Value;

/// Longest wait for any expected line.
const DEADLINE: Duration = Duration::from_secs(20);

fn coordctl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coordctl"));
    command.env("RUST_LOG", "warn");
    command
}

/// Runs `coordctl args…` to completion, within [`DEADLINE`].
fn run(args: &[&str]) -> Output {
    let mut child = coordctl()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if began.elapsed() > DEADLINE * 3 {
            child.kill().unwrap();
            panic!("coordctl {args:?} did not finish within {:?}", DEADLINE * 3);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A `coordctl` process left running, its stdout read line by line.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = coordctl()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first JSON line from now on for which `wanted` holds.
    fn expect(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else { break };
            self.seen.push(line.clone());
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && wanted(&value)
            {
                return value;
            }
        }
        panic!(
            "no line {what} within {DEADLINE:?}; lines so far:\n{}",
            self.seen.join("\n")
        );
    }

    /// Sends SIGTERM (what a service manager sends) and waits for the exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if began.elapsed() > DEADLINE {
                self.child.kill().unwrap();
                panic!("coordctl did not exit within {DEADLINE:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coordctl-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `[coordinator]` table on the `fast` profile for `namespace`.
fn coordinator(node_id: &str, namespace: &str, backend: &str) -> String {
    format!(
        "[coordinator]\nnode-id = \"{node_id}\"\nnamespace = \"{namespace}\"\n\
         secret = \"coordctl-test-secret-of-32-bytes\"\nroles = [\"imap\"]\n{backend}\n\
         [coordinator.membership]\nprofile = \"fast\"\n"
    )
}

fn zenoh_table(listen: &[u16], connect: &[u16]) -> String {
    let endpoints = |ports: &[u16]| {
        ports
            .iter()
            .map(|port| format!("\"tcp/127.0.0.1:{port}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[coordinator.zenoh]\nlisten = [{}]\nconnect = [{}]\nmulticast-scouting = false\n",
        endpoints(listen),
        endpoints(connect)
    )
}

fn is(value: &Value, key: &str, expected: &str) -> bool {
    value.pointer(key).and_then(Value::as_str) == Some(expected)
}

#[test]
fn the_demo_exits_0_on_the_default_zenoh_peers_and_prints_the_detection_time() {
    let output = run(&["demo"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "IMAP IDLE session on mx1 is told after",
        "enforced on mx3 after",
        "routed from mx1 to mx3 alone",
        "mx2 reports mx3 FAILED after",
        "failure detection:",
    ] {
        assert!(stdout.contains(expected), "`{expected}` missing:\n{stdout}");
    }
}

#[test]
fn bench_measures_coord_on_the_given_backend_and_prints_the_tables() {
    let output = run(&[
        "bench",
        "--backend",
        "memory://cli-bench",
        "--quick",
        "--events",
        "5000",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let row = |table: &str| {
        let section = stdout.split("### ").find(|s| s.starts_with(table)).unwrap_or_default();
        section
            .lines()
            .find(|line| line.starts_with("| memory |"))
            .map(str::to_owned)
    };
    let throughput = row("Throughput").unwrap_or_else(|| panic!("no throughput row:\n{stdout}"));
    assert!(throughput.contains("100.0%"), "every event delivered: {throughput}");
    let membership = row("Membership").unwrap_or_else(|| panic!("no membership row:\n{stdout}"));
    assert!(!membership.contains("| - |"), "crash detection measured: {membership}");
}

#[test]
fn node_members_send_and_watch_work_together_on_zenoh_peers() {
    let dir = temp_dir("zenoh");
    let (a, b) = (free_port(), free_port());
    let namespace = "cli-zenoh";
    let config_a = write(
        &dir,
        "a.toml",
        &format!("{}{}", coordinator("a", namespace, ""), zenoh_table(&[a], &[b])),
    );
    let config_b = write(
        &dir,
        "b.toml",
        &format!("{}{}", coordinator("b", namespace, ""), zenoh_table(&[b], &[a])),
    );
    let tools = write(
        &dir,
        "tools.toml",
        &format!("{}{}", coordinator("tools", namespace, ""), zenoh_table(&[a], &[a, b])),
    );
    let tools = tools.to_str().unwrap();

    let mut node_a = Running::start(&["node", "--json", "--config", config_a.to_str().unwrap()]);
    let mut node_b = Running::start(&["node", "--json", "--config", config_b.to_str().unwrap()]);
    node_a.expect("where a sees b join", |v| {
        is(v, "/change", "joined") && is(v, "/detail/node", "b")
    });

    let members = run(&["members", "--config", tools, "--listen", "1s"]);
    let table = String::from_utf8_lossy(&members.stdout);
    assert!(members.status.success(), "{table}");
    for node in ["a", "b"] {
        assert!(
            table
                .lines()
                .any(|line| line.starts_with(&format!("{node} ")) && line.contains(" alive ")),
            "{node} alive missing:\n{table}"
        );
    }

    let mut watch = Running::start(&["watch", "--json", "--config", tools]);
    watch.expect("with a heartbeat of a", |v| {
        is(v, "/verdict", "accepted") && is(v, "/sender", "a") && is(v, "/kind", "heartbeat")
    });

    let sent = run(&[
        "send",
        "--config",
        tools,
        "--to",
        "b",
        "state-change",
        "--account",
        "42",
    ]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    node_b.expect("with the directed state change", |v| {
        is(v, "/type", "event") && v["directed"] == true && v["event"]["account"] == 42
    });

    let sent = run(&["send", "--config", tools, "block-ip", "192.0.2.9"]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    for node in [&mut node_a, &mut node_b] {
        node.expect("with the blocked IP", |v| {
            is(v, "/event/kind", "ip-blocked") && is(v, "/event/ip", "192.0.2.9")
        });
    }
    watch.expect("with the broadcast frame of the blocked IP", |v| {
        is(v, "/kind", "broadcast") && is(v, "/content/events/0/ip", "192.0.2.9")
    });

    assert!(node_a.terminate().success(), "a exits 0 on SIGTERM");
    node_b.expect("where b sees a leave", |v| {
        is(v, "/change", "left") && is(v, "/detail/node", "a")
    });
    watch.expect("with a's leave frame", |v| {
        is(v, "/sender", "a") && is(v, "/kind", "leave")
    });
    assert!(watch.terminate().success());
    assert!(node_b.terminate().success());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn watch_shows_a_frame_injected_with_redis_cli_as_rejected_while_the_nodes_keep_running() {
    let Some(url) = server_address("redis", "COORD_REDIS_URL") else {
        return;
    };
    let specs = service_spec("COORD_REDIS_SERVICE").expect("COORD_REDIS_SERVICE names xtask's redis-server");
    let redis_cli = specs[0].program.with_file_name("redis-cli");
    let dir = temp_dir("redis");
    let namespace = format!("cli-redis-{}", std::process::id());
    let backend = format!("backend = \"{url}\"");
    let node = write(&dir, "node.toml", &coordinator("mx1", &namespace, &backend));
    let tools = write(&dir, "tools.toml", &coordinator("tools", &namespace, &backend));

    let mut node = Running::start(&["node", "--json", "--config", node.to_str().unwrap()]);
    let mut watch = Running::start(&["watch", "--json", "--config", tools.to_str().unwrap()]);
    watch.expect("with a heartbeat of mx1", |v| is(v, "/sender", "mx1"));

    let published = Command::new(&redis_cli)
        .args(["-u", &url, "PUBLISH", &format!("{namespace}.all"), "forged garbage"])
        .output()
        .unwrap();
    assert!(published.status.success(), "{published:?}");
    assert_eq!(
        String::from_utf8_lossy(&published.stdout).trim(),
        "2",
        "both nodes subscribe"
    );
    let rejected = watch.expect("rejecting the garbage", |v| is(v, "/verdict", "rejected"));
    assert_eq!(rejected["reason"], "not-a-frame", "{rejected}");
    assert_eq!(rejected["bytes"], "forged garbage".len(), "{rejected}");

    let after = Instant::now();
    watch.expect("with mx1 still heartbeating", |v| is(v, "/sender", "mx1"));
    assert!(after.elapsed() < Duration::from_secs(2), "mx1 kept running");
    assert!(watch.terminate().success());
    node.expect("where mx1 sees the watcher leave", |v| is(v, "/change", "left"));
    assert!(node.terminate().success());
    std::fs::remove_dir_all(dir).unwrap();
}
