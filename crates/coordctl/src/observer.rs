//! Loading a config file and joining its cluster, as the node it describes
//! or as a short-lived observer beside it.

use std::path::Path;

use anyhow::{Context, Result, bail};
use coord::{Config, Coordinator, NodeId};

/// The role an observer announces, so the other nodes' views tell it apart.
pub(crate) const OBSERVER_ROLE: &str = "coordctl-observer";

/// Reads and checks the config file at `path`.
///
/// Errors name the file, and for a bad key the key, its line and the fix
/// (the facade's messages).
pub(crate) fn load(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the config file `{}`: pass an existing TOML file with a [coordinator] table \
             (examples in the repository's examples/ directory)",
            path.display()
        )
    })?;
    Config::from_toml(&text).with_context(|| format!("in `{}`", path.display()))
}

/// `config` changed to describe an observer of the same cluster: its own
/// node id (`coordctl-<command>-<pid>`), the observer role, and on Zenoh its
/// listening endpoints moved to ports the system picks (the node on this
/// host holds the configured ones); gossip tells the peers where they are,
/// so two observers reach each other too.
pub(crate) fn as_observer(mut config: Config, command: &str) -> Result<Config> {
    let id = format!("coordctl-{command}-{}", std::process::id());
    let coordinator = &mut config.coordinator;
    coordinator.node_id = Some(NodeId::new(&id)?);
    coordinator.roles = vec![OBSERVER_ROLE.to_owned()];
    if let Some(zenoh) = coordinator.zenoh.as_mut() {
        if zenoh.connect.is_empty() && !zenoh.multicast_scouting {
            bail!(
                "`[coordinator.zenoh]` has no `connect` endpoints and scouting is off, so an observer \
                 could not find the cluster: add the nodes' endpoints to `connect`"
            );
        }
        zenoh.listen = zenoh.listen.iter().map(|endpoint| any_port(endpoint)).collect();
    }
    Ok(config)
}

/// A Zenoh endpoint (`tcp/host:port`, maybe with `#options`) on port 0.
fn any_port(endpoint: &str) -> String {
    let (address, options) = endpoint.split_once('#').map_or((endpoint, None), |(a, o)| (a, Some(o)));
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    match options {
        Some(options) => format!("{host}:0#{options}"),
        None => format!("{host}:0"),
    }
}

/// Starts a coordinator from `config`. A backend that cannot be reached
/// fails with the backend's message, which names the address and what to
/// check (e.g. "cannot connect to the NATS server at nats://…: is
/// nats-server running and listening there?").
pub(crate) async fn join(config: &Config) -> Result<Coordinator> {
    Ok(Coordinator::from_config(config).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observer_endpoints_keep_the_host_and_options_on_any_port() {
        assert_eq!(any_port("tcp/127.0.0.1:7447"), "tcp/127.0.0.1:0");
        assert_eq!(any_port("tcp/[::1]:7447"), "tcp/[::1]:0");
        assert_eq!(any_port("tls/0.0.0.0:7447#iface=lo"), "tls/0.0.0.0:0#iface=lo");
    }
}
