//! The clients a program uses on a node: [`RaftControlClient`] (the control plane) and
//! [`KvClient`] (the data plane), both made from the node's [`RaftActorHandle`].
//!
//! The control client sends messages to the RaftActor, found by its node-prefixed name on every
//! call, so it keeps working after the actor was restarted by its supervisor. The KV client
//! calls the running Raft instance directly from the caller's task, so that many writes are in
//! flight at once and openraft can batch them; when this node is not the leader it forwards the
//! request to the leader over the Raft RPC protocol.

use openraft::async_runtime::watch::WatchReceiver;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use ractor::{ActorRef, registry};

use super::actor::RaftActorMessage;
use super::counters::{DataPathCounters, Operation};
use super::local::{self, LocalKv};
use super::network::IrpcRaftNetworkFactory;
use super::{AspenRaft, RaftMetrics, SharedRaft};
use crate::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterController, ClusterState, ControlPlaneError,
    DeterministicCluster, InitRequest, KeyValueStore, KeyValueStoreError, NodeId, ReadConsistency,
    ReadRequest, ReadResult, RemoveNodeRequest, ScanRequest, ScanResult, WriteRequest, WriteResult,
};
use crate::limits::{
    ACTOR_CALL_TIMEOUT_MS_MAX, CLIENT_REQUEST_TIMEOUT_MS_MAX, CLIENT_RETRIES_MAX,
    CLIENT_RETRY_BACKOFF_MS, CONTROL_REQUEST_TIMEOUT_MS_MAX,
};
use crate::storage::StateReader;

/// How a program reaches a node's RaftActor; cheap to clone.
#[derive(Clone)]
pub struct RaftActorHandle {
    node_id: NodeId,
    backend: Backend,
    counters: Arc<DataPathCounters>,
}

#[derive(Clone)]
enum Backend {
    Raft { actor_name: String, local: LocalKv, network: IrpcRaftNetworkFactory },
    Deterministic(DeterministicCluster),
}

impl RaftActorHandle {
    /// A handle to the RaftActor named `actor_name` and the data path around it.
    pub fn raft(
        node_id: NodeId,
        actor_name: String,
        shared: SharedRaft,
        network: IrpcRaftNetworkFactory,
    ) -> Self {
        let local = LocalKv { shared };
        Self {
            node_id,
            backend: Backend::Raft { actor_name, local, network },
            counters: Arc::default(),
        }
    }

    /// A handle served by the deterministic in-memory backend.
    pub fn deterministic(node_id: NodeId, cluster: DeterministicCluster) -> Self {
        Self { node_id, backend: Backend::Deterministic(cluster), counters: Arc::default() }
    }

    /// What clients of this node asked and how it went.
    pub fn counters(&self) -> &DataPathCounters {
        &self.counters
    }

    /// The node this handle belongs to.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The running openraft instance (for metrics waits, snapshots and tests); `None` for the
    /// deterministic backend or while the RaftActor restarts.
    pub fn current_raft(&self) -> Option<AspenRaft> {
        match &self.backend {
            Backend::Raft { local, .. } => local.shared.get(),
            Backend::Deterministic(_) => None,
        }
    }

    /// The reader of the running instance's state machine (`None` for the deterministic
    /// backend, while the RaftActor restarts, or after shutdown).
    pub fn state_reader(&self) -> Option<StateReader> {
        match &self.backend {
            Backend::Raft { local, .. } => local.shared.get_with_reader().map(|(_, reader)| reader),
            Backend::Deterministic(_) => None,
        }
    }

    fn actor(&self, actor_name: &str) -> Result<ActorRef<RaftActorMessage>, ControlPlaneError> {
        registry::where_is(actor_name).map(ActorRef::from).ok_or_else(|| {
            ControlPlaneError::Failed { reason: format!("actor {actor_name} is not running") }
        })
    }
}

/// Control plane of one node ([`ClusterController`]).
#[derive(Clone)]
pub struct RaftControlClient {
    handle: RaftActorHandle,
}

impl RaftControlClient {
    /// A client for the node behind `handle`.
    pub fn new(handle: RaftActorHandle) -> Self {
        Self { handle }
    }

    async fn call(
        &self,
        make: impl FnOnce(
            ractor::RpcReplyPort<Result<ClusterState, ControlPlaneError>>,
        ) -> RaftActorMessage,
        timeout_ms: u64,
    ) -> Result<ClusterState, ControlPlaneError> {
        let Backend::Raft { actor_name, .. } = &self.handle.backend else {
            unreachable!("call is only used with the Raft backend");
        };
        let actor = self.handle.actor(actor_name)?;
        match actor.call(make, Some(Duration::from_millis(timeout_ms))).await {
            Ok(ractor::rpc::CallResult::Success(result)) => result,
            Ok(ractor::rpc::CallResult::Timeout) => Err(ControlPlaneError::Failed {
                reason: format!("no answer from {actor_name} within {timeout_ms} ms"),
            }),
            Ok(ractor::rpc::CallResult::SenderError) | Err(_) => Err(ControlPlaneError::Failed {
                reason: format!("{actor_name} stopped before answering"),
            }),
        }
    }

    /// The node's current Raft metrics (leader, term, state, last applied, membership).
    pub async fn metrics(&self) -> Result<RaftMetrics, ControlPlaneError> {
        let Backend::Raft { actor_name, .. } = &self.handle.backend else {
            return Err(ControlPlaneError::InvalidRequest {
                reason: "the deterministic backend has no Raft metrics".into(),
            });
        };
        let actor = self.handle.actor(actor_name)?;
        let timeout = Some(Duration::from_millis(ACTOR_CALL_TIMEOUT_MS_MAX));
        match actor.call(RaftActorMessage::Metrics, timeout).await {
            Ok(ractor::rpc::CallResult::Success(metrics)) => Ok(metrics),
            _ => Err(ControlPlaneError::Failed { reason: format!("no metrics from {actor_name}") }),
        }
    }
}

#[async_trait::async_trait]
impl ClusterController for RaftControlClient {
    async fn init(&self, request: InitRequest) -> Result<ClusterState, ControlPlaneError> {
        if let Backend::Deterministic(cluster) = &self.handle.backend {
            return cluster.init(request).await;
        }
        self.call(|reply| RaftActorMessage::Init(request, reply), CONTROL_REQUEST_TIMEOUT_MS_MAX)
            .await
    }

    async fn add_learner(
        &self,
        request: AddLearnerRequest,
    ) -> Result<ClusterState, ControlPlaneError> {
        if let Backend::Deterministic(cluster) = &self.handle.backend {
            return cluster.add_learner(request).await;
        }
        let timeout = CONTROL_REQUEST_TIMEOUT_MS_MAX + ACTOR_CALL_TIMEOUT_MS_MAX;
        self.call(|reply| RaftActorMessage::AddLearner(request, reply), timeout).await
    }

    async fn change_membership(
        &self,
        request: ChangeMembershipRequest,
    ) -> Result<ClusterState, ControlPlaneError> {
        if let Backend::Deterministic(cluster) = &self.handle.backend {
            return cluster.change_membership(request).await;
        }
        let timeout = CONTROL_REQUEST_TIMEOUT_MS_MAX + ACTOR_CALL_TIMEOUT_MS_MAX;
        self.call(|reply| RaftActorMessage::ChangeMembership(request, reply), timeout).await
    }

    async fn remove_node(
        &self,
        request: RemoveNodeRequest,
    ) -> Result<ClusterState, ControlPlaneError> {
        if let Backend::Deterministic(cluster) = &self.handle.backend {
            return cluster.remove_node(request).await;
        }
        let timeout = CONTROL_REQUEST_TIMEOUT_MS_MAX + ACTOR_CALL_TIMEOUT_MS_MAX;
        self.call(|reply| RaftActorMessage::RemoveNode(request, reply), timeout).await
    }

    async fn current_state(&self) -> Result<ClusterState, ControlPlaneError> {
        if let Backend::Deterministic(cluster) = &self.handle.backend {
            return cluster.current_state().await;
        }
        self.call(RaftActorMessage::CurrentState, ACTOR_CALL_TIMEOUT_MS_MAX).await
    }
}

/// The pause before the first retry of a `NotLeader` answer; later ones wait longer.
const CLIENT_RETRY_BACKOFF: Duration = Duration::from_millis(CLIENT_RETRY_BACKOFF_MS);

/// Data plane of one node ([`KeyValueStore`]); requests on a follower go to the leader.
#[derive(Clone)]
pub struct KvClient {
    handle: RaftActorHandle,
}

/// Where a request that this node cannot serve should go.
enum Route {
    Leader(NodeId, Option<super::RaftMemberInfo>),
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
