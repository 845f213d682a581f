//! The control-plane and data-plane traits.

use super::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterState, ControlPlaneError, InitRequest,
    KeyValueStoreError, ReadRequest, ReadResult, RemoveNodeRequest, ScanRequest, ScanResult,
    WriteRequest, WriteResult,
};

/// Control plane for cluster membership.
#[async_trait::async_trait]
pub trait ClusterController: Send + Sync {
    /// Create the cluster with its first voting members. Fails with `InvalidRequest` when the
    /// cluster is already initialized.
    async fn init(&self, request: InitRequest) -> Result<ClusterState, ControlPlaneError>;

    /// Add a non-voting learner and wait until it has caught up with the log.
    async fn add_learner(
        &self,
        request: AddLearnerRequest,
    ) -> Result<ClusterState, ControlPlaneError>;

    /// Replace the voting members. Every new voter must already be a member or a learner;
    /// removed voters stay as learners.
    async fn change_membership(
        &self,
        request: ChangeMembershipRequest,
    ) -> Result<ClusterState, ControlPlaneError>;

    /// Remove a voter or learner from the membership entirely (it is not kept as a learner).
    /// Fails with `InvalidRequest` for an unknown node or the last voter.
    async fn remove_node(
        &self,
        request: RemoveNodeRequest,
    ) -> Result<ClusterState, ControlPlaneError>;

    /// The membership as this node has applied it.
    async fn current_state(&self) -> Result<ClusterState, ControlPlaneError>;
}

/// Data plane for key-value operations.
#[async_trait::async_trait]
pub trait KeyValueStore: Send + Sync {
    /// Apply a write through consensus; returns once it is committed and applied.
    async fn write(&self, request: WriteRequest) -> Result<WriteResult, KeyValueStoreError>;

    /// Read one key, linearizably.
    async fn read(&self, request: ReadRequest) -> Result<ReadResult, KeyValueStoreError>;

    /// List the keys with a prefix, linearizably, up to a bounded limit.
    async fn scan(&self, request: ScanRequest) -> Result<ScanResult, KeyValueStoreError>;
}
