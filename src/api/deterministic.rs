//! The deterministic in-memory backend: one process, no network, no disk.
//!
//! It behaves like a healthy single-leader cluster: every call succeeds or fails exactly as the
//! Raft backend would for the same sequence of calls with no faults, and nothing depends on
//! time or randomness. Code built on Aspen uses it in unit tests
//! (`ControlBackend::Deterministic`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::apply::{WriteOutcome, apply_command};
use super::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterController, ClusterNode, ClusterState,
    ControlPlaneError, InitRequest, KeyValueStore, KeyValueStoreError, NodeId, ReadRequest,
    ReadResult, RemoveNodeRequest, ScanRequest, ScanResult, WriteRequest, WriteResult, validate,
};

/// A cluster held in memory; clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct DeterministicCluster {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    initialized: bool,
    nodes: BTreeMap<NodeId, ClusterNode>,
    members: BTreeSet<NodeId>,
    kv: BTreeMap<String, String>,
    log_index: u64,
}

impl Inner {
    fn state(&self) -> ClusterState {
        ClusterState {
            nodes: self.nodes.values().cloned().collect(),
            members: self.members.iter().copied().collect(),
            learners: self.nodes.keys().filter(|id| !self.members.contains(id)).copied().collect(),
        }
    }
}

impl DeterministicCluster {
    /// An empty, uninitialized cluster.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock can only come from a bug in this file; the state is
        // still consistent because every mutation below is a single step.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn invalid(reason: String) -> ControlPlaneError {
    ControlPlaneError::InvalidRequest { reason }
}

#[async_trait::async_trait]
impl ClusterController for DeterministicCluster {
    async fn init(&self, request: InitRequest) -> Result<ClusterState, ControlPlaneError> {
        validate::init(&request).map_err(invalid)?;
        let mut inner = self.lock();
        if inner.initialized {
            return Err(invalid("cluster is already initialized".into()));
        }
        inner.initialized = true;
        inner.log_index += 1;
        for node in request.initial_members {
            inner.members.insert(node.id);
            inner.nodes.insert(node.id, node);
        }
        Ok(inner.state())
    }

    async fn add_learner(
        &self,
        request: AddLearnerRequest,
    ) -> Result<ClusterState, ControlPlaneError> {
        validate::nodes(std::slice::from_ref(&request.learner)).map_err(invalid)?;
        let mut inner = self.lock();
        if !inner.initialized {
            return Err(ControlPlaneError::NotInitialized);
        }
        if inner.members.contains(&request.learner.id) {
            return Err(invalid(format!("node {} is already a voter", request.learner.id)));
        }
        if inner.nodes.len() >= crate::limits::CLUSTER_NODES_MAX
            && !inner.nodes.contains_key(&request.learner.id)
        {
            return Err(invalid("the cluster has the most nodes it may have".into()));
        }
        inner.log_index += 1;
        inner.nodes.insert(request.learner.id, request.learner);
        Ok(inner.state())
    }

    async fn change_membership(
        &self,
        request: ChangeMembershipRequest,
    ) -> Result<ClusterState, ControlPlaneError> {
        validate::change_membership(&request).map_err(invalid)?;
        let mut inner = self.lock();
        if !inner.initialized {
            return Err(ControlPlaneError::NotInitialized);
        }
        if let Some(unknown) = request.members.iter().find(|id| !inner.nodes.contains_key(id)) {
            return Err(invalid(format!("node {unknown} is neither a member nor a learner")));
        }
        inner.log_index += 1;
        inner.members = request.members.into_iter().collect();
        Ok(inner.state())
    }

    async fn remove_node(
        &self,
        request: RemoveNodeRequest,
    ) -> Result<ClusterState, ControlPlaneError> {
        let mut inner = self.lock();
        if !inner.initialized {
            return Err(ControlPlaneError::NotInitialized);
        }
        let id = request.node_id;
        if !inner.nodes.contains_key(&id) {
            return Err(invalid(format!("node {id} is neither a member nor a learner")));
        }
        if inner.members.len() == 1 && inner.members.contains(&id) {
            return Err(invalid(format!("node {id} is the last voter and cannot be removed")));
        }
        inner.log_index += 1;
        inner.members.remove(&id);
        inner.nodes.remove(&id);
        Ok(inner.state())
    }

    async fn current_state(&self) -> Result<ClusterState, ControlPlaneError> {
        let inner = self.lock();
        if !inner.initialized {
            return Err(ControlPlaneError::NotInitialized);
        }
        Ok(inner.state())
    }
}

#[async_trait::async_trait]
impl KeyValueStore for DeterministicCluster {
    async fn write(&self, request: WriteRequest) -> Result<WriteResult, KeyValueStoreError> {
        validate::write_command(&request.command)
            .map_err(|reason| KeyValueStoreError::InvalidRequest { reason })?;
        let mut inner = self.lock();
        if !inner.initialized {
            return Err(KeyValueStoreError::NotInitialized);
        }
        inner.log_index += 1;
        let log_index = inner.log_index;
        let outcome = match apply_command(&mut inner.kv, &request.command) {
            Ok(outcome) => outcome,
            Err(never) => match never {},
        };
        match outcome {
            WriteOutcome::Applied => Ok(WriteResult { command: request.command, log_index }),
            WriteOutcome::CompareAndSwapMismatch { current } => {
                let key = match request.command {
                    super::WriteCommand::CompareAndSwap { key, .. } => key,
                    other => unreachable!("only CompareAndSwap can mismatch, got {other}"),
                };
                Err(KeyValueStoreError::CompareAndSwapFailed { key, current })
            }
        }
    }

    async fn read(&self, request: ReadRequest) -> Result<ReadResult, KeyValueStoreError> {
        validate::key(&request.key)
            .map_err(|reason| KeyValueStoreError::InvalidRequest { reason })?;
        let inner = self.lock();
        if !inner.initialized {
            return Err(KeyValueStoreError::NotInitialized);
        }
        match inner.kv.get(&request.key) {
            Some(value) => Ok(ReadResult { key: request.key, value: value.clone() }),
            None => Err(KeyValueStoreError::NotFound { key: request.key }),
        }
    }

    async fn scan(&self, request: ScanRequest) -> Result<ScanResult, KeyValueStoreError> {
        let limit = validate::scan(&request)
            .map_err(|reason| KeyValueStoreError::InvalidRequest { reason })?;
        let inner = self.lock();
        if !inner.initialized {
            return Err(KeyValueStoreError::NotInitialized);
        }
        let mut matching = inner
            .kv
            .range(request.prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&request.prefix));
        let entries: Vec<_> = matching
            .by_ref()
            .take(limit as usize)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let truncated = matching.next().is_some();
        Ok(ScanResult { entries, truncated })
    }
}
