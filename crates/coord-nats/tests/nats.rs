//! coord-nats against a real `nats-server`: the whole conformance suite, and
//! authentication against servers started with a user/password and a token.
//!
//! `cargo xtask test` starts the server and sets `COORD_NATS_URL` (its
//! address) and `COORD_NATS_SERVICE` (how to stop and restart it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coord_conformance::service::TestServer;
use coord_conformance::{NetworkFixture, run_and_check, server_address, service_spec};
use coord_core::transport::Received;
use coord_core::{Channel, ErrorKind, Namespace, Transport, TransportDyn};
use coord_nats::{NatsConfig, NatsTls, NatsTransport};
use futures::StreamExt;

const URL_VAR: &str = "COORD_NATS_URL";
const SERVICE_VAR: &str = "COORD_NATS_SERVICE";

fn socket_addr(url: &str) -> SocketAddr {
    let hostport = url.trim_start_matches("nats://").trim_end_matches('/');
    hostport
        .parse()
        .unwrap_or_else(|_| panic!("{URL_VAR}={url} is not nats://<ip>:<port>"))
}

/// Test settings: quick reconnects so outages heal within the cases' bounds.
fn config(addr: SocketAddr) -> NatsConfig {
    let mut config = NatsConfig::new([format!("nats://{addr}")]);
    config.connect_timeout = Duration::from_secs(3);
    config.reconnect_max_delay = Duration::from_millis(500);
    config.ping_interval = Duration::from_secs(2);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_passes_the_conformance_suite() {
    let Some(url) = server_address("nats", URL_VAR) else {
        return;
    };
    let server = socket_addr(&url);
    let fixture = NetworkFixture::new(
        "nats",
        server,
        service_spec(SERVICE_VAR),
        Box::new(|addr| {
            Box::pin(async move {
                let transport: Arc<dyn TransportDyn> = Arc::new(NatsTransport::connect(&config(addr)).await?);
                Ok(transport)
            })
        }),
    );
    run_and_check(&fixture).await;
}

/// A nats-server of this test's own, started with extra arguments and
/// stopped (by its pid) when dropped; `None` when the suite skips.
fn own_server(name: &str, extra: &[&str]) -> Option<TestServer> {
    let program = match service_spec(SERVICE_VAR) {
        Some(specs) => specs[0].program.clone(),
        None => {
            server_address("nats", URL_VAR)?;
            panic!("{SERVICE_VAR} is not set: the auth tests need the nats-server binary xtask found");
        }
    };
    Some(TestServer::start(&format!("nats-{name}"), &program, |port| {
        let mut args: Vec<String> = ["-a", "127.0.0.1", "-p", &port.to_string()].map(String::from).to_vec();
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    }))
}

/// Publishes a frame through `transport` and sees it come back.
async fn round_trip(transport: &NatsTransport) {
    let channel = Channel::all(&Namespace::new("authcheck").unwrap());
    let mut subscription = transport.subscribe(&channel).await.unwrap();
    transport.publish(&channel, Bytes::from_static(b"hello")).await.unwrap();
    let item = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .unwrap();
    assert_eq!(item, Some(Received::Frame(Bytes::from_static(b"hello"))));
}

async fn refused(config: NatsConfig, what: &str) {
    let started = Instant::now();
    let error = NatsTransport::connect(&config).await.expect_err(what);
    let text = error.to_string();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{what}: {text}");
    assert!(!error.is_temporary(), "{what}: {text}");
    assert!(
        text.contains("nats") && text.contains(&config.servers[0]),
        "{what}: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{what}: took {:?}",
        started.elapsed()
    );
    for secret in ["right-password", "wrong-password", "right-token", "wrong-token"] {
        assert!(!text.contains(secret), "{what}: the error shows a secret: {text}");
    }
}

#[tokio::test]
async fn user_and_password_are_checked_by_the_server() {
    let Some(server) = own_server("userpass", &["--user", "coord", "--pass", "right-password"]) else {
        return;
    };
    let good = NatsTransport::connect(&config(server.addr()).user_and_password("coord", "right-password"))
        .await
        .unwrap();
    round_trip(&good).await;
    good.close().await.unwrap();
    refused(
        config(server.addr()).user_and_password("coord", "wrong-password"),
        "a wrong password",
    )
    .await;
    refused(config(server.addr()), "no credentials").await;
}

#[tokio::test]
async fn tokens_are_checked_by_the_server() {
    let Some(server) = own_server("token", &["--auth", "right-token"]) else {
        return;
    };
    let good = NatsTransport::connect(&config(server.addr()).token("right-token"))
        .await
        .unwrap();
    round_trip(&good).await;
    good.close().await.unwrap();
    refused(config(server.addr()).token("wrong-token"), "a wrong token").await;
}

#[tokio::test]
async fn frames_above_the_server_max_payload_are_refused() {
    let conf = TestServer::dir().join("payload.conf");
    std::fs::write(&conf, "max_payload: 4096\n").unwrap();
    let Some(server) = own_server("payload", &["-c", conf.to_str().unwrap()]) else {
        return;
    };
    let transport = NatsTransport::connect(&config(server.addr())).await.unwrap();
    assert_eq!(transport.capabilities().max_payload, 4096, "read from the server");
    let channel = Channel::all(&Namespace::new("payload").unwrap());
    let error = transport
        .publish(&channel, Bytes::from(vec![0u8; 4097]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLarge, "{error}");
    transport.publish(&channel, Bytes::from(vec![0u8; 4096])).await.unwrap();
    transport.close().await.unwrap();
    transport.close().await.unwrap();
    let closed = transport.publish(&channel, Bytes::new()).await.unwrap_err();
    assert_eq!(closed.kind(), ErrorKind::Closed, "{closed}");
}

#[tokio::test]
async fn tls_with_a_ca_connects_and_without_it_is_refused() {
    let dir = TestServer::dir().join("nats-tls");
    let files = coord_conformance::certs::write(&dir);
    let tls_args = [
        "--tls",
        "--tlscert",
        files.cert.to_str().unwrap(),
        "--tlskey",
        files.key.to_str().unwrap(),
    ];
    let Some(server) = own_server("tls", &tls_args) else {
        return;
    };
    let url = format!("tls://{}", server.addr());
    let mut trusted = config(server.addr());
    trusted.servers = vec![url.clone()];
    let mut tls = NatsTls::default();
    tls.ca = Some(files.ca.clone());
    tls.required = true;
    let good = NatsTransport::connect(&trusted.clone().tls(tls)).await.unwrap();
    round_trip(&good).await;
    good.close().await.unwrap();
    // Without the CA the server's certificate is not trusted.
    let started = Instant::now();
    let error = NatsTransport::connect(&trusted).await.unwrap_err();
    let text = error.to_string();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{text}");
    assert!(text.contains(&url) && text.contains("nats.tls.ca"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
