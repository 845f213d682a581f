//! The listener: binds, serves the router, and stops gracefully within a bound.
//!
//! An [`HttpServerSlot`] holds the one running server of a node. The HttpActor starts a server
//! into it (stopping whatever an earlier instance of the actor left there, because a killed or
//! failed actor runs no `post_stop`); the node's `BootstrapHandle::shutdown` stops it last, once
//! every actor is down. In between, a node that stopped on its own keeps answering `/health`
//! with 503 and the reason, instead of refusing connections without a word.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::Router;
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
