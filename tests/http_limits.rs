//! The HTTP server's limits, against a server of its own serving a small test router: the
//! HTTP/2 stream limit is advertised and holds, heads and header lists over the header limit
//! get 431, connections beyond the connection limit are closed at once, silent and slow
//! connections are closed after the header-read timeout, and a stop lets requests in flight
//! finish over both protocols but cuts what is still busy after the shutdown bound.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aspen::http::{HttpServerLimits, HttpServerSlot};
use aspen::limits::{HTTP_HEADER_BYTES_MAX, HTTP1_HEADERS_MAX, HTTP2_CONCURRENT_STREAMS_MAX};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Request;
use axum::routing::get;
use common::wait_until;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The bound on every wait of these tests; the limits under test are far shorter.
const BOUND: Duration = Duration::from_secs(10);

/// What the `/hold` route has seen: handlers in flight, the most at once, and how they ended.
struct Hold {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    answered: AtomicUsize,
    dropped: AtomicUsize,
    release: watch::Sender<bool>,
}

/// One `/hold` handler in flight; when it ends, it counts as answered or as dropped.
struct Visit {
    hold: Arc<Hold>,
    answered: bool,
}

impl Visit {
    fn enter(hold: Arc<Hold>) -> Self {
        let now = hold.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        hold.peak.fetch_max(now, Ordering::SeqCst);
        Self { hold, answered: false }
    }

    fn answer(mut self) {
        self.answered = true;
    }
}

impl Drop for Visit {
    fn drop(&mut self) {
        self.hold.in_flight.fetch_sub(1, Ordering::SeqCst);
        let ended = if self.answered { &self.hold.answered } else { &self.hold.dropped };
        ended.fetch_add(1, Ordering::SeqCst);
    }
}

/// Answers once the test releases every held request.
async fn hold(State(hold): State<Arc<Hold>>) -> &'static str {
    let mut release = hold.release.subscribe();
    let visit = Visit::enter(hold);
    let _ = release.wait_for(|released| *released).await;
    visit.answer();
    "released"
}

/// A server with `limits` on a port of the OS's choice, serving `/hello` (answered at once)
/// and `/hold` (answered when released).
async fn serve(limits: HttpServerLimits) -> (HttpServerSlot, SocketAddr, Arc<Hold>) {
    let hold_state = Arc::new(Hold {
        in_flight: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
        release: watch::channel(false).0,
    });
    let router = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/hold", get(hold))
        .with_state(hold_state.clone());
    let slot = HttpServerSlot::with_limits(limits);
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let addr = slot.start(any_port, router, |_| {}).await;
    (slot, addr.expect("the server starts"), hold_state)
}

/// `future`'s output, or a failure naming `what` did not happen within `BOUND`.
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {BOUND:?}"))
}

type Http1 = http1::SendRequest<Empty<Bytes>>;
type Http2 = http2::SendRequest<Empty<Bytes>>;

async fn open_http1(addr: SocketAddr) -> (Http1, JoinHandle<hyper::Result<()>>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) =
        http1::handshake(TokioIo::new(stream)).await.expect("HTTP/1.1 handshake");
    (sender, tokio::spawn(connection))
}

async fn open_http2(addr: SocketAddr) -> (Http2, JoinHandle<hyper::Result<()>>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("HTTP/2 handshake");
    (sender, tokio::spawn(connection))
}

/// `GET path` over HTTP/1.1; the status once the whole answer arrived.
async fn get1(sender: &mut Http1, path: &str) -> hyper::Result<u16> {
    sender.ready().await?;
    let response = sender.send_request(Request::get(path).body(Empty::new()).unwrap()).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

/// `GET path` with `headers` over HTTP/2; the status once the whole answer arrived.
async fn get2(
    sender: &Http2,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
) -> hyper::Result<u16> {
    let mut request = Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let mut sender = sender.clone();
    sender.ready().await?;
    let response = sender.send_request(request.body(Empty::new()).unwrap()).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

/// Writes `bytes` on a new connection and reads until the server closes it.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    let read = bounded("the server closes the connection", stream.read_to_end(&mut answer)).await;
    read.expect("a clean close, not a reset");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The `SETTINGS_MAX_CONCURRENT_STREAMS` the server at `addr` advertises, read with the h2
/// client once one request was answered (the server's SETTINGS precede every answer).
async fn advertised_streams_max(addr: SocketAddr) -> usize {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(stream).await.expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = Request::get(format!("http://{addr}/hello")).body(()).unwrap();
    let (response, _) = client.send_request(request, true).expect("send");
    let response = bounded("an HTTP/2 answer", response).await.expect("answer");
    assert_eq!(response.status(), 200);
    let advertised = client.current_max_send_streams();
    connection.abort();
    advertised
}

#[tokio::test]
async fn http2_advertises_the_concurrent_stream_limit_of_the_limits_module() {
    let (slot, addr, _) = serve(HttpServerLimits::default()).await;
    assert_eq!(advertised_streams_max(addr).await, HTTP2_CONCURRENT_STREAMS_MAX as usize);
    slot.stop().await;
}

#[tokio::test]
async fn http2_streams_beyond_the_limit_wait_in_the_client_until_one_is_answered() {
    let limits = HttpServerLimits { http2_concurrent_streams_max: 3, ..Default::default() };
    let (slot, addr, hold) = serve(limits).await;
    assert_eq!(advertised_streams_max(addr).await, 3);

    let (sender, connection) = open_http2(addr).await;
    // One answer first, so that the client knows the server's SETTINGS before it opens more.
    assert_eq!(bounded("GET /hello", get2(&sender, addr, "/hello", &[])).await.unwrap(), 200);
    let requests: Vec<_> = (0..5)
        .map(|_| {
            let sender = sender.clone();
            tokio::spawn(async move { get2(&sender, addr, "/hold", &[]).await })
        })
        .collect();
    wait_until("three held requests at the server", BOUND, || async {
        hold.in_flight.load(Ordering::SeqCst) == 3
    })
    .await;
    hold.release.send_replace(true);
    for request in requests {
        assert_eq!(bounded("a held request", request).await.unwrap().unwrap(), 200);
    }
    assert_eq!(hold.peak.load(Ordering::SeqCst), 3, "never more than the limit at once");
    assert_eq!(hold.answered.load(Ordering::SeqCst), 5);
    connection.abort();
    slot.stop().await;
}

/// An HTTP/1.1 request for `/hello` that closes its connection, with `headers` extra
/// `name: value` lines, and without the blank line that ends the head unless `complete`.
fn http1_head(headers: &[(String, String)], complete: bool) -> String {
    let mut head = String::from("GET /hello HTTP/1.1\r\nhost: aspen\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if complete {
        head.push_str("\r\n");
    }
    head
}

#[tokio::test]
async fn an_http1_head_over_the_header_limits_gets_431() {
    let (slot, addr, _) = serve(HttpServerLimits::default()).await;
    let filler = |bytes: usize| vec![("x-filler".to_string(), "a".repeat(bytes))];

    let small = http1_head(&filler(HTTP_HEADER_BYTES_MAX - 1024), true);
    let answer = raw_exchange(addr, small.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "a head under the limit is served: {answer}");

    // Exactly the limit and no end in sight: the server has read every byte when it refuses,
    // so its close is a clean one and the answer arrives.
    let mut large = http1_head(&filler(HTTP_HEADER_BYTES_MAX), false);
    large.truncate(HTTP_HEADER_BYTES_MAX);
    let answer = raw_exchange(addr, large.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "a head of the limit's size: {answer}");

    // Two headers of the head's own, and the rest up to the count limit, or one more.
    let headers = |count: usize| -> Vec<_> {
        (2..count).map(|i| (format!("x-{i}"), "v".to_string())).collect()
    };
    let answer = raw_exchange(addr, http1_head(&headers(HTTP1_HEADERS_MAX), true).as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{HTTP1_HEADERS_MAX} headers: {answer}");
    let many = http1_head(&headers(HTTP1_HEADERS_MAX + 1), true);
    let answer = raw_exchange(addr, many.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "one header too many: {answer}");
    slot.stop().await;
}

#[tokio::test]
async fn an_http2_header_list_over_the_header_limit_gets_431_and_the_connection_serves_on() {
    // The constant is also hyper's default, so a lower limit shows that it is the one applied.
    for header_bytes_max in [HTTP_HEADER_BYTES_MAX, 8 * 1024] {
        let (slot, addr, _) =
            serve(HttpServerLimits { header_bytes_max, ..Default::default() }).await;
        let (sender, connection) = open_http2(addr).await;
        // Repeated letters compress well, so the headers go out in one frame.
        let filler = |bytes: usize| [("x-filler", "a".repeat(bytes))];
        let (small, large) = (filler(header_bytes_max - 1024), filler(header_bytes_max));
        let status = get2(&sender, addr, "/hello", &small);
        assert_eq!(
            bounded("a list under the limit", status).await.unwrap(),
            200,
            "{header_bytes_max}"
        );
        let status = get2(&sender, addr, "/hello", &large);
        assert_eq!(
            bounded("a list over the limit", status).await.unwrap(),
            431,
            "{header_bytes_max}"
        );
        let status = get2(&sender, addr, "/hello", &[]);
        assert_eq!(bounded("GET /hello", status).await.unwrap(), 200, "the connection serves on");
        connection.abort();
        slot.stop().await;
    }
}

/// Whether a new HTTP/1.1 connection to `addr` gets `/hello` answered.
async fn served(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect(addr).await else { return false };
    let Ok((mut sender, connection)) = http1::handshake(TokioIo::new(stream)).await else {
        return false;
    };
    let connection = tokio::spawn(connection);
    let status = tokio::time::timeout(BOUND, get1(&mut sender, "/hello")).await;
    connection.abort();
    matches!(status, Ok(Ok(200)))
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once_until_one_closes() {
    // A long header-read timeout, so that only the connection limit can close a connection.
    let limits = HttpServerLimits {
        connections_max: 2,
        header_read_timeout_ms: 60_000,
        ..Default::default()
    };
    let (slot, addr, _) = serve(limits).await;
    let (mut first, first_connection) = open_http1(addr).await;
    let (mut second, second_connection) = open_http1(addr).await;
    assert_eq!(bounded("GET /hello", get1(&mut first, "/hello")).await.unwrap(), 200);
    assert_eq!(bounded("GET /hello", get1(&mut second, "/hello")).await.unwrap(), 200);

    let mut third = TcpStream::connect(addr).await.expect("the kernel accepts the connection");
    let read = bounded("the third connection is closed", third.read(&mut [0; 64])).await;
    assert_eq!(read.expect("a clean close"), 0, "closed before any answer");
    assert_eq!(bounded("GET /hello", get1(&mut first, "/hello")).await.unwrap(), 200);
    let counts = slot.connection_counts();
    assert_eq!((counts.accepted, counts.refused, counts.open), (2, 1, 2), "{counts:?}");

    drop(second);
    bounded("the second connection closes", second_connection).await.unwrap().unwrap();
    wait_until("a new connection to be served after one closed", BOUND, || served(addr)).await;
    drop(first);
    bounded("the first connection closes", first_connection).await.unwrap().unwrap();
    let all_closed = || async { slot.connection_counts().open == 0 };
    wait_until("every connection to be counted closed", BOUND, all_closed).await;
    slot.stop().await;
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed_after_the_header_read_timeout() {
    let timeout = Duration::from_millis(300);
    let limits = HttpServerLimits {
        header_read_timeout_ms: timeout.as_millis() as u64,
        ..Default::default()
    };
    let (slot, addr, _) = serve(limits).await;

    let start = Instant::now();
    let answer = raw_exchange(addr, b"").await;
    assert_eq!((answer.as_str(), start.elapsed() >= timeout), ("", true), "silent connection");

    let start = Instant::now();
    let answer = raw_exchange(addr, b"GET /hello HTTP/1.1\r\nhost: aspen\r\n").await;
    assert_eq!((answer.as_str(), start.elapsed() >= timeout), ("", true), "incomplete head");

    let start = Instant::now();
    let (mut sender, connection) = open_http1(addr).await;
    assert_eq!(bounded("GET /hello", get1(&mut sender, "/hello")).await.unwrap(), 200);
    bounded("the idle connection closes", connection).await.unwrap().unwrap();
    assert!(start.elapsed() >= timeout, "an idle connection is kept for the timeout");
    slot.stop().await;
}

/// One `/hold` request over each protocol, each on a connection of its own.
struct Held {
    /// The requests, by protocol; each ends with its status.
    requests: [(&'static str, JoinHandle<hyper::Result<u16>>); 2],
    /// The client connections, by protocol; each ends when the server closes it.
    connections: [(&'static str, JoinHandle<hyper::Result<()>>); 2],
}

/// Sends one `/hold` request over each protocol and waits until both are in flight.
async fn hold_over_both_protocols(addr: SocketAddr, hold: &Hold) -> Held {
    let (mut sender1, connection1) = open_http1(addr).await;
    let (sender2, connection2) = open_http2(addr).await;
    let request1 = tokio::spawn(async move { get1(&mut sender1, "/hold").await });
    let request2 = tokio::spawn(async move { get2(&sender2, addr, "/hold", &[]).await });
    wait_until("a held request over each protocol", BOUND, || async {
        hold.in_flight.load(Ordering::SeqCst) == 2
    })
    .await;
    Held {
        requests: [("HTTP/1.1", request1), ("HTTP/2", request2)],
        connections: [("HTTP/1.1", connection1), ("HTTP/2", connection2)],
    }
}

#[tokio::test]
async fn stop_lets_requests_in_flight_finish_over_both_protocols() {
    let (slot, addr, hold) = serve(HttpServerLimits::default()).await;
    let held = hold_over_both_protocols(addr, &hold).await;

    let stopping = tokio::spawn({
        let slot = slot.clone();
        async move { slot.stop().await }
    });
    wait_until("the listener to close", BOUND, || async {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
    hold.release.send_replace(true);
    for (protocol, request) in held.requests {
        let status = bounded("a held request", request).await.unwrap();
        assert_eq!(status.unwrap(), 200, "the {protocol} request in flight is answered");
    }
    for (protocol, connection) in held.connections {
        let closed = bounded("the server closes the connection", connection).await.unwrap();
        assert!(closed.is_ok(), "{protocol}: {closed:?}");
    }
    bounded("the stop", stopping).await.unwrap();
    assert_eq!(hold.answered.load(Ordering::SeqCst), 2);
    assert_eq!(hold.dropped.load(Ordering::SeqCst), 0, "nothing was cut");
}

#[tokio::test]
async fn stop_cuts_requests_still_in_flight_after_the_shutdown_bound() {
    let bound = Duration::from_millis(300);
    let limits =
        HttpServerLimits { shutdown_timeout_ms: bound.as_millis() as u64, ..Default::default() };
    let (slot, addr, hold) = serve(limits).await;
    let held = hold_over_both_protocols(addr, &hold).await;

    let start = Instant::now();
    bounded("the stop", slot.stop()).await;
    assert!(start.elapsed() >= bound, "the requests had the shutdown bound to finish");
    for (protocol, request) in held.requests {
        let outcome = bounded("a cut request fails", request).await.unwrap();
        assert!(outcome.is_err(), "the {protocol} request was cut: {outcome:?}");
    }
    for (_, connection) in held.connections {
        let _ = bounded("the cut connection closes", connection).await.unwrap();
    }
    wait_until("both handlers to be dropped", BOUND, || async {
        hold.dropped.load(Ordering::SeqCst) == 2
    })
    .await;
    assert_eq!(hold.answered.load(Ordering::SeqCst), 0);
}
