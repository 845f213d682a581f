//! HTTP/2 over cleartext with prior knowledge (h2c) on hyper: one TCP connection per
//! [`Channel`], shared by every thread that sends on it, its requests multiplexed.
//!
//! An HTTP/2 connection has to be read and written while several requests wait on it, so its
//! socket is driven by a tokio task. Blocking callers (the failover writers, the cluster
//! probes) use a small runtime that the benchmark builds on first use and keeps for the life
//! of the process (`HTTP2_RUNTIME_THREADS` workers): a caller runs its request with
//! `Handle::block_on`, which sends it on a clone of the connection's `SendRequest` and parks the
//! thread until the answer, or the request timeout, arrives. The clients of a measured run are
//! futures instead, all on one thread with the connections they use ([`run`]): an answer then
//! wakes no thread of its own.
//!
//! The connection is opened by the first request (the connect and the handshake count against
//! that request's timeout), and opened again by the first request after it closed: the node
//! restarted, or answered GOAWAY. A request the closed connection never sent (hyper hands it
//! back) goes once more on the new connection; a request that was sent and got no answer fails,
//! as it may have been applied, and the benchmark retries no writes.
//!
//! Caveats:
//! - No TLS, no ALPN, no `Upgrade: h2c`: the node must accept HTTP/2 with prior knowledge.
//!   Against a node that serves HTTP/1.1 only, every request fails; use `--http 1` there.
//! - No keep-alive pings: an idle connection to a node that vanished without a TCP reset is
//!   found dead by the next request's timeout.
//! - More requests than the node's `SETTINGS_MAX_CONCURRENT_STREAMS` on one connection wait in
//!   hyper for a free stream, within their timeout.

use std::error::Error as StdError;
use std::sync::OnceLock;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http2::{Builder, SendRequest};
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Mutex;

use super::{Answer, ClientError};
use crate::limits::{HTTP2_RUNTIME_THREADS, RESPONSE_BYTES_MAX};

type Sender = SendRequest<Full<Bytes>>;

/// One HTTP/2 connection to one node, opened on demand.
#[derive(Debug)]
pub(super) struct Channel {
    /// `host:port` to connect to.
    address: String,
    /// The bound on one request, connect and handshake included.
    timeout: Duration,
    runtime: Handle,
    /// The open connection. An async mutex, held across the connect, so that clients arriving
    /// while it opens wait for it instead of opening connections of their own.
    open: Mutex<Open>,
}

/// The connection's sender, if one is open, and how many were opened.
#[derive(Debug, Default)]
struct Open {
    sender: Option<Sender>,
    generation: u64,
}

impl Channel {
    /// A channel to `base` (`http://host[:port]`); nothing is sent until the first request.
    pub(super) fn new(base: &str, timeout: Duration) -> Result<Self, ClientError> {
        let bad = |reason: String| ClientError::BadEndpoint { endpoint: base.to_owned(), reason };
        let uri: Uri = base.parse().map_err(|e| bad(format!("not a URL: {e}")))?;
        let authority = uri.authority().ok_or_else(|| bad("no host".to_owned()))?;
        let address = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
        let runtime = runtime().map_err(|reason| ClientError::Unreachable {
            url: base.to_owned(),
            reason: format!("the HTTP/2 client runtime did not start: {reason}"),
        })?;
        Ok(Self { address, timeout, runtime, open: Mutex::new(Open::default()) })
    }

    /// `GET url`.
    pub(super) fn get(&self, url: &str) -> Result<Answer, String> {
        self.send(Request::get(url).body(Full::default()))
    }

    /// `POST url` with a JSON body.
    pub(super) fn post_json(&self, url: &str, body: Vec<u8>) -> Result<Answer, String> {
        let request = Request::post(url).header(CONTENT_TYPE, "application/json");
        self.send(request.body(Full::new(Bytes::from(body))))
    }

    /// `POST url` with a JSON body, from a future of [`run`].
    pub(super) async fn post_json_async(&self, url: &str, body: Vec<u8>) -> Result<Answer, String> {
        let request = Request::post(url).header(CONTENT_TYPE, "application/json");
        self.send_async(request.body(Full::new(Bytes::from(body)))).await
    }

    /// Sends `request` and waits for the whole answer, for at most the timeout, blocking the
    /// calling thread.
    fn send(
        &self,
        request: Result<Request<Full<Bytes>>, hyper::http::Error>,
    ) -> Result<Answer, String> {
        self.runtime.block_on(self.send_async(request))
    }

    async fn send_async(
        &self,
        request: Result<Request<Full<Bytes>>, hyper::http::Error>,
    ) -> Result<Answer, String> {
        let request = request.map_err(|e| format!("bad request: {e}"))?;
        let timeout = self.timeout;
        let answer = tokio::time::timeout(timeout, self.exchange(request))
            .await
            .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))??;
        let (status, body) = answer;
        let text =
            String::from_utf8(body.into()).map_err(|e| format!("the answer is not UTF-8: {e}"))?;
        Ok(Answer { status, text })
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        let (generation, mut sender) = self.sender(None).await?;
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut error) => match error.take_message() {
                // The connection closed before the request left: sending it on a new
                // connection cannot apply it twice.
                Some(request) => {
                    let (_, mut sender) = self.sender(Some(generation)).await?;
                    sender.send_request(request).await.map_err(|e| describe(&e))?
                }
                None => return Err(describe(&error.into_error())),
            },
        };
        let status = response.status().as_u16();
        let limit = usize::try_from(RESPONSE_BYTES_MAX).unwrap_or(usize::MAX);
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {}", describe(&*e)))?;
        Ok((status, body.to_bytes()))
    }

    /// The open connection's sender, or a new connection's if none is open, the open one has
    /// closed, or it is generation `stale` (the one a request just failed on).
    async fn sender(&self, stale: Option<u64>) -> Result<(u64, Sender), String> {
        let mut open = self.open.lock().await;
        let generation = open.generation;
        if let Some(sender) =
            open.sender.as_ref().filter(|s| !s.is_closed() && stale != Some(generation))
        {
            return Ok((generation, sender.clone()));
        }
        open.sender = None;
        let sender = self.connect().await?;
        open.generation += 1;
        open.sender = Some(sender.clone());
        Ok((open.generation, sender))
    }

    /// Opens the TCP connection and starts HTTP/2 on it (the preface and our settings; hyper
    /// does not wait for the node's).
    async fn connect(&self) -> Result<Sender, String> {
        let stream = TcpStream::connect(&self.address)
            .await
            .map_err(|e| format!("connect to {}: {e}", self.address))?;
        // Many small requests share the connection: each must leave at once, not wait for the
        // acknowledgement of the one before (Nagle's algorithm).
        stream.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let (sender, connection) = Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {}", describe(&e)))?;
        // Runs until the node closes the connection or the last sender is dropped; an error
        // reaches the requests in flight through their own futures. Spawned on the runtime
        // this request runs on: the shared one for a blocking request, a run's own for the
        // clients of a run (see [`run`]).
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// Runs `future` to completion on a single-threaded runtime of its own, on the calling thread
/// (which must not be inside a runtime): the closed-loop clients of a run over HTTP/2 are
/// futures of one such call (`workload`), and the connections they open run their tasks on
/// that same thread, so an answer wakes no other thread. The connections end with the call.
pub(super) fn run<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    Ok(runtime.block_on(future))
}

/// The benchmark's HTTP/2 runtime, built on first use.
fn runtime() -> Result<Handle, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(HTTP2_RUNTIME_THREADS)
            .thread_name("aspen-bench-http2")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())
    });
    runtime.as_ref().map(|runtime| runtime.handle().clone()).map_err(Clone::clone)
}

/// An error and its causes, `outer: inner: ...` (hyper's own message is often only the outer
/// layer, such as "connection error").
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::test_server::{JSON_ERROR, TestServer};
    use super::super::{Connection, Consistency, HttpVersion};
    use super::*;

    /// More than one and more than the node's worker count: only multiplexing completes them.
    const IN_FLIGHT: usize = 8;

    fn connection(server: &TestServer, timeout: Duration) -> Connection {
        Connection::new(&server.url, timeout, HttpVersion::Http2).unwrap()
    }

    #[test]
    fn requests_from_several_threads_are_in_flight_at_once_on_one_connection() {
        // Each request is held until IN_FLIGHT have arrived: only multiplexing completes them.
        let server = TestServer::holding_until(IN_FLIGHT);
        let connection = connection(&server, Duration::from_secs(20));
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..IN_FLIGHT)
                .map(|i| {
                    let connection = &connection;
                    scope.spawn(move || connection.put(&format!("k{i}"), "v"))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for result in results {
            result.unwrap();
        }
        assert_eq!(server.connections(), 1, "{IN_FLIGHT} requests in flight on one connection");
        assert_eq!(server.requests(), IN_FLIGHT);
    }

    #[test]
    fn an_error_status_is_the_nodes_error() {
        let server = TestServer::answering(|_| (503, JSON_ERROR.to_owned()));
        let error = connection(&server, Duration::from_secs(5)).put("k", "v").unwrap_err();
        assert!(
            matches!(&error, ClientError::Server { status: 503, kind, .. } if kind == "unavailable"),
            "{error:?}"
        );
        assert!(error.to_string().contains("HTTP 503 unavailable: no"), "{error}");
    }

    #[test]
    fn json_answers_decode_and_bad_json_is_a_bad_answer() {
        let server = TestServer::answering(|path| match path.as_str() {
            "/node-info" => (200, r#"{"node_id": 7}"#.to_owned()),
            _ => (200, "not json".to_owned()),
        });
        let connection = connection(&server, Duration::from_secs(5));
        assert_eq!(connection.get_json("/node-info").unwrap()["node_id"], 7);
        let error = connection.post_json("/init", &serde_json::json!({})).unwrap_err();
        assert!(matches!(error, ClientError::BadAnswer { .. }), "{error:?}");
    }

    #[test]
    fn an_answer_over_the_limit_is_refused() {
        let size = usize::try_from(RESPONSE_BYTES_MAX).unwrap() + 1;
        let server = TestServer::answering(move |_| (200, "x".repeat(size)));
        let error = connection(&server, Duration::from_secs(10))
            .get("k", Consistency::Linearizable)
            .unwrap_err();
        assert!(matches!(&error, ClientError::Unreachable { .. }), "{error:?}");
        assert!(error.to_string().contains("reading the answer"), "{error}");
    }

    #[test]
    fn a_request_over_its_timeout_fails_and_the_connection_stays_usable() {
        // The first request is never answered; the ones after it are.
        let server = TestServer::stalling_first();
        let connection = connection(&server, Duration::from_millis(300));
        let error = connection.put("k", "v").unwrap_err();
        assert!(
            matches!(&error, ClientError::Unreachable { reason, .. } if reason.contains("300 ms")),
            "{error:?}"
        );
        connection.put("k", "v").unwrap();
        assert_eq!(server.connections(), 1, "a timed-out request resets its stream only");
    }

    #[test]
    fn a_node_that_went_away_and_came_back_gets_a_new_connection() {
        let server = TestServer::answering(|_| (200, "{}".to_owned()));
        let connection = connection(&server, Duration::from_secs(5));
        connection.put("k", "v").unwrap();
        let port = server.port();
        drop(server);
        let error = connection.put("k", "v").unwrap_err();
        assert!(matches!(error, ClientError::Unreachable { .. }), "{error:?}");
        let server = TestServer::answering_on(port, |_| (200, "{}".to_owned()));
        connection.put("k", "v").unwrap();
        assert_eq!(server.connections(), 1, "one new connection to the restarted node");
    }

    #[test]
    fn nothing_listening_is_unreachable() {
        // Nothing listens on port 1 of loopback.
        let connection =
            Connection::new("127.0.0.1:1", Duration::from_secs(5), HttpVersion::Http2).unwrap();
        let error = connection.put("k", "v").unwrap_err();
        assert!(
            matches!(&error, ClientError::Unreachable { reason, .. } if reason.contains("connect")),
            "{error:?}"
        );
    }
}
