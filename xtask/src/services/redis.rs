//! The three Redis deployments the suite runs on, from the Debian
//! `redis-server` package, nothing persisted: a standalone server; a
//! Cluster of three masters (`redis-cli --cluster create`); and Sentinel:
//! a master, a replica and three sentinels.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coord_conformance::service::{ReadyCheck, ServiceSpec};

use super::{Install, Launch, Server, Tool, free_addr, no_setup, process};

/// The name the sentinels know the master by.
pub(crate) const MASTER_NAME: &str = "coordmaster";
/// How long a deployment may take to settle after its processes listen.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

const TOOLS: &[Tool] = &[
    Tool {
        binary: "redis-server",
        installed_at: &["/usr/bin/redis-server"],
        install: Install::Apt {
            package: "redis-server",
        },
    },
    Tool {
        binary: "redis-cli",
        installed_at: &["/usr/bin/redis-cli"],
        install: Install::Apt { package: "redis-tools" },
    },
];

/// Arguments of a data server on `addr` keeping its files in `dir`.
fn data_server(addr: SocketAddr, dir: &Path) -> Vec<String> {
    let port = addr.port().to_string();
    [
        "--bind",
        "127.0.0.1",
        "--port",
        &port,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// A fresh directory for one deployment's files.
fn fresh_dir(launch: &Launch<'_>, name: &str) -> Result<PathBuf> {
    let dir = launch.dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `redis-server` alone.
pub(crate) const STANDALONE: Server = Server {
    name: "redis-standalone",
    backend: "redis",
    tools: TOOLS,
    url_var: "COORD_REDIS_URL",
    service_var: "COORD_REDIS_SERVICE",
    processes: |launch| {
        let dir = fresh_dir(launch, "redis-standalone")?;
        let addr = free_addr()?;
        Ok(vec![process(
            launch,
            "redis-standalone",
            &launch.tools[0],
            data_server(addr, &dir),
            vec![addr],
        )])
    },
    setup: no_setup,
    url: |specs| format!("redis://{}", specs[0].listens[0]),
    docker_url: Some("redis://127.0.0.1:16379"),
};

/// Three masters joined into a Cluster.
pub(crate) const CLUSTER: Server = Server {
    name: "redis-cluster",
    backend: "redis",
    tools: TOOLS,
    url_var: "COORD_REDIS_CLUSTER_URL",
    service_var: "COORD_REDIS_CLUSTER_SERVICE",
    processes: |launch| {
        let dir = fresh_dir(launch, "redis-cluster")?;
        (0..3)
            .map(|i| {
                let addr = free_addr()?;
                let mut args = data_server(addr, &dir);
                let nodes = format!("nodes-{}.conf", addr.port());
                args.extend(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &nodes,
                        "--cluster-node-timeout",
                        "2000",
                    ]
                    .map(String::from),
                );
                Ok(process(
                    launch,
                    &format!("redis-cluster-{i}"),
                    &launch.tools[0],
                    args,
                    vec![addr],
                ))
            })
            .collect()
    },
    setup: create_cluster,
    url: |specs| {
        let seeds: Vec<String> = specs.iter().map(|s| s.listens[0].to_string()).collect();
        format!("redis+cluster://{}", seeds.join(","))
    },
    docker_url: None,
};

/// A master, its replica and three sentinels watching them.
pub(crate) const SENTINEL: Server = Server {
    name: "redis-sentinel",
    backend: "redis",
    tools: TOOLS,
    url_var: "COORD_REDIS_SENTINEL_URL",
    service_var: "COORD_REDIS_SENTINEL_SERVICE",
    processes: |launch| {
        let dir = fresh_dir(launch, "redis-sentinel")?;
        let server = &launch.tools[0];
        let master = free_addr()?;
        let replica = free_addr()?;
        let mut replica_args = data_server(replica, &dir);
        replica_args.extend(["--replicaof".into(), "127.0.0.1".into(), master.port().to_string()]);
        let mut specs = vec![
            process(
                launch,
                "redis-sentinel-master",
                server,
                data_server(master, &dir),
                vec![master],
            ),
            process(launch, "redis-sentinel-replica", server, replica_args, vec![replica]),
        ];
        for i in 0..3 {
            let addr = free_addr()?;
            let conf = dir.join(format!("sentinel-{i}.conf"));
            let text = format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 5000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                port = addr.port(),
                dir = dir.display(),
                master_port = master.port(),
            );
            std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
            let args = vec![conf.display().to_string(), "--sentinel".to_owned()];
            specs.push(process(
                launch,
                &format!("redis-sentinel-{i}"),
                server,
                args,
                vec![addr],
            ));
        }
        Ok(specs)
    },
    setup: await_sentinels,
    url: |specs| {
        let sentinels: Vec<String> = specs[2..].iter().map(|s| s.listens[0].to_string()).collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", sentinels.join(","))
    },
    docker_url: None,
};

/// Runs `redis-cli -h 127.0.0.1 -p <port> <args…>` and returns its output.
fn cli(redis_cli: &Path, addr: SocketAddr, args: &[&str]) -> Result<String> {
    let out = Command::new(redis_cli)
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(args)
        .output()
        .with_context(|| format!("running {}", redis_cli.display()))?;
    if !out.status.success() {
        bail!(
            "`redis-cli -p {} {}` failed: {}",
            addr.port(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `check` until it holds or the settle timeout passes.
fn settle(what: &str, mut check: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while !check()? {
        if Instant::now() > deadline {
            bail!("{what} did not happen within {SETTLE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Joins the three masters and waits until every node reports the
/// cluster `ok`; a restart of the deployment (by a test) is ready when its
/// last node reports it `ok` again.
fn create_cluster(specs: &mut [ServiceSpec], tools: &[PathBuf]) -> Result<()> {
    let redis_cli = &tools[1];
    let nodes: Vec<String> = specs.iter().map(|s| s.listens[0].to_string()).collect();
    println!(
        "==> redis-cluster: redis-cli --cluster create {} --cluster-replicas 0",
        nodes.join(" ")
    );
    let mut args = vec!["--cluster", "create"];
    args.extend(nodes.iter().map(String::as_str));
    args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    cli(redis_cli, specs[0].listens[0], &args)?;
    settle("cluster_state:ok on every node", || {
        for spec in specs.iter() {
            if !cli(redis_cli, spec.listens[0], &["cluster", "info"])?.contains("cluster_state:ok") {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    if let Some(last) = specs.last_mut() {
        let port = last.listens[0].port().to_string();
        last.ready = Some(ReadyCheck {
            program: redis_cli.clone(),
            args: ["-h", "127.0.0.1", "-p", &port, "cluster", "info"]
                .map(String::from)
                .to_vec(),
            expect: "cluster_state:ok".to_owned(),
        });
    }
    Ok(())
}

/// Waits until the replica has synced and every sentinel knows the master
/// and its replica.
fn await_sentinels(specs: &mut [ServiceSpec], tools: &[PathBuf]) -> Result<()> {
    let redis_cli = &tools[1];
    settle("the replica in sync with the master", || {
        let info = cli(redis_cli, specs[0].listens[0], &["info", "replication"])?;
        Ok(info.contains("connected_slaves:1") && info.contains("state=online"))
    })?;
    settle("every sentinel knowing the master and its replica", || {
        for sentinel in &specs[2..] {
            let replicas = cli(redis_cli, sentinel.listens[0], &["sentinel", "replicas", MASTER_NAME])?;
            if !replicas.contains(&specs[1].listens[0].port().to_string()) {
                return Ok(false);
            }
        }
        Ok(true)
    })
}
