//! Says why `connect` endpoints were not reached, for a start that must
//! fail: a plain TCP connection to each tells "refused" from "answers, but
//! the Zenoh handshake failed".

use std::time::Duration;

use zenoh::config::EndPoint;

/// How long each TCP check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// One line per endpoint: what a TCP connection to it gave.
pub(crate) async fn diagnose(endpoints: &[String]) -> String {
    if endpoints.is_empty() {
        return "no `connect` endpoint is configured and no peer was scouted".to_owned();
    }
    let mut causes = Vec::with_capacity(endpoints.len());
    for text in endpoints {
        let address = text
            .parse::<EndPoint>()
            .map(|endpoint| endpoint.address().as_str().to_owned())
            .unwrap_or_else(|_| text.clone());
        let cause = match tokio::time::timeout(CHECK_TIMEOUT, tokio::net::TcpStream::connect(&address)).await {
            Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
            Ok(Err(error)) => error.to_string(),
            Ok(Ok(_)) => {
                "reachable over TCP, but the Zenoh handshake failed (TLS, credentials or not a Zenoh peer?)".to_owned()
            }
        };
        causes.push(format!("{text}: {cause}"));
    }
    causes.join("; ")
}
