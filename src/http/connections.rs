//! The accept loop and the connection tasks behind [`super::HttpServerSlot`]: which limits they
//! set, and why, is told in `server`'s documentation.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinError, JoinSet};

use crate::limits::{
    HTTP_ACCEPT_BACKOFF_MS, HTTP_ACCEPT_LOG_INTERVAL_MS, HTTP_CONNECTIONS_MAX,
    HTTP_HEADER_BYTES_MAX, HTTP_HEADER_READ_TIMEOUT_MS_MAX, HTTP1_HEADERS_MAX,
    HTTP2_CONCURRENT_STREAMS_MAX, SHUTDOWN_TIMEOUT_MS_MAX,
};

/// hyper refuses (panics on) an HTTP/1 read buffer smaller than this many bytes.
const HTTP1_BUFFER_BYTES_MIN: usize = 8 * 1024;

/// The bounds one HTTP server enforces. `Default` takes each one from [`crate::limits`], which
/// says why it has its value; tests lower them to reach them with a handful of requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpServerLimits {
    /// Most connections open at once over both protocols (`HTTP_CONNECTIONS_MAX`).
    pub connections_max: usize,
    /// Most requests in flight on one HTTP/2 connection (`HTTP2_CONCURRENT_STREAMS_MAX`).
    pub http2_concurrent_streams_max: u32,
    /// Largest header section of one request, in bytes (`HTTP_HEADER_BYTES_MAX`); at least 8 KiB.
    pub header_bytes_max: usize,
    /// Most headers in one HTTP/1.1 request (`HTTP1_HEADERS_MAX`).
    pub http1_headers_max: usize,
    /// How long a connection may take to send its first bytes and an HTTP/1.1 request its
    /// headers, in milliseconds (`HTTP_HEADER_READ_TIMEOUT_MS_MAX`).
    pub header_read_timeout_ms: u64,
    /// How long open connections may take to finish once the server is stopped, in
    /// milliseconds, before they are cut (`SHUTDOWN_TIMEOUT_MS_MAX`).
    pub shutdown_timeout_ms: u64,
}

impl Default for HttpServerLimits {
    fn default() -> Self {
        Self {
            connections_max: HTTP_CONNECTIONS_MAX,
            http2_concurrent_streams_max: HTTP2_CONCURRENT_STREAMS_MAX,
            header_bytes_max: HTTP_HEADER_BYTES_MAX,
            http1_headers_max: HTTP1_HEADERS_MAX,
            header_read_timeout_ms: HTTP_HEADER_READ_TIMEOUT_MS_MAX,
            shutdown_timeout_ms: SHUTDOWN_TIMEOUT_MS_MAX,
        }
    }
}

impl HttpServerLimits {
    /// Why a server cannot run with these limits, if it cannot: a zero would refuse everything,
    /// and hyper panics on a header buffer under 8 KiB.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.connections_max == 0
            || self.http2_concurrent_streams_max == 0
            || self.http1_headers_max == 0
            || self.header_read_timeout_ms == 0
        {
            return Err(format!("an HTTP server limit is zero: {self:?}"));
        }
        if self.header_bytes_max < HTTP1_BUFFER_BYTES_MIN
            || u32::try_from(self.header_bytes_max).is_err()
        {
            return Err(format!(
                "header_bytes_max is {}, not between {HTTP1_BUFFER_BYTES_MIN} and {}",
                self.header_bytes_max,
                u32::MAX
            ));
        }
        Ok(())
    }

    /// The connection builder that enforces the per-connection limits. The HTTP/1 read buffer
    /// bounds the request head, because hyper-util's builder does not expose hyper's separate
    /// head limit; bodies are read through it in chunks, so it bounds no body.
    fn builder(&self) -> Builder<TokioExecutor> {
        let header_list_bytes = u32::try_from(self.header_bytes_max).expect("checked by check");
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(self.header_read_timeout_ms))
            .max_buf_size(self.header_bytes_max)
            .max_headers(self.http1_headers_max);
        builder
            .http2()
            .max_concurrent_streams(self.http2_concurrent_streams_max)
            .max_header_list_size(header_list_bytes);
        builder
    }
}

/// Live counts of one HTTP server slot's connections, for `/metrics`. Relaxed atomics: they
/// are statistics, never used to decide anything.
#[derive(Debug, Default)]
pub struct HttpConnectionCounters {
    accepted: AtomicU64,
    refused: AtomicU64,
    open: AtomicU64,
}

/// A copy of [`HttpConnectionCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpConnectionCounts {
    /// Connections accepted and served since the node started.
    pub accepted: u64,
    /// Connections closed at once because `connections_max` were open.
    pub refused: u64,
    /// Connections open now.
    pub open: u64,
}

impl HttpConnectionCounters {
    /// The counts now.
    pub fn snapshot(&self) -> HttpConnectionCounts {
        HttpConnectionCounts {
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
        }
    }
}

/// A connection's place under the connection limit; counted open while it lives.
struct Place {
    _permit: OwnedSemaphorePermit,
    counters: Arc<HttpConnectionCounters>,
}

impl Place {
    fn new(permit: OwnedSemaphorePermit, counters: &Arc<HttpConnectionCounters>) -> Self {
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        counters.open.fetch_add(1, Ordering::Relaxed);
        Self { _permit: permit, counters: counters.clone() }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every connection task of one server shares.
struct Shared {
    builder: Builder<TokioExecutor>,
    router: Router,
    first_bytes_timeout: Duration,
}

/// Serves `router` on connections from `listener` until `stop` turns true (or its sender is
/// dropped); then closes the listener, lets the open connections finish for at most
/// `limits.shutdown_timeout_ms`, and cuts those still open. Counts connections in `counters`.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpServerLimits,
    counters: Arc<HttpConnectionCounters>,
    mut stop: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        builder: limits.builder(),
        router,
        first_bytes_timeout: Duration::from_millis(limits.header_read_timeout_ms),
    });
    let slots = Arc::new(Semaphore::new(limits.connections_max));
    let mut connections = JoinSet::new();
    let log_interval = Duration::from_millis(HTTP_ACCEPT_LOG_INTERVAL_MS);
    let (mut refused, mut failed) = (LogTally::new(log_interval), LogTally::new(log_interval));
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(ended) = connections.join_next() => {
                report_end(ended);
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    let place = Place::new(permit, &counters);
                    connections.spawn(serve_connection(
                        stream,
                        shared.clone(),
                        stop.clone(),
                        place,
                    ));
                }
                // Dropping the stream closes the connection before it is read.
                Err(_) => {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    if let Some(count) = refused.record(Instant::now()) {
                        warn_refused(count, limits.connections_max);
                    }
                }
            },
            // The connection failed before it was accepted: nothing to wait for.
            Err(error) if is_connection_error(&error) => {
                tracing::debug!(%error, "an HTTP connection failed before it was accepted");
            }
            Err(error) => {
                if let Some(count) = failed.record(Instant::now()) {
                    tracing::warn!(%error, failures = count, "accepting HTTP connections fails");
                }
                let backoff = tokio::time::sleep(Duration::from_millis(HTTP_ACCEPT_BACKOFF_MS));
                tokio::select! {
                    _ = backoff => {}
                    _ = stopped(&mut stop) => break,
                }
            }
        }
    }
    drop(listener);
    let count = refused.take_unreported();
    if count > 0 {
        warn_refused(count, limits.connections_max);
    }
    finish(connections, Duration::from_millis(limits.shutdown_timeout_ms)).await;
}

/// Serves one connection until it closes; on `stop`, asks it to finish gracefully and waits.
/// `_place` is the connection's place under the connection limit, given back when this ends.
async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    _place: Place,
) {
    // TCP_NODELAY on every connection: see `server`'s documentation.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY on an HTTP connection");
    }
    // hyper has no timeout while it reads the first bytes to tell the protocols apart, so a
    // client that connects and sends nothing would hold its slot: bound that wait here. A peek
    // leaves the bytes to hyper (and `readable` alone may report a socket ready that is not).
    let mut first_byte = [0; 1];
    let first_bytes =
        tokio::time::timeout(shared.first_bytes_timeout, stream.peek(&mut first_byte));
    tokio::select! {
        peeked = first_bytes => {
            // Nothing within the timeout, an error, or a close (0 bytes): nothing to serve.
            if !matches!(peeked, Ok(Ok(1..))) {
                return;
            }
        }
        _ = stopped(&mut stop) => return,
    }
    let service = TowerToHyperService::new(shared.router.clone());
    let connection = shared.builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "an HTTP connection ended with an error");
    }
}

/// Waits at most `bound` for every connection task to end, then cuts those still running:
/// aborting a task drops its connection, and with it the handlers of its HTTP/2 streams, which
/// h2 fails when their connection goes away.
async fn finish(mut connections: JoinSet<()>, bound: Duration) {
    let all_ended = async {
        while let Some(ended) = connections.join_next().await {
            report_end(ended);
        }
    };
    if tokio::time::timeout(bound, all_ended).await.is_err() {
        let open = connections.len();
        tracing::warn!(open, "HTTP connections still open {bound:?} after the stop; cutting them");
        connections.shutdown().await;
    }
}

/// Resolves once the server is asked to stop, or nobody can ask it any more.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// An `accept` error that belongs to one connection, not to the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

fn warn_refused(count: u64, connections_max: usize) {
    tracing::warn!(
        refused = count,
        connections_max,
        "HTTP connections refused at the connection limit since the last report"
    );
}

/// A connection task that panicked is a bug in a handler; the server goes on serving the others.
fn report_end(ended: Result<(), JoinError>) {
    if let Err(error) = ended
        && error.is_panic()
    {
        tracing::error!(%error, "an HTTP connection task panicked");
    }
}

/// Counts events and says when a log line about them is due: at most one line per interval,
/// each with the count of events since the previous one. Events after the last line are told
/// by the next one, or by [`LogTally::take_unreported`] when the server stops.
#[derive(Debug)]
struct LogTally {
    interval: Duration,
    unreported: u64,
    last_report: Option<Instant>,
}

impl LogTally {
    fn new(interval: Duration) -> Self {
        Self { interval, unreported: 0, last_report: None }
    }

    /// Counts one event at `now`; the count to log, if a line is due.
    fn record(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        let recent = self.last_report.is_some_and(|last| now - last < self.interval);
        if recent {
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }

    /// The events counted since the last line, now counted as told.
    fn take_unreported(&mut self) -> u64 {
        std::mem::take(&mut self.unreported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_logs_the_first_event_then_at_most_once_per_interval_with_the_count() {
        let interval = Duration::from_secs(10);
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let mut tally = LogTally::new(interval);
        assert_eq!(tally.record(at(0)), Some(1), "the first event is told at once");
        assert_eq!(tally.record(at(1)), None);
        assert_eq!(tally.record(at(9)), None);
        assert_eq!(tally.record(at(10)), Some(3), "one line for the three since the last");
        assert_eq!(tally.record(at(12)), None);
        assert_eq!(tally.take_unreported(), 1, "the last words count what was not told");
        assert_eq!(tally.take_unreported(), 0);
        assert_eq!(tally.record(at(20)), Some(1));
    }

    #[test]
    fn the_default_limits_are_the_constants_and_pass_the_check() {
        let limits = HttpServerLimits::default();
        assert_eq!(limits.connections_max, HTTP_CONNECTIONS_MAX);
        assert_eq!(limits.header_bytes_max, HTTP_HEADER_BYTES_MAX);
        assert_eq!(limits.check(), Ok(()));
        let small = HttpServerLimits { header_bytes_max: 4096, ..limits };
        assert!(small.check().unwrap_err().contains("header_bytes_max"));
        let zero = HttpServerLimits { connections_max: 0, ..limits };
        assert!(zero.check().unwrap_err().contains("zero"));
    }
}
