//! The listener: binds, serves the router, and stops gracefully within a bound.
//!
//! An [`HttpServerSlot`] holds the one running server of a node. The HttpActor starts a server
//! into it (stopping whatever an earlier instance of the actor left there, because a killed or
//! failed actor runs no `post_stop`); the node's `BootstrapHandle::shutdown` stops it last, once
//! every actor is down. In between, a node that stopped on its own keeps answering `/health`
//! with 503 and the reason, instead of refusing connections without a word.
//!
//! One port serves both HTTP/1.1 and cleartext HTTP/2 with prior knowledge (h2c, no `Upgrade`
//! dance and no TLS): `axum::serve` hands every connection to hyper-util's automatic builder,
//! which reads the first bytes and speaks HTTP/2 only if they are the HTTP/2 preface (`PRI *
//! HTTP/2.0`), so HTTP/1.1 clients see no change. HTTP/2 lets one connection carry many
//! requests at once, which is what a multiplexing client (gRPC-style, `aspen-bench`) needs.
//!
//! Every accepted connection gets TCP_NODELAY. Over HTTP/2 several answers share a connection,
//! and with Nagle's algorithm an answer written while an earlier one is unacknowledged waits
//! for the client's delayed ACK (about 40 ms on Linux): `aspen-bench` saw a 50 ms maximum in
//! every HTTP/2 test without it.
//!
//! What holds for both protocols alike:
//! - The body limit (`HTTP_BODY_BYTES_MAX`) is a router layer, so it bounds every request,
//!   whether it arrives as an HTTP/1.1 message or as an HTTP/2 stream.
//! - Graceful shutdown stops accepting at once and asks every open connection to finish: an
//!   HTTP/1.1 connection closes after the request in flight (at once when idle), an HTTP/2
//!   connection sends GOAWAY and closes once its streams are answered. [`HttpServerSlot::stop`]
//!   waits for that at most `SHUTDOWN_TIMEOUT_MS_MAX`. A connection still open then is not
//!   cut: axum runs each connection in a task of its own, which aborting the server task does
//!   not end; it closes when its requests (each bounded by the API) are answered.
//! - No connection-level timeouts and no connection count limit, for either protocol:
//!   `axum::serve` gives hyper no timer, so hyper's HTTP/1 header-read timeout stays off, and
//!   HTTP/2 keep-alive pings are off. Every API call is bounded by the API's own timeouts.
//!
//! What differs (hyper's defaults, which axum does not let us change without replacing
//! `axum::serve`):
//! - In-flight requests per connection: one for HTTP/1.1; up to 200 concurrent streams for
//!   HTTP/2 (the `SETTINGS_MAX_CONCURRENT_STREAMS` hyper advertises), further streams wait in
//!   the client. Streams a client opens and resets at once are bounded by h2's rapid-reset
//!   guard.
//! - Header size: about 400 KiB and 100 headers for HTTP/1.1, a 16 KiB header list for HTTP/2;
//!   both far above what the API's requests carry.
//! - Shutdown of an idle connection: HTTP/1.1 closes at once; HTTP/2 sends GOAWAY and a PING
//!   and closes once the client answers it (h2 waits one round trip for requests already on
//!   the wire). Every HTTP/2 client answers PINGs by itself; one that does not keeps its
//!   connection open past `stop` until it goes away.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::limits::SHUTDOWN_TIMEOUT_MS_MAX;

/// Where a node's HTTP server runs; clones share the slot.
#[derive(Clone, Default)]
pub struct HttpServerSlot {
    running: Arc<Mutex<Option<RunningServer>>>,
    bound: Arc<OnceLock<SocketAddr>>,
}

struct RunningServer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl HttpServerSlot {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address the server listens on, once it was bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.bound.get().copied()
    }

    /// The cell the bound address is kept in, for whoever reports it.
    pub fn bound_addr_cell(&self) -> Arc<OnceLock<SocketAddr>> {
        self.bound.clone()
    }

    /// Stops any server left in the slot, binds `configured` (or, after a restart, the address
    /// bound the first time, so that a port chosen by the OS stays the node's port) and serves
    /// `router`. `on_exit` is called if the server ends without being asked to.
    pub async fn start(
        &self,
        configured: SocketAddr,
        router: Router,
        on_exit: impl FnOnce(String) + Send + 'static,
    ) -> io::Result<SocketAddr> {
        self.stop().await;
        let addr = self.local_addr().unwrap_or(configured);
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let _ = self.bound.set(local);
        let (stop, stop_requested) = watch::channel(false);
        let mut signal = stop_requested.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                // A dropped sender also stops the server: nobody could stop it otherwise.
                let _ = signal.wait_for(|stop| *stop).await;
            };
            // TCP_NODELAY on every connection: see the module documentation.
            let listener = listener.tap_io(|stream| {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "TCP_NODELAY on an HTTP connection");
                }
            });
            let result = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
            if !*stop_requested.borrow() {
                on_exit(match result {
                    Ok(()) => "the server ended".into(),
                    Err(error) => error.to_string(),
                });
            }
        });
        tracing::info!(%local, "HTTP API listening");
        *self.lock() = Some(RunningServer { stop, task });
        Ok(local)
    }

    /// Stops the running server, if any: no new connections at once, and requests in flight
    /// get up to `SHUTDOWN_TIMEOUT_MS_MAX` to finish.
    pub async fn stop(&self) {
        let Some(running) = self.lock().take() else {
            return;
        };
        let _ = running.stop.send(true);
        let abort = running.task.abort_handle();
        let bound = Duration::from_millis(SHUTDOWN_TIMEOUT_MS_MAX);
        if tokio::time::timeout(bound, running.task).await.is_err() {
            tracing::warn!("HTTP requests still in flight after {bound:?}; stopping the server");
            abort.abort();
        }
    }

    /// The slot stays usable after a panic elsewhere: it holds one value, replaced whole.
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<RunningServer>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
