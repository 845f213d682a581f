//! The handle both clients are made from: which node, which backend (the RaftActor and the
//! data path around it, or the deterministic in-memory cluster), and the data-path counters.
//! Kept apart because the control and the KV client both read its fields.

use std::sync::Arc;

use ractor::{ActorRef, registry};

use crate::api::{ControlPlaneError, DeterministicCluster, NodeId};
use crate::raft::actor::RaftActorMessage;
use crate::raft::counters::DataPathCounters;
use crate::raft::local::LocalKv;
use crate::raft::network::IrpcRaftNetworkFactory;
use crate::raft::{AspenRaft, SharedRaft};
use crate::storage::StateReader;

/// How a program reaches a node's RaftActor; cheap to clone.
#[derive(Clone)]
pub struct RaftActorHandle {
    pub(super) node_id: NodeId,
    pub(super) backend: Backend,
    pub(super) counters: Arc<DataPathCounters>,
}

#[derive(Clone)]
pub(super) enum Backend {
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

    /// Whether this node starts elections on its own when it hears from no leader (on by
    /// default). Off, it still votes, and still campaigns when a node with a shorter log asks
    /// it for a pre-vote. Nothing to do for the deterministic backend.
    pub fn set_elections(&self, enabled: bool) {
        if let Backend::Raft { local, .. } = &self.backend {
            local.shared.set_elections(enabled);
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

    pub(super) fn actor(
        &self,
        actor_name: &str,
    ) -> Result<ActorRef<RaftActorMessage>, ControlPlaneError> {
        registry::where_is(actor_name).map(ActorRef::from).ok_or_else(|| {
            ControlPlaneError::Failed { reason: format!("actor {actor_name} is not running") }
        })
    }
}
