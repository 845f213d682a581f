//! An HTTP/2 (h2c, prior knowledge) server for the client's and the workload's tests: hyper's
//! own server on its own runtime, answering each request with what the test says and counting
//! the connections and requests it saw. Dropping it stops it and closes its connections.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// The node's error shape, as an answer body.
pub const JSON_ERROR: &str = r#"{"error":"no","kind":"unavailable"}"#;

/// How long a held request waits for the others before the server gives up and says so.
const HOLD_MAX: Duration = Duration::from_secs(10);

type Answer = Pin<Box<dyn Future<Output = (u16, String)> + Send>>;
type Respond = Arc<dyn Fn(String) -> Answer + Send + Sync>;

/// A running test server.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    runtime: Option<Runtime>,
}

impl TestServer {
    /// Answers every request with `respond(path)` at once.
    pub fn answering(respond: impl Fn(String) -> (u16, String) + Send + Sync + 'static) -> Self {
        Self::answering_on(0, respond)
    }

    /// The same on `port` (0: any free port).
    pub fn answering_on(
        port: u16,
        respond: impl Fn(String) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        Self::start(port, Arc::new(move |path| Box::pin(std::future::ready(respond(path)))))
    }

    /// Holds every request until `count` are held at once, then answers them all `{}`. A
    /// request still held after `HOLD_MAX` is answered 503 naming what did not happen.
    pub fn holding_until(count: usize) -> Self {
        let barrier = Arc::new(tokio::sync::Barrier::new(count));
        Self::start(
            0,
            Arc::new(move |_| {
                let barrier = barrier.clone();
                Box::pin(async move {
                    match tokio::time::timeout(HOLD_MAX, barrier.wait()).await {
                        Ok(_) => (200, "{}".to_owned()),
                        Err(_) => (
                            503,
                            format!(
                                r#"{{"error":"{count} requests were not in flight together within {HOLD_MAX:?}","kind":"unavailable"}}"#
                            ),
                        ),
                    }
                })
            }),
        )
    }

    /// Never answers the first request; answers `{}` to every later one.
    pub fn stalling_first() -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        Self::start(
            0,
            Arc::new(move |_| {
                let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
                Box::pin(async move {
                    if first {
                        std::future::pending::<()>().await;
                    }
                    (200, "{}".to_owned())
                })
            }),
        )
    }

    fn start(port: u16, respond: Respond) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test server runtime");
        let listener =
            runtime.block_on(TcpListener::bind(("127.0.0.1", port))).expect("bind the test server");
        let port = listener.local_addr().expect("local address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (accepted, counted) = (connections.clone(), requests.clone());
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let (respond, counted) = (respond.clone(), counted.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let answer = respond(request.uri().path().to_owned());
                    async move {
                        let (status, body) = answer.await;
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = StatusCode::from_u16(status).expect("a status");
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            connections,
            requests,
            runtime: Some(runtime),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Drops the listener and every connection task, which closes their sockets.
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}
