//! Where the server to talk to is: the one configured (standalone), or the
//! master the sentinels name right now (Sentinel, asked again on every
//! connect so that a failover is followed).

use coord_core::{Error, ErrorKind, Result};
use redis::aio::MultiplexedConnection;
use redis::{Client, IntoConnectionInfo, RedisConnectionInfo};

use crate::config::{RedisConfig, Topology};
use crate::errors::{redis_error, timed_out};
use crate::tls::TlsFiles;

/// Finds and connects to the server that carries pub/sub.
#[derive(Debug)]
pub(crate) struct Locator {
    config: RedisConfig,
    /// PEM contents of the TLS files, read once.
    tls: Option<TlsFiles>,
}

impl Locator {
    /// A locator for `config` (already validated); reads the TLS files.
    pub(crate) fn new(config: RedisConfig) -> Result<Self> {
        let tls = TlsFiles::read(&config)?;
        Ok(Locator { config, tls })
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// A client for the server at `host:port`, with the data credentials
    /// (`data`) or the sentinels' (`!data`).
    pub(crate) fn client_for(&self, server: &str, data: bool) -> Result<Client> {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        let url = format!("{scheme}://{server}");
        let mut redis = RedisConnectionInfo::default();
        let password = if data {
            self.config.password.as_deref()
        } else {
            self.config.sentinel_password.as_deref()
        };
        if data {
            if let Some(user) = &self.config.user {
                redis = redis.set_username(user);
            }
            redis = redis.set_db(self.config.db);
        }
        if let Some(password) = password {
            redis = redis.set_password(password);
        }
        let info = url
            .as_str()
            .into_connection_info()
            .map_err(|e| redis_error("redis config", server, e))?
            .set_redis_settings(redis);
        let client = match &self.tls {
            Some(tls) => Client::build_with_tls(info, tls.certificates()),
            None => Client::open(info),
        };
        client.map_err(|e| redis_error("redis config", server, e))
    }

    /// The server that carries pub/sub now: the configured one, or the
    /// master the first answering sentinel names.
    pub(crate) async fn server(&self) -> Result<String> {
        match self.config.topology {
            Topology::Sentinel => self.ask_sentinels().await,
            _ => Ok(self.config.servers[0].clone()),
        }
    }

    async fn ask_sentinels(&self) -> Result<String> {
        let name = self.config.master_name.as_deref().unwrap_or_default();
        let mut causes = Vec::new();
        for sentinel in &self.config.servers {
            let asked = async {
                let client = self.client_for(sentinel, false)?;
                let mut conn = self.multiplexed(&client, sentinel).await?;
                let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(name)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| redis_error("redis sentinel", sentinel, e))?;
                Ok::<_, Error>(reply)
            };
            match tokio::time::timeout(self.config.command_timeout, asked).await {
                Ok(Ok(Some((host, port)))) => {
                    let announced = format!("{host}:{port}");
                    return Ok(self.config.reachable(&announced).to_owned());
                }
                Ok(Ok(None)) => causes.push(format!("{sentinel}: knows no master named {name:?}")),
                Ok(Err(error)) => causes.push(format!("{sentinel}: {}", error.message())),
                Err(_) => causes.push(format!(
                    "{sentinel}: no answer within {:?}",
                    self.config.command_timeout
                )),
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "redis sentinel",
            format!("no sentinel named the master {name:?}: {}", causes.join("; ")),
        )
        .temporary())
    }

    /// A multiplexed connection to `server`, within the connect timeout.
    pub(crate) async fn multiplexed(&self, client: &Client, server: &str) -> Result<MultiplexedConnection> {
        let bound = self.config.connect_timeout;
        match tokio::time::timeout(bound, client.get_multiplexed_async_connection()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(redis_error("redis connect", server, error)),
            Err(_) => Err(timed_out("redis connect", server, bound)),
        }
    }

    /// A connection to the pub/sub server for publishing, and its address.
    /// Under Sentinel it checks that the server really is the master (a
    /// demoted master still takes `PUBLISH`, but its subscribers are gone).
    pub(crate) async fn publisher(&self) -> Result<(MultiplexedConnection, String)> {
        let server = self.server().await?;
        let client = self.client_for(&server, true)?;
        let mut conn = self.multiplexed(&client, &server).await?;
        // A command proves the credentials (a connection is accepted before
        // any is checked); under Sentinel, ROLE also proves it is the master
        // (a demoted master still takes PUBLISH, but its subscribers are gone).
        let command = if self.config.topology == Topology::Sentinel {
            "ROLE"
        } else {
            "PING"
        };
        let reply: redis::Value =
            tokio::time::timeout(self.config.command_timeout, redis::cmd(command).query_async(&mut conn))
                .await
                .map_err(|_| timed_out("redis connect", &server, self.config.command_timeout))?
                .map_err(|e| redis_error("redis connect", &server, e))?;
        if self.config.topology == Topology::Sentinel {
            let is_master = matches!(&reply, redis::Value::Array(role) if matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master"));
            if !is_master {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "redis connect",
                    format!("{server}, named master by the sentinels, is not a master (failover under way?)"),
                )
                .temporary());
            }
        }
        Ok((conn, server))
    }
}
