//! The control-plane client: [`ClusterController`] over messages to the RaftActor (found by
//! name on every call, so that it survives a restart), or the deterministic backend. Kept apart
//! from the KV client because it never forwards and never touches the Raft instance itself.

use std::time::Duration;

use super::handle::{Backend, RaftActorHandle};
use crate::api::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterController, ClusterState, ControlPlaneError,
    InitRequest, RemoveNodeRequest,
};
use crate::limits::{ACTOR_CALL_TIMEOUT_MS_MAX, CONTROL_REQUEST_TIMEOUT_MS_MAX};
use crate::raft::RaftMetrics;
use crate::raft::actor::RaftActorMessage;

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
