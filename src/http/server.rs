//! The listener: binds, accepts, serves the router on every connection within the limits of
//! [`HttpServerLimits`], and stops gracefully within a bound.
//!
//! An [`HttpServerSlot`] holds the one running server of a node. The HttpActor starts a server
//! into it (stopping whatever an earlier instance of the actor left there, because a killed or
//! failed actor runs no `post_stop`); the node's `BootstrapHandle::shutdown` stops it last, once
//! every actor is down. In between, a node that stopped on its own keeps answering `/health`
//! with 503 and the reason, instead of refusing connections without a word.
//!
//! One port serves both HTTP/1.1 and cleartext HTTP/2 with prior knowledge (h2c, no `Upgrade`
//! dance and no TLS): the accept loop (`connections`) hands every connection to hyper-util's
//! automatic builder, which reads the first bytes and speaks HTTP/2 only if they are the
//! HTTP/2 preface (`PRI * HTTP/2.0`), so HTTP/1.1 clients see no change. HTTP/2 lets one
//! connection carry many requests at once, which is what a multiplexing client (gRPC-style,
//! `aspen-bench`) needs. The loop is ours rather than `axum::serve` because only the builder
//! lets us set hyper's limits.
//!
//! Every accepted connection gets TCP_NODELAY. Over HTTP/2 several answers share a connection,
//! and with Nagle's algorithm an answer written while an earlier one is unacknowledged waits
//! for the client's delayed ACK (about 40 ms on Linux): `aspen-bench` saw a 50 ms maximum in
//! every HTTP/2 test without it.
//!
//! The limits, each a field of [`HttpServerLimits`] whose default is the constant named here
//! (`crate::limits` says why each has its value):
//! - Open connections: at most `HTTP_CONNECTIONS_MAX`, both protocols together. One more is
//!   accepted and closed at once, before anything is read, so that its client fails fast
//!   rather than waiting in the listen queue; a warning counts such refusals, at most one line
//!   per `HTTP_ACCEPT_LOG_INTERVAL_MS`.
//! - First bytes: a connection that sends nothing within `HTTP_HEADER_READ_TIMEOUT_MS_MAX` is
//!   closed (a timer of the connection task: hyper has none while it tells the protocols apart).
//! - HTTP/1.1 request heads: at most `HTTP_HEADER_BYTES_MAX` (hyper's read buffer) and
//!   `HTTP1_HEADERS_MAX` headers, answered 431 beyond either; a head not complete within
//!   `HTTP_HEADER_READ_TIMEOUT_MS_MAX` closes the connection without an answer (hyper's
//!   header-read timeout, on a `TokioTimer`), and so does an idle keep-alive connection that
//!   long after its last answer.
//! - HTTP/2 header lists: at most `HTTP_HEADER_BYTES_MAX`, advertised as
//!   `SETTINGS_MAX_HEADER_LIST_SIZE`; a larger one gets 431 on its stream.
//! - Requests in flight per connection: one for HTTP/1.1; for HTTP/2,
//!   `HTTP2_CONCURRENT_STREAMS_MAX`, advertised as `SETTINGS_MAX_CONCURRENT_STREAMS`, so that
//!   further streams wait in the client. Streams a client opens and resets at once are bounded
//!   by h2's rapid-reset guard.
//! - Bodies: `HTTP_BODY_BYTES_MAX` is a router layer, so it bounds every request, whether it
//!   arrives as an HTTP/1.1 message or as an HTTP/2 stream.
//! - Accept errors: one connection's own failure is skipped; any other (out of file
//!   descriptors, say) pauses accepting for `HTTP_ACCEPT_BACKOFF_MS`, then the loop goes on,
//!   warning at most once per `HTTP_ACCEPT_LOG_INTERVAL_MS`.
//!
//! Graceful shutdown ([`HttpServerSlot::stop`]) closes the listener at once and asks every open
//! connection to finish: an HTTP/1.1 connection closes after the request in flight (at once
//! when idle, or when it has sent nothing yet), an HTTP/2 connection sends GOAWAY and closes
//! once its streams are answered. The server waits for that at most `SHUTDOWN_TIMEOUT_MS_MAX`,
//! then cuts the connections still open: each runs in a task of a `JoinSet` the server owns,
//! aborting it drops the connection with its HTTP/1.1 handler, and the handlers of its HTTP/2
//! streams (tasks of hyper's own) end with it, because h2 fails every stream of a dropped
//! connection. So `stop` returns with nothing of the server left running.
//!
//! Caveats:
//! - HTTP/2 keep-alive pings are off and an HTTP/2 connection has no idle timeout: an idle
//!   client keeps its connection, and its slot, until it closes it; so does one that sent part
//!   of the HTTP/2 preface and stopped. `HTTP_CONNECTIONS_MAX` bounds how many such connections
//!   there can be. Pings would only find dead peers, not idle ones.
//! - Shutdown of an idle HTTP/2 connection sends GOAWAY and a PING and closes once the client
//!   answers it (h2 waits one round trip for requests already on the wire). Every HTTP/2 client
//!   answers PINGs by itself; one that does not is cut at the bound.
//! - No request timeout of the server's own: every API call is bounded by the API's timeouts.
//! - Connections accepted, refused at the limit and open now are in `/metrics`
//!   (`aspen_http_connections_*`); refusals are also logged, at most once per interval.
//! - hyper's other defaults stand, among them 1 MiB HTTP/2 flow-control windows, which bound
//!   what one client can make the server buffer.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::connections::{self, HttpConnectionCounters, HttpConnectionCounts, HttpServerLimits};

/// Where a node's HTTP server runs; clones share the slot.
#[derive(Clone, Default)]
pub struct HttpServerSlot {
    running: Arc<Mutex<Option<RunningServer>>>,
    bound: Arc<OnceLock<SocketAddr>>,
    limits: HttpServerLimits,
    counters: Arc<HttpConnectionCounters>,
}

struct RunningServer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl HttpServerSlot {
    /// An empty slot whose servers enforce the limits of `crate::limits`.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty slot whose servers enforce `limits` instead (tests lower them).
    pub fn with_limits(limits: HttpServerLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// The address the server listens on, once it was bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.bound.get().copied()
    }

    /// The connection counters of every server this slot runs, for `/metrics`.
    pub fn connection_counters(&self) -> Arc<HttpConnectionCounters> {
        self.counters.clone()
    }

    /// The connection counts now.
    pub fn connection_counts(&self) -> HttpConnectionCounts {
        self.counters.snapshot()
    }

    /// The cell the bound address is kept in, for whoever reports it.
    pub fn bound_addr_cell(&self) -> Arc<OnceLock<SocketAddr>> {
        self.bound.clone()
    }

    /// Stops any server left in the slot, binds `configured` (or, after a restart, the address
    /// bound the first time, so that a port chosen by the OS stays the node's port) and serves
    /// `router`. `on_exit` is called if the server ends without being asked to. Limits a server
    /// cannot run with are an `InvalidInput` error.
    pub async fn start(
        &self,
        configured: SocketAddr,
        router: Router,
        on_exit: impl FnOnce(String) + Send + 'static,
    ) -> io::Result<SocketAddr> {
        self.stop().await;
        self.limits
            .check()
            .map_err(|reason| io::Error::new(io::ErrorKind::InvalidInput, reason))?;
        let addr = self.local_addr().unwrap_or(configured);
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let _ = self.bound.set(local);
        let (stop, stop_requested) = watch::channel(false);
        let (limits, counters) = (self.limits, self.counters.clone());
        let task = tokio::spawn(async move {
            // A dropped sender also stops the server: nobody could stop it otherwise.
            connections::serve(listener, router, limits, counters, stop_requested.clone()).await;
            if !*stop_requested.borrow() {
                on_exit("the server ended".into());
            }
        });
        tracing::info!(%local, "HTTP API listening");
        *self.lock() = Some(RunningServer { stop, task });
        Ok(local)
    }

    /// Stops the running server, if any: no new connections at once, and requests in flight
    /// get up to the shutdown bound (`SHUTDOWN_TIMEOUT_MS_MAX`) to finish before their
    /// connections are cut.
    pub async fn stop(&self) {
        let Some(running) = self.lock().take() else {
            return;
        };
        let _ = running.stop.send(true);
        if let Err(error) = running.task.await
            && error.is_panic()
        {
            tracing::error!(%error, "the HTTP server task panicked");
        }
    }

    /// The slot stays usable after a panic elsewhere: it holds one value, replaced whole.
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<RunningServer>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
