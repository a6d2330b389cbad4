//! `cargo xtask bench [--backend NAME]… [--quick] [--services MODE]`: starts
//! the servers the chosen backends need (as `cargo xtask test` does), runs
//! the `coord-bench` harness in a release build against them, and stops only
//! the servers it started. The table goes to standard output, the figures
//! to `<target>/bench/bench.json`.

use anyhow::{Context, Result, bail};

use crate::cmd::{self, Cargo};
use crate::conformance::target_dir;
use crate::services::{self, SERVERS, Server};

/// A backend the benchmark runs on, and the server it needs, if any.
struct Bench {
    name: &'static str,
    /// The name of its entry in [`SERVERS`].
    server: Option<&'static str>,
}

/// Every backend, in the order of the table. Redis is measured standalone:
/// Cluster and Sentinel carry pub/sub through the same kind of node.
const BENCHES: &[Bench] = &[
    Bench {
        name: "memory",
        server: None,
    },
    Bench {
        name: "zenoh",
        server: None,
    },
    Bench {
        name: "nats",
        server: Some("nats"),
    },
    Bench {
        name: "redis",
        server: Some("redis-standalone"),
    },
    Bench {
        name: "kafka",
        server: Some("kafka"),
    },
];

/// The chosen backends and whether the run is quick.
fn select(args: &[String]) -> Result<(Vec<&'static Bench>, bool)> {
    let (mut chosen, mut quick) = (Vec::new(), false);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let name = match arg.as_str() {
            "--quick" => {
                quick = true;
                continue;
            }
            "--backend" => args.next().context("`--backend` needs a name")?.as_str(),
            other => match other.strip_prefix("--backend=") {
                Some(name) => name,
                None => bail!("unexpected argument `{other}`; usage: cargo xtask bench [--backend NAME]… [--quick]"),
            },
        };
        let Some(bench) = BENCHES.iter().find(|b| b.name == name) else {
            let known: Vec<&str> = BENCHES.iter().map(|b| b.name).collect();
            bail!("unknown backend `{name}`; known backends: {}", known.join(", "));
        };
        chosen.push(bench);
    }
    if chosen.is_empty() {
        chosen = BENCHES.iter().collect();
    }
    Ok((chosen, quick))
}

/// The harness's `--backend` (and, for Zenoh, `--peer`) arguments of `bench`.
fn target_args(bench: &Bench, servers: &[&Server], env: &[(String, String)]) -> Result<Vec<String>> {
    let name = bench.name;
    Ok(match (name, bench.server) {
        ("zenoh", _) => {
            // The sender listens; the other nodes connect to it.
            let listen = services::free_addr()?;
            vec![
                "--backend".into(),
                format!("zenoh=zenoh://?listen=tcp/{listen}&scouting=off"),
                "--peer".into(),
                format!("zenoh=zenoh://{listen}?listen=tcp/127.0.0.1:0&scouting=off"),
            ]
        }
        (_, None) => vec!["--backend".into(), format!("{name}={name}://bench")],
        (_, Some(server)) => {
            let server = servers
                .iter()
                .find(|s| s.name == server)
                .expect("the server of a chosen backend is started");
            let url = env
                .iter()
                .find(|(key, _)| key == server.url_var)
                .map(|(_, url)| url)
                .with_context(|| format!("no {} for {name}", server.url_var))?;
            vec!["--backend".into(), format!("{name}={url}")]
        }
    })
}

/// Runs the benchmark of the backends `args` names, or of every backend.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut args = args.to_vec();
    let mode = services::take_mode(&mut args)?;
    let (chosen, quick) = select(&args)?;
    let servers: Vec<&'static Server> = SERVERS
        .iter()
        .filter(|server| chosen.iter().any(|b| b.server == Some(server.name)))
        .collect();
    let json = target_dir()?.join("bench").join("bench.json");
    println!("==> services ({mode:?})");
    let running = services::up(mode, &servers)?;
    let mut harness = vec!["run", "--release", "-p", "coord-bench"];
    if chosen.iter().any(|b| b.name == "kafka") {
        harness.extend(["--features", "kafka"]);
    }
    harness.push("--");
    let mut rest: Vec<String> = vec!["--json".into(), json.display().to_string()];
    if quick {
        rest.push("--quick".into());
    }
    for bench in &chosen {
        rest.extend(target_args(bench, &servers, &running.env)?);
    }
    harness.extend(rest.iter().map(String::as_str));
    let result = cmd::run_steps(vec![Cargo::new(&harness).into_step()]);
    drop(running);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(args: &[&str]) -> Result<(Vec<&'static str>, bool)> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        select(&args).map(|(chosen, quick)| (chosen.iter().map(|b| b.name).collect(), quick))
    }

    #[test]
    fn selection() {
        assert_eq!(
            names(&[]).unwrap(),
            (vec!["memory", "zenoh", "nats", "redis", "kafka"], false)
        );
        assert_eq!(names(&["--backend", "nats", "--quick"]).unwrap(), (vec!["nats"], true));
        assert_eq!(names(&["--backend=redis"]).unwrap().0, ["redis"]);
        assert!(
            names(&["--backend", "pigeon"])
                .unwrap_err()
                .to_string()
                .contains("known backends")
        );
        assert!(names(&["nats"]).is_err());
    }

    #[test]
    fn every_server_named_exists() {
        for bench in BENCHES {
            if let Some(server) = bench.server {
                assert!(SERVERS.iter().any(|s| s.name == server), "{server}");
            }
        }
    }
}
