//! Errors of the two API traits, grouped by how a caller reacts to them.

use serde::{Deserialize, Serialize};

use super::NodeId;

/// Why a control-plane call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ControlPlaneError {
    /// The request itself is wrong (bad parameters, over a limit); retrying will not help.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// The cluster has not been initialized yet: call `init` first.
    #[error("cluster is not initialized")]
    NotInitialized,
    /// This node is not the leader and the call could not be forwarded; retry on the leader.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The current leader, if known.
        leader: Option<NodeId>,
        /// The leader's API address, if known.
        leader_addr: Option<String>,
    },
    /// The operation failed for another reason (timeout, storage, network); it may be retried.
    #[error("operation failed: {reason}")]
    Failed {
        /// What went wrong.
        reason: String,
    },
}

/// Why a key-value call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum KeyValueStoreError {
    /// The key does not exist.
    #[error("key not found: {key}")]
    NotFound {
        /// The key that was read.
        key: String,
    },
    /// A `CompareAndSwap` found another value than expected; nothing was changed.
    #[error("compare-and-swap failed on {key}: {}", match current {
        Some(value) => format!("the current value is {value:?}"),
        None => "the key is absent".to_string(),
    })]
    CompareAndSwapFailed {
        /// The key.
        key: String,
        /// The value the key has now (`None`: absent).
        current: Option<String>,
    },
    /// The request itself is wrong (empty key, over a limit); retrying will not help.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// The cluster has not been initialized yet: call `init` first.
    #[error("cluster is not initialized")]
    NotInitialized,
    /// This node is not the leader and the request could not be forwarded; retry on the leader.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The current leader, if known.
        leader: Option<NodeId>,
        /// The leader's API address, if known.
        leader_addr: Option<String>,
    },
    /// The operation failed for another reason (timeout, no quorum, storage); a write that
    /// failed this way may or may not have been applied.
    #[error("operation failed: {reason}")]
    Failed {
        /// What went wrong.
        reason: String,
    },
}
