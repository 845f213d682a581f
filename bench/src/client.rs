//! One persistent HTTP/1.1 connection to one node, and the requests a benchmark sends on it.
//!
//! A [`Connection`] is a ureq `Agent` that keeps at most one idle connection per node, so that
//! every request after the first reuses the TCP connection the first one opened: a benchmark
//! measures the node, not the TCP handshake. Answers outside 2xx become
//! [`ClientError::Server`] with the node's own sentence and error kind.
//!
//! The request bodies are written here rather than taken from the `aspen` crate: the benchmark
//! treats the node as a black box over its documented HTTP API (`GET /openapi.json`), builds in
//! seconds without the node's dependencies, and stays the same binary while the node it
//! measures changes. The smoke test proves the bodies against a real node.
//!
//! Caveats:
//! - HTTP/1.1 carries one request at a time per connection (the node serves HTTP/1 only, and
//!   hyper answers pipelined requests one after another anyway), so a connection shared by
//!   several clients is a queue: in-flight requests are at most the number of connections.
//! - Answers are read in full (that is what returns the connection to the pool) but not
//!   decoded: checking values is the lab's job, not the benchmark's.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::limits::{ENDPOINTS_MAX, RESPONSE_BYTES_MAX};

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not an `http://host:port` address.
    #[error("bad endpoint {endpoint:?}: {reason}")]
    BadEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No answer: refused, reset, or over the request timeout.
    #[error("{url}: {reason}")]
    Unreachable {
        /// The URL that was called.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The node answered with an error status.
    #[error("{url}: HTTP {status} {kind}: {message}")]
    Server {
        /// The URL that was called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The API's error kind (`not_found`, `unavailable`, ...), empty if none.
        kind: String,
        /// The node's sentence.
        message: String,
    },
    /// The answer was not the JSON the API promises.
    #[error("{url}: unexpected answer: {reason}")]
    BadAnswer {
        /// The URL that was called.
        url: String,
        /// What did not decode.
        reason: String,
    },
}

/// `POST /write` body: `{"command": {"Set": {"key": .., "value": ..}}}`.
#[derive(Serialize)]
struct WriteBody<'a> {
    command: SetCommand<'a>,
}

#[derive(Serialize)]
enum SetCommand<'a> {
    Set { key: &'a str, value: &'a str },
}

/// `POST /read` body: `{"key": ..}`.
#[derive(Serialize)]
struct ReadBody<'a> {
    key: &'a str,
}

/// A persistent HTTP connection to one node (the pool keeps one idle connection per node, so a
/// connection used by one thread at a time stays one TCP connection).
#[derive(Debug, Clone)]
pub struct Connection {
    base: String,
    write_url: String,
    read_url: String,
    agent: ureq::Agent,
}

impl Connection {
    /// A connection to the node at `endpoint` (`http://host:port` or `host:port`); every
    /// request on it is bounded by `timeout`. Nothing is sent until the first request.
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Self, ClientError> {
        let base = base_url(endpoint)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A benchmark on loopback must never go through a proxy set in the environment.
            .proxy(None)
            .no_delay(true)
            .timeout_global(Some(timeout))
            .max_idle_connections(ENDPOINTS_MAX)
            .max_idle_connections_per_host(1)
            .build();
        Ok(Self {
            write_url: format!("{base}/write"),
            read_url: format!("{base}/read"),
            base,
            agent: config.into(),
        })
    }

    /// The node's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /write` of `Set { key, value }`; `Ok` once the node acknowledged it.
    pub fn put(&self, key: &str, value: &str) -> Result<(), ClientError> {
        let body = WriteBody { command: SetCommand::Set { key, value } };
        let body = serde_json::to_vec(&body).expect("a write serializes");
        self.post(&self.write_url, &body).map(drop)
    }

    /// `POST /read` of `key` (always linearizable: the node offers no other read).
    pub fn get(&self, key: &str) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&ReadBody { key }).expect("a read serializes");
        self.post(&self.read_url, &body).map(drop)
    }

    /// `GET path`, decoded as JSON (for `/node-info`, `/raft-metrics`, `/health`).
    pub fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let text = finish(&url, self.agent.get(&url).call())?;
        decode(&url, &text)
    }

    /// `POST path` with a JSON body, decoded as JSON (for setting a cluster up in tests).
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let text = self.post(&url, &serde_json::to_vec(body).expect("JSON serializes"))?;
        decode(&url, &text)
    }

    fn post(&self, url: &str, body: &[u8]) -> Result<String, ClientError> {
        let response = self.agent.post(url).header("content-type", "application/json").send(body);
        finish(url, response)
    }
}

/// Reads the whole answer (which hands the connection back to the pool) and turns a status
/// outside 2xx into the node's error.
fn finish(
    url: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<String, ClientError> {
    let unreachable =
        |e: ureq::Error| ClientError::Unreachable { url: url.to_owned(), reason: e.to_string() };
    let mut response = response.map_err(unreachable)?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(RESPONSE_BYTES_MAX)
        .read_to_string()
        .map_err(unreachable)?;
    if (200..300).contains(&status) {
        return Ok(text);
    }
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    Err(ClientError::Server {
        url: url.to_owned(),
        status,
        kind: field("kind").unwrap_or_default(),
        message: field("error").unwrap_or_else(|| text.trim().to_owned()),
    })
}

fn decode(url: &str, text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text)
        .map_err(|e| ClientError::BadAnswer { url: url.to_owned(), reason: e.to_string() })
}

/// `http://host:port` without a trailing slash; a bare `host:port` means http.
pub fn base_url(endpoint: &str) -> Result<String, ClientError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let bad = |reason: &str| ClientError::BadEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let url =
        if trimmed.contains("://") { trimmed.to_owned() } else { format!("http://{trimmed}") };
    if !url.starts_with("http://") {
        return Err(bad("only http:// is supported (the node API has no TLS)"));
    }
    if url.len() <= "http://".len() {
        return Err(bad("no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A keep-alive server answering `{}` to every request; counts the connections it accepted.
    fn keep_alive_server(status: u16) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16) {
                counter.fetch_add(1, Ordering::SeqCst);
                let stream = stream.unwrap();
                std::thread::spawn(move || serve_connection(stream, status));
            }
        });
        (url, accepted)
    }

    fn serve_connection(mut stream: std::net::TcpStream, status: u16) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        for _ in 0..1000 {
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let answer = r#"{"error":"no","kind":"unavailable"}"#;
            let text = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: \
                 {}\r\n\r\n{answer}",
                answer.len()
            );
            stream.write_all(text.as_bytes()).unwrap();
        }
    }

    #[test]
    fn requests_on_one_connection_reuse_one_tcp_connection() {
        let (url, accepted) = keep_alive_server(200);
        let connection = Connection::new(&url, Duration::from_secs(5)).unwrap();
        for index in 0..20 {
            connection.put(&format!("k{index}"), "value").unwrap();
            connection.get(&format!("k{index}")).unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "40 requests, one TCP connection");
    }

    #[test]
    fn an_error_status_is_the_nodes_error() {
        let (url, _) = keep_alive_server(503);
        let connection = Connection::new(&url, Duration::from_secs(5)).unwrap();
        let error = connection.put("k", "v").unwrap_err();
        assert!(
            matches!(&error, ClientError::Server { status: 503, kind, .. } if kind == "unavailable"),
            "{error:?}"
        );
        assert!(error.to_string().contains("HTTP 503 unavailable: no"), "{error}");
    }

    #[test]
    fn bodies_are_the_apis_json() {
        let write = WriteBody { command: SetCommand::Set { key: "k", value: "v" } };
        assert_eq!(
            serde_json::to_string(&write).unwrap(),
            r#"{"command":{"Set":{"key":"k","value":"v"}}}"#
        );
        assert_eq!(serde_json::to_string(&ReadBody { key: "k" }).unwrap(), r#"{"key":"k"}"#);
    }

    #[test]
    fn endpoints_are_normalized() {
        assert_eq!(base_url("127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(base_url("http://h:1").unwrap(), "http://h:1");
        assert!(base_url("https://h:1").is_err());
        assert!(base_url("").is_err());
    }
}
