//! One persistent HTTP connection to one node, and the requests a benchmark sends on it.
//!
//! A [`Connection`] speaks one of two protocols, chosen with `--http`:
//!
//! - **HTTP/2** (the default; `http2`): one TCP connection carrying HTTP/2 with prior knowledge
//!   (h2c), opened on the first request and shared by every clone and every thread that uses
//!   the connection. Requests are multiplexed, so clients sharing a connection all have their
//!   request in flight at once, as etcd's gRPC clients do.
//! - **HTTP/1.1** (`http1`): a ureq `Agent` that keeps at most one idle connection per node.
//!   It carries one request at a time.
//!
//! Either way every request after the first reuses the TCP connection the first one opened (a
//! benchmark measures the node, not the TCP handshake), every request is bounded by the
//! connection's timeout, answers are read up to `RESPONSE_BYTES_MAX`, and both protocols end in
//! the same errors: no answer is [`ClientError::Unreachable`], a status outside 2xx is
//! [`ClientError::Server`] with the node's own sentence and error kind.
//!
//! The request bodies are written here rather than taken from the `aspen` crate: the benchmark
//! treats the node as a black box over its documented HTTP API (`GET /openapi.json`), builds
//! without the node's dependencies, and stays the same binary while the node it measures
//! changes. The smoke test proves the bodies against a real node.
//!
//! Caveats:
//! - Over HTTP/1.1 a connection shared by several clients is a queue (hyper answers pipelined
//!   requests one after another anyway, so the benchmark does not pipeline): in-flight requests
//!   are at most the number of connections.
//! - Requests block the calling thread, except [`Connection::execute_async`] over HTTP/2, which
//!   runs inside [`run_http2`]. Over HTTP/2 the socket is driven by the benchmark's own small
//!   tokio runtime (see `http2`); a blocking call from inside a tokio runtime is a bug and
//!   panics.
//! - Answers are read in full but not decoded: checking values is the lab's job, not the
//!   benchmark's.

mod http1;
mod http2;
#[cfg(test)]
pub(crate) mod test_server;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

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

/// The HTTP version a connection speaks (`--http 1` or `--http 2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpVersion {
    /// HTTP/1.1: one request at a time per connection.
    #[value(name = "1")]
    Http1,
    /// HTTP/2 over cleartext with prior knowledge: requests multiplexed on one connection.
    #[value(name = "2")]
    Http2,
}

impl HttpVersion {
    /// `1` or `2`, as the JSON line records it.
    pub fn number(self) -> u8 {
        match self {
            HttpVersion::Http1 => 1,
            HttpVersion::Http2 => 2,
        }
    }
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

/// Read consistency levels, as etcd and `POST /read`'s `consistency` field name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Reflects every write acknowledged before the read began (ReadIndex on the leader).
    Linearizable,
    /// Answered from the applied state of the node asked, never forwarded (may be stale).
    Serializable,
}

impl Consistency {
    /// `linearizable` or `serializable`, as the JSON line and the node's API name it.
    pub fn name(self) -> &'static str {
        match self {
            Consistency::Linearizable => "linearizable",
            Consistency::Serializable => "serializable",
        }
    }

    fn is_linearizable(&self) -> bool {
        *self == Consistency::Linearizable
    }
}

/// `POST /read` body: `{"key": ..}`, plus `"consistency": "serializable"` for a serializable
/// read. A linearizable read sends no field (the node's default), so its body stays the one
/// earlier results were measured with, and a node older than serializable reads still takes it.
#[derive(Serialize)]
struct ReadBody<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "Consistency::is_linearizable")]
    consistency: Consistency,
}

/// The `POST /read` body of `key`, built per request on the hot path: one allocation, sized
/// for the key and the longest consistency field (a key needing JSON escapes may grow it).
fn read_body(key: &str, consistency: Consistency) -> Vec<u8> {
    let mut body =
        Vec::with_capacity(key.len() + r#"{"key":"","consistency":"serializable"}"#.len());
    serde_json::to_writer(&mut body, &ReadBody { key, consistency }).expect("a read serializes");
    body
}

/// The `POST /write` body of `Set { key, value }`.
fn write_body(key: &str, value: &str) -> Vec<u8> {
    let body = WriteBody { command: SetCommand::Set { key, value } };
    serde_json::to_vec(&body).expect("a write serializes")
}

/// One operation of a benchmark run.
#[derive(Debug, Clone, PartialEq)]
pub enum Op<'a> {
    /// `POST /write` of `Set { key, value }`.
    Put {
        /// The key.
        key: String,
        /// The value, shared by every operation of a run.
        value: &'a str,
    },
    /// `POST /read` of `key`.
    Get {
        /// The key.
        key: String,
        /// How the node must read it.
        consistency: Consistency,
    },
}

/// Runs `future` on a single-threaded runtime of its own, blocking the calling thread (which
/// must not be inside a tokio runtime): the HTTP/2 connections it uses run their tasks there.
/// `endpoints` names the nodes it was to call, for the error if the runtime cannot start.
pub fn run_http2<F: std::future::Future>(
    endpoints: &[String],
    future: F,
) -> Result<F::Output, ClientError> {
    http2::run(future).map_err(|reason| ClientError::Unreachable {
        url: endpoints.join(", "),
        reason: format!("the HTTP/2 client runtime did not start: {reason}"),
    })
}

/// What carries a connection's requests.
#[derive(Debug, Clone)]
enum Transport {
    Http1(http1::Agent),
    Http2(Arc<http2::Channel>),
}

/// An answer as a transport delivers it: the status and the whole body as text.
struct Answer {
    status: u16,
    text: String,
}

/// A persistent HTTP connection to one node; clones share it.
#[derive(Debug, Clone)]
pub struct Connection {
    base: String,
    write_url: String,
    read_url: String,
    transport: Transport,
}

impl Connection {
    /// A connection to the node at `endpoint` (`http://host:port` or `host:port`) speaking
    /// `http`; every request on it is bounded by `timeout`. Nothing is sent until the first
    /// request.
    pub fn new(endpoint: &str, timeout: Duration, http: HttpVersion) -> Result<Self, ClientError> {
        let base = base_url(endpoint)?;
        let transport = match http {
            HttpVersion::Http1 => Transport::Http1(http1::Agent::new(timeout)),
            HttpVersion::Http2 => Transport::Http2(Arc::new(http2::Channel::new(&base, timeout)?)),
        };
        Ok(Self {
            write_url: format!("{base}/write"),
            read_url: format!("{base}/read"),
            base,
            transport,
        })
    }

    /// The node's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The HTTP version this connection speaks.
    pub fn http(&self) -> HttpVersion {
        match self.transport {
            Transport::Http1(_) => HttpVersion::Http1,
            Transport::Http2(_) => HttpVersion::Http2,
        }
    }

    /// Whether several requests can be in flight on this connection at once (HTTP/2).
    pub fn multiplexes(&self) -> bool {
        self.http() == HttpVersion::Http2
    }

    /// `POST /write` of `Set { key, value }`; `Ok` once the node acknowledged it.
    pub fn put(&self, key: &str, value: &str) -> Result<(), ClientError> {
        self.post(&self.write_url, write_body(key, value)).map(drop)
    }

    /// `POST /read` of `key` with `consistency`; `Ok` once the node answered its value.
    pub fn get(&self, key: &str, consistency: Consistency) -> Result<(), ClientError> {
        self.post(&self.read_url, read_body(key, consistency)).map(drop)
    }

    /// `GET path`, decoded as JSON (for `/node-info`, `/raft-metrics`, `/health`).
    pub fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let answer = match &self.transport {
            Transport::Http1(agent) => agent.get(&url),
            Transport::Http2(channel) => channel.get(&url),
        };
        decode(&url, &finish(&url, answer)?)
    }

    /// `POST path` with a JSON body, decoded as JSON (for setting a cluster up in tests).
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let text = self.post(&url, serde_json::to_vec(body).expect("JSON serializes"))?;
        decode(&url, &text)
    }

    /// Runs `op`, blocking the calling thread.
    pub fn execute(&self, op: &Op<'_>) -> Result<(), ClientError> {
        match op {
            Op::Put { key, value } => self.put(key, value),
            Op::Get { key, consistency } => self.get(key, *consistency),
        }
    }

    /// Runs `op` from a future of [`run_http2`]; only an HTTP/2 connection can (an HTTP/1.1
    /// one answers [`ClientError::BadEndpoint`]).
    pub async fn execute_async(&self, op: &Op<'_>) -> Result<(), ClientError> {
        let Transport::Http2(channel) = &self.transport else {
            return Err(ClientError::BadEndpoint {
                endpoint: self.base.clone(),
                reason: "only an HTTP/2 connection runs requests from a future".into(),
            });
        };
        let (url, body) = match op {
            Op::Put { key, value } => (&self.write_url, write_body(key, value)),
            Op::Get { key, consistency } => (&self.read_url, read_body(key, *consistency)),
        };
        finish(url, channel.post_json_async(url, body).await).map(drop)
    }

    fn post(&self, url: &str, body: Vec<u8>) -> Result<String, ClientError> {
        let answer = match &self.transport {
            Transport::Http1(agent) => agent.post_json(url, &body),
            Transport::Http2(channel) => channel.post_json(url, body),
        };
        finish(url, answer)
    }
}

/// Turns a transport's answer into the body text, a status outside 2xx into the node's error,
/// and no answer into [`ClientError::Unreachable`].
fn finish(url: &str, answer: Result<Answer, String>) -> Result<String, ClientError> {
    let Answer { status, text } =
        answer.map_err(|reason| ClientError::Unreachable { url: url.to_owned(), reason })?;
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
        let connection = Connection::new(&url, Duration::from_secs(5), HttpVersion::Http1).unwrap();
        for index in 0..20 {
            connection.put(&format!("k{index}"), "value").unwrap();
            connection.get(&format!("k{index}"), Consistency::Serializable).unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "40 requests, one TCP connection");
    }

    #[test]
    fn an_error_status_is_the_nodes_error() {
        let (url, _) = keep_alive_server(503);
        let connection = Connection::new(&url, Duration::from_secs(5), HttpVersion::Http1).unwrap();
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
        let read = |key, consistency| String::from_utf8(read_body(key, consistency)).unwrap();
        assert_eq!(read("k", Consistency::Linearizable), r#"{"key":"k"}"#);
        assert_eq!(
            read("k", Consistency::Serializable),
            r#"{"key":"k","consistency":"serializable"}"#
        );
        assert_eq!(read("a\"b", Consistency::Linearizable), r#"{"key":"a\"b"}"#);
    }

    #[test]
    fn endpoints_are_normalized() {
        assert_eq!(base_url("127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(base_url("http://h:1").unwrap(), "http://h:1");
        assert!(base_url("https://h:1").is_err());
        assert!(base_url("").is_err());
    }
}
