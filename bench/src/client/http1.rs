//! HTTP/1.1 over ureq: one `Agent` per connection, keeping at most one idle TCP connection per
//! node, so that a connection used by one thread at a time stays one TCP connection.

use std::time::Duration;

use super::Answer;
use crate::limits::{ENDPOINTS_MAX, RESPONSE_BYTES_MAX};

/// A ureq agent set up for benchmarking: no proxy, no Nagle, one bound on every request.
#[derive(Debug, Clone)]
pub(super) struct Agent {
    agent: ureq::Agent,
}

impl Agent {
    /// An agent whose every request (connect, send, answer) is bounded by `timeout`.
    pub(super) fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A benchmark on loopback must never go through a proxy set in the environment.
            .proxy(None)
            .no_delay(true)
            .timeout_global(Some(timeout))
            .max_idle_connections(ENDPOINTS_MAX)
            .max_idle_connections_per_host(1)
            .build();
        Self { agent: config.into() }
    }

    /// `GET url`.
    pub(super) fn get(&self, url: &str) -> Result<Answer, String> {
        read(self.agent.get(url).call())
    }

    /// `POST url` with a JSON body.
    pub(super) fn post_json(&self, url: &str, body: &[u8]) -> Result<Answer, String> {
        read(self.agent.post(url).header("content-type", "application/json").send(body))
    }
}

/// Reads the whole answer, which hands the connection back to the pool.
fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Answer, String> {
    let mut response = response.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(RESPONSE_BYTES_MAX)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok(Answer { status, text })
}
