//! One irpc client per remote endpoint, shared by every Raft network instance and every
//! forwarded request of a node, and the three ways of calling through it: one request and its
//! reply (`call`), a request with a stream of updates and one reply (`call_streaming`), and a
//! stream each way that the caller keeps open (`open_duplex`, for replication).
//!
//! A client wraps irpc-iroh's lazy connection: it dials on first use and then opens one QUIC
//! stream per call on the same connection. A client whose call fails is dropped from the
//! cache, so the next call dials afresh instead of reusing a connection that may be dead; a
//! duplex stream's user does the same through its `Eviction` when the stream fails later.
//!
//! A call is split in two phases because the caller reacts differently to each: before a
//! stream is open nothing was sent (the peer is unreachable, try elsewhere or back off);
//! afterwards the request may have been executed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::{Endpoint, EndpointAddr, EndpointId};
use irpc::channel::{mpsc, oneshot};
use irpc::rpc::RemoteSender;
use irpc::{Channels, Request, RpcMessage};
use serde::de::DeserializeOwned;
use tokio::time::{Instant, timeout_at};

use super::protocol::{RAFT_ALPN, RaftRpcProtocol};
use crate::limits::PEERS_MAX;

type RpcClient = irpc::Client<RaftRpcProtocol>;

/// Why a call got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallError {
    /// No connection or stream could be opened: the request was never sent.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The request may have been sent, but the exchange failed.
    #[error("connection failed: {0}")]
    Transport(String),
    /// The deadline passed after the request may have been sent.
    #[error("no reply within {0:?}")]
    TimedOut(Duration),
}

#[derive(Debug)]
struct Cached {
    addr: EndpointAddr,
    client: RpcClient,
    generation: u64,
}

/// A client handed out for one call, remembering which cache entry it came from.
struct Lease {
    id: EndpointId,
    client: RpcClient,
    generation: u64,
}

/// The shared client cache; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    endpoint: Endpoint,
    clients: Arc<Mutex<HashMap<EndpointId, Cached>>>,
    next_generation: Arc<AtomicU64>,
}

impl Connections {
    /// An empty cache dialing from `endpoint`.
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        Self { endpoint, clients: Arc::default(), next_generation: Arc::default() }
    }

    /// How many remote endpoints have a cached client.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EndpointId, Cached>> {
        // Every mutation below is a single map operation, so a poisoned map is still sound.
        self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached client for `addr`, or a new one when there is none or the address changed.
    fn lease(&self, addr: &EndpointAddr) -> Lease {
        let mut clients = self.lock();
        if let Some(cached) = clients.get(&addr.id).filter(|cached| cached.addr == *addr) {
            return Lease {
                id: addr.id,
                client: cached.client.clone(),
                generation: cached.generation,
            };
        }
        // Bounded like the peer book: a node never talks to more peers than it may know.
        if !clients.contains_key(&addr.id) && clients.len() >= PEERS_MAX {
            let victim = clients.keys().min().copied();
            if let Some(victim) = victim {
                clients.remove(&victim);
            }
        }
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let client =
            irpc_iroh::client::<RaftRpcProtocol>(self.endpoint.clone(), addr.clone(), RAFT_ALPN);
        clients.insert(addr.id, Cached { addr: addr.clone(), client: client.clone(), generation });
        Lease { id: addr.id, client, generation }
    }

    /// Drops the lease's client from the cache, unless it was already replaced by a newer one.
    fn evict(&self, lease: &Lease) {
        let mut clients = self.lock();
        if clients.get(&lease.id).is_some_and(|cached| cached.generation == lease.generation) {
            clients.remove(&lease.id);
        }
    }

    async fn open(
        lease: &Lease,
        deadline: Instant,
    ) -> Result<RemoteSender<RaftRpcProtocol>, CallError> {
        match timeout_at(deadline, lease.client.request()).await {
            Err(_) => Err(CallError::Connect("no connection before the deadline".into())),
            Ok(Err(error)) => Err(CallError::Connect(format!("{error:#}"))),
            Ok(Ok(Request::Remote(sender))) => Ok(sender),
            // The cache only ever holds remote clients; answer rather than panic regardless.
            Ok(Ok(Request::Local(_))) => Err(CallError::Connect("not a remote client".into())),
        }
    }

    /// Sends `request` to `addr` and waits for its one reply, all within `timeout`.
    pub(crate) async fn call<Req, Res>(
        &self,
        addr: &EndpointAddr,
        request: Req,
        timeout: Duration,
    ) -> Result<Res, CallError>
    where
        Req: Channels<RaftRpcProtocol, Tx = oneshot::Sender<Res>>,
        RaftRpcProtocol: From<Req>,
        Res: DeserializeOwned + Send + 'static,
    {
        let deadline = Instant::now() + timeout;
        let lease = self.lease(addr);
        let result = async {
            let sender = Self::open(&lease, deadline).await?;
            let exchange = async {
                let (_send, recv) = sender.write(request).await.map_err(transport)?;
                let reply: oneshot::Receiver<Res> = recv.into();
                reply.await.map_err(transport)
            };
            timeout_at(deadline, exchange).await.map_err(|_| CallError::TimedOut(timeout))?
        }
        .await;
        if result.is_err() {
            self.evict(&lease);
        }
        result
    }

    /// Sends `request`, then every item of `updates` on the same stream, then waits for the one
    /// reply, all within `timeout`.
    pub(crate) async fn call_streaming<Req, Update, Res>(
        &self,
        addr: &EndpointAddr,
        request: Req,
        updates: impl IntoIterator<Item = Update> + Send,
        timeout: Duration,
    ) -> Result<Res, CallError>
    where
        Req: Channels<RaftRpcProtocol, Tx = oneshot::Sender<Res>, Rx = mpsc::Receiver<Update>>,
        RaftRpcProtocol: From<Req>,
        Update: RpcMessage,
        Res: DeserializeOwned + Send + 'static,
    {
        let deadline = Instant::now() + timeout;
        let lease = self.lease(addr);
        let result = async {
            let sender = Self::open(&lease, deadline).await?;
            let exchange = async {
                let (send, recv) = sender.write(request).await.map_err(transport)?;
                let reply: oneshot::Receiver<Res> = recv.into();
                let send_error = send_all(send.into(), updates).await.err();
                // A receiver that refuses the stream early replies with its reason and stops
                // reading; that reason says more than the send error it caused here.
                match (reply.await, send_error) {
                    (Ok(reply), _) => Ok(reply),
                    (Err(_), Some(error)) => Err(transport(error)),
                    (Err(error), None) => Err(transport(error)),
                }
            };
            timeout_at(deadline, exchange).await.map_err(|_| CallError::TimedOut(timeout))?
        }
        .await;
        if result.is_err() {
            self.evict(&lease);
        }
        result
    }

    /// Opens a stream for `request` on which `Update`s go out and `Res`es come back, each side
    /// as long as its user keeps it, within `timeout` for the opening. The [`Eviction`] drops
    /// the client from the cache if the caller finds the stream broken later, so that the next
    /// call dials afresh.
    pub(crate) async fn open_duplex<Req, Update, Res>(
        &self,
        addr: &EndpointAddr,
        request: Req,
        timeout: Duration,
    ) -> Result<(mpsc::Sender<Update>, mpsc::Receiver<Res>, Eviction), CallError>
    where
        Req: Channels<RaftRpcProtocol, Tx = mpsc::Sender<Res>, Rx = mpsc::Receiver<Update>>,
        RaftRpcProtocol: From<Req>,
        Update: RpcMessage,
        Res: RpcMessage,
    {
        let deadline = Instant::now() + timeout;
        let lease = self.lease(addr);
        let opened = async {
            let sender = Self::open(&lease, deadline).await?;
            let written = timeout_at(deadline, sender.write(request)).await;
            let (send, recv) =
                written.map_err(|_| CallError::TimedOut(timeout))?.map_err(transport)?;
            Ok((send.into(), recv.into()))
        }
        .await;
        match opened {
            Ok((send, recv)) => Ok((send, recv, Eviction { connections: self.clone(), lease })),
            Err(error) => {
                self.evict(&lease);
                Err(error)
            }
        }
    }
}

/// Drops a client from the cache when a long-lived stream on it failed.
pub(crate) struct Eviction {
    connections: Connections,
    lease: Lease,
}

impl Eviction {
    /// The stream failed: the next call dials afresh (unless the client was replaced already).
    pub(crate) fn evict(self) {
        self.connections.evict(&self.lease);
    }
}

async fn send_all<Update: RpcMessage>(
    sender: mpsc::Sender<Update>,
    updates: impl IntoIterator<Item = Update>,
) -> Result<(), irpc::Error> {
    for update in updates {
        sender.send(update).await?;
    }
    // Dropping the sender finishes the stream, which tells the receiver that nothing follows.
    Ok(())
}

pub(crate) fn transport(error: impl Into<irpc::Error>) -> CallError {
    CallError::Transport(format!("{:#}", error.into()))
}
