//! The data-plane client: [`KeyValueStore`] on this node's Raft instance, with forwarding to
//! the leader on `NotLeader`, retries while leadership settles, and the rule for a forwarded
//! request whose leader is replaced while it waits. Kept apart from the control client because
//! this retry and forwarding logic is the data path's alone.

use openraft::async_runtime::watch::WatchReceiver;
use std::time::Duration;

use tokio::time::Instant;

use super::handle::{Backend, RaftActorHandle};
use crate::api::{
    KeyValueStore, KeyValueStoreError, NodeId, ReadConsistency, ReadRequest, ReadResult,
    ScanRequest, ScanResult, WriteRequest, WriteResult,
};
use crate::limits::{CLIENT_REQUEST_TIMEOUT_MS_MAX, CLIENT_RETRIES_MAX, CLIENT_RETRY_BACKOFF_MS};
use crate::raft::counters::Operation;
use crate::raft::local::{self, LocalKv};
use crate::raft::network::IrpcRaftNetworkFactory;
use crate::raft::{AspenRaft, RaftMetrics};

/// The pause before the first retry of a `NotLeader` answer; later ones wait longer.
const CLIENT_RETRY_BACKOFF: Duration = Duration::from_millis(CLIENT_RETRY_BACKOFF_MS);

/// Data plane of one node ([`KeyValueStore`]); requests on a follower go to the leader.
#[derive(Clone)]
pub struct KvClient {
    handle: RaftActorHandle,
}

/// Where a request that this node cannot serve should go.
enum Route {
    Leader(NodeId, Option<crate::raft::RaftMemberInfo>),
    Answer(KeyValueStoreError),
}

impl KvClient {
    /// A client for the node behind `handle`.
    pub fn new(handle: RaftActorHandle) -> Self {
        Self { handle }
    }

    /// Decides what to do with a `NotLeader` answer: forward to a known leader, or wait (until
    /// `deadline`) for an election to name one, or give up with the error.
    async fn route(&self, raft: &AspenRaft, error: KeyValueStoreError, deadline: Instant) -> Route {
        let KeyValueStoreError::NotLeader { leader, .. } = &error else {
            return Route::Answer(error);
        };
        let leader = match leader {
            Some(leader) => *leader,
            None => {
                let wait = raft.wait(Some(deadline.saturating_duration_since(Instant::now())));
                match wait.metrics(|m| m.current_leader.is_some(), "a leader").await {
                    Ok(metrics) => metrics.current_leader.unwrap_or_default(),
                    Err(_) => return Route::Answer(error),
                }
            }
        };
        let metrics = raft.metrics().borrow_watched().clone();
        let node = metrics.membership_config.membership().get_node(&leader).cloned();
        Route::Leader(leader, node)
    }

    fn raft_backend(&self) -> Option<(&LocalKv, &IrpcRaftNetworkFactory)> {
        match &self.handle.backend {
            Backend::Raft { local, network, .. } => Some((local, network)),
            Backend::Deterministic(_) => None,
        }
    }
}

/// What a forwarded request becomes when this node learns that the leader it waits on no
/// longer leads (a leader that died answers nothing until its connection times out).
#[derive(Clone, Copy)]
enum WhenReplaced {
    /// Ask again, wherever leadership went: the request changes nothing (a read, a scan).
    Retry,
    /// Answer `Failed`: the old leader may or may not have executed it (a write).
    Indeterminate,
}

/// Resolves once this node's Raft knows that `leader` no longer leads: another leader, no
/// leader, or a term after the current one. Never resolves if that does not happen before
/// `deadline`, or if this node does not name `leader` as its leader now (then it cannot tell a
/// change from what it knew before).
async fn replaced(raft: &AspenRaft, leader: NodeId, deadline: Instant) {
    let (current_leader, term) = {
        let watch = raft.metrics();
        let metrics = watch.borrow_watched();
        (metrics.current_leader, metrics.current_term)
    };
    if current_leader != Some(leader) {
        return std::future::pending().await;
    }
    let wait = raft.wait(Some(deadline.saturating_duration_since(Instant::now())));
    let condition = |m: &RaftMetrics| m.current_leader != Some(leader) || m.current_term > term;
    if wait.metrics(condition, "the leader replaced").await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The answer to a forwarded request whose leader was replaced while it waited.
fn abandoned(leader: NodeId, when: WhenReplaced) -> KeyValueStoreError {
    match when {
        WhenReplaced::Retry => KeyValueStoreError::NotLeader { leader: None, leader_addr: None },
        WhenReplaced::Indeterminate => KeyValueStoreError::Failed {
            reason: format!(
                "leader {leader} was replaced while a forwarded write waited on it; it may or may \
                 not have executed the write"
            ),
        },
    }
}

/// Runs `$body` (with `$raft`, `$reader` and `$req` bound) on this node; on `NotLeader`,
/// forwards with `$forward`, or runs locally again when this node is itself the named leader
/// (it is still taking office). `NotLeader` always means "not applied" (openraft refuses before
/// appending, and the forwarder says `NotLeader` only when nothing was sent), so it is retried,
/// up to `CLIENT_RETRIES_MAX` times within `CLIENT_REQUEST_TIMEOUT_MS_MAX`, while leadership
/// settles after an election. A forwarded request stops waiting on its leader as soon as this
/// node learns that the leader was replaced, and becomes what `$when_replaced` says.
macro_rules! local_or_forward {
    ($self:ident, $request:ident, |$raft:ident, $reader:ident, $req:ident| $body:expr, $forward:ident, $when_replaced:expr) => {{
        let Some((local_kv, network)) = $self.raft_backend() else {
            unreachable!("the deterministic backend returned earlier")
        };
        let deadline = Instant::now() + Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS_MAX);
        let mut retries = 0;
        loop {
            let (raft, $reader) =
                local_kv.shared.get_with_reader().ok_or_else(local::restarting)?;
            let first = {
                let ($raft, $req) = (&raft, $request.clone());
                $body.await
            };
            let error = match first {
                Err(error @ KeyValueStoreError::NotLeader { .. }) => error,
                other => return other,
            };
            let result = match $self.route(&raft, error, deadline).await {
                Route::Leader(leader, _) if leader == $self.handle.node_id => {
                    let ($raft, $req) = (&raft, $request.clone());
                    $body.await
                }
                Route::Leader(leader, node) => {
                    $self.handle.counters.record_forward();
                    tokio::select! {
                        biased;
                        result = network.$forward(leader, node.as_ref(), $request.clone()) => result,
                        () = replaced(&raft, leader, deadline) => {
                            Err(abandoned(leader, $when_replaced))
                        }
                    }
                }
                Route::Answer(error) => Err(error),
            };
            match result {
                Err(KeyValueStoreError::NotLeader { .. })
                    if retries < CLIENT_RETRIES_MAX && Instant::now() < deadline =>
                {
                    retries += 1;
                    // Give the election that made the answer stale a moment to settle.
                    tokio::time::sleep(CLIENT_RETRY_BACKOFF * retries).await;
                }
                other => return other,
            }
        }
    }};
}

#[async_trait::async_trait]
impl KeyValueStore for KvClient {
    async fn write(&self, request: WriteRequest) -> Result<WriteResult, KeyValueStoreError> {
        let result = self.write_inner(request).await;
        self.handle.counters.record(Operation::Write, &result);
        result
    }

    async fn read(&self, request: ReadRequest) -> Result<ReadResult, KeyValueStoreError> {
        let result = self.read_inner(request).await;
        self.handle.counters.record(Operation::Read, &result);
        result
    }

    async fn scan(&self, request: ScanRequest) -> Result<ScanResult, KeyValueStoreError> {
        let result = self.scan_inner(request).await;
        self.handle.counters.record(Operation::Scan, &result);
        result
    }
}

impl KvClient {
    async fn write_inner(&self, request: WriteRequest) -> Result<WriteResult, KeyValueStoreError> {
        if let Backend::Deterministic(cluster) = &self.handle.backend {
            return cluster.write(request).await;
        }
        local_or_forward!(
            self,
            request,
            |raft, _reader, request| local::write(raft, request),
            forward_write,
            WhenReplaced::Indeterminate
        )
    }

    async fn read_inner(&self, request: ReadRequest) -> Result<ReadResult, KeyValueStoreError> {
        if let Backend::Deterministic(cluster) = &self.handle.backend {
            return cluster.read(request).await;
        }
        if request.consistency == ReadConsistency::Serializable {
            // Answered here, whatever this node's role: never forwarded.
            let Some((local_kv, _)) = self.raft_backend() else {
                unreachable!("the deterministic backend returned earlier")
            };
            let (raft, reader) = local_kv.shared.get_with_reader().ok_or_else(local::restarting)?;
            return local::read(&raft, &reader, request).await;
        }
        local_or_forward!(
            self,
            request,
            |raft, reader, request| local::read(raft, &reader, request),
            forward_read,
            WhenReplaced::Retry
        )
    }

    async fn scan_inner(&self, request: ScanRequest) -> Result<ScanResult, KeyValueStoreError> {
        if let Backend::Deterministic(cluster) = &self.handle.backend {
            return cluster.scan(request).await;
        }
        local_or_forward!(
            self,
            request,
            |raft, reader, request| local::scan(raft, &reader, request),
            forward_scan,
            WhenReplaced::Retry
        )
    }
}
